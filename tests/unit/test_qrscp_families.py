"""``QueryRetrieveSCP`` serving the single-level families over real sockets: every status
the archive itself answers for their FIND, GET and MOVE classes (PS3.4 U, X, HH, BB and
the seeds' status tables), on SQLite and PostgreSQL.

Statuses the charts produce whatever the SOP class (0x0122, 0x0210, 0x0212, 0xCx10 ...)
are walked for these classes in memory by ``test_flat_model_statuses``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy.exc import OperationalError

from dimsefsm import AE
from dimsefsm import status as st
from dimsefsm.archive.scp import QueryRetrieveSCP
from dimsefsm.part10 import read_part10_info
from dimsefsm.qr.flat_models import FLAT_MODELS, FlatModel
from dimsefsm.services.storage import StorageConfig
from dimsefsm.transport.server import AssociationServer
from tests.data.families import FAMILIES, code
from tests.data.make import write_instance
from tests.interop.peers import free_port

LOCALHOST = "127.0.0.1"
MAX_IDENTIFIER = 4096


@dataclass
class Archive:
    scp: QueryRetrieveSCP
    server: AssociationServer
    store: AssociationServer
    received: Path
    sources: Path

    @property
    def port(self) -> int:
        return int(self.server.address[1])


@pytest.fixture
def archive(tmp_path: Path, database_url: str) -> Iterator[Archive]:
    """qrscp with C-MOVE destinations STORE (our storage SCP) and NOWHERE (nothing listens)."""
    received = tmp_path / "received"
    store_ae = AE("STORE")
    for model in FLAT_MODELS.values():
        for uid in model.storage_classes:
            store_ae.add_supported_context(uid, ExplicitVRLittleEndian)
    store_ae.storage = StorageConfig(mode="file", directory=received)
    store = store_ae.start_server((LOCALHOST, 0), block=False)
    destinations = {
        "STORE": (LOCALHOST, int(store.address[1])),
        "NOWHERE": (LOCALHOST, free_port()),
    }
    scp = QueryRetrieveSCP("QRSCP", tmp_path / "store", destinations, database=database_url)
    scp.ae.maximum_identifier_size = MAX_IDENTIFIER
    scp.load()
    server = scp.ae.start_server((LOCALHOST, 0), block=False, evt_handlers=scp.handlers)
    sources = tmp_path / "in"
    sources.mkdir()
    yield Archive(scp, server, store, received, sources)
    server.shutdown()
    store.shutdown()
    scp.close()


def client(model: FlatModel, *, retrieve_into: Path | None = None) -> AE:
    """An SCU of the model's three classes; with ``retrieve_into``, a C-GET storage SCP too."""
    ae = AE("SCU")
    for uid in model.storage_classes:
        ae.add_requested_context(uid, ExplicitVRLittleEndian)
        if retrieve_into is not None:
            ae.propose_role(uid, scu_role=True, scp_role=True)
    ae.add_requested_context(model.find_class)
    ae.add_requested_context(model.get_class)
    ae.add_requested_context(model.move_class)
    if retrieve_into is not None:
        ae.storage = StorageConfig(mode="file", directory=retrieve_into)
    return ae


def dataset_bytes(path: Path) -> bytes:
    return path.read_bytes()[read_part10_info(path).dataset_offset :]


def stored(archive: Archive, name: str, count: int = 2) -> tuple[FlatModel, list[Path]]:
    """``count`` instances of the family, stored through C-STORE."""
    build, _ = FAMILIES[name]
    model = FLAT_MODELS[name]
    files = [write_instance(archive.sources / f"{n}.dcm", build()) for n in range(count)]
    with client(model).associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        assert [assoc.send_c_store(path).Status for path in files] == [st.SUCCESS] * count
    return model, files


def uid_of(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def by_uid(*paths: Path) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = [uid_of(path) for path in paths]
    return ds


def codes(responses: list[tuple[Dataset, Any]]) -> list[int]:
    return [int(status.Status) for status, _ in responses]


@pytest.fixture(params=list(FAMILIES))
def family(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_find_answers_matches_and_refusals(archive: Archive, family: str) -> None:
    model, files = stored(archive, family)
    _, keys = FAMILIES[family]
    query = Dataset()
    query.SOPInstanceUID = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    two_items = Dataset()
    two_items.SOPInstanceUID = ""
    # A sequence key of two items (any of the model's: the check is on the form).
    two_items.ReferencedSeriesSequence = [code("A", "99", "a"), code("B", "99", "b")]
    too_large = Dataset()
    too_large.SOPInstanceUID = ""
    too_large.PatientComments = "x" * MAX_IDENTIFIER
    with client(model).associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        found = list(assoc.send_c_find(query, model.find_class))
        refused = list(assoc.send_c_find(two_items, model.find_class))
        large = list(assoc.send_c_find(too_large, model.find_class))
    assert codes(found) == [st.PENDING, st.PENDING, st.SUCCESS]
    matches = [i for _, i in found[:2] if i is not None]
    assert sorted(str(i.SOPInstanceUID) for i in matches) == sorted(map(uid_of, files))
    assert "RetrieveAETitle" not in matches[0] and "QueryRetrieveLevel" not in matches[0]
    assert codes(refused) == [st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS]
    assert refused[0][0].OffendingElement == 0x00081115
    assert codes(large) == [st.OUT_OF_RESOURCES]


def test_find_get_move_answer_unable_to_process_when_the_index_fails(
    archive: Archive, family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database failing mid-request: 0xC311 / 0xC411 / 0xC511 (Unable to process)."""
    model, files = stored(archive, family, count=1)

    def broken(*_args: object) -> Iterator[Any]:
        raise OperationalError("SELECT", {}, Exception("database is gone"))
        yield  # pragma: no cover - a generator, as the index's methods are

    monkeypatch.setattr(archive.scp.index, "find", broken)
    monkeypatch.setattr(archive.scp.index, "query", broken)
    query = Dataset()
    query.SOPInstanceUID = ""
    with client(model).associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        find = list(assoc.send_c_find(query, model.find_class))
        get = list(assoc.send_c_get(by_uid(*files), model.get_class))
        move = list(assoc.send_c_move(by_uid(*files), "STORE", model.move_class))
    assert codes(find) == [st.FIND_HANDLER_FAILED]
    assert codes(get) == [st.GET_HANDLER_FAILED]
    assert codes(move) == [st.MOVE_HANDLER_FAILED]


def test_get_sends_the_instances_as_stored_or_says_why_not(
    archive: Archive, family: str, tmp_path: Path
) -> None:
    model, files = stored(archive, family)
    got = tmp_path / "got"
    no_uid = Dataset()
    no_uid.SOPClassUID = model.storage_classes[0]
    too_large = by_uid(*files)
    too_large.PatientComments = "x" * MAX_IDENTIFIER
    ae = client(model, retrieve_into=got)
    with ae.associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        whole = list(assoc.send_c_get(by_uid(*files), model.get_class))
        missing = list(assoc.send_c_get(no_uid, model.get_class))
        large = list(assoc.send_c_get(too_large, model.get_class))
    assert codes(whole)[-1] == st.SUCCESS
    assert sorted(dataset_bytes(path) for path in got.iterdir()) == sorted(
        dataset_bytes(path) for path in files
    )
    assert codes(missing) == [st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS]
    assert codes(large) == [st.OUT_OF_RESOURCES_MATCHES]
    # No storage context for the class: every sub-operation fails (0xA702).
    with client(model).associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        none = list(assoc.send_c_get(by_uid(*files), model.get_class))
    assert codes(none)[-1] == st.OUT_OF_RESOURCES_SUBOPERATIONS
    # One file gone from the disk: that sub-operation fails, the other completes (0xB000).
    record = archive.scp.index.get(uid_of(files[0]))
    assert record is not None and record.path is not None
    record.path.unlink()
    with ae.associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        partial = list(assoc.send_c_get(by_uid(*files), model.get_class))
    final, _ = partial[-1]
    assert int(final.Status) == st.SUBOPERATIONS_WITH_FAILURES
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (1, 1)


def test_move_sends_to_the_destination_or_says_why_not(archive: Archive, family: str) -> None:
    model, files = stored(archive, family)
    no_uid = Dataset()
    no_uid.SOPInstanceUID = ""
    wild = Dataset()
    wild.SOPInstanceUID = "1.2.*"
    too_large = by_uid(*files)
    too_large.PatientComments = "x" * MAX_IDENTIFIER
    with client(model).associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        whole = list(assoc.send_c_move(by_uid(*files), "STORE", model.move_class))
        unknown = list(assoc.send_c_move(by_uid(*files), "UNKNOWN", model.move_class))
        unreachable = list(assoc.send_c_move(by_uid(*files), "NOWHERE", model.move_class))
        missing = list(assoc.send_c_move(no_uid, "STORE", model.move_class))
        wildcard = list(assoc.send_c_move(wild, "STORE", model.move_class))
        large = list(assoc.send_c_move(too_large, "STORE", model.move_class))
    assert codes(whole)[-1] == st.SUCCESS
    assert sorted(dataset_bytes(path) for path in archive.received.iterdir()) == sorted(
        dataset_bytes(path) for path in files
    )
    assert codes(unknown) == [st.MOVE_DESTINATION_UNKNOWN]
    assert codes(unreachable)[-1] == st.OUT_OF_RESOURCES_SUBOPERATIONS
    assert codes(missing) == [st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS]
    assert codes(wildcard) == [st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS]
    assert codes(large) == [st.OUT_OF_RESOURCES_MATCHES]
    record = archive.scp.index.get(uid_of(files[1]))
    assert record is not None and record.path is not None
    record.path.unlink()
    with client(model).associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        partial = list(assoc.send_c_move(by_uid(*files), "STORE", model.move_class))
    assert codes(partial)[-1] == st.SUBOPERATIONS_WITH_FAILURES


def test_a_uid_stored_as_another_family_is_refused_0117(archive: Archive, tmp_path: Path) -> None:
    """The filing rule over the wire: the first instance stays, the second is refused."""
    hanging, palette = FLAT_MODELS["hanging-protocol"], FLAT_MODELS["color-palette"]
    first = FAMILIES["hanging-protocol"][0]()
    second = FAMILIES["color-palette"][0](str(first.SOPInstanceUID))
    paths = [
        write_instance(tmp_path / "hp.dcm", first),
        write_instance(tmp_path / "cp.dcm", second),
    ]
    ae = client(hanging)
    ae.add_requested_context(palette.storage_classes[0], ExplicitVRLittleEndian)
    with ae.associate(LOCALHOST, archive.port, ae_title="QRSCP") as assoc:
        statuses = [assoc.send_c_store(path) for path in paths]
    assert [int(s.Status) for s in statuses] == [st.SUCCESS, st.INVALID_OBJECT_INSTANCE]
    assert statuses[1].ErrorComment == "SOPInstanceUID already stored as another class"
    record = archive.scp.index.get(str(first.SOPInstanceUID))
    assert record is not None and record.path is not None
    assert dataset_bytes(record.path) == dataset_bytes(paths[0])
