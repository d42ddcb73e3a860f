"""The application entities of the ``dimsefsm`` command, as the command configures them.

A conformance statement describes AEs: what each proposes, accepts and
limits.  Restating that by hand would drift from the code, so each profile
here is *built by the code that runs*: the sub-command's own parser gives its
defaults (AE title, timeouts, limits), ``apply_network_args`` /
``apply_settings`` put them on an :class:`~dimsefsm.ae.AE`, and the contexts
come from the same tables the sub-commands use (the ``MODELS`` of findscu,
getscu and movescu, getscu's ``storage_proposal``, storescp's and qrscp's
AE).  A model added to one of those tables, or a SOP class added to qrscp's
AE, appears in the statement with nothing else to change.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dimsefsm.ae import AE
from dimsefsm.cli.common import apply_network_args
from dimsefsm.cli.main import build_parser


@dataclass(frozen=True)
class ProposedContext:
    """One row of an association initiation policy's presentation context table."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]
    role: str  # "SCU", "SCP" (SCP/SCU role selection proposed) or "SCU and SCP"
    condition: str = ""  # when it is proposed (a flag), "" always
    stands_for: tuple[str, ...] = ()  # a placeholder row: the SOP classes it may be


@dataclass(frozen=True)
class Activity:
    """A real-world activity of an AE that opens associations (PS3.2 N.7.2.x.3)."""

    name: str
    remote: str  # the remote AE it talks to
    when: str  # what starts it
    contexts: tuple[ProposedContext, ...]
    note: str = ""


@dataclass
class Profile:
    """One AE of the command line: the AE as configured, and what it does with it."""

    command: str  # the sub-command
    role: str  # a short functional definition
    ae: AE  # configured exactly as the sub-command configures it
    activities: tuple[Activity, ...] = ()  # association initiation
    accepts: bool = False  # association acceptance (a server)
    conditional: dict[str, str] = field(default_factory=dict)  # accepted UID -> condition
    operations: dict[str, str] = field(default_factory=dict)  # accepted UID -> what it serves
    listen: str = ""  # default address:port for a server
    charts: tuple[str, ...] = ()  # the service charts its operations run
    notes: tuple[str, ...] = ()


def parsed(command: str, *words: str) -> argparse.Namespace:
    """The sub-command's arguments for a minimal command line: its defaults."""
    return build_parser(command, alone=True).parse_args([command, *words])


def client_ae(command: str, *words: str) -> tuple[AE, argparse.Namespace]:
    args = parsed(command, "PEER", "104", *words)
    ae = AE(args.aetitle)
    apply_network_args(ae, args)
    return ae, args


def _requested(ae: AE, condition: str = "") -> tuple[ProposedContext, ...]:
    """The AE's requested contexts as table rows (roles from its role proposals)."""
    rows = []
    for uid, syntaxes in ae.requested_contexts:
        scu, scp = ae.scu_role_proposals.get(uid, (True, False))
        role = "SCU and SCP" if scu and scp else "SCP" if scp else "SCU"
        rows.append(ProposedContext(uid, syntaxes, role, condition))
    return tuple(rows)


def echoscu() -> Profile:
    from dimsefsm.cli.echo import echoscu_contexts

    ae, _ = client_ae("echoscu")
    echoscu_contexts(ae)
    verify = Activity(
        "Verify a peer",
        "any Verification SCP",
        "the command is run (`--repeat N`: N C-ECHO on one association)",
        _requested(ae),
    )
    return Profile(
        "echoscu", "Verification SCU", ae, (verify,), charts=("c-echo-scu", "association")
    )


def storescu() -> Profile:
    from dimsefsm.cli import store
    from dimsefsm.sop_class import STORAGE_SOP_CLASSES

    ae, args = client_ae("storescu", "FILE")
    common, _also = store._PROPOSALS[args.propose]
    each = "(each SOP class sent)"
    send = Activity(
        "Send instances",
        "any Storage SCP",
        "the command is run with files (and, with `+sd`/`+r`, directories)",
        (
            ProposedContext(each, common, "SCU", "fallback for uncompressed", STORAGE_SOP_CLASSES),
            ProposedContext(each, ("(the file's own)",), "SCU", "", STORAGE_SOP_CLASSES),
        ),
        note=(
            "One association for all the files. Per SOP class and transfer syntax of the "
            "files read: a context offering only the file's own syntax (so what is stored is "
            "what was read) and, for uncompressed files, a fallback context proposed first "
            "offering the syntaxes of the `-x` flags (default shown), converted to when the "
            "own syntax is refused; compressed files are sent as they are or not at all. At "
            "most 128 contexts: more is a usage error (exit 2)."
        ),
    )
    return Profile("storescu", "Storage SCU", ae, (send,), charts=("c-store-scu", "association"))


def _model_activity(
    command: str, models: dict[str, str], service: str, remote: str
) -> tuple[AE, Activity]:
    ae, args = client_ae(command)
    rows: list[ProposedContext] = []
    for flag, uid in models.items():
        probe = AE(args.aetitle)
        probe.add_requested_context(uid)
        default = " (default)" if flag == args.model else ""
        option = f"-{flag}" if len(flag) == 1 else f"--model {flag}"  # -P ... or a model name
        rows.extend(_requested(probe, f"`{option}`{default}"))
    activity = Activity(
        f"{service} by information model",
        remote,
        "the command is run: one request with the `-k` keys, one model flag (one context)",
        tuple(rows),
    )
    return ae, activity


def findscu() -> Profile:
    from dimsefsm.cli.find import MODELS

    ae, activity = _model_activity("findscu", MODELS, "Query", "any Q/R or Worklist FIND SCP")
    return Profile(
        "findscu", "Query/Retrieve and Worklist FIND SCU", ae, (activity,),
        charts=("c-find-scu", "association"),
    )  # fmt: skip


def getscu() -> Profile:
    from dimsefsm.cli.get import MODELS, storage_proposal

    ae, activity = _model_activity("getscu", MODELS, "Retrieve (C-GET)", "any Q/R GET SCP")
    probe = AE(ae.ae_title)
    for uid, syntaxes in storage_proposal():
        probe.add_requested_context(uid, syntaxes)
        probe.propose_role(uid, scu_role=False, scp_role=True)
    storage = _requested(probe, "always, after the model's context")
    activity = Activity(
        activity.name,
        activity.remote,
        activity.when,
        activity.contexts + storage,
        note=(
            "The C-STORE sub-operations arrive on the same association: the usual storage "
            "classes are proposed uncompressed with the SCP role, image classes also once per "
            "compressed syntax, so compressed studies arrive unconverted (at most 128 "
            "contexts in all)."
        ),
    )
    return Profile(
        "getscu", "Query/Retrieve GET SCU (and Storage SCP on its association)", ae,
        (activity,), charts=("c-get-scu", "c-store-scp", "association"),
    )  # fmt: skip


def movescu() -> Profile:
    from dimsefsm.cli.move import MODELS

    ae, activity = _model_activity("movescu", MODELS, "Retrieve (C-MOVE)", "any Q/R MOVE SCP")
    note = (
        "With `--store` / `+P PORT` it also listens, for the move's C-STORE sub-operations, "
        "as a Storage SCP accepting what `storescp` accepts (section of `storescp`)."
    )
    return Profile(
        "movescu", "Query/Retrieve MOVE SCU", ae, (activity,),
        charts=("c-move-scu", "association"), notes=(note,),
    )  # fmt: skip


def mppsscu() -> Profile:
    from dimsefsm.cli.mpps import MPPS, MPPS_RETRIEVE

    args = parsed("mppsscu", "create", "PEER", "104")
    ae = AE(args.aetitle)
    apply_network_args(ae, args)
    rows: list[ProposedContext] = []
    for action, uid in (("create", MPPS), ("set", MPPS), ("get", MPPS_RETRIEVE)):
        probe = AE(args.aetitle)
        probe.add_requested_context(uid)
        rows.extend(_requested(probe, f"`mppsscu {action}`"))
    report = Activity(
        "Report a performed procedure step",
        "any MPPS SCP",
        "the command is run: `create` (N-CREATE, IN PROGRESS), `set` (N-SET, ends it with "
        "`--status`), `get` (N-GET); one context each",
        tuple(rows),
    )
    return Profile(
        "mppsscu", "Modality Performed Procedure Step SCU", ae, (report,),
        charts=("n-create-scu", "n-set-scu", "n-get-scu", "association"),
    )  # fmt: skip


def stgcmtscu() -> Profile:
    from dimsefsm.storage_commitment import commitment_ae

    args = parsed("stgcmtscu", "PEER", "104", "FILE")
    ae = commitment_ae(args.aetitle)
    apply_network_args(ae, args)
    request = Activity(
        "Request storage commitment",
        "any Storage Commitment SCP",
        "the command is run: one N-ACTION (Action Type 1) naming the SOP Class and Instance "
        "UIDs of FILES, then the N-EVENT-REPORT is awaited on the same association",
        _requested(ae),
        note=(
            "With `--port P` it also listens on P and accepts the SCP's own association for "
            "the report: Storage Commitment Push Model with the SCP role (role selection "
            "SCU=0, SCP=1, PS3.4 J.3.3), answering the N-EVENT-REPORT 0x0000."
        ),
    )
    return Profile(
        "stgcmtscu", "Storage Commitment Push Model SCU", ae, (request,),
        charts=("n-action-scu", "n-event-report-scp", "association"),
    )  # fmt: skip


def echoscp() -> Profile:
    from dimsefsm.cli.echo import echoscp_ae

    args = parsed("echoscp", "104")
    return Profile(
        "echoscp", "Verification SCP", echoscp_ae(args), accepts=True,
        listen=f"{args.bind}, port given on the command line",
        charts=("c-echo-scp", "association"),
    )  # fmt: skip


def storescp() -> Profile:
    from dimsefsm.cli.store import storescp_ae

    args = parsed("storescp", "104")
    return Profile(
        "storescp", "Storage SCP (and Verification SCP)", storescp_ae(args), accepts=True,
        listen=f"{args.bind}, port given on the command line",
        charts=("c-echo-scp", "c-store-scp", "association"),
    )  # fmt: skip


def qrscp() -> Profile:
    """qrscp's AE as built from its default settings, the worklist contexts conditional."""
    from dimsefsm.archive.scp import QueryRetrieveSCP
    from dimsefsm.archive.ups import UPS_EVENT_CLASS
    from dimsefsm.cli.qrscp import apply_settings, effective_settings
    from dimsefsm.sop_class import (
        DEFAULT_TRANSFER_SYNTAXES,
        STORAGE_COMMITMENT_PUSH_MODEL,
        STORAGE_SOP_CLASSES,
    )
    from dimsefsm.storage_commitment import SYNTAXES as _COMMITMENT_SYNTAXES

    settings = effective_settings(parsed("qrscp"))
    with tempfile.TemporaryDirectory(prefix="dimsefsm-conformance-") as tmp:
        plain = QueryRetrieveSCP(settings.ae_title, Path(tmp) / "store")
        full = QueryRetrieveSCP(settings.ae_title, Path(tmp) / "store", worklist=Path(tmp))
    apply_settings(full.ae, settings)
    from dimsefsm.archive import scp as archive_scp

    operations: dict[str, str] = dict(getattr(archive_scp, "NORMALIZED_SERVICES", {}))
    n_charts = sorted(
        {
            f"{word.lower()}-scp"
            for how in operations.values()
            for word in how.replace(",", " ").replace(":", " ").split()
            if word.startswith("N-")
        }
    )
    conditional = {
        uid: "with `--worklist DIR` (`worklist =`)"
        for uid in full.ae.supported_contexts
        if uid not in plain.ae.supported_contexts
    }
    sub_operations = Activity(
        "C-MOVE sub-operations",
        "the move destination named in the C-MOVE-RQ",
        "a C-MOVE-RQ names a configured destination (`--dest AET=HOST:PORT` or a "
        '`[peers.NAME]` with `may = ["receive"]`)',
        (
            ProposedContext(
                "(each SOP class to send)", ("(the file's own)",), "SCU", "", STORAGE_SOP_CLASSES
            ),
        ),
        note=(
            "One association per C-MOVE to its destination (over TLS with `--dest-tls`), "
            "proposing the SOP classes and transfer syntaxes of the instances to send; an "
            "instance whose syntax is refused is converted to an accepted uncompressed one "
            "when it is uncompressed, else counted as failed."
        ),
    )
    commitment_reports = Activity(
        "Storage Commitment reports",
        "the requester of a storage commitment",
        "a commitment's N-EVENT-REPORT cannot go on the requesting association (it ended, "
        "or `[commitment] same_association = false`): qrscp dials the requester, a "
        '`[peers.NAME]` with `may = ["receive"]` or a `--dest`',
        (ProposedContext(STORAGE_COMMITMENT_PUSH_MODEL, _COMMITMENT_SYNTAXES, "SCP"),),
        note=(
            "Retried `[commitment] retries` times, `retry_interval` seconds apart; a request "
            "not yet reported is kept in `<storage>/.dimsefsm/commitment/` and reported after "
            "a restart."
        ),
    )
    ups_reports = Activity(
        "UPS event reports",
        "each subscriber of a Unified Procedure Step (its Receiving AE)",
        "a UPS is created, claimed, set, completed, canceled or asked to cancel, or an AE "
        'subscribes, and the subscriber is a `[peers.NAME]` with `may = ["receive"]` or a '
        "`--dest`",
        (ProposedContext(UPS_EVENT_CLASS, DEFAULT_TRANSFER_SYNTAXES, "SCU"),),
        note=(
            "After the change is committed, in order, one association per subscriber and "
            "batch of reports (UPS State Report, Cancel Requested, Progress Report, UPS "
            "Assigned), each an N-EVENT-REPORT naming the UPS Push class; a subscriber that "
            "cannot be reached is logged and skipped, the change stands."
        ),
    )
    return Profile(
        "qrscp",
        "Query/Retrieve SCP, Storage SCP, Worklist FIND SCP, Verification SCP, "
        "Storage Commitment SCP, MPPS SCP, UPS SCP",
        full.ae,
        (sub_operations, commitment_reports, ups_reports),
        accepts=True,
        conditional=conditional,
        operations=operations,
        listen=f"{settings.bind_address}:{settings.port}",
        charts=(
            "c-echo-scp",
            "c-store-scp",
            "c-find-scp",
            "c-get-scp",
            "c-move-scp",
            *n_charts,
            "ups-state",
            "ups-global-subscription",
            "c-store-scu",
            "association",
        ),
    )


BUILDERS = (
    qrscp, storescp, echoscp, echoscu, storescu, findscu, getscu, movescu, mppsscu, stgcmtscu,
)  # fmt: skip
NOT_AN_AE = frozenset({"passwd", "charts", "conformance", "trace"})
"""Sub-commands that open no association: tools around the AEs."""


def profiles() -> Iterator[Profile]:
    """Every AE of the command line: the servers first, then the clients."""
    for build in BUILDERS:
        yield build()


def undescribed() -> list[str]:
    """Sub-commands of ``dimsefsm`` that are AEs but have no profile here (yet)."""
    from dimsefsm.cli.main import COMMANDS

    described = {build.__name__ for build in BUILDERS}
    return [name for name in COMMANDS if name not in described | NOT_AN_AE]
