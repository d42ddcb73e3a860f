"""The Decoding phase every query/retrieve SCP chart shares (C-FIND, C-GET, C-MOVE).

Each chart declares the same four refusals from its Decoding state and runs
the same checks in the same order; only the decode-failure status, the
wording of the model check and the next state differ.  :class:`IdentifierScp`
is the operation side of it: the request, the Decoding checks, the handler's
generator and how a handler failure ends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from pydicom import Dataset
from pydicom.multival import MultiValue

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.datasets import DatasetDecodeError, DatasetTooLarge, decode_dataset
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.fsm import Chart, Transition, transition


def decoding_transitions(
    service: str, decode_failed: int, too_large: int, rejected_when: str, decoded_dest: str
) -> tuple[Transition, ...]:
    return (
        transition(
            "mistyped",
            "mistyped",
            "Decoding",
            "Final",
            status=st.MISTYPED_ARGUMENT,
            action="respond",
            when="The request lacks its Affected SOP Class UID or Priority.",
        ),
        transition(
            "not_supported",
            "not_supported",
            "Decoding",
            "Final",
            status=st.SOP_CLASS_NOT_SUPPORTED,
            action="respond",
            when=f"The SOP class is not the context's, or no {service} handler is bound.",
        ),
        transition(
            "undecodable",
            "undecodable",
            "Decoding",
            "Final",
            status=decode_failed,
            action="respond",
            when="The identifier cannot be decoded in the context's syntax.",
        ),
        transition(
            "identifier_too_large",
            "identifier_too_large",
            "Decoding",
            "Final",
            status=too_large,
            action="respond",
            when="The identifier is longer than the AE's maximum identifier size, as "
            "received (its bytes were dropped as they arrived) or once inflated.",
        ),
        transition(
            "identifier_rejected",
            "identifier_rejected",
            "Decoding",
            "Final",
            status=st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            action="respond",
            when=rejected_when,
        ),
        transition(
            "decoded",
            "decoded",
            "Decoding",
            decoded_dest,
            when="The identifier decodes and fits the information model; the handler is called.",
        ),
    )


_REQUEST_NAMES = {"c-find-scp": "C-FIND", "c-get-scp": "C-GET", "c-move-scp": "C-MOVE"}


def decode_request(op: Any) -> str | None:
    """Run the Decoding checks on ``op``; the refusal trigger, or None once decoded.

    ``op`` is a query/retrieve SCP operation: it has ``request``, ``context``,
    ``handler``, ``check`` and receives ``identifier``, ``comment`` and
    ``offending``.
    """
    cmd = op.request.command
    ctx = op.context
    what = _REQUEST_NAMES.get(op.chart.name, op.chart.name)
    log = logging.getLogger(type(op).__module__.replace("services.", ""))
    if not cmd.get("AffectedSOPClassUID") or cmd.get("Priority") is None:
        return "mistyped"
    if ctx is None or not ctx.as_scp or ctx.abstract_syntax != cmd["AffectedSOPClassUID"]:
        return "not_supported"
    if op.handler is None:
        op.comment = "no handler is bound for this SOP class"
        return "not_supported"
    limit = op.max_identifier_size
    discarded = op.request.discarded_length
    if discarded is not None:
        log.warning(
            "%s identifier of %d bytes refused: the bound is %d bytes", what, discarded, limit
        )
        op.comment = f"identifier of {discarded} bytes exceeds {limit}"
        return "identifier_too_large"
    try:
        if op.request.dataset is None:
            raise DatasetDecodeError("the request has no identifier")
        op.identifier = decode_dataset(op.request.dataset, ctx.transfer_syntax, max_length=limit)
    except DatasetTooLarge as exc:
        log.warning("%s identifier refused: %s", what, exc)
        op.comment = f"identifier exceeds {exc.limit} bytes once inflated"
        return "identifier_too_large"
    except DatasetDecodeError as exc:
        log.warning("%s identifier cannot be decoded: %s", what, exc)
        op.comment = str(exc)
        return "undecodable"
    over = overlong_key(op.identifier)
    if over is not None:
        op.comment, op.offending = over
        log.info("%s identifier rejected: %s", what, op.comment)
        return "identifier_rejected"
    if op.check is not None:
        problem = op.check(ctx.abstract_syntax, op.identifier)
        if problem is not None:
            _, op.comment, op.offending = problem
            log.info("%s identifier rejected: %s", what, op.comment)
            return "identifier_rejected"
    return None


# PS3.5 Table 6.2-1: the most characters one value of a VR may have.  A matching
# key longer than its VR allows is no valid key: refused before any matching runs
# (a 10 MB wildcard value would otherwise reach the matcher).  DA, DT and TM allow
# a range ("from-to", PS3.4 C.2.2.2.5): twice the length and the hyphen.
_MAX_CHARACTERS = {
    "AE": 16,
    "AS": 4,
    "CS": 16,
    "DA": 2 * 8 + 1,
    "DS": 16,
    "DT": 2 * 26 + 1,
    "IS": 12,
    "LO": 64,
    "LT": 10240,
    "SH": 16,
    "ST": 1024,
    "TM": 2 * 16 + 1,
    "UI": 64,
}
_PN_GROUP = 64  # PS3.5 6.2: PN allows 64 characters per component group


def overlong_key(identifier: Dataset) -> tuple[str, tuple[int, ...]] | None:
    """(ErrorComment, offending tag) for the first value longer than its VR allows, or None.

    Values are counted per value (a UID list may hold thousands of UIDs) and, for
    PN, per component group; items of sequences are checked like the top level.
    """
    for element in identifier:
        if element.VR == "SQ":
            for item in element.value or ():
                found = overlong_key(item)
                if found is not None:
                    return found
            continue
        if element.VR not in _MAX_CHARACTERS and element.VR != "PN":
            continue
        value = element.value
        values = value if isinstance(value, (list, tuple, MultiValue)) else (value,)
        for one in values:
            text = "" if one is None else str(one)
            if element.VR == "PN":
                longest, limit = max((len(g) for g in text.split("=")), default=0), _PN_GROUP
            else:
                longest, limit = len(text), _MAX_CHARACTERS[element.VR]
            if longest > limit:
                name = element.keyword or f"({element.tag.group:04X},{element.tag.element:04X})"
                per = " per component group" if element.VR == "PN" else ""
                comment = f"{name}: {longest} characters, {element.VR} allows {limit}{per}"
                return comment, (int(element.tag),)
    return None


IdentifierCheck = Callable[[str, Dataset], tuple[int, str, tuple[int, ...]] | None]


class IdentifierScp:
    """A C-FIND, C-GET or C-MOVE request being answered: what the three operations share."""

    chart: Chart
    state: str
    trace_label = ""  # set by the dispatcher: the association, for the transcript

    def __init__(
        self,
        request: Message,
        context: AcceptedContext | None,
        handler: Callable[[Any], Any] | None,
        assoc: Any,
        check: IdentifierCheck | None = None,
        max_identifier_size: int = MAX_IDENTIFIER_LENGTH,
    ) -> None:
        self.request = request
        self.context = context
        self.handler = handler
        self.assoc = assoc
        self.check = check
        self.max_identifier_size = max_identifier_size
        self.cancel_requested = False
        self.generator: Iterator[Any] | None = None
        self.identifier: Dataset | None = None
        self.reply_status: int | None = None
        self.comment: str | None = None
        self.offending: tuple[int, ...] | None = None

    @property
    def done(self) -> bool:
        return self.state in self.chart.final

    def start(self) -> None:
        """Decoding: refuse the request, or call the handler with its event."""
        refusal = decode_request(self)
        if refusal is not None:
            return self._fire(refusal)
        assert self.context is not None and self.handler is not None
        self._fire("decoded")
        try:
            self.generator = iter(self.handler(self.make_event(self.context)))
        except Exception as exc:
            self._raised(exc)

    def make_event(self, ctx: AcceptedContext) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        """Close the handler's generator (its ``finally`` runs), whatever ended the operation."""
        generator, self.generator = self.generator, None
        if generator is not None and hasattr(generator, "close"):
            generator.close()

    def _raised(self, exc: Exception) -> None:
        logging.getLogger(type(self).__module__.replace("services.", "")).exception(
            "%s handler raised", _REQUEST_NAMES.get(self.chart.name, self.chart.name)
        )
        self.comment = f"handler raised {type(exc).__name__}: {exc}"
        self._fire("handler_raised")
        self.close()

    def _fire(self, trigger: str) -> None:
        self.chart.fire(self, trigger)
