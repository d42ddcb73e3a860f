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
status is Success, the counts add up and every file is in OUT_DIR.  The last
line on stdout is a JSON result, as for ``benchmarks.echo_client``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from pydicom.dataset import Dataset

from benchmarks.get_server import (
    CT_IMAGE_STORAGE,
    EXPLICIT_VR_LITTLE_ENDIAN,
    STUDY_ROOT_GET,
    RetrieveSpec,
    StudyFiles,
)

CALLING_AE = "BENCH"
# No response takes this long here; a lost one fails the run sooner than a hang would.
DIMSE_TIMEOUT = 10.0
PENDING = (0xFF00, 0xFF01)
SUCCESS = 0x0000


class GetAssociation(Protocol):
    @property
    def is_established(self) -> bool: ...

    def send_c_get(
        self, dataset: Dataset, query_model: str
    ) -> Iterable[tuple[Dataset, Dataset | None]]: ...

    def release(self) -> None: ...


Connect = Callable[[str, int, str, Path], GetAssociation]


class GetFailed(Exception):
    pass


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


def identifier(study: StudyFiles, sop_instance_uid: str = "") -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE" if sop_instance_uid else "STUDY"
    ds.StudyInstanceUID = study.study
    if sop_instance_uid:
        ds.SeriesInstanceUID = study.series
        ds.SOPInstanceUID = sop_instance_uid
    return ds


def get(
    connect: Connect, host: str, port: int, called: str, query: Dataset, out_dir: Path
) -> tuple[int, int]:
    """One association, one C-GET: (completed, Pending responses) once the final is Success."""
    assoc = connect(host, port, called, out_dir)
    if not assoc.is_established:
        raise GetFailed("association not established")
    final: Dataset | None = None
    pending = 0
    for status, _identifier in assoc.send_c_get(query, STUDY_ROOT_GET):
        if getattr(status, "Status", None) in PENDING:
            pending += 1
        else:
            final = status
    assoc.release()
    code = getattr(final, "Status", None)
    if final is None or code != SUCCESS:
        shown = "none (no final response)" if code is None else f"0x{code:04X}"
        raise GetFailed(f"final C-GET status {shown} after {pending} pending responses")
    failed = int(final.get("NumberOfFailedSuboperations", 0))
    if failed:
        raise GetFailed(f"{failed} failed sub-operations")
    return int(final.get("NumberOfCompletedSuboperations", pending)), pending


def run(
    connect: Connect,
    host: str,
    port: int,
    called: str,
    study: StudyFiles,
    out_dir: Path,
) -> dict[str, Any]:
    warm_dir = out_dir / "warm-up"
    warm_dir.mkdir(parents=True, exist_ok=True)
    one = study.sop_instance_uids[0]
    warm, _ = get(connect, host, port, called, identifier(study, one), warm_dir)
    if warm != 1:
        raise GetFailed(f"warm-up retrieve of one instance completed {warm}")
    shutil.rmtree(warm_dir)
    started, cpu = time.perf_counter(), own_cpu()
    completed, _ = get(connect, host, port, called, identifier(study), out_dir)
    seconds, cpu = time.perf_counter() - started, own_cpu() - cpu
    files = [path for path in out_dir.iterdir() if path.is_file()]
    if completed != len(study.paths) or len(files) != completed:
        raise GetFailed(
            f"{completed} completed, {len(files)} files, expected {len(study.paths)} of each"
        )
    return {
        "ok": True,
        "count": completed,
        "bytes": sum(path.stat().st_size for path in files),
        "seconds": seconds,
        "cpu": cpu,
    }


class RecentWarnings(logging.Handler):
    """Keeps the libraries' last warnings so that a failure can say what they saw."""

    def __init__(self, keep: int = 3) -> None:
        super().__init__(logging.WARNING)
        self.keep = keep
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages = [*self.messages[-(self.keep - 1) :], record.getMessage()]


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.get_client")
    parser.add_argument("impl", choices=sorted(CONNECTORS))
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("called")
    parser.add_argument("spec", type=Path)
    parser.add_argument("name")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    study = RetrieveSpec.load(args.spec).studies[args.name]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    try:
        connect = CONNECTORS[args.impl]()
    except Exception as exc:  # an unfinished library must not end the benchmark
        emit({"ok": False, "unavailable": True, "error": describe(exc)})
        return 0
    warnings = RecentWarnings()
    logging.getLogger().addHandler(warnings)
    try:
        result = run(connect, args.host, args.port, args.called, study, args.out_dir)
    except Exception as exc:
        error = describe(exc)
        if warnings.messages:
            error += f" (logged: {'; '.join(warnings.messages)})"
        emit({"ok": False, "error": error})
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
