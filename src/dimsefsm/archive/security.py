"""qrscp's user identity and audit trail, from the configuration's ``[users]``, peers and ``audit``.

The decisions themselves live in the library (:mod:`dimsefsm.identity`,
:mod:`dimsefsm.audit`); this module only turns :class:`Settings` into them and
describes them for the conformance statement.
"""

from __future__ import annotations

from dimsefsm.archive.config import Settings
from dimsefsm.assoc.negotiation import identity_rejection
from dimsefsm.identity import IdentityRules
from dimsefsm.passwords import is_valid_hash


def identity_rules(settings: Settings) -> IdentityRules | None:
    """The identity gate the settings ask for; None when they name no user and no rule.

    Without one, a User Identity item is ignored (as by an acceptor that does not
    support it: no positive response).  ``ValueError`` for a ``[users]`` value
    that is not a hash ``dimsefsm passwd`` writes (a plain password, say).
    """
    for name, stored in settings.users.items():
        if not is_valid_hash(stored):
            raise ValueError(
                f"[users] {name}: not a password hash; make one with `dimsefsm passwd {name}`"
            )
    peers = settings.peers.values()
    required = frozenset(p.ae_title for p in peers if p.identity == "required")
    subjects = {p.ae_title: p.tls_subject for p in peers if p.tls_subject}
    if not settings.users and not required and not subjects:
        return None
    return IdentityRules(dict(settings.users), required, subjects)


def identity_summary(rules: IdentityRules | None) -> str:
    """One log line: what user identity the server checks."""
    if rules is None:
        return "user identity: not checked (no [users]); identity items are ignored"
    required = ", ".join(sorted(rules.required)) or "none"
    return (
        f"user identity: {len(rules.users)} user(s); required from: {required}; "
        f"{len(rules.tls_subjects)} peer(s) identified by TLS certificate"
    )


def describe_identity_checks() -> list[tuple[str, str]]:
    """Rows for the conformance statement's security section: what is checked, the answer."""
    rj = identity_rejection()
    reject = (
        f"A-ASSOCIATE-RJ result {rj.result} (rejected-permanent), source {rj.source} "
        f"(service-provider, ACSE), reason {rj.reason} (no-reason-given), PS3.7 D.3.3.7"
    )
    return [
        ("user identity type 1 (username): name listed under [users]", reject),
        ("user identity type 2 (username and passcode): scrypt hash under [users]", reject),
        (
            "user identity asked for a positive response (types 1 and 2, accepted)",
            "User Identity AC sub-item with an empty server response",
        ),
        (
            "user identity types 3-5 (Kerberos, SAML, JWT)",
            "not verified: ignored with a log line, no positive response; "
            'refused as above from a peer with identity = "required"',
        ),
        ('no user identity from a peer with identity = "required"', reject),
        (
            "TLS client certificate (peer's tls_subject: CN, or full RFC 4514 subject)",
            "identifies the peer in place of a User Identity item",
        ),
        (
            "no [users], and no peer with identity or tls_subject",
            "User Identity items ignored, no positive response",
        ),
    ]


__all__ = ["describe_identity_checks", "identity_rules", "identity_summary"]
