"""DIMSE-N over real sockets against pynetdicom 3.0.4, both directions.

pynetdicom's AE (in this process, its own threads and sockets) as SCU calls
``send_n_create/set/get/action/delete/event_report`` on our AE's handlers;
our ``Association.send_n_*`` call a pynetdicom AE's handlers.  The
N-EVENT-REPORT an acceptor sends its requestor on the same association, and
the one an SCP sends on an association it requests with the SCP role (role
selection), are exercised both ways.  Before the DIMSE-N core every N
request sent to us was answered 0x0211 and ``send_n_*`` did not exist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.tag import Tag
from pynetdicom import AE as PynetdicomAE
from pynetdicom import build_role
from pynetdicom import evt as pevt

from dimsefsm import AE, compat, evt
from dimsefsm import status as st
from dimsefsm.services.normalized import (
    N_EVENT_REPORT,
    NEvent,
    NormalizedScu,
    after_response,
    start_n_request,
)
from dimsefsm.sop_class import (
    MODALITY_PERFORMED_PROCEDURE_STEP,
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
)
from tests.interop.peers import free_port

MPPS = MODALITY_PERFORMED_PROCEDURE_STEP
STGCMT = STORAGE_COMMITMENT_PUSH_MODEL
LOCALHOST = "127.0.0.1"
UID1 = "1.2.826.0.1.3680043.8.498.101"
UID2 = "1.2.826.0.1.3680043.8.498.102"
WAIT = 10.0  # seconds any wait is bounded by; nothing sleeps


def ds(**values: Any) -> Dataset:
    out = Dataset()
    for keyword, value in values.items():
        setattr(out, keyword, value)
    return out


class Instances:
    """A tiny N-service SCP's state: MPPS instances by UID, shared by both sides' handlers."""

    def __init__(self) -> None:
        self.store: dict[str, Dataset] = {}
        self.reports: list[tuple[int, Dataset | None]] = []

    def create(self, uid: str | None, attributes: Dataset | None) -> tuple[Any, Dataset | None]:
        if uid is None:
            uid = UID2
        if uid in self.store:
            return ds(Status=st.DUPLICATE_SOP_INSTANCE, ErrorComment=f"{uid} exists"), None
        self.store[uid] = attributes or Dataset()
        reply = ds(**{e.keyword: e.value for e in self.store[uid]})
        reply.SOPInstanceUID = uid
        return st.SUCCESS, reply

    def set(self, uid: str, modification: Dataset | None) -> tuple[Any, Dataset | None]:
        if uid not in self.store:
            return st.NO_SUCH_SOP_INSTANCE, None
        assert modification is not None
        if "PatientWeight" in modification:
            return (
                ds(
                    Status=st.NO_SUCH_ATTRIBUTE,
                    ErrorComment="PatientWeight is not a known attribute",
                    AttributeIdentifierList=[0x00101030],
                ),
                None,
            )
        self.store[uid].update(modification)
        return st.SUCCESS, self.store[uid]

    def get(self, uid: str, tags: list[Any]) -> tuple[Any, Dataset | None]:
        if uid not in self.store:
            return st.NO_SUCH_SOP_INSTANCE, None
        whole = self.store[uid]
        out = Dataset()
        for tag in tags or [e.tag for e in whole]:
            if tag in whole:
                out[tag] = whole[tag]
        return st.SUCCESS, out

    def action(self, action_type: int, info: Dataset | None) -> tuple[Any, Dataset | None]:
        if action_type != 1:
            return ds(
                Status=st.NO_SUCH_ACTION, ErrorComment=f"no action {action_type}", ErrorID=7
            ), None
        return st.SUCCESS, ds(TransactionUID=info.TransactionUID if info else "1.2.3")

    def delete(self, uid: str) -> int:
        return st.SUCCESS if self.store.pop(uid, None) is not None else st.NO_SUCH_SOP_INSTANCE

    def report(self, event_type: int, info: Dataset | None) -> tuple[Any, Dataset | None]:
        self.reports.append((event_type, info))
        return st.SUCCESS, ds(PatientID="acknowledged")


# -- our AE as SCP, pynetdicom as SCU ----------------------------------------------------------
def our_handlers(state: Instances) -> list[tuple[evt.EventType, Callable[[NEvent], Any]]]:
    def instance(event: NEvent) -> str:
        command = event.request.command
        return str(command.get("RequestedSOPInstanceUID") or command["AffectedSOPInstanceUID"])

    def on_action(event: NEvent) -> Any:
        if event.action_type == 99:
            raise RuntimeError("the printer is on fire")
        return state.action(event.action_type, event.action_information)

    return [
        (
            evt.EVT_N_CREATE,
            lambda e: state.create(e.request.AffectedSOPInstanceUID, e.attribute_list),
        ),
        (evt.EVT_N_SET, lambda e: state.set(instance(e), e.modification_list)),
        (evt.EVT_N_GET, lambda e: state.get(instance(e), e.attribute_identifiers)),
        (evt.EVT_N_ACTION, on_action),
        (evt.EVT_N_DELETE, lambda e: state.delete(instance(e))),
        (evt.EVT_N_EVENT_REPORT, lambda e: state.report(e.event_type, e.event_information)),
    ]


@pytest.fixture
def our_scp() -> Iterator[tuple[int, Instances]]:
    state = Instances()
    ae = AE("DIMSEFSM")
    ae.add_supported_context(MPPS)
    port = free_port()
    ae.start_server((LOCALHOST, port), block=False, evt_handlers=our_handlers(state))
    try:
        yield port, state
    finally:
        ae.shutdown()


def pynetdicom_scu(port: int, **kwargs: Any) -> Any:
    ae = PynetdicomAE(ae_title="PYNETDICOM")
    ae.add_requested_context(MPPS)
    ae.add_requested_context(STGCMT)
    assoc = ae.associate(LOCALHOST, port, ae_title="DIMSEFSM", **kwargs)
    assert assoc.is_established
    return assoc


def test_pynetdicom_scu_runs_every_n_operation_on_our_handlers(
    our_scp: tuple[int, Instances],
) -> None:
    port, state = our_scp
    assoc = pynetdicom_scu(port)
    try:
        status, created = assoc.send_n_create(ds(PatientName="Doe^J", PatientID="1"), MPPS, UID1)
        assert status.Status == 0
        assert created == ds(PatientID="1", PatientName="Doe^J", SOPInstanceUID=UID1)

        status, chosen = assoc.send_n_create(ds(PatientID="2"), MPPS, None)
        assert status.Status == 0 and chosen.SOPInstanceUID == UID2

        status, updated = assoc.send_n_set(ds(PerformedProcedureStepStatus="COMPLETED"), MPPS, UID1)
        assert status.Status == 0
        assert updated == ds(
            PatientID="1", PatientName="Doe^J", PerformedProcedureStepStatus="COMPLETED"
        )

        status, got = assoc.send_n_get([0x00100010, 0x00400252], MPPS, UID1)
        assert status.Status == 0
        assert got == ds(PatientName="Doe^J", PerformedProcedureStepStatus="COMPLETED")

        status, reply = assoc.send_n_action(ds(TransactionUID="1.2.9"), 1, MPPS, UID1)
        assert status.Status == 0 and reply == ds(TransactionUID="1.2.9")

        status, reply = assoc.send_n_event_report(ds(PatientID="1"), 5, MPPS, UID1)
        assert status.Status == 0 and reply == ds(PatientID="acknowledged")
        assert state.reports == [(5, ds(PatientID="1"))]

        assert assoc.send_n_delete(MPPS, UID1).Status == 0
        assert sorted(state.store) == [UID2]
    finally:
        assoc.release()


def test_pynetdicom_scu_sees_our_failure_statuses(our_scp: tuple[int, Instances]) -> None:
    port, _state = our_scp
    assoc = pynetdicom_scu(port)
    try:
        assert assoc.send_n_create(ds(PatientID="1"), MPPS, UID1)[0].Status == 0
        status, attrs = assoc.send_n_create(ds(PatientID="1"), MPPS, UID1)
        assert status.Status == 0x0111 and status.ErrorComment == f"{UID1} exists"
        assert attrs is None

        status, attrs = assoc.send_n_set(ds(PatientWeight=70), MPPS, UID1)
        assert status.Status == 0x0105 and attrs is None
        assert status.ErrorComment == "PatientWeight is not a known attribute"
        assert status.AttributeIdentifierList == Tag(0x00101030)

        status, reply = assoc.send_n_action(None, 4, MPPS, UID1)
        assert (status.Status, status.ErrorComment, status.ErrorID) == (0x0123, "no action 4", 7)

        status, reply = assoc.send_n_action(None, 99, MPPS, UID1)
        assert status.Status == 0x0110 and reply is None
        assert status.ErrorComment == "handler raised RuntimeError: the printer is on fire"

        assert assoc.send_n_delete(MPPS, UID2).Status == 0x0112
        status, _ = assoc.send_n_get([], MPPS, "1.02.3")
        assert status.Status == 0x0117
        assert assoc.is_established
    finally:
        assoc.release()


def test_unbound_n_operation_is_unrecognized_for_pynetdicom() -> None:
    ae = AE("DIMSEFSM")
    ae.add_supported_context(MPPS)
    port = free_port()
    ae.start_server((LOCALHOST, port), block=False)
    try:
        assoc = pynetdicom_scu(port)
        try:
            status, attrs = assoc.send_n_get([], MPPS, UID1)
            assert status.Status == 0x0211 and attrs is None
        finally:
            assoc.release()
    finally:
        ae.shutdown()


def test_our_acceptor_reports_to_pynetdicom_on_its_association() -> None:
    """Our SCP's N-ACTION handler queues an N-EVENT-REPORT after its response; pynetdicom,
    the requestor, answers it through its EVT_N_EVENT_REPORT handler."""
    received: list[tuple[int, Dataset]] = []
    answered: list[NormalizedScu] = []
    done = threading.Event()

    def reported(op: NormalizedScu) -> None:
        answered.append(op)
        done.set()

    def on_action(event: NEvent) -> tuple[int, None]:
        info = event.action_information
        assert info is not None
        after_response(
            event.assoc,
            event.message_id,
            lambda: start_n_request(
                event.assoc,
                N_EVENT_REPORT,
                STGCMT,
                STORAGE_COMMITMENT_INSTANCE,
                ds(TransactionUID=info.TransactionUID),
                event_type=1,
                on_done=reported,
            ),
        )
        return 0, None

    def pynetdicom_report(event: Any) -> tuple[int, Dataset]:
        received.append((event.event_type, event.event_information))
        return 0x0000, ds(PatientID="seen")

    ae = AE("DIMSEFSM")
    ae.add_supported_context(STGCMT)
    port = free_port()
    ae.start_server((LOCALHOST, port), block=False, evt_handlers=[(evt.EVT_N_ACTION, on_action)])
    try:
        assoc = pynetdicom_scu(port, evt_handlers=[(pevt.EVT_N_EVENT_REPORT, pynetdicom_report)])
        try:
            status, _ = assoc.send_n_action(
                ds(TransactionUID="1.2.77"), 1, STGCMT, STORAGE_COMMITMENT_INSTANCE
            )
            assert status.Status == 0
            assert done.wait(WAIT)
        finally:
            assoc.release()
    finally:
        ae.shutdown()
    assert received == [(1, ds(TransactionUID="1.2.77"))]
    status, reply = answered[0].reply()
    assert status.Status == 0 and reply == ds(PatientID="seen")


def test_pynetdicom_reports_to_our_acceptor_with_the_scp_role() -> None:
    """The "new association" report path: pynetdicom requests with the SCP role only
    (role selection) and sends N-EVENT-REPORT; our AE, its SCU, answers it."""
    state = Instances()
    ae = AE("DIMSEFSM")
    ae.add_supported_context(STGCMT, scp_role=True, scu_role=False)
    port = free_port()
    ae.start_server((LOCALHOST, port), block=False, evt_handlers=our_handlers(state))
    try:
        assoc = pynetdicom_scu(port, ext_neg=[build_role(STGCMT, scp_role=True)])
        try:
            status, reply = assoc.send_n_event_report(
                ds(TransactionUID="1.2.5"), 2, STGCMT, STORAGE_COMMITMENT_INSTANCE
            )
            assert status.Status == 0 and reply == ds(PatientID="acknowledged")
        finally:
            assoc.release()
    finally:
        ae.shutdown()
    assert state.reports == [(2, ds(TransactionUID="1.2.5"))]


# -- pynetdicom as SCP, our Association as SCU ---------------------------------------------------
# pynetdicom serves all six N operations on Print Management classes only (its MPPS
# service class refuses N-ACTION and N-DELETE): Basic Film Session it is.
FILM = "1.2.840.10008.5.1.1.1"


@pytest.fixture
def pynetdicom_scp() -> Iterator[tuple[int, Instances, PynetdicomAE]]:
    state = Instances()

    def instance(event: Any) -> str:
        return event.request.RequestedSOPInstanceUID or event.request.AffectedSOPInstanceUID

    handlers: list[Any] = [
        (
            pevt.EVT_N_CREATE,
            lambda e: state.create(e.request.AffectedSOPInstanceUID, e.attribute_list),
        ),
        (pevt.EVT_N_SET, lambda e: state.set(instance(e), e.modification_list)),
        (pevt.EVT_N_GET, lambda e: state.get(instance(e), e.attribute_identifiers)),
        (pevt.EVT_N_ACTION, lambda e: state.action(e.action_type, e.action_information)),
        (pevt.EVT_N_DELETE, lambda e: state.delete(instance(e))),
        (pevt.EVT_N_EVENT_REPORT, lambda e: state.report(e.event_type, e.event_information)),
    ]
    ae = PynetdicomAE(ae_title="PYNETDICOM")
    ae.add_supported_context(FILM)
    ae.add_supported_context(STGCMT, scu_role=False, scp_role=True)
    port = free_port()
    server = ae.start_server((LOCALHOST, port), block=False, evt_handlers=handlers)
    assert server is not None
    try:
        yield port, state, ae
    finally:
        server.shutdown()


def our_scu(port: int, *classes: str, **kwargs: Any) -> Any:
    ae = AE("DIMSEFSM")
    for uid in classes or (FILM,):
        ae.add_requested_context(uid)
    assoc = ae.associate(LOCALHOST, port, ae_title="PYNETDICOM", **kwargs)
    assert assoc.is_established, assoc.describe_failure()
    return assoc


def test_our_scu_runs_every_n_operation_on_pynetdicom(
    pynetdicom_scp: tuple[int, Instances, PynetdicomAE],
) -> None:
    port, state, _ae = pynetdicom_scp
    with our_scu(port) as assoc:
        status, created = assoc.send_n_create(ds(PatientName="Doe^J", PatientID="1"), FILM, UID1)
        assert status.Status == 0 and status.AffectedSOPInstanceUID == UID1
        assert created == ds(PatientID="1", PatientName="Doe^J", SOPInstanceUID=UID1)

        status, updated = assoc.send_n_set(ds(PerformedProcedureStepStatus="COMPLETED"), FILM, UID1)
        assert status.Status == 0
        assert updated == ds(
            PatientID="1", PatientName="Doe^J", PerformedProcedureStepStatus="COMPLETED"
        )

        status, got = assoc.send_n_get([0x00100010, Tag(0x0040, 0x0252)], FILM, UID1)
        assert status.Status == 0
        assert got == ds(PatientName="Doe^J", PerformedProcedureStepStatus="COMPLETED")

        status, reply = assoc.send_n_action(ds(TransactionUID="1.2.9"), 1, FILM, UID1)
        assert status.Status == 0 and reply == ds(TransactionUID="1.2.9")

        status, reply = assoc.send_n_event_report(ds(PatientID="1"), 5, FILM, UID1)
        assert status.Status == 0 and status.EventTypeID == 5
        assert reply == ds(PatientID="acknowledged")
        assert state.reports == [(5, ds(PatientID="1"))]

        assert assoc.send_n_delete(FILM, UID1).Status == 0
        assert state.store == {}


def test_our_scu_sees_pynetdicoms_failure_statuses(
    pynetdicom_scp: tuple[int, Instances, PynetdicomAE],
) -> None:
    port, _state, _ae = pynetdicom_scp
    with our_scu(port) as assoc:
        assert assoc.send_n_create(ds(PatientID="1"), FILM, UID1)[0].Status == 0
        status, attrs = assoc.send_n_create(ds(PatientID="1"), FILM, UID1)
        assert (status.Status, status.ErrorComment, attrs) == (0x0111, f"{UID1} exists", None)

        status, attrs = assoc.send_n_set(ds(PatientWeight=70), FILM, UID1)
        assert status.Status == 0x0105 and attrs is None
        assert status.AttributeIdentifierList == Tag(0x00101030)
        assert status.ErrorComment == "PatientWeight is not a known attribute"

        status, reply = assoc.send_n_action(None, 4, FILM, UID1)
        assert (status.Status, status.ErrorComment, status.ErrorID, reply) == (
            0x0123,
            "no action 4",
            7,
            None,
        )
        assert assoc.send_n_delete(FILM, UID2).Status == 0x0112
        status, attrs = assoc.send_n_get([], FILM, UID2)
        assert status.Status == 0x0112 and attrs is None


def test_pynetdicom_acceptor_reports_to_us_on_our_association() -> None:
    """pynetdicom's N-ACTION handler starts a thread that sends N-EVENT-REPORT on the same
    association once the response is out; our requestor's handler answers it while
    ``wait_for`` reads."""
    sent: list[Any] = []
    threads: list[threading.Thread] = []

    def on_action(event: Any) -> tuple[int, None]:
        assoc = event.assoc
        info = ds(TransactionUID=event.action_information.TransactionUID)

        def report() -> None:
            sent.append(assoc.send_n_event_report(info, 1, STGCMT, STORAGE_COMMITMENT_INSTANCE))

        thread = threading.Thread(target=report)
        threads.append(thread)
        thread.start()
        return 0x0000, None

    ae = PynetdicomAE(ae_title="PYNETDICOM")
    ae.add_supported_context(STGCMT)
    port = free_port()
    server = ae.start_server(
        (LOCALHOST, port), block=False, evt_handlers=[(pevt.EVT_N_ACTION, on_action)]
    )
    assert server is not None
    reports: list[tuple[int, Dataset | None]] = []

    def on_report(event: NEvent) -> tuple[int, Dataset]:
        reports.append((event.event_type, event.event_information))
        return 0, ds(PatientID="thanks")

    try:
        with our_scu(port, STGCMT, evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)]) as assoc:
            status, reply = assoc.send_n_action(
                ds(TransactionUID="1.2.88"), 1, STGCMT, STORAGE_COMMITMENT_INSTANCE
            )
            assert status.Status == 0 and reply == Dataset()
            assert assoc.wait_for(lambda: bool(reports), timeout=WAIT)
            threads[0].join(WAIT)
    finally:
        server.shutdown()
    assert reports == [(1, ds(TransactionUID="1.2.88"))]
    status, reply = sent[0]
    assert status.Status == 0 and reply == ds(PatientID="thanks")


def test_our_scp_role_association_reports_to_pynetdicom(
    pynetdicom_scp: tuple[int, Instances, PynetdicomAE],
) -> None:
    """The "new association" path the other way: we request with the SCP role only."""
    port, state, _ae = pynetdicom_scp
    with our_scu(
        port, STGCMT, ext_neg=[compat.build_role(STGCMT, scu_role=False, scp_role=True)]
    ) as assoc:
        ctx = assoc.negotiated.find_context(STGCMT, as_scp=True)
        assert ctx is not None and not ctx.as_scu
        status, reply = assoc.send_n_event_report(
            ds(TransactionUID="1.2.6"), 2, STGCMT, STORAGE_COMMITMENT_INSTANCE
        )
        assert status.Status == 0 and reply == ds(PatientID="acknowledged")
    assert state.reports == [(2, ds(TransactionUID="1.2.6"))]


def test_wait_for_gives_up_after_its_timeout(
    pynetdicom_scp: tuple[int, Instances, PynetdicomAE],
) -> None:
    port, _state, _ae = pynetdicom_scp
    with our_scu(port) as assoc:
        assert assoc.wait_for(lambda: False, timeout=0.2) is False
        assert assoc.is_established
