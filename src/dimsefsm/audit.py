"""An audit trail: one JSON object per line for each association and each operation served.

Bound like any handler (``ae.start_server(..., evt_handlers=trail.handlers())``)
it listens to the notification events of :mod:`dimsefsm.evt`: the
association outcomes (established, rejected, released, aborted) and
``EVT_OPERATION_DONE`` (a request's final response went out).  Each line is a
complete JSON object with stable field names and an ISO 8601 UTC timestamp,
so a log shipper (rsyslog's imfile, fluent-bit, Filebeat) can forward it to an
ATNA audit repository or a SIEM as it is; the fields are listed in
docs/guide.md ("Audit trail").

Lines are written whole under a lock and flushed at once: associations served
by many threads never interleave, and a crash loses no line already reported.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from dimsefsm import evt
from dimsefsm import status as st
from dimsefsm.datasets import decode_dataset
from dimsefsm.dimse.commands import CommandField

LOG = logging.getLogger("dimsefsm.audit")

# Field names and meanings are the interface: add fields, never rename them.
SCHEMA = "dimsefsm.audit/1"
_SERVICES = {
    CommandField.C_ECHO_RQ: "C-ECHO",
    CommandField.C_STORE_RQ: "C-STORE",
    CommandField.C_FIND_RQ: "C-FIND",
    CommandField.C_GET_RQ: "C-GET",
    CommandField.C_MOVE_RQ: "C-MOVE",
}
_KEPT = (st.Category.SUCCESS, st.Category.WARNING)
# Keys of an identifier reported; anything else is summarised as a count.
MAX_KEYS = 32
MAX_VALUE = 256


def utc_now() -> str:
    """ISO 8601 UTC with milliseconds and a Z: ``2026-12-05T06:40:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditTrail:
    """Writes audit records as JSON lines to one stream, thread-safely."""

    def __init__(self, stream: IO[str], *, owned: bool = False) -> None:
        self.stream = stream
        self._owned = owned
        self._lock = threading.Lock()

    @classmethod
    def open(cls, target: str) -> AuditTrail:
        """``"-"`` is standard output; anything else a file opened for appending (0600)."""
        if target == "-":
            return cls(sys.stdout)
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return cls(os.fdopen(fd, "a", encoding="utf-8"), owned=True)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError) as exc:
                LOG.error("audit line not written: %s", exc)

    def close(self) -> None:
        with self._lock:
            if self._owned:
                self.stream.close()

    # -- as handlers ---------------------------------------------------------------
    def handlers(self) -> list[tuple[evt.EventType, Callable[[Any], Any]]]:
        bound: list[tuple[evt.EventType, Callable[[Any], Any]]] = [
            (event, self.on_association) for event in evt.NOTIFICATIONS.values()
        ]
        bound.append((evt.EVT_OPERATION_DONE, self.on_operation))
        return bound

    def on_association(self, event: evt.AssociationEvent) -> None:
        self.write(association_record(event))

    def on_operation(self, event: evt.OperationEvent) -> None:
        self.write(operation_record(event))


def _who(engine: Any) -> dict[str, Any]:
    """The fields every record has: time, which association, who is at the other end."""
    rq = engine.rq
    negotiated = engine.negotiated
    address = engine.peer_address
    return {
        "schema": SCHEMA,
        "time": utc_now(),
        "association": engine.label,
        "calling_ae": rq.calling_ae.strip() if rq is not None else None,
        "called_ae": rq.called_ae.strip() if rq is not None else None,
        "peer_host": address[0] if address else None,
        "peer_port": address[1] if address else None,
        "user": negotiated.user if negotiated is not None else None,
        "tls": engine.peer_certificate is not None,
    }


def association_record(event: evt.AssociationEvent) -> dict[str, Any]:
    engine = event.assoc
    record = _who(engine)
    record["kind"] = "association"
    record["event"] = event.outcome
    record["outcome"] = "failure" if event.outcome in ("rejected", "aborted") else "success"
    record["duration_ms"] = round(event.duration * 1000, 1)
    if event.outcome == "rejected" and engine.rejection is not None:
        rj = engine.rejection
        record["reject"] = {"result": rj.result, "source": rj.source, "reason": rj.reason}
        identity = engine.rq.user_info.user_identity_rq if engine.rq is not None else None
        if identity is not None and identity.identity_type in (1, 2):
            # Who claimed to be whom: the name only, never a passcode.
            record["claimed_user"] = identity.primary.decode("utf-8", "replace")
    if event.outcome == "aborted":
        record["abort"] = {"source": engine.abort_source, "reason": engine.abort_reason}
    return record


def operation_record(event: evt.OperationEvent) -> dict[str, Any]:
    engine = event.assoc
    request = event.request
    command = request.command
    field = int(command.get("CommandField", 0))
    record = _who(engine)
    record["kind"] = "operation"
    record["service"] = _SERVICES.get(field, f"0x{field:04X}")  # type: ignore[call-overload]
    record["message_id"] = command.get("MessageID")
    record["sop_class"] = command.get("AffectedSOPClassUID")
    status = event.response.get("Status")
    if status is None:
        record["status"] = None
        record["outcome"] = "aborted"  # the association ended before a final response
    else:
        record["status"] = f"0x{int(status):04X}"
        record["outcome"] = st.category(int(status)).name.lower()
    record["duration_ms"] = round(event.duration * 1000, 1)
    if field == CommandField.C_STORE_RQ:
        record["sop_instance"] = command.get("AffectedSOPInstanceUID")
        kept = status is not None and st.category(int(status)) in _KEPT
        record["stored"] = 1 if kept else 0
    elif field in (CommandField.C_FIND_RQ, CommandField.C_GET_RQ, CommandField.C_MOVE_RQ):
        record.update(_identifier_summary(engine, request))
    if field == CommandField.C_MOVE_RQ:
        record["move_destination"] = str(command.get("MoveDestination", "")).strip() or None
    if field in (CommandField.C_GET_RQ, CommandField.C_MOVE_RQ):
        for key, name in (
            ("NumberOfCompletedSuboperations", "completed"),
            ("NumberOfFailedSuboperations", "failed"),
            ("NumberOfWarningSuboperations", "warning"),
            ("NumberOfRemainingSuboperations", "remaining"),
        ):
            value = event.response.get(key)
            record[name] = int(value) if isinstance(value, int) else None
    return record


def _identifier_summary(engine: Any, request: Any) -> dict[str, Any]:
    """The level, the non-empty keys and the Study Instance UIDs of a query's identifier."""
    data = request.dataset
    negotiated = engine.negotiated
    context = negotiated.contexts.get(request.context_id) if negotiated is not None else None
    if data is None or context is None:
        return {"level": None, "keys": {}, "study_uids": []}
    try:
        identifier = decode_dataset(data, context.transfer_syntax)
    except Exception as exc:  # the service has refused it already; say so, do not fail
        return {"level": None, "keys": {}, "study_uids": [], "identifier_error": str(exc)}
    keys: dict[str, str] = {}
    omitted = 0
    for element in identifier:
        if element.VR == "SQ" or element.value in (None, "", b""):
            continue
        if element.keyword in ("QueryRetrieveLevel", "SpecificCharacterSet"):
            continue
        if len(keys) >= MAX_KEYS:
            omitted += 1
            continue
        keys[element.keyword or str(element.tag)] = str(element.value)[:MAX_VALUE]
    studies = identifier.get("StudyInstanceUID")
    if studies in (None, ""):
        study_uids: list[str] = []
    elif isinstance(studies, str):
        study_uids = [studies]
    else:
        study_uids = [str(uid) for uid in studies]
    summary: dict[str, Any] = {
        "level": str(identifier.get("QueryRetrieveLevel", "")) or None,
        "keys": keys,
        "study_uids": study_uids,
    }
    if omitted:
        summary["keys_omitted"] = omitted
    return summary


__all__ = ["SCHEMA", "AuditTrail", "association_record", "operation_record", "utc_now"]
