"""The entry point: ``await aio_associate(ae, host, port, ae_title=...)``."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, Unpack

from dimsefsm.aio.association import AsyncAssociation
from dimsefsm.pdu.model import UserIdentityRQ
from dimsefsm.transport.tls import TlsArgs

if TYPE_CHECKING:
    from dimsefsm.ae import AE, HandlerList


class Options(TypedDict, total=False):
    """The rest of ``AE.associate``'s arguments, with the same meaning."""

    max_pdu: int | None
    evt_handlers: HandlerList | None
    tls_args: TlsArgs | None
    user_identity: UserIdentityRQ | None


async def aio_associate(
    ae: AE, addr: str, port: int, ae_title: str = "ANY-SCP", **options: Unpack[Options]
) -> AsyncAssociation:
    """Request an association from the running event loop, as ``ae.associate`` does.

    The AE's connection, ACSE and DIMSE timeouts bound each wait; a failure
    is reported by ``is_established``, ``is_rejected``, ``is_aborted`` and
    ``describe_failure()``, never raised.  Handlers (EVT_C_STORE for C-GET)
    run in the event loop's thread, between two reads of this association.
    """
    handlers = options.get("evt_handlers")
    assoc = ae.prepare_association(
        AsyncAssociation, ae_title, options.get("max_pdu"), handlers, options.get("user_identity")
    )
    await assoc._open((addr, port), ae.connection_timeout, options.get("tls_args"))
    return assoc
