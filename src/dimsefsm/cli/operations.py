"""qrscp's log line for how each C-GET and C-MOVE ended.

An administrator asked "did the viewer's retrieve work?" reads the log, not the
audit trail: one line per retrieve with its peer, destination, final status and
sub-operation counts, at INFO (a failure or an abort at WARNING).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dimsefsm import evt
from dimsefsm.dimse.commands import CommandField
from dimsefsm.status import Category, Service, category, lookup

LOG = logging.getLogger("dimsefsm.qrscp")

_SERVICES = {
    CommandField.C_GET_RQ: ("C-GET", Service.QR_GET),
    CommandField.C_MOVE_RQ: ("C-MOVE", Service.QR_MOVE),
}


def retrieve_outcome(event: evt.OperationEvent) -> str | None:
    """The sentence for a finished C-GET or C-MOVE; None for any other operation."""
    command = event.request.command
    known = _SERVICES.get(int(command.get("CommandField", 0)))  # type: ignore[call-overload]
    if known is None:
        return None
    name, service = known
    rq = getattr(event.assoc, "rq", None)
    peer = rq.calling_ae.strip() if rq is not None else "?"
    where = f"from {peer!r}"
    if name == "C-MOVE":
        where += f" to {str(command.get('MoveDestination', '')).strip()!r}"
    took = f"{event.duration:.1f} s"
    status = event.response.get("Status")
    if status is None:
        return f"{name} {where} ended without a final response: the association ended ({took})"
    code = int(status)
    kind, text = lookup(code, service)
    described = f"0x{code:04X} {kind.value}" + ("" if text == kind.value else f": {text}")
    counts = [
        int(event.response.get(key) or 0)
        for key in (
            "NumberOfCompletedSuboperations",
            "NumberOfFailedSuboperations",
            "NumberOfWarningSuboperations",
        )
    ]
    return (
        f"{name} {where} ended: {described}; {counts[0]} completed, {counts[1]} failed, "
        f"{counts[2]} warning ({took})"
    )


def log_retrieve_outcome(event: evt.OperationEvent) -> None:
    line = retrieve_outcome(event)
    if line is None:
        return
    status = event.response.get("Status")
    ok = status is not None and category(int(status)) in (Category.SUCCESS, Category.CANCEL)
    LOG.log(logging.INFO if ok else logging.WARNING, "%s", line)


def retrieve_log_handlers() -> list[tuple[evt.EventType, Callable[[Any], Any]]]:
    """Bind with the server's other handlers."""
    return [(evt.EVT_OPERATION_DONE, log_retrieve_outcome)]
