"""The single-level Q/R families (Hanging Protocol, Color Palette, Defined Procedure
Protocol, Implant Templates) between dimsefsm and pynetdicom, both ways.

* pynetdicom as the SCU against ``dimsefsm qrscp`` (on SQLite and PostgreSQL):
  C-STORE one realistic instance of each family, ``send_c_find`` with the
  model's FIND class finds it by its keys, ``send_c_get`` and ``send_c_move``
  bring it back byte-identical (the data set bytes as they were sent).
* Our ``findscu`` / ``getscu`` / ``movescu --model NAME`` against a pynetdicom SCP
  serving the same instances from memory.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import ExplicitVRLittleEndian
from pynetdicom import AE as PynetdicomAE
from pynetdicom import build_role, evt
from pynetdicom import sop_class as pyn

from dimsefsm.part10 import read_part10_info
from dimsefsm.qr import registry
from dimsefsm.qr.flat_models import FLAT_MODELS
from tests.data.families import FAMILIES, XA_DPP_STORAGE, defined_procedure_protocol
from tests.data.make import write_instance
from tests.interop.peers import DimsefsmServer, free_port

QR_AET = "QRSCP"
LOCALHOST = "127.0.0.1"
DIMSEFSM = [sys.executable, "-m", "dimsefsm"]

# pynetdicom's names for each model's FIND, GET and MOVE classes, and our --model names.
PYNETDICOM_CLASSES = {
    registry.HANGING_PROTOCOL: ("HangingProtocol", "hanging-protocol"),
    registry.COLOR_PALETTE: ("ColorPalette", "color-palette"),
    registry.DEFINED_PROCEDURE_PROTOCOL: ("DefinedProcedureProtocol", "dpp"),
    registry.GENERIC_IMPLANT_TEMPLATE: ("GenericImplantTemplate", "implant"),
    registry.IMPLANT_ASSEMBLY_TEMPLATE: ("ImplantAssemblyTemplate", "implant-assembly"),
    registry.IMPLANT_TEMPLATE_GROUP: ("ImplantTemplateGroup", "implant-group"),
}


def pyn_class(model: str, service: str) -> str:
    return str(getattr(pyn, f"{PYNETDICOM_CLASSES[model][0]}InformationModel{service}"))


def dataset_bytes(path: Path) -> bytes:
    """The data set of a Part-10 file, after its meta group: what C-STORE carries."""
    data = path.read_bytes()
    return data[read_part10_info(path).dataset_offset :]


@pytest.fixture
def family_files(tmp_path: Path) -> dict[str, Path]:
    """One file per family (and an XA Defined Procedure Protocol besides the CT one)."""
    folder = _write_dir(tmp_path / "in")
    files = {}
    for model, (build, _keys) in FAMILIES.items():
        files[model] = write_instance(folder / f"{model}.dcm", build())
    return files


def _write_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class Received:
    """A pynetdicom Storage SCP handler keeping each data set's bytes as they arrived."""

    def __init__(self) -> None:
        self.datasets: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> int:
        data = event.request.DataSet.getvalue()
        ds = event.dataset
        with self.lock:
            self.datasets[str(ds.SOPInstanceUID)] = data
        return 0x0000


@pytest.mark.usefixtures("qrscp_backend")
def test_pynetdicom_stores_finds_gets_and_moves_each_family(
    dimsefsm_server: Callable[..., DimsefsmServer],
    family_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    received = Received()
    storage_classes = sorted({uid for m in FLAT_MODELS.values() for uid in m.storage_classes})
    destination = PynetdicomAE(ae_title="PYNSTORE")
    for uid in storage_classes:
        destination.add_supported_context(uid, ExplicitVRLittleEndian)
    move_port = free_port()
    store_server = destination.start_server(
        (LOCALHOST, move_port), block=False, evt_handlers=[(evt.EVT_C_STORE, received)]
    )
    server = dimsefsm_server(
        "qrscp",
        "-aet",
        QR_AET,
        "-od",
        str(tmp_path / "store"),
        "--dest",
        f"PYNSTORE={LOCALHOST}:{move_port}",
    )
    xa_protocol = defined_procedure_protocol(sop_class=XA_DPP_STORAGE)
    xa_protocol.ProtocolName = "XA CORONARY"
    xa = write_instance(tmp_path / "in" / "xa-dpp.dcm", xa_protocol)
    try:
        ae = PynetdicomAE(ae_title="PYNSCU")
        for uid in storage_classes:  # the files' syntax: what comes back is what was sent
            ae.add_requested_context(uid, ExplicitVRLittleEndian)
        for model in FAMILIES:
            ae.add_requested_context(pyn_class(model, "Find"))
            ae.add_requested_context(pyn_class(model, "Get"))
            ae.add_requested_context(pyn_class(model, "Move"))
        roles: list[Any] = [
            build_role(uid, scu_role=True, scp_role=True) for uid in storage_classes
        ]
        got = Received()
        assoc = ae.associate(
            LOCALHOST,
            server.port,
            ae_title=QR_AET,
            ext_neg=roles,
            evt_handlers=[(evt.EVT_C_STORE, got)],
        )
        assert assoc.is_established
        try:
            for path in [*family_files.values(), xa]:
                status = assoc.send_c_store(dcmread(path))
                assert status.Status == 0x0000, path
            for model, (_build, keys) in FAMILIES.items():
                original = dcmread(family_files[model])
                uid = str(original.SOPInstanceUID)
                query = Dataset()
                query.SOPInstanceUID = ""
                query.SOPClassUID = ""
                for keyword, value in keys.items():
                    setattr(query, keyword, value)
                responses = list(assoc.send_c_find(query, pyn_class(model, "Find")))
                pending = [i for s, i in responses if s.Status == 0xFF00 and i is not None]
                assert [str(ident.SOPInstanceUID) for ident in pending] == [uid], model
                assert "QueryRetrieveLevel" not in pending[0]
                for keyword in keys:
                    assert pending[0][keyword].value == original[keyword].value
                assert responses[-1][0].Status == 0x0000
                retrieve = Dataset()
                retrieve.SOPInstanceUID = uid
                get = list(assoc.send_c_get(retrieve, pyn_class(model, "Get")))
                assert get[-1][0].Status == 0x0000, model
                assert got.datasets[uid] == dataset_bytes(family_files[model])
                move = list(assoc.send_c_move(retrieve, "PYNSTORE", pyn_class(model, "Move")))
                assert move[-1][0].Status == 0x0000, model
                assert received.datasets[uid] == dataset_bytes(family_files[model])
            # The Defined Procedure Protocol model holds both its storage classes.
            query = Dataset()
            query.SOPClassUID = XA_DPP_STORAGE
            query.SOPInstanceUID = ""
            dpp = pyn_class(registry.DEFINED_PROCEDURE_PROTOCOL, "Find")
            found = [
                i for s, i in assoc.send_c_find(query, dpp) if s.Status == 0xFF00 and i is not None
            ]
            assert [str(i.SOPInstanceUID) for i in found] == [str(dcmread(xa).SOPInstanceUID)]
        finally:
            assoc.release()
    finally:
        assert store_server is not None
        store_server.shutdown()


@pytest.fixture
def pynetdicom_qr_scp(
    family_files: dict[str, Path],
) -> Iterator[tuple[int, dict[str, tuple[str, int]]]]:
    """pynetdicom serving the families from memory: FIND matches on every given key with
    pydicom's value equality or a trailing ``*``; GET and MOVE send by SOP Instance UID."""
    by_class: dict[str, list[Dataset]] = {}
    instances: dict[str, Dataset] = {}
    for model, path in family_files.items():
        ds = dcmread(path)
        instances[str(ds.SOPInstanceUID)] = ds
        for service in ("Find", "Get", "Move"):
            by_class.setdefault(pyn_class(model, service), []).append(ds)
    destinations: dict[str, tuple[str, int]] = {}

    def matches(query: Dataset, ds: Dataset) -> bool:
        for elem in query:
            if elem.VR == "SQ" or not elem.value:
                continue
            value = str(elem.value)
            have = str(ds.get(elem.keyword, ""))
            if (value.endswith("*") and have.startswith(value[:-1])) or have == value:
                continue
            return False
        return True

    def on_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        for ds in by_class[event.request.AffectedSOPClassUID]:
            if matches(event.identifier, ds):
                answer = Dataset()
                for elem in event.identifier:
                    answer[elem.tag] = ds.get(elem.tag, elem)
                yield 0xFF00, answer

    def wanted(event: Any) -> list[Dataset]:
        uids = event.identifier.SOPInstanceUID
        uids = [uids] if isinstance(uids, str) else list(uids)
        return [instances[uid] for uid in uids if uid in instances]

    def on_get(event: Any) -> Iterator[Any]:
        found = wanted(event)
        yield len(found)
        for ds in found:
            yield 0xFF00, ds

    def on_move(event: Any) -> Iterator[Any]:
        yield destinations[event.move_destination.strip()]
        found = wanted(event)
        yield len(found)
        for ds in found:
            yield 0xFF00, ds

    ae = PynetdicomAE(ae_title="PYNQR")
    for uid in by_class:
        ae.add_supported_context(uid)
    for flat in FLAT_MODELS.values():
        for uid in flat.storage_classes:
            # The files' syntax only: what arrives can be compared byte for byte.
            ae.add_supported_context(uid, ExplicitVRLittleEndian, scu_role=True, scp_role=True)
            ae.add_requested_context(uid, ExplicitVRLittleEndian)
    port = free_port()
    server = ae.start_server(
        (LOCALHOST, port),
        block=False,
        evt_handlers=[
            (evt.EVT_C_FIND, on_find),
            (evt.EVT_C_GET, on_get),
            (evt.EVT_C_MOVE, on_move),
        ],
    )
    assert server is not None
    try:
        yield port, destinations
    finally:
        server.shutdown()


def dimsefsm(*argv: str) -> tuple[int, str, str]:
    done = subprocess.run([*DIMSEFSM, *argv], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("model", list(FAMILIES))
def test_our_scus_find_get_and_move_from_pynetdicom(
    model: str,
    pynetdicom_qr_scp: tuple[int, dict[str, tuple[str, int]]],
    family_files: dict[str, Path],
    tmp_path: Path,
) -> None:
    port, destinations = pynetdicom_qr_scp
    name = PYNETDICOM_CLASSES[model][1]
    original = family_files[model]
    uid = str(dcmread(original).SOPInstanceUID)
    (keyword, value), *_ = FAMILIES[model][1].items()
    code, out, err = dimsefsm(
        "findscu", LOCALHOST, str(port), "-aec", "PYNQR", "--model", name, "--json",
        "-k", f"{keyword}={value}", "-k", "SOPInstanceUID",
    )  # fmt: skip
    assert code == 0, err
    (line,) = out.splitlines()
    match = Dataset.from_json(line)
    assert str(match.SOPInstanceUID) == uid
    assert match[keyword].value == dcmread(original)[keyword].value
    get_dir = _write_dir(tmp_path / "got")
    code, _, err = dimsefsm(
        "getscu", LOCALHOST, str(port), "-aec", "PYNQR", "--model", name,
        "-od", str(get_dir), "-k", f"SOPInstanceUID={uid}",
    )  # fmt: skip
    assert code == 0 and "1 completed, 0 failed" in err, err
    (got,) = get_dir.iterdir()
    assert dataset_bytes(got) == dataset_bytes(original)
    move_dir = _write_dir(tmp_path / "moved")
    my_port = free_port()
    destinations["ME"] = (LOCALHOST, my_port)
    code, _, err = dimsefsm(
        "movescu", LOCALHOST, str(port), "-aec", "PYNQR", "-aet", "ME", "--model", name,
        "+P", str(my_port), "-od", str(move_dir), "-k", f"SOPInstanceUID={uid}",
    )  # fmt: skip
    assert code == 0 and "1 completed, 0 failed" in err, err
    (moved,) = move_dir.iterdir()
    assert dataset_bytes(moved) == dataset_bytes(original)
