"""A one-line progress bar, drawn only on a terminal."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 0)
        self.label = label
        self.stream = stream
        self.enabled = stream.isatty() and total > 0
        self.done = 0

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = total
        self.done = done
        if not self.enabled or not self.total:
            return
        width = 30
        filled = int(width * min(done, self.total) / self.total)
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{self.total}"
        )
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
