"""Progress bars on a terminal (drawn by ``rich``), nothing at all elsewhere.

A log file, a pipe or a CI job gets no bar: carriage returns and escape
codes only garble them, and the summary line says the same at the end.
``rich`` is imported only when a bar is drawn, so a script's run pays nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class ProgressBar:
    """``update(done, total)`` moves the bar; without a terminal it does nothing."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        self._bar: Any = None
        self._task: Any = None
        self._stream = stream

    def start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self._stream),
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=self.total or None)

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=self.total or None)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def on_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def progress_bar(
    label: str, total: int, *, quiet: bool = False, stream: TextIO | None = None
) -> Iterator[ProgressBar]:
    """A bar counting up to ``total`` while the block runs, on a terminal and without -q."""
    out = stream if stream is not None else sys.stderr
    bar = ProgressBar(label, total, out)
    if not quiet and on_terminal(out):
        bar.start()
    try:
        yield bar
    finally:
        bar.stop()
