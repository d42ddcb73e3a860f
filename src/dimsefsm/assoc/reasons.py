"""Rejections, aborts and refused presentation contexts in words.

The standard answers with numbers (PS3.8 Tables 9-18, 9-21 and 9-26); a person
reading a terminal or a log wants the sentence dcmtk and pynetdicom print:
"rejected (permanent) by the service user: called AE title 'WRONG' not
recognised".  The AE titles are named where the reason is about one, because
"not recognised" alone does not say which title was sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dimsefsm.pdu.model import AbortReason, ContextResult

_RESULTS = {1: "permanent", 2: "transient"}

_SOURCES = {
    1: "the service user",
    2: "the service provider (ACSE)",
    3: "the service provider (presentation)",
}

_REJECT_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title {calling!r} not recognised",
    (1, 7): "called AE title {called!r} not recognised",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}

_ABORT_SOURCES = {0: "the service user", 1: "reserved source 1", 2: "the service provider"}

_ABORT_REASONS = {
    AbortReason.NOT_SPECIFIED: "reason not specified",
    AbortReason.UNRECOGNIZED_PDU: "unrecognised PDU",
    AbortReason.UNEXPECTED_PDU: "unexpected PDU",
    AbortReason.RESERVED: "reserved reason 3",
    AbortReason.UNRECOGNIZED_PDU_PARAMETER: "unrecognised PDU parameter",
    AbortReason.UNEXPECTED_PDU_PARAMETER: "unexpected PDU parameter",
    AbortReason.INVALID_PDU_PARAMETER: "invalid PDU parameter value",
}

_CONTEXT_RESULTS = {
    ContextResult.ACCEPTANCE: "accepted",
    ContextResult.USER_REJECTION: "rejected by the user (not for this requestor)",
    ContextResult.NO_REASON: "rejected, no reason given",
    ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: "abstract syntax not supported",
    ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: "none of the transfer syntaxes supported",
}


def rejection_text(
    result: int, source: int, reason: int, *, called_ae: str = "", calling_ae: str = ""
) -> str:
    """``rejected (permanent) by the service user: called AE title 'X' not recognised``."""
    kind = _RESULTS.get(result, f"result {result}")
    who = _SOURCES.get(source, f"source {source}")
    template = _REJECT_REASONS.get((source, reason), f"reason {reason}")
    why = template.format(called=called_ae.strip(), calling=calling_ae.strip())
    return f"rejected ({kind}) by {who}: {why}"


def abort_text(source: int | None, reason: int | None) -> str:
    """``aborted by the service provider: unexpected PDU`` (a user's abort has no reason)."""
    if source is None:
        return "aborted"
    who = _ABORT_SOURCES.get(source, f"source {source}")
    if source == 0 or reason is None:
        return f"aborted by {who}"
    try:
        why = _ABORT_REASONS[AbortReason(reason)]
    except ValueError:
        why = f"reason {reason}"
    return f"aborted by {who}: {why}"


def context_result_text(result: int) -> str:
    """Why one presentation context was refused (PS3.8 Table 9-18)."""
    try:
        return _CONTEXT_RESULTS[ContextResult(result)]
    except ValueError:
        return f"result {result}"


def sop_class_name(uid: str) -> str:
    """The SOP class's name where we know it, else its UID."""
    from dimsefsm.sop_class import lookup  # imported late: the registry loads pydicom's tables

    sop = lookup(uid)
    return sop.name if sop is not None else uid


def refused_contexts(rejected: Mapping[int, int], proposed: Mapping[int, str]) -> Iterable[str]:
    """One line per refused context: ``Modality Worklist FIND: abstract syntax not supported``."""
    for context_id, result in sorted(rejected.items()):
        uid = proposed.get(context_id, "?")
        yield f"context {context_id} ({sop_class_name(uid)}): {context_result_text(result)}"
