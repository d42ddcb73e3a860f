"""Every workload ``make bench`` knows, in the order they run.

A workload is a module like ``benchmarks.echo`` with a ``WORKLOAD`` object;
add new ones to this tuple.
"""

from __future__ import annotations

from benchmarks import (
    commitment,
    echo,
    find,
    get,
    ingest,
    move,
    mpps,
    scale,
    startup,
    storage,
    wildcard,
)
from benchmarks.core import Workload

WORKLOADS: tuple[Workload, ...] = (
    startup.WORKLOAD,
    echo.WORKLOAD,
    storage.WORKLOAD,
    find.WORKLOAD,
    get.WORKLOAD,
    move.WORKLOAD,
    wildcard.WORKLOAD,
    mpps.WORKLOAD,
    ingest.WORKLOAD,
    scale.WORKLOAD,
    commitment.WORKLOAD,
)


def by_name() -> dict[str, Workload]:
    return {workload.name: workload for workload in WORKLOADS}
