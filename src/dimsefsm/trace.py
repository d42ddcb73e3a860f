"""A per-association transcript: chart transitions, PDUs and DIMSE messages on one logger.

pynetdicom users debugging an interop problem are told to turn on its FSM
debug output and hex-dump every received PDU; dcmtk's ``-d`` prints the
association negotiation.  Here one switch shows all of it, in protocol order
and labelled by association, because every step already is a chart
transition: DEBUG on the ``dimsefsm.trace`` logger (the CLI's ``-d``,
:func:`debug_logger` for library users).  When that level is off each hook
costs one cached ``isEnabledFor`` check.

Lines look like::

    D: dimsefsm.trace: assoc#1 upper-layer Evt1 / AE-1: Sta1 -> Sta4
    D: dimsefsm.trace: assoc#1 PDU out A-ASSOCIATE-RQ 'ECHOSCU' -> 'ANY-SCP', 1 context, ...
    D: dimsefsm.trace: assoc#1 DIMSE out C-ECHO-RQ MessageID=1 context 1
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Mapping
from typing import Any

from dimsefsm.pdu.model import (
    Abort,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    ContextResult,
    PDataTF,
    ReleaseRP,
    ReleaseRQ,
)

TRACE = logging.getLogger("dimsefsm.trace")
_DEBUG = logging.DEBUG
_NUMBERS = itertools.count(1)


def enabled() -> bool:
    return TRACE.isEnabledFor(_DEBUG)


def new_label() -> str:
    """A short name for one association, unique in this process."""
    return f"assoc#{next(_NUMBERS)}"


def label_of(model: Any) -> str:
    """The association a chart model belongs to (its engine names it when it starts)."""
    return str(getattr(model, "trace_label", "") or "-")


def transition(
    model: Any, chart: str, label: str | None, name: str, source: str, dest: str | None
) -> None:
    TRACE.debug("%s %s %s: %s -> %s", label_of(model), chart, label or name, source, dest)


def pdu(label: str, direction: str, pdu: Any) -> None:
    TRACE.debug("%s PDU %s %s", label, direction, describe_pdu(pdu))


def pdata_bytes(label: str, data: bytes | memoryview) -> None:
    """Outgoing P-DATA-TF PDUs already encoded (a message or a streamed data set)."""
    TRACE.debug("%s PDU out P-DATA-TF, %d bytes", label, len(data))


def message(
    label: str, direction: str, context_id: int, command: Mapping[str, Any], size: int | None
) -> None:
    TRACE.debug("%s DIMSE %s %s", label, direction, describe_message(context_id, command, size))


def event(label: str, text: str) -> None:
    TRACE.debug("%s %s", label, text)


# -- summaries ---------------------------------------------------------------------------
def describe_pdu(pdu: Any) -> str:
    if isinstance(pdu, AssociateRQ):
        info = pdu.user_info
        count = len(pdu.presentation_contexts)
        return (
            f"A-ASSOCIATE-RQ {pdu.calling_ae!r} -> {pdu.called_ae!r}, {count} "
            f"context{'s' if count != 1 else ''}, max PDU {info.max_length}, "
            f"implementation {info.implementation_class_uid} "
            f"{info.implementation_version_name or ''}"
        ).rstrip()
    if isinstance(pdu, AssociateAC):
        accepted = sum(1 for c in pdu.presentation_contexts if c.result == ContextResult.ACCEPTANCE)
        return (
            f"A-ASSOCIATE-AC {accepted} of {len(pdu.presentation_contexts)} contexts accepted, "
            f"max PDU {pdu.user_info.max_length}"
        )
    if isinstance(pdu, AssociateRJ):
        return f"A-ASSOCIATE-RJ result {pdu.result} source {pdu.source} reason {pdu.reason}"
    if isinstance(pdu, PDataTF):
        parts = [
            f"context {v.context_id} {'command' if v.is_command else 'data'}"
            f"{' last' if v.is_last else ''} {len(v.data)} bytes"
            for v in pdu.pdvs
        ]
        return f"P-DATA-TF [{'; '.join(parts)}]"
    if isinstance(pdu, ReleaseRQ):
        return "A-RELEASE-RQ"
    if isinstance(pdu, ReleaseRP):
        return "A-RELEASE-RP"
    if isinstance(pdu, Abort):
        return f"A-ABORT source {pdu.source} reason {pdu.reason}"
    return type(pdu).__name__


def describe_message(context_id: int, command: Mapping[str, Any], size: int | None) -> str:
    from dimsefsm.dimse.commands import CommandField

    field = command.get("CommandField")
    if not isinstance(field, int):
        name = "command ?"
    elif field in CommandField._value2member_map_:
        name = CommandField(field).name.replace("_", "-")
    else:
        name = f"command 0x{field:04X}"
    parts = [name]
    for key in ("MessageID", "MessageIDBeingRespondedTo"):
        if key in command:
            parts.append(f"{key}={command[key]}")
    status = command.get("Status")
    if isinstance(status, int):
        parts.append(f"Status=0x{status:04X}")
    for key in ("AffectedSOPInstanceUID", "MoveDestination", "ErrorComment"):
        if command.get(key):
            parts.append(f"{key}={command[key]}")
    remaining = command.get("NumberOfRemainingSuboperations")
    if remaining is not None:
        counts = (
            command.get(k)
            for k in (
                "NumberOfCompletedSuboperations",
                "NumberOfFailedSuboperations",
                "NumberOfWarningSuboperations",
            )
        )
        parts.append(
            "remaining/completed/failed/warning=" + "/".join(map(str, (remaining, *counts)))
        )
    text = " ".join(parts) + f", context {context_id}"
    return text + (f", data set {size} bytes" if size is not None else "")


def debug_logger() -> None:
    """Send the whole transcript (and every other dimsefsm log line) to stderr.

    The counterpart of pynetdicom's ``debug_logger()`` for interactive use and
    bug reports.
    """
    logger = logging.getLogger("dimsefsm")
    logger.setLevel(logging.DEBUG)
    if not any(getattr(h, "_dimsefsm_debug", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname).1s: %(name)s: %(message)s"))
        handler._dimsefsm_debug = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
