"""Pieces of the Sphinx site that are code: the offline link checker and the gallery's
charts.  ``make docs`` (part of ``make test``) builds the whole site with warnings as
errors and runs the link checker over it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from dimsefsm.charts import all_charts
from dimsefsm.ul.chart import STATES

EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_link_checker_finds_missing_pages_and_anchors(tmp_path: Path) -> None:
    check = load("check_links")
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text(
        '<a href="sub/page.html#there">ok</a> <a href="sub/page.html#gone">anchor</a>'
        '<a href="missing.html">file</a> <img src="pic.svg"> <a href="#top" id="top">self</a>'
        '<a href="https://example.invalid/x">external</a> <a href="">empty</a>'
    )
    (tmp_path / "sub" / "page.html").write_text(
        '<h1 id="there">x</h1><a href="../index.html">up</a>'
    )
    assert check.broken_links(tmp_path) == [
        "index.html: sub/page.html#gone (no anchor #gone)",
        "index.html: missing.html (no such file)",
        "index.html: pic.svg (no such file)",
        "index.html:  (empty link)",
    ]
    (tmp_path / "pic.svg").write_text("<svg/>")
    assert check.main([str(tmp_path)]) == 1
    (tmp_path / "index.html").write_text('<a href="sub/page.html#there">ok</a>')
    assert check.main([str(tmp_path)]) == 0


def test_gallery_charts_name_states_collapse_parallel_edges_and_carry_when_sentences() -> None:
    docs = load("dimsefsm_docs")
    charts = {chart.name: chart for chart in all_charts()}
    upper = docs.gallery_dot(charts["upper-layer"])
    for state, name in STATES.items():
        assert f'"{state}" [label="{state}\\n{name}"' in upper
    edges = [line for line in upper.splitlines() if " -> " in line and "__start" not in line]
    declared = list(charts["upper-layer"].edges())
    assert len(edges) < len(declared) / 2  # the abort edges, among others, collapsed
    assert "more)" in upper
    for transition, _ in declared:
        assert transition.when.replace('"', '\\"') in upper  # in some edge's tooltip
    svg = docs.inline_svg(docs.gallery_dot(charts["c-echo-scp"]))
    assert svg.startswith("<svg") and "<title>" in svg and 'style="max-width:100%' in svg


def test_gallery_overlays_the_test_suites_firing_counts(tmp_path: Path) -> None:
    from dimsefsm.chart_counts import edge_key

    docs = load("dimsefsm_docs")
    chart = next(c for c in all_charts() if c.name == "c-echo-scp")
    counts = {edge_key(name, source): 3 for name, source in chart.declared_edges()}
    plain = docs.gallery_dot(chart, counts)
    assert "(fired 3)" in plain and "style=dashed" not in plain
    assert "[fired 3 times in the tests]" in plain
    never = next(iter(counts))
    counts[never] = 0
    overlaid = docs.gallery_dot(chart, counts)
    dashed = [line for line in overlaid.splitlines() if "style=dashed" in line]
    assert len(dashed) == 1 and "[fired 0 times in the tests]" in dashed[0]


def test_chart_counts_plugin_writes_every_declared_edge(tmp_path: Path) -> None:
    target = tmp_path / "counts.json"
    test = Path(__file__).resolve().parent / "test_verification.py"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(test),
            "--chart-counts",
            str(target),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    data = json.loads(target.read_text())
    for chart in all_charts():
        assert set(data[chart.name]) == {f"{n} from {s}" for n, s in chart.declared_edges()}
    assert data["c-echo-scp"]["accepted from Received"] > 0
