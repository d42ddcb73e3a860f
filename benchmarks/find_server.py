"""A C-FIND SCP answering from prepared identifiers: ``python -m benchmarks.find_server``.

Usage: ``find_server IMPL PORT SPEC [-aet AET]`` with IMPL ``dimsefsm`` or
``pynetdicom`` and SPEC the JSON file ``benchmarks.find`` writes (study, series,
SOP Instance UIDs, Retrieve AE Title).

The same handler runs under both libraries, so the benchmark compares how each
one turns identifiers into responses, not how each one searches: the
identifiers are built once at start-up, with exactly the attributes dcmqrscp
returns for the same query, so every SCP puts the same bytes on the wire.  A
query naming one SOP Instance UID gets that instance only: the clients' warm-up
association then costs one response, not a whole run.

It says when it is listening and stops on SIGTERM (``benchmarks.server``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from benchmarks import server
from benchmarks.server import Handler, Shutdown

PENDING = 0xFF00
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


@dataclass(frozen=True)
class QuerySpec:
    """What the benchmark queries and what every SCP answers; shared through a JSON file."""

    study: str
    series: str
    retrieve_ae: str
    sop_instance_uids: tuple[str, ...]

    def dump(self, path: Path) -> None:
        record = {
            "study": self.study,
            "series": self.series,
            "retrieve_ae": self.retrieve_ae,
            "sop_instance_uids": list(self.sop_instance_uids),
        }
        path.write_text(json.dumps(record))

    @classmethod
    def load(cls, path: Path) -> QuerySpec:
        record = json.loads(path.read_text())
        return cls(
            study=record["study"],
            series=record["series"],
            retrieve_ae=record["retrieve_ae"],
            sop_instance_uids=tuple(record["sop_instance_uids"]),
        )


def query(spec: QuerySpec, sop_instance_uid: str = "") -> Dataset:
    """The IMAGE-level Study Root query findscu sends with the benchmark's ``-k`` keys."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = spec.study
    ds.SeriesInstanceUID = spec.series
    ds.SOPInstanceUID = sop_instance_uid
    return ds


def prepared_identifiers(spec: QuerySpec) -> dict[str, Dataset]:
    """One response identifier per instance, keyed by SOP Instance UID (dict order kept)."""
    prepared: dict[str, Dataset] = {}
    for uid in spec.sop_instance_uids:
        ds = query(spec, uid)
        ds.RetrieveAETitle = spec.retrieve_ae
        prepared[uid] = ds
    return prepared


def make_handler(prepared: dict[str, Dataset]) -> Callable[[Any], Iterator[tuple[int, Dataset]]]:
    everything = tuple(prepared.values())

    def handle_find(event: Any) -> Iterator[tuple[int, Dataset]]:
        wanted = str(event.identifier.get("SOPInstanceUID", "") or "")
        if wanted:
            one = prepared.get(wanted)
            matches: tuple[Dataset, ...] = (one,) if one is not None else ()
        else:
            matches = everything
        for ds in matches:
            yield PENDING, ds

    return handle_find


def start_dimsefsm(port: int, ae_title: str, handler: Handler) -> Shutdown:
    from dimsefsm import AE, evt

    ae = AE(ae_title)
    ae.add_supported_context(STUDY_ROOT_FIND)
    return server.listen_dimsefsm(ae, port, [(evt.EVT_C_FIND, handler)], "find SCP")


def start_pynetdicom(port: int, ae_title: str, handler: Handler) -> Shutdown:
    from pynetdicom import AE, evt

    ae = AE(ae_title=ae_title)
    ae.add_supported_context(STUDY_ROOT_FIND)
    return server.listen_pynetdicom(ae, port, [(evt.EVT_C_FIND, handler)], "find SCP")


STARTERS: dict[str, server.Starter] = {
    "dimsefsm": start_dimsefsm,
    "pynetdicom": start_pynetdicom,
}


def handler(args: argparse.Namespace) -> Handler:
    return make_handler(prepared_identifiers(QuerySpec.load(args.spec)))


if __name__ == "__main__":
    sys.exit(server.spec_server_main("benchmarks.find_server", STARTERS, handler))
