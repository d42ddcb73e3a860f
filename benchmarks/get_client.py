"""One C-GET client run in its own process: ``python -m benchmarks.get_client``.

Usage: ``get_client IMPL HOST PORT CALLED_AE SPEC NAME OUT_DIR`` with IMPL
``dimsefsm`` or ``pynetdicom``, SPEC the JSON file of
``benchmarks.get_server.RetrieveSpec`` and NAME the study to retrieve
(``small`` or ``large``).  Every instance is written into OUT_DIR as it
arrives:

* ``dimsefsm``: ``StorageConfig(mode="file")``, the library writing each data
  set to a temporary file as its fragments arrive;
* ``pynetdicom``: an EVT_C_STORE handler writing ``event.encoded_dataset()``
  (no decode), the fastest way pynetdicom's documentation gives.  Stock:
  Nagle's algorithm stays on, which costs a requestor nothing here (its
  C-STORE responses go out one at a time, each after the peer's data).

A first association retrieves one instance by its SOP Instance UID, which
warms up imports and caches; then association, the study-level C-GET and
release are timed (interpreter start not).  The run counts only if the final
status is Success, the counts add up and every file is in OUT_DIR.  The
output is ``benchmarks.client``'s JSON records.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataset import Dataset

from benchmarks.client import (
    SUCCESS,
    RunFailed,
    Stopwatch,
    check_success,
    client_main,
    completed_suboperations,
    established,
    final_response,
    peer_arguments,
)
from benchmarks.core import CALLING_AE
from benchmarks.get_server import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    STUDY_ROOT_GET,
    RetrieveSpec,
    identifier,
)

# No response takes this long here; a lost one fails the run sooner than a hang would.
DIMSE_TIMEOUT = 10.0


class GetAssociation(Protocol):
    @property
    def is_established(self) -> bool: ...

    def send_c_get(
        self, dataset: Dataset, query_model: str
    ) -> Iterable[tuple[Dataset, Dataset | None]]: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str, Path], GetAssociation]


def dimsefsm_connector() -> Connect:
    from dimsefsm import AE
    from dimsefsm.services.storage import StorageConfig

    def connect(host: str, port: int, called: str, out_dir: Path) -> GetAssociation:
        ae = AE(CALLING_AE)
        ae.dimse_timeout = DIMSE_TIMEOUT
        ae.add_requested_context(STUDY_ROOT_GET)
        ae.add_requested_context(CT_IMAGE_STORAGE, [EXPLICIT_VR_LITTLE_ENDIAN])
        ae.propose_role(CT_IMAGE_STORAGE, scu_role=False, scp_role=True)
        ae.storage = StorageConfig(mode="file", directory=out_dir)
        assoc: GetAssociation = ae.associate(host, port, ae_title=called)
        return assoc

    return connect


def pynetdicom_connector() -> Connect:
    from pynetdicom import AE, build_role, evt

    ae = AE(ae_title=CALLING_AE)
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.add_requested_context(STUDY_ROOT_GET)
    ae.add_requested_context(CT_IMAGE_STORAGE, EXPLICIT_VR_LITTLE_ENDIAN)
    role = build_role(CT_IMAGE_STORAGE, scp_role=True)

    def connect(host: str, port: int, called: str, out_dir: Path) -> GetAssociation:
        def store(event: Any) -> int:
            uid = str(event.request.AffectedSOPInstanceUID)
            with (out_dir / f"{uid}.dcm").open("wb") as handle:
                handle.write(event.encoded_dataset(include_meta=True))
            return SUCCESS

        assoc: GetAssociation = ae.associate(
            host, port, ae_title=called, ext_neg=[role], evt_handlers=[(evt.EVT_C_STORE, store)]
        )
        return assoc

    return connect


CONNECTORS: dict[str, Callable[[], Connect]] = {
    "dimsefsm": dimsefsm_connector,
    "pynetdicom": pynetdicom_connector,
}


def get(connect: Connect, host: str, port: int, called: str, query: Dataset, out_dir: Path) -> int:
    """One association, one C-GET: the completed count once the final status is Success."""
    assoc = established(connect(host, port, called, out_dir))
    pending, final = final_response(assoc.send_c_get(query, STUDY_ROOT_GET))
    assoc.release()
    check_success("C-GET", pending, final)
    return completed_suboperations(pending, final)


def arguments(parser: argparse.ArgumentParser) -> None:
    peer_arguments(parser)
    parser.add_argument("spec", type=Path)
    parser.add_argument("name")
    parser.add_argument("out_dir", type=Path)


def run(connect: Connect, args: argparse.Namespace) -> dict[str, Any]:
    study = RetrieveSpec.load(args.spec).studies[args.name]
    out_dir: Path = args.out_dir
    where = (args.host, args.port, args.called)
    warm_dir = out_dir / "warm-up"
    warm_dir.mkdir(parents=True, exist_ok=True)
    warm = get(connect, *where, identifier(study, study.sop_instance_uids[0]), warm_dir)
    if warm != 1:
        raise RunFailed(f"warm-up retrieve of one instance completed {warm}")
    shutil.rmtree(warm_dir)
    watch = Stopwatch()
    completed = get(connect, *where, identifier(study), out_dir)
    watch.stop()
    files = [path for path in out_dir.iterdir() if path.is_file()]
    if completed != len(study.paths) or len(files) != completed:
        raise RunFailed(
            f"{completed} completed, {len(files)} files, expected {len(study.paths)} of each"
        )
    return watch.result(completed, bytes=sum(path.stat().st_size for path in files))


if __name__ == "__main__":
    sys.exit(client_main(None, "benchmarks.get_client", CONNECTORS, arguments, run))
