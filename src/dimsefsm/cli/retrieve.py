"""What getscu and movescu share: model flags, and turning responses into a report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from pydicom import Dataset

from dimsefsm.association import Association
from dimsefsm.cli.common import EXIT_ABORTED, EXIT_FAILED_STATUS, EXIT_OK, EXIT_TIMEOUT
from dimsefsm.cli.output import describe_status
from dimsefsm.cli.progress import Progress
from dimsefsm.status import Category, Service, category

_COUNT_KEYS = (
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


def add_model_flags(p: argparse.ArgumentParser) -> None:
    model = p.add_mutually_exclusive_group()
    model.add_argument(
        "-P",
        "--patient",
        dest="model",
        action="store_const",
        const="P",
        help="Patient Root information model (default)",
    )
    model.add_argument(
        "-S",
        "--study",
        dest="model",
        action="store_const",
        const="S",
        help="Study Root information model",
    )
    model.add_argument(
        "-O",
        "--psonly",
        dest="model",
        action="store_const",
        const="O",
        help="Patient/Study Only information model",
    )
    p.add_argument(
        "-k",
        "--key",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="retrieve key by keyword or (gggg,eeee)",
    )


def report(
    name: str,
    assoc: Association,
    responses: Iterable[tuple[Dataset, Dataset | None]],
    service: Service,
) -> int:
    """Progress from the Pending counts, the failed list, a summary line, the exit code."""
    progress: Progress | None = None  # the total is known only from the first Pending
    final: Dataset | None = None
    counts = (0, 0, 0)
    for status, result in responses:
        done = tuple(int(status.get(key, 0)) for key in _COUNT_KEYS)
        if category(status.Status) is Category.PENDING:
            total = sum(done) + int(status.get("NumberOfRemainingSuboperations", 0))
            if progress is None:
                progress = Progress(total, name)
            progress.update(sum(done), total)
            counts = (done[0], done[1], done[2])
            continue
        final, counts = status, (done[0], done[1], done[2])
        failed = result.get("FailedSOPInstanceUIDList") if result is not None else None
        if failed:
            print(f"{name}: failed: {failed}", file=sys.stderr)
    if progress is not None:
        progress.finish()
    if final is None:
        print(f"{name}: no final response: {assoc.describe_failure()}", file=sys.stderr)
        return EXIT_TIMEOUT if assoc.timed_out else EXIT_ABORTED
    if assoc.is_established:
        assoc.release()
    comment = f" ({final.ErrorComment})" if "ErrorComment" in final else ""
    print(
        f"{name}: final status {describe_status(final.Status, service)}{comment}; "
        f"{counts[0]} completed, {counts[1]} failed, {counts[2]} warning",
        file=sys.stderr,
    )
    ok = category(final.Status) in (Category.SUCCESS, Category.CANCEL)
    return EXIT_OK if ok else EXIT_FAILED_STATUS
