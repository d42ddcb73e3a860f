"""Storage (C-STORE): the SCP chart, the SCU chart, and the sink interface.

The SCP decides in steps, as its chart shows: *Received* (is the command
well formed?), *Decoding* (is the data set decodable, did the sink fail?),
*Handling* (what did the handler say?) and, in file mode, *Committing* (did
the sink make the instance permanent?).  Three delivery modes trade
convenience for memory:

``dataset``  the handler gets a decoded ``pydicom.Dataset`` (pynetdicom's way);
``raw``      the handler gets the encoded bytes and their transfer syntax;
``file``     fragments go to an injected :class:`InstanceSink` as they arrive
             (``dimsefsm.transport.file_sink``: a temporary Part-10 file),
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

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext, Negotiated
from dimsefsm.dimse.commands import store_rsp
from dimsefsm.dimse.message import Message
from dimsefsm.fsm import Chart, Refusal, transition
from dimsefsm.services.single_response import (
    SingleResponseScp,
    SingleResponseScu,
    handler_outcomes,
    handler_refusals,
    make_scu_chart,
)
from dimsefsm.sop_class import UNCOMPRESSED_TRANSFER_SYNTAXES, service_of
from dimsefsm.uid import uid_problem

if TYPE_CHECKING:
    from pathlib import Path

    from pydicom import Dataset

    from dimsefsm.part10 import Part10Info

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
        if self.mode == "file":
            self.ensure_directory()

    def ensure_directory(self) -> bool:
        """Create the file-mode directory (and its parents) if missing; False if it cannot be.

        A directory that cannot be made is not fatal: the server still starts, each
        C-STORE then fails to open its file and is answered Out of Resources
        (0xA700) with nothing half-written, and this one line says why.
        """
        if self.directory is None:
            return False
        from pathlib import Path  # here: a C-ECHO client imports this module, never pathlib

        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            LOG.warning("cannot create storage directory %s: %s", self.directory, exc)
            return False
        return True


_DECODING_INPUTS = ("sink_failed", "data_set_undecodable", "data_set_decoded")

SCP_CHART = Chart(
    name="c-store-scp",
    states=("Received", "Decoding", "Handling", "Committing", "Final"),
    initial="Received",
    final=("Final",),
    doc="C-STORE SCP: check the request and the data set, ask the handler, keep the "
    "instance (file mode: commit it through the sink), answer once.",
    transitions=(
        transition(
            "mistyped",
            "request_received",
            "Received",
            "Final",
            guard="arguments_missing",
            status=st.MISTYPED_ARGUMENT,
            action="respond",
            when="The request lacks Affected SOP Class/Instance UID or Priority.",
        ),
        transition(
            "invalid_uid",
            "request_received",
            "Received",
            "Final",
            guard="uid_invalid",
            status=st.INVALID_OBJECT_INSTANCE,
            action="refuse_uid",
            when="The request's Affected SOP Instance or Class UID is not a UID (PS3.5 9.1: "
            "digits and dots, no empty component, no leading zero, at most 64 characters); "
            "nothing is kept.",
        ),
        transition(
            "not_supported",
            "request_received",
            "Received",
            "Final",
            guard="not_the_context_class",
            status=st.SOP_CLASS_NOT_SUPPORTED,
            action="respond",
            when="The SOP class is not the context's, or we may not act as its SCP here.",
        ),
        transition(
            "accepted",
            "request_received",
            "Received",
            "Decoding",
            when="The command is well formed; the data set is looked at next.",
        ),
        transition(
            "write_failed",
            "sink_failed",
            "Decoding",
            "Final",
            status=st.OUT_OF_RESOURCES,
            action="write_failed",
            when="File mode: writing the data set to disk failed while it arrived (disk full, "
            "I/O error, file too large); the temporary file is discarded, the association "
            "goes on.",
        ),
        transition(
            "undecodable",
            "data_set_undecodable",
            "Decoding",
            "Final",
            status=st.STORE_DECODE_FAILED,
            action="respond",
            when="The data set is not well formed in the context's transfer syntax; "
            "nothing is kept.",
        ),
        transition(
            "decoded",
            "data_set_decoded",
            "Decoding",
            "Handling",
            when="The data set decodes (or its structure checks out in raw and file modes).",
        ),
        transition(
            "handler_commit_failed",
            "handler_returned",
            "Handling",
            "Final",
            guard="sink_failed",
            status=st.OUT_OF_RESOURCES,
            action="write_failed",
            when="File mode: the handler committed the instance itself (event.commit()) and "
            "the disk failed; whatever it returned, the answer is Out of Resources.",
        ),
        transition(
            "raised_after_commit_failed",
            "handler_raised",
            "Handling",
            "Final",
            guard="sink_failed",
            status=st.OUT_OF_RESOURCES,
            action="write_failed",
            when="File mode: the handler's own commit failed and it then raised.",
        ),
        transition(
            "keep",
            "handler_returned",
            "Handling",
            "Committing",
            guard="keeps_instance",
            when="File mode: the handler returned a status that is not a Failure and has not "
            "committed the instance itself; the sink is asked to commit it.",
        ),
        *handler_outcomes(
            {
                "warning": "The handler returned a Warning (B000, B006, B007); sent as is.",
                "failure": "The handler returned a Failure (A7xx, A9xx, Cxxx, 0117, 0122, "
                "0124); sent as is (file mode: the temporary file is discarded).",
            },
            st.STORE_HANDLER_FAILED,
            "The handler raised an exception; its text goes in ErrorComment.",
        ),
        transition(
            "committed",
            "instance_committed",
            "Committing",
            "Final",
            action="respond",
            when="File mode: the file is renamed into place (and with fsync on disk); the "
            "handler's status is sent.",
        ),
        transition(
            "commit_failed",
            "sink_failed",
            "Committing",
            "Final",
            status=st.OUT_OF_RESOURCES,
            action="write_failed",
            when="File mode: flushing or renaming the file into place failed; the temporary "
            "file is discarded and Out of Resources sent instead of the handler's status.",
        ),
    ),
    refusals=(
        Refusal(
            "request_received",
            ("Decoding", "Handling", "Committing", "Final"),
            "one operation answers one request; the next request is a new operation",
        ),
        Refusal(
            "sink_failed",
            ("Received",),
            "the sink is consulted only once the command passed its checks",
        ),
        Refusal(
            "sink_failed",
            ("Handling",),
            "a disk failure while the handler runs is its own commit: the [sink failed] guards "
            "of handler_returned and handler_raised decide",
        ),
        Refusal("sink_failed", ("Final",), "the response is sent: the operation is over"),
        *(
            Refusal(
                name,
                ("Received", "Handling", "Committing", "Final"),
                "the data set is judged once, between the command checks and the handler",
            )
            for name in _DECODING_INPUTS[1:]
        ),
        *handler_refusals("Received"),
        Refusal("handler_returned", ("Decoding",), "the handler runs only on a decoded data set"),
        Refusal("handler_raised", ("Decoding",), "the handler runs only on a decoded data set"),
        Refusal("handler_returned", ("Committing",), "the handler has already answered"),
        Refusal("handler_raised", ("Committing",), "the handler has already answered"),
        Refusal(
            "instance_committed",
            ("Received", "Decoding", "Handling", "Final"),
            "only an instance the handler kept is committed, once",
        ),
    ),
)

SCU_CHART = make_scu_chart("c-store-scu", "C-STORE", "A7xx, A9xx, Cxxx, 0117, 0122, 0124 ...")


# -- where a received data set goes ------------------------------------------------------
class InstanceSink(ABC):
    """A reassembler sink that keeps a C-STORE data set outside memory (file mode).

    The core never opens a file: the application injects what implements this
    (``dimsefsm.transport.file_sink.FileSink`` writes a temporary Part-10 file)
    through the dispatcher's ``open_sink``.  The SCP reads what happened from
    it and turns that into its chart's inputs: a write error while receiving
    (``sink_failed``), a malformed data set (``check`` raises), the commit that
    makes the instance visible (``commit``), or its discard (``abort``).
    """

    write_error: OSError | None
    """The first failed write, kept rather than raised so the association stays in step."""
    path: Path | None
    """The final path once committed, None before."""

    @property
    @abstractmethod
    def temp_path(self) -> Path | None:
        """Where the data set is while the handler decides (the handler's ``event.path``)."""

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def close(self) -> InstanceSink:
        """The transfer ended; returned as the message's ``sink_result``."""

    @abstractmethod
    def abort(self) -> None:
        """Discard whatever was kept (idempotent; nothing happens once committed)."""

    @abstractmethod
    def check(self) -> None:
        """Raise ``DatasetDecodeError`` if the data set was not well formed."""

    @abstractmethod
    def commit(self) -> Path:
        """Make the instance permanent and return where it is; ``OSError`` if that fails."""


SinkOpener = Callable[[StorageConfig, dict[str, Any], str, "str | None"], InstanceSink]
"""Opens the sink of one C-STORE data set: (config, command, transfer syntax, peer AE)."""


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
            from dimsefsm.datasets import decode_dataset  # pydicom loads when a handler asks

            self._dataset = decode_dataset(self.raw, self.transfer_syntax)
        return self._dataset

    @property
    def file_meta(self) -> Dataset:
        """The File Meta Information for saving ``dataset`` as a DICOM file (as pynetdicom's).

        ``ds.file_meta = event.file_meta; ds.save_as(path, enforce_file_format=True)``
        writes the instance as received: its SOP class and instance from the
        request, the transfer syntax of the presentation context.
        """
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import UID

        from dimsefsm.assoc.negotiation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

        meta = FileMetaDataset()
        command = self.request.command
        meta.MediaStorageSOPClassUID = UID(command.get("AffectedSOPClassUID", ""))
        meta.MediaStorageSOPInstanceUID = UID(command.get("AffectedSOPInstanceUID", ""))
        meta.TransferSyntaxUID = UID(self.transfer_syntax)
        meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
        return meta

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
        self.returned: object = None
        self.comment: str | None = None
        self.sent_status: int | None = None
        self.dataset: Dataset | None = None
        self.sink: InstanceSink | None = (
            request.sink_result if isinstance(request.sink_result, InstanceSink) else None
        )
        SCP_CHART.attach(self)

    def run(self) -> int:
        """Answer the request; returns the status that was sent."""
        try:
            SCP_CHART.fire(self, "request_received")
            if self.state == "Decoding":
                SCP_CHART.fire(self, self._judge_data_set())
            if self.state == "Handling":
                self._handle()
            if self.state == "Committing":
                try:
                    self.commit()
                except OSError:
                    SCP_CHART.fire(self, "sink_failed")  # kept in sink.write_error
                else:
                    SCP_CHART.fire(self, "instance_committed")
        finally:
            if self.sink is not None and self.sink.path is None:
                self.sink.abort()
        assert self.sent_status is not None
        return self.sent_status

    # -- inputs: what the data set and the handler turned out to be ----------------------
    def _judge_data_set(self) -> str:
        from dimsefsm.datasets import DatasetDecodeError, check_dataset_bytes, decode_dataset

        """Decode or structure-check the data set: which of the Decoding inputs it is."""
        if self.sink is not None and self.sink.write_error is not None:
            return "sink_failed"
        assert self.context is not None
        raw = self.request.dataset
        try:
            if self.sink is not None:
                self.sink.check()
            elif raw is None:
                raise DatasetDecodeError("no data set")
            elif self.config.mode == "dataset":
                self.dataset = decode_dataset(raw, self.context.transfer_syntax)
            elif self.config.validate:
                check_dataset_bytes(raw, self.context.transfer_syntax)
        except (DatasetDecodeError, OSError) as exc:
            LOG.warning(
                "C-STORE %s: data set cannot be decoded: %s",
                self.request.command["AffectedSOPInstanceUID"],
                exc,
            )
            self.comment = str(exc)
            return "data_set_undecodable"
        return "data_set_decoded"

    def _handle(self) -> None:
        assert self.context is not None
        sink = self.sink
        event = StoreEvent(
            self.assoc,
            self.request,
            self.context,
            self.request.dataset,
            sink.temp_path if sink is not None else None,
            self.dataset,
            self.commit if sink is not None else None,
        )
        self.call_handler(self.handler, event)

    # -- guards ---------------------------------------------------------------------------
    def arguments_missing(self, event: EventData) -> bool:
        cmd = self.request.command
        return not (cmd.get("AffectedSOPClassUID") and cmd.get("AffectedSOPInstanceUID")) or (
            cmd.get("Priority") is None
        )

    def uid_invalid(self, event: EventData) -> bool:
        return self._uid_problem() is not None

    def _uid_problem(self) -> tuple[str, str] | None:
        cmd = self.request.command
        for keyword in ("AffectedSOPInstanceUID", "AffectedSOPClassUID"):
            problem = uid_problem(cmd[keyword])
            if problem is not None:
                return keyword, problem
        return None

    def not_the_context_class(self, event: EventData) -> bool:
        ctx = self.context
        return (
            ctx is None
            or not ctx.as_scp
            or ctx.abstract_syntax != self.request.command["AffectedSOPClassUID"]
        )

    def sink_failed(self, event: EventData) -> bool:
        return self.sink is not None and self.sink.write_error is not None

    def keeps_instance(self, event: EventData) -> bool:
        """File mode, not yet committed, and the handler's status is not a Failure."""
        if self.sink is None or self.sink.path is not None:
            return False
        code = self.returned_status()
        return (
            isinstance(code, int)
            and not isinstance(code, bool)
            and st.category(code) is not st.Category.FAILURE
        )

    # -- actions ----------------------------------------------------------------------------
    def commit(self) -> Path:
        """Rename the file into place and tell ``on_stored``; ``OSError`` if the disk fails."""
        assert self.sink is not None
        if self.sink.path is not None:
            return self.sink.path
        path = self.sink.commit()
        if self.config.on_stored is not None:
            self.config.on_stored(path)
        return path

    def refuse_uid(self, event: EventData) -> None:
        problem = self._uid_problem()
        assert problem is not None
        keyword, text = problem
        LOG.warning("C-STORE refused: %s %r %s", keyword, self.request.command[keyword], text)
        self.comment = f"{keyword} {text}"
        self.respond(event)

    def write_failed(self, event: EventData) -> None:
        assert self.sink is not None and self.sink.write_error is not None
        exc = self.sink.write_error
        reason = exc.strerror or str(exc)
        LOG.error(
            "C-STORE %s: writing to disk failed, temporary file discarded: %s",
            self.request.command.get("AffectedSOPInstanceUID"),
            exc,
        )
        self.comment = f"cannot write the file: {reason}"
        self.respond(event)

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
    from pydicom import Dataset

    from dimsefsm.datasets import convert_dataset_bytes, encode_dataset
    from dimsefsm.part10 import read_dataset_bytes, read_part10_up_to

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
