"""asyncio client: many associations in one event loop, over the same sans-I/O engine.

``assoc = await aio_associate(ae, host, port, ae_title=...)`` gives an
:class:`AsyncAssociation` whose methods mirror the blocking
:class:`~dimsefsm.association.Association`: ``await send_c_echo()``,
``await send_c_store(...)``, and ``async for`` over ``send_c_find/get/move(...)``.
Importing it costs the blocking client nothing: nothing else imports it.
"""

from __future__ import annotations

from dimsefsm.aio.associate import aio_associate
from dimsefsm.aio.association import AsyncAssociation, ResponseStream

__all__ = ["AsyncAssociation", "ResponseStream", "aio_associate"]
