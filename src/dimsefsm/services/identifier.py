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
from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.datasets import DatasetDecodeError, DatasetTooLarge, decode_dataset
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.fsm import Chart, Refusal, Transition, transition

_REFUSALS = (
    "mistyped",
    "not_supported",
    "undecodable",
    "identifier_too_large",
    "identifier_rejected",
)


def decoding_transitions(
    service: str, decode_failed: int, too_large: int, rejected_when: str, decoded_dest: str
) -> tuple[Transition, ...]:
    """The Decoding state: ``request_decoded``, or ``request_refused`` with its reason as guard.

    :func:`decode_request` converts the request into one of the two inputs and
    records why it refused; the guards (``refused_mistyped`` ...) choose the
    status from that reason.
    """

    def refused(name: str, status: int, when: str, last: bool = False) -> Transition:
        # The last reason is the else: the request was refused and no other reason holds.
        return transition(
            name,
            "request_refused",
            "Decoding",
            "Final",
            guard=None if last else f"refused_{name}",
            status=status,
            action="respond",
            label="request_refused [else]"
            if last
            else f"request_refused [{name.replace('_', ' ')}]",
            when=when,
        )

    return (
        refused(
            "mistyped",
            st.MISTYPED_ARGUMENT,
            "The request lacks its Affected SOP Class UID or Priority.",
        ),
        refused(
            "not_supported",
            st.SOP_CLASS_NOT_SUPPORTED,
            f"The SOP class is not the context's, or no {service} handler is bound.",
        ),
        refused(
            "undecodable",
            decode_failed,
            "The identifier cannot be decoded in the context's syntax.",
        ),
        refused(
            "identifier_too_large",
            too_large,
            "The identifier is longer than the AE's maximum identifier size, as "
            "received (its bytes were dropped as they arrived) or once inflated.",
        ),
        refused(
            "identifier_rejected", st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, rejected_when, last=True
        ),
        transition(
            "decoded",
            "request_decoded",
            "Decoding",
            decoded_dest,
            label="request_decoded",
            when="The identifier decodes and fits the information model; the handler is called.",
        ),
    )


def complete_table(
    states: tuple[str, ...],
    transitions: tuple[Transition, ...],
    reasons: dict[str, str],
    specific: dict[tuple[str, str], str] | None = None,
) -> tuple[Refusal, ...]:
    """The refusals that make a chart total: every (state, input) no transition takes.

    ``reasons`` says per state why an input undeclared there cannot arrive or
    means nothing (a final state: the operation is over); ``specific`` overrides
    it for single (state, input) pairs whose reason is their own.
    """
    triggers: dict[str, None] = {}
    for t in transitions:
        triggers.setdefault(t.trigger, None)
    taken = {(s, t.trigger) for t in transitions for s in t.source}
    specific = specific or {}
    grouped: dict[tuple[str, str], list[str]] = {}
    for trigger in triggers:
        for state in states:
            if (state, trigger) in taken:
                continue
            reason = specific.get((state, trigger)) or reasons[state]
            grouped.setdefault((trigger, reason), []).append(state)
    return tuple(Refusal(trigger, tuple(s), reason) for (trigger, reason), s in grouped.items())


def declared(chart: Chart, event: EventData) -> Transition:
    """The declared transition ``event`` is running (for its status)."""
    table = _DECLARED.get(chart.name)
    if table is None:
        table = _DECLARED[chart.name] = {}
        for t in chart.transitions:
            for s in t.source:
                table[(t.trigger, s, t.guard or t.unless)] = t
    running = event.transition
    assert running is not None
    guard = running.conditions[0].func if running.conditions else None
    return table[(event.event.name, running.source, guard)]


_DECLARED: dict[str, dict[tuple[str, str, Any], Transition]] = {}


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
    """A C-FIND, C-GET or C-MOVE request being answered: what the three operations share.

    The operation converts what happens into its chart's inputs: the request
    (``request_decoded`` / ``request_refused``), each value the handler yields,
    the handler ending or raising, a C-CANCEL (``cancel_received``) and the
    association ending under it (``association_ended``).  The chart's guards
    decide what each input means; its actions count and respond.
    """

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
        self.refusal: str | None = None
        self.reply_status: int | None = None
        self.comment: str | None = None
        self.offending: tuple[int, ...] | None = None

    @property
    def done(self) -> bool:
        return self.state in self.chart.final

    def start(self) -> None:
        """Decoding: refuse the request, or call the handler with its event."""
        self.refusal = self.refuse()
        if self.refusal is not None:
            self._fire("request_refused")
            return
        assert self.context is not None and self.handler is not None
        self._fire("request_decoded")
        try:
            self.generator = iter(self.handler(self.make_event(self.context)))
        except Exception as exc:
            self._raised(exc)

    def refuse(self) -> str | None:
        """Why the request is refused at decoding, or None (the Decoding checks)."""
        return decode_request(self)

    # -- the guards of request_refused: the reason decode_request gave --------------
    def refused_mistyped(self, _: EventData) -> bool:
        return self.refusal == "mistyped"

    def refused_not_supported(self, _: EventData) -> bool:
        return self.refusal == "not_supported"

    def refused_undecodable(self, _: EventData) -> bool:
        return self.refusal == "undecodable"

    def refused_identifier_too_large(self, _: EventData) -> bool:
        return self.refusal == "identifier_too_large"

    def make_event(self, ctx: AcceptedContext) -> Any:
        raise NotImplementedError

    def cancel(self) -> None:
        """A C-CANCEL for this operation arrived: the chart's ``cancel_received``."""
        logging.getLogger(type(self).__module__.replace("services.", "")).info(
            "%s: C-CANCEL received", _REQUEST_NAMES.get(self.chart.name, self.chart.name)
        )
        self.cancel_requested = True
        self._fire("cancel_received")

    def cancelled(self, event: EventData) -> None:
        """The C-CANCEL ends the operation: the Cancel response, then the handler is closed."""
        self.respond(event)
        self.close()

    def respond(self, event: EventData) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Close the handler's generator (its ``finally`` runs), whatever ended the operation.

        Called by the engine when the association ends under a running operation:
        that is the chart's ``association_ended`` input.
        """
        if self.state not in self.chart.final and self.state != "Decoding":
            self._fire("association_ended")
        generator, self.generator = self.generator, None
        if generator is not None and hasattr(generator, "close"):
            generator.close()

    def ended_by_association(self, _: EventData) -> None:
        """The association ended under the operation: nothing more can be answered."""
        logging.getLogger(type(self).__module__.replace("services.", "")).info(
            "%s ended by the association", _REQUEST_NAMES.get(self.chart.name, self.chart.name)
        )

    def _raised(self, exc: Exception) -> None:
        logging.getLogger(type(self).__module__.replace("services.", "")).exception(
            "%s handler raised", _REQUEST_NAMES.get(self.chart.name, self.chart.name)
        )
        self.comment = f"handler raised {type(exc).__name__}: {exc}"
        self._fire("handler_raised")
        self.close()

    def _fire(self, trigger: str, *args: Any) -> None:
        self.chart.fire(self, trigger, *args)


def read_status(item: object) -> tuple[int | None, object, str | None]:
    """A handler's ``(status, payload)`` yield as (status code, payload, problem).

    The problem is ``"not_a_pair"``, ``"no_status_element"`` or
    ``"invalid_status"`` when the yield is not a usable pair; the status may
    then be None.  A status Dataset's ErrorComment is not read here.
    """
    if not isinstance(item, tuple) or len(item) != 2:
        return None, None, "not_a_pair"
    status, payload = item
    if isinstance(status, Dataset):
        if "Status" not in status:
            return None, payload, "no_status_element"
        status = status.Status
    if isinstance(status, bool) or not isinstance(status, int):
        return None, payload, "invalid_status"
    return status, payload, None


def status_comment(item: object) -> str | None:
    """The ErrorComment of a yielded status Dataset, if any."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], Dataset):
        comment = item[0].get("ErrorComment")
        return str(comment) if comment else None
    return None
