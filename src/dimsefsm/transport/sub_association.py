"""Carries out a C-MOVE SCP's sub-association effects with the blocking client.

The C-MOVE chart (:mod:`dimsefsm.services.move`) asks for its sub-association
and for each C-STORE as effects; the driver of the requestor's association
hands them here.  Each effect is performed at once, on the calling thread
(the association's own), and its outcome goes back to the operation as an
input: accepted / rejected / aborted, the C-STORE's status, or why it could
not be sent.  The sub-associations still open when the requestor's
connection closes are aborted, so none outlives it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from dimsefsm.services.move import (
    CloseSubAssociation,
    MoveScp,
    OpenSubAssociation,
    SendSubStore,
    SubAssociationEffect,
)

LOG = logging.getLogger("dimsefsm.transport")


AEFactory = Callable[[str], Any]
"""Builds the AE (by its title) that requests a sub-association: the facade's ``AE``.

Injected by whoever builds the driver (``dimsefsm.ae``, ``dimsefsm.aio``): the
transport sits below the facades and never imports them.
"""


class SubAssociations:
    """The sub-associations of the C-MOVE operations running on one association."""

    def __init__(self, make_ae: AEFactory | None) -> None:
        """``make_ae``: None on a connection given no AE; its C-MOVEs then fail cleanly."""
        self.make_ae = make_ae
        self.open: dict[MoveScp, Any] = {}

    def perform(self, effect: SubAssociationEffect, flush: Callable[[], None]) -> None:
        """Carry ``effect`` out; ``flush`` writes what the requestor's engine has queued."""
        if isinstance(effect, CloseSubAssociation):
            self._close(effect)
        elif effect.op.done:
            return  # the operation ended (its association went away) before this could run
        elif isinstance(effect, OpenSubAssociation):
            self._open(effect)
        elif isinstance(effect, SendSubStore):
            self._store(effect, flush)

    def _open(self, effect: OpenSubAssociation) -> None:
        if self.make_ae is None:
            effect.op.sub_assoc_aborted("no AE to request a sub-association on this connection")
            return
        ae = self.make_ae(effect.calling_ae)
        for sop_class, syntaxes in effect.contexts:
            ae.add_requested_context(sop_class, syntaxes)
        assoc = ae.associate(*effect.address, ae_title=effect.called_ae, tls_args=effect.tls_args)
        op = effect.op
        if op.done and assoc.is_established:
            assoc.release()  # cancelled (or gone) meanwhile: nobody will use it
        elif assoc.is_established:
            self.open[op] = assoc
            op.sub_assoc_accepted(list(assoc.negotiated.contexts.values()))
        elif op.done:
            return
        elif assoc.is_rejected:
            op.sub_assoc_rejected(assoc.describe_failure())
        else:
            op.sub_assoc_aborted(assoc.describe_failure())

    def _store(self, effect: SendSubStore, flush: Callable[[], None]) -> None:
        op = effect.op
        assoc = self.open.get(op)
        if assoc is None or not assoc.is_established:
            self.open.pop(op, None)
            op.sub_assoc_aborted(assoc.describe_failure() if assoc else "no sub-association")
            return

        def sent() -> None:
            op.store_sent()
            flush()

        try:
            store = assoc.store_and_wait(
                effect.item,
                originator_aet=effect.originator_aet,
                originator_id=effect.originator_id,
                on_sent=sent,
            )
        except Exception as exc:
            if assoc.is_established:
                op.store_not_sent(str(exc))
            else:  # the connection failed under the send
                self.open.pop(op, None)
                op.sub_assoc_aborted(assoc.describe_failure())
            return
        if store.status is None:
            self.open.pop(op, None)
            op.sub_assoc_aborted(assoc.describe_failure())
        else:
            op.store_response(store.status)

    def _close(self, effect: CloseSubAssociation) -> None:
        assoc = self.open.pop(effect.op, None)
        if assoc is None or not assoc.is_established:
            return
        if effect.release:
            assoc.release()
        else:
            assoc.abort()

    def abort_all(self) -> None:
        """The requestor's connection is gone: no sub-association outlives it."""
        for op in list(self.open):
            self._close(CloseSubAssociation(op, release=False))
