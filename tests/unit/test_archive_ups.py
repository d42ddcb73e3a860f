"""The archive's UPS records: atomic requests, subscriptions, reports, C-FIND, restarts.

Driven through the handlers with the events a DIMSE-N SCP hands them (a stand-in
object with pynetdicom's attribute names), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydicom import Dataset
from sqlalchemy import select

from dimsefsm import status as st
from dimsefsm.archive.db.schema import SCHEMA_VERSION, schema_table
from dimsefsm.archive.db.ups_table import ups
from dimsefsm.archive.index import ArchiveIndex
from dimsefsm.archive.ups import Delivery, UpsService
from dimsefsm.services.ups_state import (
    CANCEL_REQUESTED,
    FILTERED_GLOBAL_SUBSCRIPTION,
    GLOBAL_SUBSCRIPTION,
    STATE_REPORT,
)
from tests.unit.ups_data import change_state, completion, subscription, ups_create

UID = "1.2.826.0.1.3680043.10.2.1"
LOCK = "1.2.826.0.1.3680043.10.2.99"
PEERS = {"WATCHER": ("127.0.0.1", 1), "PERFORMER": ("127.0.0.1", 2)}


class Sent:
    """The deliveries the service hands its sender, in order."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def __call__(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)

    def events(self, receiver: str) -> list[tuple[str, int, str]]:
        return [
            (uid, event_type, str(info.get("ProcedureStepState", "")))
            for d in self.deliveries
            if d.receiver == receiver
            for uid, event_type, info in d.reports
        ]


@pytest.fixture
def index(tmp_path: Path, database_url: str) -> Iterator[ArchiveIndex]:
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    yield archive
    archive.close()


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def service(index: ArchiveIndex, sent: Sent) -> Iterator[UpsService]:
    ups_service = UpsService(index, "ARCHIVE", PEERS, sender=sent)
    yield ups_service
    ups_service.close()


def event(uid: str | None, calling: str = "PERFORMER", **fields: Any) -> Any:
    command = {} if uid is None else {"AffectedSOPInstanceUID": uid, "RequestedSOPInstanceUID": uid}
    return SimpleNamespace(
        request=SimpleNamespace(command=command),
        assoc=SimpleNamespace(negotiated=SimpleNamespace(peer_ae=calling)),
        **fields,
    )


def create(service: UpsService, uid: str = UID, **extra: Any) -> Any:
    return service.on_n_create(event(uid, attribute_list=ups_create(**extra)))


def act(
    service: UpsService,
    action: int,
    info: Dataset | None,
    uid: str = UID,
    calling: str = "PERFORMER",
) -> Any:
    return service.on_n_action(event(uid, calling, action_type=action, action_information=info))


def code_of(status: int | Dataset) -> int:
    return int(status.Status) if isinstance(status, Dataset) else int(status)


def stored_row(index: ArchiveIndex) -> tuple[Any, ...]:
    with index.engine.connect() as connection:
        return tuple(connection.execute(select(ups).where(ups.c.sop_uid == UID)).one())


def test_a_ups_goes_through_its_life_and_survives_a_restart(
    index: ArchiveIndex, service: UpsService, tmp_path: Path, database_url: str
) -> None:
    assert create(service) == (st.SUCCESS, None)
    assert code_of(act(service, 1, change_state("IN PROGRESS", LOCK))[0]) == st.SUCCESS
    assert code_of(service.on_n_set(event(UID, modification_list=completion(LOCK)))[0]) == 0
    assert code_of(act(service, 1, change_state("COMPLETED", LOCK))[0]) == st.SUCCESS
    index.close()
    again = ArchiveIndex(tmp_path, database_url)
    again.open()
    try:
        record = UpsService(again, "ARCHIVE", PEERS).get(UID)
        assert record is not None and record.state == "COMPLETED"
        assert record.performer_ae == "PERFORMER" and record.transaction_uid is None
        performed = record.dataset.UnifiedProcedureStepPerformedProcedureSequence[0]
        assert performed.PerformedProcedureStepEndDateTime == "20261205121500"
    finally:
        again.close()


def test_create_without_a_uid_gets_one(service: UpsService) -> None:
    status, created = service.on_n_create(event(None, attribute_list=ups_create()))
    assert status == st.SUCCESS and created is not None
    assert service.get(created.SOPInstanceUID) is not None


@pytest.mark.parametrize(
    ("request_kind", "expected"),
    [
        ("duplicate", st.DUPLICATE_SOP_INSTANCE),
        ("wrong-lock", st.UPS_WRONG_TRANSACTION_UID),
        ("set-completed", st.UPS_MAY_NO_LONGER_BE_UPDATED),
        ("unknown-action", st.NO_SUCH_ACTION),
    ],
)
def test_a_refused_request_changes_nothing(
    index: ArchiveIndex, service: UpsService, request_kind: str, expected: int
) -> None:
    """The Done-when's bad input: the standard's status, an ErrorComment, the row unchanged."""
    create(service)
    act(service, 1, change_state("IN PROGRESS", LOCK))
    if request_kind == "set-completed":
        service.on_n_set(event(UID, modification_list=completion(LOCK)))
        act(service, 1, change_state("COMPLETED", LOCK))
    before = stored_row(index)
    if request_kind == "duplicate":
        status, _ = create(service, ProcedureStepLabel="other")
    elif request_kind == "wrong-lock":
        status, _ = act(service, 1, change_state("COMPLETED", "1.2.3.4"))
    elif request_kind == "set-completed":
        change = Dataset()
        change.TransactionUID = LOCK
        change.ProcedureStepLabel = "late"
        status, _ = service.on_n_set(event(UID, modification_list=change))
    else:
        status, _ = act(service, 0x77, Dataset())
    assert isinstance(status, Dataset)
    assert status.Status == expected and status.ErrorComment
    assert stored_row(index) == before


def test_missing_attributes_are_named(service: UpsService) -> None:
    attributes = ups_create()
    del attributes.ProcedureStepLabel
    status, _ = service.on_n_create(event(UID, attribute_list=attributes))
    assert isinstance(status, Dataset) and status.Status == st.MISSING_ATTRIBUTE
    assert status.AttributeIdentifierList == 0x00741204
    assert service.get(UID) is None


def test_n_get_never_returns_the_lock(service: UpsService) -> None:
    create(service)
    act(service, 1, change_state("IN PROGRESS", LOCK))
    status, reply = service.on_n_get(event(UID, attribute_identifiers=[]))
    assert status == st.SUCCESS and reply is not None
    assert reply.ProcedureStepState == "IN PROGRESS" and "TransactionUID" not in reply
    status, _ = service.on_n_get(event("1.2.3.999", attribute_identifiers=[]))
    assert code_of(status) == st.UPS_NO_SUCH_INSTANCE


def test_subscribers_get_state_reports_in_order(service: UpsService, sent: Sent) -> None:
    create(service)
    status, _ = act(service, 3, subscription("WATCHER"), calling="WATCHER")
    assert status == st.SUCCESS
    assert service.subscribers(UID) == ["WATCHER"]
    act(service, 1, change_state("IN PROGRESS", LOCK))
    act(service, 1, change_state("CANCELED", LOCK))
    service.wait_delivered()
    assert sent.events("WATCHER") == [
        (UID, STATE_REPORT, "SCHEDULED"),  # the initial report of a new subscription
        (UID, STATE_REPORT, "IN PROGRESS"),
        (UID, STATE_REPORT, "CANCELED"),
    ]
    status, _ = act(service, 4, subscription("WATCHER"), calling="WATCHER")
    assert status == st.SUCCESS and service.subscribers(UID) == []


def test_an_unknown_receiving_ae_is_refused(service: UpsService) -> None:
    create(service)
    status, _ = act(service, 3, subscription("STRANGER"), calling="STRANGER")
    assert status.Status == st.UPS_UNKNOWN_RECEIVING_AE
    assert service.subscribers(UID) == []


def test_cancel_request_reaches_the_subscribed_performer(service: UpsService, sent: Sent) -> None:
    create(service)
    act(service, 1, change_state("IN PROGRESS", LOCK))
    status, _ = act(service, 2, None, calling="WATCHER")
    assert code_of(status) == st.UPS_PERFORMER_UNREACHABLE
    act(service, 3, subscription("PERFORMER"))
    reason = Dataset()
    reason.ReasonForCancellation = "patient left"
    assert act(service, 2, reason, calling="WATCHER")[0] == st.SUCCESS
    service.wait_delivered()
    reports = [r for d in sent.deliveries for r in d.reports if r[1] == CANCEL_REQUESTED]
    assert len(reports) == 1
    assert reports[0][2].RequestingAE == "WATCHER"
    assert reports[0][2].ReasonForCancellation == "patient left"
    record = service.get(UID)
    assert record is not None and record.state == "IN PROGRESS"  # only the performer cancels


def test_global_subscribers_follow_new_ups(service: UpsService, sent: Sent) -> None:
    create(service)
    status, _ = act(service, 3, subscription("WATCHER", lock=True), uid=GLOBAL_SUBSCRIPTION)
    assert status == st.SUCCESS
    assert service.subscribers(UID) == ["WATCHER"]
    second = "1.2.826.0.1.3680043.10.2.2"
    create(service, second)
    assert service.subscribers(second) == ["WATCHER"]
    # Suspend: no new UPS is subscribed, the existing subscriptions stay.
    assert act(service, 5, subscription("WATCHER"), uid=GLOBAL_SUBSCRIPTION)[0] == st.SUCCESS
    third = "1.2.826.0.1.3680043.10.2.3"
    create(service, third)
    assert service.subscribers(third) == [] and service.subscribers(second) == ["WATCHER"]
    # Unsubscribe from the global instance: every subscription of the AE ends.
    act(service, 3, subscription("WATCHER"), uid=GLOBAL_SUBSCRIPTION)
    assert act(service, 4, subscription("WATCHER"), uid=GLOBAL_SUBSCRIPTION)[0] == st.SUCCESS
    assert [service.subscribers(u) for u in (UID, second, third)] == [[], [], []]
    service.wait_delivered()
    assert (UID, STATE_REPORT, "SCHEDULED") in sent.events("WATCHER")  # locked: initial report
    assert (second, STATE_REPORT, "SCHEDULED") in sent.events("WATCHER")
    assert act(service, 1, None, uid=GLOBAL_SUBSCRIPTION)[0].Status == (
        st.UPS_ACTION_NOT_APPROPRIATE
    )


def test_a_filtered_global_subscription_takes_matching_ups_only(service: UpsService) -> None:
    keys = subscription("WATCHER")
    keys.PatientID = "P2"
    assert act(service, 3, keys, uid=FILTERED_GLOBAL_SUBSCRIPTION)[0] == st.SUCCESS
    create(service, UID, patient_id="P1")
    other = "1.2.826.0.1.3680043.10.2.4"
    create(service, other, PatientID="P2")
    assert service.subscribers(UID) == [] and service.subscribers(other) == ["WATCHER"]


def test_c_find_matches_with_worklist_rules(service: UpsService) -> None:
    create(service)
    create(service, "1.2.826.0.1.3680043.10.2.5", PatientName="Roe^Rick")
    act(service, 1, change_state("IN PROGRESS", LOCK))
    query = Dataset()
    query.PatientName = "Doe*"
    query.ProcedureStepState = ""
    query.TransactionUID = ""
    query.SOPInstanceUID = ""
    found = list(service.find(query))
    assert len(found) == 1
    assert found[0].SOPInstanceUID == UID and found[0].ProcedureStepState == "IN PROGRESS"
    assert found[0].TransactionUID == ""  # the lock is never told
    query.PatientName = "*"
    query.ProcedureStepState = "SCHEDULED"
    assert [d.PatientName for d in service.find(query)] == ["Roe^Rick"]


def test_the_schema_has_the_ups_tables(index: ArchiveIndex) -> None:
    with index.engine.connect() as connection:
        version = connection.execute(select(schema_table.c.version)).scalar_one()
        assert connection.execute(select(ups.c.sop_uid)).all() == []
    assert version == SCHEMA_VERSION == 5


def test_an_index_of_schema_version_3_gets_the_ups_tables(
    tmp_path: Path, database_url: str
) -> None:
    from sqlalchemy import inspect, update

    from dimsefsm.archive.db.ups_table import UPS_TABLES

    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    with archive.engine.begin() as connection:  # what version 3 had: no UPS tables
        for table in reversed(UPS_TABLES):
            table.drop(connection)
        connection.execute(update(schema_table).values(version=3))
    archive.close()
    archive = ArchiveIndex(tmp_path, database_url)
    archive.open()
    try:
        with archive.engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
            version = connection.execute(select(schema_table.c.version)).scalar_one()
        assert {t.name for t in UPS_TABLES} <= names and version == SCHEMA_VERSION
        service = UpsService(archive, "ARCHIVE", PEERS)
        assert create(service) == (st.SUCCESS, None)
    finally:
        archive.close()


def test_a_refusal_is_one_log_line(service: UpsService, caplog: pytest.LogCaptureFixture) -> None:
    create(service)
    caplog.clear()
    with caplog.at_level("INFO", logger="dimsefsm.ups"):
        act(service, 1, change_state("COMPLETED", LOCK))
    lines = [r for r in caplog.records if r.name == "dimsefsm.ups"]
    assert len(lines) == 1 and lines[0].levelname == "WARNING"
    assert "0xC310" in lines[0].getMessage() and "not yet IN PROGRESS" in lines[0].getMessage()


def test_two_performers_claiming_at_once_one_wins(service: UpsService) -> None:
    """The claim is one transaction: the second sees IN PROGRESS and gets 0xC302."""
    import threading

    create(service)
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def claim(n: int) -> None:
        barrier.wait(timeout=30)
        status, _ = act(service, 1, change_state("IN PROGRESS", f"{LOCK}.{n}"))
        codes.append(code_of(status))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [st.SUCCESS] + [st.UPS_ALREADY_IN_PROGRESS] * 3
    record = service.get(UID)
    assert record is not None and record.transaction_uid is not None
    assert record.transaction_uid.startswith(LOCK + ".")


def test_a_failing_subscriber_does_not_stop_the_others(
    index: ArchiveIndex, caplog: pytest.LogCaptureFixture
) -> None:
    delivered: list[str] = []

    def sender(delivery: Delivery) -> None:
        if delivery.receiver == "WATCHER":
            raise ConnectionRefusedError("nobody listens")
        delivered.append(delivery.receiver)

    ups_service = UpsService(index, "ARCHIVE", PEERS, sender=sender)
    try:
        create(ups_service)
        for receiver in ("WATCHER", "PERFORMER"):
            act(ups_service, 3, subscription(receiver), calling=receiver)
        with caplog.at_level("WARNING", logger="dimsefsm.ups"):
            act(ups_service, 1, change_state("IN PROGRESS", LOCK))
            ups_service.wait_delivered()
        assert delivered == ["PERFORMER", "PERFORMER"]  # its initial report, then the claim
        assert any("WATCHER failed: nobody listens" in r.getMessage() for r in caplog.records)
        record = ups_service.get(UID)
        assert record is not None and record.state == "IN PROGRESS"
    finally:
        ups_service.close()
