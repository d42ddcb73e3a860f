"""The asyncio client against our own threaded SCPs on 127.0.0.1.

Each test runs its coroutine with ``asyncio.run`` and checks, before the loop
ends, that no task is left; every association's socket must be closed, and
the autouse fixture checks sockets and threads once the servers are down.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydicom import Dataset, dcmread

from dimsefsm import AE, association, evt
from dimsefsm.aio import AsyncAssociation, aio_associate
from dimsefsm.archive.scp import QueryRetrieveSCP
from dimsefsm.assoc.negotiation import (
    DEFAULT_MAX_PDU,
    AcceptorPolicy,
    Negotiated,
    accept_or_reject,
)
from dimsefsm.datasets import decode_dataset, encode_dataset
from dimsefsm.dimse.commands import echo_rsp, encode_command, find_rq
from dimsefsm.dimse.fragment import encode_message
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import Reassembler
from dimsefsm.identity import IdentityRules, username_identity
from dimsefsm.passwords import hash_password
from dimsefsm.pdu import PduFramer, encode_pdu
from dimsefsm.pdu.model import Abort, AssociateRQ, PDataTF, ReleaseRP, ReleaseRQ
from dimsefsm.qr.registry import STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN, VERIFICATION
from dimsefsm.sop_class import IMPLICIT_VR_LITTLE_ENDIAN as IVRLE
from dimsefsm.transport.server import AssociationServer
from tests.data.make import (
    LARGE_PIXEL_BYTES,
    make_instance,
    make_study,
    write_instance,
    write_study,
)
from tests.tls_pki import Pki, make_pki
from tests.unit.test_tls import assoc_threads, client_context, open_sockets, server_context

LOCALHOST = "127.0.0.1"
SUCCESS, PENDING, CANCEL = 0x0000, 0xFF00, 0xFE00
T = TypeVar("T")


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test ends with the sockets and threads it started with (servers included)."""
    before = open_sockets()
    yield
    assert assoc_threads() == []
    assert [t.name for t in threading.enumerate() if t.name.startswith("asyncio")] == []
    assert open_sockets() - before == set()


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run``, failing if the coroutine leaves a task behind."""

    async def checked() -> T:
        result = await main()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return result

    return asyncio.run(checked())


def socket_closed(assoc: AsyncAssociation) -> bool:
    assert assoc.driver is not None
    sock = assoc.driver.writer.transport.get_extra_info("socket")
    return sock is None or sock.fileno() == -1


def scu(*contexts: str, **attrs: Any) -> AE:
    ae = AE("AIO-SCU")
    for uid in contexts or (VERIFICATION,):
        ae.add_requested_context(uid)
    for name, value in attrs.items():
        setattr(ae, name, value)
    return ae


# -- an echo + storage SCP ---------------------------------------------------------------------
@dataclass
class Scp:
    """Records what it stores; with an ``echo_gate`` each C-ECHO waits for the test to set it."""

    echo_gate: threading.Event | None = None
    on_echo: Callable[[], object] = lambda: None
    stored: list[Dataset] = field(default_factory=list)
    server: AssociationServer | None = None

    def start(self) -> Scp:
        ae = AE("AIO-SCP")
        ae.add_supported_context(VERIFICATION)
        ae.add_supported_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)
        ae.require_called_aet = True
        ae.maximum_associations = 25
        handlers: list[Any] = [(evt.EVT_C_STORE, self.store)]
        if self.echo_gate is not None:
            handlers.append((evt.EVT_C_ECHO, self.echo))
        self.server = ae.start_server((LOCALHOST, 0), block=False, evt_handlers=handlers)
        return self

    def store(self, event: Any) -> int:
        self.stored.append(event.dataset)
        return SUCCESS

    def echo(self, event: Any) -> int:
        assert self.echo_gate is not None
        self.on_echo()
        return SUCCESS if self.echo_gate.wait(10) else 0x0110

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.address[1]

    def stop(self) -> None:
        """Abort live associations, join the threads (once; later calls do nothing)."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()


@pytest.fixture
def scp() -> Iterator[Scp]:
    started = Scp().start()
    yield started
    started.stop()


@pytest.fixture
def slow_scp() -> Iterator[Scp]:
    gate = threading.Event()
    started = Scp(echo_gate=gate).start()
    yield started
    gate.set()
    started.stop()


def test_echo_store_and_release(scp: Scp, tmp_path: Path) -> None:
    instance = make_instance()
    path = write_instance(tmp_path / "file.dcm", make_instance())

    async def main() -> AsyncAssociation:
        ae = scu(VERIFICATION, CT_IMAGE_STORAGE)
        async with await aio_associate(ae, LOCALHOST, scp.port, ae_title="AIO-SCP") as assoc:
            assert assoc.is_established, assoc.describe_failure()
            assert [(await assoc.send_c_echo()).Status for _ in range(3)] == [SUCCESS] * 3
            assert (await assoc.send_c_store(instance)).Status == SUCCESS
            assert (await assoc.send_c_store(path)).Status == SUCCESS
        return assoc

    assoc = run(main)
    assert assoc.is_released and socket_closed(assoc)
    assert [ds.SOPInstanceUID for ds in scp.stored] == [
        instance.SOPInstanceUID,
        dcmread(path).SOPInstanceUID,
    ]


def test_large_file_streams_in_batches_with_flow_control(
    scp: Scp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above the threshold the file goes from disk in batches, each drained before the next."""
    monkeypatch.setattr(association, "STREAM_THRESHOLD", 64 * 1024)
    monkeypatch.setattr(association, "SEND_BATCH", 32 * 1024)
    batches: list[int] = []
    real = association.queue_streamed

    def counted(*args: Any) -> Iterator[None]:
        for _ in real(*args):
            batches.append(1)
            yield

    monkeypatch.setattr(association, "queue_streamed", counted)
    path = write_instance(tmp_path / "large.dcm", make_instance(pixel_bytes=LARGE_PIXEL_BYTES))

    async def main() -> int:
        async with await aio_associate(
            scu(CT_IMAGE_STORAGE), LOCALHOST, scp.port, ae_title="AIO-SCP"
        ) as assoc:
            return int((await assoc.send_c_store(path)).Status)

    assert run(main) == SUCCESS
    assert len(batches) >= LARGE_PIXEL_BYTES // DEFAULT_MAX_PDU  # one PDU exceeds a batch
    assert bytes(scp.stored[0].PixelData) == bytes(dcmread(path).PixelData)


def test_twenty_associations_at_once_in_one_loop(scp: Scp) -> None:
    """All twenty are open at the same moment (a barrier), each echoing in turn."""
    count = 20

    async def main() -> list[AsyncAssociation]:
        ae = scu()
        together = asyncio.Barrier(count)

        async def one() -> AsyncAssociation:
            async with await aio_associate(ae, LOCALHOST, scp.port, ae_title="AIO-SCP") as assoc:
                assert assoc.is_established, assoc.describe_failure()
                async with asyncio.timeout(10):
                    await together.wait()
                for _ in range(5):
                    assert (await assoc.send_c_echo()).Status == SUCCESS
            return assoc

        return await asyncio.gather(*(one() for _ in range(count)))

    done = run(main)
    assert len({id(assoc) for assoc in done}) == count
    assert all(assoc.is_released and socket_closed(assoc) for assoc in done)


# -- not established ---------------------------------------------------------------------------
def test_rejection_and_refusal_are_reported_not_raised(scp: Scp) -> None:
    with socket.socket() as unused:
        unused.bind((LOCALHOST, 0))
        closed_port = unused.getsockname()[1]

    async def main() -> tuple[AsyncAssociation, AsyncAssociation]:
        rejected = await aio_associate(scu(), LOCALHOST, scp.port, ae_title="NOBODY")
        refused = await aio_associate(scu(), LOCALHOST, closed_port, ae_title="AIO-SCP")
        return rejected, refused

    rejected, refused = run(main)
    assert rejected.is_rejected and rejected.rejection == (1, 1, 7)
    assert rejected.describe_failure().startswith(
        "association rejected (permanent) by the service user: called AE title"
    )
    assert socket_closed(rejected)
    assert refused.is_aborted and not refused.is_established and refused.driver is None
    assert f"cannot connect to 127.0.0.1:{closed_port}" in refused.describe_failure()


def test_acse_timeout_aborts_a_silent_acceptor() -> None:
    """The kernel accepts the connection; nobody ever answers the A-ASSOCIATE-RQ."""
    with socket.socket() as silent:
        silent.bind((LOCALHOST, 0))
        silent.listen()

        async def main() -> AsyncAssociation:
            ae = scu(acse_timeout=0.2)
            return await aio_associate(ae, LOCALHOST, silent.getsockname()[1])

        assoc = run(main)
        peer, _ = silent.accept()
        peer.close()
    assert assoc.is_aborted and assoc.timed_out
    assert assoc.describe_failure() == "association aborted: no association response within 0.2 s"
    assert socket_closed(assoc)


# -- ending badly ------------------------------------------------------------------------------
def test_dimse_timeout_aborts_and_returns_an_empty_status(slow_scp: Scp) -> None:
    async def main() -> tuple[AsyncAssociation, Dataset]:
        ae = scu(dimse_timeout=0.2)
        assoc = await aio_associate(ae, LOCALHOST, slow_scp.port, ae_title="AIO-SCP")
        return assoc, await assoc.send_c_echo()

    assoc, status = run(main)
    assert "Status" not in status
    assert assoc.is_aborted and assoc.timed_out and socket_closed(assoc)
    assert "DIMSE timeout (0.2 s)" in assoc.describe_failure()


def test_cancelling_the_task_aborts_the_association(slow_scp: Scp) -> None:
    """Cancelled while awaiting a response: ``async with`` aborts, as the exchange is unknown."""

    async def main() -> AsyncAssociation:
        loop = asyncio.get_running_loop()
        answering = asyncio.Event()
        slow_scp.on_echo = lambda: loop.call_soon_threadsafe(answering.set)
        assoc = await aio_associate(scu(), LOCALHOST, slow_scp.port, ae_title="AIO-SCP")

        async def echo() -> None:
            async with assoc:
                await assoc.send_c_echo()

        task = asyncio.create_task(echo())
        async with asyncio.timeout(10):
            await answering.wait()  # the SCP holds our request
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return assoc

    assoc = run(main)
    assert assoc.is_aborted and not assoc.timed_out and socket_closed(assoc)


def test_user_abort_and_peer_abort(scp: Scp) -> None:
    async def main() -> tuple[AsyncAssociation, AsyncAssociation, Dataset]:
        ours = await aio_associate(scu(), LOCALHOST, scp.port, ae_title="AIO-SCP")
        theirs = await aio_associate(scu(), LOCALHOST, scp.port, ae_title="AIO-SCP")
        await ours.abort()
        scp.stop()  # aborts every live association: `theirs` learns it with its next read
        return ours, theirs, await theirs.send_c_echo()

    ours, theirs, status = run(main)
    assert ours.is_aborted and socket_closed(ours)
    assert "Status" not in status and theirs.is_aborted and socket_closed(theirs)
    assert (theirs.engine.abort_source, theirs.engine.abort_reason) == (0, 0)
    assert theirs.describe_failure() == "association aborted by the service user"


# -- a peer scripted from the codec, in the same event loop ------------------------------------
class ScriptedPeer:
    """One connection to ``asyncio.start_server``, answered PDU by PDU."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.framer = PduFramer()
        self.reassembler = Reassembler()
        self.negotiated: Negotiated | None = None

    async def next_pdu(self) -> object:
        while (pdu := self.framer.next_pdu()) is None:
            data = await self.reader.read(65536)
            if not data:
                return None
            self.framer.feed(data)
        return pdu

    async def accept(self, policy: AcceptorPolicy) -> Negotiated:
        rq = await self.next_pdu()
        assert isinstance(rq, AssociateRQ)
        answer, self.negotiated = accept_or_reject(rq, policy)
        assert self.negotiated is not None
        self.writer.write(encode_pdu(answer))
        return self.negotiated

    async def next_message(self) -> Message:
        while True:
            pdu = await self.next_pdu()
            assert isinstance(pdu, PDataTF), pdu
            for message in self.reassembler.feed(pdu.pdvs):
                return message

    def send(self, context_id: int, command: dict[str, Any], dataset: bytes | None = None) -> None:
        assert self.negotiated is not None
        peer_max = self.negotiated.peer_max_pdu
        for pdu in encode_message(context_id, encode_command(command), dataset, peer_max):
            self.writer.write(pdu)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def serve_once(script: Callable[[ScriptedPeer], Awaitable[T]]) -> tuple[int, Awaitable[T]]:
    """A server on a free port; the future of ``script``'s result for its first connection."""
    done: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = ScriptedPeer(reader, writer)
        try:
            outcome: T | Exception = await script(peer)
        except Exception as exc:  # an assertion of the script: raised where the test awaits
            outcome = exc
        await peer.close()
        # The handler's last step, so nothing is left running once the test has the result.
        if isinstance(outcome, Exception):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)

    server = await asyncio.start_server(connected, LOCALHOST, 0)
    port = server.sockets[0].getsockname()[1]

    async def result() -> T:
        async with server, asyncio.timeout(10):
            return await done

    return port, result()


def test_artim_closes_the_connection_after_an_invalid_pdu() -> None:
    """AA-8: we send an A-ABORT and wait, by the loop's timer, for a peer that never closes."""

    async def script(peer: ScriptedPeer) -> bool:
        await peer.accept(AcceptorPolicy("PEER", {VERIFICATION: (IVRLE,)}))
        await peer.next_message()  # the C-ECHO-RQ
        peer.writer.write(b"\x09\x00\x00\x00\x00\x02\x00\x00")  # no such PDU type
        assert isinstance(await peer.next_pdu(), Abort)
        return await peer.reader.read(65536) == b""  # ... once ARTIM closes

    async def main() -> tuple[AsyncAssociation, Dataset, bool]:
        port, saw_eof = await serve_once(script)
        assoc = await aio_associate(scu(artim_timeout=0.2), LOCALHOST, port, ae_title="PEER")
        assert assoc.is_established, assoc.describe_failure()
        status = await assoc.send_c_echo()
        assert not socket_closed(assoc)  # Sta13: the peer is given ARTIM to close first
        return assoc, status, await saw_eof

    assoc, status, eof = run(main)
    assert "Status" not in status and assoc.is_aborted
    assert eof and socket_closed(assoc)


def test_a_c_find_the_peer_sends_us_is_served_while_we_wait() -> None:
    """Role reversal on our association: our EVT_C_FIND handler answers the peer's query
    between two reads of our own C-ECHO's wait, one response per step."""

    def matches(event: Any) -> Iterator[tuple[int, Dataset]]:
        yield from ((PENDING, study_identifier(f"1.2.{n}")) for n in (1, 2))

    async def script(peer: ScriptedPeer) -> list[tuple[int, str]]:
        policy = AcceptorPolicy(
            "PEER",
            {VERIFICATION: (IVRLE,), STUDY_ROOT_FIND: (IVRLE,)},
            scp_role_for=frozenset({STUDY_ROOT_FIND}),
        )
        negotiated = await peer.accept(policy)
        echo = await peer.next_message()
        find_ctx = negotiated.find_context(STUDY_ROOT_FIND)
        assert find_ctx is not None
        query = encode_dataset(study_identifier(), IVRLE)
        peer.send(find_ctx.context_id, find_rq(77, STUDY_ROOT_FIND), query)
        answers: list[tuple[int, str]] = []
        while not answers or answers[-1][0] != SUCCESS:
            message = await peer.next_message()
            found = decode_dataset(message.dataset, IVRLE) if message.dataset else None
            answers.append((message.command["Status"], found.StudyInstanceUID if found else ""))
        peer.send(echo.context_id, echo_rsp(echo.command["MessageID"]))
        assert isinstance(await peer.next_pdu(), ReleaseRQ)
        peer.writer.write(encode_pdu(ReleaseRP()))
        assert await peer.next_pdu() is None
        return answers

    async def main() -> tuple[AsyncAssociation, Dataset, list[tuple[int, str]]]:
        port, answers = await serve_once(script)
        ae = scu()
        ae.add_requested_context(STUDY_ROOT_FIND, IVRLE)
        ae.propose_role(STUDY_ROOT_FIND, scu_role=True, scp_role=True)
        handlers = [(evt.EVT_C_FIND, matches)]
        async with await aio_associate(
            ae, LOCALHOST, port, ae_title="PEER", evt_handlers=handlers
        ) as assoc:
            status = await assoc.send_c_echo()
        return assoc, status, await answers

    assoc, status, answers = run(main)
    assert status.Status == SUCCESS and assoc.is_released and socket_closed(assoc)
    assert answers == [(PENDING, "1.2.1"), (PENDING, "1.2.2"), (SUCCESS, "")]


# -- query/retrieve ----------------------------------------------------------------------------
@dataclass
class Destination:
    """A storage SCP (C-MOVE destination) recording UIDs and Move Originator fields."""

    received: list[tuple[str, tuple[Any, Any]]] = field(default_factory=list)
    server: AssociationServer | None = None

    def start(self) -> tuple[str, int]:
        ae = AE("DEST")
        ae.add_supported_context(CT_IMAGE_STORAGE)
        self.server = ae.start_server(
            (LOCALHOST, 0), block=False, evt_handlers=[(evt.EVT_C_STORE, self.on_store)]
        )
        return self.server.address

    def on_store(self, event: Any) -> int:
        self.received.append((str(event.dataset.SOPInstanceUID), event.move_originator))
        return SUCCESS


@dataclass
class QrScp:
    scp: QueryRetrieveSCP
    server: AssociationServer
    uids: list[str]
    study_uid: str
    destination: Destination

    @property
    def port(self) -> int:
        return self.server.address[1]


@pytest.fixture
def qr(tmp_path: Path) -> Iterator[QrScp]:
    """Our Q/R SCP holding one study of three CT instances (one large)."""
    study = make_study(3, n_series=1)
    study[1] = make_instance(
        pixel_bytes=LARGE_PIXEL_BYTES,
        PatientID=study[0].PatientID,
        StudyInstanceUID=study[0].StudyInstanceUID,
        SeriesInstanceUID=study[0].SeriesInstanceUID,
    )
    write_study(tmp_path / "store", study)
    destination = Destination()
    scp = QueryRetrieveSCP("QRSCP", tmp_path / "store", {"DEST": destination.start()})
    scp.load()
    server = scp.ae.start_server((LOCALHOST, 0), block=False, evt_handlers=scp.handlers)
    uids = [str(ds.SOPInstanceUID) for ds in study]
    yield QrScp(scp, server, uids, str(study[0].StudyInstanceUID), destination)
    server.shutdown()
    assert destination.server is not None
    destination.server.shutdown()


def study_identifier(study_uid: str = "", **keys: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = keys.pop("level", "STUDY")
    ds.StudyInstanceUID = study_uid
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_find_yields_pending_then_success(qr: QrScp) -> None:
    async def main() -> list[tuple[int, str]]:
        ae = scu(STUDY_ROOT_FIND)
        async with await aio_associate(ae, LOCALHOST, qr.port, ae_title="QRSCP") as assoc:
            query = study_identifier(level="IMAGE", SOPInstanceUID="")
            return [
                (int(status.Status), str(found.SOPInstanceUID) if found is not None else "")
                async for status, found in assoc.send_c_find(query, STUDY_ROOT_FIND)
            ]

    responses = run(main)
    assert [code for code, _ in responses] == [PENDING] * 3 + [SUCCESS]
    assert sorted(uid for _, uid in responses[:-1]) == sorted(qr.uids)


def test_find_cancelled_after_two_matches() -> None:
    """An endless handler: the SCP sees our C-CANCEL between two pending responses."""
    closed: list[bool] = []

    def endless(event: Any) -> Iterator[tuple[int, Dataset]]:
        try:
            yield from ((PENDING, study_identifier(f"1.2.{n}")) for n in itertools.count(1))
        finally:
            closed.append(True)

    ae = AE("ENDLESS")
    ae.add_supported_context(STUDY_ROOT_FIND)
    server = ae.start_server((LOCALHOST, 0), block=False, evt_handlers=[(evt.EVT_C_FIND, endless)])

    async def main() -> list[int]:
        seen: list[int] = []
        async with await aio_associate(
            scu(STUDY_ROOT_FIND), LOCALHOST, server.address[1], ae_title="ENDLESS"
        ) as assoc:
            responses = assoc.send_c_find(study_identifier(), STUDY_ROOT_FIND)
            assert responses.message_id == assoc.last_message_id
            async for status, _ in responses:
                seen.append(int(status.Status))
                if len(seen) == 2:
                    await assoc.send_c_cancel(responses.message_id)
        return seen

    try:
        seen = run(main)
    finally:
        server.shutdown()
    assert seen[:2] == [PENDING, PENDING] and seen[-1] == CANCEL
    assert set(seen[:-1]) == {PENDING}
    assert len(closed) == 1


def test_get_delivers_to_the_ae_storage_and_handler_in_the_loop_thread(
    qr: QrScp, tmp_path: Path
) -> None:
    out = tmp_path / "retrieved"
    out.mkdir()
    seen: list[tuple[str, bool, int]] = []

    ae = scu(STUDY_ROOT_GET, CT_IMAGE_STORAGE)
    ae.propose_role(CT_IMAGE_STORAGE, scu_role=False, scp_role=True)
    ae.storage = StorageConfig(mode="file", directory=out)

    async def main() -> list[Dataset]:
        def on_store(event: Any) -> int:
            seen.append((event.path.name, event.assoc is assoc, threading.get_ident()))
            return SUCCESS

        assoc = await aio_associate(
            ae, LOCALHOST, qr.port, ae_title="QRSCP", evt_handlers=[(evt.EVT_C_STORE, on_store)]
        )
        async with assoc:
            identifier = study_identifier(qr.study_uid)
            return [status async for status, _ in assoc.send_c_get(identifier, STUDY_ROOT_GET)]

    statuses = run(main)
    assert [s.Status for s in statuses] == [PENDING] * 3 + [SUCCESS]
    final = statuses[-1]
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (3, 0)
    assert sorted(path.stem for path in out.iterdir()) == sorted(qr.uids)
    assert all(same and thread == threading.get_ident() for _, same, thread in seen)
    assert len(seen) == 3


def test_move_to_a_destination_with_the_move_originator(qr: QrScp) -> None:
    async def main() -> tuple[list[int], int]:
        ae = scu(STUDY_ROOT_MOVE)
        async with await aio_associate(ae, LOCALHOST, qr.port, ae_title="QRSCP") as assoc:
            responses = assoc.send_c_move(study_identifier(qr.study_uid), "DEST", STUDY_ROOT_MOVE)
            codes = [int(status.Status) async for status, _ in responses]
            return codes, responses.message_id

    codes, message_id = run(main)
    assert codes == [PENDING] * 3 + [SUCCESS]
    assert sorted(uid for uid, _ in qr.destination.received) == sorted(qr.uids)
    assert {origin for _, origin in qr.destination.received} == {("AIO-SCU", message_id)}


# -- TLS ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_tls_echo_and_a_refused_server_certificate(pki: Pki) -> None:
    ae = AE("TLS-SCP")
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server((LOCALHOST, 0), block=False, ssl_context=server_context(pki))
    port = server.address[1]

    async def main() -> tuple[AsyncAssociation, str, AsyncAssociation]:
        trusted = (client_context(pki), "localhost")
        async with await aio_associate(scu(), LOCALHOST, port, tls_args=trusted) as good:
            assert good.is_established, good.describe_failure()
            assert good.driver is not None and good.driver.tls
            version = good.driver.writer.get_extra_info("ssl_object").version()
            assert (await good.send_c_echo()).Status == SUCCESS
        rogue = (client_context(pki, trust=pki.rogue_ca), "localhost")
        bad = await aio_associate(scu(), LOCALHOST, port, tls_args=rogue)
        return good, version, bad

    try:
        good, version, bad = run(main)
    finally:
        server.shutdown()
    assert good.is_released and socket_closed(good) and version in ("TLSv1.2", "TLSv1.3")
    assert bad.is_aborted and bad.driver is None
    failure = bad.describe_failure()
    assert f"TLS handshake with 127.0.0.1:{port} failed: certificate verify failed" in failure


def test_tls_without_a_server_hostname_is_refused_before_the_handshake(pki: Pki) -> None:
    async def main() -> AsyncAssociation:
        context = ssl.create_default_context(cafile=pki.ca)  # checks names: needs one
        with socket.socket() as listener:
            listener.bind((LOCALHOST, 0))
            listener.listen()
            port = listener.getsockname()[1]
            assoc = await aio_associate(scu(), LOCALHOST, port, tls_args=(context, None))
            peer, _ = listener.accept()
            peer.close()
        return assoc

    assoc = run(main)
    assert assoc.is_aborted
    assert "cannot start TLS with 127.0.0.1" in assoc.describe_failure()


def test_user_identity_from_the_event_loop() -> None:
    """``user_identity=`` as on ``AE.associate``: checked, answered when asked, or rejected."""
    acceptor = AE("AIO-ID")
    acceptor.add_supported_context(VERIFICATION)
    acceptor.identity_gate = IdentityRules({"alice": hash_password("pw", n=1 << 10)})
    server = acceptor.start_server((LOCALHOST, 0), block=False)
    port = server.address[1]

    async def main() -> tuple[AsyncAssociation, AsyncAssociation]:
        asked = username_identity("alice", "pw", positive_response=True)
        good = await aio_associate(scu(), LOCALHOST, port, ae_title="AIO-ID", user_identity=asked)
        await good.release()
        wrong = username_identity("alice", "no")
        bad = await aio_associate(scu(), LOCALHOST, port, ae_title="AIO-ID", user_identity=wrong)
        return good, bad

    try:
        good, bad = run(main)
    finally:
        server.shutdown()
    assert good.negotiated is not None and good.negotiated.user_identity_response == b""
    assert bad.is_rejected and bad.rejection == (1, 2, 1)
