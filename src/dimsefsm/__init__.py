"""dimsefsm: DICOM networking where every protocol behaviour is an explicit state machine."""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# A library reports through return values and logging, and the application decides
# what is shown: without this, Python's last-resort handler prints our warnings
# (an unreachable peer, say) on stderr of every program that embeds us.
logging.getLogger("dimsefsm").addHandler(logging.NullHandler())
__all__ = ["AE", "Association", "__version__", "debug_logger", "evt"]

if TYPE_CHECKING:
    from dimsefsm import evt
    from dimsefsm.ae import AE
    from dimsefsm.association import Association
    from dimsefsm.trace import debug_logger


def __getattr__(name: str) -> Any:
    # Lazy so that importing a codec or a chart does not pull in sockets and threads.
    if name == "AE":
        from dimsefsm.ae import AE

        return AE
    if name == "Association":
        from dimsefsm.association import Association

        return Association
    if name == "debug_logger":
        from dimsefsm.trace import debug_logger

        return debug_logger
    if name == "evt":
        return importlib.import_module("dimsefsm.evt")
    raise AttributeError(name)
