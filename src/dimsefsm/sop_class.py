"""SOP class and transfer syntax UIDs, and which service each SOP class uses.

One registry answers "which service and which status table does this UID
use?" so that negotiation, dispatch and the conformance tables agree.
"""

from __future__ import annotations

from dataclasses import dataclass

VERIFICATION = "1.2.840.10008.1.1"

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

# Preference order for an acceptor choosing among proposed uncompressed syntaxes.
UNCOMPRESSED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)
DEFAULT_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)


@dataclass(frozen=True, slots=True)
class SOPClass:
    uid: str
    name: str
    service: str


_REGISTRY: dict[str, SOPClass] = {}


def register(uid: str, name: str, service: str) -> SOPClass:
    sop = SOPClass(uid, name, service)
    _REGISTRY[uid] = sop
    return sop


def lookup(uid: str) -> SOPClass | None:
    return _REGISTRY.get(uid)


def service_of(uid: str) -> str | None:
    sop = _REGISTRY.get(uid)
    return sop.service if sop else None


register(VERIFICATION, "Verification SOP Class", "verification")
