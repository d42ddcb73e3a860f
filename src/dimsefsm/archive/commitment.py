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
from typing import TYPE_CHECKING, Any, Final, Protocol

from pydicom import Dataset
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from dimsefsm import status as st
from dimsefsm.archive.db.schema import instance
from dimsefsm.archive.location import INDEX_DIRECTORY
from dimsefsm.services.commitment import (
    CLASS_INSTANCE_CONFLICT,
    DUPLICATE_TRANSACTION_UID,
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
class ReportChannel(Protocol):
    """The requesting association, as the desk sees it: open or not, and able to carry the
    report (the N-EVENT-REPORT's status, or None when no answer came, with why)."""

    def is_open(self) -> bool: ...

    def send_report(self, event_type: int, information: Dataset) -> tuple[int | None, str]: ...


AEFactory = Callable[[str], Any]


@dataclass
class DeskSettings:
    """How the desk reaches requestors: who we are, where they are, how often to try."""

    ae_title: str
    destinations: Mapping[str, tuple[str, int]]
    retries: int = DEFAULT_RETRIES
    retry_interval: float = DEFAULT_RETRY_INTERVAL
    tls: ssl.SSLContext | None = None
    timeouts: Mapping[str, float | None] | None = None  # AE attribute -> seconds


class CommitmentDesk:
    """Takes Storage Commitment requests and runs each exchange to its end on its own thread."""

    def __init__(
        self,
        settings: DeskSettings,
        check: Callable[[Sequence[Reference]], list[tuple[Reference, int | None]]],
        journal: CommitmentJournal,
        make_ae: AEFactory,
    ) -> None:
        self.settings = settings
        self.check = check
        self.journal = journal
        self.make_ae = make_ae
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[CommitmentExchange, threading.Thread] = {}
        self._pending_uids: set[str] = set()

    def copy(self, check: Callable[[Sequence[Reference]], Any]) -> CommitmentDesk:
        """A desk of the same settings and journal, its own check, threads and locks."""
        return CommitmentDesk(self.settings, check, self.journal, self.make_ae)

    # -- taking requests ------------------------------------------------------------------
    def request(
        self,
        action_type_id: object,
        instance_uid: object,
        information: Dataset | None,
        requestor_ae: str,
        channel: ReportChannel | None,
    ) -> tuple[RequestRefused | None, Callable[[], None] | None]:
        """Decide the N-ACTION: the refusal to answer, or None and what to run once the
        Success response is out (the exchange's start)."""
        parsed = parse_request(action_type_id, instance_uid, information)
        requestor = requestor_ae.strip()
        if isinstance(parsed, RequestRefused):
            LOG.warning(
                "storage commitment request from %s refused (0x%04X): %s",
                requestor,
                parsed.status,
                parsed.comment,
            )
            return parsed, None
        exchange = self._exchange(parsed, requestor)
        with self._lock:
            duplicate = parsed.transaction_uid in self._pending_uids or self.journal.holds(
                parsed.transaction_uid
            )
            if not duplicate:
                self._pending_uids.add(parsed.transaction_uid)
        if duplicate:
            LOG.warning(
                "storage commitment %s from %s: that Transaction UID is already being "
                "processed; each reference reported failed (0x%04X)",
                parsed.transaction_uid,
                requestor,
                DUPLICATE_TRANSACTION_UID,
            )
        else:
            try:
                self.journal.write(JournalEntry(parsed, requestor))
            except OSError as exc:
                with self._lock:
                    self._pending_uids.discard(parsed.transaction_uid)
                LOG.error(
                    "storage commitment %s from %s refused: the request cannot be kept: %s",
                    parsed.transaction_uid,
                    requestor,
                    exc,
                )
                return RequestRefused(
                    st.PROCESSING_FAILURE, f"the request cannot be kept: {exc.strerror}"
                ), None
        LOG.info(
            "storage commitment %s from %s: %d reference(s)",
            parsed.transaction_uid,
            requestor,
            len(parsed.references),
        )

        def start() -> None:
            exchange.accepted()
            self._start(exchange, channel, duplicate)

        return None, start

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
            exchange = self._exchange(entry.request, entry.requestor_ae)
            exchange.resumed()
            self._start(exchange, None, duplicate=False)
        return len(entries)

    def _exchange(self, request: CommitmentRequest, requestor: str) -> CommitmentExchange:
        return CommitmentExchange(
            request,
            requestor,
            self.settings.destinations.get(requestor),
            retries=self.settings.retries,
            retry_interval=self.settings.retry_interval,
        )

    # -- running --------------------------------------------------------------------------
    def _start(
        self, exchange: CommitmentExchange, channel: ReportChannel | None, duplicate: bool
    ) -> None:
        thread = threading.Thread(
            target=self.run,
            args=(exchange, channel, duplicate),
            name=f"stgcmt-{exchange.transaction_uid[-12:]}",
            daemon=True,
        )
        with self._lock:
            self._running[exchange] = thread
        thread.start()

    def run(
        self,
        exchange: CommitmentExchange,
        channel: ReportChannel | None,
        duplicate: bool = False,
    ) -> None:
        """Carry out the exchange's effects until it ends (the exchange's own thread).

        ``duplicate``: its Transaction UID was already pending; it is reported failed
        (0x0131) and neither journaled nor allowed to touch the first one's entry."""
        runner = _Runner(self, exchange, channel, duplicate)
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
                if not duplicate:
                    self._pending_uids.discard(exchange.transaction_uid)

    def stop(self, timeout: float = 5.0) -> None:
        """End the retry waits (their exchanges stay journaled) and wait for the threads."""
        self._stop.set()
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every exchange has ended (tests and the benchmark); False on timeout."""
        with self._lock:
            threads = list(self._running.values())
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            return not self._running


class _Runner:
    """Performs one exchange's effects and feeds their outcomes back as its inputs."""

    def __init__(
        self,
        desk: CommitmentDesk,
        exchange: CommitmentExchange,
        channel: ReportChannel | None,
        duplicate: bool,
    ) -> None:
        self.desk = desk
        self.exchange = exchange
        self.channel = channel
        self.duplicate = duplicate
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
            outcome = self._check()
            connected = self.channel is not None and self.channel.is_open()
            exchange.checked(outcome, connected)
        elif isinstance(effect, SendReport):
            self._send(effect.same_association)
        elif isinstance(effect, OpenReportAssociation):
            self._dial(effect)
        elif isinstance(effect, WaitToRetry):
            if self.desk._stop.wait(effect.seconds):
                exchange.stopped()
            else:
                exchange.retry_due()
        elif isinstance(effect, Finished):
            self.close()
            if not effect.kept and not self.duplicate:
                self.desk.journal.remove(exchange.transaction_uid)

    def _check(self) -> CommitmentOutcome:
        request = self.exchange.request
        if self.duplicate:
            return CommitmentOutcome(
                request.transaction_uid,
                failed=tuple((r, DUPLICATE_TRANSACTION_UID) for r in request.references),
            )
        return outcome_of(request.transaction_uid, self.desk.check(request.references))

    def _report(self) -> tuple[int, Dataset]:
        outcome = self.exchange.outcome
        assert outcome is not None
        return outcome.event_type, report_dataset(outcome, self.desk.settings.ae_title)

    def _send(self, same_association: bool) -> None:
        event_type, information = self._report()
        if same_association:
            assert self.channel is not None
            status, why = self.channel.send_report(event_type, information)
        else:
            status, why = self._send_on_own(event_type, information)
        if status is None:
            self.exchange.report_unanswered(why)
        else:
            self.exchange.report_answered(status)

    def _send_on_own(self, event_type: int, information: Dataset) -> tuple[int | None, str]:
        assoc = self.assoc
        if assoc is None or not assoc.is_established:
            return None, "our association to the requestor is gone"
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
        for name, seconds in (settings.timeouts or {}).items():
            setattr(ae, name, seconds)
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
