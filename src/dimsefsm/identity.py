"""User identity negotiation (PS3.7 D.3.3.7): what an acceptor checks, what a requestor sends.

Two ways to decide, both ending in an :data:`~dimsefsm.assoc.negotiation.IdentityGate`:

- :class:`IdentityRules`: a user table of salted scrypt hashes (see
  :mod:`dimsefsm.passwords`), which calling AE titles must identify
  themselves, and which TLS client certificate identifies which AE title.
- :func:`gate_from_handler`: a pynetdicom-style ``evt.EVT_USER_ID`` handler,
  called with ``event.user_id_type``, ``event.primary_field`` and
  ``event.secondary_field`` and returning ``(is_verified, response)``.

The gate runs for every A-ASSOCIATE-RQ; a refusal becomes
:func:`~dimsefsm.assoc.negotiation.identity_rejection`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dimsefsm import evt
from dimsefsm.assoc.negotiation import IdentityGate, IdentityVerdict, Requestor
from dimsefsm.passwords import hash_password, verify_password
from dimsefsm.pdu.model import AssociateRQ, UserIdentityRQ

LOG = logging.getLogger("dimsefsm.identity")

# User-Identity-Type values (PS3.7 Table D.3-14).
USERNAME = 1
USERNAME_PASSCODE = 2
KERBEROS = 3
SAML = 4
JWT = 5
TYPE_NAMES = {
    USERNAME: "username",
    USERNAME_PASSCODE: "username and passcode",
    KERBEROS: "Kerberos ticket",
    SAML: "SAML assertion",
    JWT: "JSON web token",
}
# Server response to a verified username (types 1 and 2): the User Identity AC
# item is the positive response, its server response field stays empty
# (PS3.7 D.3.3.7.2 gives it content for Kerberos, SAML and JWT only).
EMPTY_RESPONSE = b""


@functools.cache
def _decoy_hash() -> str:
    """Checked when the user is unknown, so an unknown name costs the same scrypt
    work as a wrong password and the answer's timing does not tell them apart."""
    return hash_password("dimsefsm decoy")


def username_identity(
    user: str, password: str | None = None, *, positive_response: bool = False
) -> UserIdentityRQ:
    """The requestor's item: type 2 with a password, type 1 without."""
    if password is None:
        return UserIdentityRQ(USERNAME, positive_response, user.encode("utf-8"))
    return UserIdentityRQ(
        USERNAME_PASSCODE, positive_response, user.encode("utf-8"), password.encode("utf-8")
    )


def certificate_names(certificate: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(CN, full subject as an RFC 4514 string) of an ``ssl.getpeercert()`` dict.

    RFC 4514 writes the RDNs most specific first (``CN=modality,O=Hospital,C=DE``);
    ``getpeercert`` lists them in certificate order (country first), so they are
    reversed here.  Values are not escaped: a subject with ``,`` or ``+`` inside
    a value should be matched by CN.
    """
    if not certificate:
        return None, None
    rdns = certificate.get("subject") or ()
    names = {
        "commonName": "CN",
        "organizationName": "O",
        "organizationalUnitName": "OU",
        "countryName": "C",
        "stateOrProvinceName": "ST",
        "localityName": "L",
        "emailAddress": "emailAddress",
        "domainComponent": "DC",
    }
    parts: list[str] = []
    common_name: str | None = None
    for rdn in reversed(list(rdns)):
        attrs = []
        for key, value in rdn:
            attrs.append(f"{names.get(key, key)}={value}")
            if key == "commonName" and common_name is None:
                common_name = str(value)
        parts.append("+".join(attrs))
    return common_name, ",".join(parts) if parts else None


def certificate_matches(certificate: Mapping[str, Any] | None, expected: str) -> bool:
    """``expected`` is a CN (no ``=`` in it) or a full RFC 4514 subject string."""
    common_name, subject = certificate_names(certificate)
    if "=" in expected:
        return subject is not None and _norm(subject) == _norm(expected)
    return common_name is not None and common_name == expected


def _norm(subject: str) -> str:
    return ",".join(part.strip() for part in subject.split(","))


@dataclass(slots=True)
class IdentityRules:
    """A user table and who must use it, as an identity gate.

    ``users`` maps user names to :func:`~dimsefsm.passwords.hash_password`
    strings.  ``required`` holds the calling AE titles that must identify
    themselves, or ``"*"`` for everyone.  ``tls_subjects`` maps a calling AE
    title to the client certificate (CN or full RFC 4514 subject) that
    identifies it without a User Identity item.

    Type 1 (username alone) is accepted when the name is in ``users``: it
    proves nothing by itself, so give a peer that may only send a name a
    ``tls_subject`` too.  Type 2 needs the right password.  Kerberos, SAML and
    JWT are not verified: refused where identity is required, otherwise
    ignored with a log line (the association goes on unidentified, and no
    positive response is sent).
    """

    users: Mapping[str, str] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    tls_subjects: Mapping[str, str] = field(default_factory=dict)

    def is_required(self, calling_ae: str) -> bool:
        return "*" in self.required or calling_ae in self.required

    def __call__(self, rq: AssociateRQ, requestor: Requestor) -> IdentityVerdict:
        identity = rq.user_info.user_identity_rq
        calling_ae = rq.calling_ae.strip()
        required = self.is_required(calling_ae)
        by_certificate = self._certificate_user(calling_ae, requestor.certificate)
        if identity is None:
            if by_certificate is not None:
                return IdentityVerdict(True, None, by_certificate, "identified by certificate")
            if required:
                return IdentityVerdict(False, reason="identity required, none sent")
            return IdentityVerdict(True)
        kind = identity.identity_type
        if kind in (USERNAME, USERNAME_PASSCODE):
            return self._check_user(identity)
        what = TYPE_NAMES.get(kind, f"type {kind}")
        if by_certificate is not None:
            return IdentityVerdict(
                True, None, by_certificate, f"{what} not verified; identified by certificate"
            )
        if required:
            return IdentityVerdict(False, reason=f"{what} cannot be verified here")
        return IdentityVerdict(True, None, None, f"{what} not verified; ignored")

    def _certificate_user(
        self, calling_ae: str, certificate: Mapping[str, Any] | None
    ) -> str | None:
        expected = self.tls_subjects.get(calling_ae)
        if expected is None or not certificate_matches(certificate, expected):
            return None
        return certificate_names(certificate)[0] or expected

    def _check_user(self, identity: UserIdentityRQ) -> IdentityVerdict:
        try:
            name = identity.primary.decode("utf-8")
        except UnicodeDecodeError:
            return IdentityVerdict(False, reason="user name is not UTF-8")
        stored = self.users.get(name)
        if identity.identity_type == USERNAME:
            if stored is None:
                return IdentityVerdict(False, reason=f"unknown user {name!r}")
            return IdentityVerdict(True, EMPTY_RESPONSE, name)
        ok = verify_password(identity.secondary, stored if stored is not None else _decoy_hash())
        if stored is None:
            return IdentityVerdict(False, reason=f"unknown user {name!r}")
        if not ok:
            return IdentityVerdict(False, reason=f"wrong password for user {name!r}")
        return IdentityVerdict(True, EMPTY_RESPONSE, name)


@dataclass(slots=True)
class UserIdentityEvent:
    """What an ``evt.EVT_USER_ID`` handler sees, with pynetdicom's attribute names."""

    assoc: Any
    event: evt.EventType
    user_id_type: int
    primary_field: bytes
    secondary_field: bytes
    positive_response_requested: bool


# Called with a UserIdentityEvent; typed loosely as evt_handlers lists are.
UserIdHandler = Callable[[Any], Any]


def gate_from_handler(handler: UserIdHandler) -> IdentityGate:
    """An identity gate calling a pynetdicom-style ``EVT_USER_ID`` handler.

    As in pynetdicom: a requestor without an identity item is not asked about;
    the handler returns ``(is_verified, response)``; an exception in it
    rejects.  The response (or an empty one for types 1 and 2) is sent when
    the requestor asked for a positive response.
    """

    def gate(rq: AssociateRQ, requestor: Requestor) -> IdentityVerdict:
        identity = rq.user_info.user_identity_rq
        if identity is None:
            return IdentityVerdict(True)
        event = UserIdentityEvent(
            requestor.assoc,
            evt.EVT_USER_ID,
            identity.identity_type,
            identity.primary,
            identity.secondary,
            identity.positive_response_requested,
        )
        try:
            verified, response = handler(event)
        except Exception:
            LOG.exception("EVT_USER_ID handler failed; rejecting the association")
            return IdentityVerdict(False, reason="the EVT_USER_ID handler failed")
        if not verified:
            return IdentityVerdict(False, reason="the EVT_USER_ID handler refused it")
        user = None
        if identity.identity_type in (USERNAME, USERNAME_PASSCODE):
            user = identity.primary.decode("utf-8", "replace")
            if response is None:
                response = EMPTY_RESPONSE
        return IdentityVerdict(True, response, user)

    return gate


__all__ = [
    "IdentityRules",
    "UserIdentityEvent",
    "certificate_matches",
    "certificate_names",
    "gate_from_handler",
    "username_identity",
]
