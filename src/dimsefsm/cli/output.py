"""How query matches and the final status reach the user: JSON lines or a table.

JSON output is the DICOM JSON model (PS3.18 F.2), one object per line, so other
tools (``jq``, ``Dataset.from_json``) read it without knowing this program. The
table is for people: one row per match, printed as each match arrives so a long
query (or ``--cancel N``) shows progress, with columns that follow the user's
query keys. Responses come from a remote peer, so every cell is stripped of
control characters before it reaches a terminal.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Final, TextIO

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from dimsefsm.cli.keys import QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET, KeyPath, PathNode
from dimsefsm.status import Service, lookup

ELLIPSIS: Final = "..."
DEFAULT_MAX_WIDTH: Final = 24
MIN_WIDTH: Final = 4
COLUMN_GAP: Final = "  "
NUMBER_WIDTH: Final = 4

_NOT_COLUMNS: Final = frozenset({QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET})
"""Request scaffolding: the same in every match, so a column would only take room."""

_VR_WIDTH: Final[dict[str, int]] = {
    "AE": 16,
    "AS": 4,
    "AT": 11,
    "CS": 16,
    "DA": 8,
    "DS": 16,
    "DT": 26,
    "FD": 16,
    "FL": 12,
    "IS": 12,
    "SL": 11,
    "SQ": 10,
    "SS": 6,
    "SV": 20,
    "TM": 13,
    "UI": 64,
    "UL": 10,
    "US": 5,
    "UV": 20,
}
"""Typical printed width per VR (PS3.5 Table 6.2-1 maxima, shortened for long texts)."""
_DEFAULT_WIDTH: Final = 64
_UNCAPPED_VRS: Final = frozenset({"UI"})
"""A cut UID is useless (it is what a user copies into the next get or move), and 64 is its
maximum length, so UID columns are never narrowed to ``max_width``."""
_BULK_THRESHOLD: Final = 1024
_STRING_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM"}
    | {"UC", "UI", "UR", "UT"}
)
_CONTROL_TO_SPACE: Final = {code: " " for code in (0x09, 0x0A, 0x0B, 0x0C, 0x0D)}


# -- JSON ------------------------------------------------------------------------------------


def format_match_json(ds: Dataset) -> str:
    """One match as one line of DICOM JSON (tags sorted, no newline inside)."""
    return json.dumps(json_model(ds), sort_keys=True, separators=(",", ":"))


def json_model(ds: Dataset) -> dict[str, Any]:
    """``Dataset.to_json_dict`` element by element, so one bad value costs only itself.

    A peer's ``IS`` of ``"abc"`` makes pydicom's whole-data-set conversion fail,
    and its ``suppress_invalid_tags`` drops every element with a validation
    warning. Here an element that cannot be written with its VR is kept as
    ``UN`` with its bytes inline (PS3.18 F.2.7 allows any VR there); only an
    element that was never bytes (built in memory) and still fails is left out.
    """
    model: dict[str, Any] = {}
    for tag in sorted(ds.keys()):
        raw = ds.get_item(tag)
        try:
            element = ds[tag]
            if element.VR == "SQ":
                items = element.value or []
                model[f"{int(tag):08X}"] = {"vr": "SQ", "Value": [json_model(i) for i in items]}
            else:
                model[f"{int(tag):08X}"] = element.to_json_dict(None, _BULK_THRESHOLD)
        except Exception:  # a peer's bad value must not end the output
            fallback = _json_raw(raw)
            if fallback is not None:
                model[f"{int(tag):08X}"] = fallback
    return model


def _json_raw(element: DataElement | RawDataElement | None) -> dict[str, Any] | None:
    if not isinstance(element, RawDataElement) or not element.is_little_endian:
        return None
    raw = element.value or b""
    return {"vr": "UN", "InlineBinary": base64.b64encode(raw).decode("ascii")}


# -- table -----------------------------------------------------------------------------------


def table_columns(identifier: Dataset, keys: Iterable[KeyPath] = ()) -> list[KeyPath]:
    """Columns for a query: the ``-k`` keys in the order given, then what only a query file had.

    A query file's attributes come after, in tag order; a sequence from the
    file is one column showing its item count.
    """
    columns: list[KeyPath] = []
    seen: set[tuple[PathNode, ...]] = set()
    covered: set[int] = set()
    for key in keys:
        if key.nodes[0].tag in _NOT_COLUMNS or key.nodes in seen:
            continue
        seen.add(key.nodes)
        covered.add(key.nodes[0].tag)
        columns.append(key)
    for element in identifier:
        tag = int(element.tag)
        if tag in covered or tag in _NOT_COLUMNS:
            continue
        node = PathNode(tag, element.VR)
        columns.append(KeyPath((node,), None, None, node.name))
    return columns


class MatchTable:
    """Prints matches as aligned rows; the header comes with the first row.

    Widths are fixed up front (from the VR and the header, capped at
    ``max_width``) rather than measured over all matches, so rows can be
    printed the moment they arrive; longer values end in ``...``.
    """

    def __init__(
        self,
        columns: Sequence[KeyPath],
        stream: TextIO | None = None,
        max_width: int = DEFAULT_MAX_WIDTH,
    ) -> None:
        self.columns = list(columns)
        self.stream = stream if stream is not None else sys.stdout
        self.max_width = max(max_width, MIN_WIDTH)
        self.headers = _headers(self.columns)
        self.widths = [
            _column_width(key, header, self.max_width)
            for key, header in zip(self.columns, self.headers, strict=True)
        ]
        self.rows = 0

    def write_header(self) -> None:
        self._write_line(["#", *self.headers])
        self._write_line(["-" * NUMBER_WIDTH, *("-" * width for width in self.widths)])

    def add(self, ds: Dataset) -> None:
        """Print one match (and the header first if this is the first)."""
        if self.rows == 0:
            self.write_header()
        self.rows += 1
        cells = [str(self.rows), *(cell_text(ds, key) for key in self.columns)]
        self._write_line(cells)
        self.stream.flush()

    def _write_line(self, cells: Sequence[str]) -> None:
        parts = [cells[0].rjust(NUMBER_WIDTH)]
        for cell, width in zip(cells[1:], self.widths, strict=True):
            parts.append(truncate(cell, width).ljust(width))
        self.stream.write(COLUMN_GAP.join(parts).rstrip() + "\n")


def _column_width(key: KeyPath, header: str, max_width: int) -> int:
    width = max(len(header), _VR_WIDTH.get(key.vr, _DEFAULT_WIDTH))
    return width if key.vr in _UNCAPPED_VRS else min(max_width, width)


def _headers(columns: Sequence[KeyPath]) -> list[str]:
    """Leaf keywords, or the whole path where two columns would share a keyword."""
    keywords = [key.keyword for key in columns]
    return [key.keyword if keywords.count(key.keyword) == 1 else key.label for key in columns]


def cell_text(ds: Dataset, key: KeyPath) -> str:
    """The value at ``key``'s path in a match, as one printable line ('' when absent)."""
    current = ds
    for node in key.nodes[:-1]:
        item = _item(current, node)
        if item is None:
            return ""
        current = item
    leaf = key.leaf
    if leaf.item is not None or leaf.vr == "SQ":
        items = _sequence(current, leaf.tag)
        if items is None:
            return ""
        return f"[{len(items)} item{'' if len(items) == 1 else 's'}]"
    return _printable(_value_text(current, leaf.tag))


def truncate(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[: width - len(ELLIPSIS)] + ELLIPSIS


def _item(ds: Dataset, node: PathNode) -> Dataset | None:
    items = _sequence(ds, node.tag)
    if items is None or node.item is None or node.item >= len(items):
        return None
    item: Dataset = items[node.item]
    return item


def _sequence(ds: Dataset, tag: int) -> Sequence[Dataset] | None:
    try:
        element = ds.get(tag)
    except Exception:  # a peer's bad value must not end the output
        return None
    if element is None or element.VR != "SQ":
        return None
    return element.value or []


def _value_text(ds: Dataset, tag: int) -> str:
    try:
        element = ds.get(tag)
    except Exception:  # a peer's bad value must not end the output
        return _raw_text(ds.get_item(tag))
    if element is None:
        return ""
    value = element.value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join("" if part is None else str(part) for part in value)
    return str(value)


def _raw_text(element: DataElement | RawDataElement | None) -> str:
    """A text value pydicom could not convert still shows, byte for byte."""
    if not isinstance(element, RawDataElement) or element.value is None:
        return ""
    if element.VR in _STRING_VRS:
        return element.value.decode("latin-1").rstrip(" \0")
    return f"<{len(element.value)} bytes>"


def _printable(text: str) -> str:
    """No terminal escapes or line breaks from a peer's data reach the screen."""
    text = text.translate(_CONTROL_TO_SPACE)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else "?" for char in text)


# -- status ----------------------------------------------------------------------------------


def describe_status(code: int, service: Service = Service.QR_FIND) -> str:
    """``0x0000 Success``, ``0xA700 Failure: Refused: out of resources``, ...

    Same facts as ``status.describe``, without repeating the class when the
    table's text is just the class name ("Success: Success").
    """
    category, text = lookup(code, service)
    if text == category.value:
        return f"0x{code:04X} {text}"
    return f"0x{code:04X} {category.value}: {text}"


def status_line(status: int, description: str | None, n_matches: int) -> str:
    description = description if description is not None else describe_status(status)
    if not description.startswith(f"0x{status:04X}"):
        description = f"0x{status:04X} {description}"
    return f"Final status: {description}; {n_matches} match{'' if n_matches == 1 else 'es'}"


def print_status_line(
    status: int,
    description: str | None,
    n_matches: int,
    stream: TextIO | None = None,
) -> None:
    """The last line of a query; with ``--json`` pass ``sys.stderr`` to keep stdout pure JSON."""
    out = stream if stream is not None else sys.stdout
    out.write(status_line(status, description, n_matches) + "\n")
    out.flush()
