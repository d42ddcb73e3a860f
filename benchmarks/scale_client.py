"""The scale workload's queries, timed by our SCU in its own process.

Usage: ``python -m benchmarks.scale_client HOST PORT CALLED_AE PATIENTS OPERATOR``:
PATIENTS is how many of the archive's patients the SCP holds (queries by
Patient ID pick among them), OPERATOR the Operator's Name to look for.  One
association (after a warm-up one) carries every query; the result is one
JSON record: median times in milliseconds and the counts of matches.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

from pydicom import Dataset

from benchmarks.client import PENDING, requestor
from benchmarks.scale_data import DAYS, FIRST_DAY, patient_id

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
BY_PATIENT_RUNS = 30
RANGE_RUNS = 3
DIMSE_TIMEOUT = 120.0


def study_query(**keys: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    ds.PatientID = ""
    ds.PatientName = ""
    ds.StudyDate = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def year_range() -> str:
    last = FIRST_DAY.toordinal() + DAYS - 1
    return f"{FIRST_DAY:%Y%m%d}-{type(FIRST_DAY).fromordinal(last):%Y%m%d}"


def timed(assoc: Any, query: Dataset) -> tuple[float, float, int]:
    """(seconds to the first Pending response, seconds to the final one, matches)."""
    started = time.perf_counter()
    first: float | None = None
    count = 0
    status: Any = None
    for status, _identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
        if status is not None and int(status.Status) in PENDING:
            count += 1
            if first is None:
                first = time.perf_counter() - started
    total = time.perf_counter() - started
    if status is None or int(status.Status) != 0:
        raise RuntimeError(f"C-FIND ended with {status!r}")
    return (first if first is not None else total), total, count


def run(host: str, port: int, called: str, patients: int, operator: str) -> dict[str, Any]:
    from dimsefsm import AE

    ae = requestor(AE, STUDY_ROOT_FIND, dimse_timeout=DIMSE_TIMEOUT)
    with ae.associate(host, port, ae_title=called) as warm:
        timed(warm, study_query(PatientID=patient_id(0)))
    with ae.associate(host, port, ae_title=called) as assoc:
        picks = [patient_id(n * 7919 % patients) for n in range(BY_PATIENT_RUNS)]
        by_patient = [timed(assoc, study_query(PatientID=pick)) for pick in picks]
        ranges = [timed(assoc, study_query(StudyDate=year_range())) for _ in range(RANGE_RUNS)]
        outside = timed(assoc, study_query(OperatorsName=operator))
        universal = timed(assoc, study_query())
    return {
        "ok": True,
        "by_patient_ms": statistics.median(r[1] for r in by_patient) * 1e3,
        "by_patient_matches": min(r[2] for r in by_patient),
        "range_first_ms": statistics.median(r[0] for r in ranges) * 1e3,
        "range_all_ms": statistics.median(r[1] for r in ranges) * 1e3,
        "range_matches": ranges[0][2],
        "outside_s": outside[1],
        "outside_matches": outside[2],
        "universal_s": universal[1],
        "universal_matches": universal[2],
    }


def main(argv: list[str]) -> int:
    host, port, called, patients, operator = argv
    try:
        record = run(host, int(port), called, int(patients), operator)
    except Exception as exc:  # the benchmark reports it instead of a figure
        record = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
