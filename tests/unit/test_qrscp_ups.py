"""The Q/R SCP application as UPS SCP over real sockets, pynetdicom as the SCU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import Dataset
from pynetdicom import AE as PynetdicomAE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    UnifiedProcedureStepPull,
    UnifiedProcedureStepWatch,
)

from dimsefsm import status as st
from dimsefsm.archive.scp import QueryRetrieveSCP
from dimsefsm.transport.server import AssociationServer
from tests.unit.ups_data import change_state, ups_create

UIDS = ("1.2.826.0.1.3680043.10.3.1", "1.2.826.0.1.3680043.10.3.2")
LOCK = "1.2.826.0.1.3680043.10.3.99"


@pytest.fixture
def running(
    tmp_path: Path, database_url: str
) -> Iterator[tuple[QueryRetrieveSCP, AssociationServer]]:
    scp = QueryRetrieveSCP("QRSCP", tmp_path / "store", database=database_url)
    scp.load()
    server = scp.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=scp.handlers)
    yield scp, server
    server.shutdown()
    scp.close()


def find(port: int, sop_class: str, query: Dataset) -> list[tuple[int, Dataset | None]]:
    ae = PynetdicomAE(ae_title="WORKER")
    ae.add_requested_context(sop_class)
    assoc = ae.associate("127.0.0.1", port, ae_title="QRSCP")
    assert assoc.is_established
    try:
        return [
            (int(status.Status), identifier)
            for status, identifier in assoc.send_c_find(query, sop_class)
        ]
    finally:
        assoc.release()


@pytest.mark.parametrize("sop_class", [UnifiedProcedureStepPull, UnifiedProcedureStepWatch])
def test_pynetdicom_finds_ups_with_c_find(
    running: tuple[QueryRetrieveSCP, AssociationServer], sop_class: str
) -> None:
    scp, server = running
    scp.ups.request(UIDS[0], "n_create", ups_create(), "PUSHER")
    scp.ups.request(UIDS[1], "n_create", ups_create("Roe^Rick", "P2"), "PUSHER")
    scp.ups.request(UIDS[1], "change_state", change_state("IN PROGRESS", LOCK), "WORKER")
    query = Dataset()
    query.PatientName = ""
    query.ProcedureStepState = "SCHEDULED"
    query.TransactionUID = ""
    query.SOPInstanceUID = ""
    responses = find(server.address[1], sop_class, query)
    assert [code for code, _ in responses] == [st.PENDING, st.SUCCESS]
    identifier = responses[0][1]
    assert identifier is not None
    assert identifier.SOPInstanceUID == UIDS[0] and identifier.PatientName == "Doe^Jane"
    assert identifier.TransactionUID == ""
    query.ProcedureStepState = "IN PROGRESS"
    responses = find(server.address[1], sop_class, query)
    assert [(code, ds.SOPInstanceUID if ds else None) for code, ds in responses] == [
        (st.PENDING, UIDS[1]),
        (st.SUCCESS, None),
    ]
    assert responses[0][1] is not None and responses[0][1].TransactionUID == ""
