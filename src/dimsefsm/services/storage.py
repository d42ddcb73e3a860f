"""Storage (C-STORE): the SCP chart, the SCU chart, and the data set sinks.

The SCP decides in two steps, as its chart shows: *Decoding* (is the request
well formed, is the data set decodable?) and *Handling* (what did the
handler say?).  Three delivery modes trade convenience for memory:

``dataset``  the handler gets a decoded ``pydicom.Dataset`` (pynetdicom's way);
``raw``      the handler gets the encoded bytes and their transfer syntax;
``file``     fragments are written to a temporary Part-10 file as they arrive,
             so a 500 MB instance never sits in memory; the handler gets the
             path, and the file is renamed into place only when the final
             status is not a failure.

Whatever the mode, a request whose Affected SOP Instance or Class UID is not
a UID (PS3.5 9.1) is refused with 0x0117 before anything is kept: the UID
names the file and the archive's index entry.  In file mode a Success or
Warning is sent only once the file is complete and renamed into place (and,
with ``fsync``, on disk); a failed disk write (disk full, I/O error, file too
large) discards the temporary file and is answered 0xA700 Out of Resources,
and the association goes on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydicom import Dataset
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    AcceptedContext,
    Negotiated,
)
from dimsefsm.datasets import (
    DatasetChecker,
    DatasetDecodeError,
    check_dataset_bytes,
    convert_dataset_bytes,
    decode_dataset,
    encode_dataset,
)
from dimsefsm.dimse.commands import store_rsp
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, transition
from dimsefsm.part10 import (
    Part10Info,
    Part10Writer,
    read_dataset_bytes,
    read_part10_up_to,
)
from dimsefsm.services.single_response import (
    SingleResponseScp,
    SingleResponseScu,
    handler_outcomes,
    make_scu_chart,
)
from dimsefsm.sop_class import UNCOMPRESSED_TRANSFER_SYNTAXES, service_of
from dimsefsm.uid import uid_problem

LOG = logging.getLogger("dimsefsm.storage")

Mode = Literal["dataset", "raw", "file"]


@dataclass(slots=True)
class StorageConfig:
    """How received instances reach the handler (see the module docstring)."""

    mode: Mode = "dataset"
    directory: Path | None = None
    validate: bool = True
    on_stored: Callable[[Path], None] | None = None
    """File mode: called with the final path once a file is committed (e.g. to index it)."""
    fsync: bool = False
    """File mode: make each file and its directory entry durable before answering Success.

    Without it a committed file is in the page cache when Success leaves, and a
    power loss or kernel crash in the next few seconds can lose it although the
    sender was told it is stored."""

    def __post_init__(self) -> None:
        if self.mode == "file" and self.directory is None:
            raise ValueError("file mode needs a directory")


SCP_CHART = Chart(
    name="c-store-scp",
    states=("Decoding", "Handling", "Final"),
    initial="Decoding",
    final=("Final",),
    doc="C-STORE SCP: check the request and the data set, ask the handler, answer once.",
    transitions=(
        transition(
            "mistyped",
            "mistyped",
            "Decoding",
            "Final",
            status=st.MISTYPED_ARGUMENT,
            action="respond",
            when="The request lacks Affected SOP Class/Instance UID or Priority.",
        ),
        transition(
            "invalid_uid",
            "invalid_uid",
            "Decoding",
            "Final",
            status=st.INVALID_OBJECT_INSTANCE,
            action="respond",
            when="The request's Affected SOP Instance or Class UID is not a UID (PS3.5 9.1: "
            "digits and dots, no empty component, no leading zero, at most 64 characters); "
            "nothing is kept.",
        ),
        transition(
            "write_failed",
            "write_failed",
            ("Decoding", "Handling"),
            "Final",
            status=st.OUT_OF_RESOURCES,
            action="respond",
            when="File mode: writing, flushing or renaming the file failed (disk full, I/O "
            "error, file too large); the temporary file is discarded, the association goes on.",
        ),
        transition(
            "not_supported",
            "not_supported",
            "Decoding",
            "Final",
            status=st.SOP_CLASS_NOT_SUPPORTED,
            action="respond",
            when="The SOP class is not the context's, or we may not act as its SCP here.",
        ),
        transition(
            "undecodable",
            "undecodable",
            "Decoding",
            "Final",
            status=st.STORE_DECODE_FAILED,
            action="respond",
            when="The data set is not well formed in the context's transfer syntax; "
            "nothing is kept.",
        ),
        transition(
            "decoded",
            "decoded",
            "Decoding",
            "Handling",
            when="The data set decodes (or its structure checks out in raw and file modes).",
        ),
        *handler_outcomes(
            {
                "warning": "The handler returned a Warning (B000, B006, B007); sent as is.",
                "failure": "The handler returned a Failure (A7xx, A9xx, Cxxx, 0117, 0122, "
                "0124); sent as is.",
            },
            st.STORE_HANDLER_FAILED,
            "The handler raised an exception; its text goes in ErrorComment.",
        ),
    ),
)

SCU_CHART = make_scu_chart("c-store-scu", "C-STORE", "A7xx, A9xx, Cxxx, 0117, 0122, 0124 ...")


# -- receiving to a file --------------------------------------------------------------
class FileSink:
    """Reassembler sink writing a C-STORE data set to a temporary Part-10 file.

    Each fragment is written and structure-checked as it arrives, so even a
    500 MB instance is never held in memory.  ``close()`` only ends the
    transfer; the SCP decides afterwards whether the file is committed
    (renamed into place) or discarded.

    Nothing is written for a request whose UIDs are not UIDs (the SCP refuses
    it), and a failed disk write is kept in ``write_error`` rather than raised:
    the rest of the data set is still received (and dropped) so that the
    association stays in step, and the SCP answers Out of Resources.
    """

    def __init__(
        self,
        directory: Path,
        command: dict[str, Any],
        transfer_syntax: str,
        source_ae: str | None,
        validate: bool = True,
        fsync: bool = False,
    ) -> None:
        self.writer: Part10Writer | None = None
        self.write_error: OSError | None = None
        self.checker: DatasetChecker | None = None
        self.error: DatasetDecodeError | None = None
        self.path: Path | None = None
        self.fsync = fsync
        sop_class = command.get("AffectedSOPClassUID")
        sop_instance = command.get("AffectedSOPInstanceUID")
        if uid_problem(sop_class) or uid_problem(sop_instance):
            return  # refused by the SCP (invalid_uid, mistyped): nothing to keep
        try:
            self.writer = Part10Writer(
                directory,
                str(sop_class),
                str(sop_instance),
                transfer_syntax,
                implementation_class_uid=IMPLEMENTATION_CLASS_UID,
                implementation_version_name=IMPLEMENTATION_VERSION_NAME,
                source_ae=source_ae,
                fsync=fsync,
            )
        except OSError as exc:
            self.write_error = exc
            return
        self.checker = DatasetChecker(transfer_syntax) if validate else None

    @property
    def temp_path(self) -> Path | None:
        return self.writer.temp_path if self.writer is not None else None

    def write(self, data: bytes) -> None:
        if self.writer is None:
            return
        try:
            self.writer.write(data)
        except OSError as exc:
            self._failed(exc)
            return
        if self.checker is not None:
            try:
                self.checker.feed(data)
            except DatasetDecodeError as exc:
                self.error, self.checker = exc, None

    def _failed(self, exc: OSError) -> None:
        """Keep the first write error and drop the temporary file: it can never be complete."""
        self.write_error = exc
        if self.writer is not None:
            self.writer.abort()
            self.writer = None
        self.checker = None

    def close(self) -> FileSink:
        """The transfer ended: hand the buffered bytes to the OS, so the handler can read them.

        With ``fsync`` they are made durable here, before the handler runs: an
        archive that commits under a lock then holds it only for the rename.
        """
        if self.writer is not None:
            try:
                if self.fsync:
                    self.writer.sync()
                else:
                    self.writer.flush()
            except OSError as exc:
                self._failed(exc)
        return self

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()

    def check(self) -> None:
        """Raise ``DatasetDecodeError`` if the data set was not well formed."""
        if self.error is not None:
            raise self.error
        if self.checker is not None:
            self.checker.finish()

    def commit(self) -> Path:
        """Rename the complete file into place (fsync'd first if asked); ``OSError`` if not."""
        if self.path is not None:
            return self.path
        if self.writer is None:
            raise self.write_error or OSError(errno.EIO, "no file was written")
        try:
            self.path = self.writer.close()
        except OSError as exc:
            self._failed(exc)
            raise
        return self.path


# -- the SCP operation ------------------------------------------------------------------
class StoreEvent:
    """What an EVT_C_STORE handler sees; the data set is decoded only if asked for."""

    def __init__(
        self,
        assoc: Any,
        request: Message,
        context: AcceptedContext,
        raw: bytes | None,
        path: Path | None,
        dataset: Dataset | None,
        commit: Callable[[], Path] | None = None,
    ) -> None:
        from dimsefsm import evt

        self.assoc = assoc
        self.event = evt.EVT_C_STORE
        self.request = request
        self.context = context
        self.transfer_syntax = context.transfer_syntax
        self.raw = raw
        self.path = path
        self._dataset = dataset
        self._commit = commit

    @property
    def message_id(self) -> int:
        return int(self.request.command.get("MessageID", 0))

    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            if self.raw is None:
                raise AttributeError("in file mode the instance is at event.path")
            self._dataset = decode_dataset(self.raw, self.transfer_syntax)
        return self._dataset

    def commit(self) -> Path:
        """File mode: rename the received file into place now and return its final path.

        For a handler that must decide and commit atomically (an archive that
        checks its index and files the instance under one lock).  The SCP does
        not commit again; a handler that commits and then returns a Failure
        keeps the file.  Raises ``OSError`` if the disk fails; the SCP then
        answers Out of Resources whatever the handler returns.
        """
        if self._commit is None:
            raise ValueError("commit() is for file mode only")
        return self._commit()

    @property
    def move_originator(self) -> tuple[str | None, int | None]:
        cmd = self.request.command
        return cmd.get("MoveOriginatorApplicationEntityTitle"), cmd.get("MoveOriginatorMessageID")


Handler = Callable[[StoreEvent], Any]


class StoreScp(SingleResponseScp):
    """One C-STORE-RQ being answered."""

    chart = SCP_CHART

    def __init__(
        self,
        request: Message,
        context: AcceptedContext | None,
        handler: Handler | None,
        config: StorageConfig,
        assoc: Any,
        send: Callable[[Message], None],
    ) -> None:
        self.request = request
        self.context = context
        self.handler = handler
        self.config = config
        self.assoc = assoc
        self.send = send
        self.handler_status: int | None = None
        self.comment: str | None = None
        self.sent_status: int | None = None
        self.sink: FileSink | None = (
            request.sink_result if isinstance(request.sink_result, FileSink) else None
        )
        SCP_CHART.attach(self)

    def run(self) -> int:
        try:
            return self._run()
        finally:
            if self.sink is not None and self.sink.path is None:
                self.sink.abort()

    def _run(self) -> int:
        cmd = self.request.command
        ctx = self.context
        if not (cmd.get("AffectedSOPClassUID") and cmd.get("AffectedSOPInstanceUID")) or (
            cmd.get("Priority") is None
        ):
            return self.fire("mistyped")
        for keyword in ("AffectedSOPInstanceUID", "AffectedSOPClassUID"):
            problem = uid_problem(cmd[keyword])
            if problem is not None:
                LOG.warning("C-STORE refused: %s %r %s", keyword, cmd[keyword], problem)
                self.comment = f"{keyword} {problem}"
                return self.fire("invalid_uid")
        if ctx is None or not ctx.as_scp or ctx.abstract_syntax != cmd["AffectedSOPClassUID"]:
            return self.fire("not_supported")
        if self.sink is not None and self.sink.write_error is not None:
            return self._write_failed()
        dataset: Dataset | None = None
        raw = self.request.dataset
        try:
            if self.sink is not None:
                self.sink.check()
            elif raw is None:
                raise DatasetDecodeError("no data set")
            elif self.config.mode == "dataset":
                dataset = decode_dataset(raw, ctx.transfer_syntax)
            elif self.config.validate:
                check_dataset_bytes(raw, ctx.transfer_syntax)
        except (DatasetDecodeError, OSError) as exc:
            LOG.warning(
                "C-STORE %s: data set cannot be decoded: %s", cmd["AffectedSOPInstanceUID"], exc
            )
            self.comment = str(exc)
            return self.fire("undecodable")
        SCP_CHART.fire(self, "decoded")
        path = self.sink.temp_path if self.sink is not None else None
        commit = self.commit if self.sink is not None else None
        event = StoreEvent(self.assoc, self.request, ctx, raw, path, dataset, commit)
        trigger = "success" if self.handler is None else self.call_handler(self.handler, event)
        if self.sink is not None and self.sink.path is None and self._keeps(trigger):
            with contextlib.suppress(OSError):  # kept in sink.write_error
                self.commit()
        if self.sink is not None and self.sink.write_error is not None:
            return self._write_failed()
        return self.fire(trigger)

    def _keeps(self, trigger: str) -> bool:
        """True when the response ``trigger`` sends is not a failure (the file is kept)."""
        code = self.chart.status_of(trigger)
        status = self.handler_status if code is None else code
        return status is not None and st.category(status) is not st.Category.FAILURE

    def commit(self) -> Path:
        """Rename the file into place and tell ``on_stored``; ``OSError`` if the disk fails."""
        assert self.sink is not None
        if self.sink.path is not None:
            return self.sink.path
        path = self.sink.commit()
        if self.config.on_stored is not None:
            self.config.on_stored(path)
        return path

    def _write_failed(self) -> int:
        assert self.sink is not None and self.sink.write_error is not None
        exc = self.sink.write_error
        reason = exc.strerror or str(exc)
        LOG.error(
            "C-STORE %s: writing to disk failed, temporary file discarded: %s",
            self.request.command.get("AffectedSOPInstanceUID"),
            exc,
        )
        self.comment = f"cannot write the file: {reason}"
        return self.fire("write_failed")

    def status_table(self) -> Mapping[int, object]:
        if service_of(self.request.command["AffectedSOPClassUID"]) == "non-patient-storage":
            return st.NON_PATIENT_STORAGE_STATUSES
        return st.STORAGE_STATUSES

    def respond(self, event: EventData) -> None:
        status = self.status_for(event)
        cmd = self.request.command
        sop_instance = cmd.get("AffectedSOPInstanceUID")
        if self.sink is not None and self.sink.path is not None:
            LOG.info("stored %s (0x%04X) -> %s", sop_instance, status, self.sink.path)
        else:
            LOG.info("C-STORE %s answered 0x%04X", sop_instance, status)
        comment = self.error_comment(status)
        sop_class = cmd.get("AffectedSOPClassUID")
        self.send(
            Message(
                self.request.context_id,
                store_rsp(
                    cmd.get("MessageID", 0),
                    status,
                    # Optional in the response (U(=)): a value that is not a UID is not echoed.
                    sop_class_uid=sop_class if uid_problem(sop_class) is None else None,
                    sop_instance_uid=sop_instance if uid_problem(sop_instance) is None else None,
                    error_comment=comment,
                ),
            )
        )


@dataclass(frozen=True, slots=True)
class StoreSource:
    context_id: int
    sop_class_uid: str
    sop_instance_uid: str
    data: bytes | None
    info: Part10Info | None


def uncompressed_context(negotiated: Negotiated, sop_class: str) -> AcceptedContext:
    """The context to convert to: native encodings only, our preference first."""
    for syntax in UNCOMPRESSED_TRANSFER_SYNTAXES:
        ctx = negotiated.find_context(sop_class, syntax)
        if ctx is not None:
            return ctx
    raise ValueError(
        f"no accepted presentation context for SOP class {sop_class} "
        "in its own or an uncompressed transfer syntax"
    )


def store_source(
    negotiated: Negotiated, dataset: Dataset | str | Path, stream_above: int | None = None
) -> StoreSource:
    """What to send for one instance, and on which context (we must be its SCU there).

    A path goes without decoding when a context with the file's own syntax was
    accepted; above ``stream_above`` bytes it is left on disk to be streamed.
    Otherwise an uncompressed instance is converted to an accepted native syntax.
    """
    if isinstance(dataset, Dataset):
        sop_class, sop_instance = dataset.SOPClassUID, dataset.SOPInstanceUID
        wanted = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        ctx = (
            negotiated.find_context(sop_class, wanted) if wanted else None
        ) or uncompressed_context(negotiated, sop_class)
        encoded = encode_dataset(dataset, ctx.transfer_syntax)
        return StoreSource(ctx.context_id, sop_class, sop_instance, encoded, None)
    info, stored = read_part10_up_to(dataset, stream_above)
    same = negotiated.find_context(info.sop_class_uid, info.transfer_syntax)
    if same is not None:
        return StoreSource(same.context_id, info.sop_class_uid, info.sop_instance_uid, stored, info)
    ctx = uncompressed_context(negotiated, info.sop_class_uid)
    converted = convert_dataset_bytes(
        read_dataset_bytes(info) if stored is None else stored,
        info.transfer_syntax,
        ctx.transfer_syntax,
    )
    return StoreSource(ctx.context_id, info.sop_class_uid, info.sop_instance_uid, converted, None)


class StoreScu(SingleResponseScu):
    """One C-STORE-RQ we sent, waiting for its response."""

    chart = SCU_CHART
