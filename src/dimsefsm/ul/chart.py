"""The upper-layer state machine of PS3.8 Section 9.2, declared as one chart.

Every filled cell of Table 9-10 is an edge here and every empty cell a
refusal, so the table is total and a test can walk all 13 x 19 pairs.  A
transition is named after its cell ("Evt3:AA-8") and covers every state in
which that event runs that action; its ``action`` is the model method of the
same PS3.8 action (``aa_8``).  The two actions whose next state depends on a
condition, AE-6 and AR-8, are split into two guarded transitions.
"""

from __future__ import annotations

from dimsefsm.fsm.chart import Chart, Refusal, Transition, transition

STATES: dict[str, str] = {
    "Sta1": "idle",
    "Sta2": "connection open, awaiting A-ASSOCIATE-RQ",
    "Sta3": "awaiting local A-ASSOCIATE response",
    "Sta4": "awaiting transport connection",
    "Sta5": "awaiting A-ASSOCIATE-AC or -RJ",
    "Sta6": "association established",
    "Sta7": "awaiting A-RELEASE-RP",
    "Sta8": "awaiting local A-RELEASE response",
    "Sta9": "release collision, requestor: awaiting local A-RELEASE response",
    "Sta10": "release collision, acceptor: awaiting A-RELEASE-RP",
    "Sta11": "release collision, requestor: awaiting A-RELEASE-RP",
    "Sta12": "release collision, acceptor: awaiting local A-RELEASE response",
    "Sta13": "awaiting transport close",
}
"""The thirteen states of PS3.8 Tables 9-1 to 9-5, with what each waits for."""

EVENTS: dict[str, str] = {
    "Evt1": "A-ASSOCIATE request",
    "Evt2": "transport connection confirmed",
    "Evt3": "A-ASSOCIATE-AC PDU received",
    "Evt4": "A-ASSOCIATE-RJ PDU received",
    "Evt5": "transport connection indication",
    "Evt6": "A-ASSOCIATE-RQ PDU received",
    "Evt7": "A-ASSOCIATE response (accept)",
    "Evt8": "A-ASSOCIATE response (reject)",
    "Evt9": "P-DATA request",
    "Evt10": "P-DATA-TF PDU received",
    "Evt11": "A-RELEASE request",
    "Evt12": "A-RELEASE-RQ PDU received",
    "Evt13": "A-RELEASE-RP PDU received",
    "Evt14": "A-RELEASE response",
    "Evt15": "A-ABORT request",
    "Evt16": "A-ABORT PDU received",
    "Evt17": "transport connection closed",
    "Evt18": "ARTIM timer expired",
    "Evt19": "unrecognized or invalid PDU received",
}
"""The nineteen events of PS3.8 Table 9-10 (its rows)."""

ALL = tuple(STATES)
ESTABLISHED_OR_RELEASING = ("Sta6", "Sta7", "Sta8", "Sta9", "Sta10", "Sta11", "Sta12")
# Connected states after an A-ASSOCIATE-RQ went out or was indicated: a user is involved.
ASSOCIATING_OR_LATER = ("Sta3", "Sta5", *ESTABLISHED_OR_RELEASING)
NO_CONNECTION = ("Sta1", "Sta4")
ARTIM_RUNNING = frozenset({"Sta2", "Sta13"})
"""ARTIM runs exactly here: AE-5 starts it into Sta2, every way into Sta13 (re)starts it."""


def _cell(
    evt: str,
    action: str,
    source: str | tuple[str, ...],
    dest: str,
    when: str,
    *,
    variant: str | None = None,
    guard: str | None = None,
    unless: str | None = None,
) -> Transition:
    """One group of Table 9-10 cells: ``evt`` runs ``action`` in every ``source`` state."""
    name = f"{evt}:{action}" if variant is None else f"{evt}:{action}:{variant}"
    label = f"{evt} / {action}" if variant is None else f"{evt} / {action} [{variant}]"
    method = action.lower().replace("-", "_")
    return transition(
        name, evt, source, dest, when, guard=guard, unless=unless, action=method, label=label
    )


def _all_but(*states: str) -> tuple[str, ...]:
    return tuple(s for s in ALL if s not in states)


_PDU_WITHOUT_CONNECTION = "no transport connection is open, so no PDU can arrive"

# The table reads best as a table: one cell group per line pair.
# fmt: off
TRANSITIONS: tuple[Transition, ...] = (
    # -- establishment, requestor --------------------------------------------------
    _cell("Evt1", "AE-1", "Sta1", "Sta4",
          "The local user asks for an association; the transport is asked to connect."),
    _cell("Evt2", "AE-2", "Sta4", "Sta5",
          "The transport connection opened; the A-ASSOCIATE-RQ is sent."),
    _cell("Evt3", "AE-3", "Sta5", "Sta6",
          "The peer accepted the A-ASSOCIATE-RQ; the user is told."),
    _cell("Evt4", "AE-4", "Sta5", "Sta1",
          "The peer rejected the A-ASSOCIATE-RQ; the user is told and the connection closed."),
    # -- establishment, acceptor -----------------------------------------------------
    _cell("Evt5", "AE-5", "Sta1", "Sta2",
          "An incoming connection was accepted; ARTIM bounds the wait for its A-ASSOCIATE-RQ."),
    _cell("Evt6", "AE-6", "Sta2", "Sta3", variant="acceptable", guard="rq_acceptable",
          when="The A-ASSOCIATE-RQ arrived with a supported protocol version; the user decides."),
    _cell("Evt6", "AE-6", "Sta2", "Sta13", variant="not acceptable", unless="rq_acceptable",
          when="The A-ASSOCIATE-RQ lacks protocol version 1; the provider rejects it."),
    _cell("Evt7", "AE-7", "Sta3", "Sta6",
          "The local user accepted; the A-ASSOCIATE-AC is sent."),
    _cell("Evt8", "AE-8", "Sta3", "Sta13",
          "The local user rejected; the A-ASSOCIATE-RJ is sent and ARTIM started."),
    # -- data transfer -----------------------------------------------------------------
    _cell("Evt9", "DT-1", "Sta6", "Sta6",
          "The local user sends P-DATA on the established association."),
    _cell("Evt9", "AR-7", "Sta8", "Sta8",
          "The local user still sends P-DATA before answering the peer's release request."),
    _cell("Evt10", "DT-2", "Sta6", "Sta6",
          "P-DATA arrived on the established association and goes to the user."),
    _cell("Evt10", "AR-6", "Sta7", "Sta7",
          "P-DATA arrived while our release request is pending; it still goes to the user."),
    # -- release -------------------------------------------------------------------------
    _cell("Evt11", "AR-1", "Sta6", "Sta7",
          "The local user asks to release; the A-RELEASE-RQ is sent."),
    _cell("Evt12", "AR-2", "Sta6", "Sta8",
          "The peer asks to release; the user is told and must respond."),
    _cell("Evt12", "AR-8", "Sta7", "Sta9", variant="requestor", guard="is_association_requestor",
          when="Both sides asked to release at once and we requested the association."),
    _cell("Evt12", "AR-8", "Sta7", "Sta10", variant="acceptor", unless="is_association_requestor",
          when="Both sides asked to release at once and we accepted the association."),
    _cell("Evt13", "AR-3", ("Sta7", "Sta11"), "Sta1",
          "The peer confirmed our release; the user is told and the connection closed."),
    _cell("Evt13", "AR-10", "Sta10", "Sta12",
          "The peer answered first in a release collision; we still owe our response."),
    _cell("Evt14", "AR-4", ("Sta8", "Sta12"), "Sta13",
          "The local user answers the peer's release; the A-RELEASE-RP is sent, ARTIM started."),
    _cell("Evt14", "AR-9", "Sta9", "Sta11",
          "The local user answers first in a release collision; the A-RELEASE-RP is sent."),
    _cell("Evt17", "AR-5", "Sta13", "Sta1",
          "The peer closed the connection after release, rejection or abort: the normal end."),
    # -- PDUs that do not fit the state ------------------------------------------------
    _cell("Evt3", "AA-1", "Sta2", "Sta13",
          "An A-ASSOCIATE-AC arrived before any A-ASSOCIATE-RQ; it is answered with A-ABORT."),
    _cell("Evt4", "AA-1", "Sta2", "Sta13",
          "An A-ASSOCIATE-RJ arrived before any A-ASSOCIATE-RQ; it is answered with A-ABORT."),
    _cell("Evt10", "AA-1", "Sta2", "Sta13",
          "P-DATA arrived before any A-ASSOCIATE-RQ; it is answered with A-ABORT."),
    _cell("Evt12", "AA-1", "Sta2", "Sta13",
          "An A-RELEASE-RQ arrived before any A-ASSOCIATE-RQ; it is answered with A-ABORT."),
    _cell("Evt13", "AA-1", "Sta2", "Sta13",
          "An A-RELEASE-RP arrived before any A-ASSOCIATE-RQ; it is answered with A-ABORT."),
    _cell("Evt19", "AA-1", "Sta2", "Sta13",
          "Invalid bytes arrived before any A-ASSOCIATE-RQ; they are answered with A-ABORT."),
    _cell("Evt3", "AA-8", ("Sta3", *ESTABLISHED_OR_RELEASING), "Sta13",
          "An A-ASSOCIATE-AC arrived when none was due; the provider aborts."),
    _cell("Evt4", "AA-8", ("Sta3", *ESTABLISHED_OR_RELEASING), "Sta13",
          "An A-ASSOCIATE-RJ arrived when none was due; the provider aborts."),
    _cell("Evt6", "AA-8", ASSOCIATING_OR_LATER, "Sta13",
          "A second A-ASSOCIATE-RQ arrived on the connection; the provider aborts."),
    _cell("Evt10", "AA-8", ("Sta3", "Sta5", "Sta8", "Sta9", "Sta10", "Sta11", "Sta12"), "Sta13",
          "P-DATA arrived when the peer may not send it; the provider aborts."),
    _cell("Evt12", "AA-8", ("Sta3", "Sta5", "Sta8", "Sta9", "Sta10", "Sta11", "Sta12"), "Sta13",
          "An A-RELEASE-RQ arrived when no release may start; the provider aborts."),
    _cell("Evt13", "AA-8", ("Sta3", "Sta5", "Sta6", "Sta8", "Sta9", "Sta12"), "Sta13",
          "An A-RELEASE-RP arrived when no release request of ours was open; the provider aborts."),
    _cell("Evt19", "AA-8", ASSOCIATING_OR_LATER, "Sta13",
          "Invalid bytes arrived; the provider aborts with the decoder's reason."),
    _cell("Evt3", "AA-6", "Sta13", "Sta13",
          "A late A-ASSOCIATE-AC arrived while closing; it is dropped."),
    _cell("Evt4", "AA-6", "Sta13", "Sta13",
          "A late A-ASSOCIATE-RJ arrived while closing; it is dropped."),
    _cell("Evt10", "AA-6", "Sta13", "Sta13",
          "Late P-DATA arrived while closing; it is dropped."),
    _cell("Evt12", "AA-6", "Sta13", "Sta13",
          "A late A-RELEASE-RQ arrived while closing; it is dropped."),
    _cell("Evt13", "AA-6", "Sta13", "Sta13",
          "A late A-RELEASE-RP arrived while closing; it is dropped."),
    _cell("Evt6", "AA-7", "Sta13", "Sta13",
          "A new A-ASSOCIATE-RQ arrived while closing; it is answered with A-ABORT."),
    _cell("Evt19", "AA-7", "Sta13", "Sta13",
          "Invalid bytes arrived while closing; they are answered with A-ABORT."),
    # -- aborts and lost connections ---------------------------------------------------
    _cell("Evt15", "AA-1", ASSOCIATING_OR_LATER, "Sta13",
          "The local user aborts; the A-ABORT is sent and ARTIM bounds the wait for the close."),
    _cell("Evt15", "AA-2", "Sta4", "Sta1",
          "The local user aborts while the connect is pending; the connection is dropped."),
    _cell("Evt16", "AA-2", ("Sta2", "Sta13"), "Sta1",
          "An A-ABORT arrived when no user is involved; the connection is closed."),
    _cell("Evt16", "AA-3", ASSOCIATING_OR_LATER, "Sta1",
          "The peer aborted; the user is told and the connection closed."),
    _cell("Evt17", "AA-5", "Sta2", "Sta1",
          "The connection closed before any A-ASSOCIATE-RQ arrived."),
    _cell("Evt17", "AA-4", ("Sta4", *ASSOCIATING_OR_LATER), "Sta1",
          "The connection failed or closed unexpectedly; the user gets a provider abort."),
    _cell("Evt18", "AA-2", ("Sta2", "Sta13"), "Sta1",
          "ARTIM expired: no A-ASSOCIATE-RQ came, or the peer did not close; we close."),
)

REFUSALS: tuple[Refusal, ...] = (
    Refusal("Evt1", _all_but("Sta1"),
            "an A-ASSOCIATE request needs an idle machine; one machine carries one association"),
    Refusal("Evt2", _all_but("Sta4"), "no transport connect is pending"),
    Refusal("Evt3", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
    Refusal("Evt4", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
    Refusal("Evt5", _all_but("Sta1"),
            "this machine already has a connection; each accepted connection needs its own"),
    Refusal("Evt6", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
    Refusal("Evt7", _all_but("Sta3"), "no A-ASSOCIATE indication awaits a response"),
    Refusal("Evt8", _all_but("Sta3"), "no A-ASSOCIATE indication awaits a response"),
    Refusal("Evt9", _all_but("Sta6", "Sta8"),
            "P-DATA may be sent only on an established association, also while the peer releases"),
    Refusal("Evt10", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
    Refusal("Evt11", _all_but("Sta6"),
            "a release needs an established association with no release under way"),
    Refusal("Evt12", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
    Refusal("Evt13", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
    Refusal("Evt14", _all_but("Sta8", "Sta9", "Sta12"),
            "no A-RELEASE indication awaits a response"),
    Refusal("Evt15", ("Sta1", "Sta2", "Sta13"),
            "there is no association to abort: none known to the user yet, or it is closing"),
    Refusal("Evt16", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
    Refusal("Evt17", ("Sta1",), "no transport connection is open"),
    Refusal("Evt18", _all_but("Sta2", "Sta13"),
            "ARTIM runs only in Sta2 and Sta13; an expiry elsewhere is stale"),
    Refusal("Evt19", NO_CONNECTION, _PDU_WITHOUT_CONNECTION),
)
# fmt: on

UPPER_LAYER = Chart(
    name="upper-layer",
    states=ALL,
    initial="Sta1",
    final=("Sta1",),
    transitions=TRANSITIONS,
    refusals=REFUSALS,
    doc="PS3.8 Table 9-10: the DICOM upper-layer protocol, one machine per TCP connection.",
)
