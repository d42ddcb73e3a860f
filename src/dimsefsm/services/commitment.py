"""Storage Commitment Push Model (PS3.4 Annex J): the request, the report and the exchange.

A Storage Commitment SCU asks with an N-ACTION (Action Type ID 1, "Request
Storage Commitment") on the well-known SOP instance 1.2.840.10008.1.20.1.1,
naming a Transaction UID and the instances (SOP class + instance UID) it wants
kept.  The SCP answers the N-ACTION at once, then checks, then sends the
outcome as an N-EVENT-REPORT: Event Type 1 when every instance is committed,
2 when some failed (each with its Failure Reason, PS3.3 C.14.1.1).  The report
goes on the requesting association while it is open, otherwise on a new
association the SCP requests, proposing the Storage Commitment context with
the SCP role (SCP/SCU Role Selection, PS3.4 J.3.3).

This module is sans-I/O.  It parses and checks the request
(:func:`parse_request`), builds and reads the two data sets
(:func:`request_dataset`, :func:`report_dataset`, :func:`parse_report`), and
declares the SCP's exchange as one chart (``storage-commitment-scp``): a
:class:`CommitmentExchange` takes inputs (``accepted``, ``checked``,
``assoc_accepted``, ``report_answered``, ``retry_due`` ...) and queues effects
(:class:`CheckReferences`, :class:`SendReport`, :class:`OpenReportAssociation`,
:class:`WaitToRetry`, :class:`Finished`) for whoever runs it, which performs
them and reports their outcomes back as inputs (``archive.commitment`` in
qrscp).  Timeouts and retries are therefore transitions of the chart, and
nothing here waits, dials or touches a file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydicom import Dataset, config
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import BaseTag
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.fsm import Chart, Refusal, transition
from dimsefsm.sop_class import (  # noqa: F401 (re-exported: the service's own names)
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
)
from dimsefsm.uid import uid_problem

LOG = logging.getLogger("dimsefsm.commitment")
_TRUSTED: Final = config.IGNORE

# STORAGE_COMMITMENT_PUSH_MODEL and the well-known STORAGE_COMMITMENT_INSTANCE every
# request and report names (PS3.4 J.3.2) come from the SOP class registry.

REQUEST_COMMITMENT: Final = 1
"""Action Type ID of "Request Storage Commitment" (PS3.4 Table J.3-1)."""
ALL_COMMITTED: Final = 1
"""Event Type ID "Storage Commitment Request Successful" (PS3.4 Table J.3-2)."""
FAILURES_EXIST: Final = 2
"""Event Type ID "Storage Commitment Request Complete - Failures Exist"."""

# Failure Reason (0008,1197) values, PS3.3 C.14.1.1.
PROCESSING_FAILURE: Final = st.PROCESSING_FAILURE
NO_SUCH_OBJECT_INSTANCE: Final = st.NO_SUCH_SOP_INSTANCE
RESOURCE_LIMITATION: Final = st.RESOURCE_LIMITATION
SOP_CLASS_NOT_SUPPORTED: Final = st.SOP_CLASS_NOT_SUPPORTED
CLASS_INSTANCE_CONFLICT: Final = st.CLASS_INSTANCE_CONFLICT
DUPLICATE_TRANSACTION_UID: Final = 0x0131
FAILURE_REASONS: Final = {
    PROCESSING_FAILURE: "Processing failure",
    NO_SUCH_OBJECT_INSTANCE: "No such object instance",
    RESOURCE_LIMITATION: "Resource limitation",
    SOP_CLASS_NOT_SUPPORTED: "Referenced SOP Class not supported",
    CLASS_INSTANCE_CONFLICT: "Class / Instance conflict",
    DUPLICATE_TRANSACTION_UID: "Duplicate transaction UID",
}


# -- the request ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reference:
    """One instance named by a request or a report."""

    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True)
class CommitmentRequest:
    """A well-formed N-ACTION "Request Storage Commitment"."""

    transaction_uid: str
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class RequestRefused:
    """Why an N-ACTION cannot be taken: the status and ErrorComment of its response."""

    status: int
    comment: str


def parse_request(
    action_type_id: object, instance_uid: object, information: Dataset | None
) -> CommitmentRequest | RequestRefused:
    """The request in an N-ACTION, or the failure status that answers it.

    In the order a reader of the request finds the faults: the action
    (0x0123 No such action), the SOP instance it is addressed to (0x0117
    Invalid object instance), then the Action Information: an absent
    attribute is 0x0120 Missing attribute, an empty one 0x0121 Missing
    attribute value, a value that is not a UID 0x0115 Invalid argument value.
    """
    if action_type_id != REQUEST_COMMITMENT:
        return RequestRefused(
            st.NO_SUCH_ACTION,
            f"no Action Type ID {action_type_id!r}: only 1 (Request Storage Commitment)",
        )
    if str(instance_uid or "").rstrip("\x00") != STORAGE_COMMITMENT_INSTANCE:
        return RequestRefused(
            st.INVALID_OBJECT_INSTANCE,
            f"Requested SOP Instance UID must be {STORAGE_COMMITMENT_INSTANCE}",
        )
    if information is None:
        return RequestRefused(st.MISSING_ATTRIBUTE, "no Action Information (Transaction UID)")
    refused = _transaction_problem(information)
    if refused is not None:
        return refused
    if "ReferencedSOPSequence" not in information:
        return RequestRefused(st.MISSING_ATTRIBUTE, "Referenced SOP Sequence is missing")
    items = information.ReferencedSOPSequence
    if not items:
        return RequestRefused(st.MISSING_ATTRIBUTE_VALUE, "Referenced SOP Sequence is empty")
    references = []
    for number, item in enumerate(items, start=1):
        uids = []
        for tag, keyword in ((_CLASS_TAG, "ReferencedSOPClassUID"), (_INSTANCE_TAG, _INSTANCE)):
            value = _uid_value(item, tag, keyword, f"item {number}: ")
            if isinstance(value, RequestRefused):
                return value
            uids.append(value)
        references.append(Reference(*uids))
    return CommitmentRequest(_text(information.TransactionUID), tuple(references))


_INSTANCE = "ReferencedSOPInstanceUID"
_TRANSACTION_TAG: Final = BaseTag(0x00081195)  # Transaction UID


def _transaction_problem(ds: Dataset) -> RequestRefused | None:
    value = _uid_value(ds, _TRANSACTION_TAG, "TransactionUID", "")
    return value if isinstance(value, RequestRefused) else None


def _uid_value(ds: Dataset, tag: BaseTag, keyword: str, where: str) -> str | RequestRefused:
    """The UID at ``tag`` (looked up by tag: thousands of items), or why it cannot be one."""
    element = ds.get(tag)
    if element is None:
        return RequestRefused(st.MISSING_ATTRIBUTE, f"{where}{keyword} is missing")
    value = element.value
    if value is None or value == "":
        return RequestRefused(st.MISSING_ATTRIBUTE_VALUE, f"{where}{keyword} has no value")
    problem = uid_problem(value)
    if problem is not None:
        return RequestRefused(st.INVALID_ARGUMENT_VALUE, f"{where}{keyword} {problem}")
    return _text(value)


def _text(value: Any) -> str:
    return str(value).rstrip("\x00")


def request_dataset(transaction_uid: str, references: Iterable[Reference]) -> Dataset:
    """The Action Information of a request for ``references``."""
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    ds.ReferencedSOPSequence = DicomSequence([_item(r) for r in references])
    return ds


# Dataset keys must be pydicom tags (its writer reads tag.element), not plain ints.
_CLASS_TAG: Final = BaseTag(0x00081150)  # Referenced SOP Class UID
_INSTANCE_TAG: Final = BaseTag(0x00081155)  # Referenced SOP Instance UID
_REASON_TAG: Final = BaseTag(0x00081197)  # Failure Reason


def _item(reference: Reference, reason: int | None = None) -> Dataset:
    """One reference as a sequence item, built from its tags: a report or request names
    thousands, and setting attributes by keyword costs pydicom a lookup each.  The UIDs
    were checked where they came from (the request, or the files), so pydicom's
    validation of each value is not paid again."""
    elements: dict[BaseTag, DataElement | RawDataElement] = {
        _CLASS_TAG: DataElement(
            _CLASS_TAG, "UI", reference.sop_class_uid, validation_mode=_TRUSTED
        ),
        _INSTANCE_TAG: DataElement(
            _INSTANCE_TAG, "UI", reference.sop_instance_uid, validation_mode=_TRUSTED
        ),
    }
    if reason is not None:
        elements[_REASON_TAG] = DataElement(_REASON_TAG, "US", reason, validation_mode=_TRUSTED)
    return Dataset(elements)


# -- the report -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CommitmentOutcome:
    """What a report says: the committed references and the failed ones with their reason."""

    transaction_uid: str
    committed: tuple[Reference, ...] = ()
    failed: tuple[tuple[Reference, int], ...] = ()

    @property
    def event_type(self) -> int:
        return FAILURES_EXIST if self.failed else ALL_COMMITTED


def report_dataset(outcome: CommitmentOutcome, retrieve_ae: str | None = None) -> Dataset:
    """The Event Information of the report of ``outcome`` (PS3.4 Table J.3-2).

    The Referenced SOP Sequence is left out when nothing was committed (Event
    Type 2 makes it conditional on a success); the Failed SOP Sequence only
    exists with Event Type 2.
    """
    ds = Dataset()
    ds.TransactionUID = outcome.transaction_uid
    if retrieve_ae and outcome.committed:
        ds.RetrieveAETitle = retrieve_ae
    if outcome.committed:
        ds.ReferencedSOPSequence = DicomSequence([_item(r) for r in outcome.committed])
    if outcome.failed:
        ds.FailedSOPSequence = DicomSequence([_item(r, why) for r, why in outcome.failed])
    return ds


def parse_report(event_type_id: object, information: Dataset | None) -> CommitmentOutcome:
    """The outcome a received report states; ``ValueError`` says why it cannot be read."""
    if event_type_id not in (ALL_COMMITTED, FAILURES_EXIST):
        raise ValueError(f"Event Type ID {event_type_id!r} is not 1 or 2")
    if information is None or not information.get("TransactionUID"):
        raise ValueError("the report has no Transaction UID")
    committed = tuple(
        _reference(i) for i in information.get("ReferencedSOPSequence", []) if _INSTANCE_TAG in i
    )
    failed = tuple(
        (_reference(i), _reason(i))
        for i in information.get("FailedSOPSequence", [])
        if _INSTANCE_TAG in i
    )
    if event_type_id == FAILURES_EXIST and not failed:
        raise ValueError("Event Type 2 (failures exist) without a Failed SOP Sequence")
    if event_type_id == ALL_COMMITTED and failed:
        raise ValueError("Event Type 1 (all committed) with a Failed SOP Sequence")
    return CommitmentOutcome(_text(information.TransactionUID), committed, failed)


def _reference(item: Dataset) -> Reference:
    sop_class = item.get(_CLASS_TAG)
    return Reference(
        "" if sop_class is None else _text(sop_class.value), _text(item[_INSTANCE_TAG].value)
    )


def _reason(item: Dataset) -> int:
    """A failed reference's Failure Reason; one without (or not a number) counts as 0x0110."""
    element = item.get(_REASON_TAG)
    value = None if element is None else element.value
    return value if isinstance(value, int) else PROCESSING_FAILURE


def outcome_of(
    transaction_uid: str, checked: Sequence[tuple[Reference, int | None]]
) -> CommitmentOutcome:
    """The outcome of a check: each reference with None (committed) or its Failure Reason."""
    return CommitmentOutcome(
        transaction_uid,
        tuple(r for r, why in checked if why is None),
        tuple((r, why) for r, why in checked if why is not None),
    )


# -- the exchange: effects ----------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class CheckReferences:
    """Check the references against the archive; answer with ``exchange.checked(...)``."""

    exchange: CommitmentExchange


@dataclass(frozen=True, eq=False)
class SendReport:
    """Send the report, on the requesting association or on the one the exchange opened;
    answer with ``report_answered(status)`` or ``report_unanswered(why)``."""

    exchange: CommitmentExchange
    same_association: bool


@dataclass(frozen=True, eq=False)
class OpenReportAssociation:
    """Request an association to ``address`` proposing Storage Commitment with our SCP role;
    answer with ``assoc_accepted(role_accepted)`` or ``assoc_failed(why)``."""

    exchange: CommitmentExchange
    address: tuple[str, int]
    called_ae: str


@dataclass(frozen=True, eq=False)
class WaitToRetry:
    """Call ``exchange.retry_due()`` after ``seconds`` (the runner's timer, not a sleep)."""

    exchange: CommitmentExchange
    seconds: float


@dataclass(frozen=True, eq=False)
class Finished:
    """The exchange ended: ``delivered`` or not; ``kept`` when it must resume after a restart."""

    exchange: CommitmentExchange
    delivered: bool
    kept: bool


CommitmentEffect = CheckReferences | SendReport | OpenReportAssociation | WaitToRetry | Finished

STATES: Final = (
    "Requested",
    "Checking",
    "ReportingSame",
    "Dialling",
    "ReportingNew",
    "Retrying",
    "Done",
    "Failed",
    "Suspended",
)
_LIVE: Final = ("Checking", "ReportingSame", "Dialling", "ReportingNew", "Retrying")
_ENDED: Final = ("Done", "Failed", "Suspended")

CHART = Chart(
    name="storage-commitment-scp",
    states=STATES,
    initial="Requested",
    final=_ENDED,
    doc="Storage Commitment SCP (PS3.4 J): the N-ACTION answered, the references checked, "
    "the N-EVENT-REPORT on the same association or on a new one, retried.",
    transitions=(
        transition(
            "accepted",
            "accepted",
            "Requested",
            "Checking",
            action="ask_check",
            when="The request is well formed and journaled: the N-ACTION is answered Success.",
        ),
        transition(
            "resumed",
            "resumed",
            "Requested",
            "Checking",
            action="ask_check",
            when="A journaled exchange is taken up again after a restart.",
        ),
        transition(
            "report_on_same_association",
            "checked",
            "Checking",
            "ReportingSame",
            guard="requestor_connected",
            action="send_on_same",
            when="The references are checked and the requesting association is still open.",
        ),
        transition(
            "dial_requestor",
            "checked",
            "Checking",
            "Dialling",
            guard="has_return_address",
            action="dial",
            when="The requesting association has ended; the requestor's address is known.",
        ),
        transition(
            "no_return_address",
            "checked",
            "Checking",
            "Failed",
            action="give_up",
            when="The requesting association has ended and the requestor has no known address "
            "(not a peer that may receive): the report is logged as undelivered.",
        ),
        transition(
            "report_delivered",
            "report_answered",
            ("ReportingSame", "ReportingNew"),
            "Done",
            guard="report_accepted",
            action="finish",
            when="The requestor answered the N-EVENT-REPORT with Success (or a warning).",
        ),
        transition(
            "same_association_refused",
            "report_answered",
            "ReportingSame",
            "Dialling",
            guard="has_return_address",
            action="dial",
            when="The requestor answered the report on its own association with a failure "
            "(it does not take reports there): it goes on a new association.",
        ),
        transition(
            "report_refused",
            "report_answered",
            ("ReportingSame", "ReportingNew"),
            "Failed",
            action="give_up",
            when="The requestor answered the N-EVENT-REPORT with a failure status on our "
            "association (or on its own, with no address to try): it refused the report.",
        ),
        transition(
            "same_association_lost",
            "report_unanswered",
            "ReportingSame",
            "Dialling",
            guard="has_return_address",
            action="dial",
            when="The requesting association ended (or timed out) before the report was "
            "answered: it goes on a new association.",
        ),
        transition(
            "same_association_lost_no_address",
            "report_unanswered",
            "ReportingSame",
            "Failed",
            action="give_up",
            when="The requesting association ended before the report was answered and the "
            "requestor has no known address.",
        ),
        transition(
            "report_association_lost",
            "report_unanswered",
            "ReportingNew",
            "Retrying",
            guard="retries_left",
            action="wait_to_retry",
            when="Our association ended (or the DIMSE timeout passed) before the report was "
            "answered; another attempt is allowed.",
        ),
        transition(
            "report_association_lost_last",
            "report_unanswered",
            "ReportingNew",
            "Failed",
            action="give_up",
            when="Our association ended before the report was answered, on the last attempt.",
        ),
        transition(
            "report_association_open",
            "assoc_accepted",
            "Dialling",
            "ReportingNew",
            guard="role_accepted",
            action="send_on_new",
            when="The requestor accepted Storage Commitment with our SCP role.",
        ),
        transition(
            "report_role_refused",
            "assoc_accepted",
            "Dialling",
            "Retrying",
            guard="retries_left",
            action="wait_to_retry",
            when="The requestor accepted the association but not Storage Commitment with our "
            "SCP role; another attempt is allowed.",
        ),
        transition(
            "report_role_refused_last",
            "assoc_accepted",
            "Dialling",
            "Failed",
            action="give_up",
            when="The requestor refused Storage Commitment with our SCP role, on the last attempt.",
        ),
        transition(
            "dial_failed",
            "assoc_failed",
            "Dialling",
            "Retrying",
            guard="retries_left",
            action="wait_to_retry",
            when="The requestor could not be reached, rejected or aborted the association; "
            "another attempt is allowed.",
        ),
        transition(
            "dial_failed_last",
            "assoc_failed",
            "Dialling",
            "Failed",
            action="give_up",
            when="The requestor could not be reached on the last attempt.",
        ),
        transition(
            "retry",
            "retry_due",
            "Retrying",
            "Dialling",
            action="dial",
            when="The retry interval has passed.",
        ),
        transition(
            "suspended",
            "stopped",
            ("Requested", *_LIVE),
            "Suspended",
            action="suspend",
            when="The server stops before the report was answered: the journal keeps the "
            "request and the report goes when the server starts again.",
        ),
    ),
    refusals=(
        Refusal(
            "accepted",
            ("Checking", "ReportingSame", "Dialling", "ReportingNew", "Retrying", *_ENDED),
            "a request is accepted once",
        ),
        Refusal(
            "resumed",
            ("Checking", "ReportingSame", "Dialling", "ReportingNew", "Retrying", *_ENDED),
            "only a journaled exchange, not yet running, resumes",
        ),
        Refusal(
            "checked",
            ("Requested", "ReportingSame", "Dialling", "ReportingNew", "Retrying", *_ENDED),
            "no check was asked for",
        ),
        Refusal(
            "report_answered",
            ("Requested", "Checking", "Dialling", "Retrying", *_ENDED),
            "no report is on the wire",
        ),
        Refusal(
            "report_unanswered",
            ("Requested", "Checking", "Dialling", "Retrying", *_ENDED),
            "no report is on the wire",
        ),
        Refusal(
            "assoc_accepted",
            ("Requested", "Checking", "ReportingSame", "ReportingNew", "Retrying", *_ENDED),
            "no association was requested",
        ),
        Refusal(
            "assoc_failed",
            ("Requested", "Checking", "ReportingSame", "ReportingNew", "Retrying", *_ENDED),
            "no association was requested",
        ),
        Refusal(
            "retry_due",
            ("Requested", "Checking", "ReportingSame", "Dialling", "ReportingNew", *_ENDED),
            "no retry is waiting",
        ),
        Refusal("stopped", _ENDED, "the exchange has ended"),
    ),
)


@dataclass(eq=False)
class CommitmentExchange:
    """One Storage Commitment request being checked and reported (the chart's model).

    ``retries`` is how many more associations may be requested after the
    first failed one; ``retry_interval`` the seconds between them.
    """

    request: CommitmentRequest
    requestor_ae: str
    return_address: tuple[str, int] | None = None
    retries: int = 3
    retry_interval: float = 10.0
    duplicate: bool = False  # its Transaction UID was already pending: every reference fails
    state: str = field(default="", init=False)
    outbox: list[CommitmentEffect] = field(default_factory=list, init=False)
    outcome: CommitmentOutcome | None = field(default=None, init=False)
    attempts: int = field(default=0, init=False)  # associations requested so far
    problem: str = field(default="", init=False)  # what went wrong last, for the log
    report_status: int | None = field(default=None, init=False)
    _connected: bool = field(default=False, init=False, repr=False)
    _role_accepted: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        CHART.attach(self)

    @property
    def transaction_uid(self) -> str:
        return self.request.transaction_uid

    @property
    def done(self) -> bool:
        return self.state in _ENDED

    def take_effects(self) -> list[CommitmentEffect]:
        effects, self.outbox = self.outbox, []
        return effects

    # -- inputs -------------------------------------------------------------------------
    def accepted(self) -> None:
        """The request is journaled; the N-ACTION is answered Success."""
        CHART.fire(self, "accepted")

    def resumed(self) -> None:
        """Taken from the journal after a restart."""
        CHART.fire(self, "resumed")

    def checked(self, outcome: CommitmentOutcome, requestor_connected: bool) -> None:
        """The references are checked; ``requestor_connected``: its association is open."""
        self.outcome = outcome
        self._connected = requestor_connected
        CHART.fire(self, "checked")

    def report_answered(self, status: int) -> None:
        self.report_status = status
        self.problem = f"the requestor answered the report 0x{status:04X}"
        CHART.fire(self, "report_answered")

    def report_unanswered(self, why: str) -> None:
        self.problem = why
        CHART.fire(self, "report_unanswered")

    def assoc_accepted(self, role_accepted: bool) -> None:
        self._role_accepted = role_accepted
        if not role_accepted:
            self.problem = "Storage Commitment with our SCP role was not accepted"
        CHART.fire(self, "assoc_accepted")

    def assoc_failed(self, why: str) -> None:
        self.problem = why
        CHART.fire(self, "assoc_failed")

    def retry_due(self) -> None:
        CHART.fire(self, "retry_due")

    def stopped(self) -> None:
        CHART.fire(self, "stopped")

    # -- guards -------------------------------------------------------------------------
    def requestor_connected(self, _: EventData) -> bool:
        return self._connected

    def has_return_address(self, _: EventData) -> bool:
        if self.return_address is None:
            self.problem = (
                f"{self.requestor_ae!r} has left and is not a peer that may receive "
                "(no host and port to send the report to)"
            )
            return False
        return True

    def report_accepted(self, _: EventData) -> bool:
        status = self.report_status
        return status is not None and st.category(status) in (
            st.Category.SUCCESS,
            st.Category.WARNING,
        )

    def role_accepted(self, _: EventData) -> bool:
        return self._role_accepted

    def retries_left(self, _: EventData) -> bool:
        return self.attempts <= self.retries

    # -- actions ------------------------------------------------------------------------
    def ask_check(self, _: EventData) -> None:
        self.outbox.append(CheckReferences(self))

    def send_on_same(self, _: EventData) -> None:
        self.outbox.append(SendReport(self, same_association=True))

    def send_on_new(self, _: EventData) -> None:
        self.outbox.append(SendReport(self, same_association=False))

    def dial(self, _: EventData) -> None:
        assert self.return_address is not None
        self.attempts += 1
        self.outbox.append(OpenReportAssociation(self, self.return_address, self.requestor_ae))

    def wait_to_retry(self, _: EventData) -> None:
        LOG.warning(
            "storage commitment %s: report to %s not delivered (attempt %d of %d): %s; "
            "again in %g s",
            self.transaction_uid,
            self.requestor_ae,
            self.attempts,
            self.retries + 1,
            self.problem,
            self.retry_interval,
        )
        self.outbox.append(WaitToRetry(self, self.retry_interval))

    def finish(self, event: EventData) -> None:
        outcome = self.outcome
        assert outcome is not None
        transition = event.transition
        same = transition is not None and transition.source == "ReportingSame"
        LOG.info(
            "storage commitment %s: report delivered to %s on %s association "
            "(%d committed, %d failed)",
            self.transaction_uid,
            self.requestor_ae,
            "its" if same else "a new",
            len(outcome.committed),
            len(outcome.failed),
        )
        self.outbox.append(Finished(self, delivered=True, kept=False))

    def give_up(self, event: EventData) -> None:
        LOG.error(
            "storage commitment %s: report to %s NOT delivered, given up: %s",
            self.transaction_uid,
            self.requestor_ae,
            self.problem or Chart.declared(event).name,
        )
        self.outbox.append(Finished(self, delivered=False, kept=False))

    def suspend(self, _: EventData) -> None:
        LOG.warning(
            "storage commitment %s: server stopping before the report to %s was delivered; "
            "kept in the journal, sent when the server starts again",
            self.transaction_uid,
            self.requestor_ae,
        )
        self.outbox.append(Finished(self, delivered=False, kept=True))
