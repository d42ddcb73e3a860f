"""``dimsefsm storescu`` and ``dimsefsm storescp``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom import Dataset

from dimsefsm.ae import AE
from dimsefsm.cli.common import (
    EXIT_FAILED_STATUS,
    EXIT_OK,
    EXIT_USAGE,
    add_listen_args,
    add_logging,
    add_peer_args,
    add_server_args,
    add_timeouts,
    apply_network_args,
    fail,
    setup_logging,
)
from dimsefsm.cli.connect import add_identity_args, open_association
from dimsefsm.cli.echo import serve
from dimsefsm.cli.progress import progress_bar
from dimsefsm.cli.tls import add_tls_args, server_tls
from dimsefsm.part10 import Part10Error, read_part10_info, remove_stale_temp_files
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import (
    ALL_TRANSFER_SYNTAXES,
    DEFAULT_TRANSFER_SYNTAXES,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    STORAGE_SOP_CLASSES,
    UNCOMPRESSED_TRANSFER_SYNTAXES,
    VERIFICATION,
)
from dimsefsm.status import Category, category

LOG = logging.getLogger("dimsefsm.storescu")


# dcmtk storescu's -x flags: the uncompressed syntaxes each SOP class's common context
# offers, in order, and a syntax proposed in a context of its own per SOP class (-xs: a
# JPEG Lossless file then travels as it is; we never compress).  Explicit big endian is
# retired (PS3.5 A.3), proposed only with -xb.
_LOSSLESS_JPEG = "1.2.840.10008.1.2.4.70"
_PROPOSALS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "uncompr": (DEFAULT_TRANSFER_SYNTAXES, ()),
    "little": ((EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN), ()),
    "big": ((EXPLICIT_VR_BIG_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN), ()),
    "implicit": ((IMPLICIT_VR_LITTLE_ENDIAN,), ()),
    "lossless": (DEFAULT_TRANSFER_SYNTAXES, (_LOSSLESS_JPEG,)),
}


def add_storescu(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("storescu", help="send instances (Storage SCU)", prefix_chars="-+")
    add_peer_args(p, "STORESCU")
    p.add_argument(
        "paths",
        nargs="+",
        metavar="FILE_OR_DIR",
        help="DICOM files (Part-10 or bare data sets) and, with +sd or +r, directories",
    )
    p.add_argument(
        "+sd",
        "--scan-directories",
        action="store_true",
        help="send the files in the directories named (their subdirectories need +r)",
    )
    p.add_argument(
        "+r",
        "-r",
        "--recurse",
        action="store_true",
        help="send the files in the directories named and below them (implies +sd)",
    )
    proposal = p.add_argument_group(
        "proposed transfer syntaxes (besides each file's own)"
    ).add_mutually_exclusive_group()
    for flag, long, key, text in (
        (
            "-x=",
            "--propose-uncompr",
            "uncompr",
            "explicit, then implicit VR little endian (default)",
        ),
        ("-xe", "--propose-little", "little", "explicit VR little endian first, then implicit"),
        ("-xb", "--propose-big", "big", "explicit VR big endian first, then little endian"),
        ("-xi", "--propose-implicit", "implicit", "implicit VR little endian only"),
        (
            "-xs",
            "--propose-lossless",
            "lossless",
            "JPEG Lossless SV1 too (files already in it go as they are)",
        ),
    ):
        proposal.add_argument(
            flag, long, dest="propose", action="store_const", const=key, help=text
        )
    p.set_defaults(propose="uncompr")
    add_timeouts(p)
    add_tls_args(p, server=False)
    add_identity_args(p)
    add_logging(p)
    p.set_defaults(run=run_storescu)


def iter_files(paths: Iterable[str], scan: bool, recurse: bool) -> Iterator[tuple[Path, bool]]:
    """Each file to send, and whether it was named (True) or found in a directory (False).

    A named path that does not exist, or a directory without +sd/+r, ends the
    command before anything is sent: it is the user's mistake, not a file to skip.
    """
    for name in paths:
        path = Path(name)
        if path.is_dir():
            if not (scan or recurse):
                fail(f"{path} is a directory: add +sd to send its files, +r to recurse")
            found = path.rglob("*") if recurse else path.iterdir()
            yield from ((p, False) for p in sorted(p for p in found if p.is_file()))
        elif path.exists():
            yield path, True
        else:
            fail(f"{path}: no such file")


@dataclass(frozen=True, slots=True)
class Instance:
    """One file to send: a Part-10 file (sent as read) or a bare data set (decoded first)."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    bare: bool = False


def read_instance(path: Path) -> Instance:
    """The file's identity; a file without a meta group is read as a bare data set (dcmtk +f).

    Raises ``Part10Error`` or ``OSError`` when the file is neither.
    """
    try:
        info = read_part10_info(path)
        return Instance(path, info.sop_class_uid, info.sop_instance_uid, info.transfer_syntax)
    except Part10Error as part10_error:
        ds = read_bare_dataset(path)
        if ds is None:
            raise part10_error from None
        return Instance(
            path, str(ds.SOPClassUID), str(ds.SOPInstanceUID), bare_syntax(ds), bare=True
        )


def read_bare_dataset(path: Path) -> Dataset | None:
    """A data set with no preamble and no meta group, as dcmtk writes with ``-F``; else None."""
    from pydicom import dcmread

    try:
        with open(path, "rb") as file:
            if file.read(132)[128:] == b"DICM":
                return None  # a Part-10 file with a broken meta group is not bare
        ds = dcmread(path, force=True)
        if "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
            return None
        str(ds.SOPClassUID), str(ds.SOPInstanceUID)  # decode now: a garbage file fails here
    except Exception:  # pydicom's guesses at a non-DICOM file fail in many ways
        return None
    return ds


def bare_syntax(ds: Dataset) -> str:
    """The transfer syntax pydicom found the bare data set in."""
    implicit, little = ds.original_encoding
    if implicit:
        return IMPLICIT_VR_LITTLE_ENDIAN
    return EXPLICIT_VR_LITTLE_ENDIAN if little else EXPLICIT_VR_BIG_ENDIAN


def propose(
    infos: Iterable[Instance],
    common: tuple[str, ...] = DEFAULT_TRANSFER_SYNTAXES,
    also: tuple[str, ...] = (),
) -> list[tuple[str, tuple[str, ...]]]:
    """Contexts that let each file travel in its own transfer syntax when the peer can.

    An acceptor picks one syntax per context by *its own* preference (dcmtk
    does, ignoring our order), so a context offering several syntaxes would
    make an implicit or big endian file travel converted.  Hence one context
    per SOP class and file syntax offering only that syntax, so that what is
    stored is what was read.  SOP classes with uncompressed files also get a
    fallback context offering ``common`` (the -x flags' list), proposed first
    (lowest ID) so that a file whose own syntax is refused converts to an
    uncompressed syntax rather than finding a compressed context.  Compressed
    files are sent as they are or not at all.  ``also``: one more context per
    SOP class and syntax (-xs), after the others.
    """
    fallback: dict[tuple[str, tuple[str, ...]], None] = {}
    own: dict[tuple[str, tuple[str, ...]], None] = {}
    for info in infos:
        ts = info.transfer_syntax
        if ts in UNCOMPRESSED_TRANSFER_SYNTAXES:
            fallback.setdefault((info.sop_class_uid, common), None)
        if (ts,) != common:
            own.setdefault((info.sop_class_uid, (ts,)), None)
        for syntax in also:
            own.setdefault((info.sop_class_uid, (syntax,)), None)
    return [*fallback, *own]


def collect(args: argparse.Namespace) -> tuple[list[Instance], list[Path]]:
    """The instances to send and the named files that are not DICOM (failures).

    Files found in a directory that are not DICOM are skipped with a log line,
    as dcmtk's +sd does; a file named on the command line counts as failed.
    """
    instances: list[Instance] = []
    unreadable: list[Path] = []
    for path, named in iter_files(args.paths, args.scan_directories, args.recurse):
        try:
            instances.append(read_instance(path))
        except (Part10Error, OSError) as exc:
            if named:
                print(f"storescu: {path}: not a DICOM file: {exc}", file=sys.stderr)
                unreadable.append(path)
            else:
                LOG.warning("skipping %s: not a DICOM file", path)
    return instances, unreadable


def run_storescu(args: argparse.Namespace) -> int:
    setup_logging(args)
    infos, unreadable = collect(args)
    if not infos:
        print("storescu: no DICOM files to send", file=sys.stderr)
        return EXIT_USAGE
    contexts = propose(infos, *_PROPOSALS[args.propose])
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
    total = len(infos) + len(unreadable)
    counts = {Category.SUCCESS: 0, Category.WARNING: 0, Category.FAILURE: len(unreadable)}
    if assoc.negotiated is None or not assoc.negotiated.contexts:
        # Said once here rather than as one "no accepted context" line per file.
        print(
            f"storescu: {args.call} accepted none of the {len(contexts)} proposed "
            "presentation contexts; nothing sent",
            file=sys.stderr,
        )
        assoc.release()
        counts[Category.FAILURE] = total
        _print_summary(total, counts)
        return EXIT_FAILED_STATUS
    with progress_bar("storescu", len(infos), quiet=args.quiet) as progress:
        for done, info in enumerate(infos, 1):
            try:
                status = assoc.send_c_store(_source(info))
            except ValueError as exc:
                print(f"storescu: {info.path}: {exc}", file=sys.stderr)
                counts[Category.FAILURE] += 1
                continue
            if "Status" not in status:
                print(
                    f"storescu: {info.path}: no response: {assoc.describe_failure()}",
                    file=sys.stderr,
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
    if assoc.is_established:
        assoc.release()
    _print_summary(total, counts)
    return EXIT_FAILED_STATUS if counts[Category.FAILURE] else EXIT_OK


def _source(info: Instance) -> Dataset | Path:
    """What send_c_store takes: the path of a Part-10 file, a bare data set decoded."""
    if not info.bare:
        return info.path
    ds = read_bare_dataset(info.path)
    if ds is None:
        raise ValueError("the file changed since it was read")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID

    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(info.transfer_syntax)
    return ds


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
    add_listen_args(p, "STORESCP")
    p.add_argument("-od", "--output-directory", default=".", help="where files are written")
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


def storescp_ae(args: argparse.Namespace) -> AE:
    """storescp's AE from its flags: contexts and limits (the conformance statement's too)."""
    ae = AE(args.aetitle)
    ae.add_supported_context(VERIFICATION)
    for uid in STORAGE_SOP_CLASSES:
        ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES)
    ae.prefer_requestor_order = True
    apply_network_args(ae, args)
    return ae


def run_storescp(args: argparse.Namespace) -> int:
    setup_logging(args)
    logging.getLogger("dimsefsm.storage").setLevel(logging.INFO)
    out = Path(args.output_directory)
    out.mkdir(parents=True, exist_ok=True)
    ae = storescp_ae(args)
    for path in remove_stale_temp_files(out):
        logging.getLogger("dimsefsm.storage").warning(
            "removed %s: a temporary file left by a server that was stopped", path
        )
    ae.storage = StorageConfig(mode="file", directory=out, fsync=args.fsync)
    serve(ae, (args.bind, args.port), "storescp", ssl_context=server_tls(args))
    return EXIT_OK
