"""findscu's match table on a terminal, drawn by ``rich``; a pipe keeps the plain table.

Same columns, widths and cells as :class:`~dimsefsm.cli.output.MatchTable`
(so a script reading the plain table and a person reading this one see the
same values), with a bold header and each row printed the moment its match
arrives: one borderless rich table per row, all with the same fixed widths,
so the rows line up without waiting for the last match.  Cells are passed as
``Text``, never as markup: a peer's ``[bold]`` stays text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from pydicom.dataset import Dataset

from dimsefsm.cli.keys import KeyPath
from dimsefsm.cli.output import DEFAULT_MAX_WIDTH, MatchTable, cell_text


class TerminalMatchTable(MatchTable):
    """A :class:`MatchTable` whose lines are drawn by rich."""

    def __init__(
        self,
        columns: Sequence[KeyPath],
        stream: TextIO,
        max_width: int = DEFAULT_MAX_WIDTH,
    ) -> None:
        super().__init__(columns, stream, max_width)
        from rich.console import Console

        console = Console(file=stream, highlight=False)
        # Never narrower than the table: rich would squeeze the columns (and drop the
        # row number) rather than let a wide row wrap, as it does in the plain table.
        needed = 4 + sum(self.widths) + 2 * (len(self.widths) + 1)
        self._console = Console(
            file=stream, highlight=False, width=max(console.width, needed), force_terminal=True
        )

    def write_header(self) -> None:
        self._console.print(self._table(show_header=True))

    def add(self, ds: Dataset) -> None:
        if self.rows == 0:
            self.write_header()
        self.rows += 1
        table = self._table(show_header=False)
        table.add_row(*self._texts([str(self.rows), *(cell_text(ds, k) for k in self.columns)]))
        self._console.print(table)

    def _table(self, *, show_header: bool) -> Any:
        from rich import box
        from rich.table import Table

        table = Table(
            box=box.SIMPLE_HEAD,  # only the line under the header: rows stay bare
            show_header=show_header,
            header_style="bold",
            show_edge=False,
            pad_edge=False,
            padding=(0, 1),
        )
        table.add_column("#", justify="right", width=4, no_wrap=True)
        for header, width in zip(self.headers, self.widths, strict=True):
            table.add_column(header, width=width, no_wrap=True, overflow="ellipsis")
        return table

    @staticmethod
    def _texts(cells: Sequence[str]) -> list[Any]:
        from rich.text import Text

        return [Text(cell) for cell in cells]
