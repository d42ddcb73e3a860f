"""The text attributes outside the columns, per series, so SQL can narrow a key to few rows.

A key that is no column (Operators' Name, Protocol Name, Institution Name
...) is decided by the matcher on the headers kept in the index: one per
series for a series key, one per instance for an instance key (or one of no
query level) in a study query, ~10 s on 100,000 instances.  So each series also
keeps the distinct values its instances carry of every public text attribute
that is no column (``series_attribute``: series, tag, value): a series
attribute is one row per series, an instance attribute one per distinct
value, a few hundred rows a series instead of its headers.

A key then becomes a necessary condition in SQL: the entity must hold a
series with a value of that tag containing every literal piece of the key
(the text between its ``*``/``?`` wild cards and, for a name, its ``^``/``=``
separators).  Whatever the matcher accepts satisfies it (the stored text is
the raw value, of which the matcher's decoded one is a part), so nothing is
lost, and the matcher still decides exactly, on the headers of the few rows
left.  Containment rather than equality keeps the condition sound for every
rule the matcher applies to text (trailing ``^`` in names, ``SMITH^*``
accepting ``SMITH``, several values in one candidate).

Only attributes whose dictionary VR is text are kept (the rule depends on
the tag alone, so a key is narrowed exactly when every instance holding its
tag has a row for it); numbers, dates, times, sequences and private
attributes are left to the matcher as before.  A value longer than
:data:`VALUE_LENGTH` characters keeps its start and a ``truncated`` mark,
which passes every condition.  Rows are never deleted: a series keeps the
values of an instance stored again elsewhere, which only widens the
condition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from pydicom import Dataset
from pydicom.datadict import DicomDictionary
from pydicom.dataelem import DataElement, RawDataElement

from dimsefsm.archive.db.columns import SPECS
from dimsefsm.archive.db.columns import _plain_encoding as plain_encoding
from dimsefsm.qr.matching import WILDCARD_VRS, _is_control, _text, _values, is_universal

__all__ = ["KEPT_VRS", "VALUE_LENGTH", "KeyPieces", "attribute_rows", "is_kept", "key_pieces"]

KEPT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UR", "UT"}
)
"""Text VRs: a candidate's raw value contains the text the matcher compares."""

VALUE_LENGTH: Final = 256
"""Characters kept of a value (a btree key on PostgreSQL holds at most ~2,700 bytes)."""

_PIXEL_GROUP: Final = 0x7FE0
_PN_SEPARATORS: Final = re.compile(r"[*?^= ]+")
_WILDCARDS: Final = re.compile(r"[*?]+")
_EMPTY_VALUE_KEY: Final = '""'


def is_kept(tag: int) -> bool:
    """Whether instances keep ``tag`` in ``series_attribute``: public, text, and no column."""
    if tag in SPECS or _is_control(tag) or tag >> 16 in (_PIXEL_GROUP, 0x0002) or tag >> 16 & 1:
        return False
    entry = DicomDictionary.get(tag)
    return entry is not None and entry[0] in KEPT_VRS


AttributeRow = tuple[int, str, int]
"""(tag, value or its first :data:`VALUE_LENGTH` characters, 1 if cut there else 0)."""


def attribute_rows(header: Dataset) -> list[AttributeRow]:
    """The kept attributes of an instance's header with a non-empty value.

    Raw elements of a plain character set are decoded from their bytes, as
    the columns are; anything else through pydicom.
    """
    encoding = plain_encoding(header)
    rows: list[AttributeRow] = []
    for tag in header.keys():  # noqa: SIM118 - iterating a Dataset decodes its elements
        if not is_kept(tag):
            continue
        item = header.get_item(tag)
        text: str | None
        if encoding is not None and isinstance(item, RawDataElement):
            raw = bytes(item.value or b"").decode(encoding, "replace")
            text = "\\".join(value.rstrip("\0 ") for value in raw.split("\\")).strip("\\")
        else:
            elem = header[tag]
            text = "\\".join(_text(value) for value in _values(elem.value))
        if not text or "\0" in text:
            continue  # empty: fails every key the condition narrows; NUL: not storable
        if len(text) > VALUE_LENGTH:
            rows.append((tag, text[:VALUE_LENGTH], 1))
        else:
            rows.append((tag, text, 0))
    return rows


def _pieces(vr: str, text: str) -> list[str]:
    """The literal parts of one key value that a matching candidate's raw text contains."""
    if vr == "PN":
        parts = _PN_SEPARATORS.split(text)
    elif vr in WILDCARD_VRS:
        parts = _WILDCARDS.split(text)
    elif vr == "UI":
        parts = [text.strip("\0 ")]
    else:
        parts = [text]
    return [part for part in parts if part]


@dataclass(frozen=True, slots=True)
class KeyPieces:
    """What a ``series_attribute`` row of a matching instance contains, for one key."""

    tag: int
    per_value: tuple[tuple[str, ...], ...]
    """The literal pieces of each key value, all of which a matching value contains."""
    any_value: bool
    """A UID list: one value's pieces suffice; other multiple values must all be matched."""


def key_pieces(elem: DataElement) -> KeyPieces | None:
    """The necessary condition of one key, or None when it cannot be narrowed this way.

    None for a tag that is not kept, a non-text VR, empty value matching, a
    universal key or one of wild cards only.
    """
    tag = int(elem.tag)
    vr = elem.VR.split(" or ")[0]
    if not is_kept(tag) or vr not in KEPT_VRS or is_universal(elem):
        return None
    texts = [_text(v) for v in _values(elem.value)]
    if not texts or _EMPTY_VALUE_KEY in texts:
        return None
    per_value = tuple(tuple(_pieces(vr, text)) for text in texts)
    if not all(per_value):
        return None  # e.g. "*?": no literal to narrow by
    return KeyPieces(tag, per_value, vr == "UI")
