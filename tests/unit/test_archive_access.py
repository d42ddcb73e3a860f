"""The archive's access policy: who may associate, and what each listed peer may do.

Negotiation is pure, so most of this runs on the A-ASSOCIATE-RQ alone: the
policy of a real ``QueryRetrieveSCP`` answering requests built in memory.  The
two answers that come from the application (0x0124 on a shared storage context,
0xA801 for a peer that may not receive) run over a socket on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom import Dataset

from dimsefsm import AE
from dimsefsm import status as st
from dimsefsm.archive.access import GOVERNED, AccessPolicy, describe_checks, resolve
from dimsefsm.archive.config import Peer, Settings
from dimsefsm.archive.scp import QueryRetrieveSCP
from dimsefsm.assoc.negotiation import (
    AcceptorPolicy,
    Requestor,
    RequestorProposal,
    accept_or_reject,
    build_request,
    propose_contexts,
)
from dimsefsm.engine import AssociationEngine
from dimsefsm.pdu.model import (
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    ContextResult,
    RejectReason,
    RejectResult,
    RejectSource,
    RoleSelection,
)
from dimsefsm.qr.registry import (
    MODALITY_WORKLIST_FIND,
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)
from dimsefsm.sop_class import CT_IMAGE_STORAGE, IMPLICIT_VR_LITTLE_ENDIAN, VERIFICATION
from tests.data.make import make_instance, write_instance
from tests.pair import EnginePair

LOCALHOST = "127.0.0.1"
IVRLE = IMPLICIT_VR_LITTLE_ENDIAN
SERVICES = [VERIFICATION, STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE, CT_IMAGE_STORAGE]


def settings(*peers: Peer) -> Settings:
    return Settings(peers={p.name: p for p in peers}, accept_any_caller=not peers)


def peer(ae_title: str, *may: str, host: str | None = None, check_host: bool = False) -> Peer:
    port = 11113 if host else None
    return Peer(ae_title.lower(), ae_title, host, port, frozenset(may), check_host)


def scp_policy(tmp_path: Path, *peers: Peer) -> AcceptorPolicy:
    """The acceptor policy of a QueryRetrieveSCP built with these peers (no socket)."""
    access = AccessPolicy.from_settings(settings(*peers), resolver=fake_dns)
    return QueryRetrieveSCP("ARCHIVE", tmp_path, access=access).ae.policy()


def fake_dns(host: str) -> frozenset[str]:
    return {"viewer.example": frozenset({"10.0.0.7"})}.get(host) or resolve(host)


def request(
    calling: str, abstract_syntaxes: Iterable[str] = SERVICES, roles: tuple[RoleSelection, ...] = ()
) -> AssociateRQ:
    contexts = propose_contexts([(uid, [IVRLE]) for uid in abstract_syntaxes])
    return build_request(RequestorProposal(calling, "ARCHIVE", contexts, roles=roles))


def results(answer: AssociateAC | AssociateRJ, rq: AssociateRQ) -> dict[str, int]:
    assert isinstance(answer, AssociateAC), answer
    names = {pc.context_id: pc.abstract_syntax for pc in rq.presentation_contexts}
    return {names[pc.context_id]: pc.result for pc in answer.presentation_contexts}


ACCEPT, REFUSED = ContextResult.ACCEPTANCE, ContextResult.USER_REJECTION


def test_no_peers_listed_admits_any_caller_to_everything(tmp_path: Path) -> None:
    rq = request("ANYONE")
    answer, _ = accept_or_reject(rq, scp_policy(tmp_path), requestor=Requestor(("10.9.9.9", 1)))
    assert set(results(answer, rq).values()) == {ACCEPT}


def test_unknown_calling_ae_is_rejected_permanent_service_user_reason_3(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = scp_policy(tmp_path, peer("CT01", "store"))
    with caplog.at_level("WARNING", logger="dimsefsm.access"):
        answer, negotiated = accept_or_reject(
            request("INTRUDER"), policy, requestor=Requestor(("10.9.9.9", 4000))
        )
    assert negotiated is None
    assert answer == AssociateRJ(
        RejectResult.PERMANENT, RejectSource.SERVICE_USER, RejectReason.CALLING_AE_NOT_RECOGNIZED
    )
    assert "'INTRUDER' at 10.9.9.9 refused: AE title not listed" in caplog.text


@pytest.mark.parametrize(
    ("address", "admitted"),
    [
        ("10.0.0.7", True),
        ("::ffff:10.0.0.7", True),  # an IPv4 peer seen through an IPv6 socket
        ("10.0.0.8", False),
        (None, False),
    ],
)
def test_check_host_compares_the_callers_address(
    tmp_path: Path, address: str | None, admitted: bool
) -> None:
    policy = scp_policy(tmp_path, peer("VIEW", "find", host="viewer.example", check_host=True))
    requestor = Requestor(None if address is None else (address, 5000))
    answer, _ = accept_or_reject(request("VIEW"), policy, requestor=requestor)
    if admitted:
        assert isinstance(answer, AssociateAC)
    else:
        assert isinstance(answer, AssociateRJ)
        assert answer.reason == RejectReason.CALLING_AE_NOT_RECOGNIZED


def test_without_check_host_any_address_will_do(tmp_path: Path) -> None:
    policy = scp_policy(tmp_path, peer("VIEW", "find", host="viewer.example"))
    answer, _ = accept_or_reject(request("VIEW"), policy, requestor=Requestor(("1.2.3.4", 1)))
    assert isinstance(answer, AssociateAC)


@pytest.mark.parametrize(
    ("may", "expected"),
    [
        ((), {VERIFICATION: ACCEPT}),
        (("find",), {VERIFICATION: ACCEPT, STUDY_ROOT_FIND: ACCEPT}),
        (("get",), {VERIFICATION: ACCEPT, STUDY_ROOT_GET: ACCEPT}),
        (("move", "receive"), {VERIFICATION: ACCEPT, STUDY_ROOT_MOVE: ACCEPT}),
        (("store",), {VERIFICATION: ACCEPT, CT_IMAGE_STORAGE: ACCEPT}),
    ],
)
def test_a_peer_gets_the_contexts_of_what_it_may_do_and_user_rejection_for_the_rest(
    tmp_path: Path, may: tuple[str, ...], expected: dict[str, int]
) -> None:
    rq = request("PEER")
    policy = scp_policy(tmp_path, peer("PEER", *may, host="10.0.0.1"))
    answer, _ = accept_or_reject(rq, policy, requestor=Requestor((LOCALHOST, 1)))
    assert results(answer, rq) == {uid: expected.get(uid, REFUSED) for uid in SERVICES}


def test_a_peer_allowed_nothing_but_echo_proposing_no_echo_gets_every_context_refused(
    tmp_path: Path,
) -> None:
    """Accepted with no context (as dcmtk and pynetdicom): the AC says what was refused."""
    rq = request("PEER", [STUDY_ROOT_GET])
    answer, negotiated = accept_or_reject(rq, scp_policy(tmp_path, peer("PEER", "find")))
    assert isinstance(answer, AssociateAC)
    assert results(answer, rq) == {STUDY_ROOT_GET: REFUSED}
    assert negotiated is not None and negotiated.contexts == {}


def test_worklist_is_governed_by_find() -> None:
    assert MODALITY_WORKLIST_FIND in GOVERNED["find"]


def test_storage_context_for_cget_is_kept_for_a_peer_that_may_get_but_not_store(
    tmp_path: Path,
) -> None:
    """A storage context proposing the SCP role is shared: C-GET sub-operations need it."""
    both = (RoleSelection(CT_IMAGE_STORAGE, scu_role=True, scp_role=True),)
    policy = scp_policy(tmp_path, peer("VIEW", "get"))
    rq = request("VIEW", [STUDY_ROOT_GET, CT_IMAGE_STORAGE], roles=both)
    answer, negotiated = accept_or_reject(rq, policy)
    assert results(answer, rq) == {STUDY_ROOT_GET: ACCEPT, CT_IMAGE_STORAGE: ACCEPT}
    assert isinstance(answer, AssociateAC) and negotiated is not None
    assert answer.user_info.roles == (RoleSelection(CT_IMAGE_STORAGE, True, True),)
    # Without a role item the requestor could only store: refused.
    rq2 = request("VIEW", [STUDY_ROOT_GET, CT_IMAGE_STORAGE])
    answer2, _ = accept_or_reject(rq2, policy)
    assert results(answer2, rq2) == {STUDY_ROOT_GET: ACCEPT, CT_IMAGE_STORAGE: REFUSED}


def test_a_peer_that_may_store_but_not_get_is_not_granted_the_scp_role(tmp_path: Path) -> None:
    both = (RoleSelection(CT_IMAGE_STORAGE, scu_role=True, scp_role=True),)
    rq = request("CT01", [CT_IMAGE_STORAGE], roles=both)
    answer, _ = accept_or_reject(rq, scp_policy(tmp_path, peer("CT01", "store")))
    assert isinstance(answer, AssociateAC)
    assert answer.user_info.roles == (RoleSelection(CT_IMAGE_STORAGE, True, False),)


def test_the_engine_hands_the_transports_peer_address_to_the_policy(tmp_path: Path) -> None:
    policy = scp_policy(tmp_path, peer("VIEW", "find", host="10.0.0.7", check_host=True))
    outcomes = []
    for address in ("10.0.0.7", "10.0.0.99"):
        proposal = RequestorProposal("VIEW", "ARCHIVE", propose_contexts([(VERIFICATION, [IVRLE])]))
        acceptor = AssociationEngine(requestor=False, policy=policy)
        acceptor.peer_address = (address, 4000)
        pair = EnginePair(AssociationEngine(requestor=True, proposal=proposal), acceptor)
        pair.connect()
        outcomes.append(pair.requestor.outcome)
    assert outcomes == ["established", "rejected"]


def test_summary_says_who_may_associate_and_who_may_retrieve() -> None:
    assert "any calling AE title is accepted" in AccessPolicy().summary()
    policy = AccessPolicy.from_settings(
        settings(peer("CT01", "store"), peer("VIEW", "get", "find"), peer("PACS", "move"))
    )
    assert policy.summary() == (
        "3 peer(s) listed, others refused (0 checked by host); may retrieve: PACS, VIEW"
    )


def test_hosts_are_resolved_once_and_an_unknown_host_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert resolve("127.0.0.1") == {"127.0.0.1"}
    assert resolve("::ffff:127.0.0.1") == {"127.0.0.1"}

    def no_dns(host: str, *args: Any, **kw: Any) -> Any:
        raise OSError(f"no such host {host}")

    monkeypatch.setattr("socket.getaddrinfo", no_dns)
    with pytest.raises(ValueError, match=r"cannot resolve host 'nowhere\.example'"):
        resolve("nowhere.example")


def test_the_checks_listed_for_the_conformance_statement_name_the_answers() -> None:
    rows = dict(describe_checks())
    assert "reason 3" in rows["calling AE title (when peers are listed)"]
    assert rows['`may` lacks "find"'].endswith("result 1 (user-rejection)")
    assert any("0x0124" in answer for answer in rows.values())
    assert any("0xA801" in answer for answer in rows.values())


# -- the application's answers, over a socket --------------------------------------------
@pytest.fixture
def archive(tmp_path: Path) -> Iterator[tuple[QueryRetrieveSCP, tuple[str, int]]]:
    """An archive where VIEW may get (not store) and CT01 may store (not receive)."""
    access = AccessPolicy.from_settings(
        settings(peer("VIEW", "get", "find"), peer("CT01", "store", "move", host=LOCALHOST))
    )
    scp = QueryRetrieveSCP("ARCHIVE", tmp_path / "store", access=access)
    scp.load()
    server = scp.ae.start_server((LOCALHOST, 0), block=False, evt_handlers=scp.handlers)
    yield scp, server.address
    server.shutdown()


def client(ae_title: str, *contexts: str, **roles: Any) -> AE:
    ae = AE(ae_title)
    for uid in contexts:
        ae.add_requested_context(uid)
    if roles.get("storage_role"):
        ae.propose_role(CT_IMAGE_STORAGE, scu_role=True, scp_role=True)
    return ae


def test_cstore_on_a_storage_context_kept_for_cget_is_refused_0124(
    archive: tuple[QueryRetrieveSCP, tuple[str, int]], tmp_path: Path
) -> None:
    _, address = archive
    path = write_instance(tmp_path / "ct.dcm", make_instance())
    ae = client("VIEW", STUDY_ROOT_GET, CT_IMAGE_STORAGE, storage_role=True)
    with ae.associate(*address, ae_title="ARCHIVE") as assoc:
        status = assoc.send_c_store(path)
    assert status.Status == st.NOT_AUTHORIZED
    assert status.ErrorComment == "VIEW may not store here"
    assert not list((tmp_path / "store").rglob("*.dcm"))  # nothing kept
    with client("CT01", CT_IMAGE_STORAGE).associate(*address, ae_title="ARCHIVE") as assoc:
        assert assoc.send_c_store(path).Status == st.SUCCESS


def test_cmove_to_a_listed_peer_that_may_not_receive_is_a801(
    archive: tuple[QueryRetrieveSCP, tuple[str, int]], caplog: pytest.LogCaptureFixture
) -> None:
    _, address = archive
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = "1.2.3"
    ae = client("CT01", STUDY_ROOT_MOVE)
    with (
        caplog.at_level("WARNING", logger="dimsefsm.qrscp"),
        ae.associate(*address, ae_title="ARCHIVE") as assoc,
    ):
        responses = list(assoc.send_c_move(query, "CT01", STUDY_ROOT_MOVE))
    assert [status.Status for status, _ in responses] == [st.MOVE_DESTINATION_UNKNOWN]
    assert "a peer that may not receive, refused as an unknown destination 'CT01'" in caplog.text
