"""qrscp as Unified Procedure Step SCP (PS3.4 CC): Push, Pull, Watch and Event.

Each N-CREATE, N-SET, N-GET and N-ACTION is one database transaction: the
UPS row (and its subscriptions) is read, the state model of
``services.ups_state`` decides, and only an accepted request writes, so a
refused one (a wrong Transaction UID, an N-SET on a COMPLETED UPS, a
duplicate SOP Instance UID) leaves the record exactly as it was.  SQLite
serialises the transaction (BEGIN IMMEDIATE), PostgreSQL locks the UPS row.
Records live in the archive's database, so they survive a restart and are
shared by the processes of one index.

The N-EVENT-REPORTs an accepted request causes (UPS State Report, Cancel
Requested, Progress Report, UPS Assigned) are queued after the commit and
sent by one worker thread, in order, each on a new association to the
subscriber: a known peer with an address (one that may ``receive``, as for
C-MOVE).  A subscriber that cannot be reached is logged and skipped; the
request that caused the report has been answered already.

C-FIND of UPS (UPS Pull and Watch) matches the stored attributes with the
worklist matching rules; the Transaction UID is in no response.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from pydicom import Dataset
from pydicom.uid import generate_uid
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from dimsefsm import status as st
from dimsefsm.archive.db.header import header_bytes, header_of
from dimsefsm.archive.db.schema import WRITE_OPTION
from dimsefsm.archive.db.ups_table import ups, ups_global_subscription, ups_subscription
from dimsefsm.archive.index import ArchiveIndex
from dimsefsm.qr.matching import compile_query
from dimsefsm.qr.models import response_identifier
from dimsefsm.qr.registry import UPS_FIND_CLASSES
from dimsefsm.services.ups_state import (
    FILTERED_GLOBAL_SUBSCRIPTION,
    GLOBAL_SUBSCRIPTION,
    STATE_REPORT,
    UPS_PUSH_CLASS,
    GlobalStep,
    StepOutcome,
    UpsRecord,
    UpsReport,
    UpsStep,
    action_trigger,
    global_trigger,
    state_report,
)
from dimsefsm.uid import uid_problem

LOG = logging.getLogger("dimsefsm.ups")

UPS_EVENT_CLASS: Final = "1.2.840.10008.5.1.4.34.6.4"
UPS_CLASSES: Final = (UPS_PUSH_CLASS, *UPS_FIND_CLASSES)
"""What qrscp accepts: Push (N-CREATE, N-ACTION cancel, N-GET), Pull, Watch and Query."""
GLOBAL_INSTANCES: Final = (GLOBAL_SUBSCRIPTION, FILTERED_GLOBAL_SUBSCRIPTION)


@dataclass(frozen=True)
class Delivery:
    """Reports for one receiving AE, in the order they arose."""

    receiver: str
    address: tuple[str, int]
    reports: tuple[tuple[str, int, Dataset], ...]  # (UPS instance UID, event type, information)


Sender = Callable[[Delivery], None]


class UpsService:
    """The UPS records of one archive, their subscriptions, and the handlers that serve them."""

    def __init__(
        self,
        index: ArchiveIndex,
        ae_title: str,
        destinations: Mapping[str, tuple[str, int]],
        sender: Sender | None = None,
    ) -> None:
        """``destinations``: the peers event reports can reach (AE title -> address).
        ``sender``: delivers one :class:`Delivery` (default: a new association each)."""
        self.index = index
        self.ae_title = ae_title
        self.destinations = destinations
        self.sender = sender if sender is not None else self._associate_and_send
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- life cycle ---------------------------------------------------------------------
    def close(self) -> None:
        """Send what is queued, then stop the delivery thread."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put(None)
            worker.join()

    def wait_delivered(self) -> None:
        """Block until every queued report has been sent (or given up on)."""
        self._queue.join()

    def knows(self, ae_title: str) -> bool:
        return ae_title.strip() in self.destinations

    # -- DIMSE handlers (pynetdicom's signatures) ----------------------------------------
    def on_n_create(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        given = event.request.command.get("AffectedSOPInstanceUID")
        uid = str(given) if given else generate_uid()
        outcome = self.request(uid, "n_create", event.attribute_list, _calling(event))
        if outcome.status == st.SUCCESS and not given:
            created = Dataset()
            created.SOPInstanceUID = uid  # the SCP assigned it (PS3.7 10.1.5.1.4)
            return st.SUCCESS, created
        return _status(outcome), None

    def on_n_set(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        uid = _requested(event)
        outcome = self.request(uid, "n_set", event.modification_list, _calling(event))
        return _status(outcome), None

    def on_n_get(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        uid = _requested(event)
        identifiers = [int(tag) for tag in event.attribute_identifiers]
        outcome = self.request(uid, "n_get", None, _calling(event), identifiers=identifiers)
        return _status(outcome), outcome.reply

    def on_n_action(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        uid = _requested(event)
        action_type = event.action_type
        information = event.action_information
        calling = _calling(event)
        if uid in GLOBAL_INSTANCES:
            status, comment = self.global_request(uid, action_type, information)
            return (status if comment is None else _dataset(status, comment)), None
        trigger = action_trigger(action_type)
        outcome = self.request(uid, trigger, information, calling, action_type=action_type)
        return _status(outcome), None

    # -- requests -----------------------------------------------------------------------
    def request(
        self,
        uid: str,
        trigger: str,
        attributes: Dataset | None,
        calling_ae: str,
        *,
        identifiers: list[int] | None = None,
        action_type: int | None = None,
    ) -> StepOutcome:
        """Apply one request to the UPS ``uid`` in one transaction; queue its reports."""
        if uid_problem(uid) is not None:
            return StepOutcome(st.INVALID_OBJECT_INSTANCE, f"not a UID: {uid!r}"[:64], None, False)
        try:
            outcome, receivers = self._transact(
                uid, trigger, attributes, calling_ae, identifiers or [], action_type
            )
        except SQLAlchemyError as exc:
            LOG.error("UPS %s %s: the database failed, nothing changed: %s", uid, trigger, exc)
            return StepOutcome(st.PROCESSING_FAILURE, "database failure", None, False)
        level = (
            logging.INFO
            if st.category(outcome.status) is st.Category.SUCCESS
            else (logging.WARNING)
        )
        LOG.log(
            level,
            "UPS %s %s from %r: 0x%04X%s",
            uid,
            trigger,
            calling_ae,
            outcome.status,
            f" ({outcome.comment})" if outcome.comment else "",
        )
        self._queue_reports(uid, outcome.reports, receivers)
        return outcome

    def _transact(
        self,
        uid: str,
        trigger: str,
        attributes: Dataset | None,
        calling_ae: str,
        identifiers: list[int],
        action_type: int | None,
    ) -> tuple[StepOutcome, list[str]]:
        with self.index.engine.connect() as connection:
            connection = connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                record = _load(connection, uid)
                subscribers = _subscribers(connection, uid)
                outcome = UpsStep(
                    uid,
                    record,
                    attributes,
                    calling_ae=calling_ae,
                    known_ae=self.knows,
                    subscribers=subscribers,
                    now=datetime.now().strftime("%Y%m%d%H%M%S"),
                    worklist_label=self.ae_title,
                    identifiers=identifiers,
                    action_type=action_type,
                ).run(trigger)
                if outcome.changed and outcome.record is not None:
                    try:
                        with connection.begin_nested():
                            _store(connection, outcome.record, created=record is None)
                    except IntegrityError:
                        # Another process created this UID between our read and our insert.
                        return (
                            StepOutcome(
                                st.DUPLICATE_SOP_INSTANCE,
                                "a UPS with this SOP Instance UID exists",
                                None,
                                False,
                            ),
                            [],
                        )
                    if record is None:
                        subscribers = set(
                            self._apply_global_subscriptions(connection, outcome.record)
                        )
                if outcome.subscription is not None:
                    _subscribe(connection, uid, outcome.subscription)
        return outcome, sorted(subscribers)

    def _apply_global_subscriptions(self, connection: Connection, record: UpsRecord) -> list[str]:
        """A new UPS gets the AEs subscribed globally (those whose filter it matches)."""
        added = []
        rows = connection.execute(select(ups_global_subscription)).all()
        for row in rows:
            keys = row.matching_keys
            if keys is not None and not compile_query(header_of(keys)).matches(record.dataset):
                continue
            connection.execute(
                insert(ups_subscription).values(
                    sop_uid=record.uid, ae_title=row.ae_title, deletion_lock=row.deletion_lock
                )
            )
            added.append(row.ae_title)
        return added

    def global_request(
        self, uid: str, action_type: int, information: Dataset | None
    ) -> tuple[int, str | None]:
        """An N-ACTION on a global subscription instance (Subscribe, Unsubscribe, Suspend)."""
        receiving = str((information or Dataset()).get("ReceivingAE", "")).strip()
        try:
            with self.index.engine.connect() as connection:
                connection = connection.execution_options(**{WRITE_OPTION: True})
                with connection.begin():
                    current = connection.execute(
                        select(ups_global_subscription.c.ae_title).where(
                            ups_global_subscription.c.ae_title == receiving
                        )
                    ).first()
                    step = GlobalStep(
                        current is not None,
                        information,
                        known_ae=self.knows,
                        action_type=action_type,
                    ).run(global_trigger(action_type))
                    initial = self._apply_global(connection, uid, step, information)
        except SQLAlchemyError as exc:
            LOG.error("UPS global %s: the database failed, nothing changed: %s", uid, exc)
            return st.PROCESSING_FAILURE, "database failure"
        LOG.info(
            "UPS global subscription of %r (action %d): 0x%04X%s",
            receiving,
            action_type,
            step.status,
            f" ({step.comment})" if step.comment else "",
        )
        for ups_uid, dataset in initial:
            self._queue_reports(
                ups_uid, [UpsReport(STATE_REPORT, state_report(dataset), (receiving,))], []
            )
        return step.status, step.comment

    def _apply_global(
        self, connection: Connection, uid: str, step: GlobalStep, information: Dataset | None
    ) -> list[tuple[str, Dataset]]:
        receiving = step.receiving_ae
        if step.effect is None:
            return []
        connection.execute(
            delete(ups_global_subscription).where(ups_global_subscription.c.ae_title == receiving)
        )
        if step.effect == "unsubscribe":
            connection.execute(
                delete(ups_subscription).where(ups_subscription.c.ae_title == receiving)
            )
            return []
        if step.effect == "suspend":
            return []
        keys: Dataset | None = None
        if uid == FILTERED_GLOBAL_SUBSCRIPTION:
            keys = Dataset()
            for elem in information or Dataset():
                if elem.keyword not in ("ReceivingAE", "DeletionLock"):
                    keys.add(elem)
        lock = int(step.deletion_lock)
        connection.execute(
            insert(ups_global_subscription).values(
                ae_title=receiving,
                deletion_lock=lock,
                matching_keys=None if keys is None else header_bytes(keys),
            )
        )
        matcher = None if keys is None else compile_query(keys)
        known = set(
            connection.execute(
                select(ups_subscription.c.sop_uid).where(ups_subscription.c.ae_title == receiving)
            ).scalars()
        )
        initial = []
        for row in connection.execute(select(ups.c.sop_uid, ups.c.dataset)).all():
            dataset = header_of(row.dataset)
            if row.sop_uid in known or (matcher is not None and not matcher.matches(dataset)):
                continue
            connection.execute(
                insert(ups_subscription).values(
                    sop_uid=row.sop_uid, ae_title=receiving, deletion_lock=lock
                )
            )
            if lock:
                initial.append((row.sop_uid, dataset))
        return initial

    # -- C-FIND -------------------------------------------------------------------------
    def find(self, identifier: Dataset) -> Iterator[Dataset]:
        """The response identifiers of the UPSs matching a UPS C-FIND identifier."""
        matcher = compile_query(identifier)
        with self.index.engine.connect() as connection:
            rows = connection.execute(select(ups.c.dataset).order_by(ups.c.sop_uid)).all()
        for row in rows:
            dataset = header_of(row.dataset)
            if matcher.matches(dataset):
                yield response_identifier(identifier, dataset, level_echo=False)

    def get(self, uid: str) -> UpsRecord | None:
        """The stored record (tests and tools; the lock included)."""
        with self.index.engine.connect() as connection:
            return _load(connection, uid)

    def subscribers(self, uid: str) -> list[str]:
        with self.index.engine.connect() as connection:
            return sorted(_subscribers(connection, uid))

    # -- event reports ------------------------------------------------------------------
    def _queue_reports(self, uid: str, reports: list[UpsReport], subscribers: list[str]) -> None:
        by_receiver: dict[str, list[tuple[str, int, Dataset]]] = {}
        for report in reports:
            receivers = report.receivers if report.receivers is not None else subscribers
            for receiver in receivers:
                by_receiver.setdefault(receiver, []).append(
                    (uid, report.event_type, report.information)
                )
        for receiver, items in by_receiver.items():
            address = self.destinations.get(receiver)
            if address is None:
                LOG.warning("UPS %s: no address for subscriber %r, reports dropped", uid, receiver)
                continue
            self._start_worker()
            self._queue.put(Delivery(receiver, address, tuple(items)))

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._deliver, name="ups-event-reports", daemon=True
                )
                self._worker.start()

    def _deliver(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                if delivery is None:
                    return
                self.sender(delivery)
            except Exception as exc:  # a subscriber's failure must not stop the others
                assert delivery is not None
                LOG.warning("UPS event reports to %s failed: %s", delivery.receiver, exc)
            finally:
                self._queue.task_done()

    def _associate_and_send(self, delivery: Delivery) -> None:
        """One association to the subscriber, one N-EVENT-REPORT per report, in order."""
        from dimsefsm.ae import AE

        ae = AE(self.ae_title)
        ae.add_requested_context(UPS_EVENT_CLASS)
        host, port = delivery.address
        assoc = ae.associate(host, port, ae_title=delivery.receiver)
        if not assoc.is_established:
            LOG.warning("UPS event reports: %s at %s:%d refused", delivery.receiver, host, port)
            return
        try:
            for uid, event_type, information in delivery.reports:
                status, _reply = assoc.send_n_event_report(
                    information, event_type, UPS_PUSH_CLASS, uid, meta_uid=UPS_EVENT_CLASS
                )
                code = status.get("Status") if status is not None else None
                LOG.info(
                    "UPS %s: event %d to %s answered %s",
                    uid,
                    event_type,
                    delivery.receiver,
                    "nothing" if code is None else f"0x{int(code):04X}",
                )
        finally:
            assoc.release()


# -- rows -------------------------------------------------------------------------------------
def _load(connection: Connection, uid: str) -> UpsRecord | None:
    statement = select(ups).where(ups.c.sop_uid == uid)
    if connection.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = connection.execute(statement).first()
    if row is None:
        return None
    return UpsRecord(
        row.sop_uid, row.state, header_of(row.dataset), row.transaction_uid, row.performer_ae
    )


def _store(connection: Connection, record: UpsRecord, *, created: bool) -> None:
    values = {
        "state": record.state,
        "transaction_uid": record.transaction_uid,
        "performer_ae": record.performer_ae,
        "dataset": header_bytes(record.dataset),
    }
    if created:
        connection.execute(insert(ups).values(sop_uid=record.uid, **values))
    else:
        connection.execute(update(ups).where(ups.c.sop_uid == record.uid).values(**values))


def _subscribers(connection: Connection, uid: str) -> set[str]:
    return set(
        connection.execute(
            select(ups_subscription.c.ae_title).where(ups_subscription.c.sop_uid == uid)
        ).scalars()
    )


def _subscribe(connection: Connection, uid: str, change: Any) -> None:
    connection.execute(
        delete(ups_subscription).where(
            ups_subscription.c.sop_uid == uid, ups_subscription.c.ae_title == change.ae_title
        )
    )
    if change.add:
        connection.execute(
            insert(ups_subscription).values(
                sop_uid=uid, ae_title=change.ae_title, deletion_lock=int(change.deletion_lock)
            )
        )


# -- DIMSE helpers ----------------------------------------------------------------------------
def _requested(event: Any) -> str:
    command = event.request.command
    return str(command.get("RequestedSOPInstanceUID") or command.get("AffectedSOPInstanceUID"))


def _calling(event: Any) -> str:
    negotiated = getattr(event.assoc, "negotiated", None)
    return str(getattr(negotiated, "peer_ae", "") or "").strip()


def _dataset(code: int, comment: str | None, offending: tuple[int, ...] = ()) -> Dataset:
    result = Dataset()
    result.Status = code
    if comment:
        result.ErrorComment = comment
    if offending:
        result.AttributeIdentifierList = list(offending)
    return result


def _status(outcome: StepOutcome) -> int | Dataset:
    if outcome.comment is None and not outcome.offending:
        return outcome.status
    return _dataset(outcome.status, outcome.comment, outcome.offending)
