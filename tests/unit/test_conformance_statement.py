"""Issue 15 item 13: the conformance statement in PS3.2 Annex N form, read from the code.

Each check compares the statement with the code it describes, reached by a
different path than the generator's where there is one (qrscp's AE built
here, the parsers' defaults, pydicom's PS3.6 table for "Retired"), and two
tests show that what the generator iterates (the SOP class registry, qrscp's
contexts) reaches the statement without anything else listing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom._uid_dict import UID_dictionary

from dimsefsm import sop_class
from dimsefsm.archive import scp as archive_scp
from dimsefsm.archive.config import Settings
from dimsefsm.archive.scp import QueryRetrieveSCP
from dimsefsm.assoc.negotiation import DEFAULT_MAX_PDU, IMPLEMENTATION_CLASS_UID
from dimsefsm.cli.main import build_parser
from dimsefsm.conformance import render
from dimsefsm.conformance.statement import uid_name
from dimsefsm.qr import registry
from dimsefsm.sop_class import ALL_TRANSFER_SYNTAXES, STORAGE_SOP_CLASSES, is_storage

ANNEX_N_HEADINGS = (
    "## 1. Overview",
    "### Network services",
    "## 2. Networking",
    "### 2.1 Implementation model",
    "#### Application data flow",
    "### 2.2 AE specifications",
    "### 2.3 Network interfaces",
    "### 2.4 Configuration",
    "## 3. Media interchange",
    "## 4. Support of character sets",
    "## 5. Security",
    "## Annex A. DIMSE behaviour, chart by chart",
    "### B.1 C-FIND keys per level",
    "### D.1 Storage SOP classes",
    "### D.2 Transfer syntaxes",
)
COMMANDS = (
    "qrscp",
    "storescp",
    "echoscp",
    "echoscu",
    "storescu",
    "findscu",
    "getscu",
    "movescu",
    "mppsscu",
)


@pytest.fixture(scope="module")
def statement() -> str:
    return render()


def section(text: str, heading: str) -> str:
    """From ``heading`` to the next heading of the same or a higher level."""
    level = heading.split(" ", 1)[0]
    body = text.split(heading + "\n", 1)[1]
    out = []
    fenced = False
    for line in body.splitlines():
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#") and len(line.split(" ", 1)[0]) <= len(level):
            break
        out.append(line)
    return "\n".join(out)


def ae_section(text: str, command: str) -> str:
    heading = next(line for line in text.splitlines() if line.endswith(f"`{command}` AE"))
    return section(text, heading)


def rows(text: str) -> Iterator[list[str]]:
    """The body rows of every table in ``text`` (header rows left out)."""
    lines = text.splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if line.startswith("| ") and not after.startswith("|---"):
            yield [cell.strip() for cell in line.strip("| ").split(" | ")]


def acceptance(text: str, command: str) -> str:
    body = ae_section(text, command)
    heading = next(line for line in body.splitlines() if line.endswith("acceptance policy"))
    return section(body, heading)


def param(text: str, command: str, name: str) -> str:
    return next(r[1] for r in rows(ae_section(text, command)) if r[0] == name)


def test_the_statement_has_the_annex_n_sections_and_one_per_ae(statement: str) -> None:
    for heading in ANNEX_N_HEADINGS:
        assert f"\n{heading}\n" in statement, heading
    for command in COMMANDS:
        body = ae_section(statement, command)
        assert ".1 Association parameters" in body
        servers = ("qrscp", "storescp", "echoscp")
        assert (".3 Association acceptance policy" in body) == (command in servers)
        assert (".2 Association initiation policy" in body) == (command not in servers[1:])


def test_every_sop_class_qrscp_accepts_is_listed_with_its_transfer_syntaxes(
    statement: str, tmp_path: Path
) -> None:
    ae = QueryRetrieveSCP("ANY", tmp_path / "store", worklist=tmp_path).ae
    accepted = {r[1]: r for r in rows(acceptance(statement, "qrscp"))}
    storage_row = accepted.pop("(Annex D.1)")
    assert storage_row[0] == f"Storage SOP classes of Annex D.1 ({len(STORAGE_SOP_CLASSES)})"
    assert storage_row[2] == f"every transfer syntax of Annex D.2 ({len(ALL_TRANSFER_SYNTAXES)})"
    assert storage_row[3].startswith("SCP; SCU")  # C-GET: the requestor may be the SCP
    annex_d1 = {r[1] for r in rows(section(statement, "### D.1 Storage SOP classes"))}
    annex_d2 = {r[1] for r in rows(section(statement, "### D.2 Transfer syntaxes"))}
    for uid, syntaxes in ae.supported_contexts.items():
        if is_storage(uid):
            assert uid in annex_d1 and set(syntaxes) <= annex_d2
            continue
        row = accepted.pop(uid)
        assert row[0] == uid_name(uid)
        assert row[2].split("<br>") == [uid_name(ts) for ts in syntaxes]
    assert accepted == {}  # and nothing it does not accept
    worklist = next(
        r for r in rows(acceptance(statement, "qrscp")) if r[1] == registry.MODALITY_WORKLIST_FIND
    )
    assert worklist[5].startswith("with `--worklist DIR`")


def test_retired_classes_and_syntaxes_are_marked_as_ps36_says(statement: str) -> None:
    checked = 0
    for heading in ("### D.1 Storage SOP classes", "### D.2 Transfer syntaxes"):
        for name, uid in rows(section(statement, heading)):
            entry = UID_dictionary.get(uid)
            assert name.endswith(" (Retired)") == bool(entry and entry[3]), uid
            checked += 1
    assert checked == len(STORAGE_SOP_CLASSES) + len(ALL_TRANSFER_SYNTAXES)
    overview = section(statement, "### Network services")
    for sop in registry.QR_SOP_CLASSES:
        row = next(r for r in rows(overview) if r[1] == sop.uid)
        assert row[0].endswith(" (Retired)") == sop.retired
    assert "| Nuclear Medicine Image Storage (Retired) | 1.2.840.10008.5.1.4.1.1.5 |" in statement


def test_limits_and_defaults_are_the_codes(statement: str) -> None:
    settings = Settings()
    assert param(statement, "qrscp", "Maximum PDU length received") == f"{DEFAULT_MAX_PDU} (`-pdu`)"
    assert settings.max_pdu == DEFAULT_MAX_PDU
    assert param(statement, "qrscp", "Maximum associations as acceptor") == str(
        settings.max_associations
    )
    assert param(statement, "qrscp", "Listening on (default)") == (
        f"{settings.bind_address}:{settings.port}"
    )
    assert param(statement, "qrscp", "DIMSE timeout") == f"{settings.timeouts.dimse:g} s (`-td`)"
    assert param(statement, "qrscp", "Implementation Class UID") == IMPLEMENTATION_CLASS_UID
    for command in ("storescp", "echoscp"):
        args = build_parser(command, alone=True).parse_args([command, "104"])
        assert param(statement, command, "Maximum associations as acceptor") == str(
            args.max_associations
        )
        assert param(statement, command, "AE title (default)") == f"`{args.aetitle}` (`-aet`)"
    for command in ("echoscu", "findscu", "getscu", "movescu"):
        args = build_parser(command, alone=True).parse_args([command, "HOST", "104"])
        assert param(statement, command, "AE title (default)") == f"`{args.aetitle}` (`-aet`)"
        assert param(statement, command, "ACSE timeout") == f"{args.acse_timeout:g} s (`-ta`)"
    assert "max_pdu = 131072" in section(statement, "### 2.4 Configuration")


def test_acceptance_answers_come_from_the_negotiation_code(statement: str) -> None:
    qrscp = ae_section(statement, "qrscp")
    assert "a proposed window (16/16) is answered 1/1" in qrscp
    assert (
        f"{Settings().max_associations} associations already established: rejected "
        "(transient) by the service provider (presentation): local limit exceeded" in qrscp
    )
    assert "called AE title 'NOT-DIMSEFSM' not recognised" in qrscp


def test_c_find_keys_per_level_come_from_the_models(statement: str) -> None:
    keys = section(statement, "### B.1 C-FIND keys per level")
    assert "| PATIENT | PatientID | PatientName |" in keys
    assert "| STUDY | StudyInstanceUID | StudyDate, StudyTime, AccessionNumber, StudyID |" in keys
    assert "**Modality Worklist Information Model - FIND**" in keys


def test_a_newly_registered_sop_class_appears_without_being_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uid = "1.2.826.0.1.3680043.2.1143.8"  # a made-up class no AE of the command uses
    monkeypatch.setitem(
        sop_class._REGISTRY, uid, sop_class.SOPClass(uid, "Made-up Action", "n-action")
    )
    step = "1.2.826.0.1.3680043.2.1143.7"  # a made-up procedure step class
    monkeypatch.setitem(
        sop_class._REGISTRY, step, sop_class.SOPClass(step, "Made-up Step", "procedure-step")
    )
    text = render()
    other = section(text, "### Network services").split("**Other (n-action)**", 1)[1]
    assert f"| Made-up Action | {uid} | no | no |" in other
    workflow = section(text, "### Network services").split("**Workflow Management**", 1)[1]
    assert f"| Made-up Step | {step} | no | no |" in workflow.split("**", 1)[0]


def test_a_model_qrscp_starts_serving_appears_with_its_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served = (*archive_scp.FIND_CLASSES, registry.HANGING_PROTOCOL_FIND)
    monkeypatch.setattr(archive_scp, "FIND_CLASSES", served)
    text = render()
    name = uid_name(registry.HANGING_PROTOCOL_FIND)
    assert any(r[1] == registry.HANGING_PROTOCOL_FIND for r in rows(acceptance(text, "qrscp")))
    assert f"**{name}** ({registry.HANGING_PROTOCOL_FIND})" in text
    overview = next(r for r in rows(text) if r[1] == registry.HANGING_PROTOCOL_FIND)
    assert overview[3] == "`qrscp`"


def test_dimsefsm_conformance_prints_the_committed_statement(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dimsefsm.cli.main import main

    assert main(["conformance"]) == 0
    committed = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
    assert capsys.readouterr().out == committed.read_text(encoding="utf-8")


def test_each_chart_has_its_statuses_in_annex_n_columns(statement: str) -> None:
    scu = section(statement, "### c-find-scu")
    assert "| Service Status | Further Meaning | Status Code | Behavior |" in scu
    other = next(r for r in rows(scu) if r[1] == "Other Status Codes")
    assert (other[0], other[2]) == ("\u2013", "anything else")
    assert ["Cancel", "Matching terminated due to cancel", "FE00"] in [r[:3] for r in rows(scu)]
    scp = section(statement, "### c-move-scp")
    assert "| Service Status | Further Meaning | Status Code | Condition |" in scp
    unknown = next(r for r in rows(scp) if r[2] == "A801")
    assert unknown[:2] == ["Failure", "Refused: move destination unknown"]
    order = [r[0] for r in rows(scp.split("Every transition", 1)[0])]
    assert order == sorted(
        order, key=["Success", "Warning", "Failure", "Cancel", "Pending", "\u2013"].index
    )


def test_a_new_sub_command_is_named_as_not_yet_described(monkeypatch: pytest.MonkeyPatch) -> None:
    from dimsefsm.cli import main as cli_main

    assert "Not described in this statement yet" not in render()
    commands = {**cli_main.COMMANDS, "upsscu": cli_main.COMMANDS["echoscu"]}
    monkeypatch.setattr(cli_main, "COMMANDS", commands)
    flow = section(render(), "#### Application data flow")
    assert (
        "Not described in this statement yet (their SOP classes are in section 1): `upsscu`."
        in flow
    )


def test_a_charts_status_table_is_found_by_its_service_name() -> None:
    from types import SimpleNamespace
    from typing import Any

    from dimsefsm import status as st
    from dimsefsm.conformance.details import chart_service

    def chart(name: str) -> Any:
        return SimpleNamespace(name=name)

    assert chart_service(chart("c-find-scp")) is st.Service.QR_FIND
    # A chart named after a Service member needs no entry (DIMSE-N: n-get-scu -> N_GET).
    assert chart_service(chart("basic-worklist-scu")) is st.Service.BASIC_WORKLIST
    assert chart_service(chart("unknown-scp")) is st.Service.GENERAL


def test_a_single_level_models_key_table_is_listed_where_the_project_declares_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys
    from types import SimpleNamespace

    key = SimpleNamespace(tag=0x00720002, matching="R", returned="1", items=())
    declared = SimpleNamespace(section="PS3.4 U.6.1.2", keys=(key,))
    tables = SimpleNamespace(
        flat_model=lambda name: declared if name == "hanging-protocol" else None
    )
    monkeypatch.setitem(sys.modules, "dimsefsm.qr.flat_models", tables)
    monkeypatch.setattr(
        archive_scp, "FIND_CLASSES", (*archive_scp.FIND_CLASSES, registry.HANGING_PROTOCOL_FIND)
    )
    keys = section(render(), "### B.1 C-FIND keys per level")
    hanging = keys.split(f"({registry.HANGING_PROTOCOL_FIND})", 1)[1]
    assert "keys of PS3.4 U.6.1.2:" in hanging
    assert "| HangingProtocolName | required (matching) | 1 |" in hanging
