"""Who may associate with the archive and what each peer may do, from its ``[peers]``.

With no peer listed the archive is open: any calling AE title may store, query
and retrieve (the embedded defaults of ``make run``, reachable from this
machine only).  With at least one peer listed it is closed:

* a calling AE title that is not listed, or (``check_host = true``) that calls
  from another address than its ``host``, is refused with A-ASSOCIATE-RJ
  rejected-permanent, service-user, "calling AE title not recognized";
* a listed peer gets only the presentation contexts of what it ``may`` do: the
  others are answered user-rejection.  A storage context is shared by two
  services (the peer storing to us, and the peer receiving C-GET
  sub-operations in the SCP role), so a peer that may ``get`` but not
  ``store`` keeps storage contexts that propose the SCP role and its C-STORE
  requests on them are refused with 0x0124 Refused: Not Authorized;
* a C-MOVE destination must be a peer that may ``receive``: any other is
  answered 0xA801 Move Destination Unknown, whether or not it is listed, so a
  requester learns nothing about who else is configured.

Everything here is decided from the A-ASSOCIATE-RQ and the requestor's address
(no I/O once built): :meth:`AccessPolicy.admit` is the acceptor policy's
admission hook.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from dimsefsm import status as st
from dimsefsm.archive.config import PERMISSIONS, Peer, Settings
from dimsefsm.archive.scp import FIND_CLASSES, GET_CLASSES, MOVE_CLASSES
from dimsefsm.assoc.negotiation import Admission, Requestor
from dimsefsm.pdu.model import AssociateRQ, ContextResult, RejectReason
from dimsefsm.qr.registry import MODALITY_WORKLIST_FIND, lookup
from dimsefsm.sop_class import STORAGE_SOP_CLASSES

LOG = logging.getLogger("dimsefsm.access")

# The SOP classes each permission governs (Verification is everyone's).
GOVERNED: Final[Mapping[str, frozenset[str]]] = {
    "find": frozenset((*FIND_CLASSES, MODALITY_WORKLIST_FIND)),
    "get": frozenset(GET_CLASSES),
    "move": frozenset(MOVE_CLASSES),
    "store": frozenset(STORAGE_SOP_CLASSES),
}
STORAGE: Final = GOVERNED["store"]
RETRIEVE: Final = ("get", "move")

# The answers, named once: the conformance statement lists them from here.
UNKNOWN_CALLER: Final = RejectReason.CALLING_AE_NOT_RECOGNIZED
CONTEXT_REFUSED: Final = ContextResult.USER_REJECTION
STORE_REFUSED: Final = st.NOT_AUTHORIZED
DESTINATION_REFUSED: Final = st.MOVE_DESTINATION_UNKNOWN

Resolver = Callable[[str], frozenset[str]]


def resolve(host: str) -> frozenset[str]:
    """The addresses of ``host`` (itself when it is an address): resolved once, at start."""
    try:
        return frozenset({_normal(host)})
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ValueError(f"cannot resolve host {host!r}: {exc}") from exc
    return frozenset(_normal(str(info[4][0])) for info in infos)


def _normal(address: str) -> str:
    """One spelling per address: an IPv4-mapped IPv6 address is its IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


@dataclass(frozen=True)
class AccessPolicy:
    """The archive's access rules: build with :meth:`from_settings`, then ask it."""

    peers: Mapping[str, Peer] = field(default_factory=dict)  # by AE title
    accept_any_caller: bool = True
    addresses: Mapping[str, frozenset[str]] = field(default_factory=dict)  # check_host peers

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver = resolve) -> AccessPolicy:
        """The policy of these settings; the hosts of ``check_host`` peers are resolved now."""
        peers = {peer.ae_title: peer for peer in settings.peers.values()}
        addresses = {}
        for peer in peers.values():
            if peer.check_host and peer.host is not None:
                try:
                    addresses[peer.ae_title] = resolver(peer.host)
                except ValueError as exc:
                    raise ValueError(f"peers.{peer.name}.host: {exc}") from exc
        return cls(peers, settings.accept_any_caller, addresses)

    # -- questions ------------------------------------------------------------------------
    def may(self, calling_ae: str, permission: str) -> bool:
        """Whether the association from ``calling_ae`` may use this service."""
        if self.accept_any_caller:
            return True
        peer = self.peers.get(calling_ae.strip())
        return peer is not None and permission in peer.may

    def is_listed(self, ae_title: object) -> bool:
        return str(ae_title).strip() in self.peers

    @property
    def destinations(self) -> dict[str, tuple[str, int]]:
        """C-MOVE destinations by AE title: the peers that may ``receive``."""
        return {
            title: peer.address
            for title, peer in self.peers.items()
            if "receive" in peer.may and peer.address is not None
        }

    def admit(self, rq: AssociateRQ, requestor: Requestor) -> Admission:
        """The acceptor's admission hook: refuse unknown callers, limit known ones."""
        if self.accept_any_caller:
            return Admission()
        calling = rq.calling_ae.strip()
        peer = self.peers.get(calling)
        host = requestor.address[0] if requestor.address else None
        if peer is None:
            LOG.warning("association from %r at %s refused: AE title not listed", calling, host)
            return Admission(reject=UNKNOWN_CALLER)
        allowed = self.addresses.get(calling)
        if allowed is not None and (host is None or _normal(host) not in allowed):
            LOG.warning(
                "association from %r refused: it called from %s, listed at %s",
                calling,
                host,
                peer.host,
            )
            return Admission(reject=UNKNOWN_CALLER)
        refused = frozenset().union(
            *(GOVERNED[p] for p in ("find", "get", "move") if p not in peer.may)
        )
        if "store" not in peer.may and "get" not in peer.may:
            refused |= STORAGE
        return Admission(
            refused=refused,
            no_scu_role=frozenset() if "store" in peer.may else STORAGE,
            no_scp_role=frozenset() if "get" in peer.may else STORAGE,
        )

    def summary(self) -> str:
        """One log line saying who may associate and who may retrieve."""
        if self.accept_any_caller:
            return "no peers listed: any calling AE title is accepted (store, query, retrieve)"
        retrievers = sorted(t for t, p in self.peers.items() if p.may & set(RETRIEVE))
        checked = sum(1 for p in self.peers.values() if p.check_host)
        return (
            f"{len(self.peers)} peer(s) listed, others refused"
            f" ({checked} checked by host); may retrieve: {', '.join(retrievers) or 'none'}"
        )


def describe_permissions() -> list[tuple[str, str]]:
    """What each word of ``may`` allows, from :data:`GOVERNED`: for the conformance statement."""
    rows: list[tuple[str, str]] = []
    for permission in PERMISSIONS:
        if permission == "receive":
            rows.append(
                (
                    permission,
                    "be a C-MOVE destination, and receive Storage Commitment reports on an "
                    "association qrscp opens (the peer needs host and port)",
                )
            )
        elif permission == "store":
            count = len(GOVERNED[permission])
            rows.append((permission, f"send C-STORE requests: the {count} storage SOP classes"))
        else:
            names = sorted(_sop_name(uid) for uid in GOVERNED[permission])
            rows.append((permission, f"C-{permission.upper()}: {', '.join(names)}"))
    return rows


def _sop_name(uid: str) -> str:
    sop = lookup(uid)
    return sop.name if sop is not None else uid


def describe_checks() -> list[tuple[str, str]]:
    """What the archive checks and how it answers, for the conformance statement.

    Built from the same tables :class:`AccessPolicy` decides with, so the
    statement cannot say more (or less) than the code does.
    """
    rows = [
        (
            "calling AE title (when peers are listed)",
            "A-ASSOCIATE-RJ rejected-permanent, service-user, reason "
            f"{UNKNOWN_CALLER} (calling AE title not recognized)",
        ),
        (
            "peer's address (`check_host = true`)",
            f"A-ASSOCIATE-RJ as above (reason {UNKNOWN_CALLER})",
        ),
    ]
    refused = f"result {CONTEXT_REFUSED:d} (user-rejection)"
    for permission in ("find", "get", "move"):
        rows.append(
            (
                f'`may` lacks "{permission}"',
                f"the presentation contexts of its {len(GOVERNED[permission])} SOP classes: "
                f"{refused}",
            )
        )
    rows.append(
        (
            '`may` lacks "get"',
            "a proposed SCP role on storage contexts (C-GET sub-operations) is declined",
        )
    )
    rows.append(
        (
            '`may` lacks "store"',
            f"storage contexts without a proposed SCP role: {refused}; with one (and "
            '"get"), they are kept for C-GET',
        )
    )
    rows.append(
        (
            'C-STORE on a storage context kept for C-GET (`may` has "get", not "store")',
            f"0x{STORE_REFUSED:04X} Refused: Not Authorized, with an ErrorComment",
        )
    )
    rows.append(
        (
            'C-MOVE destination not a peer that may "receive"',
            f"0x{DESTINATION_REFUSED:04X} Move Destination Unknown",
        )
    )
    return rows
