"""Every workload ``make bench`` knows, in the order they run.

Later workloads (move) are modules like ``benchmarks.echo``
with a ``WORKLOAD`` object; add them to this tuple.
"""

from __future__ import annotations

from benchmarks import echo, find, get, storage
from benchmarks.core import Workload

WORKLOADS: tuple[Workload, ...] = (echo.WORKLOAD, storage.WORKLOAD, find.WORKLOAD, get.WORKLOAD)


def by_name() -> dict[str, Workload]:
    return {workload.name: workload for workload in WORKLOADS}
