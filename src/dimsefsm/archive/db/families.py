"""Queries over the single-level models' instances (``family_instance``).

A Hanging Protocol, Color Palette, Defined Procedure Protocol or Implant
Template instance has no patient, study or series (``qr.flat_models``): its
row holds the model, the SOP class, the UID, the path and the header.  An
archive holds few of them (tens, hundreds), so a C-FIND narrows in SQL on what
is a column (the model, SOP Instance UID and SOP Class UID lists) and leaves
every other key to the matcher, run on the headers kept with the rows: wild
cards, date-time ranges and sequence matching (the Hanging Protocol User
Identification Code Sequence, the Defined Procedure Protocol's Model
Specification Sequence ...) are matched exactly as ``qr.matching`` defines.

A C-GET or C-MOVE names SOP Instance UIDs only (PS3.4 U.4.2, HH.4.2 ...): the
statement selects those of the model, other keys are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pydicom import Dataset
from sqlalchemy import ColumnElement, Select, select

from dimsefsm.archive.db.schema import family_instance
from dimsefsm.qr.matching import Matcher, _is_control, _text, _values, compile_query, is_universal

__all__ = ["FamilyFind", "compile_family_find", "family_retrieve", "uid_list"]

_SOP_CLASS: Final = 0x00080016
_SOP_INSTANCE: Final = 0x00080018
_COLUMNS: Final = {
    _SOP_CLASS: family_instance.c.sop_class_uid,
    _SOP_INSTANCE: family_instance.c.sop_uid,
}


@dataclass(frozen=True)
class FamilyFind:
    statement: Select[Any]
    """Columns: ``header``, ``path``; one row per instance of the model, oldest first."""
    residual: Matcher | None
    """The keys SQL does not decide, matched on each row's header."""


def uid_list(identifier: Dataset, tag: int) -> list[str] | None:
    """The UIDs a UI key lists; None when the key is absent or universal."""
    elem = identifier.get(tag)
    if elem is None or is_universal(elem):
        return None
    return sorted({_text(value).strip("\0 ") for value in _values(elem.value)})


def compile_family_find(identifier: Dataset, model: str) -> FamilyFind:
    conditions: list[ColumnElement[bool]] = [family_instance.c.model == model]
    residual = Dataset()
    for elem in identifier:
        tag = int(elem.tag)
        if _is_control(tag):
            continue
        if tag in _COLUMNS and elem.VR == "UI":
            uids = uid_list(identifier, tag)
            if uids is not None:
                conditions.append(_COLUMNS[tag].in_(uids))
            continue
        if not is_universal(elem):
            residual.add(elem)
    for control in ("SpecificCharacterSet", "TimezoneOffsetFromUTC"):
        if control in identifier and len(residual):
            residual[control] = identifier[control]
    matcher = compile_query(residual) if len(residual) else None
    statement = (
        select(family_instance.c.header, family_instance.c.path)
        .where(*conditions)
        .order_by(family_instance.c.pk)
    )
    return FamilyFind(statement, None if matcher is None or matcher.is_universal else matcher)


def family_retrieve(identifier: Dataset, model: str) -> Select[Any]:
    """The paths of the model's instances the retrieve identifier's SOP Instance UIDs name."""
    uids = uid_list(identifier, _SOP_INSTANCE) or []
    return (
        select(family_instance.c.path)
        .where(family_instance.c.model == model, family_instance.c.sop_uid.in_(uids))
        .order_by(family_instance.c.pk)
    )
