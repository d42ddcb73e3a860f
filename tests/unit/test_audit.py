"""The audit trail: JSON lines with stable fields, one per association and per operation."""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from dimsefsm import evt
from dimsefsm.ae import AE
from dimsefsm.audit import SCHEMA, AuditTrail, utc_now
from dimsefsm.identity import IdentityRules, username_identity
from dimsefsm.passwords import hash_password
from dimsefsm.sop_class import VERIFICATION

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


def test_utc_timestamp_is_iso8601_with_z() -> None:
    stamp = utc_now()
    assert stamp.endswith("Z") and "T" in stamp
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_lines_from_many_threads_never_interleave() -> None:
    stream = io.StringIO()
    trail = AuditTrail(stream)
    payload = "x" * 5000

    def writer(n: int) -> None:
        for i in range(200):
            trail.write({"thread": n, "i": i, "payload": payload})

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1600
    records = [json.loads(line) for line in lines]
    assert {(r["thread"], r["i"]) for r in records} == {
        (n, i) for n in range(8) for i in range(200)
    }


def test_file_target_is_appended_and_private(tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"
    target.write_text('{"earlier": true}\n')
    trail = AuditTrail.open(str(target))
    trail.write({"later": "é"})
    trail.close()
    assert target.read_text(encoding="utf-8").splitlines() == ['{"earlier": true}', '{"later":"é"}']


def test_new_file_is_created_0600(tmp_path: Path) -> None:
    target = tmp_path / "new.jsonl"
    AuditTrail.open(str(target)).close()
    assert target.stat().st_mode & 0o777 == 0o600


def _server(trail: AuditTrail, rules: IdentityRules | None = None) -> tuple[AE, int]:
    ae = AE("AUDITED")
    ae.add_supported_context(VERIFICATION)
    ae.add_supported_context(STUDY_ROOT_FIND)
    ae.identity_gate = rules

    def on_find(event: Any) -> Any:
        match = Dataset()
        match.StudyInstanceUID = "1.2.3"
        match.QueryRetrieveLevel = "STUDY"
        yield 0xFF00, match

    server = ae.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_C_FIND, on_find), *trail.handlers()],
    )
    return ae, server.address[1]


def test_association_and_operation_records_over_a_socket() -> None:
    stream = io.StringIO()
    trail = AuditTrail(stream)
    rules = IdentityRules({"alice": hash_password("pw", n=1 << 10)})
    server_ae, port = _server(trail, rules)
    try:
        scu = AE("AUDITOR")
        scu.add_requested_context(VERIFICATION)
        scu.add_requested_context(STUDY_ROOT_FIND)
        assoc = scu.associate(
            "127.0.0.1", port, "AUDITED", user_identity=username_identity("alice", "pw")
        )
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = "1.2.3"
        query.PatientName = ""
        assert [s.Status for s, _ in assoc.send_c_find(query, STUDY_ROOT_FIND)] == [0xFF00, 0]
        assoc.release()
        refused = scu.associate(
            "127.0.0.1", port, "AUDITED", user_identity=username_identity("alice", "wr0ng-pass")
        )
        assert refused.is_rejected
    finally:
        server_ae.shutdown()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["kind"], r.get("event") or r.get("service")) for r in records] == [
        ("association", "established"),
        ("operation", "C-ECHO"),
        ("operation", "C-FIND"),
        ("association", "released"),
        ("association", "rejected"),
    ]
    for record in records:
        assert record["schema"] == SCHEMA
        assert record["calling_ae"] == "AUDITOR" and record["called_ae"] == "AUDITED"
        assert record["peer_host"] == "127.0.0.1" and isinstance(record["peer_port"], int)
        assert record["time"].endswith("Z") and record["duration_ms"] >= 0
    established, echo, find, released, rejected = records
    assert established["user"] == "alice" and established["outcome"] == "success"
    assert echo["status"] == "0x0000" and echo["outcome"] == "success"
    assert find["sop_class"] == STUDY_ROOT_FIND and find["level"] == "STUDY"
    assert find["keys"] == {"StudyInstanceUID": "1.2.3"}  # empty return keys are not listed
    assert find["study_uids"] == ["1.2.3"] and find["user"] == "alice"
    assert find["association"] == established["association"] == released["association"]
    assert rejected["user"] is None and rejected["claimed_user"] == "alice"
    assert rejected["reject"] == {"result": 1, "source": 2, "reason": 1}
    assert "wr0ng-pass" not in stream.getvalue()  # never the passcode
