"""DICOM over TLS (PS3.15 Annex B) on 127.0.0.1: our SCU and SCP, refused peers, the driver.

A throw-away PKI is made once per session with the ``openssl`` CLI: a CA, a
server and a client certificate it signed, and a rogue CA with a certificate
of its own that nobody trusts.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from pydicom.dataset import Dataset

from dimsefsm import AE, evt
from dimsefsm.cli import tls as cli_tls
from dimsefsm.cli.main import build_parser, main
from dimsefsm.cli.move import start_receiver
from dimsefsm.datasets import EXPLICIT_VR_LITTLE_ENDIAN, encode_dataset
from dimsefsm.engine import AssociationEngine
from dimsefsm.part10 import read_part10_info
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import VERIFICATION
from dimsefsm.transport import driver as driver_module
from dimsefsm.transport.driver import Interrupted, SocketDriver
from dimsefsm.transport.server import AssociationServer
from dimsefsm.transport.tls import handshake
from tests.data.make import CT_IMAGE_STORAGE, make_instance, write_instance
from tests.tls_pki import Pki, make_pki, openssl

LOCALHOST = "127.0.0.1"
SCP_AET = "TLS-SCP"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def server_context(pki: Pki, *, require_client_cert: bool = True) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(cafile=pki.ca)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_NONE
    return context


def client_context(
    pki: Pki, *, trust: Path | None = None, cert: tuple[Path, Path] | None = None
) -> ssl.SSLContext:
    """Trusts ``trust`` (default: our CA), presents ``cert`` (default: the client's)."""
    context = ssl.create_default_context(cafile=trust or pki.ca)
    key, certificate = cert or (pki.client_key, pki.client_cert)
    context.load_cert_chain(certificate, key)
    return context


# -- leak checks and synchronisation -----------------------------------------------------------
def assoc_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("dimsefsm-")]


def open_sockets() -> set[str]:
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every test ends with the sockets and threads it started with."""
    before = open_sockets()
    yield
    assert assoc_threads() == []
    assert open_sockets() - before == set()


class LogWaiter(logging.Handler):
    """Lets a test wait for a server thread's log line instead of sleeping."""

    def __init__(self, needle: str) -> None:
        super().__init__(logging.DEBUG)
        self.needle = needle
        self.lines: list[str] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        self.lines.append(line)
        if self.needle in line:
            self.seen.set()

    def wait(self, timeout: float = 10) -> list[str]:
        assert self.seen.wait(timeout), f"no log line with {self.needle!r}: {self.lines}"
        return [line for line in self.lines if self.needle in line]


@pytest.fixture
def server_log() -> Iterator[Callable[[str], LogWaiter]]:
    logger = logging.getLogger("dimsefsm.server")
    waiters: list[LogWaiter] = []
    old_level = logger.level
    logger.setLevel(logging.INFO)

    def watch(needle: str) -> LogWaiter:
        waiter = LogWaiter(needle)
        waiters.append(waiter)
        logger.addHandler(waiter)
        return waiter

    yield watch
    for waiter in waiters:
        logger.removeHandler(waiter)
    logger.setLevel(old_level)


# -- a TLS SCP ---------------------------------------------------------------------------------
@dataclass
class TlsScp:
    server: AssociationServer
    stored: list[tuple[str, bytes]]

    @property
    def port(self) -> int:
        return self.server.address[1]


def start_scp(context: ssl.SSLContext, *, artim: float = 5.0) -> TlsScp:
    stored: list[tuple[str, bytes]] = []

    def on_store(event: Any) -> int:
        stored.append((event.transfer_syntax, event.raw))
        return 0x0000

    ae = AE(SCP_AET)
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)
    ae.storage = StorageConfig(mode="raw")
    ae.artim_timeout = artim
    server = ae.start_server(
        (LOCALHOST, 0),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
        ssl_context=context,
    )
    return TlsScp(server, stored)


@pytest.fixture
def tls_scp(pki: Pki) -> Iterator[TlsScp]:
    scp = start_scp(server_context(pki))
    yield scp
    scp.server.shutdown()


def scu(connection_timeout: float = 10.0) -> AE:
    ae = AE("TLS-SCU")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)
    ae.connection_timeout = connection_timeout
    return ae


def echo_once(pki: Pki, port: int) -> int:
    """A well-behaved client: one C-ECHO over TLS, released; returns the status."""
    with scu().associate(
        LOCALHOST, port, ae_title=SCP_AET, tls_args=(client_context(pki), "localhost")
    ) as assoc:
        assert assoc.is_established, assoc.describe_failure()
        return int(assoc.send_c_echo().Status)


# -- library: SCU <-> SCP ------------------------------------------------------------------------
def test_echo_and_store_over_tls(pki: Pki, tls_scp: TlsScp, tmp_path: Path) -> None:
    small = make_instance(pixel_bytes=8 * 1024)
    large = make_instance(pixel_bytes=3 * 1024 * 1024)  # ~200 TLS records, many reads
    streamed = write_instance(tmp_path / "big.dcm", make_instance(pixel_bytes=6 * 1024 * 1024))
    with scu().associate(
        LOCALHOST, tls_scp.port, ae_title=SCP_AET, tls_args=(client_context(pki), "localhost")
    ) as assoc:
        assert assoc.is_established, assoc.describe_failure()
        assert assoc.driver is not None and isinstance(assoc.driver.sock, ssl.SSLSocket)
        assert assoc.driver.sock.version() in ("TLSv1.2", "TLSv1.3")
        assert assoc.send_c_echo().Status == 0
        assert assoc.send_c_store(small).Status == 0
        assert assoc.send_c_store(large).Status == 0
        assert assoc.send_c_store(streamed).Status == 0  # above the threshold: from disk
    assert assoc.is_released
    expected = [encode_dataset(ds, EXPLICIT_VR_LITTLE_ENDIAN) for ds in (small, large)]
    assert [raw for _, raw in tls_scp.stored[:2]] == expected
    assert (
        tls_scp.stored[2][1] == streamed.read_bytes()[read_part10_info(streamed).dataset_offset :]
    )


def test_untrusted_server_certificate_is_not_established(pki: Pki, tls_scp: TlsScp) -> None:
    context = client_context(pki, trust=pki.rogue_ca)
    assoc = scu().associate(
        LOCALHOST, tls_scp.port, ae_title=SCP_AET, tls_args=(context, "localhost")
    )
    assert not assoc.is_established and assoc.is_aborted
    failure = assoc.describe_failure()
    assert "TLS handshake with 127.0.0.1" in failure
    assert "certificate verify failed" in failure
    assert echo_once(pki, tls_scp.port) == 0


def test_server_name_must_match_the_certificate(pki: Pki, tls_scp: TlsScp) -> None:
    assoc = scu().associate(
        LOCALHOST, tls_scp.port, ae_title=SCP_AET, tls_args=(client_context(pki), "pacs.example")
    )
    assert not assoc.is_established
    assert "Hostname mismatch" in assoc.describe_failure()


@pytest.mark.parametrize("presented", ["rogue certificate", "no certificate"])
def test_refused_client_certificate_is_logged_and_the_server_keeps_serving(
    pki: Pki, tls_scp: TlsScp, server_log: Callable[[str], LogWaiter], presented: str
) -> None:
    log = server_log("TLS handshake with 127.0.0.1:")
    if presented == "rogue certificate":
        context = client_context(pki, cert=(pki.rogue_key, pki.rogue_cert))
    else:
        context = ssl.create_default_context(cafile=pki.ca)
    assoc = scu().associate(
        LOCALHOST, tls_scp.port, ae_title=SCP_AET, tls_args=(context, "localhost")
    )
    assert not assoc.is_established and assoc.is_aborted
    assert "TLS" in assoc.describe_failure()
    [line] = log.wait()
    reason = "certificate verify failed" if presented == "rogue certificate" else "certificate"
    assert "failed" in line and reason in line
    assert echo_once(pki, tls_scp.port) == 0


def test_plain_client_against_tls_server_is_refused(
    pki: Pki, tls_scp: TlsScp, server_log: Callable[[str], LogWaiter]
) -> None:
    log = server_log("TLS handshake with 127.0.0.1:")
    assoc = scu().associate(LOCALHOST, tls_scp.port, ae_title=SCP_AET)
    assert not assoc.is_established
    assert "failed" in log.wait()[0]
    assert echo_once(pki, tls_scp.port) == 0


def test_tls_client_against_plain_server_is_not_established(pki: Pki) -> None:
    ae = AE(SCP_AET)
    ae.add_supported_context(VERIFICATION)
    server = ae.start_server((LOCALHOST, 0), block=False)
    try:
        assoc = scu().associate(
            LOCALHOST,
            server.address[1],
            ae_title=SCP_AET,
            tls_args=(client_context(pki), "localhost"),
        )
        assert not assoc.is_established and assoc.is_aborted
        assert "TLS handshake with 127.0.0.1" in assoc.describe_failure()
    finally:
        server.shutdown()


# -- handshakes that never finish ----------------------------------------------------------------
def test_silent_client_blocks_neither_other_clients_nor_shutdown(pki: Pki) -> None:
    """A connection without ClientHello waits in its own thread; shutdown ends it at once."""
    scp = start_scp(server_context(pki), artim=30.0)
    with socket.create_connection((LOCALHOST, scp.port)) as silent:
        try:
            assert echo_once(pki, scp.port) == 0
            assert echo_once(pki, scp.port) == 0
            assert scp.server.pending_connections >= 1  # the silent one, still waiting
            assert scp.server.active_associations == 0  # it holds no association slot
        finally:
            started = time.monotonic()
            scp.server.shutdown()
        assert time.monotonic() - started < 10  # far below ARTIM: it was interrupted
        silent.settimeout(10)
        assert silent.recv(10) == b""


def test_silent_client_is_dropped_after_artim(
    pki: Pki, server_log: Callable[[str], LogWaiter]
) -> None:
    log = server_log("no TLS handshake within 0.3 s")
    scp = start_scp(server_context(pki), artim=0.3)
    try:
        with socket.create_connection((LOCALHOST, scp.port)) as silent:
            silent.settimeout(10)
            assert silent.recv(10) == b""
        assert "TLS handshake with 127.0.0.1:" in log.wait()[0]
    finally:
        scp.server.shutdown()


def test_client_handshake_is_bounded_by_the_connection_timeout(pki: Pki) -> None:
    """A server that accepts TCP but never answers the ClientHello: not established."""
    with socket.create_server((LOCALHOST, 0)) as mute:  # the kernel completes TCP for us
        assoc = scu(connection_timeout=0.3).associate(
            LOCALHOST,
            mute.getsockname()[1],
            ae_title=SCP_AET,
            tls_args=(client_context(pki), "localhost"),
        )
        assert not assoc.is_established and assoc.is_aborted
        assert "no TLS handshake within 0.3 s" in assoc.describe_failure()


# -- the driver: bytes select() cannot see, records that arrive in halves ----------------------
class RecordingEngine:
    """Just enough of an engine for SocketDriver: records what it is fed."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.closed = False
        self.outbox: list[object] = []

    def data_received(self, data: bytes) -> None:
        self.received.append(data)

    def transport_closed(self) -> None:
        self.closed = True

    def connection_closed(self) -> None:
        """The driver dropped the socket (EVT_CONN_CLOSE's hook): nothing to record here."""

    def artim_expired(self) -> None:
        raise AssertionError("ARTIM is not running")

    def take_effects(self) -> list[object]:
        return []


@dataclass
class TlsLink:
    """Our TLS socket in a driver; the peer is an SSLObject whose raw bytes we control."""

    driver: SocketDriver
    engine: RecordingEngine
    peer: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO
    peer_raw: socket.socket
    wake: tuple[socket.socket, socket.socket] | None

    def record(self, data: bytes) -> bytes:
        """``data`` as the TLS record(s) the peer would send."""
        self.peer.write(data)
        return self.outgoing.read()

    def close(self) -> None:
        self.driver.close()
        self.peer_raw.close()
        for sock in self.wake or ():
            sock.close()


def _link(pki: Pki, *, we_are_server: bool) -> TlsLink:
    ours_raw, peer_raw = socket.socketpair()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    if we_are_server:
        ours = server_context(pki, require_client_cert=False).wrap_socket(
            ours_raw, server_side=True, do_handshake_on_connect=False
        )
        peer = ssl.create_default_context(cafile=pki.ca).wrap_bio(
            incoming, outgoing, server_hostname="localhost"
        )
    else:
        ours = ssl.create_default_context(cafile=pki.ca).wrap_socket(
            ours_raw, server_hostname="localhost", do_handshake_on_connect=False
        )
        peer = server_context(pki, require_client_cert=False).wrap_bio(
            incoming, outgoing, server_side=True
        )
    ours_done = threading.Thread(target=handshake, args=(ours, 10), name="test-handshake")
    ours_done.start()
    peer_raw.settimeout(10)
    while True:
        try:
            peer.do_handshake()
            break
        except ssl.SSLWantReadError:
            peer_raw.sendall(outgoing.read())
            incoming.write(peer_raw.recv(65536))
    peer_raw.sendall(outgoing.read())
    ours_done.join()
    engine = RecordingEngine()
    wake = socket.socketpair() if we_are_server else None
    driver = SocketDriver(
        cast(AssociationEngine, engine), ours, 30.0, wake=wake[0] if wake else None
    )
    return TlsLink(driver, engine, peer, incoming, outgoing, peer_raw, wake)


@pytest.fixture(params=["server (select on wake-up socket)", "client (socket timeout)"])
def link(pki: Pki, request: pytest.FixtureRequest) -> Iterator[TlsLink]:
    made = _link(pki, we_are_server=request.param.startswith("server"))
    yield made
    made.close()


def test_decrypted_bytes_in_the_tls_buffer_count_as_input(
    link: TlsLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "RECV_SIZE", 10)
    link.peer_raw.sendall(link.record(bytes(range(100))))
    link.driver.pump(5)
    while not link.engine.received:  # TLS 1.3 session tickets may come first
        link.driver.pump(5)
    sock = link.driver.sock
    assert sock is not None
    assert select_readable(sock) is False  # the kernel has nothing left ...
    assert link.driver.has_pending_input()  # ... but the TLS buffer has 90 bytes
    for _ in range(9):
        link.driver.pump(5)  # would wait 5 s and raise if it trusted select alone
    assert b"".join(link.engine.received) == bytes(range(100))
    assert not link.driver.has_pending_input()


def select_readable(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_half_a_record_is_not_input_yet(link: TlsLink) -> None:
    record = link.record(b"A-ASSOCIATE-RQ bytes, say")
    link.peer_raw.sendall(record[:7])
    assert link.driver.has_pending_input()  # select sees raw bytes ...
    link.driver.pump(0)  # ... a zero-wait read finds no whole record: not an error
    assert link.engine.received == [] and not link.engine.closed
    assert link.driver.sock is not None
    link.peer_raw.sendall(record[7:])
    while not link.engine.received:
        link.driver.pump(5)
    assert link.engine.received == [b"A-ASSOCIATE-RQ bytes, say"]


def test_shutdown_interrupts_a_server_waiting_for_the_rest_of_a_record(pki: Pki) -> None:
    made = _link(pki, we_are_server=True)
    try:
        assert made.wake is not None
        made.peer_raw.sendall(made.record(b"0123456789")[:5])
        made.wake[1].send(b"x")
        with pytest.raises(Interrupted):
            made.driver.pump(None)
    finally:
        made.close()


def test_close_sends_close_notify_without_waiting_for_the_peer(link: TlsLink) -> None:
    started = time.monotonic()
    link.driver.close()
    assert time.monotonic() - started < 5
    received = b""
    while chunk := link.peer_raw.recv(65536):
        received += chunk
    link.incoming.write(received)
    assert link.peer.read() == b""  # close_notify (else: SSLWantReadError), though unanswered


# -- the command line ------------------------------------------------------------------------------
SCU_COMMANDS = ["echoscu", "storescu", "findscu", "getscu", "movescu"]
SERVER_COMMANDS = ["echoscp", "storescp", "qrscp"]


def parse(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


def _positionals(command: str) -> list[str]:
    if command in SCU_COMMANDS:
        return [LOCALHOST, "11112", *(["x.dcm"] if command == "storescu" else [])]
    return ["11112"]


@pytest.mark.parametrize("command", SCU_COMMANDS)
def test_every_scu_takes_dcmtk_tls_flags(pki: Pki, command: str) -> None:
    args = parse(
        command,
        "+tls", str(pki.client_key), str(pki.client_cert),
        "+cf", str(pki.ca),
        *_positionals(command),
    )  # fmt: skip
    tls_args = cli_tls.client_tls(args)
    assert tls_args is not None
    context, hostname = tls_args
    assert hostname == LOCALHOST
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    ignoring = cli_tls.client_tls(parse(command, "+tla", "-ic", *_positionals(command)))
    assert ignoring is not None and ignoring[0].verify_mode == ssl.CERT_NONE
    assert cli_tls.client_tls(parse(command, *_positionals(command))) is None


@pytest.mark.parametrize("command", SERVER_COMMANDS)
def test_every_server_takes_dcmtk_tls_flags(pki: Pki, command: str) -> None:
    own = ("+tls", str(pki.server_key), str(pki.server_cert))
    required = cli_tls.server_tls(parse(command, *own, "+cf", str(pki.ca), "11112"))
    assert required is not None and required.verify_mode == ssl.CERT_REQUIRED
    optional = cli_tls.server_tls(parse(command, *own, "-vc", "11112"))
    assert optional is not None and optional.verify_mode == ssl.CERT_OPTIONAL
    ignored = cli_tls.server_tls(parse(command, *own, "-ic", "11112"))
    assert ignored is not None and ignored.verify_mode == ssl.CERT_NONE
    assert cli_tls.server_tls(parse(command, "11112")) is None


def test_required_client_certificate_without_a_trusted_ca_is_a_usage_error(
    pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("echoscp", "+tls", str(pki.server_key), str(pki.server_cert), "11112")
    with pytest.raises(SystemExit) as exit_info:
        cli_tls.server_tls(args)
    assert exit_info.value.code == 2
    assert "+cf" in capsys.readouterr().err


def test_unreadable_key_is_a_usage_error(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse("echoscu", "+tls", str(tmp_path / "missing.key"), str(pki.client_cert), "h", "1")
    with pytest.raises(SystemExit) as exit_info:
        cli_tls.client_tls(args)
    assert exit_info.value.code == 2
    assert "cannot load" in capsys.readouterr().err


def test_cli_echoscu_and_storescu_over_tls(pki: Pki, tls_scp: TlsScp, tmp_path: Path) -> None:
    flags = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)]
    port = str(tls_scp.port)
    assert main(["echoscu", *flags, "-aec", SCP_AET, "localhost", port]) == 0
    instance: Dataset = make_instance(pixel_bytes=64 * 1024)
    path = write_instance(tmp_path / "one.dcm", instance)
    assert main(["storescu", *flags, "-aec", SCP_AET, "localhost", port, str(path)]) == 0
    assert tls_scp.stored[-1][1] == encode_dataset(instance, EXPLICIT_VR_LITTLE_ENDIAN)
    untrusted = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.rogue_ca)]
    assert main(["echoscu", *untrusted, "-aec", SCP_AET, "localhost", port]) == 4


def test_encrypted_key_with_its_password(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    encrypted = tmp_path / "client-encrypted.key"
    openssl("pkey", "-in", pki.client_key, "-aes256", "-passout", "pass:s3cret", "-out", encrypted)
    own = ["+tls", str(encrypted), str(pki.client_cert)]
    assert cli_tls.client_tls(parse("echoscu", *own, "+pw", "s3cret", "h", "1")) is not None
    with pytest.raises(SystemExit) as exit_info:
        cli_tls.client_tls(parse("echoscu", *own, "+pw", "guess", "h", "1"))
    assert exit_info.value.code == 2
    assert "wrong password" in capsys.readouterr().err


def test_movescu_store_receiver_listens_with_tls(pki: Pki, tmp_path: Path) -> None:
    """With +tls, the C-MOVE destination movescu runs is TLS too, as in dcmtk's movescu."""
    args = parse(
        "movescu", "+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca),
        "--store", "--store-port", "0", "-od", str(tmp_path), LOCALHOST, "11112",
    )  # fmt: skip
    receiver = start_receiver(args)
    try:
        with scu().associate(
            LOCALHOST,
            receiver.address[1],
            ae_title="MOVESCU",
            tls_args=(client_context(pki), "localhost"),
        ) as assoc:
            assert assoc.is_established, assoc.describe_failure()
            assert isinstance(assoc.driver.sock if assoc.driver else None, ssl.SSLSocket)
            assert assoc.send_c_echo().Status == 0
    finally:
        receiver.shutdown()


def test_handlers_see_the_peer_address_and_certificate(pki: Pki) -> None:
    """Access control by certificate: ``event.assoc`` names the peer and what it presented."""
    seen: list[tuple[object, object]] = []

    def on_echo(event: Any) -> int:
        seen.append((event.assoc.peer_address, event.assoc.peer_certificate))
        return 0x0000

    for context in (server_context(pki), None):
        ae = AE(SCP_AET)
        ae.add_supported_context(VERIFICATION)
        server = ae.start_server(
            (LOCALHOST, 0),
            block=False,
            evt_handlers=[(evt.EVT_C_ECHO, on_echo)],
            ssl_context=context,
        )
        try:
            tls = (client_context(pki), "localhost") if context is not None else None
            with scu().associate(
                LOCALHOST, server.address[1], ae_title=SCP_AET, tls_args=tls
            ) as assoc:
                assert assoc.send_c_echo().Status == 0
        finally:
            server.shutdown()
    (tls_peer, certificate), (plain_peer, none) = seen
    assert isinstance(tls_peer, tuple) and tls_peer[0] == LOCALHOST
    assert isinstance(certificate, dict)
    assert tuple(rdn for rdn in certificate["subject"] if rdn[0][0] == "commonName") == (
        (("commonName", "client"),),
    )
    assert isinstance(plain_peer, tuple) and none is None
