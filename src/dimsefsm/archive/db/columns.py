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

NUL is a character of no DICOM text (PS3.5 6.2: only padding), and PostgreSQL
text cannot hold it: a column value with NUL inside is malformed (NULL), and
an identity value with one makes the header not indexable (``ValueError``),
on every back end alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
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
_IDENTITY_TAGS: Final = frozenset(spec.tag for spec in IDENTITY)
_PLAIN_CHARSETS: Final = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1"}
_PLAIN_CHARSETS_UTF8: Final = {"ISO_IR 192": "utf-8"}


def _plain_encoding(header: Dataset) -> str | None:
    """The codec of a single-byte or UTF-8 character set; None for others (ISO 2022...)."""
    if _CHARSET not in header:
        return "latin-1"
    item = header.get_item(_CHARSET)
    if isinstance(item, RawDataElement):
        raw = bytes(item.value or b"").decode("latin-1").strip(" \0")
    else:
        raw = "" if item.value is None else str(item.value).strip()
    return _PLAIN_CHARSETS.get(raw) or _PLAIN_CHARSETS_UTF8.get(raw)


def _texts(header: Dataset) -> dict[int, str | None]:
    """The column attributes' text, values joined by ``\\``, as pydicom would decode them.

    Raw elements of a plain character set are decoded here, straight from
    their bytes (values split and right-stripped like pydicom's): filing an
    instance must not cost a pydicom conversion per attribute.  Anything else
    goes through pydicom, in a copy so ``header`` stays raw.
    """
    encoding = _plain_encoding(header)
    texts: dict[int, str | None] = {}
    slow: list[int] = []
    for tag in _ALL_TAGS:
        if tag not in header:
            texts[tag] = None
            continue
        item = header.get_item(tag)
        if encoding is not None and isinstance(item, RawDataElement):
            raw = bytes(item.value or b"").decode(encoding, "replace")
            values = [value.rstrip("\0 ") for value in raw.split("\\")]
            texts[tag] = "\\".join(value for value in values if value) or None
        else:
            slow.append(tag)
    if slow:
        copy = _decoded(header, slow)
        for tag in slow:
            elem = copy.get(tag)
            texts[tag] = _text(elem.value) if elem is not None else None
    for tag, value in texts.items():
        if value is not None and "\0" in value:
            if tag in _IDENTITY_TAGS:
                raise ValueError(f"{SPECS[tag].column} holds a NUL character")
            texts[tag] = None
    return texts


def level_values(header: Dataset) -> dict[str, dict[str, str | None]]:
    """Per level, the non-identity column values of an instance's header."""
    texts = _texts(header)
    return {
        level: {spec.column: normalise(spec.kind, texts[spec.tag]) for spec in specs}
        for level, specs in LEVEL_COLUMNS.items()
    }


def identity_values(header: Mapping[int, Any] | Dataset) -> tuple[str, str, str, str]:
    """(Patient ID, Study, Series, SOP Instance UID) as filed: absent ones are ``""``."""
    assert isinstance(header, Dataset)
    texts = _texts(header)
    found = [texts[spec.tag] or "" for spec in IDENTITY]
    return found[0], found[1], found[2], found[3]


LevelValues = dict[str, dict[str, str | None]]
"""Per level name, the column values of an instance."""


def columns_of(
    header: Dataset,
) -> tuple[tuple[str, str, str, str], dict[str, dict[str, str | None]]]:
    """:func:`identity_values` and :func:`level_values` from one pass over the header."""
    texts = _texts(header)
    found = [texts[spec.tag] or "" for spec in IDENTITY]
    levels = {
        level: {spec.column: normalise(spec.kind, texts[spec.tag]) for spec in specs}
        for level, specs in LEVEL_COLUMNS.items()
    }
    return (found[0], found[1], found[2], found[3]), levels
