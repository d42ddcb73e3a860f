"""C-MOVE: the C-GET machine with a destination to resolve and a sub-association.

The handler (pynetdicom's protocol) yields the destination ``(addr, port)``
(optionally a third element with association options), then the number of
sub-operations, then ``(status, dataset)`` pairs.  Once the count is known the
operation reads the announced instances ahead, proposes exactly the storage
contexts they need (their own transfer syntax first, native fallbacks for
uncompressed ones) on a sub-association to the destination, and sends each as
a C-STORE carrying the Move Originator AE title and Message ID.  The counting
rules and final statuses are C-GET's (see :mod:`dimsefsm.services.get`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydicom import Dataset

from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptedContext
from dimsefsm.dimse.commands import move_rsp
from dimsefsm.fsm import Chart, transition
from dimsefsm.part10 import Part10Error, read_part10_info
from dimsefsm.services import get
from dimsefsm.services.multi_response import MultiResponseScu, make_multi_scu_chart
from dimsefsm.sop_class import DEFAULT_TRANSFER_SYNTAXES, UNCOMPRESSED_TRANSFER_SYNTAXES

LOG = logging.getLogger("dimsefsm.move")

_RESOLVING = "ResolvingDestination"
# Instances read ahead to choose the sub-association's contexts; later ones whose
# context is missing fail on their own (no_context) instead of the whole study
# sitting in memory before the first C-STORE.
READ_AHEAD = 64
_CODES = {
    st.GET_DECODE_FAILED: st.MOVE_DECODE_FAILED,
    st.GET_HANDLER_FAILED: st.MOVE_HANDLER_FAILED,
    st.GET_BAD_SUBOPERATION_COUNT: st.MOVE_BAD_SUBOPERATION_COUNT,
}


def _from_get(t: Any) -> Any:
    """C-GET's transition, renamed to C-MOVE's codes and states."""
    status = _CODES.get(t.status, t.status) if t.status is not None else None
    when = t.when.replace("C-CANCEL-GET", "C-CANCEL-MOVE").replace("get handler", "move handler")
    t = replace(t, status=status, when=when)
    if t.name == "decoded":
        return replace(
            t,
            dest=_RESOLVING,
            when="The identifier decodes and fits the model; the handler is called.",
        )
    if t.name == "handler_raised":
        return replace(t, source=(_RESOLVING, "AwaitingCount", "SubOps"))
    if t.name == "count":
        return replace(
            t,
            when="The handler announced the count and the destination accepted "
            "a sub-association with the contexts the instances need.",
        )
    if t.name == "no_context":
        return replace(
            t,
            when="The destination accepted no context for this instance's SOP "
            "class: a failed sub-operation, not a crash.",
        )
    if t.name == "unsendable":
        return replace(
            t,
            when="The instance cannot become a C-STORE on the sub-association (a UID over "
            "64 characters, a file gone or unreadable, no accepted syntax it converts to): "
            "Failed + 1, its UID joins the failed list, logged; the next one follows.",
        )
    if t.name == "sub_op_failed":
        return replace(
            t,
            when="The destination refused the instance, or vanished: Failed + 1, "
            "its UID joins the failed list.",
        )
    return t


SCP_CHART = Chart(
    name="c-move-scp",
    states=("Decoding", _RESOLVING, "AwaitingCount", "SubOps", "Cancelled", "Final"),
    initial="Decoding",
    final=("Cancelled", "Final"),
    doc="C-MOVE SCP: destination, count, then one C-STORE on the sub-association per instance.",
    transitions=(
        *(_from_get(t) for t in get.SCP_CHART.transitions if t.name != "sub_op_sent"),
        transition(
            "destination_resolved",
            "destination_resolved",
            _RESOLVING,
            "AwaitingCount",
            when="The handler yielded a valid (address, port) for the Move Destination.",
        ),
        transition(
            "destination_unknown",
            "destination_unknown",
            _RESOLVING,
            "Final",
            status=st.MOVE_DESTINATION_UNKNOWN,
            action="respond",
            when="The handler yielded no address: the Move Destination AE title is unknown.",
        ),
        transition(
            "bad_destination",
            "bad_destination",
            _RESOLVING,
            "Final",
            status=st.MOVE_BAD_DESTINATION,
            action="respond",
            when="The destination is not a valid (address, port[, options]).",
        ),
        transition(
            "no_destination",
            "no_destination",
            (_RESOLVING, "AwaitingCount"),
            "Final",
            status=st.MOVE_NO_DESTINATION_OR_COUNT,
            action="respond",
            when="The handler ended before yielding the destination and the count.",
        ),
        transition(
            "destination_unreachable",
            "destination_unreachable",
            "AwaitingCount",
            "Final",
            status=st.OUT_OF_RESOURCES_SUBOPERATIONS,
            action="respond",
            when="The destination refused or could not be reached: every announced "
            "sub-operation failed (0xA702), the reason is logged.",
        ),
    ),
)

SCU_CHART = make_multi_scu_chart(
    "c-move-scu",
    "C-MOVE",
    "Retrieving",
    pending_warning=False,
    failures="0xA701/0xA702 out of resources, 0xA801 destination unknown, 0xA900, 0xCxxx",
)


class MoveScp(get.GetScp):
    """One C-MOVE-RQ being answered; sub-operations go to the destination synchronously."""

    chart = SCP_CHART
    response_command = staticmethod(move_rsp)

    def __init__(
        self, *args: Any, make_ae: Callable[[str], Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.make_ae = make_ae
        self.destination: tuple[str, int] | None = None
        self.options: dict[str, Any] = {}
        self.sub_assoc: Any = None
        self.destination_lost = False

    def start(self) -> None:
        if not self.request.command.get("MoveDestination"):
            self._fire("mistyped")
            return
        super().start()

    def make_event(self, ctx: Any) -> Any:
        from dimsefsm import evt

        event = super().make_event(ctx)
        event.event = evt.EVT_C_MOVE
        event.move_destination = self.request.command.get("MoveDestination", "")
        return event

    def status_table(self) -> Any:
        return st.QR_MOVE_STATUSES

    def step(self) -> None:
        if self.state == _RESOLVING:
            self._resolve()
        else:
            super().step()

    def _resolve(self) -> None:
        assert self.generator is not None
        try:
            first = next(self.generator)
        except StopIteration:
            self.comment = "the handler yielded no destination"
            self._end("no_destination")
            return
        except Exception as exc:
            self._raised(exc)
            return
        if isinstance(first, tuple) and len(first) in (2, 3) and first[0] is None:
            self.comment = (
                f"unknown move destination {self.request.command.get('MoveDestination')!r}"
            )
            self._end("destination_unknown")
            return
        addr, port = (
            (first[0], first[1])
            if isinstance(first, tuple) and len(first) in (2, 3)
            else (None, None)
        )
        if (
            not isinstance(addr, str)
            or isinstance(port, bool)
            or not isinstance(port, int)
            or not (0 < port < 65536)
        ):
            self.comment = f"invalid destination {first!r}"
            self._end("bad_destination")
            return
        self.destination = (addr, port)
        if len(first) == 3 and isinstance(first[2], dict):
            self.options = dict(first[2])
        self._fire("destination_resolved")

    missing_count = "no_destination"  # 0xC514: destination and/or count not yielded

    def counted(self, count: int) -> None:
        """Open the sub-association for what the first instances need, then start."""
        items, error = self._read_ahead(min(count, READ_AHEAD))
        if count and not self._connect(items):
            self.failed = count
            self.failed_uids = [uid for uid in (_uid_of(i) for i in items) if uid]
            self.delivered = self.failed
            self._end("destination_unreachable")
            return
        assert self.generator is not None
        self.generator = _replay(items, error, self.generator)
        super().counted(count)

    def _read_ahead(self, count: int) -> tuple[list[Any], Exception | None]:
        """The announced items, so the sub-association can propose what they need."""
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
            return items, exc
        return items, None

    def _connect(self, items: list[Any]) -> bool:
        assert self.destination is not None and self.make_ae is not None
        calling = str(self.options.get("ae_title") or self.engine.negotiated.local_ae)
        ae = self.make_ae(calling)
        for sop_class, syntaxes in _contexts_for(items):
            ae.add_requested_context(sop_class, syntaxes)
        if not ae.requested_contexts:
            return True  # nothing sendable: each item fails on its own below
        called = str(self.request.command.get("MoveDestination", "ANY-SCP"))
        # The handler's options may secure the sub-association: {"tls_args": (context, host)}.
        assoc = ae.associate(
            *self.destination, ae_title=called, tls_args=self.options.get("tls_args")
        )
        if not assoc.is_established:
            LOG.warning(
                "C-MOVE destination %s at %s:%d: %s",
                called,
                *self.destination,
                assoc.describe_failure(),
            )
            reason = "rejected" if assoc.is_rejected else "unreachable"
            self.comment = f"destination {called} {reason}"
            return False
        self.sub_assoc = assoc
        return True

    def _sub_operation(self, dataset: object) -> None:
        if self.delivered >= self.announced:
            LOG.warning(
                "c-move-scp handler yielded more than the %d announced; ignored", self.announced
            )
            self._fire("extra_ignored")
            return
        self.delivered += 1
        if not isinstance(dataset, (Dataset, str, Path)):
            self.sub_op_unsendable(dataset, TypeError(f"{type(dataset).__name__} is no instance"))
            return
        assoc = self.sub_assoc
        if assoc is None:
            # None of the instances read ahead had a SOP class to propose: nothing was opened.
            self.sub_op_unsendable(dataset, ValueError("no sub-association carries it"))
            return
        if not assoc.is_established:
            if not self.destination_lost:
                self.destination_lost = True
                LOG.warning(
                    "C-MOVE destination went away after %d completed: %s",
                    self.completed,
                    assoc.describe_failure(),
                )
            self._failed(dataset)
            return
        try:
            code = assoc.store_and_wait(
                dataset,
                originator_aet=self.engine.negotiated.peer_ae,
                originator_id=self.request.command.get("MessageID"),
                on_sent=self.engine.flush_output,
            ).status
        except Exception as exc:
            if assoc.is_established:
                self.sub_op_unsendable(dataset, exc)
            else:
                self._failed(dataset)  # the connection failed under the send
            return
        if code == st.SUCCESS:
            self.completed += 1
            self._fire("sub_op_completed")
        elif isinstance(code, int) and st.category(code) is st.Category.WARNING:
            self.warning += 1
            self._fire("sub_op_warning")
        else:
            self._failed(dataset)

    def storage_contexts(self) -> list[AcceptedContext]:
        """The sub-association's contexts: the C-STOREs go to the destination."""
        negotiated = self.sub_assoc.negotiated if self.sub_assoc is not None else None
        return list(negotiated.contexts.values()) if negotiated is not None else []

    def _failed(self, dataset: object) -> None:
        """Count a failed sub-operation; its UID (read only now) goes to the failed list."""
        self.failed += 1
        uid = get.instance_uid(dataset)
        if uid:
            self.failed_uids.append(uid)
        self._fire("sub_op_failed")

    def close(self) -> None:
        super().close()
        assoc, self.sub_assoc = self.sub_assoc, None
        if assoc is not None and assoc.is_established:
            if self.state in self.chart.final:
                assoc.release()  # the end, or a C-CANCEL-MOVE
            else:
                assoc.abort()  # the originator went away mid-operation

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
        self.engine.hold_output = status == st.PENDING
        super().send_response(
            status, remaining=remaining, counts=counts, identifier=identifier, comment=comment
        )


def _is_pending(item: Any) -> bool:
    return (
        isinstance(item, tuple) and len(item) == 2 and item[0] in (st.PENDING, st.PENDING_WARNING)
    )


def _uid_of(item: Any) -> str | None:
    return get.instance_uid(item[1]) if _is_pending(item) else None


def _contexts_for(items: list[Any]) -> list[tuple[str, tuple[str, ...]]]:
    """Exactly the (SOP class, syntaxes) the instances need; native fallbacks for native ones."""
    wanted: dict[tuple[str, tuple[str, ...]], None] = {}
    for item in items:
        if not _is_pending(item):
            continue
        dataset = item[1]
        try:
            if isinstance(dataset, Dataset):
                sop_class = str(dataset.SOPClassUID)
                ts = str(
                    getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", "") or ""
                )
            elif isinstance(dataset, (str, Path)):
                info = read_part10_info(Path(dataset))
                sop_class, ts = info.sop_class_uid, info.transfer_syntax
            else:
                continue
        except (AttributeError, Part10Error, OSError):
            continue
        if not ts or ts in UNCOMPRESSED_TRANSFER_SYNTAXES:
            first = (ts,) if ts else ()
            syntaxes = (*first, *(t for t in DEFAULT_TRANSFER_SYNTAXES if t != ts))
        else:
            syntaxes = (ts,)
        wanted.setdefault((sop_class, syntaxes), None)
    return list(wanted)[:128]


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
