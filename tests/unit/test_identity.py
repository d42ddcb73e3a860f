"""User identity (PS3.7 D.3.3.7): password hashes, the acceptor's decision, both roles in memory."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path
from typing import Any

import pytest

from dimsefsm import evt
from dimsefsm.archive.config import Settings, load_settings
from dimsefsm.archive.security import identity_rules
from dimsefsm.assoc.negotiation import (
    AcceptorPolicy,
    IdentityVerdict,
    Requestor,
    RequestorProposal,
    accept_or_reject,
    build_request,
    propose_contexts,
)
from dimsefsm.cli.connect import identity_from_args
from dimsefsm.cli.main import build_parser, main
from dimsefsm.engine import AssociationEngine
from dimsefsm.identity import (
    IdentityRules,
    UserIdentityEvent,
    certificate_matches,
    certificate_names,
    gate_from_handler,
    username_identity,
)
from dimsefsm.passwords import hash_password, is_valid_hash, parse_hash, verify_password
from dimsefsm.pdu.model import AssociateAC, AssociateRJ, AssociateRQ, UserIdentityRQ
from dimsefsm.sop_class import IMPLICIT_VR_LITTLE_ENDIAN as IVRLE
from dimsefsm.sop_class import VERIFICATION
from tests.pair import EnginePair

# Cheap parameters for tests: verify_password reads them back from the string.
FAST = {"n": 1 << 10, "r": 8, "p": 1}
ALICE = hash_password("wonderland", **FAST)
USERS = {"alice": ALICE}
REJECTED = AssociateRJ(1, 2, 1)  # permanent, ACSE provider, no reason given (PS3.7 D.3.3.7)


# -- passwords ---------------------------------------------------------------------
def test_hash_is_salted_scrypt_with_parameters_in_the_string() -> None:
    first, second = hash_password("pw", **FAST), hash_password("pw", **FAST)
    assert first != second  # a random salt each time
    assert first.startswith("scrypt$1024$8$1$")
    parsed = parse_hash(first)
    assert parsed is not None and len(parsed[3]) == 16 and len(parsed[4]) == 32
    assert "pw" not in first.split("$", 4)[4]


def test_default_parameters_are_the_interactive_login_ones() -> None:
    assert hash_password("pw").startswith("scrypt$16384$8$1$")


def test_verify_accepts_the_password_and_nothing_else() -> None:
    assert verify_password("wonderland", ALICE)
    assert verify_password(b"wonderland", ALICE)
    assert not verify_password("wonderlanD", ALICE)
    assert not verify_password("", ALICE)


@pytest.mark.parametrize(
    "stored",
    [
        "wonderland",  # a plain password pasted by mistake
        "scrypt$1024$8$1$notbase64!$AAAA",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # n not a power of two
        "scrypt$1073741824$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,  # 1 TiB of memory
        "bcrypt$1024$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44,
    ],
)
def test_malformed_stored_hash_never_verifies(stored: str) -> None:
    assert not is_valid_hash(stored)
    assert not verify_password("wonderland", stored)


# -- the decision ----------------------------------------------------------------
def _check(
    rules: IdentityRules,
    identity: UserIdentityRQ | None,
    ae: str = "SCU",
    certificate: dict[str, Any] | None = None,
) -> IdentityVerdict:
    return rules(_rq(identity, ae), Requestor(("127.0.0.1", 1234), certificate))


def test_username_and_password_checked() -> None:
    rules = IdentityRules(USERS)
    good = _check(rules, username_identity("alice", "wonderland"))
    assert good.accepted and good.user == "alice" and good.response == b""
    wrong = _check(rules, username_identity("alice", "guess"))
    assert not wrong.accepted and "wrong password" in wrong.reason
    unknown = _check(rules, username_identity("mallory", "wonderland"))
    assert not unknown.accepted and "unknown user" in unknown.reason


def test_username_alone_must_be_a_known_user() -> None:
    rules = IdentityRules(USERS)
    assert _check(rules, username_identity("alice")).user == "alice"
    assert not _check(rules, username_identity("mallory")).accepted
    assert not _check(rules, UserIdentityRQ(1, False, b"\xff\xfe")).accepted


def test_required_identity_missing_is_refused_only_for_that_peer() -> None:
    rules = IdentityRules(USERS, required=frozenset({"MODALITY"}))
    missing = _check(rules, None, "MODALITY")
    assert not missing.accepted and "required" in missing.reason
    assert _check(rules, None, "OTHER").accepted
    assert not _check(IdentityRules(USERS, required=frozenset({"*"})), None, "OTHER").accepted


@pytest.mark.parametrize("kind", [3, 4, 5])
def test_unverifiable_types_ignored_unless_required(kind: int) -> None:
    token = UserIdentityRQ(kind, True, b"opaque-token")
    ignored = _check(IdentityRules(USERS), token)
    assert ignored.accepted and ignored.user is None and ignored.response is None
    assert "not verified" in ignored.reason
    required = _check(IdentityRules(USERS, required=frozenset({"SCU"})), token)
    assert not required.accepted


CERT = {
    "subject": (
        (("countryName", "DE"),),
        (("organizationName", "Hospital"),),
        (("commonName", "modality-1"),),
    )
}


def test_certificate_names_in_rfc4514_order() -> None:
    assert certificate_names(CERT) == ("modality-1", "CN=modality-1,O=Hospital,C=DE")
    assert certificate_matches(CERT, "modality-1")
    assert certificate_matches(CERT, "CN=modality-1, O=Hospital, C=DE")
    assert not certificate_matches(CERT, "modality-2")
    assert not certificate_matches(CERT, "CN=modality-1,O=Other,C=DE")
    assert not certificate_matches(None, "modality-1")


def test_certificate_identifies_a_peer_that_must_identify() -> None:
    rules = IdentityRules(
        USERS, required=frozenset({"MODALITY"}), tls_subjects={"MODALITY": "modality-1"}
    )
    by_cert = _check(rules, None, "MODALITY", CERT)
    assert by_cert.accepted and by_cert.user == "modality-1"
    assert not _check(rules, None, "MODALITY", None).accepted
    other = {"subject": ((("commonName", "intruder"),),)}
    assert not _check(rules, None, "MODALITY", other).accepted
    # A wrong password is still wrong with the right certificate.
    assert not _check(rules, username_identity("alice", "guess"), "MODALITY", CERT).accepted


# -- negotiation -------------------------------------------------------------------
def _rq(identity: UserIdentityRQ | None, calling: str = "SCU") -> AssociateRQ:
    contexts = propose_contexts([(VERIFICATION, [IVRLE])])
    return build_request(RequestorProposal(calling, "SCP", contexts, user_identity=identity))


def _policy(gate: Any) -> AcceptorPolicy:
    return AcceptorPolicy("SCP", {VERIFICATION: (IVRLE,)}, identity_gate=gate)


def test_positive_response_only_when_asked() -> None:
    policy = _policy(IdentityRules(USERS))
    asked = username_identity("alice", "wonderland", positive_response=True)
    ac, negotiated = accept_or_reject(_rq(asked), policy)
    assert isinstance(ac, AssociateAC)
    assert ac.user_info.user_identity_ac is not None
    assert ac.user_info.user_identity_ac.server_response == b""
    assert negotiated is not None and negotiated.user == "alice"
    ac, _ = accept_or_reject(_rq(username_identity("alice", "wonderland")), policy)
    assert isinstance(ac, AssociateAC) and ac.user_info.user_identity_ac is None


def test_refused_identity_is_a_permanent_acse_rejection() -> None:
    policy = _policy(IdentityRules(USERS, required=frozenset({"*"})))
    assert accept_or_reject(_rq(username_identity("alice", "x")), policy)[0] == REJECTED
    assert accept_or_reject(_rq(None), policy)[0] == REJECTED


def test_ignored_token_gets_no_positive_response() -> None:
    ac, negotiated = accept_or_reject(
        _rq(UserIdentityRQ(5, True, b"jwt")), _policy(IdentityRules(USERS))
    )
    assert isinstance(ac, AssociateAC) and ac.user_info.user_identity_ac is None
    assert negotiated is not None and negotiated.user is None


def test_evt_user_id_handler_decides_like_pynetdicom() -> None:
    seen: list[UserIdentityEvent] = []

    def handler(event: UserIdentityEvent) -> tuple[bool, bytes | None]:
        seen.append(event)
        return event.primary_field == b"alice" and event.secondary_field == b"pw", b"token"

    policy = _policy(gate_from_handler(handler))
    ac, _ = accept_or_reject(_rq(UserIdentityRQ(2, True, b"alice", b"pw")), policy)
    assert isinstance(ac, AssociateAC) and ac.user_info.user_identity_ac is not None
    assert ac.user_info.user_identity_ac.server_response == b"token"
    assert seen[0].user_id_type == 2 and seen[0].event is evt.EVT_USER_ID
    assert accept_or_reject(_rq(UserIdentityRQ(2, True, b"alice", b"no")), policy)[0] == REJECTED
    ac, _ = accept_or_reject(_rq(None), policy)  # no identity: the handler is not asked
    assert isinstance(ac, AssociateAC) and len(seen) == 2


def test_evt_user_id_handler_failure_rejects() -> None:
    def handler(event: UserIdentityEvent) -> tuple[bool, bytes | None]:
        raise RuntimeError("directory down")

    policy = _policy(gate_from_handler(handler))
    assert accept_or_reject(_rq(UserIdentityRQ(1, False, b"alice")), policy)[0] == REJECTED


def test_requestor_reads_the_server_response_in_memory() -> None:
    contexts = propose_contexts([(VERIFICATION, [IVRLE])])
    identity = username_identity("alice", "wonderland", positive_response=True)
    requestor = AssociationEngine(
        requestor=True,
        proposal=RequestorProposal("SCU", "SCP", contexts, user_identity=identity),
    )
    acceptor = AssociationEngine(requestor=False, policy=_policy(IdentityRules(USERS)))
    pair = EnginePair(requestor, acceptor)
    pair.connect()
    assert requestor.is_established and requestor.negotiated is not None
    assert requestor.negotiated.user_identity_response == b""
    assert acceptor.negotiated is not None and acceptor.negotiated.user == "alice"


def test_requestor_with_a_wrong_password_is_rejected_in_memory() -> None:
    contexts = propose_contexts([(VERIFICATION, [IVRLE])])
    requestor = AssociationEngine(
        requestor=True,
        proposal=RequestorProposal(
            "SCU", "SCP", contexts, user_identity=username_identity("alice", "guess")
        ),
    )
    acceptor = AssociationEngine(requestor=False, policy=_policy(IdentityRules(USERS)))
    EnginePair(requestor, acceptor).connect()
    assert requestor.outcome == "rejected" and requestor.rejection == REJECTED


# -- the command line ----------------------------------------------------------------
def test_passwd_prints_a_users_line_that_verifies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    assert main(["passwd", "dr who"]) == 0
    line = capsys.readouterr().out
    users = tomllib.loads(line)
    assert list(users) == ["dr who"]
    assert verify_password("s3cret pass", users["dr who"])
    assert not verify_password("s3cret pass\n", users["dr who"])


def test_passwd_refuses_an_empty_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["passwd", "alice"]) == 2
    assert capsys.readouterr().out == ""


def test_qrscp_refuses_a_plain_password_under_users(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "qrscp.toml"
    config.write_text('[users]\nalice = "wonderland"\n')
    assert main(["qrscp", "--config", str(config), "--check"]) == 2
    assert "dimsefsm passwd alice" in capsys.readouterr().err


def test_settings_become_identity_rules(tmp_path: Path) -> None:
    config = tmp_path / "qrscp.toml"
    config.write_text(
        '[peers.ct]\nae_title = "CT1"\nmay = ["store"]\nidentity = "required"\n'
        'tls_subject = "ct1"\n'
        f'[users]\nalice = "{ALICE}"\n'
    )
    rules = identity_rules(load_settings(config))
    assert rules is not None
    assert rules.required == frozenset({"CT1"}) and rules.tls_subjects == {"CT1": "ct1"}
    assert dict(rules.users) == {"alice": ALICE}
    assert identity_rules(Settings()) is None


def test_scu_identity_flags() -> None:
    parser = build_parser()
    args = parser.parse_args(["echoscu", "h", "1", "-usr", "bob", "-pwd", "pw", "-usr-req"])
    assert identity_from_args(args) == UserIdentityRQ(2, True, b"bob", b"pw")
    args = parser.parse_args(["echoscu", "h", "1", "--user", "bob"])
    assert identity_from_args(args) == UserIdentityRQ(1, False, b"bob")
    args = parser.parse_args(["echoscu", "h", "1", "--user", "bob", "-epw", "--pos-response"])
    assert identity_from_args(args) == UserIdentityRQ(2, True, b"bob", b"")
    args = parser.parse_args(["echoscu", "h", "1", "--password", "pw"])
    assert isinstance(identity_from_args(args), str)


def test_qrscp_with_an_unwritable_audit_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "missing-dir" / "audit.jsonl"
    code = main(["qrscp", "0", "-od", str(tmp_path / "store"), "--audit", str(target)])
    assert code == 2
    assert f"qrscp: audit {target}: No such file or directory" in capsys.readouterr().err
