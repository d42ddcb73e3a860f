"""The conformance statement in the layout of PS3.2 Annex N, assembled from the code.

Sources, so that nothing is restated by hand (the statement follows the code,
and a test fails when the committed copy does not):

- SOP classes and their names: the SOP class registry (:func:`dimsefsm.sop_class.registered`,
  which holds the Q/R rows of :mod:`dimsefsm.qr.registry` and every service that
  registers), "(Retired)" from the registry's flag or PS3.6 as pydicom carries it;
- per AE: :mod:`.profiles` builds each command's AE with the command's own code
  (parser defaults, ``apply_network_args``, qrscp's ``QueryRetrieveSCP`` and
  ``apply_settings``), so contexts, roles, limits and timeouts are the real ones;
- acceptance answers (asynchronous window, extended negotiation, rejections):
  :mod:`.probe` asks :func:`~dimsefsm.assoc.negotiation.accept_or_reject`;
- C-FIND keys: :data:`dimsefsm.qr.models.MODELS` for each FIND class qrscp accepts;
- configuration: :func:`dimsefsm.archive.config.format_settings` of the defaults;
- character sets: pydicom's codec table, which decodes what the archive indexes;
- status tables: the charts (:mod:`.details`).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from pydicom.datadict import keyword_for_tag

from dimsefsm.assoc.negotiation import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from dimsefsm.conformance import details
from dimsefsm.conformance.probe import ask, requested_user_information
from dimsefsm.conformance.profiles import Profile, profiles, undescribed
from dimsefsm.pdu.model import APPLICATION_CONTEXT
from dimsefsm.qr import registry
from dimsefsm.sop_class import (
    ALL_TRANSFER_SYNTAXES,
    STORAGE_SOP_CLASSES,
    is_storage,
    lookup,
    registered,
)

# Annex N groups the network services by kind (Table N.1-x).
_CATEGORY = {
    "verification": "Verification",
    "storage": "Transfer",
    "non-patient-storage": "Transfer",
    "qr-find": "Query/Retrieve",
    "qr-get": "Query/Retrieve",
    "qr-move": "Query/Retrieve",
}
_WORKFLOW_MODELS = {registry.MODALITY_WORKLIST}
# Services registered under other names, placed by what their name says (PS3.2 N.1).
_BY_WORD = (
    ("print", "Print Management"),
    ("commitment", "Workflow Management"),
    ("procedure-step", "Workflow Management"),
    ("instance-availability", "Workflow Management"),
    ("worklist", "Workflow Management"),
)
_CATEGORY_ORDER = (
    "Transfer",
    "Query/Retrieve",
    "Workflow Management",
    "Print Management",
    "Verification",
)


def retired(uid: str) -> bool:
    """Retired in PS3.6: the Q/R registry's flag, else pydicom's UID dictionary."""
    row = registry.lookup(uid)
    if row is not None:
        return row.retired
    from pydicom._uid_dict import UID_dictionary

    entry = UID_dictionary.get(uid)
    return bool(entry and entry[3])


def uid_name(uid: str) -> str:
    """The registry's (or PS3.6's) name, "(Retired)" appended for a retired UID."""
    sop = lookup(uid)
    if sop is not None:
        name = sop.name
    else:
        from pydicom.uid import UID

        name = UID(uid).name if uid[:1].isdigit() else uid
    return f"{name} (Retired)" if retired(uid) and uid[:1].isdigit() else name


def category(uid: str) -> str:
    row = registry.lookup(uid)
    if row is not None and row.model in _WORKFLOW_MODELS:
        return "Workflow Management"
    sop = lookup(uid)
    service = sop.service if sop is not None else "unknown"
    if service in _CATEGORY:
        return _CATEGORY[service]
    return next((name for word, name in _BY_WORD if word in service), f"Other ({service})")


def _syntaxes(uids: Iterable[str]) -> str:
    uids = tuple(uids)
    if set(uids) == set(ALL_TRANSFER_SYNTAXES):
        return f"every transfer syntax of Annex D.2 ({len(uids)})"
    return "<br>".join(uid_name(uid) for uid in uids)


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _storage_label(count: int) -> str:
    return f"Storage SOP classes of Annex D.1 ({count})"


# -- 1. overview ------------------------------------------------------------------------------
def _roles(profiles_: list[Profile]) -> dict[str, tuple[set[str], set[str]]]:
    """UID -> (AEs using it as SCU, AEs as SCP)."""
    roles: dict[str, tuple[set[str], set[str]]] = {}
    for p in profiles_:
        for activity in p.activities:
            for pc in activity.contexts:
                for uid in pc.stands_for or (pc.abstract_syntax,):
                    scu, scp = roles.setdefault(uid, (set(), set()))
                    (scp if pc.role == "SCP" else scu).add(p.command)
        if p.accepts:
            for uid in p.ae.supported_contexts:
                scu, scp = roles.setdefault(uid, (set(), set()))
                scp.add(p.command)
                if uid in p.ae.accept_scp_role:
                    scu.add(p.command)
    return roles


def overview(profiles_: list[Profile]) -> Iterator[str]:
    yield "## 1. Overview"
    yield ""
    yield (
        "dimsefsm is a DICOM networking library for Python in which every protocol behaviour "
        "is an explicit state machine, with command-line application entities after dcmtk's "
        "(`echoscu`, `storescu`, `findscu`, `getscu`, `movescu`, `echoscp`, `storescp`) and "
        "a Query/Retrieve archive, `qrscp`. The tables list what each AE of the command line "
        "does; the library's `AE` proposes and accepts any registered SOP class, its SCPs "
        "answering through the application's handlers for the DIMSE services whose charts "
        "Annex A lists."
    )
    yield ""
    yield "### Network services"
    roles = _roles(profiles_)
    by_category: dict[str, list[str]] = {}
    for sop in registered():
        by_category.setdefault(category(sop.uid), []).append(sop.uid)
    order = list(_CATEGORY_ORDER) + sorted(set(by_category) - set(_CATEGORY_ORDER))
    for name in order:
        uids = by_category.get(name)
        if not uids:
            continue
        yield ""
        yield f"**{name}**"
        yield ""
        yield "| SOP Class Name | SOP Class UID | SCU | SCP |"
        yield "|---|---|---|---|"
        storage = [uid for uid in uids if is_storage(uid)]
        if storage:
            scu = set.union(*(roles.get(u, (set(), set()))[0] for u in storage))
            scp = set.union(*(roles.get(u, (set(), set()))[1] for u in storage))
            yield _row(_storage_label(len(storage)), "(Annex D.1)", _aes(scu), _aes(scp))
        for uid in uids:
            if uid in storage:
                continue
            scu, scp = roles.get(uid, (set(), set()))
            yield _row(uid_name(uid), uid, _aes(scu), _aes(scp))


def _aes(names: set[str]) -> str:
    return ", ".join(f"`{n}`" for n in sorted(names)) if names else "no"


# -- 2. networking ----------------------------------------------------------------------------
def data_flow(profiles_: list[Profile]) -> Iterator[str]:
    yield "### 2.1 Implementation model"
    yield ""
    yield "#### Application data flow"
    yield ""
    yield "| AE (command) | Real-world activity | Remote AE | Association |"
    yield "|---|---|---|---|"
    for p in profiles_:
        if p.accepts:
            yield _row(f"`{p.command}`", f"serve requests ({p.role})", "any requestor", "accepted")
        for activity in p.activities:
            yield _row(f"`{p.command}`", activity.name, activity.remote, "initiated")
    missing = undescribed()
    if missing:
        yield ""
        yield (
            "Not described in this statement yet (their SOP classes are in section 1): "
            + ", ".join(f"`{name}`" for name in missing)
            + "."
        )
    yield ""
    yield "#### Functional definitions and sequencing"
    yield ""
    for p in profiles_:
        yield f"- `{p.command}`: {p.role}."
    yield (
        "- Sequencing: C-GET sub-operations (C-STORE) run on the C-GET's own association, "
        "the requestor acting as Storage SCP on the contexts it proposed with the SCP role; "
        "C-MOVE sub-operations run on a new association from the SCP to the move "
        "destination, opened for that C-MOVE and released when it ends. Operations on one "
        "association are sequential (no asynchronous window)."
    )
    yield ""


def association_parameters(p: Profile) -> Iterator[str]:
    ae = p.ae
    yield "| Name | Value |"
    yield "|---|---|"
    rows: list[tuple[str, str]] = [
        ("Application Context Name", APPLICATION_CONTEXT),
        ("Implementation Class UID", IMPLEMENTATION_CLASS_UID),
        ("Implementation Version Name", IMPLEMENTATION_VERSION_NAME),
        ("AE title (default)", f"`{ae.ae_title}` (`-aet`)"),
        ("Maximum PDU length received", f"{ae.maximum_pdu_size} (`-pdu`)"),
        ("Maximum PDU length sent", "the peer's maximum (unlimited when it gives 0)"),
        ("ACSE timeout", f"{ae.acse_timeout:g} s (`-ta`)"),
        ("DIMSE timeout", f"{ae.dimse_timeout:g} s (`-td`)"),
        ("Connection timeout", f"{ae.connection_timeout:g} s (`-to`)"),
    ]
    if p.accepts:
        rows += [
            ("Maximum identifier size received", f"{ae.maximum_identifier_size} bytes"),
            ("ARTIM timeout", f"{ae.artim_timeout:g} s (`-to`)"),
            (
                "Network (idle) timeout",
                f"{ae.network_timeout:g} s, then {ae.network_timeout_response} (`-tn`)",
            ),
            ("PDU timeout", f"{ae.pdu_timeout:g} s from a PDU's first byte to its last"),
            ("Listening on (default)", p.listen),
            ("Maximum associations as acceptor", str(ae.maximum_associations)),
            (
                "Maximum connections without an association",
                f"{ae.pending_connection_limit} (beyond: the oldest is closed)",
            ),
            ("Called AE title must match", "yes" if ae.require_called_aet else "no"),
        ]
    if p.activities:
        info = requested_user_information(ae)
        rows += [
            (
                "Maximum associations as requestor",
                "one per C-MOVE being served" if p.accepts else "one per command run",
            ),
            (
                "Maximum PDU length proposed",
                f"{info.max_length} (the A-ASSOCIATE-RQ's Maximum Length item)",
            ),
            (
                "Asynchronous Operations Window (requestor)",
                "not proposed: operations are synchronous"
                if info.async_ops is None
                else f"proposed {info.async_ops.max_invoked}/{info.async_ops.max_performed}",
            ),
            (
                "SOP Class Extended Negotiation (requestor)",
                "none proposed" if not info.extended_negotiation else "proposed",
            ),
            (
                "User Identity Negotiation (requestor)",
                "with `-usr NAME` (type 1), `-pwd` (type 2), `-rsp` asks for a positive "
                "response (without one the association is released, exit 3)"
                if _has_option(p.command, "--user")
                else "not proposed",
            ),
        ]
    for name, value in rows:
        yield _row(name, value)


def _has_option(command: str, option: str) -> bool:
    """Whether the sub-command's parser has ``option`` (read from the parser itself)."""
    from dimsefsm.cli.main import build_parser

    parser = build_parser(command, alone=True)
    actions = parser._subparsers._group_actions if parser._subparsers else []
    for action in actions:
        sub = getattr(action, "choices", {}).get(command)
        if sub is not None:
            return option in sub._option_string_actions
    return False


def _proposed_table(p: Profile) -> Iterator[str]:
    for activity in p.activities:
        yield f"**Activity: {activity.name}.** Started when {activity.when}."
        yield ""
        yield (
            "| Abstract Syntax | UID | Transfer Syntaxes | Role | Extended Negotiation | Proposed |"
        )
        yield "|---|---|---|---|---|---|"
        storage: dict[tuple[tuple[str, ...], str, str], list[str]] = {}
        for pc in activity.contexts:
            if pc.abstract_syntax[:1].isdigit() and is_storage(pc.abstract_syntax):
                storage.setdefault((pc.transfer_syntaxes, pc.role, pc.condition), []).append(
                    pc.abstract_syntax
                )
                continue
            uid = pc.abstract_syntax if pc.abstract_syntax[:1].isdigit() else ""
            yield _row(
                uid_name(pc.abstract_syntax), uid, _syntaxes(pc.transfer_syntaxes), pc.role,
                "None", pc.condition or "always",
            )  # fmt: skip
        merged: dict[tuple[tuple[str, ...], str, str], list[str]] = {}
        for (syntaxes, role, condition), uids in storage.items():
            merged.setdefault((tuple(uids), role, condition), []).extend(syntaxes)
        for (classes, role, condition), offered in merged.items():
            names = ", ".join(uid_name(uid) for uid in classes)
            yield _row(
                f"{len(classes)} Storage SOP classes: {names}", "", _syntaxes(offered), role,
                "None", condition or "always",
            )  # fmt: skip
        if activity.note:
            yield ""
            yield activity.note
        yield ""


def _accepted_table(p: Profile) -> Iterator[str]:
    yield "| Abstract Syntax | UID | Transfer Syntaxes | Role | Extended Negotiation | Accepted |"
    yield "|---|---|---|---|---|---|"
    groups: dict[tuple[tuple[str, ...], bool, str], list[str]] = {}
    for uid, syntaxes in p.ae.supported_contexts.items():
        both = uid in p.ae.accept_scp_role
        condition = p.conditional.get(uid, "always")
        if is_storage(uid):
            groups.setdefault((syntaxes, both, condition), []).append(uid)
            continue
        role = _role(both)
        if uid in p.operations:
            role += f" ({p.operations[uid]})"
        yield _row(uid_name(uid), uid, _syntaxes(syntaxes), role, "None", condition)
    for (syntaxes, both, condition), uids in groups.items():
        yield _row(
            _storage_label(len(uids)), "(Annex D.1)", _syntaxes(syntaxes), _role(both), "None",
            condition,
        )  # fmt: skip


def _role(scp_role_too: bool) -> str:
    return "SCP; SCU when the requestor selects the SCP role" if scp_role_too else "SCP"


def ae_section(number: str, p: Profile) -> Iterator[str]:
    yield f"### {number} `{p.command}` AE"
    yield ""
    yield f"{p.role}."
    yield ""
    yield f"#### {number}.1 Association parameters"
    yield ""
    yield from association_parameters(p)
    yield ""
    if p.activities:
        yield f"#### {number}.2 Association initiation policy"
        yield ""
        yield from _proposed_table(p)
    if p.accepts:
        answers = ask(p.ae)
        yield f"#### {number}.3 Association acceptance policy"
        yield ""
        yield from _accepted_table(p)
        yield ""
        yield (
            "The transfer syntax accepted for a context is the requestor's first one we support"
            if p.ae.prefer_requestor_order
            else "The transfer syntax accepted for a context is our first one (in the order "
            "listed) that the requestor proposed"
        ) + "."
        yield ""
        yield f"- Asynchronous Operations Window: {answers.async_window}."
        yield f"- SOP Class Extended Negotiation: {answers.extended_negotiation}."
        yield f"- User Identity Negotiation (PS3.7 D.3.3.7): {answers.user_identity}" + (
            "; `qrscp` checks it once `[users]` are configured (section 5)."
            if p.command == "qrscp"
            else "."
        )
        yield "- A-ASSOCIATE-RJ, by situation (what `accept_or_reject` answers):"
        for situation, answer in answers.rejections:
            yield f"  - {situation}: {answer}"
        yield "- A context is refused, the association accepted (also when none fits):"
        for situation, answer in answers.context_refusals:
            yield f"  - {situation}: {answer}"
        yield ""
    if p.charts:
        shown = ", ".join(f"[{c}](#{c})" for c in p.charts)
        yield (
            f"SOP specific conformance: the status each operation sends or how it treats "
            f"each status received is the chart's table in Annex A: {shown}."
        )
        yield ""
    for note in p.notes:
        yield note
        yield ""


def network_interfaces() -> Iterator[str]:
    yield "### 2.3 Network interfaces"
    yield ""
    yield (
        "TCP/IP (PS3.8), IPv4 and IPv6 (`--bind ::` on a server); each connection sets "
        "TCP_NODELAY. Secure transport: TLS 1.2 or later (PS3.15 Annex B, BCP 195), both "
        "roles: dcmtk's flags `+tls KEY CERT`, `+cf`, `+cd`, `-rc`, `-vc`, `-ic` on the "
        "command line, `tls_args` / `ssl_context` in the library; `qrscp` reaches its C-MOVE "
        "destinations over TLS with `--dest-tls`."
    )
    yield ""


def configuration(profiles_: list[Profile]) -> Iterator[str]:
    from dimsefsm.archive.config import Peer, Settings, format_settings

    yield "### 2.4 Configuration"
    yield ""
    yield "| AE (command) | Default AE title | Listens on |"
    yield "|---|---|---|"
    for p in profiles_:
        yield _row(f"`{p.command}`", f"`{p.ae.ae_title}`", p.listen or "(requestor only)")
    yield ""
    yield (
        "`qrscp` reads a TOML file (`--config FILE`; `--check` prints the effective "
        "settings; flags override the file). Its keys, with the values used when neither "
        "file nor flag sets them:"
    )
    yield ""
    yield "```toml"
    yield from format_settings(Settings()).rstrip("\n").splitlines()
    yield "```"
    yield ""
    yield "Each `[peers.NAME]` table knows one remote AE (section 5):"
    yield ""
    yield "| Key | Default |"
    yield "|---|---|"
    for f in dataclasses.fields(Peer):
        if f.name == "name":
            continue
        yield _row(f"`{f.name}`", _toml_default(f.default))
    yield ""


def _toml_default(value: object) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, frozenset):
        return "`[]`" if not value else "`[" + ", ".join(f'"{v}"' for v in sorted(value)) + "]`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


# -- 3-5 and annexes --------------------------------------------------------------------------
def character_sets() -> Iterator[str]:
    from pydicom.charset import python_encoding

    yield "## 4. Support of character sets"
    yield ""
    terms = [f"`{t}`" for t in python_encoding if t]
    yield (
        "Received data sets are stored as received, whatever their Specific Character Set "
        "(0008,0005). `qrscp` decodes each stored header with its own character set to index "
        "and match it: the default repertoire and every term pydicom has a codec for: "
        + ", ".join(terms)
        + ". A query's values are decoded with the query's character set and matched against "
        "the decoded values; a C-FIND response carries each match's values and its Specific "
        "Character Set as stored. The command-line SCUs encode `-k` values in the default "
        "repertoire, or UTF-8 (`ISO_IR 192`) when a value needs it."
    )
    yield ""


def cfind_keys(qr_profile: Profile | None) -> Iterator[str]:
    from dimsefsm.archive.index import COMPUTED_KEYS
    from dimsefsm.qr.models import MODELS

    yield "### B.1 C-FIND keys per level"
    yield ""
    yield (
        "For each information model `qrscp` accepts C-FIND for (PS3.4 C.6 tables, as "
        "`dimsefsm.qr.models` checks them): the unique key (U), required (R) and optional "
        "(O) keys of each level, supported for matching and for return. A key no level lists "
        "is not refused: it is matched against the stored data set like the others and "
        "returned from it (empty when absent). "
        + ", ".join(keyword_for_tag(tag) or f"{tag:08X}" for tag in COMPUTED_KEYS)
        + " are computed from the stored instances."
    )
    served = [] if qr_profile is None else list(qr_profile.ae.supported_contexts)
    for uid in served:
        row = registry.lookup(uid)
        if row is None or row.service != "find":
            continue
        yield ""
        yield f"**{uid_name(uid)}** ({uid})"
        yield ""
        model = MODELS.get(row.model)
        if model is None:
            yield from _flat_keys(row.model)
            continue
        yield "| Level | Unique | Required | Optional |"
        yield "|---|---|---|---|"
        for level in model.levels:
            unique = "" if level.unique is None else keyword_for_tag(level.unique)
            yield _row(level.name, unique, _keywords(level.required), _keywords(level.optional))
    yield ""


_MATCHING = {"U": "unique", "R": "required (matching)", "-": "return only"}


def _flat_keys(model_name: str) -> Iterator[str]:
    """A single-level model's key table, where the project declares one (``qr.flat_models``).

    Looked up by name so that the statement lists the tables of whichever models
    the project carries; a model without one is matched on any attribute.
    """
    try:
        declared = importlib.import_module("dimsefsm.qr.flat_models").flat_model(model_name)
    except ModuleNotFoundError:
        declared = None
    if declared is None:
        yield (
            "A flat model (no Query/Retrieve Level): every attribute of the stored items "
            "is a key, matched as in B.2."
        )
        return
    yield f"A single-level model (no Query/Retrieve Level), keys of {declared.section}:"
    yield ""
    yield "| Key | Matching | Return Key Type |"
    yield "|---|---|---|"
    for key, depth in _walk(declared.keys, 0):
        name = keyword_for_tag(key.tag) or f"({key.tag >> 16:04X},{key.tag & 0xFFFF:04X})"
        shown = ">" * depth + (" " if depth else "") + name
        yield _row(shown, _MATCHING.get(key.matching, key.matching), key.returned)


def _walk(keys: Iterable[Any], depth: int) -> Iterator[tuple[Any, int]]:
    for key in keys:
        yield key, depth
        yield from _walk(key.items, depth + 1)


def _keywords(tags: Iterable[int]) -> str:
    return ", ".join(keyword_for_tag(t) or f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in tags)


def storage_classes() -> Iterator[str]:
    yield "### D.1 Storage SOP classes"
    yield ""
    yield "| SOP Class Name | SOP Class UID |"
    yield "|---|---|"
    for uid in STORAGE_SOP_CLASSES:
        yield _row(uid_name(uid), uid)
    yield ""
    yield "### D.2 Transfer syntaxes"
    yield ""
    yield (
        "Storage SCPs accept every transfer syntax below; compressed (encapsulated) data sets "
        "pass through unchanged. An SCU sends a file in its own syntax when the peer accepted "
        "it, otherwise converts an uncompressed data set to an accepted uncompressed syntax."
    )
    yield ""
    yield "| Transfer Syntax Name | UID |"
    yield "|---|---|"
    for uid in ALL_TRANSFER_SYNTAXES:
        yield _row(uid_name(uid), uid)


def lines() -> Iterator[str]:
    from dimsefsm import __version__
    from dimsefsm.archive.commitment import describe_commitment
    from dimsefsm.charts import all_charts

    every = list(profiles())
    yield "# dimsefsm DICOM Conformance Statement"
    yield ""
    yield (
        f"dimsefsm {__version__}. Layout of PS3.2 Annex N. Generated by `python -m "
        "dimsefsm.conformance` (part of `make statecharts`; `dimsefsm conformance` prints it) "
        "from the SOP class registry, the AEs as the commands build them, the negotiation "
        "code's answers, the Q/R models, the configuration defaults and the charts; do not "
        "edit by hand."
    )
    yield ""
    yield from overview(every)
    yield ""
    yield "## 2. Networking"
    yield ""
    yield from data_flow(every)
    yield "### 2.2 AE specifications"
    yield ""
    for index, p in enumerate(every, 1):
        yield from ae_section(f"2.2.{index}", p)
    yield from network_interfaces()
    yield from configuration(every)
    yield "## 3. Media interchange"
    yield ""
    yield "Not supported: no AE reads or writes DICOM media (PS3.10 file sets)."
    yield ""
    yield from character_sets()
    yield "## 5. Security"
    yield ""
    yield "### 5.1 Access control of `qrscp`: who may do what"
    yield ""
    yield from details.security()
    yield ""
    yield from details.identity_and_audit()
    yield "### 5.4 Secure transport"
    yield ""
    yield "TLS as in section 2.3: every AE of the command line, both roles."
    yield ""
    yield "## Annex A. DIMSE behaviour, chart by chart"
    yield ""
    yield (
        "Each row is a transition of the chart that runs the operation (diagrams in "
        "`statecharts/`): the input that arrived and the guard that chose the row (tried in "
        "table order; `else` when no other row of that input held). SCP tables: the "
        "condition under which each status is sent (Annex N's *Condition*); SCU tables: what "
        "the caller sees for each response (*Behavior*). The upper-layer chart implements "
        "every cell of PS3.8 Table 9-10 (see `statecharts/upper-layer.svg`)."
    )
    for chart in all_charts():
        if chart.name == "upper-layer":
            continue
        yield ""
        yield from details.chart_table(chart)
    yield ""
    yield "## Annex B. Query/Retrieve SCP (`qrscp`)"
    yield ""
    yield from cfind_keys(next((p for p in every if p.command == "qrscp"), None))
    yield "### B.2 Matching"
    yield ""
    yield from details.matching_rules()
    yield ""
    yield "## Annex C. Storage behaviour of `qrscp` (and `storescp`)"
    yield ""
    yield from details.storage_rules()
    yield ""
    yield "### C.1 Storage Commitment Push Model (PS3.4 Annex J), `qrscp` as SCP"
    yield ""
    yield from describe_commitment()
    yield ""
    yield "## Annex D. SOP classes and transfer syntaxes"
    yield ""
    yield from storage_classes()


def render() -> str:
    return "\n".join(lines()) + "\n"
