"""C-STORE against real peers on 127.0.0.1: dcmtk both ways, our SCU to our SCP, bad peers.

Every instance travels in its own transfer syntax (checked on the wire for
dcmtk's ``storescu`` and in the received file's meta header for everybody),
and what arrives is compared with what was sent element by element, pixel
data byte for byte.  Big endian files are compared as big endian on both
sides: pydicom keeps OW pixel bytes in file order, so that comparison also
catches a missing or doubled byte swap.
"""

from __future__ import annotations

import re
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dimsefsm import AE
from dimsefsm.assoc.negotiation import RequestorProposal, build_request, propose_contexts
from dimsefsm.datasets import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    encode_dataset,
)
from dimsefsm.dimse.commands import encode_command, store_rq
from dimsefsm.dimse.fragment import encode_message
from dimsefsm.dimse.message import Message
from dimsefsm.part10 import build_file_meta, read_dataset_bytes, read_part10_info
from dimsefsm.pdu import Abort, AssociateAC, PduFramer, encode_pdu
from dimsefsm.services.storage import StoreScu
from tests.data.make import (
    CT_IMAGE_STORAGE,
    JPEG_BASELINE,
    LARGE_PIXEL_BYTES,
    RLE_LOSSLESS,
    SMALL_PIXEL_BYTES,
    make_instance,
    write_instance,
)
from tests.interop.peers import DcmtkServer, DimsefsmServer, run_tool, wait_until

DIMSEFSM = [sys.executable, "-m", "dimsefsm"]
LOCALHOST = "127.0.0.1"
SCP_AET = "DIMSEFSM"
DCMTK_AET = "DCMTK"
STORE_DECODE_FAILED = 0xC210


@dataclass(frozen=True)
class Syntax:
    uid: str
    storescu_flag: str  # makes dcmtk's storescu propose exactly this syntax
    dcmtk_name: str  # how dcmtk's -d output names it


SYNTAXES = {
    "implicit": Syntax(IMPLICIT_VR_LITTLE_ENDIAN, "-xi", "LittleEndianImplicit"),
    "explicit": Syntax(EXPLICIT_VR_LITTLE_ENDIAN, "-xe", "LittleEndianExplicit"),
    "deflated": Syntax(DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, "-xd", "DeflatedLittleEndianExplicit"),
    "big-endian": Syntax(EXPLICIT_VR_BIG_ENDIAN, "-xb", "BigEndianExplicit"),
    "jpeg-baseline": Syntax(JPEG_BASELINE, "-xy", "JPEGBaseline"),
    "rle": Syntax(RLE_LOSSLESS, "-xr", "RLELossless"),
}
SIZES = {"small": SMALL_PIXEL_BYTES, "large": LARGE_PIXEL_BYTES}
ENCAPSULATED = ("jpeg-baseline", "rle")


# -- test data ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """One file per (syntax, size), all in one directory (``storescu DIR`` sends them all)."""
    folder = tmp_path_factory.mktemp("sent")
    files = {}
    for name, syntax in SYNTAXES.items():
        for size, pixel_bytes in SIZES.items():
            ds = make_instance(pixel_bytes=pixel_bytes, transfer_syntax=syntax.uid)
            files[name, size] = write_instance(folder / f"{name}-{size}.dcm", ds, syntax.uid)
    return files


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "received"
    folder.mkdir()
    return folder


# -- comparing what arrived with what was sent -------------------------------------------
def assert_same_instance(received: Path, sent: Path) -> None:
    """Same syntax, same elements in the same order with the same values, same pixel bytes."""
    got, want = dcmread(received), dcmread(sent)
    assert got.file_meta.TransferSyntaxUID == want.file_meta.TransferSyntaxUID
    assert got.file_meta.MediaStorageSOPClassUID == want.SOPClassUID
    assert got.file_meta.MediaStorageSOPInstanceUID == want.SOPInstanceUID
    assert [elem.tag for elem in got] == [elem.tag for elem in want]
    for elem in want:
        assert got[elem.tag] == elem, f"{elem.tag} differs in {received}"
    assert bytes(got.PixelData) == bytes(want.PixelData)


def received_by_uid(folder: Path) -> dict[str, Path]:
    """Every file in ``folder`` (hidden ones too) by SOP Instance UID; dcmtk names files its way."""
    return {str(dcmread(path).SOPInstanceUID): path for path in folder.iterdir()}


def uid_of(path: Path) -> str:
    return read_part10_info(path).sop_instance_uid


def dcmtk_syntax_used(log: str) -> str:
    """The accepted transfer syntax of the context dcmtk's ``storescu -d`` sent the instance on."""
    used = re.search(r"Sending Store Request.*?Presentation Context ID\s*:\s*(\d+)", log, re.S)
    assert used is not None, log
    accepted = dict(
        re.findall(
            r"Context ID:\s+(\d+) \(Accepted\)\n(?:.*\n)*?.*Accepted Transfer Syntax: =(\S+)", log
        )
    )
    return accepted[used.group(1)]


def storescu(*args: str) -> tuple[int, str]:
    result = run_tool([*DIMSEFSM, "storescu", *args])
    return result.returncode, result.stdout + result.stderr


# -- 1. dcmtk storescu -> dimsefsm storescp -------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", SYNTAXES)
def test_dcmtk_storescu_to_dimsefsm_storescp(
    dimsefsm_server: Callable[..., DimsefsmServer],
    instances: dict[tuple[str, str], Path],
    out_dir: Path,
    name: str,
    size: str,
) -> None:
    syntax, sent = SYNTAXES[name], instances[name, size]
    server = dimsefsm_server("storescp", "-od", str(out_dir), "-aet", SCP_AET)
    flags = ["-d", syntax.storescu_flag, "-aec", SCP_AET]
    result = run_tool(["storescu", *flags, LOCALHOST, str(server.port), str(sent)])
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert dcmtk_syntax_used(log) == syntax.dcmtk_name
    assert [p.name for p in out_dir.iterdir()] == [f"{uid_of(sent)}.dcm"]
    assert_same_instance(out_dir / f"{uid_of(sent)}.dcm", sent)


# -- 2. dimsefsm storescu -> dcmtk storescp ------------------------------------------------
@pytest.mark.parametrize(
    "writer_flags", [["+xa"], ["+xa", "+B"]], ids=["accept-all", "accept-all-bit-preserving"]
)
def test_dimsefsm_storescu_to_dcmtk_storescp(
    dcmtk_server: Callable[..., DcmtkServer],
    instances: dict[tuple[str, str], Path],
    out_dir: Path,
    writer_flags: list[str],
) -> None:
    server = dcmtk_server(["storescp", *writer_flags, "-aet", DCMTK_AET, "-od", str(out_dir)])
    folder = str(next(iter(instances.values())).parent)
    code, log = storescu(LOCALHOST, str(server.port), folder, "+sd", "-aec", DCMTK_AET)
    assert code == 0, log
    assert "storescu: 12 instance(s): 12 stored, 0 with warnings, 0 failed" in log
    received = received_by_uid(out_dir)
    assert sorted(received) == sorted(uid_of(p) for p in instances.values())
    for sent in instances.values():
        assert_same_instance(received[uid_of(sent)], sent)
        if "+B" in writer_flags:  # what we sent is what dcmtk wrote, byte for byte
            got = read_dataset_bytes(read_part10_info(received[uid_of(sent)]))
            assert got == read_dataset_bytes(read_part10_info(sent)), sent.name


def test_dimsefsm_storescu_converts_what_dcmtk_storescp_refuses(
    dcmtk_server: Callable[..., DcmtkServer],
    instances: dict[tuple[str, str], Path],
    out_dir: Path,
) -> None:
    """Plain ``storescp`` accepts neither deflate nor compression.

    Deflated files then go as explicit little endian (same elements); JPEG and
    RLE files cannot be converted without a codec and fail, one line each.
    """
    server = dcmtk_server(["storescp", "-aet", DCMTK_AET, "-od", str(out_dir)])
    folder = str(next(iter(instances.values())).parent)
    code, log = storescu(LOCALHOST, str(server.port), folder, "+sd", "-aec", DCMTK_AET)
    assert code == 1, log
    assert "storescu: 12 instance(s): 8 stored, 0 with warnings, 4 failed" in log
    received = received_by_uid(out_dir)
    for (name, _), sent in instances.items():
        if name in ENCAPSULATED:
            assert uid_of(sent) not in received
            assert f"{sent}: cannot convert a data set from" in log
            continue
        got = received[uid_of(sent)]
        if name == "deflated":
            assert dcmread(got).file_meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
            assert dcmread(got) == dcmread(sent)
        else:
            assert_same_instance(got, sent)


# -- 3. dimsefsm storescu -> dimsefsm storescp ------------------------------------------------
def test_dimsefsm_storescu_to_dimsefsm_storescp_recursive(
    dimsefsm_server: Callable[..., DimsefsmServer],
    instances: dict[tuple[str, str], Path],
    tmp_path: Path,
    out_dir: Path,
) -> None:
    tree = tmp_path / "tree"
    nested = tree / "series" / "deeper"
    nested.mkdir(parents=True)
    sent = []
    for index, (_, source) in enumerate(sorted(instances.items())):
        target = (nested if index % 2 else tree) / source.name
        target.write_bytes(source.read_bytes())
        sent.append(target)
    server = dimsefsm_server("storescp", "-od", str(out_dir), "-aet", SCP_AET)

    code, log = storescu(LOCALHOST, str(server.port), str(tree), "-aec", SCP_AET)
    assert code == 2, log  # a directory needs +sd or +r, as with dcmtk
    assert "is a directory: add +sd to send its files, +r to recurse" in log

    code, log = storescu(LOCALHOST, str(server.port), str(tree), "+sd", "-aec", SCP_AET)
    assert code == 0, log
    assert "storescu: 6 instance(s): 6 stored, 0 with warnings, 0 failed" in log
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(
        f"{uid_of(p)}.dcm" for p in sent if p.parent == tree
    )

    code, log = storescu(LOCALHOST, str(server.port), str(tree), "--recurse", "-aec", SCP_AET)
    assert code == 0, log
    assert "storescu: 12 instance(s): 12 stored, 0 with warnings, 0 failed" in log
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{uid_of(p)}.dcm" for p in sent)
    for source in sent:
        received = out_dir / f"{uid_of(source)}.dcm"
        assert_same_instance(received, source)
        assert read_dataset_bytes(read_part10_info(received)) == read_dataset_bytes(
            read_part10_info(source)
        )


# -- 4. a peer that vanishes in the middle of a data set ----------------------------------
class RawPeer:
    """A requestor built from the codec alone, free to stop wherever a test wants."""

    def __init__(self, port: int, called_ae: str, max_pdu: int = 16384) -> None:
        self.sock = socket.create_connection((LOCALHOST, port), timeout=10)
        self.framer = PduFramer()
        proposal = RequestorProposal(
            calling_ae="RAWPEER",
            called_ae=called_ae,
            contexts=propose_contexts([(CT_IMAGE_STORAGE, [EXPLICIT_VR_LITTLE_ENDIAN])]),
            max_pdu=max_pdu,
        )
        self.sock.sendall(encode_pdu(build_request(proposal)))
        answer = self._next_pdu()
        assert isinstance(answer, AssociateAC), answer
        (context,) = answer.presentation_contexts
        assert context.result == 0 and context.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
        self.context_id = context.context_id
        self.peer_max_pdu = answer.user_info.max_length or 16384  # 0 or absent: no limit

    def _next_pdu(self) -> object:
        while (pdu := self.framer.next_pdu()) is None:
            data = self.sock.recv(65536)
            assert data, "connection closed before a PDU arrived"
            self.framer.feed(data)
        return pdu

    def store_pdus(self, sop_instance_uid: str, dataset: bytes) -> list[bytes]:
        command = encode_command(store_rq(1, CT_IMAGE_STORAGE, sop_instance_uid))
        # Small PDUs (well under the SCP's limit) make a large data set many fragments.
        return encode_message(self.context_id, command, dataset, min(self.peer_max_pdu, 16384))

    def vanish(self, how: str) -> None:
        if how == "a-abort":
            self.sock.sendall(encode_pdu(Abort(source=0, reason=0)))
        elif how == "reset":  # SO_LINGER 0: the kernel sends RST, as a crashed host's would
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


@pytest.mark.parametrize("how", ["a-abort", "close", "reset"])
def test_peer_vanishing_mid_dataset_leaves_no_file(
    dimsefsm_server: Callable[..., DimsefsmServer],
    instances: dict[tuple[str, str], Path],
    out_dir: Path,
    how: str,
) -> None:
    server = dimsefsm_server("storescp", "-od", str(out_dir), "-aet", SCP_AET)
    idle_sockets = server.open_sockets()
    ds = make_instance(pixel_bytes=LARGE_PIXEL_BYTES)
    peer = RawPeer(server.port, SCP_AET)
    pdus = peer.store_pdus(str(ds.SOPInstanceUID), encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN))
    assert len(pdus) > 20
    peer.sock.sendall(b"".join(pdus[: len(pdus) // 2]))
    # The SCP is writing: its hidden temporary file exists.
    wait_until(lambda: any(out_dir.iterdir()), "the SCP starts a temporary file")
    assert all(p.name.startswith(".") and p.name.endswith(".part") for p in out_dir.iterdir())

    peer.vanish(how)
    wait_until(lambda: server.open_sockets() == idle_sockets, "the SCP closes the connection")
    # After a close or reset the SCP closes its socket first and then drops the
    # association's state, temporary file included: that last step is awaited.
    wait_until(lambda: not any(out_dir.iterdir()), "the SCP deletes its temporary file")

    # ... and it goes on serving.
    echo = run_tool(["echoscu", "-aec", SCP_AET, LOCALHOST, str(server.port)])
    assert echo.returncode == 0, echo.stdout + echo.stderr
    sent = instances["explicit", "large"]
    store = run_tool(["storescu", "-aec", SCP_AET, LOCALHOST, str(server.port), str(sent)])
    assert store.returncode == 0, store.stdout + store.stderr
    assert [p.name for p in out_dir.iterdir()] == [f"{uid_of(sent)}.dcm"]
    assert server.alive


# -- 5. associations that cannot store -------------------------------------------------------
def test_dcmtk_storescu_with_wrong_called_ae_is_rejected(
    dimsefsm_server: Callable[..., DimsefsmServer],
    instances: dict[tuple[str, str], Path],
    out_dir: Path,
) -> None:
    server = dimsefsm_server("storescp", "-od", str(out_dir), "-aet", SCP_AET)
    sent = str(instances["explicit", "small"])
    result = run_tool(["storescu", "-aec", "SOMEONE", LOCALHOST, str(server.port), sent])
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Association Rejected" in log and "Called AE Title Not Recognized" in log
    assert list(out_dir.iterdir()) == []
    assert server.alive


def test_dcmtk_storescu_to_scp_without_storage_finds_no_context(
    dimsefsm_server: Callable[..., DimsefsmServer],
    instances: dict[tuple[str, str], Path],
) -> None:
    """``dimsefsm echoscp`` supports Verification only: no context of storescu's fits.

    Accepted with every context refused, as dcmtk's own storescp answers: dcmtk
    then says so in its words rather than "Association Rejected, No Reason".
    """
    server = dimsefsm_server("echoscp", "-aet", SCP_AET)
    sent = str(instances["explicit", "small"])
    result = run_tool(["storescu", "-aec", SCP_AET, LOCALHOST, str(server.port), sent])
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "No Acceptable Presentation Contexts" in log
    assert "Association Rejected" not in log
    assert server.alive


def test_dimsefsm_storescu_to_dimsefsm_scp_without_storage_finds_no_context(
    dimsefsm_server: Callable[..., DimsefsmServer],
    instances: dict[tuple[str, str], Path],
) -> None:
    server = dimsefsm_server("echoscp", "-aet", SCP_AET)
    sent = str(instances["explicit", "small"])
    code, log = storescu(LOCALHOST, str(server.port), sent, "-aec", SCP_AET)
    assert code == 1
    assert f"storescu: {SCP_AET} accepted none of the 2 proposed presentation contexts" in log


def test_dimsefsm_storescu_with_wrong_called_ae_is_rejected(
    dimsefsm_server: Callable[..., DimsefsmServer],
    instances: dict[tuple[str, str], Path],
    out_dir: Path,
) -> None:
    server = dimsefsm_server("storescp", "-od", str(out_dir), "-aet", SCP_AET)
    sent = str(instances["explicit", "small"])
    code, log = storescu(LOCALHOST, str(server.port), sent, "-aec", "SOMEONE")
    assert code == 3
    assert (
        "storescu: association rejected (permanent) by the service user: "
        "called AE title 'SOMEONE' not recognised"
    ) in log
    assert list(out_dir.iterdir()) == []


_VERIFICATION_ONLY_PROFILE = """\
[[TransferSyntaxes]]
[Uncompressed]
TransferSyntax1 = LocalEndianExplicit
TransferSyntax2 = LittleEndianImplicit
[[PresentationContexts]]
[VerificationOnly]
PresentationContext1 = VerificationSOPClass\\Uncompressed
[[Profiles]]
[Verify]
PresentationContexts = VerificationOnly
"""


def test_dimsefsm_storescu_when_no_context_is_accepted(
    dcmtk_server: Callable[..., DcmtkServer],
    instances: dict[tuple[str, str], Path],
    tmp_path: Path,
    out_dir: Path,
) -> None:
    """dcmtk accepts the association but refuses every storage context: said once, exit 1."""
    config = tmp_path / "verification-only.cfg"
    config.write_text(_VERIFICATION_ONLY_PROFILE)
    server = dcmtk_server(
        ["storescp", "-xf", str(config), "Verify", "-aet", DCMTK_AET, "-od", str(out_dir)]
    )
    files = [str(instances["explicit", "small"]), str(instances["rle", "small"])]
    code, log = storescu(LOCALHOST, str(server.port), *files, "-aec", DCMTK_AET)
    assert code == 1, log
    assert f"storescu: {DCMTK_AET} accepted none of the 3 proposed presentation contexts" in log
    assert "storescu: 2 instance(s): 0 stored, 0 with warnings, 2 failed" in log
    assert list(out_dir.iterdir()) == []


# -- 6. a data set that cannot be decoded ------------------------------------------------------
def _truncated_value() -> bytes:
    """(0010,0010) PN announcing 1000 bytes, carrying 4."""
    return struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 1000) + b"Doe^"


def _truncated_pixel_data() -> bytes:
    """A well-formed start, then Pixel Data announcing more than arrives: many PDUs long."""
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    head = encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN)
    pixel_header = struct.pack("<HH2s2xI", 0x7FE0, 0x0010, b"OW", 2 * LARGE_PIXEL_BYTES)
    return head + pixel_header + bytes(LARGE_PIXEL_BYTES)


def _bad_vr() -> bytes:
    return struct.pack("<HH2sH", 0x0010, 0x0010, b"\x00\x00", 4) + b"Doe^"


@pytest.mark.parametrize(
    "garbage",
    [_truncated_value(), _truncated_pixel_data(), _bad_vr()],
    ids=["truncated-value", "truncated-pixel-data", "bad-vr"],
)
def test_undecodable_dataset_gets_c210_and_nothing_is_written(
    dimsefsm_server: Callable[..., DimsefsmServer], out_dir: Path, garbage: bytes
) -> None:
    server = dimsefsm_server("storescp", "-od", str(out_dir), "-aet", SCP_AET)
    ae = AE("GARBAGE")
    ae.add_requested_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)
    assoc = ae.associate(LOCALHOST, server.port, ae_title=SCP_AET)
    assert assoc.is_established, assoc.describe_failure()
    assert assoc.negotiated is not None
    ctx = assoc.negotiated.find_context(CT_IMAGE_STORAGE)
    assert ctx is not None
    statuses = []
    for attempt in range(2):  # the association survives a failed store
        message_id = assoc.engine.next_message_id()
        op = StoreScu(message_id)
        assoc.engine.start_operation(message_id, op)
        op.sent()
        command = store_rq(message_id, CT_IMAGE_STORAGE, f"1.2.826.0.1.3680043.10.1138.9.{attempt}")
        assoc.engine.send_message(Message(ctx.context_id, command, garbage))
        assoc._wait(op)
        statuses.append(op.result().get("Status"))
    assoc.release()  # answered after the SCP has dropped the temporary files
    assert assoc.is_released
    assert statuses == [STORE_DECODE_FAILED, STORE_DECODE_FAILED]
    assert list(out_dir.iterdir()) == []


def test_dimsefsm_storescu_reports_c210_with_the_scp_comment(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path, out_dir: Path
) -> None:
    """A Part-10 file whose data set is garbage travels as is (no decode on our side)."""
    broken = tmp_path / "broken.dcm"
    meta = build_file_meta(
        CT_IMAGE_STORAGE,
        "1.2.826.0.1.3680043.10.1138.9.9",
        EXPLICIT_VR_LITTLE_ENDIAN,
        implementation_class_uid="1.2.826.0.1.3680043.10.1138.1",
        implementation_version_name="DIMSEFSM_TEST",
    )
    broken.write_bytes(meta + _bad_vr())
    server = dimsefsm_server("storescp", "-od", str(out_dir), "-aet", SCP_AET)
    code, log = storescu(LOCALHOST, str(server.port), str(broken), "-aec", SCP_AET)
    assert code == 1, log
    # The SCP's comment had backslashes (LO's value separator): sent as one value, with "/".
    assert (
        f"storescu: {broken}: failed with status 0xC210 "
        "(element (0010,0010) has no valid explicit VR (b'/x00/x00')"
    ) in log
    assert "storescu: 1 instance(s): 0 stored, 0 with warnings, 1 failed" in log
    assert list(out_dir.iterdir()) == []
