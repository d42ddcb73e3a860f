"""The asyncio client's DIMSE-N methods against our own server, over loopback sockets.

``await assoc.send_n_*`` are the blocking client's, from the same core; the
requestor answers the N-EVENT-REPORT its acceptor sends after an N-ACTION
response while ``await assoc.wait_for(...)`` reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom import Dataset

from dimsefsm import AE, evt
from dimsefsm import status as st
from dimsefsm.aio import aio_associate
from dimsefsm.services.normalized import N_EVENT_REPORT, NEvent, after_response, start_n_request
from dimsefsm.sop_class import (
    MODALITY_PERFORMED_PROCEDURE_STEP,
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
)
from dimsefsm.transport.server import AssociationServer

LOCALHOST = "127.0.0.1"
MPPS = MODALITY_PERFORMED_PROCEDURE_STEP
STGCMT = STORAGE_COMMITMENT_PUSH_MODEL
UID = "1.2.826.0.1.3680043.8.498.7"


def ds(**values: Any) -> Dataset:
    out = Dataset()
    for keyword, value in values.items():
        setattr(out, keyword, value)
    return out


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
        ),
    )
    return st.SUCCESS, None


@pytest.fixture
def server() -> Iterator[AssociationServer]:
    ae = AE("NSCP")
    ae.add_supported_context(MPPS)
    ae.add_supported_context(STGCMT)
    handlers: list[Any] = [
        (evt.EVT_N_CREATE, lambda e: (st.SUCCESS, e.attribute_list)),
        (evt.EVT_N_GET, lambda e: (st.SUCCESS, ds(PatientID="7"))),
        (evt.EVT_N_DELETE, lambda e: st.NO_SUCH_SOP_INSTANCE),
        (evt.EVT_N_ACTION, on_action),
    ]
    running = ae.start_server((LOCALHOST, 0), block=False, evt_handlers=handlers)
    try:
        yield running
    finally:
        running.shutdown()


def test_async_client_sends_n_requests_and_answers_a_report(server: AssociationServer) -> None:
    reports: list[tuple[int, Dataset | None]] = []

    def on_report(event: NEvent) -> tuple[int, None]:
        reports.append((event.event_type, event.event_information))
        return st.SUCCESS, None

    async def main() -> None:
        ae = AE("AIO-SCU")
        ae.add_requested_context(MPPS)
        ae.add_requested_context(STGCMT)
        assoc = await aio_associate(
            ae,
            LOCALHOST,
            server.address[1],
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
        )
        async with assoc:
            status, created = await assoc.send_n_create(ds(PatientName="A^B"), MPPS, UID)
            assert status.Status == 0 and created == ds(PatientName="A^B")
            status, got = await assoc.send_n_get([0x00100020], MPPS, UID)
            assert status.Status == 0 and got == ds(PatientID="7")
            status = await assoc.send_n_delete(MPPS, UID)
            assert status.Status == st.NO_SUCH_SOP_INSTANCE
            status, reply = await assoc.send_n_action(
                ds(TransactionUID="1.2.3"), 1, STGCMT, STORAGE_COMMITMENT_INSTANCE
            )
            assert status.Status == 0 and reply == Dataset()
            assert await assoc.wait_for(lambda: bool(reports), timeout=10)
            assert not await assoc.wait_for(lambda: False, timeout=0.1)

    asyncio.run(main())
    assert reports == [(1, ds(TransactionUID="1.2.3"))]
