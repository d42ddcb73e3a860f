"""C-FIND against real peers on 127.0.0.1: dcmtk ``findscu`` to our SCP, ours to ``dcmqrscp``.

Our SCP here is ``tests/interop/find_server.py``: a user's handler over a
folder of files, so that the generator protocol, cancel and abort are seen
exactly as a library user would see them.  Expected matches are worked out
from the generated data sets directly, never with the library's matcher.

Cancel is made deterministic without sleeping:

* against our SCP, ``find_server --hold-after N`` withholds match N+1 until the
  peer has sent its C-CANCEL, so the final status is always 0xFE00;
* against ``dcmqrscp`` a relay (:class:`CancelGate`) stops reading from it
  after the first match until the C-CANCEL has gone through, and dcmqrscp
  runs with 4 KB socket buffers (``TCP_BUFFER_LENGTH``), so it cannot have
  sent every match before it sees the cancel.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from dimsefsm import AE
from dimsefsm.qr.registry import MODALITY_WORKLIST_FIND, STUDY_ROOT_FIND
from tests.data.make import make_study, write_study
from tests.interop.peers import (
    LOCALHOST,
    DcmtkServer,
    LineReadyServer,
    ServerProcess,
    dcmqrscp_config,
    free_port,
    run_tool,
    wait_until,
)

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
REPO_ROOT = Path(__file__).resolve().parents[2]
SCP_AET = "FINDSCP"
QR_AET = "COMMON"
TINY_PIXELS = 2
HOLD_AFTER = 2
BULK_INSTANCES = 300

PENDING = 0xFF00
SUCCESS = 0x0000
CANCEL = 0xFE00
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS_IDENTIFIER = 0xC310

# Added by the SCP to every response whatever the request asked for.
SCP_SUPPLIED = {"QueryRetrieveLevel", "RetrieveAETitle", "SpecificCharacterSet"}
HANDLER_CLOSED = re.compile(r"find handler closed: yielded=(\d+) completed=(True|False)")


# -- test data ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Corpus:
    """What the SCPs hold: composite instances (headers) and worklist items."""

    instances: list[Dataset]
    worklist: list[Dataset]
    index_dir: Path
    instance_files: list[Path]

    def values(self, keyword: str, **where: str) -> set[str]:
        """Distinct values of ``keyword`` among instances whose attributes equal ``where``."""
        return {
            str(ds.get(keyword))
            for ds in self.instances
            if all(str(ds.get(key)) == value for key, value in where.items())
        }

    def study_uid(self, accession: str) -> str:
        (uid,) = self.values("StudyInstanceUID", AccessionNumber=accession)
        return uid

    def series_uids(self, accession: str) -> list[str]:
        return sorted(self.values("SeriesInstanceUID", AccessionNumber=accession))


def _study(
    n_instances: int,
    n_series: int,
    patient: tuple[str, str],
    accession: str,
    modalities: tuple[str, ...],
    study_date: str,
) -> list[Dataset]:
    instances = make_study(
        n_instances,
        n_series=n_series,
        pixel_bytes=TINY_PIXELS,
        patient_id=patient[0],
        patient_name=patient[1],
        modalities=modalities,
    )
    for ds in instances:
        ds.AccessionNumber = accession
        ds.StudyID = accession[-2:]
        ds.StudyDate = study_date
        ds.StudyDescription = f"Study {accession}"
    return instances


def _worklist_item(
    patient: tuple[str, str], accession: str, modality: str, station: str, date: str
) -> Dataset:
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = "090000"
    step.ScheduledProcedureStepDescription = f"{modality} exam"
    step.ScheduledProcedureStepID = f"SPS-{accession}"
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 100"
    item.SOPInstanceUID = generate_uid()
    item.AccessionNumber = accession
    item.PatientID, item.PatientName = patient
    item.RequestedProcedureID = f"RP-{accession}"
    item.StudyInstanceUID = generate_uid()
    item.ScheduledProcedureStepSequence = [step]
    return item


def _write_worklist_item(path: Path, item: Dataset) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MODALITY_WORKLIST_FIND)
    meta.MediaStorageSOPInstanceUID = item.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    item.file_meta = meta
    item.save_as(path, enforce_file_format=True)


ALPHA = ("P1", "Alpha^Anna")
BETA = ("P2", "Beta^Bob")
GAMMA = ("P3", "Gamma^Gus")
BULK = ("P9", "Bulk^Bill")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """3 patients, 4 studies, 7 series, 15 instances; 4 worklist items (3 of them CT)."""
    root = tmp_path_factory.mktemp("find-index")
    instances = [
        *_study(6, 2, ALPHA, "ACC-A1", ("CT",), "20240110"),
        *_study(4, 2, ALPHA, "ACC-A2", ("MR",), "20240220"),
        *_study(3, 1, BETA, "ACC-B1", ("CT",), "20240115"),
        *_study(2, 2, GAMMA, "ACC-C1", ("US", "CT"), "20231231"),
    ]
    files = write_study(root / "instances", instances)
    worklist = [
        _worklist_item(ALPHA, "ACC-W1", "CT", "CT01", "20240301"),
        _worklist_item(BETA, "ACC-W2", "MR", "MR01", "20240301"),
        _worklist_item(GAMMA, "ACC-W3", "CT", "CT02", "20240302"),
        _worklist_item(ALPHA, "ACC-W4", "CT", "CT01", "20240303"),
    ]
    (root / "worklist").mkdir()
    for item in worklist:
        _write_worklist_item(root / "worklist" / f"{item.AccessionNumber}.wl", item)
    return Corpus(instances, worklist, root, files)


# -- servers shared by the module -----------------------------------------------------------
def _start_find_server(corpus: Corpus, *options: str) -> LineReadyServer:
    server = LineReadyServer(
        [
            sys.executable,
            "-m",
            "tests.interop.find_server",
            "0",
            str(corpus.index_dir),
            "-aet",
            SCP_AET,
            *options,
        ],
        cwd=REPO_ROOT,
    )
    server.start()
    return server


@pytest.fixture(scope="module")
def find_scp(corpus: Corpus) -> Iterator[LineReadyServer]:
    server = _start_find_server(corpus)
    yield server
    server.stop()


@pytest.fixture
def fresh_scp(corpus: Corpus) -> Iterator[LineReadyServer]:
    """A server of the test's own, for tests that read what the server logged."""
    server = _start_find_server(corpus)
    yield server
    server.stop()


@pytest.fixture
def holding_scp(corpus: Corpus) -> Iterator[LineReadyServer]:
    """Withholds match 3 of every query until the peer has sent a whole PDU."""
    server = _start_find_server(corpus, "--hold-after", str(HOLD_AFTER))
    yield server
    server.stop()


def await_output(server: ServerProcess, pattern: str | re.Pattern[str], what: str) -> str:
    """The server's output once ``pattern`` is in it: its lines arrive after the client is done."""
    regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
    wait_until(lambda: regex.search(server.output()) is not None, what)
    return server.output()


# -- dcmtk findscu -> our SCP ----------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    flag: str
    keys: list[str]
    compare: str  # the attribute whose values tell the matches apart
    expected: set[str]


def _keywords(keys: list[str]) -> set[str]:
    return {key.split("=")[0].split("[")[0] for key in keys}


QUERIES: dict[str, Callable[[Corpus], Query]] = {
    "patient-root/PATIENT": lambda c: Query(
        "-P",
        ["QueryRetrieveLevel=PATIENT", "PatientID", "PatientName"],
        "PatientName",
        {"Alpha^Anna", "Beta^Bob", "Gamma^Gus"},
    ),
    "patient-root/STUDY": lambda c: Query(
        "-P",
        ["QueryRetrieveLevel=STUDY", "PatientID=P1", "StudyInstanceUID", "AccessionNumber"],
        "AccessionNumber",
        {"ACC-A1", "ACC-A2"},
    ),
    "patient-root/SERIES": lambda c: Query(
        "-P",
        [
            "QueryRetrieveLevel=SERIES",
            "PatientID=P1",
            f"StudyInstanceUID={c.study_uid('ACC-A2')}",
            "SeriesInstanceUID",
            "Modality",
        ],
        "SeriesInstanceUID",
        set(c.series_uids("ACC-A2")),
    ),
    "patient-root/IMAGE": lambda c: Query(
        "-P",
        [
            "QueryRetrieveLevel=IMAGE",
            "PatientID=P1",
            f"StudyInstanceUID={c.study_uid('ACC-A1')}",
            f"SeriesInstanceUID={c.series_uids('ACC-A1')[0]}",
            "SOPInstanceUID",
            "InstanceNumber",
        ],
        "SOPInstanceUID",
        c.values("SOPInstanceUID", SeriesInstanceUID=c.series_uids("ACC-A1")[0]),
    ),
    "study-root/STUDY": lambda c: Query(
        "-S",
        ["QueryRetrieveLevel=STUDY", "PatientName=*^A*", "StudyDate=20240201-", "AccessionNumber"],
        "AccessionNumber",
        {"ACC-A2"},  # ACC-A1 is Anna's too, but dated before the range
    ),
    "study-root/SERIES": lambda c: Query(
        "-S",
        [
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={c.study_uid('ACC-C1')}",
            "Modality=CT",
            "SeriesInstanceUID",
            "SeriesNumber",
        ],
        "SeriesInstanceUID",
        c.values("SeriesInstanceUID", AccessionNumber="ACC-C1", Modality="CT"),
    ),
    "study-root/IMAGE": lambda c: Query(
        "-S",
        [
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={c.study_uid('ACC-B1')}",
            f"SeriesInstanceUID={c.series_uids('ACC-B1')[0]}",
            "SOPInstanceUID",
        ],
        "SOPInstanceUID",
        c.values("SOPInstanceUID", AccessionNumber="ACC-B1"),
    ),
    "patient-study-only/PATIENT": lambda c: Query(
        "-O",
        ["QueryRetrieveLevel=PATIENT", "PatientName=Beta*", "PatientID"],
        "PatientID",
        {"P2"},
    ),
    "patient-study-only/STUDY": lambda c: Query(
        "-O",
        ["QueryRetrieveLevel=STUDY", "PatientID=P3", "StudyInstanceUID", "StudyDate"],
        "StudyInstanceUID",
        {c.study_uid("ACC-C1")},
    ),
    "worklist": lambda c: Query(
        "-W",
        [
            "AccessionNumber",
            "PatientName",
            "ScheduledProcedureStepSequence[0].Modality=CT",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
            "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
        ],
        "AccessionNumber",
        {"ACC-W1", "ACC-W4"},
    ),
}


def dcmtk_findscu(
    port: int, query: Query, out_dir: Path, *options: str
) -> tuple[int, str, list[Dataset]]:
    """Run dcmtk's findscu with ``-X``; its exit code, log, and the responses it extracted."""
    out_dir.mkdir(exist_ok=True)
    keys = [arg for key in query.keys for arg in ("-k", key)]
    result = run_tool(
        [
            "findscu",
            "-v",
            *options,
            query.flag,
            "-aec",
            SCP_AET,
            "-X",
            "-od",
            str(out_dir),
            *keys,
            LOCALHOST,
            str(port),
        ]
    )
    responses: list[Dataset] = [dcmread(path) for path in sorted(out_dir.glob("rsp*.dcm"))]
    return result.returncode, result.stdout + result.stderr, responses


@pytest.mark.parametrize("name", QUERIES)
def test_dcmtk_findscu_gets_exactly_the_expected_matches(
    find_scp: LineReadyServer, corpus: Corpus, tmp_path: Path, name: str
) -> None:
    query = QUERIES[name](corpus)
    code, log, responses = dcmtk_findscu(find_scp.port, query, tmp_path / "rsp")
    assert code == 0, log
    assert "Received Final Find Response (Success)" in log, log
    got = [str(ds.get(query.compare)) for ds in responses]
    assert sorted(got) == sorted(query.expected), log  # each entity exactly once
    requested = _keywords(query.keys)
    for ds in responses:
        returned = {elem.keyword for elem in ds}
        assert requested <= returned, f"requested keys missing: {requested - returned}"
        assert returned - requested <= SCP_SUPPLIED, f"not requested: {returned - requested}"


def test_worklist_responses_cut_sequence_items_to_the_requested_keys(
    find_scp: LineReadyServer, corpus: Corpus, tmp_path: Path
) -> None:
    query = QUERIES["worklist"](corpus)
    code, log, responses = dcmtk_findscu(find_scp.port, query, tmp_path / "rsp")
    assert code == 0, log
    dates = {
        str(ds.AccessionNumber): str(
            ds.ScheduledProcedureStepSequence[0].get("ScheduledProcedureStepStartDate")
        )
        for ds in responses
    }
    assert dates == {"ACC-W1": "20240301", "ACC-W4": "20240303"}
    for ds in responses:
        (step,) = ds.ScheduledProcedureStepSequence
        assert {elem.keyword for elem in step} == {
            "Modality",
            "ScheduledStationAETitle",
            "ScheduledProcedureStepStartDate",
        }
        assert "RetrieveAETitle" not in ds  # no Q/R model: nothing to retrieve from


CANCEL_QUERIES: dict[str, Callable[[Corpus], Query]] = {
    "patient-root/IMAGE": lambda c: Query(
        "-P",
        ["QueryRetrieveLevel=IMAGE", "SOPInstanceUID"],
        "SOPInstanceUID",
        c.values("SOPInstanceUID"),
    ),
    "study-root/IMAGE": lambda c: Query(
        "-S",
        ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={c.study_uid('ACC-A1')}", "SOPInstanceUID"],
        "SOPInstanceUID",
        c.values("SOPInstanceUID", AccessionNumber="ACC-A1"),
    ),
    "patient-study-only/STUDY": lambda c: Query(
        "-O",
        ["QueryRetrieveLevel=STUDY", "StudyInstanceUID"],
        "StudyInstanceUID",
        c.values("StudyInstanceUID"),
    ),
    "worklist": lambda c: Query(
        "-W",
        ["AccessionNumber", "ScheduledProcedureStepSequence[0].Modality"],
        "AccessionNumber",
        {str(item.AccessionNumber) for item in c.worklist},
    ),
}


@pytest.mark.parametrize("name", CANCEL_QUERIES)
def test_dcmtk_findscu_cancel_ends_the_query_with_fe00(
    holding_scp: LineReadyServer, corpus: Corpus, tmp_path: Path, name: str
) -> None:
    query = CANCEL_QUERIES[name](corpus)
    assert len(query.expected) > HOLD_AFTER + 1  # a cancelled query must stop short
    code, log, responses = dcmtk_findscu(
        holding_scp.port, query, tmp_path / "rsp", "--cancel", str(HOLD_AFTER)
    )
    assert code == 0, log
    assert "Sending Cancel Request" in log, log
    assert "Received Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in log
    # Match 3 may or may not leave before the cancel is read, never more.
    assert HOLD_AFTER <= len(responses) <= HOLD_AFTER + 1, log
    got = [str(ds.get(query.compare)) for ds in responses]
    assert len(set(got)) == len(got) and set(got) <= query.expected
    closed = HANDLER_CLOSED.search(await_output(holding_scp, HANDLER_CLOSED, "handler's finally"))
    assert closed is not None
    assert (int(closed.group(1)), closed.group(2)) == (len(responses), "False")


@pytest.mark.parametrize(
    ("keys", "comment"),
    [
        (
            ["QueryRetrieveLevel=FRAME", "StudyInstanceUID"],
            "Level 'FRAME' is not one of STUDY/SERIES/IMAGE",
        ),
        (
            ["QueryRetrieveLevel=SERIES", "PatientName=Alpha*", "SeriesInstanceUID"],
            "Non-unique key above SERIES level: (0010,0010)",
        ),
    ],
    ids=["unknown-level", "non-unique-key-above-level"],
)
def test_identifier_that_does_not_fit_the_model_gets_a900_with_a_comment(
    fresh_scp: LineReadyServer, tmp_path: Path, keys: list[str], comment: str
) -> None:
    query = Query("-S", keys, "", set())
    code, log, responses = dcmtk_findscu(fresh_scp.port, query, tmp_path / "rsp", "-d")
    assert code == 0, log
    assert responses == []
    assert "DIMSE Status                  : 0xa900" in log, log
    assert f"(0000,0902) LO [{comment}" in log, log
    output = await_output(fresh_scp, "C-FIND identifier rejected", "the rejection logged")
    assert "find handler started" not in output


# -- our Python API -> our SCP: bad input and peers that go away ------------------------------
def _study_root_ae() -> AE:
    ae = AE("PYSCU")
    ae.add_requested_context(STUDY_ROOT_FIND)
    return ae


def _study_query(**keys: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def _statuses_and_uids(results: Iterator[tuple[Dataset, Dataset | None]]) -> tuple[int, set[str]]:
    uids: set[str] = set()
    final = -1
    for status, identifier in results:
        if status.Status == PENDING:
            assert identifier is not None
            uids.add(str(identifier.StudyInstanceUID))
        else:
            final = int(status.Status)
    return final, uids


def test_peer_abort_mid_query_closes_the_handler_and_the_server_goes_on(
    holding_scp: LineReadyServer, corpus: Corpus
) -> None:
    assoc = _study_root_ae().associate(LOCALHOST, holding_scp.port, ae_title=SCP_AET)
    assert assoc.is_established
    results = assoc.send_c_find(_study_query(), STUDY_ROOT_FIND)
    status, identifier = next(results)
    assert status.Status == PENDING and identifier is not None
    assoc.abort()
    output = await_output(holding_scp, HANDLER_CLOSED, "the handler's finally after the abort")
    closed = HANDLER_CLOSED.search(output)
    assert closed is not None and closed.group(2) == "False"
    assert int(closed.group(1)) < len(corpus.values("StudyInstanceUID"))
    # The next association is served in full; with only 2 matches the hold never starts.
    again = _study_root_ae().associate(LOCALHOST, holding_scp.port, ae_title=SCP_AET)
    final, uids = _statuses_and_uids(
        again.send_c_find(_study_query(PatientID="P1"), STUDY_ROOT_FIND)
    )
    again.release()
    assert final == SUCCESS
    assert uids == corpus.values("StudyInstanceUID", PatientID="P1")
    assert holding_scp.alive


def test_cancel_naming_no_running_operation_is_logged_and_ignored(
    fresh_scp: LineReadyServer, corpus: Corpus
) -> None:
    assoc = _study_root_ae().associate(LOCALHOST, fresh_scp.port, ae_title=SCP_AET)
    assert assoc.negotiated is not None
    context = assoc.negotiated.find_context(STUDY_ROOT_FIND)
    assert context is not None
    assoc.send_c_cancel(4242, context_id=context.context_id)
    final, uids = _statuses_and_uids(assoc.send_c_find(_study_query(), STUDY_ROOT_FIND))
    assoc.release()
    assert final == SUCCESS
    assert uids == corpus.values("StudyInstanceUID")
    await_output(
        fresh_scp,
        "C-CANCEL for Message ID 4242 names no running operation; ignored",
        "the stray cancel logged",
    )


def test_undecodable_identifier_gets_c310(
    fresh_scp: LineReadyServer, corpus: Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    assoc = _study_root_ae().associate(LOCALHOST, fresh_scp.port, ae_title=SCP_AET)
    # Four bytes are no element in any transfer syntax: the SCP cannot decode them.
    monkeypatch.setattr("dimsefsm.datasets.encode_dataset", lambda _ds, _ts: b"\x08\x00\x52\x00")
    responses = list(assoc.send_c_find(_study_query(), STUDY_ROOT_FIND))
    monkeypatch.undo()
    assert [int(status.Status) for status, _ in responses] == [UNABLE_TO_PROCESS_IDENTIFIER]
    assert "ErrorComment" in responses[0][0]
    final, uids = _statuses_and_uids(assoc.send_c_find(_study_query(), STUDY_ROOT_FIND))
    assoc.release()
    assert final == SUCCESS and uids == corpus.values("StudyInstanceUID")
    # The good query's handler line comes after everything the bad one logged.
    log = await_output(fresh_scp, HANDLER_CLOSED, "the good query's handler finished")
    assert "C-FIND identifier cannot be decoded" in log
    assert log.count("find handler started") == 1  # only the good query reached the handler


# -- dimsefsm findscu -> dcmtk dcmqrscp -------------------------------------------------------
@dataclass(frozen=True)
class Archive:
    server: DcmtkServer
    instances: list[Dataset]
    bulk_study_uid: str

    def values(self, keyword: str, **where: str) -> set[str]:
        return {
            str(ds.get(keyword))
            for ds in self.instances
            if all(str(ds.get(key)) == value for key, value in where.items())
        }

    def study_uid(self, accession: str) -> str:
        (uid,) = self.values("StudyInstanceUID", AccessionNumber=accession)
        return uid


@pytest.fixture(scope="module")
def dcmqrscp(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    """dcmqrscp (forking) holding the corpus plus one study of 300 instances for cancel."""
    base = tmp_path_factory.mktemp("dcmqrscp")
    bulk = _study(BULK_INSTANCES, 3, BULK, "ACC-Z9", ("CT",), "20240401")
    bulk_files = write_study(base / "bulk", bulk)
    port = free_port()
    config = dcmqrscp_config(base / "db", port, [QR_AET])
    # 4 KB socket buffers: with the CancelGate holding its reads, dcmqrscp can have
    # only a few dozen responses in flight when the C-CANCEL reaches it.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TCP_BUFFER_LENGTH", "4096")
        server = DcmtkServer(["dcmqrscp", "-c", str(config)], port)
        server.start()
    try:
        files = [*corpus.instance_files, *bulk_files]
        stored = run_tool(["storescu", "-aec", QR_AET, LOCALHOST, str(port), *map(str, files)])
        assert stored.returncode == 0, stored.stdout + stored.stderr
        yield Archive(server, [*corpus.instances, *bulk], str(bulk[0].StudyInstanceUID))
    finally:
        server.stop()


def dimsefsm_findscu(
    port: int, flag: str, keys: list[str], *options: str
) -> tuple[int, list[Dataset], str]:
    """Our CLI with ``--json``: exit code, the matches, and stderr (the final status line)."""
    args = [arg for key in keys for arg in ("-k", key)]
    result = run_tool(
        [
            *DIMSEFSM,
            "findscu",
            LOCALHOST,
            str(port),
            flag,
            "-aec",
            QR_AET,
            "--json",
            *options,
            *args,
        ]
    )
    matches = [Dataset.from_json(json.loads(line)) for line in result.stdout.splitlines() if line]
    return result.returncode, matches, result.stderr


ARCHIVE_QUERIES: dict[str, Callable[[Archive], tuple[str, list[str], str, set[str]]]] = {
    "patient-root/PATIENT": lambda a: (
        "-P",
        ["QueryRetrieveLevel=PATIENT", "PatientID", "PatientName"],
        "PatientID",
        a.values("PatientID"),
    ),
    "patient-root/STUDY": lambda a: (
        "-P",
        ["QueryRetrieveLevel=STUDY", "PatientID=P1", "StudyInstanceUID"],
        "StudyInstanceUID",
        a.values("StudyInstanceUID", PatientID="P1"),
    ),
    "study-root/STUDY": lambda a: (
        "-S",
        ["QueryRetrieveLevel=STUDY", "PatientName=B*", "AccessionNumber"],
        "AccessionNumber",
        {"ACC-B1", "ACC-Z9"},
    ),
    "study-root/SERIES": lambda a: (
        "-S",
        [
            "QueryRetrieveLevel=SERIES",
            f"StudyInstanceUID={a.study_uid('ACC-A2')}",
            "SeriesInstanceUID",
        ],
        "SeriesInstanceUID",
        a.values("SeriesInstanceUID", AccessionNumber="ACC-A2"),
    ),
    "study-root/IMAGE": lambda a: (
        "-S",
        [
            "QueryRetrieveLevel=IMAGE",
            f"StudyInstanceUID={a.study_uid('ACC-C1')}",
            "SeriesInstanceUID",
            "SOPInstanceUID",
        ],
        "SOPInstanceUID",
        a.values("SOPInstanceUID", AccessionNumber="ACC-C1"),
    ),
    "patient-study-only/STUDY": lambda a: (
        "-O",
        ["QueryRetrieveLevel=STUDY", "PatientID=P2", "StudyInstanceUID"],
        "StudyInstanceUID",
        a.values("StudyInstanceUID", PatientID="P2"),
    ),
}


@pytest.mark.parametrize("name", ARCHIVE_QUERIES)
def test_dimsefsm_findscu_against_dcmqrscp_gets_exactly_the_expected_matches(
    dcmqrscp: Archive, name: str
) -> None:
    flag, keys, compare, expected = ARCHIVE_QUERIES[name](dcmqrscp)
    code, matches, err = dimsefsm_findscu(dcmqrscp.server.port, flag, keys)
    assert code == 0, err
    assert f"Final status: 0x0000 Success; {len(expected)} match" in err, err
    assert sorted(str(ds.get(compare)) for ds in matches) == sorted(expected)


# -- a relay that makes dcmqrscp's cancel deterministic ----------------------------------------
P_DATA_TF = 0x04


def _recv_exact(sock: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _pdus(sock: socket.socket) -> Iterator[bytes]:
    """Whole PDUs as they arrive, until the peer closes or the connection fails."""
    try:
        while (header := _recv_exact(sock, 6)) is not None:
            body = _recv_exact(sock, int.from_bytes(header[2:6], "big"))
            if body is None:
                return
            yield header + body
    except OSError:
        return


def _ends_a_data_set(pdu: bytes) -> bool:
    """Whether a P-DATA-TF carries the last fragment of a data set (not of a command)."""
    offset = 6
    while offset + 6 <= len(pdu):
        length = int.from_bytes(pdu[offset : offset + 4], "big")
        control = pdu[offset + 5]
        if not control & 0x01 and control & 0x02:
            return True
        offset += 4 + length
    return False


class CancelGate:
    """Relays one association; stops reading from the SCP after the first match until the
    SCU's next P-DATA (its C-CANCEL) has been passed on.

    While the relay does not read, the SCP can only fill the socket buffers; so it
    must see the cancel long before it runs out of matches, however fast it is.
    """

    def __init__(self, target_port: int, *, receive_buffer: int = 4096, timeout: float = 15.0):
        self.target_port = target_port
        self.receive_buffer = receive_buffer
        self.timeout = timeout
        self.first_match_passed = threading.Event()
        self.cancel_passed = threading.Event()
        self._listener = socket.create_server((LOCALHOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._relay, name="cancel-gate", daemon=True)

    def __enter__(self) -> CancelGate:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
        self._thread.join(self.timeout)

    def _relay(self) -> None:
        self._listener.settimeout(self.timeout)
        client, _ = self._listener.accept()
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer)
        server.connect((LOCALHOST, self.target_port))
        upstream = threading.Thread(target=self._client_to_server, args=(client, server))
        upstream.start()
        self._server_to_client(server, client)
        upstream.join(self.timeout)
        client.close()
        server.close()

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        for pdu in _pdus(client):
            # Decided before forwarding: once the request is on its way the first
            # match may come back at any moment, and the request is no cancel.
            after_first_match = self.first_match_passed.is_set()
            server.sendall(pdu)
            if pdu[0] == P_DATA_TF and after_first_match:
                self.cancel_passed.set()
        _shut_write(server)

    def _server_to_client(self, server: socket.socket, client: socket.socket) -> None:
        for pdu in _pdus(server):
            gate = (
                pdu[0] == P_DATA_TF
                and not self.first_match_passed.is_set()
                and _ends_a_data_set(pdu)
            )
            if gate:
                self.first_match_passed.set()  # before the SCU can possibly answer it
            try:
                client.sendall(pdu)
            except OSError:
                break
            if gate:
                self.cancel_passed.wait(self.timeout)
        _shut_write(client)


def _shut_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def test_dimsefsm_findscu_cancel_against_dcmqrscp(dcmqrscp: Archive) -> None:
    expected = dcmqrscp.values("SOPInstanceUID", StudyInstanceUID=dcmqrscp.bulk_study_uid)
    assert len(expected) == BULK_INSTANCES
    keys = [
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={dcmqrscp.bulk_study_uid}",
        "SeriesInstanceUID",
        "SOPInstanceUID",
    ]
    with CancelGate(dcmqrscp.server.port) as gate:
        code, matches, err = dimsefsm_findscu(gate.port, "-S", keys, "--cancel", "1")
    assert gate.first_match_passed.is_set() and gate.cancel_passed.is_set()
    assert code == 0, err
    assert "Final status: 0xFE00" in err, err
    got = [str(ds.SOPInstanceUID) for ds in matches]
    assert 1 <= len(got) < BULK_INSTANCES // 2, err
    assert len(set(got)) == len(got) and set(got) <= expected
    assert f"; {len(got)} match" in err
