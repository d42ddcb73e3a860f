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
import sys
from pathlib import Path
from typing import Any

from benchmarks.server import Shutdown, listen_pynetdicom, serve

_UNSAFE = re.compile(r"[^0-9.]")


def start(port: int, directory: Path, ae_title: str) -> Shutdown:
    from pynetdicom import AE, StoragePresentationContexts, evt

    def store(event: Any) -> int:
        uid = _UNSAFE.sub("_", str(event.request.AffectedSOPInstanceUID))
        with (directory / f"CT.{uid}").open("wb") as handle:
            handle.write(event.encoded_dataset(include_meta=True))
        return 0x0000

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = StoragePresentationContexts
    return listen_pynetdicom(ae, port, [(evt.EVT_C_STORE, store)], "storescp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.storage_server")
    parser.add_argument("port", type=int)
    parser.add_argument("directory", type=Path)
    parser.add_argument("-aet", default="STORESCP")
    args = parser.parse_args(argv)
    serve(lambda: start(args.port, args.directory, args.aet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
