"""``dimsefsm trace``: transcripts drawn as sequence diagrams (dimsefsm.sequence)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from dimsefsm.cli.common import LOG_DATE_FORMAT, LOG_FORMAT
from dimsefsm.sequence import lanes_of, merge, parse_lines, render_html, render_svg
from tests.unit.test_verification import echo, make_pair

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "docs" / "traces"
MOVESCU, QRSCP = SAMPLES / "c-move-movescu.log", SAMPLES / "c-move-qrscp.log"
SVG = "{http://www.w3.org/2000/svg}"


def groups(svg: str, kind: str) -> list[str]:
    """The tooltips (whole transcript lines) of the drawn elements of one kind."""
    root = ElementTree.fromstring(svg)
    return [
        "".join(g.find(f"{SVG}title").itertext())  # type: ignore[union-attr]
        for g in root.iter(f"{SVG}g")
        if g.get("class") == kind
    ]


def test_log_lines_with_and_without_timestamps_and_json_lines() -> None:
    steps = parse_lines(
        [
            "2026-12-05 09:02:40.423 D: dimsefsm.trace: assoc#1 upper-layer Evt1 / AE-1: "
            "Sta1 -> Sta4\n",
            "D: dimsefsm.trace: assoc#1 PDU out A-ASSOCIATE-RQ 'A' -> 'B', 1 context\n",
            "2026-12-05 09:02:40.430 I: dimsefsm.engine: association released\n",  # not trace
            json.dumps(
                {
                    "time": "2026-12-05T09:02:40.431",
                    "message": "assoc#1 DIMSE in C-ECHO-RSP "
                    "MessageIDBeingRespondedTo=1 Status=0x0000, context 1",
                }
            ),
            json.dumps({"time": 1.5, "message": "dimsefsm.trace: assoc#1 CloseTransport"}),
            "{not json",
        ]
    )
    assert [(s.kind, s.association) for s in steps] == [
        ("transition", "assoc#1"),
        ("pdu", "assoc#1"),
        ("dimse", "assoc#1"),
        ("event", "assoc#1"),
    ]
    first, rq, rsp, close = steps
    assert (first.chart, first.text, first.states) == (
        "upper-layer",
        "Evt1 / AE-1",
        ("Sta1", "Sta4"),
    )
    assert first.time is not None and first.time.microsecond == 423000
    assert rq.outgoing and rq.time is None and rq.text.startswith("A-ASSOCIATE-RQ")
    assert not rsp.outgoing and rsp.time is not None and rsp.time.second == 40
    assert close.text == "CloseTransport"


def test_a_c_move_and_its_sub_association_side_by_side_from_both_transcripts() -> None:
    transcripts = [parse_lines(MOVESCU.open(), 0), parse_lines(QRSCP.open(), 1)]
    steps = merge(transcripts)
    assert len(steps) == sum(map(len, transcripts))
    lanes, _ = lanes_of(steps)
    # movescu's C-MOVE association (it requested), then qrscp's sub-association to
    # movescu's storage SCP (qrscp requested): each joined from both files.
    assert [lane.sides for lane in lanes] == [
        [(0, "assoc#1"), (1, "assoc#2")],
        [(1, "assoc#3"), (0, "assoc#2")],
    ]
    svg = render_svg(steps, ["movescu", "qrscp"])
    root = ElementTree.fromstring(svg)
    captions = [t.text for t in root.iter(f"{SVG}text") if t.text and " assoc#" in t.text]
    assert captions == ["movescu assoc#1", "qrscp assoc#2", "qrscp assoc#3", "movescu assoc#2"]
    messages = groups(svg, "dimse")
    # Each message once (the sender's line), in causal order, C-MOVE beside its C-STOREs.
    names = [re.search(r"C-\w+-R\w+", m)[0] for m in messages]  # type: ignore[index]
    assert names == ["C-MOVE-RQ", "C-STORE-RQ", "C-STORE-RSP", "C-MOVE-RSP", "C-MOVE-RSP"]
    transitions = groups(svg, "transition")
    assert any("c-move-scp" in t and "Connecting" in t for t in transitions)  # qrscp's side
    assert any("c-store-scp" in t for t in transitions)  # movescu's storage side
    assert any("Sta6 (association established)" in t for t in transitions)
    times = [t.text for t in root.iter(f"{SVG}text") if t.text and t.text.startswith("09:03")]
    assert times[0].endswith("+0 ms") and len(times) == len(steps) - len(
        [s for s in steps if s.kind in ("pdu", "dimse") and not s.outgoing]
    )


def test_both_ends_in_one_process_transcript_are_one_association(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="dimsefsm.trace"):
        pair = make_pair()
        echo(pair)
        pair.requestor.release()
        pair.run()
    formatter = logging.Formatter(LOG_FORMAT, LOG_DATE_FORMAT)
    lines = [formatter.format(r) for r in caplog.records if r.name == "dimsefsm.trace"]
    steps = merge([parse_lines(lines)])
    lanes, _ = lanes_of(steps)
    assert [lane.sides for lane in lanes] == [[(0, pair.requestor.label), (0, pair.acceptor.label)]]
    svg = render_svg(steps)
    pdus = [re.search(r"A-\w+-R\w|A-ASSOCIATE-AC", p)[0] for p in groups(svg, "pdu") if " A-" in p]  # type: ignore[index]
    assert pdus == ["A-ASSOCIATE-RQ", "A-ASSOCIATE-AC", "A-RELEASE-RQ", "A-RELEASE-RP"]
    assert [m.split()[1] for m in groups(svg, "dimse")] == ["C-ECHO-RQ", "C-ECHO-RSP"]


def test_html_has_the_picture_and_a_legend() -> None:
    page = render_html(parse_lines(QRSCP.open()), ["qrscp"])
    assert page.startswith("<!DOCTYPE html>") and "<svg " in page and "Solid arrows" in page


def run_trace(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dimsefsm", "trace", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_trace_sub_command_writes_svg_and_html(tmp_path: Path) -> None:
    done = run_trace(str(MOVESCU), str(QRSCP), "-o", "c-move.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    svg = (tmp_path / "c-move.svg").read_text()
    assert ElementTree.fromstring(svg).tag == f"{SVG}svg"
    assert "C-MOVE-RQ" in svg and "C-STORE-RQ" in svg
    done = run_trace(str(QRSCP), "-o", "c-move.html", cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "c-move.html").read_text().startswith("<!DOCTYPE")
    done = run_trace(str(QRSCP), cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("<svg ")


def test_trace_sub_command_refusals(tmp_path: Path) -> None:
    missing = run_trace("missing.log", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.startswith("trace: cannot read missing.log")
    assert len(missing.stderr.splitlines()) == 1
    (tmp_path / "other.log").write_text("2026-12-05 09:00:00.000 I: dimsefsm.engine: hello\n")
    empty = run_trace("other.log", cwd=tmp_path)
    assert empty.returncode == 1
    assert "no transcript lines" in empty.stderr and empty.stdout == ""
