"""The DICOM conformance statement (PS3.2 Annex N), generated from what the code declares.

A hand-written conformance statement drifts from the implementation the day
after it is written.  Here every table comes from the source of the
behaviour itself; :mod:`.statement` lists the sources.  ``make statecharts``
writes ``docs/conformance.md`` (shipped as ``dimsefsm/data/conformance.md``,
printed by ``dimsefsm conformance``); a test fails when the committed file
is stale.

Run ``python -m dimsefsm.conformance [FILE]`` (stdout without FILE).
"""

from __future__ import annotations

import sys
from pathlib import Path

from dimsefsm.conformance.statement import render

__all__ = ["main", "render"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args:
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
