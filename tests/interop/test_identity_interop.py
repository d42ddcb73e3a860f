"""User identity (PS3.7 D.3.3.7) and the audit trail of ``dimsefsm qrscp``, with real peers.

qrscp reads ``[users]`` (hashes from ``dimsefsm passwd``) and per-peer
``identity = "required"`` from its configuration file.  Requestors:
pynetdicom's AE with a ``UserIdentityNegotiation`` item, dcmtk's storescu
(``-usr``/``-pwd``/``-rsp``: dcmtk 3.6.7's only SCU with identity flags),
and our own SCUs' ``--user``/``--password``/``--pos-response``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE as PynetdicomAE
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from dimsefsm.passwords import hash_password
from tests.data.make import make_study, write_study
from tests.interop.peers import DimsefsmServer, LineReadyServer, free_port, run_tool
from tests.tls_pki import make_pki

QR_AET = "QRSCP"
LOCALHOST = "127.0.0.1"
PASSWORD = "wonderland"


def _config(tmp_path: Path, audit: Path | None = None) -> Path:
    hashed = hash_password(PASSWORD, n=1 << 12)
    lines = [
        f'ae_title = "{QR_AET}"',
        f'storage = "{tmp_path / "store"}"',
    ]
    if audit is not None:
        lines.append(f'audit = "{audit}"')
    lines += [
        "",
        "[peers.open]",
        'ae_title = "OPENSCU"',
        'may = ["store", "find", "get"]',
        "",
        "[peers.strict]",
        'ae_title = "STRICTSCU"',
        'may = ["store", "find"]',
        'identity = "required"',
        "",
        "[users]",
        f'alice = "{hashed}"',
    ]
    path = tmp_path / "qrscp.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def qrscp(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path, qrscp_backend: str
) -> Iterator[DimsefsmServer]:
    yield dimsefsm_server("qrscp", "--config", str(_config(tmp_path)))


def _pynetdicom_associate(port: int, calling: str, identity: UserIdentityNegotiation | None) -> Any:
    ae = PynetdicomAE(ae_title=calling)
    ae.add_requested_context(Verification)
    return ae.associate(
        LOCALHOST, port, ae_title=QR_AET, ext_neg=[identity] if identity is not None else None
    )


def _identity(
    user: bytes, password: bytes | None = None, response: bool = False
) -> UserIdentityNegotiation:
    item = UserIdentityNegotiation()
    item.user_identity_type = 1 if password is None else 2
    item.primary_field = user
    if password is not None:
        item.secondary_field = password
    item.positive_response_requested = response
    return item


def test_pynetdicom_wrong_password_rejected(qrscp: DimsefsmServer) -> None:
    assoc = _pynetdicom_associate(qrscp.port, "OPENSCU", _identity(b"alice", b"guess"))
    assert assoc.is_rejected
    assert "wrong password for user 'alice'" in qrscp.output()


def test_pynetdicom_positive_response_when_requested(qrscp: DimsefsmServer) -> None:
    assoc = _pynetdicom_associate(
        qrscp.port, "OPENSCU", _identity(b"alice", PASSWORD.encode(), response=True)
    )
    assert assoc.is_established
    try:
        answer = assoc.acceptor.user_identity
        assert answer is not None and answer.server_response == b""
        assert assoc.send_c_echo().Status == 0
    finally:
        assoc.release()
    # Not requested: no User Identity AC item.
    assoc = _pynetdicom_associate(qrscp.port, "OPENSCU", _identity(b"alice", PASSWORD.encode()))
    assert assoc.is_established
    assert assoc.acceptor.user_identity is None
    assoc.release()


def test_pynetdicom_username_only_checked(qrscp: DimsefsmServer) -> None:
    known = _pynetdicom_associate(qrscp.port, "OPENSCU", _identity(b"alice", response=True))
    assert known.is_established
    known.release()
    unknown = _pynetdicom_associate(qrscp.port, "OPENSCU", _identity(b"mallory"))
    assert unknown.is_rejected


def test_required_identity_missing_rejected(qrscp: DimsefsmServer) -> None:
    assert _pynetdicom_associate(qrscp.port, "STRICTSCU", None).is_rejected
    assert "identity required, none sent" in qrscp.output()
    ok = _pynetdicom_associate(qrscp.port, "STRICTSCU", _identity(b"alice", PASSWORD.encode()))
    assert ok.is_established
    ok.release()
    # A peer without the requirement still gets in without identity.
    other = _pynetdicom_associate(qrscp.port, "OPENSCU", None)
    assert other.is_established
    other.release()


def test_dcmtk_storescu_with_user_and_password(qrscp: DimsefsmServer, tmp_path: Path) -> None:
    files = write_study(tmp_path / "in", make_study(1))
    base = ["/usr/bin/storescu", "-v", "-aet", "STRICTSCU", "-aec", QR_AET]
    where = [LOCALHOST, str(qrscp.port), str(files[0])]
    good = run_tool([*base, "-usr", "alice", "-pwd", PASSWORD, "-rsp", *where])
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Association Accepted" in good.stdout + good.stderr
    bad = run_tool([*base, "-usr", "alice", "-pwd", "guess", *where])
    assert bad.returncode != 0
    assert "Association Rejected" in bad.stdout + bad.stderr


def _ours(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dimsefsm", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_our_scus_identity_flags(qrscp: DimsefsmServer, tmp_path: Path) -> None:
    where = [LOCALHOST, str(qrscp.port), "-aec", QR_AET, "-aet", "STRICTSCU"]
    good = _ours("echoscu", *where, "--user", "alice", "--password", PASSWORD, "-rsp", "-v")
    assert good.returncode == 0, good.stderr
    assert "user identity accepted; server response: (empty)" in good.stderr
    wrong = _ours("echoscu", *where, "--user", "alice", "--password", "guess")
    assert wrong.returncode == 3, wrong.stderr
    missing = _ours("findscu", *where, "-S", "-k", "QueryRetrieveLevel=STUDY")
    assert missing.returncode == 3, missing.stderr
    found = _ours(
        "findscu", *where, "-usr", "alice", "-pwd", PASSWORD, "-S", "-k", "QueryRetrieveLevel=STUDY"
    )
    assert found.returncode == 0, found.stderr


_PYNETDICOM_USER_ID_SCP = """\
import signal, sys, threading
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification
seen = []
def user_id(event):
    seen.append((event.user_id_type, event.primary_field, event.secondary_field))
    print(f"identity {event.user_id_type} {event.primary_field!r} {event.secondary_field!r}",
          file=sys.stderr, flush=True)
    return event.primary_field == b"bob" and event.secondary_field == b"pw", None
ae = AE(ae_title="PYSCP")
ae.add_supported_context(Verification)
server = ae.start_server(("127.0.0.1", int(sys.argv[1])), block=False,
                         evt_handlers=[(evt.EVT_USER_ID, user_id)])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
print(f"pynetdicom scp: listening on 127.0.0.1:{sys.argv[1]}", file=sys.stderr, flush=True)
stop.wait()
server.shutdown()
"""


def test_our_echoscu_against_pynetdicom_evt_user_id() -> None:
    port = free_port()
    server = LineReadyServer([sys.executable, "-c", _PYNETDICOM_USER_ID_SCP, str(port)], port)
    server.start()
    try:
        where = [LOCALHOST, str(port), "-aec", "PYSCP"]
        good = _ours("echoscu", *where, "--user", "bob", "--password", "pw")
        assert good.returncode == 0, good.stderr
        bad = _ours("echoscu", *where, "--user", "bob", "--password", "no")
        assert bad.returncode == 3, bad.stderr
        # pynetdicom answers types 1 and 2 without a server response: asked for, it is missing.
        asked = _ours("echoscu", *where, "--user", "bob", "--password", "pw", "--pos-response")
        assert asked.returncode == 3
        assert "no positive response received" in asked.stderr
        assert "identity 2 b'bob' b'pw'" in server.output()
    finally:
        server.stop()


def test_pynetdicom_scu_against_our_evt_user_id_handler() -> None:
    """The library's pynetdicom-shaped path: an EVT_USER_ID handler on our AE."""
    from dimsefsm import evt
    from dimsefsm.ae import AE

    calls: list[tuple[int, bytes, bytes]] = []

    def user_id(event: Any) -> tuple[bool, bytes | None]:
        calls.append((event.user_id_type, event.primary_field, event.secondary_field))
        return event.secondary_field == b"pw", None

    ours = AE("OURSCP")
    ours.add_supported_context(Verification)
    server = ours.start_server(
        (LOCALHOST, 0), block=False, evt_handlers=[(evt.EVT_USER_ID, user_id)]
    )
    try:
        port = server.address[1]
        ae = PynetdicomAE(ae_title="PYSCU")
        ae.add_requested_context(Verification)
        good = ae.associate(
            LOCALHOST, port, ae_title="OURSCP", ext_neg=[_identity(b"bob", b"pw", response=True)]
        )
        assert good.is_established
        assert good.acceptor.user_identity is not None
        good.release()
        bad = ae.associate(LOCALHOST, port, ae_title="OURSCP", ext_neg=[_identity(b"bob", b"x")])
        assert bad.is_rejected
        assert calls == [(2, b"bob", b"pw"), (2, b"bob", b"x")]
    finally:
        ours.shutdown()


@pytest.mark.usefixtures("qrscp_backend")
def test_audit_lines_for_associations_and_operations(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    server = dimsefsm_server("qrscp", "--config", str(_config(tmp_path, audit)))
    study = make_study(2)
    files = write_study(tmp_path / "in", study)
    base = ["/usr/bin/storescu", "-aet", "OPENSCU", "-aec", QR_AET]
    stored = run_tool([*base, LOCALHOST, str(server.port), *map(str, files)])
    assert stored.returncode == 0, stored.stderr
    uid = str(study[0].StudyInstanceUID)
    found = _ours(
        "findscu", LOCALHOST, str(server.port), "-aec", QR_AET, "-aet", "OPENSCU",
        "-usr", "alice", "-pwd", PASSWORD, "-S",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    got = _ours(
        "getscu", LOCALHOST, str(server.port), "-aec", QR_AET, "-aet", "OPENSCU", "-S",
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid}",
        "-od", str(tmp_path / "got"),
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    rejected = _ours(
        "echoscu", LOCALHOST, str(server.port), "-aec", QR_AET, "-aet", "OPENSCU",
        "-usr", "alice", "-pwd", "guess",
    )  # fmt: skip
    assert rejected.returncode == 3
    server.stop()  # every line is written before the process ends
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    by_kind = [(r["kind"], r.get("event") or r.get("service")) for r in records]
    assert by_kind == [
        ("association", "established"),
        ("operation", "C-STORE"),
        ("operation", "C-STORE"),
        ("association", "released"),
        ("association", "established"),
        ("operation", "C-FIND"),
        ("association", "released"),
        ("association", "established"),
        ("operation", "C-GET"),
        ("association", "released"),
        ("association", "rejected"),
    ]
    store = records[1]
    assert store["calling_ae"] == "OPENSCU" and store["called_ae"] == QR_AET
    assert store["status"] == "0x0000" and store["outcome"] == "success"
    assert store["sop_instance"] == str(study[0].SOPInstanceUID) and store["stored"] == 1
    find = records[5]
    assert find["user"] == "alice" and find["level"] == "STUDY"
    assert find["study_uids"] == [uid] and find["keys"] == {"StudyInstanceUID": uid}
    assert find["time"].endswith("Z") and find["peer_host"] == LOCALHOST
    released = records[6]
    assert released["outcome"] == "success" and released["duration_ms"] >= 0
    get = records[8]
    assert get["user"] is None and get["study_uids"] == [uid] and get["status"] == "0x0000"
    assert (get["completed"], get["failed"], get["warning"]) == (2, 0, 0)
    rejected = records[10]
    assert rejected["claimed_user"] == "alice" and rejected["outcome"] == "failure"
    assert rejected["reject"] == {"result": 1, "source": 2, "reason": 1}


@pytest.mark.usefixtures("qrscp_backend")
def test_tls_client_certificate_identifies_a_peer(
    dimsefsm_server: Callable[..., DimsefsmServer], tmp_path: Path
) -> None:
    """``tls_subject``: the certificate stands in for a User Identity item (CN or full subject)."""
    pki = make_pki(tmp_path)
    audit = tmp_path / "audit.jsonl"
    config = tmp_path / "tls.toml"
    config.write_text(
        f'ae_title = "{QR_AET}"\nstorage = "{tmp_path / "store"}"\naudit = "{audit}"\n\n'
        '[peers.bycn]\nae_title = "CERTSCU"\nmay = ["find"]\nidentity = "required"\n'
        'tls_subject = "client"\n\n'
        '[peers.bysubject]\nae_title = "SUBJSCU"\nmay = ["find"]\nidentity = "required"\n'
        'tls_subject = "CN=client"\n\n'
        '[peers.other]\nae_title = "OTHERSCU"\nmay = ["find"]\nidentity = "required"\n'
        'tls_subject = "someone-else"\n'
    )
    server = dimsefsm_server(
        "qrscp", "--config", str(config),
        "+tls", str(pki.server_key), str(pki.server_cert), "+cf", str(pki.ca),
    )  # fmt: skip
    tls = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)]

    def echo(calling: str) -> subprocess.CompletedProcess[str]:
        where = [LOCALHOST, str(server.port)]
        return run_tool(["/usr/bin/echoscu", *tls, "-aet", calling, "-aec", QR_AET, *where])

    by_cn, by_subject, other = echo("CERTSCU"), echo("SUBJSCU"), echo("OTHERSCU")
    assert by_cn.returncode == 0, by_cn.stdout + by_cn.stderr + server.output()
    assert by_subject.returncode == 0, by_subject.stdout + by_subject.stderr
    assert other.returncode != 0
    assert "Association Rejected" in other.stdout + other.stderr
    server.stop()
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    established = [r for r in records if r.get("event") == "established"]
    assert [(r["calling_ae"], r["user"], r["tls"]) for r in established] == [
        ("CERTSCU", "client", True),
        ("SUBJSCU", "client", True),
    ]
    assert [r["calling_ae"] for r in records if r.get("event") == "rejected"] == ["OTHERSCU"]
