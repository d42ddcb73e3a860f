"""What a dcmtk user meets on the wire: refusals in words, dcmtk's flags, against real peers.

Both ways where the behaviour is on the wire: dcmtk's programs against our
servers (they must see the association accepted with every context refused, as
from dcmtk's own servers) and our programs against dcmtk's servers.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from dimsefsm.datasets import encode_dataset
from tests.data.make import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    RLE_LOSSLESS,
    make_instance,
    write_instance,
)
from tests.interop.peers import (
    DcmtkServer,
    DimsefsmServer,
    dcmqrscp_config,
    dcmtk_env,
    free_port,
    run_tool,
)

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
LOCALHOST = "127.0.0.1"
QR_AET = "DIMSEFSM"
DCMQRSCP_AET = "COMMON"
ME = "FACE"


@dataclass(frozen=True)
class Study:
    patient_id: str
    study_uid: str
    files: dict[str, Path]  # SOP Instance UID -> file


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Two CT instances, one explicit VR, one RLE Lossless (compressed)."""
    folder = tmp_path_factory.mktemp("face-study")
    study_uid, files = generate_uid(), {}
    for name, syntax in (("explicit", EXPLICIT_VR_LITTLE_ENDIAN), ("rle", RLE_LOSSLESS)):
        ds = make_instance(
            transfer_syntax=syntax,
            PatientID="PID-FACE",
            PatientName="Face^Test",
            StudyInstanceUID=study_uid,
        )
        files[str(ds.SOPInstanceUID)] = write_instance(folder / f"{name}.dcm", ds, syntax)
    return Study("PID-FACE", study_uid, files)


@pytest.fixture(scope="module")
def qrscp(study: Study, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DimsefsmServer]:
    """Our qrscp (no worklist) holding the study, ``ME`` known as a C-MOVE destination."""
    store = tmp_path_factory.mktemp("face-qrscp")
    for path in study.files.values():
        (store / path.name).write_bytes(path.read_bytes())
    port, my_port = free_port(), free_port()
    server = DimsefsmServer(
        [
            "qrscp",
            str(port),
            "-od",
            str(store),
            "-aet",
            QR_AET,
            "--workers",
            "1",
            "--dest",
            f"{ME}={LOCALHOST}:{my_port}",
        ]
    )
    server.move_port = my_port  # type: ignore[attr-defined]
    with server:
        yield server


@pytest.fixture(scope="module")
def dcmqrscp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DcmtkServer]:
    port = free_port()
    config = dcmqrscp_config(tmp_path_factory.mktemp("face-dcmqrscp"), port, [DCMQRSCP_AET])
    server = DcmtkServer(["dcmqrscp", "-c", str(config)], port)
    with server:
        yield server


def dimsefsm(*argv: str, cwd: Path | None = None) -> tuple[int, str]:
    result = run_tool([*DIMSEFSM, *argv], cwd=cwd)
    return result.returncode, result.stdout + result.stderr


# -- 1. refusals in words ------------------------------------------------------------------------
def test_our_echoscu_says_why_dcmqrscp_rejected_it(dcmqrscp: DcmtkServer) -> None:
    code, log = dimsefsm("echoscu", LOCALHOST, str(dcmqrscp.port), "-aec", "WRONG")
    assert code == 3, log
    assert (
        "echoscu: association rejected (permanent) by the service user: "
        "called AE title 'WRONG' not recognised"
    ) in log


def test_our_worklist_findscu_against_dcmqrscp_names_the_refused_model(
    dcmqrscp: DcmtkServer,
) -> None:
    """dcmqrscp has no worklist: it accepts the association and refuses the context."""
    code, log = dimsefsm(
        "findscu", LOCALHOST, str(dcmqrscp.port), "-aec", DCMQRSCP_AET, "-W", "-k", "PatientName="
    )
    assert code == 1, log
    assert (
        f"findscu: {DCMQRSCP_AET} accepted no Modality Worklist Information Model - FIND "
        "context (abstract syntax not supported) — did you mean -S?"
    ) in log
    assert dcmqrscp.alive


def test_dcmtk_findscu_worklist_against_our_qrscp_is_accepted_without_context(
    qrscp: DimsefsmServer,
) -> None:
    """As from dcmtk's own servers: an AC with the context refused, not an RJ "no reason"."""
    result = run_tool(
        ["/usr/bin/findscu", "-W", "-aec", QR_AET, LOCALHOST, str(qrscp.port), "-k", "PatientName="]
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "No Acceptable Presentation Contexts" in log
    assert "Association Rejected" not in log
    assert qrscp.alive


def test_our_worklist_findscu_against_our_qrscp_suggests_study_root(qrscp: DimsefsmServer) -> None:
    code, log = dimsefsm(
        "findscu", LOCALHOST, str(qrscp.port), "-aec", QR_AET, "-k", "PatientName="
    )
    assert code == 1, log
    assert "accepted no Modality Worklist Information Model - FIND context" in log
    assert "did you mean -S?" in log


def test_verbose_storescu_names_each_refused_context(
    dcmtk_server: Callable[..., DcmtkServer], study: Study, tmp_path: Path
) -> None:
    """dcmtk storescp offering Verification only: every storage context is refused."""
    config = tmp_path / "verify.cfg"
    config.write_text(
        "[[TransferSyntaxes]]\n[Uncompressed]\nTransferSyntax1 = LittleEndianImplicit\n"
        "[[PresentationContexts]]\n[VerificationOnly]\n"
        "PresentationContext1 = VerificationSOPClass\\Uncompressed\n"
        "[[Profiles]]\n[Verify]\nPresentationContexts = VerificationOnly\n"
    )
    server = dcmtk_server(["storescp", "-xf", str(config), "Verify", "-aet", "STORESCP"])
    files = [str(path) for path in study.files.values()]
    code, log = dimsefsm("storescu", LOCALHOST, str(server.port), *files, "-aec", "STORESCP", "-v")
    assert code == 1, log
    refused = [line for line in log.splitlines() if "the peer refused context" in line]
    assert len(refused) == 3, log
    assert all("(CT Image Storage)" in line for line in refused), log


# -- 2. IPv6 -------------------------------------------------------------------------------------
def test_a_server_bound_to_ipv6_any_answers_both_families(
    dimsefsm_server: Callable[..., DimsefsmServer],
) -> None:
    server = dimsefsm_server("echoscp", "-aet", "SIX", "--bind", "::")
    assert "listening on [::]:" in server.output()
    for host in ("::1", LOCALHOST):
        code, log = dimsefsm("echoscu", host, str(server.port), "-aec", "SIX")
        assert code == 0, log


# -- 3. dcmtk habits -----------------------------------------------------------------------------
def test_storescu_sends_a_bare_data_set_to_dcmtk(
    dcmtk_server: Callable[..., DcmtkServer], tmp_path: Path
) -> None:
    """A data set file without meta group (dcmtk reads them with +f, its default)."""
    ds = make_instance()
    bare = tmp_path / "bare.dcm"
    bare.write_bytes(encode_dataset(ds, IMPLICIT_VR_LITTLE_ENDIAN))
    out = tmp_path / "out"
    out.mkdir()
    server = dcmtk_server(["storescp", "-aet", "STORESCP", "-od", str(out)])
    code, log = dimsefsm("storescu", LOCALHOST, str(server.port), str(bare), "-aec", "STORESCP")
    assert code == 0, log
    assert "1 instance(s): 1 stored" in log
    (received,) = list(out.iterdir())
    got = dcmread(received)
    assert got.SOPInstanceUID == ds.SOPInstanceUID
    assert bytes(got.PixelData) == bytes(ds.PixelData)


def test_storescu_scan_directories_and_recurse(
    dimsefsm_server: Callable[..., DimsefsmServer], study: Study, tmp_path: Path
) -> None:
    top = tmp_path / "top"
    (top / "below").mkdir(parents=True)
    first, second = list(study.files.values())
    (top / "a.dcm").write_bytes(first.read_bytes())
    (top / "below" / "b.dcm").write_bytes(second.read_bytes())
    (top / "notes.txt").write_text("not DICOM")
    out = tmp_path / "out"
    server = dimsefsm_server("storescp", "-aet", "STORESCP", "-od", str(out))
    code, log = dimsefsm(
        "storescu", LOCALHOST, str(server.port), str(top), "+sd", "-aec", "STORESCP"
    )
    assert code == 0, log
    assert "1 instance(s): 1 stored" in log
    code, log = dimsefsm(
        "storescu", LOCALHOST, str(server.port), str(top), "+r", "-aec", "STORESCP"
    )
    assert code == 0, log
    assert "2 instance(s): 2 stored" in log


def test_storescu_implicit_only_proposal_reaches_dcmtk(
    dcmtk_server: Callable[..., DcmtkServer], study: Study, tmp_path: Path
) -> None:
    """-xi: dcmtk sees an implicit-only context besides the file's own."""
    explicit = next(p for p in study.files.values() if p.name == "explicit.dcm")
    out = tmp_path / "out"
    out.mkdir()
    server = dcmtk_server(["storescp", "-aet", "STORESCP", "-od", str(out), "-d"])
    code, log = dimsefsm(
        "storescu", LOCALHOST, str(server.port), str(explicit), "-aec", "STORESCP", "-xi", "-d"
    )
    assert code == 0, log
    server.stop()
    assert "Little Endian Implicit" in server.output() or "1.2.840.10008.1.2\n" in server.output()
    assert len(list(out.iterdir())) == 1


def test_movescu_plus_p_implies_store(qrscp: DimsefsmServer, study: Study, tmp_path: Path) -> None:
    out = tmp_path / "moved"
    code, log = dimsefsm(
        "movescu",
        LOCALHOST,
        str(qrscp.port),
        "-S",
        "-aec",
        QR_AET,
        "-aet",
        ME,
        "+P",
        str(qrscp.move_port),  # type: ignore[attr-defined]
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study.study_uid}",
    )
    assert code == 0, log
    assert "2 completed, 0 failed, 0 warning" in log
    got = {str(dcmread(path).SOPInstanceUID) for path in out.iterdir()}
    assert got == set(study.files)
    assert f"C-MOVE from '{ME}' to '{ME}' ended: 0x0000 Success" in qrscp.output()


def test_findscu_extract_writes_each_response_as_a_file(
    qrscp: DimsefsmServer, study: Study, tmp_path: Path
) -> None:
    code, log = dimsefsm(
        "findscu",
        LOCALHOST,
        str(qrscp.port),
        "-S",
        "-aec",
        QR_AET,
        "-X",
        "-od",
        str(tmp_path),
        "-v",
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        f"StudyInstanceUID={study.study_uid}",
        "-k",
        "SOPInstanceUID",
    )
    assert code == 0, log
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["rsp0001.dcm", "rsp0002.dcm"]
    found = {str(dcmread(tmp_path / name).SOPInstanceUID) for name in names}
    assert found == set(study.files)
    assert "request identifier:" in log and "response identifier 2:" in log
    assert "(0020,000D) Study Instance UID" in log


def test_getscu_receives_a_compressed_instance_as_it_is(
    qrscp: DimsefsmServer, study: Study, tmp_path: Path
) -> None:
    """getscu proposes the compressed syntaxes too: the RLE file arrives in RLE."""
    code, log = dimsefsm(
        "getscu",
        LOCALHOST,
        str(qrscp.port),
        "-S",
        "-aec",
        QR_AET,
        "-od",
        str(tmp_path),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study.study_uid}",
    )
    assert code == 0, log
    syntaxes = {str(dcmread(path).file_meta.TransferSyntaxUID) for path in tmp_path.iterdir()}
    assert syntaxes == {EXPLICIT_VR_LITTLE_ENDIAN, RLE_LOSSLESS}
    assert "C-GET from 'GETSCU' ended: 0x0000 Success" in qrscp.output()
    assert "2 completed, 0 failed, 0 warning" in qrscp.output()


def test_ct_image_storage_constant_is_the_ct_class() -> None:
    assert CT_IMAGE_STORAGE == "1.2.840.10008.5.1.4.1.1.2"


# -- 6. progress and tables on a terminal only ---------------------------------------------------
def test_findscu_draws_its_table_with_rich_on_a_terminal_only(
    qrscp: DimsefsmServer, study: Study
) -> None:
    argv = [
        *DIMSEFSM,
        "findscu",
        LOCALHOST,
        str(qrscp.port),
        "-S",
        "-aec",
        QR_AET,
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={study.study_uid}",
        "-k",
        "PatientName",
    ]
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.DEVNULL, env=dcmtk_env()
        )
        os.close(slave)
        shown = read_terminal(master)
        assert process.wait(timeout=60) == 0, shown
    finally:
        os.close(master)
    assert "─" in shown and "\x1b[" in shown  # rich's rule and styles
    assert "Face^Test" in shown
    code, piped = dimsefsm(*argv[3:])
    assert code == 0, piped
    assert "─" not in piped and "\x1b[" not in piped
    assert "Face^Test" in piped


def read_terminal(master: int) -> str:
    """What the child wrote to its terminal, until it closed it."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end (Linux)
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")
