"""C-STORE between two in-memory engines: every transition of c-store-scp and c-store-scu."""

from __future__ import annotations

import contextlib
import resource
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset

from dimsefsm import evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.datasets import check_dataset_bytes, encode_dataset
from dimsefsm.dimse.commands import store_rq
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.fsm import RECORDER
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.storage import (
    SCP_CHART,
    SCU_CHART,
    InstanceSink,
    Mode,
    StorageConfig,
    StoreScu,
)
from dimsefsm.sop_class import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    MR_IMAGE_STORAGE,
)
from dimsefsm.sop_class import (
    EXPLICIT_VR_LITTLE_ENDIAN as ELE,
)
from dimsefsm.transport.file_sink import open_file_sink
from dimsefsm.ul.effects import SendBytes
from tests.pair import EnginePair

HANGING_PROTOCOL_STORAGE = "1.2.840.10008.5.1.4.38.1"


def instance(uid: str = "1.2.3.4.5", pixels: int = 512) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = uid
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P1"
    ds.Rows = 16
    ds.Columns = pixels // 32
    ds.BitsAllocated = 16
    ds.PixelData = bytes(range(256)) * (pixels // 256)
    return ds


def recording(sink: list[Any], pick: Callable[[Any], Any]) -> Callable[[Any], int]:
    """A C-STORE handler that keeps `pick(event)` for the test and answers Success."""

    def handler(event: Any) -> int:
        sink.append(pick(event))
        return 0

    return handler


def make_pair(
    handler: Callable[[Any], Any] | None = None,
    config: StorageConfig | None = None,
    ts: str = EXPLICIT_VR_LITTLE_ENDIAN,
    max_pdu: int = 16384,
) -> EnginePair:
    proposal = RequestorProposal(
        "SCU",
        "SCP",
        propose_contexts(
            [(CT_IMAGE_STORAGE, [ts]), (MR_IMAGE_STORAGE, [ts]), (HANGING_PROTOCOL_STORAGE, [ts])]
        ),
    )
    policy = AcceptorPolicy(
        "SCP",
        {CT_IMAGE_STORAGE: (ts,), MR_IMAGE_STORAGE: (ts,), HANGING_PROTOCOL_STORAGE: (ts,)},
        max_pdu=max_pdu,
    )
    dispatcher = RequestDispatcher(
        {evt.EVT_C_STORE: handler} if handler else {},
        storage=config,
        open_sink=open_file_sink if config is not None and config.mode == "file" else None,
    )
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(
            requestor=False, policy=policy, on_request=dispatcher, sink_for=dispatcher.sink_for
        ),
    )
    pair.connect()
    return pair


def send(
    pair: EnginePair,
    data: bytes,
    *,
    context_id: int = 1,
    run: bool = True,
    sop_class: str = CT_IMAGE_STORAGE,
    **overrides: Any,
) -> StoreScu:
    engine = pair.requestor
    message_id = engine.next_message_id()
    op = StoreScu(message_id)
    engine.start_operation(message_id, op)
    op.sent()
    command = store_rq(message_id, sop_class, "1.2.3.4.5")
    for key, value in overrides.items():
        if value is None:
            command.pop(key, None)
        else:
            command[key] = value
    engine.send_message(Message(context_id, command, data))
    if run:
        pair.run()
    return op


def fired(chart: str, name: str) -> int:
    return RECORDER.count(chart, name)


ENCODED = encode_dataset(instance(), EXPLICIT_VR_LITTLE_ENDIAN)


def test_dataset_mode_hands_a_decoded_dataset() -> None:
    seen: list[Any] = []

    def handler(event: Any) -> int:
        seen.append((event.dataset.PatientName, event.transfer_syntax, event.message_id))
        return 0

    op = send(make_pair(handler), ENCODED)
    assert op.state == "Succeeded" and op.result().Status == 0
    assert seen == [("Doe^Jane", EXPLICIT_VR_LITTLE_ENDIAN, op.message_id)]


@pytest.mark.parametrize("ts", [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_BIG_ENDIAN])
def test_raw_mode_hands_bytes_in_the_negotiated_syntax(ts: str) -> None:
    seen: list[Any] = []
    data = encode_dataset(instance(), ts)
    send(
        make_pair(
            recording(seen, lambda e: (e.raw, e.transfer_syntax)), StorageConfig(mode="raw"), ts=ts
        ),
        data,
    )
    assert seen == [(data, ts)]


def test_file_mode_writes_a_part10_file_atomically(tmp_path: Path) -> None:
    from pydicom import dcmread

    paths: list[Path] = []
    pair = make_pair(
        recording(paths, lambda e: e.path),
        StorageConfig(mode="file", directory=tmp_path),
        max_pdu=2048,
    )
    big = encode_dataset(instance(pixels=64 * 1024), EXPLICIT_VR_LITTLE_ENDIAN)
    op = send(pair, big)
    assert op.result().Status == 0
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == ["1.2.3.4.5.dcm"]
    stored = dcmread(files[0])
    assert stored.PixelData == instance(pixels=64 * 1024).PixelData
    assert stored.file_meta.TransferSyntaxUID == EXPLICIT_VR_LITTLE_ENDIAN
    assert paths[0] != files[0]  # the handler saw the file before it was renamed into place


@pytest.mark.parametrize("mode", ["dataset", "raw", "file"])
def test_undecodable_dataset_is_c210_and_nothing_is_kept(mode: Mode, tmp_path: Path) -> None:
    before = fired("c-store-scp", "undecodable")
    config = StorageConfig(mode=mode, directory=tmp_path)
    called: list[Any] = []
    op = send(make_pair(recording(called, lambda e: e), config), b"\x08\x00\x16\x00UI\xff\x7f" * 8)
    assert op.result().Status == 0xC210 and op.state == "Failed"
    assert called == [] and list(tmp_path.iterdir()) == []
    assert fired("c-store-scp", "undecodable") == before + 1


HANDLER_STATUSES: list[tuple[Any, str, int, str]] = [
    (0xB000, "warning", 0xB000, "warning"),
    (0xB006, "warning", 0xB006, "warning"),
    (0xB007, "warning", 0xB007, "warning"),
    (0xA700, "failure", 0xA700, "failure"),
    (0xA9FF, "failure", 0xA9FF, "failure"),
    (0xC123, "failure", 0xC123, "failure"),
    (0x0117, "failure", 0x0117, "failure"),
    (0x0122, "failure", 0x0122, "failure"),
    (0x0124, "failure", 0x0124, "failure"),
    (0xD000, "unknown_status", 0xD000, "unknown_status"),
    (Dataset(), "no_status_element", 0xC001, "failure"),
    (None, "invalid_status", 0xC002, "failure"),
]


@pytest.mark.parametrize(("returned", "transition", "status", "scu_transition"), HANDLER_STATUSES)
@pytest.mark.parametrize("mode", ["raw", "file"])
def test_handler_statuses(
    returned: Any, transition: str, status: int, scu_transition: str, mode: Mode, tmp_path: Path
) -> None:
    """The guards on handler_returned pick the transition; in file mode a status that
    keeps the instance goes through Committing (keep, then committed) instead."""
    kept = transition not in ("failure", "no_status_element", "invalid_status")
    scp_path = ("keep", "committed") if kept and mode == "file" else (transition,)
    before = [fired("c-store-scp", name) for name in scp_path]
    before_scu = fired("c-store-scu", scu_transition)
    pair = make_pair(lambda e: returned, StorageConfig(mode=mode, directory=tmp_path))
    op = send(pair, ENCODED)
    assert op.result().Status == status
    assert [fired("c-store-scp", name) for name in scp_path] == [n + 1 for n in before]
    assert fired("c-store-scu", scu_transition) == before_scu + 1
    files = [f.name for f in tmp_path.iterdir()]
    assert files == (["1.2.3.4.5.dcm"] if kept and mode == "file" else [])


def test_handler_status_dataset_passes_comment() -> None:
    ds = Dataset()
    ds.Status = 0xA700
    ds.ErrorComment = "disk full"
    op = send(make_pair(lambda e: ds), ENCODED)
    assert op.result().Status == 0xA700 and op.result().ErrorComment == "disk full"


def test_handler_exception_is_c211() -> None:
    def handler(event: Any) -> int:
        raise OSError("no space")

    op = send(make_pair(handler), ENCODED)
    assert op.result().Status == 0xC211 and "no space" in op.result().ErrorComment


def test_non_patient_object_storage_has_no_warnings() -> None:
    """Annex GG: B000 is not a Non-Patient Object Storage status: unknown, sent as is."""
    before = fired("c-store-scp", "unknown_status")
    op = send(
        make_pair(lambda e: 0xB000), ENCODED, context_id=5, sop_class=HANGING_PROTOCOL_STORAGE
    )
    assert op.result().Status == 0xB000 and fired("c-store-scp", "unknown_status") == before + 1


def test_missing_sop_instance_uid_is_mistyped() -> None:
    op = send(make_pair(), ENCODED, AffectedSOPInstanceUID=None)
    assert op.result().Status == 0x0212


def test_sop_class_other_than_the_context_is_refused() -> None:
    op = send(make_pair(), ENCODED, context_id=3)  # CT instance on the MR context
    assert op.result().Status == 0x0122


def test_abort_mid_fragmented_dataset_leaves_no_file(tmp_path: Path) -> None:
    pair = make_pair(config=StorageConfig(mode="file", directory=tmp_path), max_pdu=1024)
    big = encode_dataset(instance(pixels=32 * 1024), EXPLICIT_VR_LITTLE_ENDIAN)
    op = send(pair, big, run=False)
    chunks: list[bytes] = []
    for effect in pair.requestor.take_effects():
        assert isinstance(effect, SendBytes)
        chunks.append(effect.data)
    sent = b"".join(chunks)
    pair.acceptor.data_received(sent[:5000])  # a few PDUs arrive, then the peer vanishes
    assert [f.name.endswith(".part") for f in tmp_path.iterdir()] == [True]
    pair.close_transport()
    assert list(tmp_path.iterdir()) == []
    assert op.state == "Aborted"


def test_scu_timeout_state() -> None:
    op = StoreScu(3)
    op.sent()
    op.on_timeout()
    assert op.state == "TimedOut" and op.result() == Dataset()


# -- item 11.5: the command's UIDs are checked before anything is kept ---------------------
@pytest.mark.parametrize("mode", ["dataset", "raw", "file"])
@pytest.mark.parametrize(
    ("uid", "reason"),
    [
        ("..1.2.3", "empty component"),
        ("1.2.3.", "empty component"),
        ("1.2 3", "a space"),
        ("1.2\\3", "a backslash"),
        ("1.2/3", "a slash"),
        ("1.2\x003", "a NUL"),
        ("1.2.3\u00e9", "U+00E9"),
        ("1.02.3", "leading zero"),
        ("1." * 32 + "1", "65 characters"),
    ],
)
def test_command_with_an_invalid_instance_uid_is_0117(
    mode: Mode, uid: str, reason: str, tmp_path: Path
) -> None:
    before = fired("c-store-scp", "invalid_uid")
    called: list[Any] = []
    pair = make_pair(recording(called, lambda e: e), StorageConfig(mode=mode, directory=tmp_path))
    if len(uid) > 64 or not uid.isascii():  # our encoder refuses it: framed by hand
        op = send_hand_encoded(pair, uid)
    else:
        op = send(pair, ENCODED, AffectedSOPInstanceUID=uid)
    result = op.result()
    assert result.Status == 0x0117, result
    assert result.ErrorComment.startswith("AffectedSOPInstanceUID ") and reason in str(
        result.ErrorComment
    )
    assert called == [] and list(tmp_path.iterdir()) == []
    assert fired("c-store-scp", "invalid_uid") == before + 1
    # The association goes on: the next instance is stored.
    assert send(pair, ENCODED).result().Status == 0


def send_hand_encoded(pair: EnginePair, sop_instance_uid: str) -> StoreScu:
    """A C-STORE-RQ whose UID our encoder would refuse, framed by hand."""
    from dimsefsm.dimse.commands import encode_command
    from dimsefsm.dimse.fragment import encode_message

    engine = pair.requestor
    message_id = engine.next_message_id()
    op = StoreScu(message_id)
    engine.start_operation(message_id, op)
    op.sent()
    placeholder = "9" * 64
    command = bytearray(encode_command(store_rq(message_id, CT_IMAGE_STORAGE, placeholder)))
    start = command.index(placeholder.encode())
    raw = sop_instance_uid.encode("latin-1")
    raw += b"\x00" * (len(raw) & 1)
    command[start - 4 : start + 64] = struct.pack("<I", len(raw)) + raw
    command[8:12] = struct.pack("<I", len(command) - 12)  # CommandGroupLength
    for pdu in encode_message(1, bytes(command), ENCODED, 16384):
        pair.acceptor.data_received(pdu)
    pair.run()
    return op


def test_command_with_an_invalid_sop_class_uid_is_0117() -> None:
    op = send(make_pair(), ENCODED, AffectedSOPClassUID="1.2.840.10008.5.1.4.1.1.02")
    assert op.result().Status == 0x0117
    assert "AffectedSOPClassUID" in op.result().ErrorComment


# -- item 11.9: a failed disk write is Out of Resources, and the association goes on ---------
@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """RLIMIT_FSIZE: a write past ``limit`` bytes fails with EFBIG (Python ignores SIGXFSZ)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("pixels", [16 * 1024, 1024 * 1024], ids=["at-flush", "mid-transfer"])
def test_failed_disk_write_is_a700_and_the_temporary_file_goes(pixels: int, tmp_path: Path) -> None:
    before = fired("c-store-scp", "write_failed")
    called: list[Any] = []
    pair = make_pair(recording(called, lambda e: e), StorageConfig(mode="file", directory=tmp_path))
    big = encode_dataset(instance(uid="1.2.3.4.6", pixels=pixels), EXPLICIT_VR_LITTLE_ENDIAN)
    with file_size_limit(8192):
        op = send(pair, big, AffectedSOPInstanceUID="1.2.3.4.6")
        result = op.result()
        assert result.Status == 0xA700, result
        assert result.ErrorComment == "cannot write the file: File too large"
        assert called == [] and list(tmp_path.iterdir()) == []
        assert fired("c-store-scp", "write_failed") == before + 1
        # Same association, an instance that fits: stored.
        assert send(pair, ENCODED).result().Status == 0
    assert [f.name for f in tmp_path.iterdir()] == ["1.2.3.4.5.dcm"]


def test_failed_rename_is_a700_and_nothing_is_answered_success(tmp_path: Path) -> None:
    (tmp_path / "1.2.3.4.5.dcm").mkdir()  # the final name is taken by a directory: EISDIR
    seen: list[Any] = []
    pair = make_pair(
        recording(seen, lambda e: e.path), StorageConfig(mode="file", directory=tmp_path)
    )
    op = send(pair, ENCODED)
    assert op.result().Status == 0xA700
    assert "directory" in op.result().ErrorComment
    assert len(seen) == 1 and not seen[0].exists()  # the handler ran; its file is gone
    assert [f.name for f in tmp_path.iterdir()] == ["1.2.3.4.5.dcm"]


def test_handler_may_commit_itself_and_the_scp_does_not_commit_again(tmp_path: Path) -> None:
    committed: list[Path] = []
    stored: list[Path] = []

    def handler(event: Any) -> int:
        committed.append(event.commit())
        assert committed[0].exists() and not event.path.exists()
        return 0

    config = StorageConfig(mode="file", directory=tmp_path, on_stored=stored.append)
    assert send(make_pair(handler, config), ENCODED).result().Status == 0
    assert committed == stored == [tmp_path / "1.2.3.4.5.dcm"]


@pytest.mark.parametrize("catches", [True, False], ids=["returns", "raises"])
def test_a_failed_commit_of_the_handler_is_a700_whatever_it_answers(
    catches: bool, tmp_path: Path
) -> None:
    """The handler commits itself and the rename fails: Out of Resources, not its answer."""
    (tmp_path / "1.2.3.4.5.dcm").mkdir()  # the final name is taken by a directory: EISDIR
    name = "handler_commit_failed" if catches else "raised_after_commit_failed"
    before = fired("c-store-scp", name)

    def handler(event: Any) -> int:
        try:
            event.commit()
        except OSError:
            if not catches:
                raise
        return 0

    config = StorageConfig(mode="file", directory=tmp_path)
    result = send(make_pair(handler, config), ENCODED).result()
    assert result.Status == 0xA700 and "directory" in result.ErrorComment
    assert fired("c-store-scp", name) == before + 1
    assert [f.name for f in tmp_path.iterdir()] == ["1.2.3.4.5.dcm"]


class MemorySink(InstanceSink):
    """An injected sink keeping the data set in memory: the SCP needs no file to store."""

    def __init__(self, kept: dict[str, bytes], sop_instance: str) -> None:
        self.kept, self.sop_instance = kept, sop_instance
        self.data = bytearray()
        self.write_error: OSError | None = None
        self.path: Path | None = None
        self.aborted = False

    @property
    def temp_path(self) -> Path | None:
        return None

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> MemorySink:
        return self

    def abort(self) -> None:
        self.aborted = True

    def check(self) -> None:
        check_dataset_bytes(bytes(self.data), EXPLICIT_VR_LITTLE_ENDIAN)

    def commit(self) -> Path:
        self.kept[self.sop_instance] = bytes(self.data)
        self.path = Path("memory") / self.sop_instance
        return self.path


@pytest.mark.parametrize(("returned", "kept"), [(0, True), (0xB007, True), (0xA700, False)])
def test_file_mode_stores_through_the_injected_sink(returned: int, kept: bool) -> None:
    """The core opens no file: whatever ``open_sink`` returns receives and commits the data."""
    store: dict[str, bytes] = {}
    sinks: list[MemorySink] = []

    def open_memory_sink(
        config: StorageConfig, command: dict[str, Any], syntax: str, peer: str | None
    ) -> MemorySink:
        sinks.append(MemorySink(store, command["AffectedSOPInstanceUID"]))
        return sinks[-1]

    config = StorageConfig(mode="file", directory=Path("/nonexistent"))
    proposal = RequestorProposal("SCU", "SCP", propose_contexts([(CT_IMAGE_STORAGE, [ELE])]))
    policy = AcceptorPolicy("SCP", {CT_IMAGE_STORAGE: (ELE,)})
    dispatcher = RequestDispatcher(
        {evt.EVT_C_STORE: lambda e: returned}, storage=config, open_sink=open_memory_sink
    )
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(
            requestor=False, policy=policy, on_request=dispatcher, sink_for=dispatcher.sink_for
        ),
    )
    pair.connect()
    assert send(pair, ENCODED).result().Status == returned
    assert store == ({"1.2.3.4.5": ENCODED} if kept else {})
    assert len(sinks) == 1 and sinks[0].aborted is not kept


def test_file_mode_without_a_sink_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="file mode needs an open_sink"):
        RequestDispatcher({}, storage=StorageConfig(mode="file", directory=Path("/tmp")))


def test_commit_is_for_file_mode_only() -> None:
    def handler(event: Any) -> int:
        event.commit()
        return 0

    assert send(make_pair(handler), ENCODED).result().Status == 0xC211


def test_both_charts_fully_covered(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Order-free: the scenarios below fire every edge of both charts, counted on their own."""

    def fresh() -> Path:
        return tmp_path_factory.mktemp("store")

    with RECORDER.during() as run:
        test_dataset_mode_hands_a_decoded_dataset()
        for case in HANDLER_STATUSES:
            for mode in ("raw", "file"):
                test_handler_statuses(*case, mode, fresh())
        test_undecodable_dataset_is_c210_and_nothing_is_kept("raw", fresh())
        test_handler_exception_is_c211()
        test_missing_sop_instance_uid_is_mistyped()
        test_sop_class_other_than_the_context_is_refused()
        test_command_with_an_invalid_sop_class_uid_is_0117()
        test_failed_disk_write_is_a700_and_the_temporary_file_goes(16 * 1024, fresh())
        test_failed_rename_is_a700_and_nothing_is_answered_success(fresh())
        for catches in (True, False):
            test_a_failed_commit_of_the_handler_is_a700_whatever_it_answers(catches, fresh())
        test_abort_mid_fragmented_dataset_leaves_no_file(fresh())
        test_scu_timeout_state()
    for chart in (SCP_CHART, SCU_CHART):
        missing = set(chart.declared_edges()) - run.fired(chart.name)
        assert missing == set(), f"{chart.name} missing {sorted(missing)}"
