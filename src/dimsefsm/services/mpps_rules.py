"""The attribute rules of the Modality Performed Procedure Step SOP Class (PS3.4 F.7.2).

Table F.7.2-1 says, per attribute, what an N-CREATE must carry, what an
N-SET may change and what must hold before the step is COMPLETED or
DISCONTINUED.  This module holds those three columns as data and checks an
attribute list against them; it decides nothing: each check returns a
:class:`Finding` (or None), and the MPPS chart's guards read the findings to
choose the transition and so the status (``services.mpps``).

Kept on purpose:

- N-CREATE: the Type 1 attributes (usage 1/1) must be present (else 0x0120
  Missing attribute) and have a value (else 0x0121 Missing attribute value),
  at the top level and inside the items of the sequences that have Type 1
  attributes.  Type 2 attributes (2/2) are accepted when absent: modalities
  (and pynetdicom's documented example) leave some out, and refusing the
  procedure step for an empty Study ID helps nobody.
- N-SET: an attribute the table marks "Not allowed" (the patient, the
  scheduled step, the station, the start, the modality: what identifies the
  step) is refused with 0x0105 and its tag in the Attribute Identifier List,
  as dcm4che's MPPS SCP does; a Performed Procedure Step Status other than
  IN PROGRESS, COMPLETED, DISCONTINUED is 0x0106.
- Final state (the notes of Table F.7.2-1): End Date, End Time and a
  Performed Series Sequence with at least one item (each with Series Instance
  UID and Protocol Name) before COMPLETED or DISCONTINUED, else 0x0110 with
  the missing attributes named in the Error Comment.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.tag import BaseTag, Tag

IN_PROGRESS: Final = "IN PROGRESS"
COMPLETED: Final = "COMPLETED"
DISCONTINUED: Final = "DISCONTINUED"
STATUSES: Final = (IN_PROGRESS, COMPLETED, DISCONTINUED)

STATUS_TAG: Final = Tag(0x0040, 0x0252)  # Performed Procedure Step Status

NO_LONGER_UPDATABLE: Final = "Performed Procedure Step Object may no longer be updated"
"""Table F.7.2-2: the Error Comment of an N-SET on a step that is no longer IN PROGRESS."""
NO_LONGER_UPDATABLE_ID: Final = 0xA710
"""Table F.7.2-2: its Error ID."""

SCHEDULED_STEP_ATTRIBUTES = Tag(0x0040, 0x0270)
PERFORMED_SERIES = Tag(0x0040, 0x0340)

CREATE_TYPE_1: Final[tuple[BaseTag, ...]] = tuple(
    Tag(t)
    for t in (
        0x00400270,  # Scheduled Step Attributes Sequence
        0x00400253,  # Performed Procedure Step ID
        0x00400241,  # Performed Station AE Title
        0x00400244,  # Performed Procedure Step Start Date
        0x00400245,  # Performed Procedure Step Start Time
        0x00400252,  # Performed Procedure Step Status
        0x00080060,  # Modality
    )
)
"""N-CREATE usage 1/1 at the top level of the attribute list."""

ITEM_TYPE_1: Final[dict[BaseTag, tuple[BaseTag, ...]]] = {
    SCHEDULED_STEP_ATTRIBUTES: (Tag(0x0020000D),),  # > Study Instance UID
    PERFORMED_SERIES: (Tag(0x0020000E), Tag(0x00181030)),  # > Series Instance UID, Protocol Name
}
"""Type 1 attributes inside each item of these sequences (N-CREATE and N-SET)."""

SET_NOT_ALLOWED: Final[frozenset[BaseTag]] = frozenset(
    Tag(t)
    for t in (
        0x00080016,  # SOP Class UID: the step's identity
        0x00080018,  # SOP Instance UID
        0x00400270,  # Scheduled Step Attributes Sequence
        0x00100010,  # Patient's Name
        0x00100020,  # Patient ID
        0x00100021,  # Issuer of Patient ID
        0x00100024,  # Issuer of Patient ID Qualifiers Sequence
        0x00100030,  # Patient's Birth Date
        0x00100040,  # Patient's Sex
        0x00081120,  # Referenced Patient Sequence
        0x00380010,  # Admission ID
        0x00380014,  # Issuer of Admission ID Sequence
        0x00380060,  # Service Episode ID
        0x00380062,  # Service Episode Description
        0x00380064,  # Issuer of Service Episode ID Sequence
        0x00400253,  # Performed Procedure Step ID
        0x00400241,  # Performed Station AE Title
        0x00400242,  # Performed Station Name
        0x00400243,  # Performed Location
        0x00400244,  # Performed Procedure Step Start Date
        0x00400245,  # Performed Procedure Step Start Time
        0x00080060,  # Modality
        0x00200010,  # Study ID
    )
)
"""N-SET usage "Not allowed" in Table F.7.2-1."""

FINAL_TYPE_1: Final[tuple[BaseTag, ...]] = (
    Tag(0x00400250),  # Performed Procedure Step End Date
    Tag(0x00400251),  # Performed Procedure Step End Time
    PERFORMED_SERIES,  # at least one item (note 2 of Table F.7.2-1)
)
"""What must have a value once the step is COMPLETED or DISCONTINUED."""


@dataclass(frozen=True)
class Finding:
    """What is wrong with an attribute list: the tags at fault and a sentence for ErrorComment."""

    tags: tuple[BaseTag, ...]
    comment: str
    paths: tuple[str, ...] = field(default=())


def name(tag: int) -> str:
    """An attribute's keyword, or ``(gggg,eeee)`` for one the dictionary does not know."""
    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _empty(dataset: Dataset, tag: BaseTag) -> bool:
    """True when the element has no value (zero length, or a sequence without items)."""
    value = dataset[tag].value
    if value is None:
        return True
    if isinstance(value, str | bytes):
        return not value.strip()
    return hasattr(value, "__len__") and len(value) == 0


def _item_faults(dataset: Dataset, *, absent: bool) -> Iterator[tuple[BaseTag, str]]:
    """(sequence tag, path) of each Type 1 item attribute absent (or, ``absent=False``, empty)."""
    for sequence_tag, required in ITEM_TYPE_1.items():
        if sequence_tag not in dataset or dataset[sequence_tag].VR != "SQ":
            continue
        for index, item in enumerate(dataset[sequence_tag].value or ()):
            for tag in required:
                fault = tag not in item if absent else tag in item and _empty(item, tag)
                if fault:
                    yield sequence_tag, f"{name(sequence_tag)}[{index}].{name(tag)}"


def _finding(faults: Iterable[tuple[BaseTag, str]], what: str) -> Finding | None:
    faults = list(faults)
    if not faults:
        return None
    tags = tuple(sorted(set(tag for tag, _ in faults)))
    paths = tuple(path for _, path in faults)
    return Finding(tags, f"{what}: {', '.join(paths)}", paths)


def missing_attributes(attributes: Dataset) -> Finding | None:
    """N-CREATE: Type 1 attributes that are absent (0x0120)."""
    top = ((tag, name(tag)) for tag in CREATE_TYPE_1 if tag not in attributes)
    return _finding([*top, *_item_faults(attributes, absent=True)], "missing")


def missing_values(attributes: Dataset) -> Finding | None:
    """N-CREATE (and N-SET for items): Type 1 attributes present without a value (0x0121)."""
    top = (
        (tag, name(tag)) for tag in CREATE_TYPE_1 if tag in attributes and _empty(attributes, tag)
    )
    return _finding([*top, *_item_faults(attributes, absent=False)], "no value")


def status_of(dataset: Dataset) -> str | None:
    """The Performed Procedure Step Status as sent (None if absent), without padding."""
    if STATUS_TAG not in dataset:
        return None
    value = dataset[STATUS_TAG].value
    return str(value).strip() if value is not None else ""


def create_status_wrong(attributes: Dataset) -> Finding | None:
    """N-CREATE: the status must be IN PROGRESS (F.7.2.1.3: else 0x0106 with the attribute)."""
    status = status_of(attributes)
    if status == IN_PROGRESS:
        return None
    return Finding(
        (STATUS_TAG,),
        f"N-CREATE must be IN PROGRESS, not {status!r}",
    )


def not_settable(modification: Dataset) -> Finding | None:
    """N-SET: attributes Table F.7.2-1 does not allow to be set (0x0105)."""
    faults = [
        (BaseTag(tag), name(tag)) for tag in list(modification.keys()) if tag in SET_NOT_ALLOWED
    ]
    return _finding(faults, "N-SET may not change")


def set_status_wrong(modification: Dataset) -> Finding | None:
    """N-SET: a status other than the three of the state model (0x0106)."""
    status = status_of(modification)
    if status is None or status in STATUSES:
        return None
    return Finding(
        (STATUS_TAG,),
        f"unknown PerformedProcedureStepStatus {status!r}",
    )


def final_state_missing(merged: Dataset) -> Finding | None:
    """Before COMPLETED or DISCONTINUED: what the final state still lacks (0x0110)."""
    faults = [(tag, name(tag)) for tag in FINAL_TYPE_1 if tag not in merged or _empty(merged, tag)]
    faults += _item_faults(merged, absent=True)
    faults += _item_faults(merged, absent=False)
    return _finding(faults, "final state lacks")


def shallow_copy(dataset: Dataset) -> Dataset:
    """A new data set holding the same elements (pydicom's ``Dataset(ds)`` shares the dict)."""
    return Dataset({tag: dataset.get_item(tag) for tag in list(dataset.keys())})


def merge(record: Dataset, modification: Dataset) -> Dataset:
    """The step after an N-SET: each element of the modification replaces the record's.

    A sequence is replaced whole (the SCU sends all its items, PS3.4 F.7.2.2).
    Specific Character Set does not replace the record's (F.7.2.2.3): when the
    two differ, both are decoded and the result is kept in UTF-8.
    """
    merged = shallow_copy(record)
    ours = record.get("SpecificCharacterSet")
    theirs = modification.get("SpecificCharacterSet")
    if theirs is not None and ours != theirs:
        merged = copy.deepcopy(record)
        merged.decode()
        modification = copy.deepcopy(modification)
        modification.decode()
        for elem in modification:
            merged[elem.tag] = elem
        merged.SpecificCharacterSet = "ISO_IR 192"
        return merged
    for elem in modification:
        if elem.tag != 0x00080005:
            merged[elem.tag] = elem
    return merged
