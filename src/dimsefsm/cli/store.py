"""``dimsefsm storescu`` and ``dimsefsm storescp``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydicom import Dataset

from dimsefsm.ae import AE
from dimsefsm.cli.common import (
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_USAGE,
    add_logging,
    add_server_args,
    add_timeouts,
    apply_network_args,
    setup_logging,
)
from dimsefsm.cli.connect import add_identity_args, open_association
from dimsefsm.cli.echo import serve
from dimsefsm.cli.progress import Progress
from dimsefsm.cli.tls import add_tls_args, server_tls
from dimsefsm.part10 import Part10Error, Part10Info, read_part10_info, remove_stale_temp_files
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import (
    ALL_TRANSFER_SYNTAXES,
    DEFAULT_TRANSFER_SYNTAXES,
    STORAGE_SOP_CLASSES,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    VERIFICATION,
)
from dimsefsm.status import Category, category

LOG = logging.getLogger("dimsefsm.storescu")


def add_storescu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("storescu", help="send instances (Storage SCU)", prefix_chars="-+")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("-aet", "--aetitle", default="STORESCU", help="our AE title")
    p.add_argument("-aec", "--call", default="ANY-SCP", help="the peer's AE title")
    p.add_argument("-r", "--recurse", action="store_true", help="recurse into directories")
    add_timeouts(p)
    add_tls_args(p, server=False)
    add_identity_args(p)
    add_logging(p)
    p.set_defaults(run=run_storescu)


def iter_files(paths: Iterable[str], recurse: bool) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = path.rglob("*") if recurse else path.iterdir()
            yield from sorted(p for p in found if p.is_file())
        else:
            yield path


def propose(infos: Iterable[Part10Info]) -> list[tuple[str, tuple[str, ...]]]:
    """Contexts that let each file travel in its own transfer syntax when the peer can.

    An acceptor picks one syntax per context by *its own* preference (dcmtk
    does, ignoring our order), so a context offering several syntaxes would
    make an implicit or big endian file travel converted.  Hence one context
    per SOP class and file syntax offering only that syntax, so that what is
    stored is what was read.  SOP classes with uncompressed files also get a
    fallback context offering the common uncompressed syntaxes, proposed first
    (lowest ID) so that a file whose own syntax is refused converts to an
    uncompressed syntax rather than finding a compressed context.  Compressed
    files are sent as they are or not at all.
    """
    fallback: dict[tuple[str, tuple[str, ...]], None] = {}
    own: dict[tuple[str, tuple[str, ...]], None] = {}
    for info in infos:
        ts = info.transfer_syntax
        if ts in UNCOMPRESSED_TRANSFER_SYNTAXES:
            fallback.setdefault((info.sop_class_uid, DEFAULT_TRANSFER_SYNTAXES), None)
        own.setdefault((info.sop_class_uid, (ts,)), None)
    return [*fallback, *own]


def run_storescu(args: argparse.Namespace) -> int:
    setup_logging(args)
    infos: list[Part10Info] = []
    for path in iter_files(args.paths, args.recurse):
        try:
            infos.append(read_part10_info(path))
        except (Part10Error, OSError) as exc:
            print(f"storescu: skipping {path}: {exc}", file=sys.stderr)
    if not infos:
        print("storescu: no DICOM files to send", file=sys.stderr)
        return EXIT_USAGE
    contexts = propose(infos)
    if len(contexts) > 128:
        print(
            f"storescu: {len(contexts)} presentation contexts needed, at most 128 fit in "
            "one association",
            file=sys.stderr,
        )
        return EXIT_USAGE
    ae = AE(args.aetitle)
    for sop_class, syntaxes in contexts:
        ae.add_requested_context(sop_class, syntaxes)
    apply_network_args(ae, args)
    assoc = open_association("storescu", ae, args)
    if isinstance(assoc, int):
        return assoc
    counts = {Category.SUCCESS: 0, Category.WARNING: 0, Category.FAILURE: 0}
    if assoc.negotiated is None or not assoc.negotiated.contexts:
        # Said once here rather than as one "no accepted context" line per file.
        print(
            f"storescu: {args.call} accepted none of the {len(contexts)} proposed "
            "presentation contexts; nothing sent",
            file=sys.stderr,
        )
        assoc.release()
        counts[Category.FAILURE] = len(infos)
        _print_summary(len(infos), counts)
        return EXIT_FAILED_STATUS
    progress = Progress(len(infos), "storescu")
    for done, info in enumerate(infos, 1):
        try:
            status = assoc.send_c_store(info.path)
        except ValueError as exc:
            print(f"storescu: {info.path}: {exc}", file=sys.stderr)
            counts[Category.FAILURE] += 1
            continue
        if "Status" not in status:
            print(
                f"storescu: {info.path}: no response: {assoc.describe_failure()}", file=sys.stderr
            )
            counts[Category.FAILURE] += len(infos) - done + 1
            break
        cat = category(status.Status)
        if cat not in (Category.SUCCESS, Category.WARNING):
            cat = Category.FAILURE
            print(
                f"storescu: {info.path}: failed with status 0x{status.Status:04X}"
                + (f" ({_error_comment(status)})" if "ErrorComment" in status else ""),
                file=sys.stderr,
            )
        counts[cat] += 1
        LOG.info("%s: 0x%04X", info.path, status.Status)
        progress.update(done)
    progress.finish()
    if assoc.is_established:
        assoc.release()
    _print_summary(len(infos), counts)
    return EXIT_FAILED_STATUS if counts[Category.FAILURE] else EXIT_OK


def _error_comment(status: Dataset) -> str:
    """The peer's ErrorComment as one line, even if a backslash made pydicom split it."""
    value = status.ErrorComment
    return value if isinstance(value, str) else "\\".join(str(part) for part in value)


def _print_summary(total: int, counts: dict[Category, int]) -> None:
    print(
        f"storescu: {total} instance(s): {counts[Category.SUCCESS]} stored, "
        f"{counts[Category.WARNING]} with warnings, {counts[Category.FAILURE]} failed",
        file=sys.stderr,
    )


def add_storescp(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("storescp", help="receive instances (Storage SCP)", prefix_chars="-+")
    p.add_argument("port", type=int)
    p.add_argument("-od", "--output-directory", default=".", help="where files are written")
    p.add_argument("-aet", "--aetitle", default="STORESCP", help="our AE title")
    add_fsync_arg(p)
    add_server_args(p)
    add_timeouts(p)
    add_tls_args(p, server=True)
    add_logging(p)
    p.set_defaults(run=run_storescp)


def add_fsync_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fsync",
        action="store_true",
        help="make each file durable (fsync of the file and its directory) before answering "
        "Success; without it a power loss within seconds of a Success can lose the instance",
    )


def run_storescp(args: argparse.Namespace) -> int:
    setup_logging(args)
    logging.getLogger("dimsefsm.storage").setLevel(logging.INFO)
    out = Path(args.output_directory)
    out.mkdir(parents=True, exist_ok=True)
    ae = AE(args.aetitle)
    ae.add_supported_context(VERIFICATION)
    for uid in STORAGE_SOP_CLASSES:
        ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
    ae.prefer_requestor_order = True
    for path in remove_stale_temp_files(out):
        logging.getLogger("dimsefsm.storage").warning(
            "removed %s: a temporary file left by a server that was stopped", path
        )
    ae.storage = StorageConfig(mode="file", directory=out, fsync=args.fsync)
    apply_network_args(ae, args)
    serve(ae, (args.bind, args.port), "storescp", ssl_context=server_tls(args))
    return EXIT_OK
