"""Which attributes are columns of the index, and the normalised form they are kept in.

A column holds what a query compares, already normalised the way
``qr.matching`` normalises a candidate: a Person Name its alphabetic group
without trailing ``^`` or spaces (PS3.4 C.2.2.2.1, the matcher's rule), a
date ``YYYYMMDD``, a time ``HHMMSSffffff``; absent, empty or malformed values
are NULL (they fail every non-universal key, as in the matcher).  Only
single-valued (VM 1) attributes are columns, so an SQL comparison is exactly
the matcher's; every other key is matched by the matcher on the header kept
with each instance.

The identity columns (Patient ID and the three UIDs) are NOT NULL: an absent
Patient ID is the empty string, as the filing rule compares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue

from dimsefsm.qr.matching import _da, _pn_groups, _tm

__all__ = [
    "IDENTITY",
    "LEVEL_COLUMNS",
    "SPECS",
    "ColumnSpec",
    "identity_values",
    "level_values",
    "normalise",
]

_CHARSET: Final = 0x00080005


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    tag: int
    level: str  # PATIENT, STUDY, SERIES or IMAGE: the table holding it
    column: str
    kind: str  # "text", "pn", "da", "tm", "uid"
    indexed: bool = False
    identity: bool = False


def _spec(keyword: str, level: str, column: str, kind: str, **flags: bool) -> ColumnSpec:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return ColumnSpec(tag, level, column, kind, **flags)


IDENTITY: Final = (
    _spec("PatientID", "PATIENT", "patient_id", "text", identity=True),
    _spec("StudyInstanceUID", "STUDY", "study_uid", "uid", identity=True),
    _spec("SeriesInstanceUID", "SERIES", "series_uid", "uid", identity=True),
    _spec("SOPInstanceUID", "IMAGE", "sop_uid", "uid", identity=True),
)

LEVEL_COLUMNS: Final[dict[str, tuple[ColumnSpec, ...]]] = {
    "PATIENT": (
        _spec("PatientName", "PATIENT", "patient_name", "pn", indexed=True),
        _spec("PatientBirthDate", "PATIENT", "patient_birth_date", "da"),
        _spec("PatientSex", "PATIENT", "patient_sex", "text"),
        _spec("IssuerOfPatientID", "PATIENT", "issuer_of_patient_id", "text"),
    ),
    "STUDY": (
        _spec("StudyDate", "STUDY", "study_date", "da", indexed=True),
        _spec("StudyTime", "STUDY", "study_time", "tm"),
        _spec("AccessionNumber", "STUDY", "accession_number", "text", indexed=True),
        _spec("StudyID", "STUDY", "study_id", "text"),
        _spec("StudyDescription", "STUDY", "study_description", "text"),
        _spec("ReferringPhysicianName", "STUDY", "referring_physician_name", "pn"),
    ),
    "SERIES": (
        _spec("Modality", "SERIES", "modality", "text", indexed=True),
        _spec("SeriesDate", "SERIES", "series_date", "da"),
        _spec("SeriesTime", "SERIES", "series_time", "tm"),
        _spec("SeriesDescription", "SERIES", "series_description", "text"),
        _spec("BodyPartExamined", "SERIES", "body_part_examined", "text"),
    ),
    "IMAGE": (
        _spec("SOPClassUID", "IMAGE", "sop_class_uid", "uid", indexed=True),
        _spec("ContentDate", "IMAGE", "content_date", "da"),
        _spec("ContentTime", "IMAGE", "content_time", "tm"),
    ),
}

SPECS: Final[dict[int, ColumnSpec]] = {
    spec.tag: spec for spec in (*IDENTITY, *(s for v in LEVEL_COLUMNS.values() for s in v))
}
"""Every column by the tag it holds."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, MultiValue | list | tuple):
        texts = [str(v) for v in value if v is not None and str(v) != ""]
        return "\\".join(texts) if texts else None
    text = value.decode("latin-1").strip(" \0") if isinstance(value, bytes) else str(value)
    return text or None


def normalise(kind: str, text: str | None) -> str | None:
    """The column form of a candidate's (decoded, joined) value."""
    if text is None:
        return None
    if kind == "pn":
        return _pn_groups(text, False)[0] or None
    if kind == "da":
        return _da(text)
    if kind == "tm":
        return _tm(text, False)
    if kind == "uid":
        return text.strip("\0 ") or None
    return text


def _decoded(header: Dataset, tags: list[int]) -> Dataset:
    """The attributes decoded in a copy, so ``header`` stays raw (as read, cheap to encode)."""
    copy = Dataset()
    for tag in (*tags, _CHARSET):
        if tag in header:
            copy[tag] = header.get_item(tag)
    return copy


_ALL_TAGS: Final = list(SPECS)


def level_values(header: Dataset) -> dict[str, dict[str, str | None]]:
    """Per level, the non-identity column values of an instance's header."""
    copy = _decoded(header, _ALL_TAGS)
    result: dict[str, dict[str, str | None]] = {}
    for level, specs in LEVEL_COLUMNS.items():
        values: dict[str, str | None] = {}
        for spec in specs:
            elem = copy.get(spec.tag)
            values[spec.column] = normalise(spec.kind, _text(elem.value)) if elem else None
        result[level] = values
    return result


def identity_values(header: Mapping[int, Any] | Dataset) -> tuple[str, str, str, str]:
    """(Patient ID, Study, Series, SOP Instance UID) as filed: absent ones are ``""``."""
    assert isinstance(header, Dataset)
    copy = _decoded(header, [spec.tag for spec in IDENTITY])
    texts = []
    for spec in IDENTITY:
        elem = copy.get(spec.tag)
        text = _text(elem.value) if elem is not None else None
        texts.append((text or "").strip("\0 ") if spec.kind == "uid" else text or "")
    return texts[0], texts[1], texts[2], texts[3]
