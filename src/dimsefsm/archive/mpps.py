"""The archive's Modality Performed Procedure Step SCP: records in the index database.

Each N-CREATE, N-SET or N-GET is one database transaction: the step's row is
read (locked for the transaction on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
serialises writers), a :class:`~dimsefsm.services.mpps.ProcedureStep` is put
in the state the row holds, the chart decides, and the row is written only
when the outcome changed the step, in the same transaction.  So a refused
request changes nothing, two associations completing one step at once are
answered one after the other (the second finds it COMPLETED), and the steps
survive a restart: the database is the only place they live.

Who may: a peer listed in ``[peers]`` needs the ``store`` permission (the
modality that stores its images reports its procedure steps); others are
answered 0x0124 Not authorised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from pydicom import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from dimsefsm import status as st
from dimsefsm.archive.db.schema import WRITE_OPTION, mpps
from dimsefsm.datasets import decode_dataset, encode_dataset
from dimsefsm.services import mpps_rules as rules
from dimsefsm.services.mpps import MPPS_RETRIEVE_SOP_CLASS, Outcome, ProcedureStep

MPPS_RETRIEVE: Final = MPPS_RETRIEVE_SOP_CLASS

if TYPE_CHECKING:
    from dimsefsm.archive.access import AccessPolicy

LOG = logging.getLogger("dimsefsm.mpps")

_ATTEMPTS: Final = 3
"""An N-CREATE racing another of the same UID: the loser's insert fails, it looks again."""


class ProcedureStepRecords:
    """The steps kept in the index database; thread-safe (one connection per request)."""

    def __init__(self, engine: Callable[[], Engine]) -> None:
        """``engine``: the index's engine, asked for at each request (opened lazily)."""
        self._engine = engine

    def create(self, uid: str, attributes: Dataset) -> Outcome:
        """N-CREATE of ``uid`` with ``attributes``."""
        return self._run(uid, lambda step: step.receive_create(attributes), write=True)

    def set(self, uid: str, modification: Dataset) -> Outcome:
        """N-SET of ``uid`` with ``modification``."""
        return self._run(uid, lambda step: step.receive_set(modification), write=True)

    def get(self, uid: str, tags: Iterable[int] = ()) -> Outcome:
        """N-GET of ``uid``: the attributes named by ``tags`` (all of them when none)."""
        wanted = tuple(tags)
        return self._run(uid, lambda step: step.receive_get(wanted), write=False)

    def status_of(self, uid: str) -> str | None:
        """The stored Performed Procedure Step Status of ``uid`` (None: no such step)."""
        with self._engine().connect() as connection:
            return connection.execute(
                select(mpps.c.status).where(mpps.c.sop_uid == uid)
            ).scalar_one_or_none()

    def _run(self, uid: str, receive: Callable[[ProcedureStep], Outcome], write: bool) -> Outcome:
        for attempt in range(_ATTEMPTS):
            try:
                with self._engine().connect() as connection:
                    if write:
                        connection = connection.execution_options(**{WRITE_OPTION: True})
                    with connection.begin():
                        return self._in_transaction(connection, uid, receive)
            except IntegrityError:
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _in_transaction(
        self, connection: Connection, uid: str, receive: Callable[[ProcedureStep], Outcome]
    ) -> Outcome:
        query = select(mpps.c.pk, mpps.c.attributes).where(mpps.c.sop_uid == uid)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        row = connection.execute(query).first()
        stored = None if row is None else _stored(row.attributes)
        step = ProcedureStep(uid, stored)
        outcome = receive(step)
        if outcome.changed:
            assert step.attributes is not None
            values = _row_values(step.attributes)
            if row is None:
                connection.execute(
                    mpps.insert().values(sop_uid=uid, created=values["updated"], **values)
                )
            else:
                connection.execute(mpps.update().where(mpps.c.pk == row.pk).values(**values))
        return outcome


class UnreadableStep(RuntimeError):
    """A stored step's attributes do not decode (a damaged row): the request fails 0x0110."""


def _stored(blob: bytes) -> Dataset:
    """A step's attributes as stored; values convert when read (most are only copied)."""
    try:
        return decode_dataset(blob, ExplicitVRLittleEndian, convert_values=False)
    except ValueError as exc:
        raise UnreadableStep(f"the stored step does not decode: {exc}") from exc


def _row_values(attributes: Dataset) -> dict[str, Any]:
    """The columns of a step's row; ``ValueError`` when its attributes cannot be encoded."""
    scheduled = attributes.get("ScheduledStepAttributesSequence") or []
    study_uid = scheduled[0].get("StudyInstanceUID") if len(scheduled) else None
    try:
        blob = encode_dataset(attributes, ExplicitVRLittleEndian)
    except (TypeError, OverflowError, KeyError, OSError, ValueError) as exc:
        # pydicom's writer reports a value its VR cannot hold as OSError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"attributes not encodable: {first}") from exc
    return {
        "status": rules.status_of(attributes) or rules.IN_PROGRESS,
        "patient_id": _text(attributes.get("PatientID")),
        "study_uid": _text(study_uid),
        "updated": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "attributes": blob,
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


class ModalityPerformedProcedureStepSCP:
    """The N-CREATE / N-SET / N-GET handlers of qrscp's MPPS SCP."""

    def __init__(self, records: ProcedureStepRecords, access: AccessPolicy | None = None) -> None:
        self.records = records
        self.access = access

    def _refused(self, event: Any, operation: str) -> Dataset | None:
        calling = event.assoc.negotiated.peer_ae
        if self.access is None or self.access.may(calling, "store"):
            return None
        LOG.warning("MPPS %s from %r refused: it may not store", operation, calling)
        return _failure(st.NOT_AUTHORIZED, f"{str(calling).strip()} may not report procedure steps")

    def on_n_create(self, event: Any) -> tuple[Dataset, Dataset | None]:
        refused = self._refused(event, "N-CREATE")
        if refused is not None:
            return refused, None
        uid = _command(event, "AffectedSOPInstanceUID")
        assigned = not uid
        if assigned:
            uid = generate_uid()  # PS3.7 10.1.5.1.4: the SCP assigns it and says which
        attributes = event.attribute_list if event.attribute_list is not None else Dataset()
        outcome = self._apply("N-CREATE", uid, lambda: self.records.create(uid, attributes))
        if outcome.status != st.SUCCESS or not assigned:
            # The response's Attribute List is optional (PS3.7 10.1.5): the SCU sent the
            # attributes, an N-GET returns them; echoing them costs an encode and a decode.
            return outcome.status_dataset(), None
        named = Dataset()
        named.SOPInstanceUID = uid  # the core names it in the response's command
        return outcome.status_dataset(), named

    def on_n_set(self, event: Any) -> tuple[Dataset, Dataset | None]:
        refused = self._refused(event, "N-SET")
        if refused is not None:
            return refused, None
        uid = _command(event, "RequestedSOPInstanceUID")
        modification = event.modification_list if event.modification_list is not None else Dataset()
        outcome = self._apply("N-SET", uid, lambda: self.records.set(uid, modification))
        # No Attribute List in the response (optional, PS3.7 10.1.3): the SCU knows
        # what it set, an N-GET returns the step.
        return outcome.status_dataset(), None

    def on_n_get(self, event: Any) -> tuple[Dataset, Dataset | None]:
        uid = _command(event, "RequestedSOPInstanceUID")
        tags = list(event.attribute_identifiers or ())
        outcome = self._apply("N-GET", uid, lambda: self.records.get(uid, tags))
        if outcome.status != st.SUCCESS:
            return outcome.status_dataset(), None
        return outcome.status_dataset(), outcome.attributes

    @staticmethod
    def _apply(operation: str, uid: str, run: Callable[[], Outcome]) -> Outcome:
        try:
            outcome = run()
        except SQLAlchemyError as exc:
            LOG.error(
                "MPPS %s %s: the index database failed, nothing changed: %s", operation, uid, exc
            )
            return Outcome(st.PROCESSING_FAILURE, "the archive's database failed; nothing changed")
        except UnreadableStep as exc:
            LOG.error("MPPS %s %s: %s; nothing changed", operation, uid, exc)
            return Outcome(st.PROCESSING_FAILURE, "the stored step is unreadable; nothing changed")
        except ValueError as exc:
            LOG.warning("MPPS %s %s refused: %s", operation, uid, exc)
            return Outcome(st.INVALID_ATTRIBUTE_VALUE, str(exc))
        if outcome.status == st.SUCCESS:
            LOG.info("MPPS %s %s: %s", operation, uid, _state_text(outcome))
        else:
            detail = f" ({outcome.detail})" if outcome.detail else ""
            LOG.warning(
                "MPPS %s %s answered 0x%04X: %s%s",
                operation,
                uid,
                outcome.status,
                outcome.comment,
                detail,
            )
        return outcome


def _state_text(outcome: Outcome) -> str:
    if outcome.attributes is None or not outcome.changed:
        return "answered"
    return rules.status_of(outcome.attributes) or rules.IN_PROGRESS


def _command(event: Any, keyword: str) -> str:
    """A UID of the request's command set ("" when absent)."""
    value = event.request.command.get(keyword)
    return str(value).strip("\0 ") if value else ""


def _failure(code: int, comment: str) -> Dataset:
    result = Dataset()
    result.Status = code
    result.ErrorComment = comment
    return result
