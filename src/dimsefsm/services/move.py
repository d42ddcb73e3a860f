"""C-MOVE SCP and SCU: the retrieve chart with a destination and a sub-association.

The handler (pynetdicom's protocol) yields the destination ``(addr, port)``
(optionally a third element with association options), then the number of
sub-operations, then ``(status, dataset)`` pairs.  Once the count is known the
operation reads the announced instances ahead and asks, as an effect, for a
sub-association to the destination proposing exactly the storage contexts
they need (their own transfer syntax first, native fallbacks for
uncompressed ones); each instance then goes as a C-STORE (another effect)
carrying the Move Originator AE title and Message ID.  The transport carries
the effects out (:mod:`dimsefsm.transport.sub_association`) and reports their
outcomes back as the chart's inputs: ``sub_assoc_accepted``,
``sub_assoc_rejected``, ``sub_assoc_aborted``, ``store_response``,
``store_not_sent``.  Nothing here opens a connection or a file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from transitions import EventData

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.dimse.commands import move_rsp
from dimsefsm.dimse.message import Message
from dimsefsm.services.find import QueryEvent
from dimsefsm.services.multi_response import MultiResponseScu, make_multi_scu_chart
from dimsefsm.services.retrieve import (
    MOVE_CODES,
    RetrieveScp,
    is_instance,
    retrieve_chart,
)
from dimsefsm.sop_class import DEFAULT_TRANSFER_SYNTAXES, UNCOMPRESSED_TRANSFER_SYNTAXES

LOG = logging.getLogger("dimsefsm.move")

# Instances read ahead to choose the sub-association's contexts; later ones whose
# context is missing fail on their own (no_context) instead of the whole study
# sitting in memory before the first C-STORE.
READ_AHEAD = 64
MAX_CONTEXTS = 128  # PS3.8: presentation context IDs are odd numbers 1..255

SCP_CHART = retrieve_chart(
    "c-move-scp",
    MOVE_CODES,
    move=True,
    doc="C-MOVE SCP: destination, count, then one C-STORE on the sub-association per instance.",
)


# -- effects: what the operation asks the transport to do ------------------------------------
@dataclass(frozen=True, eq=False)
class OpenSubAssociation:
    """Open the sub-association; report ``sub_assoc_accepted/rejected/aborted`` to ``op``."""

    op: MoveScp
    address: tuple[str, int]
    calling_ae: str
    called_ae: str
    contexts: tuple[tuple[str, tuple[str, ...]], ...]
    tls_args: Any = None


@dataclass(frozen=True, eq=False)
class SendSubStore:
    """Send ``item`` as a C-STORE on the sub-association; report its outcome to ``op``.

    ``op.store_sent()`` once the request is on the wire (the Pending response of
    the previous sub-operation goes out then, while the destination stores).
    """

    op: MoveScp
    item: object
    originator_aet: str
    originator_id: int | None


@dataclass(frozen=True, eq=False)
class CloseSubAssociation:
    """Release (the operation ended) or abort (the requestor went away) the sub-association."""

    op: MoveScp
    release: bool


SubAssociationEffect = OpenSubAssociation | SendSubStore | CloseSubAssociation
SUB_ASSOCIATION_EFFECTS = (OpenSubAssociation, SendSubStore, CloseSubAssociation)

SCU_CHART = make_multi_scu_chart(
    "c-move-scu",
    "C-MOVE",
    "Retrieving",
    pending_warning=False,
    failures="0xA701/0xA702 out of resources, 0xA801 destination unknown, 0xA900, 0xCxxx",
)


class MoveScp(RetrieveScp):
    """One C-MOVE-RQ being answered; the sub-association is the transport's, asked by effects."""

    chart = SCP_CHART
    codes = MOVE_CODES
    response_command = staticmethod(move_rsp)
    status_table = st.QR_MOVE_STATUSES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.destination: tuple[str, int] | None = None
        self.options: dict[str, Any] = {}
        self.read_ahead: list[Any] | None = None
        self.read_error: Exception | None = None
        self.proposed: tuple[tuple[str, tuple[str, ...]], ...] = ()
        self.accepted: list[AcceptedContext] | None = None  # None: no sub-association open
        self.destination_lost = False
        self.held: Message | None = None  # the last Pending, until the next C-STORE is out

    def refuse(self) -> str | None:
        if not self.request.command.get("MoveDestination"):
            return "mistyped"
        return super().refuse()

    def make_event(self, ctx: Any) -> Any:
        assert self.identifier is not None
        from dimsefsm import evt

        event = QueryEvent(self.assoc, self.request, ctx, self.identifier, self, evt.EVT_C_MOVE)
        event.move_destination = self.request.command.get("MoveDestination", "")  # type: ignore[attr-defined]
        return event

    def input_for(self, value: object) -> str:
        if self.state == "ResolvingDestination":
            return "destination_yielded"
        return super().input_for(value)

    @property
    def called_ae(self) -> str:
        return str(self.request.command.get("MoveDestination", "ANY-SCP"))

    # -- guards: the destination -------------------------------------------------------------
    def destination_is_unknown(self, _: EventData) -> bool:
        first = self.yielded
        if isinstance(first, tuple) and len(first) in (2, 3) and first[0] is None:
            self.comment = f"unknown move destination {self.called_ae!r}"
            return True
        return False

    def destination_is_invalid(self, _: EventData) -> bool:
        first = self.yielded
        ok = isinstance(first, tuple) and len(first) in (2, 3)
        addr, port = (first[0], first[1]) if ok else (None, None)
        if (
            not isinstance(addr, str)
            or isinstance(port, bool)
            or not isinstance(port, int)
            or not (0 < port < 65536)
        ):
            self.comment = f"invalid destination {first!r}"
            return True
        return False

    def destination_set(self, _: EventData) -> None:
        first = self.yielded
        self.destination = (first[0], first[1])
        if len(first) == 3 and isinstance(first[2], dict):
            self.options = dict(first[2])

    # -- the count: read ahead, then ask for the sub-association -------------------------------
    def nothing_to_propose(self, _: EventData) -> bool:
        """No instance read ahead names a SOP class (or none was announced): no sub-association."""
        self._read_ahead(min(self.yielded, READ_AHEAD))
        return not self.proposed

    def _read_ahead(self, count: int) -> None:
        """The first announced items, so the sub-association can propose what they need."""
        assert self.generator is not None
        items: list[Any] = []
        try:
            while len(items) < count:
                item = next(self.generator)
                items.append(item)
                if not _is_pending(item):
                    break
        except StopIteration:
            pass
        except Exception as exc:
            self.read_error = exc
        self.read_ahead = items
        self.generator = _replay(items, self.read_error, self.generator)
        self.proposed = self._contexts_for(items)

    def _contexts_for(self, items: list[Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Exactly the (SOP class, syntaxes) the instances need; native fallbacks if native."""
        wanted: dict[tuple[str, tuple[str, ...]], None] = {}
        for item in items:
            if not _is_pending(item) or not is_instance(item[1]):
                continue
            identity = self.instances.identity(item[1])
            sop_class, ts = identity.sop_class_uid, identity.transfer_syntax
            if sop_class is None:
                continue
            if not ts or ts in UNCOMPRESSED_TRANSFER_SYNTAXES:
                first = (ts,) if ts else ()
                syntaxes = (*first, *(t for t in DEFAULT_TRANSFER_SYNTAXES if t != ts))
            else:
                syntaxes = (ts,)
            wanted.setdefault((sop_class, syntaxes), None)
        return tuple(wanted)[:MAX_CONTEXTS]

    def open_sub_association(self, event: EventData) -> None:
        self.counted(event)
        assert self.destination is not None
        calling = str(self.options.get("ae_title") or self.engine.negotiated.local_ae)
        self._effect(
            OpenSubAssociation(
                self,
                self.destination,
                calling,
                self.called_ae,
                self.proposed,
                self.options.get("tls_args"),
            )
        )

    # -- inputs from the transport: the sub-association ---------------------------------------
    def sub_assoc_accepted(self, contexts: list[AcceptedContext]) -> None:
        """The destination accepted; ``contexts`` are the ones it accepted."""
        self._fire("sub_assoc_accepted", contexts)

    def sub_assoc_rejected(self, reason: str) -> None:
        LOG.warning("C-MOVE destination %s at %s:%d: %s", self.called_ae, *self._where(), reason)
        self.comment = f"destination {self.called_ae} rejected"
        self._input("sub_assoc_rejected")

    def sub_assoc_aborted(self, reason: str) -> None:
        """The connection failed: before the destination answered, or under a C-STORE."""
        if self.state == "Connecting":
            LOG.warning(
                "C-MOVE destination %s at %s:%d: %s", self.called_ae, *self._where(), reason
            )
            self.comment = f"destination {self.called_ae} unreachable"
        elif not self.destination_lost:
            LOG.warning(
                "C-MOVE destination went away after %d completed: %s", self.completed, reason
            )
        self.destination_lost = True
        self._input("sub_assoc_aborted")

    def store_not_sent(self, reason: str) -> None:
        """The instance could not become a C-STORE on the sub-association (nothing went out)."""
        LOG.warning(
            "C-MOVE sub-operation %d of %d failed before sending %s: %s",
            self.delivered,
            self.announced,
            self.item_uid() or self.item,
            reason,
        )
        self._input("store_not_sent")

    def store_sent(self) -> None:
        """The C-STORE is on the wire: the held Pending response may go now."""
        self._release_held()

    def _input(self, trigger: str) -> None:
        self._fire(trigger)
        if self.done:
            self.close()

    def _where(self) -> tuple[str, int]:
        return self.destination or ("?", 0)

    # -- guards: an instance -------------------------------------------------------------------
    def sub_association_lost(self, _: EventData) -> bool:
        return self.destination_lost

    def can_send(self) -> bool:
        return self.accepted is not None and not self.destination_lost

    def lacks_storage_context(self, _: EventData) -> bool:
        """The C-STORE could not go because the destination took no context for its class.

        Read only once the C-STORE failed: the sub-operations that go out never pay for it.
        """
        sop_class = self.instances.identity(self.item).sop_class_uid
        return sop_class is not None and not self.context_for(sop_class)

    def storage_contexts(self) -> list[AcceptedContext]:
        """The sub-association's contexts: the C-STOREs go to the destination."""
        return self.accepted or []

    # -- actions -------------------------------------------------------------------------------
    def keep_accepted_contexts(self, event: EventData) -> None:
        self.accepted = list(cast(Any, event.args)[0])

    def fail_all(self, event: EventData) -> None:
        """The destination cannot be used: every announced sub-operation failed."""
        self.failed = self.announced
        self.delivered = self.announced
        self.failed_uids = [
            uid
            for uid in (
                self.instances.identity(i[1]).sop_instance_uid
                for i in self.read_ahead or ()
                if _is_pending(i) and is_instance(i[1])
            )
            if uid
        ]
        self.respond(event)

    def send_sub_operation(self, event: EventData) -> None:
        self.delivered += 1
        self.storing_uid = None  # read from the instance only if it fails
        self._effect(
            SendSubStore(
                self,
                self.item,
                self.engine.negotiated.peer_ae,
                self.request.command.get("MessageID"),
            )
        )

    def count_lost(self, event: EventData) -> None:
        self.count_failed(event)

    def ended_by_association(self, event: EventData) -> None:
        super().ended_by_association(event)
        self.held = None
        self._close_sub_association(release=False)

    def _close_sub_association(self, release: bool) -> None:
        if self.accepted is not None and not self.destination_lost:
            self._effect(CloseSubAssociation(self, release))
        self.accepted = None

    def _effect(self, effect: SubAssociationEffect) -> None:
        self.engine.outbox.append(cast(Any, effect))

    # -- responses -----------------------------------------------------------------------------
    def send_response(
        self,
        status: int,
        *,
        remaining: int | None,
        counts: bool,
        identifier: bytes | None,
        comment: str | None,
    ) -> None:
        # A Pending response waits until the next sub-operation's C-STORE is on
        # the wire: the originator's copy then travels while the destination
        # stores, instead of delaying the next C-STORE (the counts it carries
        # are those after this sub-operation, as the standard asks).
        self._release_held()
        message = self.response(status, remaining, counts, identifier, comment)
        if status == st.PENDING:
            self.held = message
            return
        self.engine.send_message(message)
        self._close_sub_association(release=True)

    def _release_held(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            self.engine.send_message(held)


def _is_pending(item: Any) -> bool:
    return (
        isinstance(item, tuple) and len(item) == 2 and item[0] in (st.PENDING, st.PENDING_WARNING)
    )


def _replay(items: list[Any], error: Exception | None, rest: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from items
        if error is not None:
            raise error
        yield from rest
    finally:
        close = getattr(rest, "close", None)
        if close is not None:
            close()


class MoveScu(MultiResponseScu):
    """One C-MOVE-RQ we sent; the instances go to the destination, not to us."""

    chart = SCU_CHART
