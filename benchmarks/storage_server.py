"""pynetdicom's Storage SCP for the benchmark: ``python -m benchmarks.storage_server PORT DIR``.

pynetdicom's own ``storescp`` app decodes every dataset with pydicom before it
writes it, and says nothing when it is ready.  This one writes what arrived
as it arrived (``encoded_dataset``, the way pynetdicom's documentation recommends
for speed), so the baseline is pynetdicom at its best, and it prints
``listening on HOST:PORT`` once bound, which ``tests.interop.peers`` waits for.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

_UNSAFE = re.compile(r"[^0-9.]")


def serve(port: int, directory: Path, ae_title: str) -> None:
    from pynetdicom import AE, StoragePresentationContexts, evt

    def store(event: Any) -> int:
        uid = _UNSAFE.sub("_", str(event.request.AffectedSOPInstanceUID))
        with (directory / f"CT.{uid}").open("wb") as handle:
            handle.write(event.encoded_dataset(include_meta=True))
        return 0x0000

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = StoragePresentationContexts
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, store)]
    )
    assert server is not None  # block=False returns the running server
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    host, bound = server.server_address[:2]
    print(f"pynetdicom storescp: listening on {host}:{bound}", file=sys.stderr, flush=True)
    stop.wait()
    server.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.storage_server")
    parser.add_argument("port", type=int)
    parser.add_argument("directory", type=Path)
    parser.add_argument("-aet", default="STORESCP")
    args = parser.parse_args(argv)
    serve(args.port, args.directory, args.aet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
