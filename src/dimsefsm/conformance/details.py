"""The detailed sections of the conformance statement, each read from the code it describes.

The status tables come from the charts' own transitions and their one-sentence
conditions (the sentences the diagrams in ``statecharts/`` show), the matching
rules from :mod:`dimsefsm.qr.matching`'s docstring, the access-control and
identity tables from :mod:`dimsefsm.archive.access` and
:mod:`dimsefsm.archive.security`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydicom.uid import UID

from dimsefsm import status as st
from dimsefsm.archive.access import describe_checks, describe_permissions
from dimsefsm.archive.config import DEFAULT_BIND_ADDRESS
from dimsefsm.archive.security import describe_identity_checks
from dimsefsm.fsm.chart import Chart
from dimsefsm.qr.matching import __doc__ as MATCHING_DOC
from dimsefsm.sop_class import (
    lookup,
)
from dimsefsm.uid import MAX_UID_LENGTH

# Which status table gives a chart's codes their meaning: these by name, any other
# chart ``<service>-scu|scp`` by the Service member of that name (``n-get`` -> N_GET).
_CHART_SERVICE = {
    "c-echo": st.Service.VERIFICATION,
    "c-store": st.Service.STORAGE,
    "c-find": st.Service.QR_FIND,
    "c-get": st.Service.QR_GET,
    "c-move": st.Service.QR_MOVE,
}


def chart_service(chart: Chart) -> st.Service:
    prefix = chart.name.rsplit("-", 1)[0]
    named = st.Service.__members__.get(prefix.upper().replace("-", "_"))
    return _CHART_SERVICE.get(prefix, named or st.Service.GENERAL)


# The order Annex N's status tables list the service statuses in.
_CATEGORY_ORDER = ("Success", "Warning", "Failure", "Cancel", "Pending", "Other")


def status_table(chart: Chart) -> Iterator[str]:
    """The chart's statuses in Annex N's columns (e.g. Table N.7-48), one row per transition.

    A transition that sends or receives one code gives its category and meaning
    from the status tables; one guarded on a whole class (``failure status``)
    gives that class and its ``when`` sentence; the ``else`` of a status input is
    Annex N's "Other Status Codes" row.  The last column is the *Condition* an
    SCP sends the code under, or the *Behavior* of an SCU receiving it.
    """
    service = chart_service(chart)
    last = "Condition" if chart.name.endswith("-scp") else "Behavior"
    found: list[tuple[int, str, str, str, str]] = []
    for t in chart.transitions:
        guard = chart.guard_text(t) or ""
        when = " ".join(t.when.split()).replace("|", "\\|")
        if t.status is not None:
            category, meaning = st.lookup(t.status, service)
            row = (category.value, meaning, f"{t.status:04X}", when)
        elif guard.endswith(" status") and guard.split()[0].capitalize() in _CATEGORY_ORDER:
            row = (guard.split()[0].capitalize(), "(the class)", f"see {last}", when)
        elif guard == "else" and "status" in t.name:
            row = ("Other", "Other Status Codes", "anything else", when)
        else:
            continue
        found.append((_CATEGORY_ORDER.index(row[0]), *row))
    if not found:
        return
    yield f"| Service Status | Further Meaning | Status Code | {last} |"
    yield "|---|---|---|---|"
    for _, category_name, meaning, code, when in sorted(found, key=lambda r: r[0]):
        shown = "\u2013" if category_name == "Other" else category_name  # Annex N's dash
        yield f"| {shown} | {meaning} | {code} | {when} |"
    yield ""


def chart_table(chart: Chart) -> Iterator[str]:
    service = chart_service(chart)
    yield f"### {chart.name}"
    yield ""
    if chart.doc:
        yield " ".join(chart.doc.split())
        yield ""
    yield from status_table(chart)
    yield "Every transition of the chart:"
    yield ""
    yield "| Transition | Input [guard] | From | To | Status | Meaning | When |"
    yield "|---|---|---|---|---|---|---|"
    for t in chart.transitions:
        guard = chart.guard_text(t)
        on = t.trigger if guard is None else f"{t.trigger} [{guard}]"
        sources = ", ".join(t.source)
        dest = "(same)" if t.dest == "=" else t.dest
        if t.status is None:
            code, meaning = "", ""
        else:
            category, text = st.lookup(t.status, service)
            code, meaning = f"0x{t.status:04X}", f"{category.value}: {text}"
        when = " ".join(t.when.split()).replace("|", "\\|")
        yield f"| {t.name} | {on} | {sources} | {dest} | {code} | {meaning} | {when} |"


def security() -> Iterator[str]:
    """Access control as ``archive.access`` decides it, from its own tables."""
    yield (
        "Configured in `qrscp.toml` (`dimsefsm qrscp --config FILE`; `--check` prints the "
        f"effective settings). Without a file qrscp listens on {DEFAULT_BIND_ADDRESS} only "
        "(`--bind` or `bind_address` to open it) and accepts any calling AE title, saying so "
        "in its log. With at least one `[peers.NAME]` table only the listed AE titles may "
        "associate (a `--dest AET=HOST:PORT` alone adds a C-MOVE destination, it does not "
        "close the server), each to do what its `may` list says:"
    )
    yield ""
    yield "| `may` | Allows |"
    yield "|---|---|"
    for permission, allowed in describe_permissions():
        yield f'| "{permission}" | {allowed} |'
    yield ""
    yield "Verification (C-ECHO) is every admitted peer's. What is checked, and the answer:"
    yield ""
    yield "| Check | Answer when it fails |"
    yield "|---|---|"
    for check, answer in describe_checks():
        yield f"| {check} | {answer} |"


def matching_rules() -> Iterator[str]:
    text = MATCHING_DOC or ""
    start = text.find("Behaviour an SCP must document")
    body = text[start:].split("\n", 1)[1] if start >= 0 else ""
    bullets: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("* "):
            bullets.append(stripped[2:])
        elif stripped and bullets:
            bullets[-1] += " " + stripped
    for bullet in bullets:
        yield f"- {bullet}"


def _sop_name(uid: str) -> str:
    """Our registry's name: it also knows classes newer than pydicom's dictionary."""
    sop = lookup(uid)
    return sop.name if sop else UID(uid).name


def storage_rules() -> Iterator[str]:
    """How the archive files what it receives (the checks of ``archive.admission``, the index)."""
    uid_rule = (
        f"digits and dots, no empty component, no leading zero, at most {MAX_UID_LENGTH} "
        "characters, trailing NUL padding ignored"
    )
    for rule in (
        "Every Storage SCP of the library refuses a C-STORE-RQ whose Affected SOP Instance "
        f"or Class UID is not a UID (PS3.5 9.1: {uid_rule}) with 0x0117 Invalid SOP Instance "
        "and an ErrorComment; nothing is written.",
        "File names are injective in the UID: a valid UID is its own file name "
        "(`<UID>.dcm`); any other value is escaped and prefixed `x_`, so no two values share "
        "a file.",
        "`qrscp` also refuses, with nothing kept, an instance whose data set lacks SOP Class "
        "or SOP Instance UID (Study and Series Instance UID too, except for Non-Patient "
        "Objects), holds one that is not a UID (0x0117 for the SOP Instance UID, 0xA900 for "
        "the others) or that has several values (0xA900; Patient ID too), or names another "
        "SOP Class or Instance UID than the command (0xA900).",
        "One SOP Instance UID, one place: a re-store into the same Patient ID, study and "
        "series replaces the stored instance (a retransmission); one into another patient, "
        "study or series is refused with 0x0117 and the first stays. The check, the index "
        "update and the rename into place are one database transaction, atomic across "
        "associations and across processes sharing the index database.",
        "Success or Warning is sent only once the file is complete and renamed into place "
        "and its index row committed (both survive a crash of the server); with `--fsync` "
        "(StorageConfig.fsync) after the file and its directory are on disk and the index "
        "commit too (SQLite `synchronous=FULL`, PostgreSQL `synchronous_commit=on`): both "
        "survive a power loss. "
        "A failed disk write discards the temporary file and answers 0xA700 Out of "
        "Resources; the association continues.",
        "At start, temporary files left by a killed server are deleted; no stored file is "
        "read (the index database holds the headers). A file imported from disk (`--import "
        "DIR`, or the storage directory on the first start) is checked for a complete data "
        "set and examined like a received instance; a torn file is not indexed. Hidden "
        "files and folders are not imported: the default index is "
        "`<storage>/.dimsefsm/index.sqlite`.",
    ):
        yield f"- {rule}"


def identity_and_audit() -> Iterator[str]:
    """What ``qrscp`` checks of a requestor's identity, from the rules it decides with."""
    yield "### 5.2 User identity (PS3.7 D.3.3.7)"
    yield ""
    yield (
        "`[users]` holds scrypt password hashes (`dimsefsm passwd NAME`); a peer's "
        '`identity = "required"` makes a verified identity a condition of association, '
        "and its `tls_subject` lets its TLS client certificate stand in for one."
    )
    yield ""
    yield "| Checked | Answer when it fails |"
    yield "|---|---|"
    for checked, answer in describe_identity_checks():
        yield f"| {checked} | {answer} |"
    yield ""
    yield "### 5.3 Audit trail"
    yield ""
    yield (
        "Audit (`audit = FILE` or `--audit FILE`, `-` for standard output): one JSON object "
        "per line for each association (established, rejected, released, aborted) and each "
        "operation answered (service, level, keys, Study Instance UIDs, status, counts, "
        "duration); fields in docs/guide.md, *Audit trail*."
    )
    yield ""


def _names(uids: Iterable[str]) -> str:
    return ", ".join(UID(uid).name for uid in uids)
