"""Start and stop real DICOM peers (dcmtk, pynetdicom, our own CLI) on 127.0.0.1.

Interop tests and ``make bench`` both need servers that are *ready* before the
first connection: a sleep either wastes time or races on a loaded machine.  So
every server here returns from ``start()`` only after a readiness condition that
the kernel or the program itself reports:

* our CLI and the pynetdicom script print ``listening on HOST:PORT`` once bound;
* dcmtk 3.6.7 prints nothing between loading its dictionaries and ``listen()``
  (checked with ``storescp -d`` / ``dcmqrscp -d`` and strace), so we watch the
  kernel's socket table until a LISTEN socket on the port belongs to the
  process.  Orthanc is watched the same way, on both its DICOM and HTTP ports
  (it logs the DICOM port before the HTTP server is up).  A TCP probe
  connection is avoided on purpose: it would be logged as a failed
  association, and dcmqrscp would fork a child for it.

Servers run in their own process group so that dcmqrscp's forked children die
with it: no process outlives a test.

Every ``dimsefsm qrscp`` these helpers start inside :func:`qrscp_index` keeps
its index where that block says: the interop tests run each qrscp on SQLite
and again on PostgreSQL without a line of the test changing (fixture
``qrscp_backend``).
"""

from __future__ import annotations

import array
import codecs
import contextlib
import fcntl
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

LOCALHOST = "127.0.0.1"
DEFAULT_READY_TIMEOUT = 15.0
_STOP_GRACE = 5.0
# Upper bound between two looks at /proc while nothing is printed; the wait ends
# earlier on any output or on exit, so it is a poll interval, not a guess.
_POLL_INTERVAL = 0.005
_TCP_LISTEN = "0A"
LISTENING_LINE = re.compile(r"listening on (?P<host>\[[^\]\s]*\]|[^\s:]+):(?P<port>\d+)")


class ServerStartError(RuntimeError):
    """The server exited or did not become ready; the message carries its output."""


def free_port() -> int:
    """A TCP port that was free a moment ago (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def dcmtk_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for dcmtk: without TCP_NODELAY=1 each round trip can cost 40 ms."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    if extra:
        env.update(extra)
    return env


def run_tool(
    args: Sequence[str],
    timeout: float = 30,
    cwd: str | os.PathLike[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a client program to completion and capture its output (stderr kept apart)."""
    return subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dcmtk_env(),
        cwd=cwd,
        check=False,
    )


def run_tools_at_once(commands: Sequence[Sequence[str]], timeout: float = 60) -> list[str]:
    """Start every client program together (concurrent senders); their transcripts, in order.

    stderr is merged into stdout: dcmtk's ``-v`` lines go to either.
    """
    processes = [
        subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dcmtk_env(),
        )
        for command in commands
    ]
    return [process.communicate(timeout=timeout)[0] for process in processes]


class ServerProcess:
    """A server program whose output is collected and whose readiness is awaited.

    Subclasses define ``_is_ready()``; it is re-checked after every output line
    and at least every few milliseconds until it holds or the program exits.
    """

    stop_signal: signal.Signals = signal.SIGTERM
    """How :meth:`stop` asks the server to end (SIGKILL follows after a grace time)."""

    def __init__(
        self,
        args: Sequence[str],
        port: int,
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        self.args = _with_index_database(list(args))
        self.port = port
        self.ready_timeout = ready_timeout
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: list[str] = []
        self._partial = ""  # the last line, while its newline has not come
        self._changed = threading.Condition()
        self._eof = False
        self._reader: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> ServerProcess:
        try:
            self._proc = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dcmtk_env(),
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:  # e.g. dcmtk not installed: same error type as a crash
            raise ServerStartError(f"{' '.join(self.args)}: cannot run: {exc}") from exc
        self._reader = threading.Thread(
            target=self._collect, name=f"output-{self._proc.pid}", daemon=True
        )
        self._reader.start()
        try:
            self._await_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> int | None:
        """Terminate the whole process group, wait for it; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal_group(self.stop_signal)
            try:
                proc.wait(timeout=_STOP_GRACE)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        # Forked children (dcmqrscp) may still be alive after their parent exits.
        self._signal_group(signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(timeout=_STOP_GRACE)
        return proc.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- state ----------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("server not started")
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def open_sockets(self) -> set[int]:
        """Inodes of every socket the server holds: listener, connections, wake-up pipes."""
        return socket_inodes_of(self.pid)

    def output(self) -> str:
        """Everything the server printed before this call (stdout and stderr interleaved).

        What is still in the pipe is collected first: a line the server (or one
        of its worker processes) logged before answering a request is there
        once the client has seen the answer.
        """
        with self._changed:
            while not self._eof and self._proc is not None and _unread(self._proc) > 0:
                self._changed.wait(_POLL_INTERVAL)
            return "".join(self._lines) + self._partial

    # -- internals ------------------------------------------------------------------
    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _collect(self) -> None:
        """Drain the pipe (a chatty server, -d, must not block on a full one) into lines.

        Each read happens under the lock, so :meth:`output` finding the pipe
        empty under the lock knows every byte written so far is collected.
        """
        assert self._proc is not None and self._proc.stdout is not None
        descriptor = self._proc.stdout.fileno()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            select.select([descriptor], [], [])
            with self._changed:
                data = os.read(descriptor, 1 << 16)
                pieces = (self._partial + decoder.decode(data, final=not data)).split("\n")
                self._partial = pieces.pop()
                self._lines.extend(piece + "\n" for piece in pieces)
                if not data:
                    if self._partial:
                        self._lines.append(self._partial)
                        self._partial = ""
                    self._eof = True
                self._changed.notify_all()
            if not data:
                return

    def _await_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        with self._changed:
            while True:
                if self._is_ready():
                    return
                if self._eof or not self.alive:
                    raise ServerStartError(self._describe("exited before it was ready"))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerStartError(
                        self._describe(f"not ready within {self.ready_timeout:g} s")
                    )
                self._changed.wait(min(remaining, _POLL_INTERVAL))

    def _describe(self, problem: str) -> str:
        text = "".join(self._lines).strip()
        return f"{' '.join(self.args)}: {problem}" + (f"\n{text}" if text else "")

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


class DcmtkServer(ServerProcess):
    """A dcmtk server (storescp, dcmqrscp ...); ``args`` without the port, appended here.

    Ready when the kernel lists a listening TCP socket on ``port`` owned by the
    process: dcmtk itself prints nothing at that moment.
    """

    def __init__(
        self,
        args: Sequence[str],
        port: int,
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__([*args, str(port)], port, ready_timeout=ready_timeout, cwd=cwd)

    def _is_ready(self) -> bool:
        return listens_on(self.pid, self.port)


class LineReadyServer(ServerProcess):
    """A server that announces readiness with ``listening on HOST:PORT`` (any stream)."""

    def __init__(
        self,
        args: Sequence[str],
        port: int = 0,
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        cwd: str | os.PathLike[str] | None = None,
        pattern: re.Pattern[str] = LISTENING_LINE,
    ) -> None:
        super().__init__(args, port, ready_timeout=ready_timeout, cwd=cwd)
        self.pattern = pattern

    def _is_ready(self) -> bool:
        for line in self._lines:
            match = self.pattern.search(line)
            if match:
                # The announced port wins: the server may have been given port 0.
                if "port" in match.groupdict():
                    self.port = int(match.group("port"))
                return True
        return False


class DimsefsmServer(LineReadyServer):
    """Our own CLI, e.g. ``DimsefsmServer(["echoscp", "11112", "-aet", "ANY-SCP"])``."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        port = _first_int(args)
        super().__init__(
            [sys.executable, "-m", "dimsefsm", *args],
            port,
            ready_timeout=ready_timeout,
            cwd=cwd,
        )


# pynetdicom's own `python -m pynetdicom echoscp` gives no readiness signal, hence this.
_PYNETDICOM_ECHOSCP = """\
import signal, sys, threading
from pynetdicom import AE
from pynetdicom.sop_class import Verification
port, aet = int(sys.argv[1]), sys.argv[2]
ae = AE(ae_title=aet)
ae.add_supported_context(Verification)
server = ae.start_server(("127.0.0.1", port), block=False)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
host, bound = server.server_address[:2]
print(f"pynetdicom echoscp: listening on {host}:{bound}", file=sys.stderr, flush=True)
stop.wait()
server.shutdown()
"""


class PynetdicomEchoServer(LineReadyServer):
    """pynetdicom's AE answering C-ECHO (Verification SCP), as an independent peer."""

    def __init__(
        self,
        port: int,
        ae_title: str = "ANY-SCP",
        *,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
    ) -> None:
        super().__init__(
            [sys.executable, "-c", _PYNETDICOM_ECHOSCP, str(port), ae_title],
            port,
            ready_timeout=ready_timeout,
        )


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = DEFAULT_READY_TIMEOUT
) -> None:
    """Return once ``condition()`` holds; ``AssertionError`` naming ``what`` after ``timeout``.

    For states only the kernel or the file system can report (a socket closed,
    a file created by another process): it re-checks every few milliseconds,
    so it costs no more than the state takes to arrive.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        pause.wait(_POLL_INTERVAL)


ORTHANC = "/usr/sbin/Orthanc"


class OrthancServer(ServerProcess):
    """Orthanc (Debian ``orthanc``) with its own config, storage and index under ``workdir``.

    It listens on ``dicom_port`` (AE title ``aet``) and on ``http_port`` for
    its REST API, without authentication, and knows the peers of
    ``modalities`` (name -> (AE title, host, port)): only they may use its
    DICOM services, each from its host, and they are the C-MOVE destinations
    and the targets of its own SCU requests.  Orthanc 1.10 has no
    listen-address option; remote HTTP access is refused.
    Ready when the kernel lists both ports as listening sockets of the process.

    Stopped with SIGKILL: its graceful shutdown spends 3.5 s in fixed polling
    intervals (Lua engine, WebDAV thread, DICOM server), and its storage and
    index are throwaway directories of the test.
    """

    stop_signal = signal.SIGKILL

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        aet: str = "ORTHANC",
        dicom_port: int | None = None,
        http_port: int | None = None,
        modalities: Mapping[str, tuple[str, str, int]] | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
    ) -> None:
        self.workdir = Path(workdir)
        self.aet = aet
        self.dicom_port = free_port() if dicom_port is None else dicom_port
        self.http_port = free_port() if http_port is None else http_port
        self.modalities = dict(modalities or {})
        config = self._write_config()
        super().__init__([ORTHANC, str(config)], self.dicom_port, ready_timeout=ready_timeout)

    def _write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": f"dimsefsm-test-{self.dicom_port}",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "StorageCompression": False,
            "Plugins": [],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": True,
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            # Without this, Orthanc keeps its SCU associations open for 5 s.
            "DicomAssociationCloseDelay": 0,
            "DicomScuTimeout": 20,
            "SaveJobs": False,
            "DicomModalities": {
                name: {"AET": aet, "Host": host, "Port": port, "AllowGet": True}
                for name, (aet, host, port) in self.modalities.items()
            },
        }
        path = self.workdir / "orthanc.json"
        path.write_text(json.dumps(config, indent=1))
        return path

    def _is_ready(self) -> bool:
        return listens_on(self.pid, self.dicom_port) and listens_on(self.pid, self.http_port)

    # -- REST API ---------------------------------------------------------------------
    def rest(self, method: str, path: str, body: object = None, timeout: float = 60) -> object:
        """One REST call; JSON in (bytes as they are), JSON out. HTTP errors raise."""
        if isinstance(body, bytes):
            data: bytes | None = body
        else:
            data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://{LOCALHOST}:{self.http_port}{path}", data=data, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:  # Orthanc explains itself in the body
            detail = exc.read().decode(errors="replace")
            raise AssertionError(f"Orthanc {method} {path}: HTTP {exc.code}\n{detail}") from exc
        return json.loads(text) if text else None

    def get(self, path: str) -> object:
        return self.rest("GET", path)

    def post(self, path: str, body: object = None) -> object:
        return self.rest("POST", path, {} if body is None else body)


def _unread(process: subprocess.Popen[bytes]) -> int:
    """Bytes waiting in the process's output pipe (0 once it is closed)."""
    assert process.stdout is not None
    waiting = array.array("i", [0])
    try:
        fcntl.ioctl(process.stdout.fileno(), termios.FIONREAD, waiting, True)
    except (OSError, ValueError):
        return 0
    return waiting[0]


def listens_on(pid: int, port: int) -> bool:
    """Whether the process holds a socket listening on ``port``."""
    inodes = listening_socket_inodes(port)
    return bool(inodes) and bool(inodes & socket_inodes_of(pid))


def listening_socket_inodes(port: int) -> set[int]:
    """Inodes of TCP sockets in LISTEN state on ``port`` (IPv4 and IPv6, any address)."""
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as handle:
                rows = handle.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == _TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(int(inode))
    return inodes


def socket_inodes_of(pid: int) -> set[int]:
    """Inodes of the sockets among a process's open file descriptors."""
    fd_dir = f"/proc/{pid}/fd"
    inodes: set[int] = set()
    try:
        names = os.listdir(fd_dir)
    except (FileNotFoundError, PermissionError):
        return inodes
    for name in names:
        try:
            target = os.readlink(f"{fd_dir}/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def dcmqrscp_config(
    tmpdir: str | os.PathLike[str],
    port: int,
    aets: Iterable[str],
    hosts: Mapping[str, tuple[str, int]] | None = None,
    *,
    max_pdu: int = 16384,
    max_associations: int = 16,
) -> Path:
    """Write a dcmqrscp config: one RW storage area per AE title in ``aets``.

    ``hosts`` maps a C-MOVE destination AE title to its (host, port).  Storage
    areas are ``tmpdir/<AET>``; the config file is ``tmpdir/dcmqrscp.cfg``.
    """
    base = Path(tmpdir)
    base.mkdir(parents=True, exist_ok=True)
    lines = [
        f"NetworkTCPPort = {port}",
        f"MaxPDUSize = {max_pdu}",
        f"MaxAssociations = {max_associations}",
        "",
        "HostTable BEGIN",
    ]
    for index, (aet, (host, host_port)) in enumerate((hosts or {}).items()):
        lines.append(f"peer{index} = ({aet}, {host}, {host_port})")
    lines += ["HostTable END", "", "VendorTable BEGIN", "VendorTable END", "", "AETable BEGIN"]
    for aet in aets:
        storage = base / aet
        storage.mkdir(parents=True, exist_ok=True)
        lines.append(f"{aet} {storage} RW (2000, 1024mb) ANY")
    lines += ["AETable END", ""]
    config = base / "dcmqrscp.cfg"
    config.write_text("\n".join(lines))
    return config


# -- the index database of the qrscp under test ------------------------------------------
_QRSCP_COMMAND = ["-m", "dimsefsm", "qrscp"]
_STORE_OPTIONS = ("-od", "--output-directory", "--config")


class IndexDatabases:
    """Where each qrscp started in a :func:`qrscp_index` block keeps its index.

    ``fresh_url`` None: its default SQLite file (nothing is added to the command
    line).  Otherwise each storage directory (or configuration file) gets a new,
    empty database from ``fresh_url`` the first time a server is started over it
    and the same one again at a restart, exactly as its SQLite file would be:
    two servers over two stores in one test do not share an index.
    """

    def __init__(self, fresh_url: Callable[[], str] | None) -> None:
        self.fresh_url = fresh_url
        self._urls: dict[tuple[str, ...], str] = {}

    def args_for(self, args: list[str]) -> list[str]:
        if self.fresh_url is None or "--database" in args:
            return args
        key = tuple(
            str(Path(args[n + 1]).absolute())
            for n, arg in enumerate(args[:-1])
            if arg in _STORE_OPTIONS
        )
        if key not in self._urls:
            self._urls[key] = self.fresh_url()
        return [*args, "--database", self._urls[key]]


_INDEX_DATABASES: list[IndexDatabases] = []


@contextlib.contextmanager
def qrscp_index(fresh_url: Callable[[], str] | None) -> Iterator[IndexDatabases]:
    """Inside the block, qrscp processes started here keep their index in databases of
    ``fresh_url`` (see :class:`IndexDatabases`); the innermost block wins."""
    databases = IndexDatabases(fresh_url)
    _INDEX_DATABASES.append(databases)
    try:
        yield databases
    finally:
        _INDEX_DATABASES.remove(databases)


def _with_index_database(args: list[str]) -> list[str]:
    """``args`` with ``--database URL`` added when they run ``dimsefsm qrscp`` in a block."""
    is_qrscp = any(args[n : n + len(_QRSCP_COMMAND)] == _QRSCP_COMMAND for n in range(len(args)))
    if not (is_qrscp and _INDEX_DATABASES):
        return args
    return _INDEX_DATABASES[-1].args_for(args)


def _first_int(args: Sequence[str]) -> int:
    """The first purely numeric argument: the port in ``echoscp PORT -aet X``."""
    for arg in args:
        if arg.isdigit():
            return int(arg)
    return 0
