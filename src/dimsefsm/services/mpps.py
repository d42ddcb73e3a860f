"""The Modality Performed Procedure Step state model (PS3.3 C.4.14, PS3.4 F.7) as a chart.

A Performed Procedure Step is created IN PROGRESS by an N-CREATE and ends
COMPLETED or DISCONTINUED by an N-SET; after that it may no longer be
updated.  One :class:`ProcedureStep` model per SOP instance, put in the state
its record holds, receives what arrived (``create_received``,
``set_received``, ``get_received``); the chart's guards, which read the
attribute rules of ``mpps_rules``, choose the outcome and its status, and the
actions build the answer and the new attributes.  The caller (the archive's
SCP, or any application's handler) persists ``step.attributes`` and
``step.state`` only when ``outcome.changed``: a refused request changes
nothing.

Sans I/O: no database, no network; the model is built from a record and
answers with an :class:`Outcome`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from pydicom import Dataset
from pydicom.tag import BaseTag, Tag
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.fsm import Chart, transition
from dimsefsm.fsm.chart import SAME
from dimsefsm.services import mpps_rules as rules
from dimsefsm.services.mpps_rules import Finding
from dimsefsm.sop_class import MODALITY_PERFORMED_PROCEDURE_STEP, N_SOP_CLASSES

MPPS_SOP_CLASS: Final = MODALITY_PERFORMED_PROCEDURE_STEP
"""Modality Performed Procedure Step SOP Class (PS3.4 F.7): N-CREATE and N-SET."""
MPPS_RETRIEVE_SOP_CLASS: Final = N_SOP_CLASSES["ModalityPerformedProcedureStepRetrieve"][0]
"""Modality Performed Procedure Step Retrieve SOP Class (PS3.4 F.8): N-GET."""

ABSENT = "Absent"
IN_PROGRESS = "InProgress"
COMPLETED = "Completed"
DISCONTINUED = "Discontinued"

STATE_OF_STATUS: Final = {
    rules.IN_PROGRESS: IN_PROGRESS,
    rules.COMPLETED: COMPLETED,
    rules.DISCONTINUED: DISCONTINUED,
}
"""Performed Procedure Step Status (0040,0252) -> chart state."""
STATUS_OF_STATE: Final = {state: status for status, state in STATE_OF_STATUS.items()}

_EXISTING = (IN_PROGRESS, COMPLETED, DISCONTINUED)
_ENDED = (COMPLETED, DISCONTINUED)

CHART = Chart(
    name="mpps",
    states=(ABSENT, IN_PROGRESS, COMPLETED, DISCONTINUED),
    initial=ABSENT,
    final=_ENDED,
    doc="Modality Performed Procedure Step (PS3.3 C.4.14, PS3.4 F.7.2): one model per SOP "
    "instance; N-CREATE makes it IN PROGRESS, an N-SET of the status ends it COMPLETED or "
    "DISCONTINUED, after which it may no longer be updated.",
    transitions=(
        # -- N-CREATE ---------------------------------------------------------------------
        transition(
            "create_missing_attribute",
            "create_received",
            ABSENT,
            SAME,
            guard="missing_attribute",
            status=st.MISSING_ATTRIBUTE,
            action="refuse",
            when="A Type 1 attribute of the N-CREATE (PS3.4 Table F.7.2-1) is absent: the "
            "Attribute Identifier List names it.",
        ),
        transition(
            "create_missing_value",
            "create_received",
            ABSENT,
            SAME,
            guard="missing_value",
            status=st.MISSING_ATTRIBUTE_VALUE,
            action="refuse",
            when="A Type 1 attribute of the N-CREATE is present without a value.",
        ),
        transition(
            "create_not_in_progress",
            "create_received",
            ABSENT,
            SAME,
            guard="status_not_in_progress",
            status=st.INVALID_ATTRIBUTE_VALUE,
            action="refuse",
            when="The Performed Procedure Step Status is not IN PROGRESS (PS3.4 F.7.2.1.3).",
        ),
        transition(
            "created",
            "create_received",
            ABSENT,
            IN_PROGRESS,
            status=st.SUCCESS,
            action="record_created",
            when="A complete N-CREATE of an unknown SOP Instance UID: the step is IN PROGRESS.",
        ),
        transition(
            "create_duplicate",
            "create_received",
            _EXISTING,
            SAME,
            status=st.DUPLICATE_SOP_INSTANCE,
            action="refuse",
            when="An N-CREATE of a SOP Instance UID that already exists, in any state.",
        ),
        # -- N-SET ------------------------------------------------------------------------
        transition(
            "set_unknown",
            "set_received",
            ABSENT,
            SAME,
            status=st.NO_SUCH_SOP_INSTANCE,
            action="refuse",
            when="An N-SET of a SOP Instance UID that was never created.",
        ),
        transition(
            "set_not_allowed",
            "set_received",
            IN_PROGRESS,
            SAME,
            guard="not_settable",
            status=st.NO_SUCH_ATTRIBUTE,
            action="refuse",
            when="The modification names attributes N-SET may not change (the patient, the "
            "scheduled step, the station, the start, the modality: PS3.4 Table F.7.2-1).",
        ),
        transition(
            "set_bad_status",
            "set_received",
            IN_PROGRESS,
            SAME,
            guard="bad_status",
            status=st.INVALID_ATTRIBUTE_VALUE,
            action="refuse",
            when="The Performed Procedure Step Status sent is none of IN PROGRESS, COMPLETED, "
            "DISCONTINUED.",
        ),
        transition(
            "set_final_incomplete",
            "set_received",
            IN_PROGRESS,
            SAME,
            guard="final_state_incomplete",
            status=st.PROCESSING_FAILURE,
            action="refuse",
            when="COMPLETED or DISCONTINUED is asked for while the step lacks its final-state "
            "attributes (End Date and Time, a Performed Series item): nothing is changed.",
        ),
        transition(
            "set_completed",
            "set_received",
            IN_PROGRESS,
            COMPLETED,
            guard="completes",
            status=st.SUCCESS,
            action="update",
            when="The modification sets COMPLETED and the final state is complete.",
        ),
        transition(
            "set_discontinued",
            "set_received",
            IN_PROGRESS,
            DISCONTINUED,
            guard="discontinues",
            status=st.SUCCESS,
            action="update",
            when="The modification sets DISCONTINUED and the final state is complete.",
        ),
        transition(
            "set_updated",
            "set_received",
            IN_PROGRESS,
            SAME,
            status=st.SUCCESS,
            action="update",
            when="Any other valid modification of a step IN PROGRESS: it stays IN PROGRESS.",
        ),
        transition(
            "set_after_end",
            "set_received",
            _ENDED,
            SAME,
            status=st.PROCESSING_FAILURE,
            action="refuse_ended",
            when="An N-SET of a step COMPLETED or DISCONTINUED: 'Performed Procedure Step "
            "Object may no longer be updated' (Error ID A710, PS3.4 Table F.7.2-2).",
        ),
        # -- N-GET ------------------------------------------------------------------------
        transition(
            "get_unknown",
            "get_received",
            ABSENT,
            SAME,
            status=st.NO_SUCH_SOP_INSTANCE,
            action="refuse",
            when="An N-GET of a SOP Instance UID that was never created.",
        ),
        transition(
            "got",
            "get_received",
            _EXISTING,
            SAME,
            status=st.SUCCESS,
            action="answer_get",
            when="An N-GET of an existing step, in any state: the attributes asked for (all "
            "when the list is empty).",
        ),
    ),
    refusals=(),
)


@dataclass
class Outcome:
    """The answer to one request: the status to send and what the record becomes."""

    status: int
    comment: str | None = None
    error_id: int | None = None
    tags: tuple[BaseTag, ...] = ()
    attributes: Dataset | None = None
    """N-CREATE/N-SET: the step's attributes now; N-GET: those asked for."""
    changed: bool = False
    """True when the record must be written (created or updated)."""
    detail: str | None = None
    """More than the Error Comment holds, for the log line."""

    def status_dataset(self) -> Dataset:
        """The status as a handler returns it: Status, ErrorComment, ErrorID, the tags."""
        result = Dataset()
        result.Status = self.status
        if self.comment:
            result.ErrorComment = short_comment(self.comment)
        if self.error_id is not None:
            result.ErrorID = self.error_id
        if self.tags:
            result.AttributeIdentifierList = list(self.tags)
        return result


ERROR_COMMENT_LENGTH: Final = 64
"""Error Comment (0000,0902) is LO: at most 64 characters (the full text goes to the log)."""


def short_comment(text: str) -> str:
    """``text`` cut to what an Error Comment holds, marked with an ellipsis when cut."""
    if len(text) <= ERROR_COMMENT_LENGTH:
        return text
    return text[: ERROR_COMMENT_LENGTH - 3] + "..."


class ProcedureStep:
    """One MPPS SOP instance, in the state its record holds (``Absent`` if there is none)."""

    def __init__(self, uid: str, attributes: Dataset | None = None) -> None:
        self.uid = uid
        self.attributes = attributes
        self.state = ABSENT
        if attributes is not None:
            status = rules.status_of(attributes) or ""
            self.state = STATE_OF_STATUS.get(status, IN_PROGRESS)
        self.request = Dataset()
        self.requested_tags: tuple[BaseTag, ...] = ()
        self.finding: Finding | None = None
        self.outcome: Outcome | None = None

    # -- inputs -------------------------------------------------------------------------
    def receive_create(self, attribute_list: Dataset) -> Outcome:
        """An N-CREATE of this UID arrived with ``attribute_list``."""
        return self._fire("create_received", attribute_list)

    def receive_set(self, modification: Dataset) -> Outcome:
        """An N-SET of this UID arrived with ``modification``."""
        return self._fire("set_received", modification)

    def receive_get(self, tags: Iterable[int] = ()) -> Outcome:
        """An N-GET of this UID arrived asking for ``tags`` (none: every attribute)."""
        self.requested_tags = tuple(Tag(t) for t in tags)
        return self._fire("get_received", Dataset())

    def _fire(self, trigger: str, request: Dataset) -> Outcome:
        self.request = request
        self.finding = None
        self.outcome = None
        CHART.fire(self, trigger)
        assert self.outcome is not None
        return self.outcome

    # -- guards: each keeps what it found for the answer --------------------------------
    def _found(self, finding: Finding | None) -> bool:
        if finding is not None:
            self.finding = finding
        return finding is not None

    def missing_attribute(self, event: EventData) -> bool:
        return self._found(rules.missing_attributes(self.request))

    def missing_value(self, event: EventData) -> bool:
        return self._found(rules.missing_values(self.request))

    def status_not_in_progress(self, event: EventData) -> bool:
        return self._found(rules.create_status_wrong(self.request))

    def not_settable(self, event: EventData) -> bool:
        return self._found(rules.not_settable(self.request))

    def bad_status(self, event: EventData) -> bool:
        return self._found(rules.set_status_wrong(self.request))

    def _requested_end(self) -> str | None:
        status = rules.status_of(self.request)
        return status if status in (rules.COMPLETED, rules.DISCONTINUED) else None

    def final_state_incomplete(self, event: EventData) -> bool:
        if self._requested_end() is None:
            return False
        assert self.attributes is not None
        return self._found(rules.final_state_missing(rules.merge(self.attributes, self.request)))

    def completes(self, event: EventData) -> bool:
        return self._requested_end() == rules.COMPLETED

    def discontinues(self, event: EventData) -> bool:
        return self._requested_end() == rules.DISCONTINUED

    # -- actions ------------------------------------------------------------------------
    def refuse(self, event: EventData) -> None:
        status = Chart.declared(event).status
        assert status is not None
        finding = self.finding
        if finding is not None:
            comment, tags = finding.comment, finding.tags
        else:
            comment, tags = _REFUSALS[status], ()
        # Processing failure names no attributes (PS3.7 Annex C: ErrorComment, ErrorID only).
        keep_tags = status != st.PROCESSING_FAILURE
        self.outcome = Outcome(status, comment, tags=tags if keep_tags else ())

    def refuse_ended(self, event: EventData) -> None:
        """Table F.7.2-2's Error Comment and Error ID; the log line says the state."""
        self.outcome = Outcome(
            st.PROCESSING_FAILURE,
            rules.NO_LONGER_UPDATABLE,
            error_id=rules.NO_LONGER_UPDATABLE_ID,
            detail=f"it is {STATUS_OF_STATE[self.state]}",
        )

    def record_created(self, event: EventData) -> None:
        attributes = rules.shallow_copy(self.request)
        attributes.SOPClassUID = MPPS_SOP_CLASS
        attributes.SOPInstanceUID = self.uid
        self.attributes = attributes
        self.outcome = Outcome(st.SUCCESS, attributes=attributes, changed=True)

    def update(self, event: EventData) -> None:
        assert self.attributes is not None
        self.attributes = rules.merge(self.attributes, self.request)
        self.outcome = Outcome(st.SUCCESS, attributes=self.attributes, changed=True)

    def answer_get(self, event: EventData) -> None:
        assert self.attributes is not None
        if not self.requested_tags:
            answer = rules.shallow_copy(self.attributes)
        else:
            answer = Dataset(
                {tag: self.attributes[tag] for tag in self.requested_tags if tag in self.attributes}
            )
        self.outcome = Outcome(st.SUCCESS, attributes=answer)


_REFUSALS: Final = {  # at most 64 characters (LO): the UID is in the response's command
    st.DUPLICATE_SOP_INSTANCE: "an MPPS of this SOP Instance UID already exists",
    st.NO_SUCH_SOP_INSTANCE: "no MPPS of this SOP Instance UID",
}
