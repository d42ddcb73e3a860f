"""Association negotiation, both roles, as pure functions (PS3.8 7.1, PS3.7 D.3.3)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from dimsefsm.assoc.negotiation import (
    AcceptorPolicy,
    Admission,
    Requestor,
    RequestorProposal,
    accept_or_reject,
    build_request,
    propose_contexts,
    read_acceptance,
    ungranted_scp_roles,
)
from dimsefsm.pdu.model import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOperationsWindow,
    ContextResult,
    RejectReason,
    RejectResult,
    RejectSource,
    RoleSelection,
    UserIdentityRQ,
)
from dimsefsm.sop_class import (
    EXPLICIT_VR_LITTLE_ENDIAN as EVRLE,
)
from dimsefsm.sop_class import (
    IMPLICIT_VR_LITTLE_ENDIAN as IVRLE,
)
from dimsefsm.sop_class import (
    VERIFICATION,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def _rq(
    contexts: Iterable[tuple[str, Iterable[str]]],
    roles: tuple[RoleSelection, ...] = (),
    called: str = "SCP",
    calling: str = "SCU",
    **kw: Any,
) -> AssociateRQ:
    return build_request(
        RequestorProposal(calling, called, propose_contexts(contexts), roles=roles, **kw)
    )


def _policy(**kw: Any) -> AcceptorPolicy:
    supported = kw.pop("supported", {VERIFICATION: (EVRLE, IVRLE), CT: (IVRLE,)})
    return AcceptorPolicy(ae_title="SCP", supported=supported, **kw)


def test_contexts_get_odd_ids_in_order() -> None:
    ctxs = propose_contexts([(VERIFICATION, [IVRLE]), (CT, [EVRLE, IVRLE])])
    assert [c.context_id for c in ctxs] == [1, 3]
    assert ctxs[1].transfer_syntaxes == (EVRLE, IVRLE)


def test_acceptor_picks_its_preferred_syntax_and_rejects_unknown_classes() -> None:
    rq = _rq([(VERIFICATION, [IVRLE, EVRLE]), (MR, [IVRLE]), (CT, [EVRLE])])
    ac, negotiated = accept_or_reject(rq, _policy())
    assert isinstance(ac, AssociateAC)
    results = {pc.context_id: (pc.result, pc.transfer_syntax) for pc in ac.presentation_contexts}
    assert results[1] == (ContextResult.ACCEPTANCE, EVRLE)
    assert results[3][0] == ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED
    assert results[5][0] == ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED
    assert negotiated is not None and list(negotiated.contexts) == [1]
    assert negotiated.contexts[1].as_scp and not negotiated.contexts[1].as_scu


def test_acceptor_can_prefer_the_requestors_order() -> None:
    rq = _rq([(VERIFICATION, [IVRLE, EVRLE])])
    ac, _ = accept_or_reject(rq, _policy(prefer_requestor_order=True))
    assert isinstance(ac, AssociateAC)
    assert ac.presentation_contexts[0].transfer_syntax == IVRLE


def test_wrong_called_ae_title_is_a_permanent_user_rejection_reason_7() -> None:
    ac, negotiated = accept_or_reject(
        _rq([(VERIFICATION, [IVRLE])], called="OTHER"), _policy(require_called_aet=True)
    )
    assert ac == AssociateRJ(result=1, source=1, reason=7) and negotiated is None


def test_called_ae_title_is_compared_without_padding() -> None:
    ac, _ = accept_or_reject(
        _rq([(VERIFICATION, [IVRLE])], called="SCP  "), _policy(require_called_aet=True)
    )
    assert isinstance(ac, AssociateAC)


def test_unknown_calling_ae_title_is_reason_3() -> None:
    ac, _ = accept_or_reject(
        _rq([(VERIFICATION, [IVRLE])]), _policy(allowed_calling_aets=frozenset({"FRIEND"}))
    )
    assert ac == AssociateRJ(result=1, source=1, reason=3)


def test_too_many_associations_is_transient_local_limit_exceeded() -> None:
    ac, _ = accept_or_reject(_rq([(VERIFICATION, [IVRLE])]), _policy(max_associations=2), 2)
    assert ac == AssociateRJ(result=2, source=3, reason=2)


def test_wrong_application_context_is_reason_2() -> None:
    from dataclasses import replace

    rq = replace(_rq([(VERIFICATION, [IVRLE])]), application_context="1.2.3")
    ac, _ = accept_or_reject(rq, _policy())
    assert ac == AssociateRJ(result=1, source=1, reason=2)


def test_no_supported_context_accepts_with_every_context_refused() -> None:
    """As dcmtk and pynetdicom: an AC whose results say why, not an RJ with "no reason"."""
    ac, negotiated = accept_or_reject(_rq([(MR, [IVRLE])]), _policy())
    assert isinstance(ac, AssociateAC)
    assert [(pc.context_id, pc.result) for pc in ac.presentation_contexts] == [
        (1, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED)
    ]
    assert negotiated is not None and negotiated.contexts == {}
    assert negotiated.rejected == {1: ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED}


def test_max_pdu_both_ways() -> None:
    rq = _rq([(VERIFICATION, [IVRLE])], max_pdu=32768)
    ac, negotiated = accept_or_reject(rq, _policy(max_pdu=65536))
    assert isinstance(ac, AssociateAC) and negotiated is not None
    assert ac.user_info.max_length == 65536
    assert negotiated.peer_max_pdu == 32768 and negotiated.local_max_pdu == 65536
    mine = read_acceptance(rq, ac)
    assert mine.peer_max_pdu == 65536 and mine.local_max_pdu == 32768


def test_role_selection_for_cget_storage() -> None:
    """The requestor asks to be SCP for CT; the acceptor grants it only when configured."""
    roles = (RoleSelection(CT, scu_role=False, scp_role=True),)
    rq = _rq([(CT, [IVRLE])], roles=roles)
    ac, negotiated = accept_or_reject(rq, _policy(scp_role_for=frozenset({CT})))
    assert isinstance(ac, AssociateAC) and negotiated is not None
    assert ac.user_info.roles == (RoleSelection(CT, False, True),)
    assert negotiated.contexts[1].as_scu and not negotiated.contexts[1].as_scp
    mine = read_acceptance(rq, ac)
    assert mine.contexts[1].as_scp and not mine.contexts[1].as_scu
    # Not configured: the SCP role is refused, the requestor keeps nothing it did not ask for.
    ac2, _ = accept_or_reject(rq, _policy())
    assert isinstance(ac2, AssociateAC)
    assert ac2.user_info.roles == (RoleSelection(CT, False, False),)
    mine2 = read_acceptance(rq, ac2)
    assert not mine2.contexts[1].as_scp and not mine2.contexts[1].as_scu


def test_scp_roles_asked_for_but_not_granted_are_named() -> None:
    """C-GET storage classes the peer accepted only with default roles (pynetdicom #559, #812)."""
    roles = (RoleSelection(CT, scu_role=False, scp_role=True),)
    rq = _rq([(CT, [IVRLE]), (MR, [IVRLE])], roles=(*roles, RoleSelection(MR, False, True)))
    granted, _ = accept_or_reject(rq, _policy(scp_role_for=frozenset({CT})))
    assert isinstance(granted, AssociateAC)
    # CT granted; MR not supported at all (rejected context), so nothing to say about it.
    assert ungranted_scp_roles(rq, read_acceptance(rq, granted)) == []
    refused, _ = accept_or_reject(rq, _policy())
    assert isinstance(refused, AssociateAC)
    assert ungranted_scp_roles(rq, read_acceptance(rq, refused)) == [CT]


def test_no_role_items_back_when_none_asked_and_defaults_apply() -> None:
    rq = _rq([(CT, [IVRLE])])
    ac, _ = accept_or_reject(rq, _policy(scp_role_for=frozenset({CT})))
    assert isinstance(ac, AssociateAC) and ac.user_info.roles == ()
    mine = read_acceptance(rq, ac)
    assert mine.contexts[1].as_scu and not mine.contexts[1].as_scp
    assert mine.find_context(CT) is mine.contexts[1]
    assert mine.find_context(CT, as_scp=True) is None


def test_async_window_answered_synchronous_only_when_asked() -> None:
    from dataclasses import replace

    rq = _rq([(VERIFICATION, [IVRLE])])
    rq = replace(rq, user_info=replace(rq.user_info, async_ops=AsyncOperationsWindow(5, 5)))
    ac, _ = accept_or_reject(rq, _policy())
    assert isinstance(ac, AssociateAC) and ac.user_info.async_ops == AsyncOperationsWindow(1, 1)


def test_user_identity_checked_and_answered_when_asked() -> None:
    identity = UserIdentityRQ(2, True, b"alice", b"secret")
    rq = _rq([(VERIFICATION, [IVRLE])], user_identity=identity)

    def check(i: UserIdentityRQ) -> tuple[bool, bytes | None]:
        return i.primary == b"alice" and i.secondary == b"secret", None

    ac, negotiated = accept_or_reject(rq, _policy(identity_check=check))
    assert isinstance(ac, AssociateAC) and ac.user_info.user_identity_ac is not None
    assert negotiated is not None and negotiated.user_identity == identity
    bad = _rq([(VERIFICATION, [IVRLE])], user_identity=UserIdentityRQ(2, True, b"eve", b"x"))
    assert accept_or_reject(bad, _policy(identity_check=check))[0] == AssociateRJ(1, 2, 1)


def test_requestor_reads_rejected_and_missing_results() -> None:
    rq = _rq([(VERIFICATION, [IVRLE]), (CT, [IVRLE])])
    ac, _ = accept_or_reject(rq, _policy(supported={VERIFICATION: (IVRLE,)}))
    assert isinstance(ac, AssociateAC)
    mine = read_acceptance(rq, ac)
    assert list(mine.contexts) == [1]
    assert mine.rejected == {3: ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED}


def test_engine_warns_at_negotiation_when_scp_roles_are_not_granted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dimsefsm.engine import AssociationEngine
    from tests.pair import EnginePair

    proposal = RequestorProposal(
        "SCU",
        "SCP",
        propose_contexts([(CT, [IVRLE])]),
        roles=(RoleSelection(CT, scu_role=False, scp_role=True),),
    )
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(requestor=False, policy=_policy()),
    )
    with caplog.at_level("WARNING", logger="dimsefsm.engine"):
        pair.connect()
    assert pair.requestor.is_established
    assert "without the SCP role we asked for (CT Image Storage)" in caplog.text


def test_admission_hook_sees_the_requestor_and_may_reject_or_limit() -> None:
    seen: list[tuple[str, Requestor]] = []

    def admit(rq: AssociateRQ, requestor: Requestor) -> Admission:
        seen.append((rq.calling_ae, requestor))
        if rq.calling_ae == "STRANGER":
            return Admission(reject=RejectReason.CALLING_AE_NOT_RECOGNIZED)
        return Admission(refused=frozenset({CT}))

    policy = _policy(admission=admit)
    who = Requestor(("192.0.2.5", 4100))
    rj, _ = accept_or_reject(_rq([(VERIFICATION, [IVRLE])], calling="STRANGER"), policy, 0, who)
    assert rj == AssociateRJ(
        RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.CALLING_AE_NOT_RECOGNIZED
    )
    ac, negotiated = accept_or_reject(_rq([(VERIFICATION, [IVRLE]), (CT, [IVRLE])]), policy)
    assert isinstance(ac, AssociateAC) and negotiated is not None
    assert [pc.result for pc in ac.presentation_contexts] == [
        ContextResult.ACCEPTANCE,
        ContextResult.USER_REJECTION,
    ]
    assert negotiated.rejected == {3: ContextResult.USER_REJECTION}
    assert seen == [("STRANGER", who), ("SCU", Requestor())]
