"""An acceptor's answers, asked of the negotiation code itself rather than restated.

The acceptance policy of a conformance statement (asynchronous operations
window, extended negotiation, why an association or a context is refused) is
what :func:`~dimsefsm.assoc.negotiation.accept_or_reject` answers.  So the
statement proposes to it, with the AE's own policy, the A-ASSOCIATE-RQs that
ask each question and writes down the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dimsefsm.ae import AE
from dimsefsm.assoc.negotiation import accept_or_reject, build_request, propose_contexts
from dimsefsm.assoc.reasons import context_result_text, rejection_text
from dimsefsm.pdu.model import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOperationsWindow,
    SOPClassExtendedNegotiation,
    UserIdentityRQ,
    UserInformation,
)
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN, VERIFICATION

CALLING = "PROBE"
UNKNOWN_UID = "1.2.826.0.1.3680043.2.1143.999"  # no SOP class or transfer syntax has it


@dataclass(frozen=True)
class Answers:
    """What an acceptor answered to each probe, in words."""

    async_window: str
    extended_negotiation: str
    user_identity: str
    rejections: tuple[tuple[str, str], ...]  # (situation, the A-ASSOCIATE-RJ in words)
    context_refusals: tuple[tuple[str, str], ...]  # (situation, the result in words)


def _rq(
    ae: AE,
    contexts: Sequence[tuple[str, tuple[str, ...]]],
    *,
    called: str | None = None,
    context_name: str | None = None,
    async_ops: AsyncOperationsWindow | None = None,
    extended: tuple[SOPClassExtendedNegotiation, ...] = (),
    identity: UserIdentityRQ | None = None,
) -> AssociateRQ:
    info = UserInformation(
        max_length=16384,
        implementation_class_uid="1.2.3.4",
        async_ops=async_ops,
        extended_negotiation=extended,
        user_identity_rq=identity,
    )
    rq = AssociateRQ(
        called_ae=ae.ae_title if called is None else called,
        calling_ae=CALLING,
        presentation_contexts=propose_contexts(contexts),
        user_info=info,
    )
    if context_name is not None:
        rq = AssociateRQ(rq.called_ae, rq.calling_ae, rq.presentation_contexts, info, context_name)
    return rq


def _rejection(answer: AssociateAC | AssociateRJ, rq: AssociateRQ) -> str | None:
    if not isinstance(answer, AssociateRJ):
        return None
    return rejection_text(
        answer.result, answer.source, answer.reason, called_ae=rq.called_ae, calling_ae=CALLING
    )


def ask(ae: AE) -> Answers:
    """Propose to ``ae``'s acceptor policy what each question of Annex N needs answered."""
    policy = ae.policy()
    uid, syntaxes = next(iter(ae.supported_contexts.items()))
    one: list[tuple[str, tuple[str, ...]]] = [(uid, syntaxes)]

    window = AsyncOperationsWindow(16, 16)
    ac, _ = accept_or_reject(_rq(ae, one, async_ops=window), policy)
    async_window = "not answered"
    if isinstance(ac, AssociateAC) and ac.user_info.async_ops is not None:
        invoked, performed = (
            ac.user_info.async_ops.max_invoked,
            ac.user_info.async_ops.max_performed,
        )
        async_window = (
            f"a proposed window ({window.max_invoked}/{window.max_performed}) is answered "
            f"{invoked}/{performed}"
            + (": operations are synchronous" if (invoked, performed) == (1, 1) else "")
        )

    offered = tuple(
        SOPClassExtendedNegotiation(sop, b"\x01\x01\x01") for sop in ae.supported_contexts
    )
    ac, _ = accept_or_reject(_rq(ae, one, extended=offered), policy)
    answered = isinstance(ac, AssociateAC) and bool(ac.user_info.extended_negotiation)
    extended = (
        "answered for: " + ", ".join(e.sop_class_uid for e in ac.user_info.extended_negotiation)
        if answered and isinstance(ac, AssociateAC)
        else "not supported: SOP Class Extended Negotiation items are not answered, so the "
        "requestor must assume the defaults (no relational queries, no combined date-time "
        "or fuzzy semantic matching, no timezone adjustment; PS3.4 C.5.1)"
    )

    identity = UserIdentityRQ(2, True, b"probe", b"not-a-password")
    rq = _rq(ae, one, identity=identity)
    answer, _ = accept_or_reject(rq, policy)
    if isinstance(answer, AssociateRJ):
        user_identity = f"a username and password it cannot verify: {_rejection(answer, rq)}"
    elif answer.user_info.user_identity_ac is None:
        user_identity = (
            "not checked: an identity (even with a positive response requested) is accepted "
            "without one"
        )
    else:
        user_identity = "checked; a positive response is sent when requested"

    rejections: list[tuple[str, str]] = []
    probes = [
        ("unknown application context", _rq(ae, one, context_name=UNKNOWN_UID), 0),
        ("called AE title not ours", _rq(ae, one, called="NOT-" + ae.ae_title[:12]), 0),
        (
            f"{ae.maximum_associations} associations already established",
            _rq(ae, one),
            ae.maximum_associations,
        ),
    ]
    for situation, rq, active in probes:
        answer, _ = accept_or_reject(rq, policy, active)
        text = _rejection(answer, rq)
        rejections.append((situation, text or "accepted"))

    refusals: list[tuple[str, str]] = []
    for situation, contexts in (
        ("abstract syntax not supported", [(UNKNOWN_UID, (EXPLICIT_VR_LITTLE_ENDIAN,))]),
        ("none of the proposed transfer syntaxes supported", [(uid, (UNKNOWN_UID,))]),
    ):
        answer, _ = accept_or_reject(_rq(ae, contexts), policy)
        if isinstance(answer, AssociateAC):
            result = answer.presentation_contexts[0].result
            refusals.append((situation, context_result_text(result)))
    return Answers(async_window, extended, user_identity, tuple(rejections), tuple(refusals))


def requested_user_information(ae: AE) -> UserInformation:
    """The User Information item ``ae`` puts in its A-ASSOCIATE-RQ (built, not sent)."""
    from dimsefsm.association import Association

    probe = AE(ae.ae_title)
    probe.maximum_pdu_size = ae.maximum_pdu_size
    probe.add_requested_context(VERIFICATION)
    assoc = probe.prepare_association(Association, "ANY-SCP", None, None)
    proposal = assoc.engine.proposal
    assert proposal is not None  # a requestor's engine always has one
    return build_request(proposal).user_info
