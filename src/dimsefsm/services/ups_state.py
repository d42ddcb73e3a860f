"""The Unified Procedure Step state model (PS3.4 CC.1.1) as two charts, and the step that runs it.

A UPS is SCHEDULED when an N-CREATE pushes it, IN PROGRESS when a performer
claims it with a Transaction UID (the lock: only that UID may later set its
attributes or end it), and ends COMPLETED or CANCELED.  Every request on a
UPS (N-CREATE, N-SET, N-GET, and the N-ACTIONs Change UPS State, Request
Cancel, Subscribe, Unsubscribe, Suspend) is one input of ``UPS_CHART`` fired
on the UPS's current state; guards look at what the request carries (the
requested state, the Transaction UID, the attributes) and choose the
transition, and the transition names the status the standard gives for that
case (PS3.4 CC.2.1.4 ... CC.2.7.4).  A UID that names no UPS is the state
``Absent``: N-CREATE leaves it, everything else answers 0xC307 there.

Subscriptions to the well-known global UPS instances (every UPS, or those a
query matches) belong to a receiving AE, not to a UPS: ``GLOBAL_CHART`` holds
that AE's state.

:class:`UpsStep` is sans-I/O: it gets the stored record, applies one request
and says what changed (the new record, the subscription to add or drop, the
event reports to send); storing it atomically and delivering the reports is
the archive's work (``dimsefsm.archive.ups``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from pydicom import Dataset
from pydicom.datadict import keyword_for_tag
from pydicom.tag import Tag
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.fsm import Chart, transition

# -- the standard's vocabulary ---------------------------------------------------------------
SCHEDULED: Final = "SCHEDULED"
IN_PROGRESS: Final = "IN PROGRESS"
COMPLETED: Final = "COMPLETED"
CANCELED: Final = "CANCELED"
UPS_STATES: Final = (SCHEDULED, IN_PROGRESS, COMPLETED, CANCELED)

# N-ACTION Action Type IDs (PS3.4 Table CC.2.1-1, CC.2.2-1, CC.2.3-1)
CHANGE_STATE: Final = 1
REQUEST_CANCEL: Final = 2
SUBSCRIBE: Final = 3
UNSUBSCRIBE: Final = 4
SUSPEND_GLOBAL: Final = 5
ACTION_TRIGGERS: Final = {
    CHANGE_STATE: "change_state",
    REQUEST_CANCEL: "request_cancel",
    SUBSCRIBE: "subscribe",
    UNSUBSCRIBE: "unsubscribe",
    SUSPEND_GLOBAL: "suspend",
}

# N-EVENT-REPORT Event Type IDs (PS3.4 Table CC.2.4-1)
STATE_REPORT: Final = 1
CANCEL_REQUESTED: Final = 2
PROGRESS_REPORT: Final = 3
SCP_STATUS_CHANGE: Final = 4
ASSIGNED: Final = 5

_CHART_STATE: Final = {
    SCHEDULED: "Scheduled",
    IN_PROGRESS: "InProgress",
    COMPLETED: "Completed",
    CANCELED: "Canceled",
}
_PRIORITIES: Final = frozenset({"HIGH", "MEDIUM", "LOW"})
_READINESS: Final = frozenset({"READY", "UNAVAILABLE", "INCOMPLETE"})
REQUIRED_ON_CREATE: Final = (
    "ProcedureStepState",
    "ScheduledProcedureStepPriority",
    "ProcedureStepLabel",
    "ScheduledProcedureStepStartDateTime",
    "InputReadinessState",
)
"""Type 1 for the N-CREATE SCU (PS3.4 Table CC.2.5-3): absent 0x0120, empty 0x0121."""
NOT_SETTABLE: Final = ("SOPClassUID", "SOPInstanceUID", "ProcedureStepState")
"""Attributes an N-SET may not change: identity, and the state (N-ACTION's alone)."""
_ASSIGNMENT_KEYS: Final = ("ScheduledStationNameCodeSequence", "ScheduledHumanPerformersSequence")

# -- the charts ------------------------------------------------------------------------------
_PRESENT = ("Scheduled", "InProgress", "Completed", "Canceled")
_FINAL = ("Completed", "Canceled")
_ALL = ("Absent", *_PRESENT)

UPS_CHART = Chart(
    name="ups-state",
    states=_ALL,
    initial="Absent",
    final=(),
    doc=(
        "Unified Procedure Step SCP (PS3.4 CC.1.1): one UPS instance; each DIMSE request on "
        "it is an input fired on its stored state. Absent is a UID no UPS has."
    ),
    transitions=(
        # N-CREATE (UPS Push, CC.2.5)
        transition(
            "create_not_scheduled",
            "n_create",
            "Absent",
            "Absent",
            guard="state_not_scheduled",
            status=st.UPS_NOT_SCHEDULED,
            action="refuse",
            when="The N-CREATE's Procedure Step State is not SCHEDULED.",
        ),
        transition(
            "create_with_transaction_uid",
            "n_create",
            "Absent",
            "Absent",
            guard="transaction_uid_given",
            status=st.INVALID_ATTRIBUTE_VALUE,
            action="refuse",
            when="The N-CREATE carries a Transaction UID (it must be empty until a performer "
            "claims the UPS).",
        ),
        transition(
            "create_missing_attribute",
            "n_create",
            "Absent",
            "Absent",
            guard="required_missing",
            status=st.MISSING_ATTRIBUTE,
            action="refuse",
            when="A Type 1 attribute of the N-CREATE (priority, label, start date time, "
            "input readiness) is absent.",
        ),
        transition(
            "create_empty_attribute",
            "n_create",
            "Absent",
            "Absent",
            guard="required_empty",
            status=st.MISSING_ATTRIBUTE_VALUE,
            action="refuse",
            when="A Type 1 attribute of the N-CREATE is present without a value.",
        ),
        transition(
            "create_invalid_value",
            "n_create",
            "Absent",
            "Absent",
            guard="value_invalid",
            status=st.INVALID_ATTRIBUTE_VALUE,
            action="refuse",
            when="The priority or the input readiness state is not one of its defined terms.",
        ),
        transition(
            "created",
            "n_create",
            "Absent",
            "Scheduled",
            status=st.SUCCESS,
            action="create",
            when="A valid N-CREATE: the UPS is SCHEDULED and global subscribers are told.",
        ),
        transition(
            "duplicate",
            "n_create",
            _PRESENT,
            "=",
            status=st.DUPLICATE_SOP_INSTANCE,
            action="refuse",
            when="An N-CREATE names the SOP Instance UID of an existing UPS; it is unchanged.",
        ),
        # N-SET (UPS Pull, CC.2.6)
        transition(
            "set_no_such_ups",
            "n_set",
            "Absent",
            "=",
            status=st.UPS_NO_SUCH_INSTANCE,
            action="refuse",
            when="The N-SET names no UPS.",
        ),
        transition(
            "set_scheduled_with_lock",
            "n_set",
            "Scheduled",
            "=",
            guard="transaction_uid_given",
            status=st.UPS_NOT_IN_PROGRESS,
            action="refuse",
            when="An N-SET with a Transaction UID on a UPS no performer has claimed yet.",
        ),
        transition(
            "set_wrong_lock",
            "n_set",
            "InProgress",
            "=",
            guard="transaction_uid_wrong",
            status=st.UPS_WRONG_TRANSACTION_UID,
            action="refuse",
            when="An N-SET on an IN PROGRESS UPS without the Transaction UID that claimed it.",
        ),
        transition(
            "set_not_settable",
            "n_set",
            ("Scheduled", "InProgress"),
            "=",
            guard="modification_invalid",
            status=st.INVALID_ATTRIBUTE_VALUE,
            action="refuse",
            when="The N-SET would change the SOP Class or Instance UID or the state (only "
            "N-ACTION changes the state).",
        ),
        transition(
            "set",
            "n_set",
            ("Scheduled", "InProgress"),
            "=",
            status=st.SUCCESS,
            action="modify",
            when="The attributes are replaced; subscribers hear of a new readiness, progress "
            "or assignment.",
        ),
        transition(
            "set_final",
            "n_set",
            _FINAL,
            "=",
            status=st.UPS_MAY_NO_LONGER_BE_UPDATED,
            action="refuse",
            when="An N-SET on a COMPLETED or CANCELED UPS: it may no longer be updated.",
        ),
        # N-GET (CC.2.7)
        transition(
            "get_no_such_ups",
            "n_get",
            "Absent",
            "=",
            status=st.UPS_NO_SUCH_INSTANCE,
            action="refuse",
            when="The N-GET names no UPS.",
        ),
        transition(
            "get",
            "n_get",
            _PRESENT,
            "=",
            status=st.SUCCESS,
            action="read",
            when="The requested attributes (all when none are named), never the Transaction UID.",
        ),
        # N-ACTION Change UPS State (UPS Pull, CC.2.1)
        transition(
            "change_no_such_ups",
            "change_state",
            "Absent",
            "=",
            status=st.UPS_NO_SUCH_INSTANCE,
            action="refuse",
            when="The change of state names no UPS.",
        ),
        transition(
            "change_bad_argument",
            "change_state",
            _PRESENT,
            "=",
            guard="action_info_invalid",
            status=st.INVALID_ARGUMENT_VALUE,
            action="refuse",
            when="The Action Information lacks the Transaction UID or names no UPS state.",
        ),
        transition(
            "change_to_scheduled",
            "change_state",
            _PRESENT,
            "=",
            guard="to_scheduled",
            status=st.UPS_SCHEDULED_ONLY_BY_CREATE,
            action="refuse",
            when="A change to SCHEDULED: only N-CREATE makes a UPS SCHEDULED.",
        ),
        transition(
            "claimed",
            "change_state",
            "Scheduled",
            "InProgress",
            guard="to_in_progress",
            status=st.SUCCESS,
            action="claim",
            when="A performer claims the SCHEDULED UPS: its Transaction UID becomes the lock.",
        ),
        transition(
            "end_unclaimed",
            "change_state",
            "Scheduled",
            "=",
            status=st.UPS_NOT_IN_PROGRESS,
            action="refuse",
            when="A change to COMPLETED or CANCELED of a UPS nobody has claimed yet.",
        ),
        transition(
            "claim_claimed",
            "change_state",
            "InProgress",
            "=",
            guard="to_in_progress",
            status=st.UPS_ALREADY_IN_PROGRESS,
            action="refuse",
            when="A second claim of a UPS that is already IN PROGRESS.",
        ),
        transition(
            "change_wrong_lock",
            "change_state",
            "InProgress",
            "=",
            guard="transaction_uid_wrong",
            status=st.UPS_WRONG_TRANSACTION_UID,
            action="refuse",
            when="A change to COMPLETED or CANCELED without the Transaction UID that claimed "
            "the UPS.",
        ),
        transition(
            "completion_unmet",
            "change_state",
            "InProgress",
            "=",
            guard="completion_incomplete",
            status=st.UPS_FINAL_STATE_REQUIREMENTS_NOT_MET,
            action="refuse",
            when="A change to COMPLETED before the performed procedure (start, end, station, "
            "workitem, output) is recorded.",
        ),
        transition(
            "completed",
            "change_state",
            "InProgress",
            "Completed",
            guard="to_completed",
            status=st.SUCCESS,
            action="complete",
            when="The performer completes its UPS; the lock is released.",
        ),
        transition(
            "canceled",
            "change_state",
            "InProgress",
            "Canceled",
            status=st.SUCCESS,
            action="cancel",
            when="The performer cancels its UPS; the lock is released.",
        ),
        transition(
            "already_completed",
            "change_state",
            "Completed",
            "=",
            guard="to_completed",
            status=st.UPS_ALREADY_COMPLETED_WARNING,
            action="refuse",
            when="A change to COMPLETED of a COMPLETED UPS: nothing to do, a warning.",
        ),
        transition(
            "already_canceled",
            "change_state",
            "Canceled",
            "=",
            guard="to_canceled",
            status=st.UPS_ALREADY_CANCELED,
            action="refuse",
            when="A change to CANCELED of a CANCELED UPS: nothing to do, a warning.",
        ),
        transition(
            "change_final",
            "change_state",
            _FINAL,
            "=",
            status=st.UPS_MAY_NO_LONGER_BE_UPDATED,
            action="refuse",
            when="Any other change of a COMPLETED or CANCELED UPS.",
        ),
        # N-ACTION Request UPS Cancel (UPS Push/Watch, CC.2.2)
        transition(
            "cancel_no_such_ups",
            "request_cancel",
            "Absent",
            "=",
            status=st.UPS_NO_SUCH_INSTANCE,
            action="refuse",
            when="The cancel request names no UPS.",
        ),
        transition(
            "cancel_scheduled",
            "request_cancel",
            "Scheduled",
            "Canceled",
            status=st.SUCCESS,
            action="cancel",
            when="A SCHEDULED UPS nobody performs is canceled at once.",
        ),
        transition(
            "performer_unreachable",
            "request_cancel",
            "InProgress",
            "=",
            guard="performer_unreachable",
            status=st.UPS_PERFORMER_UNREACHABLE,
            action="refuse",
            when="The UPS is IN PROGRESS and its performer subscribes to no event reports.",
        ),
        transition(
            "cancel_requested",
            "request_cancel",
            "InProgress",
            "=",
            status=st.SUCCESS,
            action="ask_performer",
            when="The UPS is IN PROGRESS: its performer and subscribers get a Cancel "
            "Requested report; only the performer may cancel.",
        ),
        transition(
            "cancel_completed",
            "request_cancel",
            "Completed",
            "=",
            status=st.UPS_ALREADY_COMPLETED,
            action="refuse",
            when="A cancel request for a COMPLETED UPS.",
        ),
        transition(
            "cancel_canceled",
            "request_cancel",
            "Canceled",
            "=",
            status=st.UPS_ALREADY_CANCELED,
            action="refuse",
            when="A cancel request for a CANCELED UPS: a warning.",
        ),
        # N-ACTION Subscribe / Unsubscribe / Suspend on one UPS (UPS Watch, CC.2.3)
        transition(
            "subscribe_no_such_ups",
            "subscribe",
            "Absent",
            "=",
            status=st.UPS_NO_SUCH_INSTANCE,
            action="refuse",
            when="The subscription names no UPS.",
        ),
        transition(
            "subscribe_unknown_ae",
            "subscribe",
            _PRESENT,
            "=",
            guard="receiving_ae_unknown",
            status=st.UPS_UNKNOWN_RECEIVING_AE,
            action="refuse",
            when="The Receiving AE is missing or no peer this SCP knows an address of.",
        ),
        transition(
            "subscribed",
            "subscribe",
            _PRESENT,
            "=",
            status=st.SUCCESS,
            action="subscribe",
            when="The AE subscribes (again: its deletion lock is updated) and gets the "
            "current state at once.",
        ),
        transition(
            "unsubscribe_no_such_ups",
            "unsubscribe",
            "Absent",
            "=",
            status=st.UPS_NO_SUCH_INSTANCE,
            action="refuse",
            when="The unsubscription names no UPS.",
        ),
        transition(
            "unsubscribed",
            "unsubscribe",
            _PRESENT,
            "=",
            status=st.SUCCESS,
            action="unsubscribe",
            when="The AE's subscription to this UPS ends (if it had one).",
        ),
        transition(
            "suspend_no_such_ups",
            "suspend",
            "Absent",
            "=",
            status=st.UPS_NO_SUCH_INSTANCE,
            action="refuse",
            when="Suspend names no UPS.",
        ),
        transition(
            "suspend_instance",
            "suspend",
            _PRESENT,
            "=",
            status=st.UPS_ACTION_NOT_APPROPRIATE,
            action="refuse",
            when="Suspend Global Subscription names one UPS, not a global subscription instance.",
        ),
        transition(
            "unknown_action",
            "other_action",
            _ALL,
            "=",
            status=st.NO_SUCH_ACTION,
            action="refuse",
            when="An N-ACTION whose Action Type ID is none of 1-5.",
        ),
    ),
)

GLOBAL_CHART = Chart(
    name="ups-global-subscription",
    states=("Unsubscribed", "Subscribed"),
    initial="Unsubscribed",
    doc=(
        "One receiving AE's subscription to every UPS (1.2.840.10008.5.1.4.34.5) or to those "
        "its Matching Keys select (1.2.840.10008.5.1.4.34.5.1) (PS3.4 CC.2.3)."
    ),
    transitions=(
        transition(
            "global_unknown_ae",
            "subscribe",
            ("Unsubscribed", "Subscribed"),
            "=",
            guard="receiving_ae_unknown",
            status=st.UPS_UNKNOWN_RECEIVING_AE,
            action="refuse",
            when="The Receiving AE is missing or no peer this SCP knows an address of.",
        ),
        transition(
            "global_subscribed",
            "subscribe",
            ("Unsubscribed", "Subscribed"),
            "Subscribed",
            status=st.SUCCESS,
            action="subscribe_globally",
            when="The AE subscribes to every (matching) UPS, existing and future.",
        ),
        transition(
            "global_unsubscribed",
            "unsubscribe",
            ("Unsubscribed", "Subscribed"),
            "Unsubscribed",
            status=st.SUCCESS,
            action="unsubscribe_globally",
            when="The global subscription and every subscription of the AE to one UPS end.",
        ),
        transition(
            "global_suspended",
            "suspend",
            ("Unsubscribed", "Subscribed"),
            "Unsubscribed",
            status=st.SUCCESS,
            action="suspend",
            when="The global subscription ends; the AE stays subscribed to the UPSs it has.",
        ),
        transition(
            "global_not_appropriate",
            "change_state",
            ("Unsubscribed", "Subscribed"),
            "=",
            status=st.UPS_ACTION_NOT_APPROPRIATE,
            action="refuse",
            when="Change UPS State or Request Cancel names a global subscription instance.",
        ),
        transition(
            "global_unknown_action",
            "other_action",
            ("Unsubscribed", "Subscribed"),
            "=",
            status=st.NO_SUCH_ACTION,
            action="refuse",
            when="An N-ACTION whose Action Type ID is none of 1-5.",
        ),
    ),
)

_COMMENTS: Final = {
    "create_not_scheduled": "Procedure Step State must be SCHEDULED",
    "create_with_transaction_uid": "Transaction UID must be empty in N-CREATE",
    "create_missing_attribute": "missing: {offending}",
    "create_empty_attribute": "no value: {offending}",
    "create_invalid_value": "not a defined term: {offending}",
    "duplicate": "a UPS with this SOP Instance UID exists",
    "set_scheduled_with_lock": "UPS is SCHEDULED: no Transaction UID yet",
    "set_wrong_lock": "Transaction UID missing or not the locking one",
    "set_not_settable": "N-SET may not change UIDs or the state",
    "set_final": "UPS is {state}: it may no longer be updated",
    "change_bad_argument": "needs Procedure Step State and Transaction UID",
    "change_to_scheduled": "only N-CREATE makes a UPS SCHEDULED",
    "end_unclaimed": "UPS is SCHEDULED: not yet IN PROGRESS",
    "claim_claimed": "UPS is already IN PROGRESS",
    "change_wrong_lock": "Transaction UID missing or not the locking one",
    "completion_unmet": "final state requirements not met: {missing}",
    "already_completed": "UPS is already COMPLETED",
    "already_canceled": "UPS is already CANCELED",
    "change_final": "UPS is {state}: it may no longer be updated",
    "performer_unreachable": "the performer subscribes to no event reports",
    "cancel_completed": "UPS is already COMPLETED",
    "cancel_canceled": "UPS is already CANCELED",
    "subscribe_unknown_ae": "Receiving AE {receiving!r} is unknown to this SCP",
    "global_unknown_ae": "Receiving AE {receiving!r} is unknown to this SCP",
    "suspend_instance": "suspend applies to a global subscription only",
    "global_not_appropriate": "not appropriate for a global subscription instance",
    "unknown_action": "no such Action Type ID: {action_type}",
    "global_unknown_action": "no such Action Type ID: {action_type}",
}


# -- records and outcomes --------------------------------------------------------------------
@dataclass(frozen=True)
class UpsRecord:
    """What the SCP keeps of one UPS: its attributes, and the lock apart from them."""

    uid: str
    state: str
    dataset: Dataset
    transaction_uid: str | None = None
    performer_ae: str | None = None


@dataclass(frozen=True)
class UpsReport:
    """An N-EVENT-REPORT to send; ``receivers`` None: every subscriber of the UPS."""

    event_type: int
    information: Dataset
    receivers: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Subscription:
    """A change of one AE's subscription; ``add`` False drops it."""

    ae_title: str
    add: bool
    deletion_lock: bool = False


@dataclass
class StepOutcome:
    status: int
    comment: str | None
    record: UpsRecord | None
    changed: bool
    reply: Dataset | None = None
    reports: list[UpsReport] = field(default_factory=list)
    subscription: Subscription | None = None
    offending: tuple[int, ...] = ()


# -- the step ------------------------------------------------------------------------------
class UpsStep:
    """One request applied to one stored UPS (or to a UID no UPS has); the chart decides.

    ``known_ae`` says whether an AE title is a peer event reports can reach;
    ``subscribers`` are the AEs subscribed to this UPS now; ``now`` is the
    DICOM date time to stamp a cancellation with (the caller's clock).
    """

    def __init__(
        self,
        uid: str,
        record: UpsRecord | None,
        attributes: Dataset | None,
        *,
        calling_ae: str = "",
        known_ae: Callable[[str], bool] = lambda ae: False,
        subscribers: Iterable[str] = (),
        now: str = "",
        worklist_label: str = "",
        identifiers: Iterable[int] = (),
        action_type: int | None = None,
    ) -> None:
        self.uid = uid
        self.stored = record
        self.attributes = attributes if attributes is not None else Dataset()
        self.calling_ae = calling_ae.strip()
        self.known_ae = known_ae
        self.subscribers = set(subscribers)
        self.now = now
        self.worklist_label = worklist_label
        self.identifiers = [Tag(tag) for tag in identifiers]
        self.action_type = action_type
        self.outcome = StepOutcome(st.PROCESSING_FAILURE, None, record, False)
        self._missing: list[str] = []
        state = "Absent" if record is None else _CHART_STATE[record.state]
        UPS_CHART.machine.set_state(state, model=self)
        self.state: str

    def run(self, trigger: str) -> StepOutcome:
        """Fire ``trigger`` (``n_create``, ``n_set``, ``n_get``, an N-ACTION's) and report."""
        UPS_CHART.fire(self, trigger)
        return self.outcome

    # -- what the request carries --------------------------------------------------------
    def _text(self, keyword: str) -> str:
        value = self.attributes.get(keyword)
        return "" if value is None else str(value).strip()

    @property
    def receiving_ae(self) -> str:
        return self._text("ReceivingAE")

    @property
    def requested_state(self) -> str:
        return self._text("ProcedureStepState")

    # -- guards --------------------------------------------------------------------------
    def state_not_scheduled(self, event: EventData) -> bool:
        return self.requested_state != SCHEDULED

    def transaction_uid_given(self, event: EventData) -> bool:
        return bool(self._text("TransactionUID"))

    def transaction_uid_wrong(self, event: EventData) -> bool:
        assert self.stored is not None
        return self._text("TransactionUID") != (self.stored.transaction_uid or "")

    def required_missing(self, event: EventData) -> bool:
        missing = [k for k in REQUIRED_ON_CREATE if k not in self.attributes]
        self.outcome.offending = tuple(Tag(k) for k in missing)
        return bool(missing)

    def required_empty(self, event: EventData) -> bool:
        empty = [k for k in REQUIRED_ON_CREATE if self.attributes[k].is_empty]
        self.outcome.offending = tuple(Tag(k) for k in empty)
        return bool(empty)

    def value_invalid(self, event: EventData) -> bool:
        bad = []
        if self._text("ScheduledProcedureStepPriority") not in _PRIORITIES:
            bad.append("ScheduledProcedureStepPriority")
        if self._text("InputReadinessState") not in _READINESS:
            bad.append("InputReadinessState")
        self.outcome.offending = tuple(Tag(k) for k in bad)
        return bool(bad)

    def modification_invalid(self, event: EventData) -> bool:
        assert self.stored is not None
        bad = [
            k
            for k in NOT_SETTABLE
            if k in self.attributes and self.attributes.get(k) != self.stored.dataset.get(k)
        ]
        self.outcome.offending = tuple(Tag(k) for k in bad)
        return bool(bad)

    def action_info_invalid(self, event: EventData) -> bool:
        return self.requested_state not in UPS_STATES or not self._text("TransactionUID")

    def to_scheduled(self, event: EventData) -> bool:
        return self.requested_state == SCHEDULED

    def to_in_progress(self, event: EventData) -> bool:
        return self.requested_state == IN_PROGRESS

    def to_completed(self, event: EventData) -> bool:
        return self.requested_state == COMPLETED

    def to_canceled(self, event: EventData) -> bool:
        return self.requested_state == CANCELED

    def completion_incomplete(self, event: EventData) -> bool:
        assert self.stored is not None
        if self.requested_state != COMPLETED:
            return False
        self._missing = final_state_gaps(self.stored.dataset)
        return bool(self._missing)

    def performer_unreachable(self, event: EventData) -> bool:
        assert self.stored is not None
        return (self.stored.performer_ae or "") not in self.subscribers

    def receiving_ae_unknown(self, event: EventData) -> bool:
        return not self.receiving_ae or not self.known_ae(self.receiving_ae)

    # -- actions -------------------------------------------------------------------------
    def _finish(self, event: EventData, record: UpsRecord | None, changed: bool) -> None:
        declared = Chart.declared(event)
        assert declared.status is not None
        self.outcome.status = declared.status
        self.outcome.record = record
        self.outcome.changed = changed
        template = _COMMENTS.get(declared.name)
        if template is not None:
            state = self.stored.state if self.stored is not None else ""
            self.outcome.comment = template.format(
                state=state,
                missing=", ".join(self._missing),
                offending=", ".join(keyword_for_tag(tag) for tag in self.outcome.offending),
                receiving=self.receiving_ae,
                action_type=self.action_type,
            )[:64]

    def refuse(self, event: EventData) -> None:
        self._finish(event, self.stored, False)

    def create(self, event: EventData) -> None:
        dataset = copy.deepcopy(self.attributes)
        if "TransactionUID" in dataset:
            del dataset.TransactionUID
        dataset.SOPClassUID = UPS_PUSH_CLASS
        dataset.SOPInstanceUID = self.uid
        if not dataset.get("WorklistLabel"):
            dataset.WorklistLabel = self.worklist_label  # the SCP's to fill (CC.2.5.1.3)
        record = UpsRecord(self.uid, SCHEDULED, dataset)
        self._finish(event, record, True)
        self.outcome.reports.append(UpsReport(STATE_REPORT, state_report(dataset)))
        for assignment in assigned_report(dataset, dataset):
            self.outcome.reports.append(UpsReport(ASSIGNED, assignment))

    def modify(self, event: EventData) -> None:
        assert self.stored is not None
        before = self.stored.dataset
        dataset = copy.deepcopy(before)
        for elem in self.attributes:
            if elem.keyword == "TransactionUID":
                continue
            dataset[elem.tag] = copy.deepcopy(elem)
        record = replace(self.stored, dataset=dataset)
        self._finish(event, record, True)
        if dataset.get("InputReadinessState") != before.get("InputReadinessState"):
            self.outcome.reports.append(UpsReport(STATE_REPORT, state_report(dataset)))
        progress = "ProcedureStepProgressInformationSequence"
        if progress in self.attributes and dataset.get(progress) != before.get(progress):
            report = Dataset()
            report[progress] = copy.deepcopy(dataset[progress])
            self.outcome.reports.append(UpsReport(PROGRESS_REPORT, report))
        for assignment in assigned_report(before, dataset):
            self.outcome.reports.append(UpsReport(ASSIGNED, assignment))

    def read(self, event: EventData) -> None:
        assert self.stored is not None
        source = self.stored.dataset
        reply = Dataset()
        if not self.identifiers:
            for elem in source:
                reply.add(copy.deepcopy(elem))
        for tag in self.identifiers:
            if tag in source:
                reply.add(copy.deepcopy(source[tag]))
        self._finish(event, self.stored, False)
        self.outcome.reply = reply

    def claim(self, event: EventData) -> None:
        assert self.stored is not None
        dataset = copy.deepcopy(self.stored.dataset)
        dataset.ProcedureStepState = IN_PROGRESS
        record = UpsRecord(
            self.uid, IN_PROGRESS, dataset, self._text("TransactionUID"), self.calling_ae
        )
        self._finish(event, record, True)
        self.outcome.reports.append(UpsReport(STATE_REPORT, state_report(dataset)))

    def complete(self, event: EventData) -> None:
        assert self.stored is not None
        dataset = copy.deepcopy(self.stored.dataset)
        dataset.ProcedureStepState = COMPLETED
        record = UpsRecord(self.uid, COMPLETED, dataset, None, self.stored.performer_ae)
        self._finish(event, record, True)
        self.outcome.reports.append(UpsReport(STATE_REPORT, state_report(dataset)))

    def cancel(self, event: EventData) -> None:
        assert self.stored is not None
        dataset = copy.deepcopy(self.stored.dataset)
        dataset.ProcedureStepState = CANCELED
        progress = _progress_item(dataset)
        progress.ProcedureStepCancellationDateTime = self.now
        for keyword in ("ReasonForCancellation", "ProcedureStepDiscontinuationReasonCodeSequence"):
            if keyword in self.attributes:
                progress[keyword] = copy.deepcopy(self.attributes[keyword])
        record = UpsRecord(self.uid, CANCELED, dataset, None, self.stored.performer_ae)
        self._finish(event, record, True)
        self.outcome.reports.append(UpsReport(STATE_REPORT, state_report(dataset)))

    def ask_performer(self, event: EventData) -> None:
        information = Dataset()
        information.RequestingAE = self.calling_ae
        for keyword in (
            "ReasonForCancellation",
            "ProcedureStepDiscontinuationReasonCodeSequence",
            "ContactURI",
            "ContactDisplayName",
        ):
            if keyword in self.attributes:
                information[keyword] = copy.deepcopy(self.attributes[keyword])
        self._finish(event, self.stored, False)
        self.outcome.reports.append(UpsReport(CANCEL_REQUESTED, information))

    def subscribe(self, event: EventData) -> None:
        assert self.stored is not None
        self._finish(event, self.stored, False)
        self.outcome.subscription = Subscription(
            self.receiving_ae, True, deletion_lock(self.attributes)
        )
        initial = state_report(self.stored.dataset)
        self.outcome.reports.append(UpsReport(STATE_REPORT, initial, (self.receiving_ae,)))

    def unsubscribe(self, event: EventData) -> None:
        self._finish(event, self.stored, False)
        if self.receiving_ae:
            self.outcome.subscription = Subscription(self.receiving_ae, False)


class GlobalStep:
    """An N-ACTION on a global subscription instance, for one receiving AE."""

    def __init__(
        self,
        subscribed: bool,
        attributes: Dataset | None,
        *,
        known_ae: Callable[[str], bool] = lambda ae: False,
        action_type: int | None = None,
    ) -> None:
        self.attributes = attributes if attributes is not None else Dataset()
        self.known_ae = known_ae
        self.action_type = action_type
        self.status = st.PROCESSING_FAILURE
        self.comment: str | None = None
        self.effect: str | None = None  # subscribe_globally, unsubscribe_globally, suspend
        GLOBAL_CHART.machine.set_state("Subscribed" if subscribed else "Unsubscribed", model=self)
        self.state: str

    @property
    def receiving_ae(self) -> str:
        value = self.attributes.get("ReceivingAE")
        return "" if value is None else str(value).strip()

    @property
    def deletion_lock(self) -> bool:
        return deletion_lock(self.attributes)

    def run(self, trigger: str) -> GlobalStep:
        GLOBAL_CHART.fire(self, trigger)
        return self

    def receiving_ae_unknown(self, event: EventData) -> bool:
        return not self.receiving_ae or not self.known_ae(self.receiving_ae)

    def _finish(self, event: EventData, effect: str | None) -> None:
        declared = Chart.declared(event)
        assert declared.status is not None
        self.status, self.effect = declared.status, effect
        template = _COMMENTS.get(declared.name)
        if template is not None:
            self.comment = template.format(
                receiving=self.receiving_ae, action_type=self.action_type
            )[:64]

    def refuse(self, event: EventData) -> None:
        self._finish(event, None)

    def subscribe_globally(self, event: EventData) -> None:
        self._finish(event, "subscribe")

    def unsubscribe_globally(self, event: EventData) -> None:
        self._finish(event, "unsubscribe")

    def suspend(self, event: EventData) -> None:
        self._finish(event, "suspend")


# -- report contents and rules ---------------------------------------------------------------
UPS_PUSH_CLASS: Final = "1.2.840.10008.5.1.4.34.6.1"
GLOBAL_SUBSCRIPTION: Final = "1.2.840.10008.5.1.4.34.5"
FILTERED_GLOBAL_SUBSCRIPTION: Final = "1.2.840.10008.5.1.4.34.5.1"


def action_trigger(action_type: int | None) -> str:
    """The chart input an N-ACTION Action Type ID stands for."""
    return ACTION_TRIGGERS.get(action_type if action_type is not None else -1, "other_action")


def global_trigger(action_type: int | None) -> str:
    """On a global instance, Change State and Request Cancel are the same inappropriate input."""
    trigger = action_trigger(action_type)
    return "change_state" if trigger in ("change_state", "request_cancel") else trigger


def deletion_lock(attributes: Dataset) -> bool:
    return str(attributes.get("DeletionLock", "")).strip().upper() == "TRUE"


def state_report(dataset: Dataset) -> Dataset:
    """Event Information of a UPS State Report (PS3.4 Table CC.2.4-2)."""
    report = Dataset()
    report.ProcedureStepState = dataset.get("ProcedureStepState", "")
    report.InputReadinessState = dataset.get("InputReadinessState", "")
    if report.ProcedureStepState == CANCELED:
        progress = _progress_item(dataset)
        for keyword in ("ReasonForCancellation", "ProcedureStepDiscontinuationReasonCodeSequence"):
            if keyword in progress:
                report[keyword] = copy.deepcopy(progress[keyword])
    return report


def assigned_report(before: Dataset, after: Dataset) -> list[Dataset]:
    """A UPS Assigned report when a station or human performer was (re)assigned."""
    changed = [
        k
        for k in _ASSIGNMENT_KEYS
        if after.get(k) and (before is after or after.get(k) != before.get(k))
    ]
    if not changed:
        return []
    report = Dataset()
    for keyword in _ASSIGNMENT_KEYS:
        if after.get(keyword):
            report[keyword] = copy.deepcopy(after[keyword])
    return [report]


def final_state_gaps(dataset: Dataset) -> list[str]:
    """What a UPS lacks to become COMPLETED (PS3.4 CC.2.5.1.3.1, final state "P" keys)."""
    performed = dataset.get("UnifiedProcedureStepPerformedProcedureSequence")
    if not performed:
        return ["UnifiedProcedureStepPerformedProcedureSequence"]
    item = performed[0]
    gaps = [
        k
        for k in ("PerformedProcedureStepStartDateTime", "PerformedProcedureStepEndDateTime")
        if not item.get(k)
    ]
    gaps += [
        k
        for k in (
            "PerformedStationNameCodeSequence",
            "PerformedWorkitemCodeSequence",
            "OutputInformationSequence",
        )
        if k not in item
    ]
    return gaps


def _progress_item(dataset: Dataset) -> Dataset:
    sequence = dataset.get("ProcedureStepProgressInformationSequence")
    if not sequence:
        dataset.ProcedureStepProgressInformationSequence = [Dataset()]
        sequence = dataset.ProcedureStepProgressInformationSequence
    item: Dataset = sequence[0]
    return item
