"""Unified Procedure Step with pynetdicom on 127.0.0.1, both directions.

* pynetdicom as UPS Push/Pull/Watch SCU against ``dimsefsm qrscp`` (a process),
  and as the subscriber receiving qrscp's N-EVENT-REPORTs on the association
  qrscp opens to it; bad input answered with the standard's statuses, records
  unchanged, and still there after a restart;
* our ``Association.send_n_*`` against a pynetdicom UPS SCP with handlers.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from pynetdicom import AE as PynetdicomAE
from pynetdicom import evt as pyn_evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    UnifiedProcedureStepEvent,
    UnifiedProcedureStepPull,
    UnifiedProcedureStepPush,
    UnifiedProcedureStepWatch,
)

from dimsefsm import AE
from dimsefsm import status as st
from dimsefsm.sop_class import UPS_PULL, UPS_PUSH
from tests.interop.peers import DimsefsmServer, free_port
from tests.unit.ups_data import change_state, completion, subscription, ups_create

UID = "1.2.826.0.1.3680043.10.4.1"
LOCK = "1.2.826.0.1.3680043.10.4.99"
GLOBAL = "1.2.840.10008.5.1.4.34.5"
QR_AET = "QRSCP"


class Subscriber:
    """A pynetdicom AE that receives UPS event reports and hands them over in order."""

    def __init__(self, ae_title: str = "WATCHER") -> None:
        self.port = free_port()
        self.reports: queue.Queue[tuple[str, int, Dataset]] = queue.Queue()
        ae = PynetdicomAE(ae_title=ae_title)
        ae.add_supported_context(UnifiedProcedureStepEvent)
        ae.add_supported_context(UnifiedProcedureStepPush)
        self.server: Any = ae.start_server(
            ("127.0.0.1", self.port),
            block=False,
            evt_handlers=[(pyn_evt.EVT_N_EVENT_REPORT, self._on_report)],
        )

    def _on_report(self, event: Any) -> tuple[int, None]:
        uid = str(event.request.AffectedSOPInstanceUID)
        self.reports.put((uid, int(event.event_type), event.event_information))
        return 0x0000, None

    def next(self) -> tuple[str, int, Dataset]:
        return self.reports.get(timeout=30)

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    watcher = Subscriber()
    yield watcher
    watcher.stop()


def scu() -> Any:
    ae = PynetdicomAE(ae_title="PERFORMER")
    for uid in (
        UnifiedProcedureStepPush,
        UnifiedProcedureStepPull,
        UnifiedProcedureStepWatch,
    ):
        ae.add_requested_context(uid)
    return ae


def code(status: Dataset) -> int:
    return int(status.Status)


@pytest.mark.usefixtures("qrscp_backend")
def test_pynetdicom_drives_a_ups_through_qrscp(
    dimsefsm_server: Callable[..., DimsefsmServer], subscriber: Subscriber, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    dest = f"WATCHER=127.0.0.1:{subscriber.port}"
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store), "--dest", dest, "-v")
    assoc = scu().associate("127.0.0.1", server.port, ae_title=QR_AET)
    assert assoc.is_established
    try:
        # UPS Watch: the subscriber follows every UPS (with a deletion lock).
        status, _ = assoc.send_n_action(
            subscription("WATCHER", lock=True),
            3,
            UnifiedProcedureStepPush,
            GLOBAL,
            meta_uid=UnifiedProcedureStepWatch,
        )
        assert code(status) == st.SUCCESS
        # UPS Push
        status, _ = assoc.send_n_create(ups_create(), UnifiedProcedureStepPush, UID)
        assert code(status) == st.SUCCESS
        status, _ = assoc.send_n_create(ups_create("Other^Pat"), UnifiedProcedureStepPush, UID)
        assert code(status) == st.DUPLICATE_SOP_INSTANCE and status.ErrorComment
        # UPS Pull: find it, claim it, record the work, complete it.
        query = Dataset()
        query.PatientName = ""
        query.ProcedureStepState = "SCHEDULED"
        query.SOPInstanceUID = ""
        found = list(assoc.send_c_find(query, UnifiedProcedureStepPull))
        assert [code(s) for s, _ in found] == [st.PENDING, st.SUCCESS]
        assert found[0][1].SOPInstanceUID == UID
        status, _ = assoc.send_n_action(
            change_state("IN PROGRESS", LOCK),
            1,
            UnifiedProcedureStepPush,
            UID,
            meta_uid=UnifiedProcedureStepPull,
        )
        assert code(status) == st.SUCCESS
        stolen = completion("1.2.3.4.5")
        status, _ = assoc.send_n_set(
            stolen, UnifiedProcedureStepPush, UID, meta_uid=UnifiedProcedureStepPull
        )
        assert code(status) == st.UPS_WRONG_TRANSACTION_UID and status.ErrorComment
        status, _ = assoc.send_n_action(
            change_state("COMPLETED", LOCK),
            1,
            UnifiedProcedureStepPush,
            UID,
            meta_uid=UnifiedProcedureStepPull,
        )
        assert code(status) == st.UPS_FINAL_STATE_REQUIREMENTS_NOT_MET and status.ErrorComment
        status, _ = assoc.send_n_set(
            completion(LOCK), UnifiedProcedureStepPush, UID, meta_uid=UnifiedProcedureStepPull
        )
        assert code(status) == st.SUCCESS
        status, got = assoc.send_n_get(
            [0x00741000, 0x00081195, 0x00100010],
            UnifiedProcedureStepPush,
            UID,
            meta_uid=UnifiedProcedureStepPull,
        )
        assert code(status) == st.SUCCESS
        assert got.ProcedureStepState == "IN PROGRESS" and got.PatientName == "Doe^Jane"
        assert "TransactionUID" not in got
        unknown = change_state("CANCELED", LOCK)
        status, _ = assoc.send_n_action(unknown, 0x63, UnifiedProcedureStepPush, UID)
        assert code(status) == st.NO_SUCH_ACTION and "99" in status.ErrorComment
        status, _ = assoc.send_n_action(
            change_state("COMPLETED", "1.2.3.4.5"), 1, UnifiedProcedureStepPush, UID
        )
        assert code(status) == st.UPS_WRONG_TRANSACTION_UID and status.ErrorComment
        status, _ = assoc.send_n_action(
            change_state("COMPLETED", LOCK), 1, UnifiedProcedureStepPush, UID
        )
        assert code(status) == st.SUCCESS
        late = completion(LOCK, end="20261205235959")
        status, _ = assoc.send_n_set(late, UnifiedProcedureStepPush, UID)
        assert code(status) == st.UPS_MAY_NO_LONGER_BE_UPDATED
        assert status.ErrorComment == "UPS is COMPLETED: it may no longer be updated"
    finally:
        assoc.release()
    # The subscriber heard each state, in order, on associations qrscp opened to it.
    states = [subscriber.next() for _ in range(3)]
    assert [(uid, kind, info.ProcedureStepState) for uid, kind, info in states] == [
        (UID, 1, "SCHEDULED"),
        (UID, 1, "IN PROGRESS"),
        (UID, 1, "COMPLETED"),
    ]
    # A restart keeps the record as the last accepted request left it.
    server.stop()
    again = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(store), "--dest", dest)
    assoc = scu().associate("127.0.0.1", again.port, ae_title=QR_AET)
    try:
        status, got = assoc.send_n_get([], UnifiedProcedureStepPush, UID)
        assert code(status) == st.SUCCESS and got.ProcedureStepState == "COMPLETED"
        performed = got.UnifiedProcedureStepPerformedProcedureSequence[0]
        assert performed.PerformedProcedureStepEndDateTime == "20261205121500"
    finally:
        assoc.release()


@pytest.mark.usefixtures("qrscp_backend")
def test_cancel_request_reaches_the_performer_as_subscriber(
    dimsefsm_server: Callable[..., DimsefsmServer], subscriber: Subscriber, tmp_path: Path
) -> None:
    """Request Cancel of an IN PROGRESS UPS: the performer is told, the UPS stays its own."""
    dest = f"WATCHER=127.0.0.1:{subscriber.port}"
    server = dimsefsm_server("qrscp", "-aet", QR_AET, "-od", str(tmp_path / "s"), "--dest", dest)
    performer: Any = PynetdicomAE(ae_title="WATCHER")  # the performer subscribes under its AE
    performer.add_requested_context(UnifiedProcedureStepPush)
    assoc = performer.associate("127.0.0.1", server.port, ae_title=QR_AET)
    try:
        assert code(assoc.send_n_create(ups_create(), UnifiedProcedureStepPush, UID)[0]) == 0
        action = change_state("IN PROGRESS", LOCK)
        assert code(assoc.send_n_action(action, 1, UnifiedProcedureStepPush, UID)[0]) == 0
        reason = Dataset()
        reason.ReasonForCancellation = "patient left"
        status, _ = assoc.send_n_action(reason, 2, UnifiedProcedureStepPush, UID)
        assert code(status) == st.UPS_PERFORMER_UNREACHABLE and status.ErrorComment
        watch = subscription("WATCHER")
        assert code(assoc.send_n_action(watch, 3, UnifiedProcedureStepPush, UID)[0]) == 0
        assert subscriber.next()[2].ProcedureStepState == "IN PROGRESS"  # initial report
        status, _ = assoc.send_n_action(reason, 2, UnifiedProcedureStepPush, UID)
        assert code(status) == st.SUCCESS
        uid, kind, info = subscriber.next()
        assert (uid, kind, info.RequestingAE, info.ReasonForCancellation) == (
            UID,
            2,
            "WATCHER",
            "patient left",
        )
        status, got = assoc.send_n_get([0x00741000], UnifiedProcedureStepPush, UID)
        assert got.ProcedureStepState == "IN PROGRESS"
    finally:
        assoc.release()


class PynetdicomUpsScp:
    """pynetdicom as UPS SCP: its handlers keep what they were sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.records: dict[str, Dataset] = {}
        self.actions: list[tuple[int, str]] = []
        self._lock = threading.Lock()
        ae = PynetdicomAE(ae_title="PYUPS")
        for uid in (UnifiedProcedureStepPush, UnifiedProcedureStepPull):
            ae.add_supported_context(uid)
        handlers: Any = [
            (pyn_evt.EVT_N_CREATE, self.on_create),
            (pyn_evt.EVT_N_SET, self.on_set),
            (pyn_evt.EVT_N_GET, self.on_get),
            (pyn_evt.EVT_N_ACTION, self.on_action),
        ]
        self.server: Any = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=handlers
        )

    def on_create(self, event: Any) -> tuple[int, Dataset | None]:
        uid = str(event.request.AffectedSOPInstanceUID)
        with self._lock:
            if uid in self.records:
                return 0x0111, None
            self.records[uid] = event.attribute_list
        return 0x0000, None

    def on_set(self, event: Any) -> tuple[int, Dataset | None]:
        uid = str(event.request.RequestedSOPInstanceUID)
        with self._lock:
            record = self.records.get(uid)
            if record is None:
                return 0xC307, None
            for elem in event.modification_list:
                record[elem.tag] = elem
        return 0x0000, None

    def on_get(self, event: Any) -> tuple[int, Dataset | None]:
        uid = str(event.request.RequestedSOPInstanceUID)
        record = self.records.get(uid)
        if record is None:
            return 0xC307, None
        reply = Dataset()
        for tag in event.request.AttributeIdentifierList or []:
            if tag in record:
                reply[tag] = record[tag]
        return 0x0000, reply

    def on_action(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        uid = str(event.request.RequestedSOPInstanceUID)
        self.actions.append((int(event.action_type), uid))
        info = event.action_information
        if event.action_type == 1 and uid in self.records:
            self.records[uid].ProcedureStepState = info.ProcedureStepState
            return 0x0000, None
        status = Dataset()
        status.Status = 0xC307
        status.ErrorComment = "no such UPS"
        return status, None


def test_our_scu_drives_a_pynetdicom_ups_scp() -> None:
    scp = PynetdicomUpsScp()
    try:
        ae = AE("PERFORMER")
        ae.add_requested_context(UPS_PUSH)
        ae.add_requested_context(UPS_PULL)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="PYUPS")
        assert assoc.is_established
        try:
            status, _ = assoc.send_n_create(ups_create(), UPS_PUSH, UID)
            assert status.Status == st.SUCCESS
            assert scp.records[UID].ProcedureStepLabel == "CT head review"
            status, _ = assoc.send_n_create(ups_create(), UPS_PUSH, UID)
            assert status.Status == st.DUPLICATE_SOP_INSTANCE
            change = Dataset()
            change.ProcedureStepLabel = "MR knee review"
            status, _ = assoc.send_n_set(change, UPS_PUSH, UID, meta_uid=UPS_PULL)
            assert status.Status == st.SUCCESS
            action = change_state("IN PROGRESS", LOCK)
            status, _ = assoc.send_n_action(action, 1, UPS_PUSH, UID, meta_uid=UPS_PULL)
            assert status.Status == st.SUCCESS
            status, got = assoc.send_n_get([0x00741204, 0x00741000], UPS_PUSH, UID)
            assert status.Status == st.SUCCESS and got is not None
            assert (got.ProcedureStepLabel, got.ProcedureStepState) == (
                "MR knee review",
                "IN PROGRESS",
            )
            status, _ = assoc.send_n_action(action, 1, UPS_PUSH, "1.2.3.999")
            assert status.Status == st.UPS_NO_SUCH_INSTANCE
            assert status.ErrorComment == "no such UPS"
        finally:
            assoc.release()
        assert scp.actions == [(1, UID), (1, "1.2.3.999")]
    finally:
        scp.server.shutdown()
