"""What the archive checks in a received instance before it files it.

The Q/R SCP files an instance under its SOP Instance UID and answers
queries from its Patient ID, Study and Series Instance UIDs.  If any of
those is missing, not a UID, multi-valued (``victim\\own`` would file the
instance into the victim's study) or different from what the C-STORE
command announced (the file is named from the command, the index from the
data set), the archive would answer with another patient's data or lose the
instance while saying Success.  Such an instance is refused, nothing is kept,
and the ErrorComment says why.

Status codes (PS3.4 B.2.3): 0x0117 Invalid SOP Instance for a SOP Instance
UID that breaks the UID rules, 0xA900 Data Set does not match SOP Class for
the rest (a missing or multi-valued Type 1 attribute, a data set that
contradicts its command).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydicom import Dataset

from dimsefsm import status as st
from dimsefsm.sop_class import service_of
from dimsefsm.uid import uid_problem

__all__ = ["Identity", "Refusal", "examine", "identity_of"]

_SOP_CLASS: Final = 0x00080016
_SOP_INSTANCE: Final = 0x00080018
_PATIENT_ID: Final = 0x00100020
_STUDY: Final = 0x0020000D
_SERIES: Final = 0x0020000E
_CHARSET: Final = 0x00080005

_UIDS: Final = (
    (_SOP_INSTANCE, "SOPInstanceUID"),
    (_SOP_CLASS, "SOPClassUID"),
    (_STUDY, "StudyInstanceUID"),
    (_SERIES, "SeriesInstanceUID"),
)

Identity = tuple[str, str, str]
"""Where an instance belongs: (Patient ID, Study Instance UID, Series Instance UID)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    comment: str  # ErrorComment: at most 64 characters


def _values(header: Dataset) -> dict[int, list[str]]:
    """The checked attributes' values, decoded in a copy so ``header`` stays raw (cacheable)."""
    tags = (_SOP_CLASS, _SOP_INSTANCE, _PATIENT_ID, _STUDY, _SERIES)
    copy = Dataset()
    for tag in (*tags, _CHARSET):
        if tag in header:
            copy[tag] = header.get_item(tag)
    values: dict[int, list[str]] = {}
    for tag in tags:
        value = copy[tag].value if tag in copy else None
        if value is None or value == "":
            values[tag] = []
        elif isinstance(value, str):
            values[tag] = [value]
        else:
            values[tag] = [str(v) for v in value]
    return values


def examine(header: Dataset, command: Mapping[str, Any]) -> Refusal | None:
    """None when the instance may be filed; else the status and ErrorComment to answer."""
    try:
        values = _values(header)
    except (ValueError, TypeError, UnicodeError) as exc:
        return Refusal(st.DATASET_DOES_NOT_MATCH_SOP_CLASS, f"cannot decode key attributes: {exc}")
    patient_storage = service_of(str(command.get("AffectedSOPClassUID"))) != "non-patient-storage"
    for tag, keyword in _UIDS:
        found = values[tag]
        if not found:
            if tag in (_STUDY, _SERIES) and not patient_storage:
                continue  # Non-Patient Objects have no study or series
            return Refusal(st.DATASET_DOES_NOT_MATCH_SOP_CLASS, f"data set has no {keyword}")
        if len(found) > 1:
            return Refusal(
                st.DATASET_DOES_NOT_MATCH_SOP_CLASS, f"{keyword} has {len(found)} values"
            )
        problem = uid_problem(found[0])
        if problem is not None:
            status = (
                st.INVALID_OBJECT_INSTANCE
                if tag == _SOP_INSTANCE
                else st.DATASET_DOES_NOT_MATCH_SOP_CLASS
            )
            return Refusal(status, f"{keyword} {problem}")
    if len(values[_PATIENT_ID]) > 1:
        return Refusal(
            st.DATASET_DOES_NOT_MATCH_SOP_CLASS, f"PatientID has {len(values[_PATIENT_ID])} values"
        )
    for tag, keyword in ((_SOP_INSTANCE, "SOPInstanceUID"), (_SOP_CLASS, "SOPClassUID")):
        if values[tag][0] != command.get(f"Affected{keyword}"):
            return Refusal(
                st.DATASET_DOES_NOT_MATCH_SOP_CLASS, f"{keyword} differs from the command's"
            )
    return None


def identity_of(header: Dataset) -> Identity:
    """(Patient ID, Study, Series) of an indexed instance: a re-store must match it."""
    values = _values(header)
    return tuple("\\".join(values[tag]) for tag in (_PATIENT_ID, _STUDY, _SERIES))  # type: ignore[return-value]
