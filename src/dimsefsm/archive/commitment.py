"""qrscp as Storage Commitment SCP: the references checked against the archive, the report
delivered, the request kept until it is.

The protocol (what a request and a report hold, the exchange's chart) lives in
:mod:`dimsefsm.services.commitment`; this module gives it the archive and the
network:

* **Honest**: an instance is committed only when the index lists it with the
  same SOP class *and* its file is on disk (:func:`check_references`).  Not
  held: 0x0112 No such object instance; held under another SOP class: 0x0119
  Class / Instance conflict; not held and of a SOP class the archive does not
  store: 0x0122; the index unreadable: 0x0110 Processing failure for all.
* **Durable**: a request is written to the journal
  (``<storage>/.dimsefsm/commitment/<Transaction UID>.json``, written to a
  temporary file and renamed, so never half-written) *before* the N-ACTION is
  answered Success; a journal that cannot be written is answered 0x0110 with
  an ErrorComment.  The entry goes when the report was delivered or given up
  (logged as an error saying it was not delivered).  A server that stops
  before then leaves it (logged); at the next start :meth:`CommitmentDesk.resume`
  checks it again and delivers it on a new association.
* **Delivered**: on the requesting association while it is open, else on a
  new association to the requestor's address: a peer that may ``receive``
  (the C-MOVE destinations, ``--dest`` included), proposing Storage
  Commitment with our SCP role.  An unreachable requestor is tried again
  ``retries`` times, ``retry_interval`` seconds apart: the waits are the
  runner's timer, fed to the chart as ``retry_due``.

Each exchange runs on a thread of its own (the desk's), so a slow or absent
requestor never holds an association thread of the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pydicom import Dataset
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from dimsefsm import status as st
from dimsefsm.archive.db.schema import instance
from dimsefsm.archive.location import INDEX_DIRECTORY
from dimsefsm.services.commitment import (
    CLASS_INSTANCE_CONFLICT,
    DUPLICATE_TRANSACTION_UID,
    FAILURE_REASONS,
    NO_SUCH_OBJECT_INSTANCE,
    PROCESSING_FAILURE,
    SOP_CLASS_NOT_SUPPORTED,
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
    CheckReferences,
    CommitmentEffect,
    CommitmentExchange,
    CommitmentOutcome,
    CommitmentRequest,
    Finished,
    OpenReportAssociation,
    Reference,
    RequestRefused,
    SendReport,
    WaitToRetry,
    outcome_of,
    parse_request,
    report_dataset,
)
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN, lookup

if TYPE_CHECKING:
    from dimsefsm.archive.index import ArchiveIndex

LOG = logging.getLogger("dimsefsm.commitment")

JOURNAL_DIRECTORY: Final = "commitment"
DEFAULT_RETRIES: Final = 3
DEFAULT_RETRY_INTERVAL: Final = 10.0
_QUERY_CHUNK: Final = 500  # UIDs per IN (...): below SQLite's and PostgreSQL's limits
REPORT_SYNTAXES: Final = (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN)
# The Failure Reasons qrscp's check gives (PS3.3 C.14.1.1).
FAILURE_REASON_NAMES: Final = {
    code: FAILURE_REASONS[code]
    for code in (
        NO_SUCH_OBJECT_INSTANCE,
        CLASS_INSTANCE_CONFLICT,
        SOP_CLASS_NOT_SUPPORTED,
        PROCESSING_FAILURE,
        DUPLICATE_TRANSACTION_UID,
    )
}
# How an N-ACTION is refused, in the order it is checked (services.commitment.parse_request).
REQUEST_REFUSALS: Final = (
    (st.NOT_AUTHORIZED, "peers are listed and the requestor may not `store`"),
    (st.NO_SUCH_ACTION, "the Action Type ID is not 1"),
    (st.INVALID_OBJECT_INSTANCE, "the Requested SOP Instance UID is not the well-known one"),
    (
        st.MISSING_ATTRIBUTE,
        "Transaction UID or Referenced SOP Sequence (or an item's UID) is absent",
    ),
    (st.MISSING_ATTRIBUTE_VALUE, "one of them is empty"),
    (st.INVALID_ARGUMENT_VALUE, "a value is not a UID"),
    (st.PROCESSING_FAILURE, "the request cannot be journaled"),
)


# -- the check ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Held:
    sop_class_uid: str | None
    path: Path


def held_instances(index: ArchiveIndex, uids: Sequence[str]) -> dict[str, Held]:
    """What the index lists for these SOP Instance UIDs (a few queries, not one per UID)."""
    found: dict[str, Held] = {}
    columns = (instance.c.sop_uid, instance.c.sop_class_uid, instance.c.path)
    with index.engine.connect() as connection:
        for start in range(0, len(uids), _QUERY_CHUNK):
            chunk = list(uids[start : start + _QUERY_CHUNK])
            rows = connection.execute(select(*columns).where(instance.c.sop_uid.in_(chunk)))
            for row in rows:
                found[row.sop_uid] = Held(row.sop_class_uid, index.directory / row.path)
    return found


def check_references(
    index: ArchiveIndex, references: Sequence[Reference]
) -> list[tuple[Reference, int | None]]:
    """Each reference with None (committed) or its Failure Reason (PS3.3 C.14.1.1)."""
    try:
        held = held_instances(index, sorted({r.sop_instance_uid for r in references}))
    except SQLAlchemyError as exc:
        LOG.error("storage commitment: the index cannot be read, nothing committed: %s", exc)
        return [(r, PROCESSING_FAILURE) for r in references]
    checked: list[tuple[Reference, int | None]] = []
    for reference in references:
        found = held.get(reference.sop_instance_uid)
        if found is not None and found.sop_class_uid == reference.sop_class_uid:
            if found.path.is_file():
                checked.append((reference, None))
                continue
            LOG.warning(
                "storage commitment: %s is indexed but its file %s is missing: not committed",
                reference.sop_instance_uid,
                found.path,
            )
            checked.append((reference, NO_SUCH_OBJECT_INSTANCE))
        elif found is not None:
            checked.append((reference, CLASS_INSTANCE_CONFLICT))
        elif lookup(reference.sop_class_uid) is None:
            checked.append((reference, SOP_CLASS_NOT_SUPPORTED))
        else:
            checked.append((reference, NO_SUCH_OBJECT_INSTANCE))
    return checked


# -- the journal --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JournalEntry:
    request: CommitmentRequest
    requestor_ae: str


class CommitmentJournal:
    """Requests accepted and not yet reported, one JSON file each, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def for_storage(cls, storage: Path) -> CommitmentJournal:
        return cls(storage / INDEX_DIRECTORY / JOURNAL_DIRECTORY)

    def _path(self, transaction_uid: str) -> Path:
        return self.directory / f"{transaction_uid}.json"

    def holds(self, transaction_uid: str) -> bool:
        return self._path(transaction_uid).exists()

    def write(self, entry: JournalEntry) -> None:
        """Keep ``entry``; ``OSError`` if it could not be kept (then nothing is left behind)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(entry.request.transaction_uid)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        text = json.dumps(
            {
                "transaction_uid": entry.request.transaction_uid,
                "requestor_ae": entry.requestor_ae,
                "references": [
                    [r.sop_class_uid, r.sop_instance_uid] for r in entry.request.references
                ],
            }
        )
        try:
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    def remove(self, transaction_uid: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(transaction_uid).unlink()

    def entries(self) -> list[JournalEntry]:
        """Every kept request (an unreadable file is logged and left for a person to see)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                request = CommitmentRequest(
                    str(data["transaction_uid"]),
                    tuple(Reference(str(c), str(i)) for c, i in data["references"]),
                )
                found.append(JournalEntry(request, str(data["requestor_ae"])))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                LOG.error("storage commitment journal %s cannot be read, skipped: %s", path, exc)
        return found


# -- delivering -----------------------------------------------------------------------------
AEFactory = Callable[[str], Any]
Check = Callable[[Sequence[Reference]], list[tuple[Reference, int | None]]]


@dataclass
class DeskSettings:
    """How the desk reaches requestors: who we are, where they are, how often to try."""

    ae_title: str
    destinations: Mapping[str, tuple[str, int]]
    retries: int = DEFAULT_RETRIES
    retry_interval: float = DEFAULT_RETRY_INTERVAL
    tls: ssl.SSLContext | None = None
    same_association: bool = True  # False: always a new association (some SCUs want that)


class CommitmentDesk:
    """Takes Storage Commitment requests and carries each exchange to its end.

    While the requesting association is open, the exchange's effects are
    performed on that association's own thread (:class:`SameAssociationReport`,
    an SCP operation its server steps once the N-ACTION response is out);
    whatever is left once it has ended (dialling the requestor, the retries)
    continues on a thread of the desk's, so no association thread waits for a
    requestor that has gone.
    """

    def __init__(
        self, settings: DeskSettings, check: Check, journal: CommitmentJournal, make_ae: AEFactory
    ) -> None:
        self.settings = settings
        self.check = check
        self.journal = journal
        self.make_ae = make_ae
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[CommitmentExchange, threading.Thread] = {}
        self._pending_uids: set[str] = set()

    def copy(self, check: Check) -> CommitmentDesk:
        """A desk of the same settings and journal, its own check, threads and locks."""
        return CommitmentDesk(self.settings, check, self.journal, self.make_ae)

    # -- taking requests ------------------------------------------------------------------
    def request(
        self,
        action_type_id: object,
        instance_uid: object,
        information: Dataset | None,
        requestor_ae: str,
    ) -> RequestRefused | CommitmentExchange:
        """Decide an N-ACTION: the refusal to answer it with, or the accepted exchange
        (journaled; its ``accepted`` input fired), to be started with :meth:`start`."""
        parsed = parse_request(action_type_id, instance_uid, information)
        requestor = requestor_ae.strip()
        if isinstance(parsed, RequestRefused):
            LOG.warning(
                "storage commitment request from %s refused (0x%04X): %s",
                requestor,
                parsed.status,
                parsed.comment,
            )
            return parsed
        uid = parsed.transaction_uid
        with self._lock:
            duplicate = uid in self._pending_uids or self.journal.holds(uid)
            if not duplicate:
                self._pending_uids.add(uid)
        exchange = self._exchange(parsed, requestor, duplicate)
        if duplicate:
            LOG.warning(
                "storage commitment %s from %s: that Transaction UID is already being "
                "processed; each reference reported failed (0x%04X)",
                uid,
                requestor,
                DUPLICATE_TRANSACTION_UID,
            )
        else:
            try:
                self.journal.write(JournalEntry(parsed, requestor))
            except OSError as exc:
                with self._lock:
                    self._pending_uids.discard(uid)
                LOG.error(
                    "storage commitment %s from %s refused: the request cannot be kept: %s",
                    uid,
                    requestor,
                    exc,
                )
                return RequestRefused(
                    st.PROCESSING_FAILURE, f"the request cannot be kept: {exc.strerror}"
                )
        LOG.info(
            "storage commitment %s from %s: %d reference(s)",
            uid,
            requestor,
            len(parsed.references),
        )
        exchange.accepted()
        return exchange

    def answer(self, event: Any, may_request: Callable[[str], bool]) -> tuple[Any, None]:
        """The ``EVT_N_ACTION`` handler's answer for Storage Commitment (qrscp's).

        ``may_request(calling AE title)``: whether that peer may ask (qrscp: one that
        may ``store``); any other is refused 0x0124 with an ErrorComment.
        """
        calling = str(event.assoc.negotiated.peer_ae).strip()
        if not may_request(calling):
            LOG.warning("storage commitment request from %r refused: it may not store", calling)
            return _status(st.NOT_AUTHORIZED, f"{calling} may not request storage commitment")
        command = event.request.command
        decided = self.request(
            event.action_type,
            command.get("RequestedSOPInstanceUID"),
            event.action_information,
            calling,
        )
        if isinstance(decided, RequestRefused):
            return _status(decided.status, decided.comment)
        self.start(decided, event.assoc)
        return st.SUCCESS, None

    def start(self, exchange: CommitmentExchange, engine: Any | None) -> None:
        """Run ``exchange`` on the requesting association's ``engine`` (an acceptor's
        :class:`~dimsefsm.engine.AssociationEngine`) while it is open, else detached."""
        if engine is None or not engine.is_established or not self.settings.same_association:
            self.detach(exchange)
            return
        # A key no request's Message ID takes (those are 0..65535): C-CANCEL never finds it.
        engine.start_scp_operation(-1 - id(exchange), SameAssociationReport(self, exchange, engine))

    def resume(self) -> int:
        """Take up the journaled requests of an earlier run; how many."""
        entries = self.journal.entries()
        for entry in entries:
            with self._lock:
                if entry.request.transaction_uid in self._pending_uids:
                    continue
                self._pending_uids.add(entry.request.transaction_uid)
            LOG.info(
                "storage commitment %s from %s: taken up from the journal",
                entry.request.transaction_uid,
                entry.requestor_ae,
            )
            exchange = self._exchange(entry.request, entry.requestor_ae, duplicate=False)
            exchange.resumed()
            self.detach(exchange)
        return len(entries)

    def _exchange(
        self, request: CommitmentRequest, requestor: str, duplicate: bool
    ) -> CommitmentExchange:
        return CommitmentExchange(
            request,
            requestor,
            self.settings.destinations.get(requestor),
            retries=self.settings.retries,
            retry_interval=self.settings.retry_interval,
            duplicate=duplicate,
        )

    # -- performing effects, wherever the exchange runs -----------------------------------
    def outcome(self, exchange: CommitmentExchange) -> CommitmentOutcome:
        """The check's outcome (a repeated Transaction UID fails every reference, 0x0131)."""
        request = exchange.request
        if exchange.duplicate:
            return CommitmentOutcome(
                request.transaction_uid,
                failed=tuple((r, DUPLICATE_TRANSACTION_UID) for r in request.references),
            )
        return outcome_of(request.transaction_uid, self.check(request.references))

    def report(self, exchange: CommitmentExchange) -> tuple[int, Dataset]:
        outcome = exchange.outcome
        assert outcome is not None
        return outcome.event_type, report_dataset(outcome, self.settings.ae_title)

    def finished(self, exchange: CommitmentExchange, effect: Finished) -> None:
        if not effect.kept and not exchange.duplicate:
            self.journal.remove(exchange.transaction_uid)
        if not exchange.duplicate:
            with self._lock:
                self._pending_uids.discard(exchange.transaction_uid)

    # -- the desk's threads ---------------------------------------------------------------
    def detach(self, exchange: CommitmentExchange) -> None:
        """Carry on with ``exchange`` (its queued effects first) on a thread of the desk's."""
        thread = threading.Thread(
            target=self.run,
            args=(exchange,),
            name=f"stgcmt-{exchange.transaction_uid[-12:]}",
            daemon=True,
        )
        with self._lock:
            self._running[exchange] = thread
        thread.start()

    def run(self, exchange: CommitmentExchange) -> None:
        """Carry out the exchange's effects until it ends (on a desk thread)."""
        runner = _Detached(self, exchange)
        try:
            runner.run()
        except Exception:
            LOG.exception(
                "storage commitment %s: the exchange failed; the request stays in the journal",
                exchange.transaction_uid,
            )
        finally:
            runner.close()
            with self._lock:
                self._running.pop(exchange, None)

    def stop(self, timeout: float = 5.0) -> None:
        """End the retry waits (their exchanges stay journaled) and wait for the threads."""
        self._stop.set()
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no desk thread runs an exchange (tests, the benchmark); False if one
        still does after ``timeout``."""
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            return not self._running


def _status(code: int, comment: str) -> tuple[Dataset, None]:
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]  # LO: 64 characters at most
    return status, None


class SameAssociationReport:
    """An exchange's steps on the requesting association, as an SCP operation of its engine.

    The server steps it after the N-ACTION response is out (the check, then the
    N-EVENT-REPORT-RQ) and again once the report's response came; reads in
    between go on as usual.  When the association ends first (:meth:`close`),
    or the exchange asks for what only a desk thread may do (dial, wait), the
    rest is handed to the desk.
    """

    def __init__(self, desk: CommitmentDesk, exchange: CommitmentExchange, engine: Any) -> None:
        self.desk = desk
        self.exchange = exchange
        self.engine = engine
        self.awaiting: Any = None  # the N-EVENT-REPORT request on the wire
        self.handed_over = False

    @property
    def ready(self) -> bool:
        return self.awaiting is None or self.awaiting.done

    @property
    def done(self) -> bool:
        return self.handed_over or self.exchange.done

    def step(self) -> None:
        self._collect()
        self._perform()

    def _collect(self) -> None:
        """The report's answer, if one is awaited: its status, or that none came."""
        awaiting, self.awaiting = self.awaiting, None
        if awaiting is None:
            return
        status, _ = awaiting.reply() if awaiting.done else (Dataset(), None)
        if "Status" in status:
            self.exchange.report_answered(int(status.Status))
        else:
            self.exchange.report_unanswered("the requesting association ended first")

    def _perform(self) -> None:
        exchange = self.exchange
        while not self.handed_over:
            effects = exchange.take_effects()
            if not effects:
                return
            for number, effect in enumerate(effects):
                if isinstance(effect, CheckReferences):
                    exchange.checked(self.desk.outcome(exchange), self.engine.is_established)
                elif isinstance(effect, SendReport) and effect.same_association:
                    self._send()
                elif isinstance(effect, Finished):
                    self.desk.finished(exchange, effect)
                else:  # dialling, retrying: not on this association's thread
                    self._hand_over(effects[number:])
                    return

    def _send(self) -> None:
        from dimsefsm.services.normalized import N_EVENT_REPORT, start_n_request

        event_type, information = self.desk.report(self.exchange)
        try:
            self.awaiting = start_n_request(
                self.engine,
                N_EVENT_REPORT,
                STORAGE_COMMITMENT_PUSH_MODEL,
                STORAGE_COMMITMENT_INSTANCE,
                information,
                event_type=event_type,
            )
        except (RuntimeError, ValueError) as exc:  # gone meanwhile, or no context to send on
            self.exchange.report_unanswered(str(exc))

    def _hand_over(self, effects: list[CommitmentEffect]) -> None:
        self.handed_over = True
        self.exchange.outbox[:0] = effects
        self.desk.detach(self.exchange)

    def cancel(self) -> None:
        """C-CANCEL has no meaning for Storage Commitment; never reached (see the key)."""

    def close(self) -> None:
        """The association ended (the answer to the report may have come just before):
        what is left is done here if it is only the end, else by the desk."""
        if self.done:
            return
        self._collect()
        self._perform()
        if not self.done:
            self._hand_over([])


class _Detached:
    """Performs an exchange's effects on a desk thread, feeding back their outcomes."""

    def __init__(self, desk: CommitmentDesk, exchange: CommitmentExchange) -> None:
        self.desk = desk
        self.exchange = exchange
        self.assoc: Any = None  # the association we requested for the report

    def run(self) -> None:
        exchange = self.exchange
        while True:
            effects = exchange.take_effects()
            if not effects:
                return
            for effect in effects:
                if self.desk._stop.is_set() and not exchange.done:
                    exchange.stopped()
                    break
                self.perform(effect)

    def perform(self, effect: CommitmentEffect) -> None:
        exchange = self.exchange
        if isinstance(effect, CheckReferences):
            exchange.checked(self.desk.outcome(exchange), requestor_connected=False)
        elif isinstance(effect, SendReport):
            status, why = self._send()
            if status is None:
                exchange.report_unanswered(why)
            else:
                exchange.report_answered(status)
        elif isinstance(effect, OpenReportAssociation):
            self._dial(effect)
        elif isinstance(effect, WaitToRetry):
            if self.desk._stop.wait(effect.seconds):
                exchange.stopped()
            else:
                exchange.retry_due()
        elif isinstance(effect, Finished):
            self.close()
            self.desk.finished(exchange, effect)

    def _send(self) -> tuple[int | None, str]:
        assoc = self.assoc
        if assoc is None or not assoc.is_established:
            return None, "our association to the requestor is gone"
        event_type, information = self.desk.report(self.exchange)
        try:
            status, _ = assoc.send_n_event_report(
                information,
                event_type,
                STORAGE_COMMITMENT_PUSH_MODEL,
                STORAGE_COMMITMENT_INSTANCE,
            )
        except Exception as exc:  # the association failed under the send
            return None, f"the report could not be sent: {exc}"
        if "Status" not in status:
            return None, assoc.describe_failure() or "no answer to the report"
        return int(status.Status), ""

    def _dial(self, effect: OpenReportAssociation) -> None:
        settings = self.desk.settings
        ae = self.desk.make_ae(settings.ae_title)
        ae.add_requested_context(STORAGE_COMMITMENT_PUSH_MODEL, REPORT_SYNTAXES)
        # PS3.4 J.3.3: the SCP requesting the association proposes the SCP role.
        ae.propose_role(STORAGE_COMMITMENT_PUSH_MODEL, scu_role=False, scp_role=True)
        host, port = effect.address
        tls_args = (settings.tls, host) if settings.tls is not None else None
        assoc = ae.associate(host, port, ae_title=effect.called_ae, tls_args=tls_args)
        if not assoc.is_established:
            self.exchange.assoc_failed(assoc.describe_failure())
            return
        self.assoc = assoc
        role = any(
            c.abstract_syntax == STORAGE_COMMITMENT_PUSH_MODEL and c.as_scp
            for c in assoc.negotiated.contexts.values()
        )
        if not role:
            self.close()
        self.exchange.assoc_accepted(role)

    def close(self) -> None:
        """Release the association we requested, if one is open."""
        assoc, self.assoc = self.assoc, None
        if assoc is not None and assoc.is_established:
            assoc.release()


# -- the conformance statement --------------------------------------------------------------
def describe_commitment() -> list[str]:
    """qrscp's Storage Commitment SCP behaviour, for the conformance statement (PS3.2 N):
    the Failure Reasons the check gives, the refusals kept beside ``parse_request`` and
    the ``[commitment]`` defaults."""
    from dimsefsm.archive.config import Commitment

    defaults = Commitment()
    reasons = ", ".join(f"0x{code:04X} {name}" for code, name in FAILURE_REASON_NAMES.items())
    refusals = "; ".join(f"0x{code:04X} when {when}" for code, when in REQUEST_REFUSALS)
    return [
        f"- N-ACTION Request Storage Commitment (Action Type ID 1) on the well-known SOP "
        f"instance {STORAGE_COMMITMENT_INSTANCE}: answered at once, 0x0000 once the request "
        f"is journaled (`<storage>/.dimsefsm/{JOURNAL_DIRECTORY}/`), else with the failure "
        f"status and an ErrorComment, nothing journaled: {refusals}.",
        "- A reference is committed when the index lists its SOP Instance UID under the same "
        f"SOP Class UID and its file exists; otherwise it is in the Failed SOP Sequence with "
        f"one of: {reasons}. Event Type ID 1 when all are committed, 2 otherwise.",
        "- The N-EVENT-REPORT goes on the requesting association while it is open "
        "(`[commitment] same_association`), else (or when the requestor answers it there "
        "with a failure) on an association to the requestor, a peer that may `receive`, "
        "proposing Storage Commitment with SCP/SCU role selection (SCU 0, SCP 1); "
        f"retried `retries` times (default {defaults.retries}), `retry_interval` seconds "
        f"apart (default {defaults.retry_interval:g}), then logged as not delivered. A "
        "request journaled when qrscp stops is checked and reported when it starts again.",
    ]
