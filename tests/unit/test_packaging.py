"""Packaging: one version, the licence, the changelog, and a wheel that carries the
statecharts and the conformance statement, which ``dimsefsm charts`` and
``dimsefsm conformance`` write from the installed (here: unpacked) package."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import dimsefsm
from dimsefsm.charts import all_charts

REPO = Path(__file__).resolve().parents[2]
STATECHARTS = sorted((REPO / "statecharts").glob("*.[ds][ov][tg]"))


def test_the_version_has_one_source() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    attr = project["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "dimsefsm.__version__"
    assert version("dimsefsm") == dimsefsm.__version__


def test_licence_and_changelog() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == {"text": "MIT"}
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert f"\n## {dimsefsm.__version__}" in changelog


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("dimsefsm-*.whl")
    assert built.name.startswith(f"dimsefsm-{dimsefsm.__version__}-")
    return built


def test_the_wheel_carries_the_statecharts_and_the_conformance_statement(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for path in STATECHARTS:
            inside = f"dimsefsm/data/statecharts/{path.name}"
            assert inside in names
            assert archive.read(inside) == path.read_bytes()
        conformance = archive.read("dimsefsm/data/conformance.md")
        assert conformance == (REPO / "docs" / "conformance.md").read_bytes()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    # a .dot and an .svg for every chart the package declares
    assert len(STATECHARTS) == 2 * len(all_charts())


def run_unpacked(wheel: Path, where: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m dimsefsm ARGV`` with the wheel's package first on the path."""
    unpacked = where / "site"
    if not unpacked.exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(unpacked)
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    return subprocess.run(
        [sys.executable, "-m", "dimsefsm", *argv],
        env=env,
        cwd=where,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_charts_and_conformance_sub_commands_from_the_wheel(wheel: Path, tmp_path: Path) -> None:
    which = run_unpacked(wheel, tmp_path, "charts", "out/charts")
    assert which.returncode == 0, which.stderr
    assert which.stdout.strip() == f"{len(STATECHARTS)} files written to out/charts"
    for path in STATECHARTS:
        assert (tmp_path / "out" / "charts" / path.name).read_bytes() == path.read_bytes()
    printed = run_unpacked(wheel, tmp_path, "conformance")
    assert printed.returncode == 0
    assert printed.stdout == (REPO / "docs" / "conformance.md").read_text()
    written = run_unpacked(wheel, tmp_path, "conformance", "-o", "statement.md")
    assert written.returncode == 0
    assert (tmp_path / "statement.md").read_text() == printed.stdout
    # The package that ran is the unpacked wheel's, not the checkout's.
    code = "import dimsefsm; print(dimsefsm.__file__)"
    shown = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "site")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.startswith(str(tmp_path / "site"))


def test_charts_into_a_path_that_cannot_be_a_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "dimsefsm", "charts", str(blocker / "charts")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("charts: cannot create ")
    assert len(done.stderr.splitlines()) == 1
