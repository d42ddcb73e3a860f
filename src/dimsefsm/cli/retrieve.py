"""What the Q/R SCUs share: model flags; for getscu and movescu, the response report."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable

from pydicom import Dataset

from dimsefsm.association import Association
from dimsefsm.cli.common import EXIT_ABORTED, EXIT_FAILED_STATUS, EXIT_OK, EXIT_TIMEOUT
from dimsefsm.cli.output import describe_status
from dimsefsm.cli.progress import progress_bar
from dimsefsm.qr.flat_models import FLAT_MODELS, MODEL_NAMES
from dimsefsm.status import Category, Service, category

LOG = logging.getLogger("dimsefsm.cli")

_COUNT_KEYS = (
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)


# What to try when the peer refused the information model asked for (-P, -S, -O, -W).
MODEL_HINTS = {
    "P": "did you mean -S?",
    "S": "did you mean -P?",
    "O": "did you mean -S?",
    "W": "did you mean -S?",
    **{name: "the peer does not serve this model" for name in MODEL_NAMES},
}


def flat_classes(service: str) -> dict[str, str]:
    """``--model`` name -> the SOP class of ``service`` ("find", "get", "move") of that model."""
    return {
        name: getattr(FLAT_MODELS[model], f"{service}_class") for name, model in MODEL_NAMES.items()
    }


def add_model_flags(
    p: argparse.ArgumentParser,
    *,
    worklist: bool = False,
    key_help: str = "retrieve key by keyword or (gggg,eeee)",
) -> None:
    """dcmtk's model flags (-P default; findscu adds -W, its default) and the -k keys."""
    model = p.add_mutually_exclusive_group()
    flags = [
        ("-P", "--patient", "P", "Patient Root information model"),
        ("-S", "--study", "S", "Study Root information model"),
        ("-O", "--psonly", "O", "Patient/Study Only information model"),
    ]
    if worklist:
        flags.append(("-W", "--worklist", "W", "Modality Worklist information model"))
    default = flags[-1][2] if worklist else "P"
    for short, long, const, text in flags:
        text += " (default)" if const == default else ""
        model.add_argument(short, long, dest="model", action="store_const", const=const, help=text)
    model.add_argument(
        "--model",
        dest="model",
        choices=list(MODEL_NAMES),
        metavar="NAME",
        help="a single-level information model: " + ", ".join(MODEL_NAMES),
    )
    p.add_argument(
        "-k",
        "--key",
        action="append",
        default=[],
        metavar="KEY[=VALUE]" if worklist else "KEY=VALUE",
        help=key_help,
    )
    p.set_defaults(model=default)


def report(
    name: str,
    assoc: Association,
    responses: Iterable[tuple[Dataset, Dataset | None]],
    service: Service,
    *,
    quiet: bool = False,
) -> int:
    """Progress from the Pending counts, the failed list, a summary line, the exit code."""
    final: Dataset | None = None
    counts = (0, 0, 0)
    with progress_bar(name, 0, quiet=quiet) as progress:
        for status, result in responses:
            done = tuple(int(status.get(key, 0)) for key in _COUNT_KEYS)
            if result is not None:
                LOG.info("response identifier:\n%s", show_identifier(result))
            if category(status.Status) is Category.PENDING:
                total = sum(done) + int(status.get("NumberOfRemainingSuboperations", 0))
                progress.update(sum(done), total)
                counts = (done[0], done[1], done[2])
                continue
            final, counts = status, (done[0], done[1], done[2])
            failed = result.get("FailedSOPInstanceUIDList") if result is not None else None
            if failed:
                uids = [failed] if isinstance(failed, str) else list(failed)
                print(f"{name}: {len(uids)} failed SOP instance(s):", file=sys.stderr)
                for uid in uids:
                    print(f"  {uid}", file=sys.stderr)
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


def show_identifier(ds: Dataset) -> str:
    """An identifier for the log, one element a line, indented (as dcmtk's -v dump)."""
    return "\n".join(f"  {line}" for line in str(ds).splitlines())


def log_request(ds: Dataset) -> None:
    """At -v, the identifier we send."""
    LOG.info("request identifier:\n%s", show_identifier(ds))
