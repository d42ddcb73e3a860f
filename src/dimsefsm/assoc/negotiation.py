"""Association negotiation for both roles, as pure functions.

The requestor turns what it wants into an A-ASSOCIATE-RQ and reads the AC back
into a :class:`Negotiated` description; the acceptor applies an
:class:`AcceptorPolicy` to an RQ and answers with an AC or an RJ.  No I/O: the
upper-layer chart decides *when* these PDUs travel, this module decides *what*
they say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dimsefsm.pdu.model import (
    APPLICATION_CONTEXT,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOperationsWindow,
    ContextResult,
    PresentationContextAC,
    PresentationContextRQ,
    RejectReason,
    RejectResult,
    RejectSource,
    RoleSelection,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

LOG = logging.getLogger("dimsefsm.assoc")

IMPLEMENTATION_CLASS_UID = "2.25.245133105364127187389516046213347781651"
IMPLEMENTATION_VERSION_NAME = "DIMSEFSM_010"
# What we are willing to receive per P-DATA-TF PDU.  Large enough that bulk
# transfers cost few PDUs (each PDU costs one chart trigger), small enough for
# peers that cap their own buffers.
DEFAULT_MAX_PDU = 131072


@dataclass(frozen=True, slots=True)
class AcceptedContext:
    """A presentation context both sides agreed on, seen from our side."""

    context_id: int
    abstract_syntax: str
    transfer_syntax: str
    as_scu: bool  # we may send requests of this SOP class on it
    as_scp: bool  # we may answer requests of this SOP class on it


@dataclass(slots=True)
class Negotiated:
    """Everything the rest of the association needs to know about the agreement."""

    requestor: bool
    local_ae: str
    peer_ae: str
    contexts: dict[int, AcceptedContext]
    rejected: dict[int, int]
    local_max_pdu: int
    peer_max_pdu: int
    peer_implementation_class_uid: str | None = None
    peer_implementation_version_name: str | None = None
    user_identity: UserIdentityRQ | None = None
    extended_negotiation: dict[str, bytes] = field(default_factory=dict)
    # Acceptor: the user the identity gate verified (None: no identity, or not checked).
    user: str | None = None
    # Requestor: the acceptor's User Identity AC server response (None: it sent none).
    user_identity_response: bytes | None = None

    def find_context(
        self, abstract_syntax: str, transfer_syntax: str | None = None, *, as_scp: bool = False
    ) -> AcceptedContext | None:
        """The first accepted context for this SOP class where we may play the role."""
        for ctx in self.contexts.values():
            if ctx.abstract_syntax != abstract_syntax:
                continue
            if transfer_syntax is not None and ctx.transfer_syntax != transfer_syntax:
                continue
            if ctx.as_scp if as_scp else ctx.as_scu:
                return ctx
        return None


# -- requestor ----------------------------------------------------------------
@dataclass(slots=True)
class RequestorProposal:
    calling_ae: str
    called_ae: str
    contexts: tuple[PresentationContextRQ, ...]
    max_pdu: int = DEFAULT_MAX_PDU
    roles: tuple[RoleSelection, ...] = ()
    user_identity: UserIdentityRQ | None = None
    extended_negotiation: tuple[SOPClassExtendedNegotiation, ...] = ()


def propose_contexts(
    wanted: Iterable[tuple[str, Iterable[str]]],
) -> tuple[PresentationContextRQ, ...]:
    """Give each (abstract syntax, transfer syntaxes) an odd context ID, as PS3.8 asks."""
    contexts = []
    for index, (abstract, syntaxes) in enumerate(wanted):
        context_id = 2 * index + 1
        if context_id > 255:
            raise ValueError("at most 128 presentation contexts can be proposed")
        contexts.append(PresentationContextRQ(context_id, abstract, tuple(syntaxes)))
    return tuple(contexts)


def build_request(proposal: RequestorProposal) -> AssociateRQ:
    return AssociateRQ(
        called_ae=proposal.called_ae,
        calling_ae=proposal.calling_ae,
        presentation_contexts=proposal.contexts,
        user_info=UserInformation(
            max_length=proposal.max_pdu,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
            roles=proposal.roles,
            extended_negotiation=proposal.extended_negotiation,
            user_identity_rq=proposal.user_identity,
        ),
    )


def read_acceptance(rq: AssociateRQ, ac: AssociateAC) -> Negotiated:
    """What the acceptor agreed to, with the roles *we* (the requestor) may play.

    A role the acceptor grants that we did not propose is ignored, and no role
    item back means the defaults: requestor SCU, acceptor SCP (PS3.7 D.3.3.4).
    """
    proposed = {pc.context_id: pc for pc in rq.presentation_contexts}
    asked = {r.sop_class_uid: r for r in rq.user_info.roles}
    granted = {r.sop_class_uid: r for r in ac.user_info.roles}
    contexts: dict[int, AcceptedContext] = {}
    rejected: dict[int, int] = {}
    for pc in ac.presentation_contexts:
        rq_pc = proposed.get(pc.context_id)
        if rq_pc is None:
            continue
        if pc.result != ContextResult.ACCEPTANCE:
            rejected[pc.context_id] = pc.result
            continue
        as_scu, as_scp = True, False
        ask, grant = asked.get(rq_pc.abstract_syntax), granted.get(rq_pc.abstract_syntax)
        if ask is not None and grant is not None:
            as_scu = ask.scu_role and grant.scu_role
            as_scp = ask.scp_role and grant.scp_role
        contexts[pc.context_id] = AcceptedContext(
            pc.context_id, rq_pc.abstract_syntax, pc.transfer_syntax, as_scu, as_scp
        )
    for context_id in proposed:
        if context_id not in contexts and context_id not in rejected:
            rejected[context_id] = ContextResult.NO_REASON
    return Negotiated(
        requestor=True,
        local_ae=rq.calling_ae,
        peer_ae=rq.called_ae,
        contexts=contexts,
        rejected=rejected,
        local_max_pdu=rq.user_info.max_length or 0,
        peer_max_pdu=ac.user_info.max_length or 0,
        peer_implementation_class_uid=ac.user_info.implementation_class_uid,
        peer_implementation_version_name=ac.user_info.implementation_version_name,
        extended_negotiation={
            e.sop_class_uid: e.application_information for e in ac.user_info.extended_negotiation
        },
        user_identity_response=(
            ac.user_info.user_identity_ac.server_response
            if ac.user_info.user_identity_ac is not None
            else None
        ),
    )


def ungranted_scp_roles(rq: AssociateRQ, negotiated: Negotiated) -> list[str]:
    """SOP classes accepted, but without the SCP role we asked for.

    Peers often answer a role selection with the defaults (PS3.7 D.3.3.4): the
    association is fine, yet every C-GET sub-operation of those classes will
    fail later with a context error.  Saying so at negotiation time is the
    difference between a log line that explains and one that puzzles.
    """
    wanted = [r.sop_class_uid for r in rq.user_info.roles if r.scp_role]
    missing = []
    for uid in wanted:
        accepted = [c for c in negotiated.contexts.values() if c.abstract_syntax == uid]
        if accepted and not any(c.as_scp for c in accepted):
            missing.append(uid)
    return missing


# -- acceptor -----------------------------------------------------------------
IdentityCheck = Callable[[UserIdentityRQ], tuple[bool, bytes | None]]


@dataclass(frozen=True, slots=True)
class Requestor:
    """Who is asking, as the transport saw it: the facts an admission check may weigh."""

    address: tuple[str, int] | None = None
    certificate: dict[str, Any] | None = None  # over TLS: the peer certificate as a dict
    assoc: Any = None  # what handlers see as event.assoc (the engine), for EVT_USER_ID


@dataclass(frozen=True, slots=True)
class Admission:
    """An application's decision about one A-ASSOCIATE-RQ (see ``AcceptorPolicy.admission``).

    ``reject`` refuses the association: A-ASSOCIATE-RJ rejected-permanent from the
    service-user with that reason (PS3.8 Table 9-21).  Otherwise the requestor is
    admitted with limits, answered per presentation context (result 1,
    user-rejection: the SOP class is supported, not for this requestor):
    ``refused`` contexts are rejected; in ``no_scu_role`` the requestor may not
    be the SCU (send requests), so a context asking no SCP role is rejected; in
    ``no_scp_role`` a proposed SCP role (C-GET sub-operations) is declined.
    """

    reject: int | None = None  # a RejectReason (service-user source)
    refused: frozenset[str] = frozenset()
    no_scu_role: frozenset[str] = frozenset()
    no_scp_role: frozenset[str] = frozenset()


ADMIT_ALL = Admission()
AdmissionCheck = Callable[[AssociateRQ, Requestor], Admission]


@dataclass(frozen=True, slots=True)
class IdentityVerdict:
    """An identity gate's answer.

    ``response`` is the server response to send when the requestor asked for a
    positive response (PS3.7 D.3.3.7.2); None sends no User Identity AC item
    (what an acceptor that did not check the identity does).  ``user`` names
    who was verified, for logs and audit; ``reason`` is the log line's why.
    """

    accepted: bool
    response: bytes | None = None
    user: str | None = None
    reason: str = ""


# Called for every A-ASSOCIATE-RQ, with or without a User Identity item, so that
# a gate can also refuse a requestor that sent none.
IdentityGate = Callable[[AssociateRQ, Requestor], IdentityVerdict]


@dataclass(slots=True)
class AcceptorPolicy:
    """What an acceptor agrees to.

    ``supported`` maps each abstract syntax to the transfer syntaxes we accept,
    best first.  ``scp_role_for`` lists SOP classes where the requestor may take
    the SCP role (we then act as SCU on that context, as in C-GET storage).
    """

    ae_title: str
    supported: Mapping[str, tuple[str, ...]]
    require_called_aet: bool = False
    allowed_calling_aets: frozenset[str] | None = None
    max_associations: int = 10
    max_pdu: int = DEFAULT_MAX_PDU
    scp_role_for: frozenset[str] = frozenset()
    prefer_requestor_order: bool = False
    identity_check: IdentityCheck | None = None
    identity_gate: IdentityGate | None = None
    admission: AdmissionCheck | None = None  # per requestor: reject, or limit its contexts


def _reject(result: int, source: int, reason: int) -> AssociateRJ:
    return AssociateRJ(result=result, source=source, reason=reason)


def _choose_syntax(pc: PresentationContextRQ, ours: tuple[str, ...], theirs_first: bool) -> str:
    if theirs_first:
        return next((ts for ts in pc.transfer_syntaxes if ts in ours), "")
    return next((ts for ts in ours if ts in pc.transfer_syntaxes), "")


def identity_rejection() -> AssociateRJ:
    """The A-ASSOCIATE-RJ for an identity the acceptor does not accept.

    PS3.7 D.3.3.7: rejected-permanent, source "DICOM UL service-provider (ACSE
    related function)", reason no-reason-given; a missing but required
    identity is answered the same way.
    """
    return _reject(RejectResult.PERMANENT, RejectSource.PROVIDER_ACSE, RejectReason.NO_REASON)


def answer_identity(
    rq: AssociateRQ, policy: AcceptorPolicy, requestor: Requestor | None
) -> tuple[AssociateRJ | None, UserIdentityAC | None, str | None]:
    """(rejection or None, the AC's identity item or None, the verified user).

    The gate decides; the server response travels only when the requestor
    asked for one.  Without a gate the older ``identity_check`` is applied to
    an identity item, and without either the item is ignored.
    """
    identity = rq.user_info.user_identity_rq
    if policy.identity_gate is not None:
        verdict = policy.identity_gate(rq, requestor or Requestor())
        if not verdict.accepted:
            LOG.warning(
                "rejecting association from %r: user identity refused: %s",
                rq.calling_ae.strip(),
                verdict.reason or "no reason given",
            )
            return identity_rejection(), None, None
        if verdict.reason:
            LOG.info("user identity from %r: %s", rq.calling_ae.strip(), verdict.reason)
        wanted = identity is not None and identity.positive_response_requested
        answer = (
            UserIdentityAC(verdict.response) if wanted and verdict.response is not None else None
        )
        return None, answer, verdict.user
    if identity is not None and policy.identity_check is not None:
        ok, response = policy.identity_check(identity)
        if not ok:
            return identity_rejection(), None, None
        if identity.positive_response_requested:
            return None, UserIdentityAC(response or b""), None
    return None, None, None


def accept_or_reject(
    rq: AssociateRQ,
    policy: AcceptorPolicy,
    active_associations: int = 0,
    requestor: Requestor | None = None,
) -> tuple[AssociateAC | AssociateRJ, Negotiated | None]:
    """Apply the policy: an AC with one result per proposed context, or an RJ.

    An AC even when no context fits: the RJ has no reason for that, the AC's
    per-context results name it (PS3.8 9.3.3.2, as dcmtk and pynetdicom answer).

    Rejection reasons follow PS3.8 Table 9-21: unknown application context and
    AE titles are the service-user's permanent refusals; too many associations
    is the presentation provider's transient "local limit exceeded".  The
    policy's ``admission`` check sees the request and ``requestor`` (address,
    certificate) and may refuse it or limit the contexts it gets.
    """
    if rq.application_context != APPLICATION_CONTEXT:
        return _reject(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            RejectReason.APPLICATION_CONTEXT_NOT_SUPPORTED,
        ), None
    if policy.require_called_aet and rq.called_ae.strip() != policy.ae_title.strip():
        return _reject(
            RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.CALLED_AE_NOT_RECOGNIZED
        ), None
    if (
        policy.allowed_calling_aets is not None
        and rq.calling_ae.strip() not in policy.allowed_calling_aets
    ):
        return _reject(
            RejectResult.PERMANENT,
            RejectSource.SERVICE_USER,
            RejectReason.CALLING_AE_NOT_RECOGNIZED,
        ), None
    admission = ADMIT_ALL
    if policy.admission is not None:
        admission = policy.admission(rq, requestor or Requestor())
        if admission.reject is not None:
            return _reject(
                RejectResult.PERMANENT, RejectSource.SERVICE_USER, admission.reject
            ), None
    if active_associations >= policy.max_associations:
        return _reject(
            RejectResult.TRANSIENT,
            RejectSource.PROVIDER_PRESENTATION,
            RejectReason.LOCAL_LIMIT_EXCEEDED,
        ), None
    identity = rq.user_info.user_identity_rq
    identity_rj, identity_ac, user = answer_identity(rq, policy, requestor)
    if identity_rj is not None:
        return identity_rj, None

    asked_roles = {r.sop_class_uid: r for r in rq.user_info.roles}
    answered_roles: dict[str, RoleSelection] = {}
    results: list[PresentationContextAC] = []
    contexts: dict[int, AcceptedContext] = {}
    rejected: dict[int, int] = {}
    for pc in rq.presentation_contexts:
        ours = policy.supported.get(pc.abstract_syntax)
        first = pc.transfer_syntaxes[0] if pc.transfer_syntaxes else ""
        if ours is not None and not _admitted(pc.abstract_syntax, asked_roles, admission):
            results.append(
                PresentationContextAC(pc.context_id, ContextResult.USER_REJECTION, first)
            )
            rejected[pc.context_id] = ContextResult.USER_REJECTION
            continue
        if ours is None:
            results.append(
                PresentationContextAC(
                    pc.context_id, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, first
                )
            )
            rejected[pc.context_id] = ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
            continue
        syntax = _choose_syntax(pc, ours, policy.prefer_requestor_order)
        if not syntax:
            results.append(
                PresentationContextAC(
                    pc.context_id, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED, first
                )
            )
            rejected[pc.context_id] = ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
            continue
        # Defaults without a role item: requestor is SCU, we are SCP.
        peer_scu, peer_scp = True, False
        ask = asked_roles.get(pc.abstract_syntax)
        if ask is not None:
            peer_scu = ask.scu_role
            peer_scp = (
                ask.scp_role
                and pc.abstract_syntax in policy.scp_role_for
                and pc.abstract_syntax not in admission.no_scp_role
            )
            answered_roles[pc.abstract_syntax] = RoleSelection(
                pc.abstract_syntax, peer_scu, peer_scp
            )
        results.append(PresentationContextAC(pc.context_id, ContextResult.ACCEPTANCE, syntax))
        contexts[pc.context_id] = AcceptedContext(
            pc.context_id, pc.abstract_syntax, syntax, as_scu=peer_scp, as_scp=peer_scu
        )

    if not contexts:
        # Accepted all the same, every context refused with its own reason, as dcmtk's
        # storescp and dcmqrscp and pynetdicom do: a rejection could only say "no reason",
        # the AC tells the requestor which abstract syntax was refused and why.
        LOG.info(
            "accepting association from %r with no presentation context: none of its %d fits",
            rq.calling_ae.strip(),
            len(rq.presentation_contexts),
        )

    async_ops = AsyncOperationsWindow(1, 1) if rq.user_info.async_ops is not None else None
    ac = AssociateAC(
        called_ae=rq.called_ae,
        calling_ae=rq.calling_ae,
        presentation_contexts=tuple(results),
        user_info=UserInformation(
            max_length=policy.max_pdu,
            implementation_class_uid=IMPLEMENTATION_CLASS_UID,
            implementation_version_name=IMPLEMENTATION_VERSION_NAME,
            async_ops=async_ops,
            roles=tuple(answered_roles.values()),
            user_identity_ac=identity_ac,
        ),
        application_context=rq.application_context,
    )
    negotiated = Negotiated(
        requestor=False,
        local_ae=policy.ae_title,
        peer_ae=rq.calling_ae,
        contexts=contexts,
        rejected=rejected,
        local_max_pdu=policy.max_pdu,
        peer_max_pdu=rq.user_info.max_length or 0,
        peer_implementation_class_uid=rq.user_info.implementation_class_uid,
        peer_implementation_version_name=rq.user_info.implementation_version_name,
        user_identity=identity,
        user=user,
    )
    return ac, negotiated


def _admitted(
    abstract_syntax: str, asked: Mapping[str, RoleSelection], admission: Admission
) -> bool:
    """Whether the admission leaves the requestor a role on a context of this SOP class."""
    if abstract_syntax in admission.refused:
        return False
    if abstract_syntax not in admission.no_scu_role:
        return True
    ask = asked.get(abstract_syntax)  # without a role item the requestor would be the SCU
    return ask is not None and ask.scp_role and abstract_syntax not in admission.no_scp_role
