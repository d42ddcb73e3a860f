"""The synthetic hospital archive of the scale workload, written fast and kept between runs.

``patients`` patients x 1 study x 4 series (3 CT, 1 SR) x 25 instances with
128 bytes of pixel data: 100,000 instances for 1,000 patients.  The keys a
real archive is queried by vary as they would: Patient ID, Patient's Name,
Accession Number, a Study Date spread over one year, the Modality of the
series and an Operator's Name (a series key, outside the index's
columns) cycling over 50 technologists.

Encoding 100,000 data sets with pydicom would take minutes, so one instance
is encoded with placeholder values of the final lengths and every file is
that template with the values spliced in at known offsets (~20 µs a file).
The files go under a scratch directory named after the count
(``/var/tmp/dimsefsm-bench/scale-100000/files``) and are written once: a
marker file says the set is complete, so later runs reuse it.
"""

from __future__ import annotations

import datetime
import itertools
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.data.make import make_instance, write_instance

SERIES_PER_STUDY: Final = 4
INSTANCES_PER_SERIES: Final = 25
INSTANCES_PER_PATIENT: Final = SERIES_PER_STUDY * INSTANCES_PER_SERIES
PIXEL_BYTES: Final = 128
OPERATORS: Final = 50
CACHE_ROOT: Final = Path(os.environ.get("DIMSEFSM_BENCH_CACHE", "/var/tmp/dimsefsm-bench"))
FIRST_DAY: Final = datetime.date(2024, 1, 1)
DAYS: Final = 366  # 2024 is a leap year: the dates cover 20240101-20241231
_ROOT: Final = "1.2.826.0.1.3680043.8.498.13"
_COMPLETE: Final = ".complete"
_PER_FOLDER: Final = 100  # patients per folder: no directory of 100,000 entries


def study_uid(patient: int) -> str:
    return f"{_ROOT}.1.{patient + 1_000_000}"


def series_uid(patient: int, series: int) -> str:
    return f"{_ROOT}.2.{patient + 1_000_000}.{series + 1}"


def sop_uid(patient: int, series: int, number: int) -> str:
    return f"{_ROOT}.3.{patient + 1_000_000}.{series + 1}.{number + 100}"


def patient_id(patient: int) -> str:
    return f"PID{patient:07d}"


def patient_name(patient: int) -> str:
    return f"Patient^{patient:07d}"


def accession(patient: int) -> str:
    return f"ACC{patient:07d}"


def study_date(patient: int) -> str:
    """Patients spread over the days of 2024 (a prime step: neighbours get distant days)."""
    return (FIRST_DAY + datetime.timedelta(days=patient * 7 % DAYS)).strftime("%Y%m%d")


def modality(series: int) -> str:
    return "SR" if series == SERIES_PER_STUDY - 1 else "CT"


def operator(patient: int, series: int) -> str:
    return f"Tech^Op{(patient * SERIES_PER_STUDY + series) % OPERATORS:02d}"


# Placeholders of the final lengths, each found exactly ``count`` times in the template.
_SLOTS: Final[dict[str, tuple[str, int]]] = {
    "study": (f"{_ROOT}.1.9999999", 1),
    "series": (f"{_ROOT}.2.9999999.9", 1),
    "sop": (f"{_ROOT}.3.9999999.9.999", 2),  # the data set and the file meta
    "patient_id": ("PID9999999", 1),
    "patient_name": ("Patient^9999999", 1),
    "accession": ("ACC9999999", 1),
    "date": ("29991231", 1),
    "modality": ("ZZ", 1),
    "operator": ("Tech^Op99", 1),
    "series_number": ("-8", 1),
    "instance_number": ("-999", 1),
}


@dataclass(frozen=True)
class Template:
    """An encoded instance and where each value goes: (offset, length, slot) in order."""

    data: bytes
    spans: tuple[tuple[int, int, str], ...]

    def render(self, values: dict[str, str]) -> bytes:
        parts: list[bytes] = []
        at = 0
        for offset, length, slot in self.spans:
            parts.append(self.data[at:offset])
            value = values[slot].encode("ascii")
            assert len(value) == length, (slot, values[slot])
            parts.append(value)
            at = offset + length
        parts.append(self.data[at:])
        return b"".join(parts)


def build_template(scratch: Path) -> Template:
    """One instance with placeholders, encoded by the project's writer, and its slots found."""
    marks = {slot: text for slot, (text, _) in _SLOTS.items()}
    ds = make_instance(
        pixel_bytes=PIXEL_BYTES,
        sop_instance_uid=marks["sop"],
        StudyInstanceUID=marks["study"],
        SeriesInstanceUID=marks["series"],
        PatientID=marks["patient_id"],
        PatientName=marks["patient_name"],
        AccessionNumber=marks["accession"],
        StudyDate=marks["date"],
        Modality=marks["modality"],
        OperatorsName=marks["operator"],
        SeriesNumber=marks["series_number"],
        InstanceNumber=marks["instance_number"],
        InstitutionName="General Hospital",
        StationName="CT01",
        ProtocolName="Chest routine",
    )
    path = write_instance(scratch / "template.dcm", ds)
    data = path.read_bytes()
    path.unlink()
    spans: list[tuple[int, int, str]] = []
    for slot, (text, count) in _SLOTS.items():
        needle = text.encode("ascii")
        found, start = [], data.find(needle)
        while start >= 0:
            found.append(start)
            start = data.find(needle, start + len(needle))
        if len(found) != count:
            raise AssertionError(f"template: {slot} found {len(found)} times, not {count}")
        spans += [(offset, len(needle), slot) for offset in found]
    spans.sort()
    for (offset, length, _), (following, _, _) in itertools.pairwise(spans):
        assert offset + length <= following, "template slots overlap"
    return Template(data, tuple(spans))


def instance_values(patient: int, series: int, number: int) -> dict[str, str]:
    return {
        "study": study_uid(patient),
        "series": series_uid(patient, series),
        "sop": sop_uid(patient, series, number),
        "patient_id": patient_id(patient),
        "patient_name": patient_name(patient),
        "accession": accession(patient),
        "date": study_date(patient),
        "modality": modality(series),
        "operator": operator(patient, series),
        "series_number": f"{series + 1:02d}",
        "instance_number": f"{number + 1:04d}",
    }


def archive_dir(instances: int) -> Path:
    return CACHE_ROOT / f"scale-{instances}"


def write_archive(
    instances: int, progress: Callable[[str], None] = print
) -> tuple[Path, float | None]:
    """The files of an archive of ``instances`` (a multiple of 100): (folder, seconds to write).

    The seconds are None when a complete earlier set was reused.
    """
    patients = max(1, instances // INSTANCES_PER_PATIENT)
    root = archive_dir(instances)
    files = root / "files"
    if (files / _COMPLETE).is_file():
        return files, None
    shutil.rmtree(files, ignore_errors=True)
    files.mkdir(parents=True)
    started = time.perf_counter()
    template = build_template(root)
    for patient in range(patients):
        folder = files / f"{patient // _PER_FOLDER:05d}"
        if patient % _PER_FOLDER == 0:
            folder.mkdir()
        for series in range(SERIES_PER_STUDY):
            for number in range(INSTANCES_PER_SERIES):
                values = instance_values(patient, series, number)
                (folder / f"{values['sop']}.dcm").write_bytes(template.render(values))
        if (patient + 1) % max(1, patients // 10) == 0:
            progress(f"  wrote {(patient + 1) * INSTANCES_PER_PATIENT} files")
    (files / _COMPLETE).write_text(f"{patients * INSTANCES_PER_PATIENT}\n")
    return files, time.perf_counter() - started
