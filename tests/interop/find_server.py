"""A small C-FIND SCP over a folder of Part-10 files, for the C-FIND interop tests.

Run it as ``python -m tests.interop.find_server PORT INDEX_DIR [-aet AET]
[--hold-after N]``.  It is deliberately not ``dimsefsm qrscp``: the tests
want to see what a *user's* handler sees (the generator protocol, cancel,
closing on abort) with the least application code in between.

Files holding a Scheduled Procedure Step Sequence are worklist items and
answer Modality Worklist queries; every other file is a composite instance
and answers Patient Root, Study Root and Patient/Study Only queries, one
response per entity of the requested level.

Lines the tests wait for (on stderr):

* ``listening on HOST:PORT`` once the socket is bound;
* ``find handler closed: yielded=N completed=BOOL`` from the handler
  generator's ``finally``, i.e. proof that the engine closed (or ran out) the
  generator, and how far it had got.

``--hold-after N`` makes cancel and abort tests deterministic without any
sleep: after N matches the handler withholds the next one until the peer has
sent a whole PDU on the association (its C-CANCEL or A-ABORT, seen by
``select`` and ``MSG_PEEK`` on a duplicate of the connection socket) or
``--hold-timeout`` has passed.  The engine reads its input only between two
responses, so without the hold a fast SCP may have sent every match before
the C-CANCEL arrives.  A cancelled query therefore always ends 0xFE00 after
N or N+1 matches (N+1 when the cancel is read only after the held match).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from dimsefsm import AE, evt
from dimsefsm import status as st
from dimsefsm.qr.matching import compile_query
from dimsefsm.qr.models import MODELS, response_identifier
from dimsefsm.qr.registry import (
    MODALITY_WORKLIST,
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    PATIENT_STUDY_ONLY_FIND,
    STUDY_ROOT_FIND,
    lookup,
)

FIND_CLASSES = (
    PATIENT_ROOT_FIND,
    STUDY_ROOT_FIND,
    PATIENT_STUDY_ONLY_FIND,
    MODALITY_WORKLIST_FIND,
)
DEFAULT_AET = "FINDSCP"
DEFAULT_HOLD_TIMEOUT = 10.0
PROGRAM = "find_server"
_PEER_PORT_IN_THREAD_NAME = re.compile(r"-(\d+)$")
_PEEK_SIZE = 1 << 16
_PARTIAL_PDU_POLL = 0.002  # the rest of a PDU whose first bytes are here


def say(text: str) -> None:
    print(f"{PROGRAM}: {text}", file=sys.stderr, flush=True)


@dataclass
class FindIndex:
    """Headers of the composite instances and the worklist items of one folder."""

    instances: list[Dataset] = field(default_factory=list)
    worklist: list[Dataset] = field(default_factory=list)

    @classmethod
    def load(cls, directory: Path) -> FindIndex:
        index = cls()
        for path in sorted(directory.rglob("*")):
            if not path.is_file():
                continue
            try:
                header = dcmread(path, stop_before_pixels=True)
            except (InvalidDicomError, OSError, ValueError) as exc:
                say(f"skipped {path}: {exc}")
                continue
            if "ScheduledProcedureStepSequence" in header:
                index.worklist.append(header)
            else:
                index.instances.append(header)
        return index

    def matches(self, request: Dataset, model: str) -> Iterator[Dataset]:
        """Matching records; for a hierarchical model one per entity of the query level."""
        matcher = compile_query(request)
        if model == MODALITY_WORKLIST:
            yield from (item for item in self.worklist if matcher.matches(item))
            return
        level = str(request.get("QueryRetrieveLevel", ""))
        uniques = MODELS[model].unique_keys_down_to(level)
        seen: set[tuple[str, ...]] = set()
        for header in self.instances:
            if not matcher.matches(header):
                continue
            entity = tuple(str(header.get(tag, "")) for tag in uniques)
            if entity not in seen:
                seen.add(entity)
                yield header


def connection_sockets(port: int, peer_port: int | None = None) -> list[socket.socket]:
    """Duplicates of this process's connected TCP sockets whose local port is ``port``.

    The association threads own the originals; a duplicate descriptor lets the
    handler ``select`` on the same connection without touching them.  Closing
    a duplicate leaves the original open.  With ``peer_port`` only that peer's.
    """
    found: list[socket.socket] = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue  # closed meanwhile, or the number now names something else
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                peer = sock.getpeername()  # raises for the listener: it has no peer
                if sock.getsockname()[1] == port and peer_port in (None, peer[1]):
                    found.append(sock)
                    continue
        except OSError:
            pass
        sock.close()
    return found


def own_peer_port() -> int | None:
    """The peer port of the association this thread serves, if the thread's name tells it.

    The server names each association thread ``...-<peer port>``; without that
    the hold falls back to watching every connection for data.
    """
    match = _PEER_PORT_IN_THREAD_NAME.search(threading.current_thread().name)
    return int(match.group(1)) if match else None


def wait_for_peer_input(port: int, timeout: float) -> bool:
    """Block until our peer has sent a whole PDU (or closed); False after ``timeout``.

    A whole PDU, not just bytes: dcmtk writes a PDU's header and its body with
    separate calls, and the engine acts on a C-CANCEL only once all of it is
    there.  Not knowing our own connection, a connection that is only at end
    of file is dropped rather than taken for input: it is most likely an
    association that just ended and whose thread has not closed its socket yet.
    """
    peer_port = own_peer_port()
    socks = connection_sockets(port, peer_port)
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: a bounded pause while a PDU is half there
    try:
        watched = list(socks)
        while watched:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            readable, _, _ = select.select(watched, [], [], remaining)
            partial = False
            for sock in readable:
                waiting = _peek(sock)
                if waiting == b"":
                    if peer_port is not None:
                        return True
                    watched.remove(sock)
                elif _holds_whole_pdu(waiting):
                    return True
                else:
                    partial = True
            if partial:
                pause.wait(_PARTIAL_PDU_POLL)
        return False
    finally:
        for sock in socks:
            sock.close()


def _peek(sock: socket.socket) -> bytes | None:
    """Unread bytes without taking them; b"" at end of file, None when there are none."""
    try:
        return sock.recv(_PEEK_SIZE, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    except OSError:
        return b""  # reset: for the engine as good as closed


def _holds_whole_pdu(data: bytes | None) -> bool:
    if data is None or len(data) < 6:
        return False
    return len(data) >= 6 + int.from_bytes(data[2:6], "big")


class FindService:
    """The C-FIND handler: what a user of the library would write, plus test hooks."""

    def __init__(
        self,
        index: FindIndex,
        ae_title: str,
        *,
        hold_after: int | None = None,
        hold_timeout: float = DEFAULT_HOLD_TIMEOUT,
    ) -> None:
        self.index = index
        self.ae_title = ae_title
        self.hold_after = hold_after
        self.hold_timeout = hold_timeout
        self.port = 0  # known once the server is bound

    def on_find(self, event: Any) -> Iterator[tuple[int, Dataset]]:
        sop = lookup(event.context.abstract_syntax)
        assert sop is not None  # only Q/R FIND classes are supported
        request: Dataset = event.identifier
        retrieve_ae = None if sop.model == MODALITY_WORKLIST else self.ae_title
        yielded = 0
        completed = False
        say(f"find handler started: model={sop.model}")
        try:
            for record in self.index.matches(request, sop.model):
                if event.is_cancelled:
                    say(f"find handler saw the cancel after {yielded} matches")
                    return
                if yielded == self.hold_after:
                    heard = wait_for_peer_input(self.port, self.hold_timeout)
                    say(f"hold after {yielded} matches ended: peer input={heard}")
                yielded += 1
                yield st.PENDING, response_identifier(request, record, retrieve_ae=retrieve_ae)
            completed = True
        finally:
            say(f"find handler closed: yielded={yielded} completed={completed}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="0 lets the kernel choose (announced)")
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("-aet", "--aetitle", default=DEFAULT_AET)
    parser.add_argument("--hold-after", type=int, default=None, metavar="N")
    parser.add_argument("--hold-timeout", type=float, default=DEFAULT_HOLD_TIMEOUT, metavar="S")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
    logging.getLogger("transitions").setLevel(logging.WARNING)  # one line per state change
    index = FindIndex.load(args.index_dir)
    say(f"indexed {len(index.instances)} instance(s), {len(index.worklist)} worklist item(s)")
    service = FindService(
        index, args.aetitle, hold_after=args.hold_after, hold_timeout=args.hold_timeout
    )
    ae = AE(args.aetitle)
    for uid in FIND_CLASSES:
        ae.add_supported_context(uid)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = ae.start_server(
        ("127.0.0.1", args.port), block=False, evt_handlers=[(evt.EVT_C_FIND, service.on_find)]
    )
    host, service.port = server.address
    say(f"listening on {host}:{service.port}")
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
