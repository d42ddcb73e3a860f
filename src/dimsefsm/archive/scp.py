"""The Query/Retrieve SCP application: storage into a directory, C-FIND/C-GET/C-MOVE over its index.

This is what ``dimsefsm qrscp`` (and ``make run``) serves.  The protocol lives
in the service charts; this module only knows where instances are kept and
how a query becomes matches.

Filing rule (an archive must never answer with another patient's data): a
received instance is examined (``archive.admission``) and then, in one database
transaction (``archive.index.ArchiveIndex.file``), checked against the index,
indexed and renamed into place, so two associations (or two processes
sharing the database) storing the same SOP Instance UID at once cannot both
win.  A re-store of a UID into the same Patient ID, study and
series replaces the stored file (a retransmission); one into another
patient, study or series is refused (0x0117) and the first stays intact.
Hanging Protocol, Color Palette, Defined Procedure Protocol and Implant
Template instances (``qr.flat_models``) have no patient, study or series:
their place is their SOP class, under the same rule, and the FIND, GET and
MOVE classes of their single-level models are served from the same index.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from sqlalchemy.exc import SQLAlchemyError

from dimsefsm import evt
from dimsefsm import status as st
from dimsefsm.ae import AE
from dimsefsm.archive.admission import Refusal, examine
from dimsefsm.archive.commitment import (
    CommitmentDesk,
    CommitmentJournal,
    DeskSettings,
    check_references,
)
from dimsefsm.archive.config import Commitment
from dimsefsm.archive.index import ArchiveIndex, Conflict
from dimsefsm.archive.mpps import (
    MPPS_RETRIEVE,
    ModalityPerformedProcedureStepSCP,
    ProcedureStepRecords,
)
from dimsefsm.archive.ups import UPS_CLASSES, UpsService
from dimsefsm.archive.worklist import WorklistDirectory
from dimsefsm.part10 import remove_stale_temp_files
from dimsefsm.qr.flat_models import FLAT_MODELS
from dimsefsm.qr.models import response_identifier
from dimsefsm.qr.registry import (
    COMPOSITE_INSTANCE_NO_BULK_GET,
    COMPOSITE_INSTANCE_ROOT_GET,
    COMPOSITE_INSTANCE_ROOT_MOVE,
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    PATIENT_STUDY_ONLY_FIND,
    PATIENT_STUDY_ONLY_GET,
    PATIENT_STUDY_ONLY_MOVE,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    UPS_FIND_CLASSES,
    lookup,
)
from dimsefsm.qr.registry import MODALITY_WORKLIST as WORKLIST_MODEL
from dimsefsm.services.commitment import STORAGE_COMMITMENT_PUSH_MODEL
from dimsefsm.services.storage import StorageConfig
from dimsefsm.sop_class import (
    ALL_TRANSFER_SYNTAXES,
    MODALITY_PERFORMED_PROCEDURE_STEP,
    STORAGE_SOP_CLASSES,
    UPS_EVENT,
    UPS_PULL,
    UPS_PUSH,
    UPS_WATCH,
    VERIFICATION,
)

if TYPE_CHECKING:
    from dimsefsm.archive.access import AccessPolicy

LOG = logging.getLogger("dimsefsm.qrscp")

# The single-level models (Hanging Protocol, Color Palette, Defined Procedure Protocol,
# Implant Templates): their instances are filed in the same index, under their own model.
_FLAT = tuple(FLAT_MODELS.values())
FIND_CLASSES = (
    PATIENT_ROOT_FIND,
    STUDY_ROOT_FIND,
    PATIENT_STUDY_ONLY_FIND,
    *(model.find_class for model in _FLAT),
)
MOVE_CLASSES = (
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_MOVE,
    PATIENT_STUDY_ONLY_MOVE,
    COMPOSITE_INSTANCE_ROOT_MOVE,
    *(model.move_class for model in _FLAT),
)
GET_CLASSES = (
    PATIENT_ROOT_GET,
    STUDY_ROOT_GET,
    PATIENT_STUDY_ONLY_GET,
    COMPOSITE_INSTANCE_ROOT_GET,
    COMPOSITE_INSTANCE_NO_BULK_GET,
    *(model.get_class for model in _FLAT),
)


class QueryRetrieveSCP:
    """An AE that stores what it receives and answers queries about it."""

    def __init__(
        self,
        ae_title: str,
        directory: Path,
        destinations: dict[str, tuple[str, int]] | None = None,
        worklist: Path | None = None,
        destination_tls: ssl.SSLContext | None = None,
        fsync: bool = False,
        access: AccessPolicy | None = None,
        database: str | None = None,
        commitment: Commitment | None = None,
    ) -> None:
        """``access``: who may associate and do what; its peers that may receive are the
        C-MOVE destinations unless ``destinations`` is given.  None: anyone, anything.
        ``database``: the index, an SQLAlchemy URL; default a SQLite file under
        ``directory`` (``dicom-store/.dimsefsm/index.sqlite``, see ``archive.location``).
        ``commitment``: how Storage Commitment reports are retried (``archive.commitment``)."""
        self.directory = directory
        self.access = access
        if destinations is None and access is not None:
            destinations = access.destinations
        self.destinations = dict(destinations or {})
        self.destination_tls = destination_tls  # C-MOVE sub-associations over TLS when set
        # --fsync: the index commit is as durable as the file (see archive.db.schema.open_engine).
        self.index = ArchiveIndex(directory, database, durable=fsync)
        self.worklist = WorklistDirectory(worklist) if worklist is not None else None
        # UPS records live in the index database; event reports go to peers that may receive.
        self.ups = UpsService(self.index, ae_title, self.destinations)
        self.ae = AE(ae_title)
        self.ae.add_supported_context(VERIFICATION)
        for uid in STORAGE_SOP_CLASSES:
            # scp_role: a C-GET requestor may act as the Storage SCP for its sub-operations.
            self.ae.add_supported_context(uid, ALL_TRANSFER_SYNTAXES, scp_role=True)
        for uid in FIND_CLASSES + GET_CLASSES + MOVE_CLASSES:
            self.ae.add_supported_context(uid)
        if self.worklist is not None:
            self.ae.add_supported_context(MODALITY_WORKLIST_FIND)
        for uid in UPS_CLASSES:
            self.ae.add_supported_context(uid)
        # Modality Performed Procedure Step: N-CREATE/N-SET, and N-GET on its Retrieve class.
        self.mpps = ModalityPerformedProcedureStepSCP(
            ProcedureStepRecords(lambda: self.index.engine), access
        )
        for uid in (MODALITY_PERFORMED_PROCEDURE_STEP, MPPS_RETRIEVE):
            self.ae.add_supported_context(uid)
        self.ae.add_supported_context(STORAGE_COMMITMENT_PUSH_MODEL)
        commitment = commitment or Commitment()
        self.commitment = CommitmentDesk(
            DeskSettings(
                ae_title,
                self.destinations,
                commitment.retries,
                commitment.retry_interval,
                destination_tls,
                commitment.same_association,
            ),
            check=lambda references: check_references(self.index, references),
            journal=CommitmentJournal.for_storage(directory),
            make_ae=self._report_ae,
        )
        self.ae.prefer_requestor_order = True
        self.ae.storage = StorageConfig(mode="file", directory=directory, fsync=fsync)
        if access is not None:
            self.ae.admission = access.admit

    def load(self) -> int:
        """Open the index (``SchemaError`` if unusable); returns the number of instances.

        No stored file is read: the database holds what queries need.  Only on
        the first start over a storage directory that already holds files are
        they imported (once).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        for path in remove_stale_temp_files(self.directory):
            LOG.warning("removed %s: a temporary file left by a server that was stopped", path)
        self.index.open()
        self.index.import_storage_once()
        count = len(self.index)
        LOG.info("index %s: %d instance(s)", self.index.url, count)
        if self.worklist is not None:
            items = len(self.worklist.items())
            LOG.info("worklist: %d item(s) in %s", items, self.worklist.directory)
        return count

    def close(self) -> None:
        """Send the queued UPS event reports, then return the database connections (every
        change is already committed)."""
        self.ups.close()
        self.index.close()

    def resume_commitments(self, separate: bool) -> tuple[CommitmentDesk, Callable[[], None]]:
        """Report the Storage Commitment requests an earlier run accepted and did not report.

        ``separate``: on a desk and an index of their own, for a parent process whose
        workers are forked later (none may inherit the threads' locks or connections).
        Returns the desk and what ends it.
        """
        if not separate:
            self.commitment.resume()
            return self.commitment, self.commitment.stop
        index = ArchiveIndex(self.directory, self.index.url, durable=self.index.durable)
        desk = self.commitment.copy(lambda references: check_references(index, references))
        desk.resume()

        def stop() -> None:
            desk.stop()
            index.close()

        return desk, stop

    def stop_serving(self) -> None:
        """A worker's end: its Storage Commitment exchanges stop (journaled), then close."""
        self.commitment.stop()
        self.close()

    def _report_ae(self, ae_title: str) -> AE:
        """The AE that sends a Storage Commitment report on its own association: the
        server's timeouts, so a requestor that never answers is bounded alike."""
        ae = AE(ae_title)
        for name in ("connection_timeout", "acse_timeout", "dimse_timeout", "network_timeout"):
            setattr(ae, name, getattr(self.ae, name))
        return ae

    @property
    def handlers(self) -> list[tuple[evt.EventType, Any]]:
        return [
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_C_GET, self.on_get),
            (evt.EVT_C_MOVE, self.on_move),
            *((event, self._normalized(event)) for event in NORMALIZED_EVENTS),
        ]

    def normalized_handlers(self) -> dict[tuple[evt.EventType, str], Any]:
        """(DIMSE-N event, SOP class of the context) -> the handler of that service."""
        return {
            (evt.EVT_N_CREATE, MODALITY_PERFORMED_PROCEDURE_STEP): self.mpps.on_n_create,
            (evt.EVT_N_SET, MODALITY_PERFORMED_PROCEDURE_STEP): self.mpps.on_n_set,
            (evt.EVT_N_GET, MPPS_RETRIEVE): self.mpps.on_n_get,
            # UPS (PS3.4 CC.2): every request names the UPS Push class, on any UPS context.
            (evt.EVT_N_CREATE, UPS_PUSH): self.ups.on_n_create,
            **{(evt.EVT_N_SET, uid): self.ups.on_n_set for uid in (UPS_PUSH, UPS_PULL)},
            **{(evt.EVT_N_GET, uid): self.ups.on_n_get for uid in UPS_N_CONTEXTS},
            **{(evt.EVT_N_ACTION, uid): self.ups.on_n_action for uid in UPS_N_CONTEXTS},
            (evt.EVT_N_ACTION, STORAGE_COMMITMENT_PUSH_MODEL): self._commitment_request,
        }

    def _commitment_request(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        """Storage Commitment's N-ACTION; a listed peer must be one that may store."""
        access = self.access
        return self.commitment.answer(
            event, lambda calling: access is None or access.may(calling, "store")
        )

    def _normalized(self, event_type: evt.EventType) -> Any:
        """One handler per DIMSE-N event, passing each request to its service's handler:
        several services (MPPS, UPS, Storage Commitment) share the N events."""
        table = self.normalized_handlers()

        def route(event: Any) -> Any:
            handler = table.get((event_type, event.context.abstract_syntax))
            if handler is None:  # a context of another class: the operation is not ours
                LOG.warning(
                    "%s on %s: not an operation of that SOP class here",
                    event_type.name,
                    event.context.abstract_syntax,
                )
                return _unrecognized(event_type)
            return handler(event)

        return route

    def on_store(self, event: Any) -> int | Dataset:
        """Examine, check against the index, commit and index one received instance."""
        command = event.request.command
        uid = command["AffectedSOPInstanceUID"]
        calling = event.assoc.negotiated.peer_ae
        if self.access is not None and not self.access.may(calling, "store"):
            # Only on a storage context kept for C-GET: the peer may get, not store.
            LOG.warning("C-STORE %s from %r refused: it may not store", uid, calling)
            return _status(st.NOT_AUTHORIZED, f"{calling.strip()} may not store here")
        try:
            header = dcmread(event.path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError) as exc:
            return self._refuse(uid, Refusal(st.CANNOT_UNDERSTAND, f"unreadable: {exc}"))
        refusal = examine(header, command)
        if refusal is not None:
            return self._refuse(uid, refusal)
        try:
            outcome = self.index.file(header, event.commit)
        except OSError:
            return st.OUT_OF_RESOURCES  # the SCP answers it (write_failed) and logs why
        except SQLAlchemyError as exc:
            LOG.error("C-STORE %s: the index database failed, not stored: %s", uid, exc)
            return st.OUT_OF_RESOURCES
        except ValueError as exc:
            return self._refuse(uid, Refusal(st.CANNOT_UNDERSTAND, f"header not indexable: {exc}"))
        if isinstance(outcome, Conflict):
            if outcome.sop_class_uid is not None:
                LOG.warning(
                    "C-STORE %s refused: already stored as an instance of %s (%s)",
                    uid,
                    outcome.sop_class_uid,
                    outcome.path,
                )
                return _status(
                    st.INVALID_OBJECT_INSTANCE, "SOPInstanceUID already stored as another class"
                )
            LOG.warning(
                "C-STORE %s refused: already stored for patient %r in study %s (%s)",
                uid,
                outcome.patient_id,
                outcome.study_uid,
                outcome.path,
            )
            return _status(
                st.INVALID_OBJECT_INSTANCE,
                "SOPInstanceUID already stored in another patient/study/series",
            )
        return st.SUCCESS

    @staticmethod
    def _refuse(uid: str, refusal: Refusal) -> Dataset:
        LOG.warning("C-STORE %s refused (0x%04X): %s", uid, refusal.status, refusal.comment)
        return _status(refusal.status, refusal.comment)

    def on_find(self, event: Any) -> Iterator[tuple[int, Any]]:
        if event.context.abstract_syntax in UPS_FIND_CLASSES:
            for identifier in self.ups.find(event.identifier):
                if event.is_cancelled:
                    return
                yield st.PENDING, identifier
            return
        sop = lookup(event.context.abstract_syntax)
        assert sop is not None
        request = event.identifier
        if sop.model == WORKLIST_MODEL and self.worklist is not None:
            yield from self._worklist_matches(event)
            return
        flat = sop.model in FLAT_MODELS
        # The "Worklist" search method of the single-level models: no level to echo, and
        # the Retrieve AE Title only when asked for (PS3.4 K.4.1.1.3.2, U.4.1).
        retrieve_ae = None if flat and "RetrieveAETitle" not in request else self.ae.ae_title
        # closing(): a C-CANCEL (or an aborted association) closes the cursor at once.
        with contextlib.closing(self.index.find(request, sop.model)) as matches:
            for match in matches:
                if event.is_cancelled:
                    return
                response = response_identifier(
                    request, match.header, retrieve_ae=retrieve_ae, level_echo=not flat
                )
                for elem in match.computed:
                    response[elem.tag] = elem
                yield st.PENDING, response

    def _worklist_matches(self, event: Any) -> Iterator[tuple[int, Any]]:
        assert self.worklist is not None
        request = event.identifier
        for item in self.worklist.query(request):
            if event.is_cancelled:
                return
            yield st.PENDING, response_identifier(request, item, level_echo=False)

    def instances(self, identifier: Any, sop_class_uid: str) -> list[Path]:
        """Files of every instance under the entities the retrieve identifier names."""
        sop = lookup(sop_class_uid)
        assert sop is not None
        query = Dataset(identifier)
        if "QueryRetrieveLevel" in query:
            query.QueryRetrieveLevel = "IMAGE"  # one record per instance
        return [
            record.path for record in self.index.query(query, sop.model) if record.path is not None
        ]

    def on_get(self, event: Any) -> Iterator[Any]:
        paths = self.instances(event.identifier, event.context.abstract_syntax)
        LOG.info("C-GET: %d instance(s) to send", len(paths))
        yield len(paths)
        for path in paths:
            if event.is_cancelled:
                return
            yield st.PENDING, path

    def on_move(self, event: Any) -> Iterator[Any]:
        destination = self.destinations.get(str(event.move_destination).strip())
        if destination is None:
            # A listed peer that may not receive is answered like an unknown one (0xA801).
            listed = self.access is not None and self.access.is_listed(event.move_destination)
            LOG.warning(
                "C-MOVE to %s destination %r",
                "a peer that may not receive, refused as an unknown" if listed else "unknown",
                event.move_destination,
            )
            yield None, None
            return
        if self.destination_tls is not None:
            host, port = destination
            yield host, port, {"tls_args": (self.destination_tls, host)}
        else:
            yield destination
        paths = self.instances(event.identifier, event.context.abstract_syntax)
        LOG.info("C-MOVE: %d instance(s) to %s", len(paths), event.move_destination)
        yield len(paths)
        for path in paths:
            if event.is_cancelled:
                return
            yield st.PENDING, path


NORMALIZED_EVENTS = (evt.EVT_N_CREATE, evt.EVT_N_SET, evt.EVT_N_GET, evt.EVT_N_ACTION)
UPS_N_CONTEXTS = (UPS_PUSH, UPS_PULL, UPS_WATCH)

NORMALIZED_SERVICES: dict[str, str] = {
    MODALITY_PERFORMED_PROCEDURE_STEP: "yes: N-CREATE, N-SET (steps kept in the index)",
    MPPS_RETRIEVE: "yes: N-GET",
    UPS_PUSH: "yes: N-CREATE, N-GET, N-ACTION Request Cancel (UPS records kept in the index)",
    UPS_PULL: "yes: C-FIND, N-GET, N-SET, N-ACTION Change UPS State",
    UPS_WATCH: "yes: C-FIND, N-GET, N-ACTION Subscribe/Unsubscribe/Suspend, Request Cancel",
    UPS_EVENT: "yes: N-EVENT-REPORT to subscribers that may receive, on a new association",
    STORAGE_COMMITMENT_PUSH_MODEL: "yes: N-ACTION, reports by N-EVENT-REPORT (section 6)",
}
"""The DIMSE-N SOP classes qrscp serves, and how (for the conformance statement)."""


def _unrecognized(event_type: evt.EventType) -> Any:
    status = _status(st.UNRECOGNIZED_OPERATION, "operation not supported on this SOP class")
    return status if event_type is evt.EVT_N_DELETE else (status, None)


def _status(code: int, comment: str) -> Dataset:
    result = Dataset()
    result.Status = code
    result.ErrorComment = comment
    return result
