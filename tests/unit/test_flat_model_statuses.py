"""Every status of the single-level models' tables, for their own FIND, GET and MOVE classes.

The seeds' tables for these models (e.g. the Color Palette and Defined Procedure
Protocol Q/R tables) list the statuses a SCP answers; the SCP charts are the same
machines for every model, so this walks, in memory (two engines joined by byte
buffers), each status that the request's form or a handler decides, on each model's
classes.  What the archive itself decides (0xA900, 0xA700, 0xA701, 0xA702, 0xA801,
0xB000, 0xCx11 from the index) is tested over sockets in ``test_qrscp_families``.
0x0124 and 0x0210 are sent only when a handler yields them (the archive refuses a
caller's service at negotiation, and no Message ID is ever checked for reuse): they go
out as yielded, like any failure of the table (shown for C-GET; a C-MOVE handler's
statuses take the same transition once its sub-association is up).  0x0211 (an
unrecognised command) is the dispatcher's, before any SOP class is looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom import Dataset

from dimsefsm import evt
from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import cancel_rq, find_rq, get_rq, move_rq
from dimsefsm.dimse.message import Message
from dimsefsm.engine import AssociationEngine
from dimsefsm.qr.flat_models import FLAT_MODELS, FlatModel
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.find import FindScu
from dimsefsm.services.get import GetScu
from dimsefsm.services.move import MoveScu
from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN as EVRLE
from tests.pair import EnginePair

MODELS = list(FLAT_MODELS.values())
IDS = [model.name for model in MODELS]
GARBAGE = b"\x10\x00\x10\x00PN\xff\x00"  # a length running past the end

Handler = Callable[[Any], Iterator[Any]]
SERVICES: dict[str, tuple[Any, Callable[..., dict[str, Any]], type, str]] = {
    "find": (evt.EVT_C_FIND, find_rq, FindScu, "find_class"),
    "get": (evt.EVT_C_GET, get_rq, GetScu, "get_class"),
    "move": (evt.EVT_C_MOVE, move_rq, MoveScu, "move_class"),
}


def yields(*items: Any) -> Handler:
    def handler(_event: Any) -> Iterator[Any]:
        yield from items

    return handler


def raises(_event: Any) -> Iterator[Any]:
    raise RuntimeError("index offline")
    yield  # pragma: no cover


def match() -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = "1.2.3.4"
    return ds


def run(
    model: FlatModel,
    service: str,
    handler: Handler | None,
    identifier: bytes | None = None,
    *,
    cancel_after: int | None = None,
    **overrides: Any,
) -> list[int]:
    """One request of ``service`` on the model's class; the statuses the SCU received."""
    event_type, make_command, scu_type, attribute = SERVICES[service]
    uid = getattr(model, attribute)
    other = model.find_class if service != "find" else model.get_class
    proposal = RequestorProposal("SCU", "SCP", propose_contexts([(uid, [EVRLE])]))
    policy = AcceptorPolicy("SCP", {uid: (EVRLE,)})
    dispatch = RequestDispatcher({event_type: handler} if handler else {})
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal),
        AssociationEngine(requestor=False, policy=policy, on_request=dispatch),
    )
    pair.connect()
    engine = pair.requestor
    assert engine.negotiated is not None
    message_id = engine.next_message_id()
    op = scu_type(message_id, engine.negotiated.contexts[1])
    engine.start_operation(message_id, op)
    op.sent()
    args = (message_id, uid, "DEST") if service == "move" else (message_id, uid)
    command = make_command(*args)
    for key, value in overrides.items():
        if value is None:
            command.pop(key, None)
        else:
            command[key] = other if value == "other" else value
    if identifier is None:
        query = Dataset()
        query.SOPInstanceUID = "1.2.3.4"
        identifier = encode_dataset(query, EVRLE)
    engine.send_message(Message(1, command, identifier))
    if cancel_after is None:
        pair.run()
    else:
        pair._deliver(pair.requestor, pair.acceptor, "rq->ac")
        for _ in range(cancel_after):
            pair.step()
        pair._deliver(pair.acceptor, pair.requestor, "ac->rq")
        op.cancel_sent()
        pair.requestor.send_message(Message(1, cancel_rq(message_id)))
        pair.run()
    return [int(status.Status) for status, _ in op.results]


def endless(_event: Any) -> Iterator[Any]:
    while True:
        yield 0xFF00, match()


# (case, handler, identifier, command overrides, statuses the SCU receives)
FIND_CASES: list[tuple[str, Handler | None, bytes | None, dict[str, Any], list[int]]] = [
    ("pending then success", yields((0xFF00, match())), None, {}, [0xFF00, 0x0000]),
    ("pending, optional keys", yields((0xFF01, match())), None, {}, [0xFF01, 0x0000]),
    ("no handler", None, None, {}, [0x0122]),
    ("another class", yields(), None, {"AffectedSOPClassUID": "other"}, [0x0122]),
    ("no priority", yields(), None, {"Priority": None}, [0x0212]),
    ("undecodable", yields(), GARBAGE, {}, [0xC310]),
    ("handler raised", raises, None, {}, [0xC311]),
    ("unencodable match", yields((0xFF00, "not a dataset")), None, {}, [0xC312]),
    ("status without Status", yields((Dataset(), None)), None, {}, [0xC001]),
    ("not a status", yields(("ok", None)), None, {}, [0xC002]),
    ("out of resources", yields((0xA700, None)), None, {}, [0xA700]),
    ("does not match", yields((0xA900, None)), None, {}, [0xA900]),
    ("unable to process", yields((0xC000, None)), None, {}, [0xC000]),
]

GET_CASES: list[tuple[str, Handler | None, bytes | None, dict[str, Any], list[int]]] = [
    ("nothing to send", yields(0), None, {}, [0x0000]),
    ("no handler", None, None, {}, [0x0122]),
    ("another class", yields(0), None, {"AffectedSOPClassUID": "other"}, [0x0122]),
    ("no priority", yields(0), None, {"Priority": None}, [0x0212]),
    ("undecodable", yields(0), GARBAGE, {}, [0xC410]),
    ("handler raised", raises, None, {}, [0xC411]),
    ("bad count", yields("many"), None, {}, [0xC413]),
    ("no count", yields(), None, {}, [0xC413]),
    ("uncountable", yields((0xA701, None)), None, {}, [0xA701]),
    ("status instead of count", yields((0x0124, None)), None, {}, [0xC413]),
    ("not authorised", yields(1, (0x0124, None)), None, {}, [0x0124]),
    ("duplicate", yields(1, (0x0210, None)), None, {}, [0x0210]),
    ("status without Status", yields(1, (Dataset(), None)), None, {}, [0xC001]),
    ("not a status", yields(1, "not a pair"), None, {}, [0xC002]),
    ("unable to perform", yields(1, (0xA702, None)), None, {}, [0xA702]),
]

MOVE_CASES: list[tuple[str, Handler | None, bytes | None, dict[str, Any], list[int]]] = [
    ("no handler", None, None, {}, [0x0122]),
    ("another class", yields(), None, {"AffectedSOPClassUID": "other"}, [0x0122]),
    ("no priority", yields(), None, {"Priority": None}, [0x0212]),
    ("undecodable", yields(), GARBAGE, {}, [0xC510]),
    ("handler raised", raises, None, {}, [0xC511]),
    ("unknown destination", yields((None, None)), None, {}, [0xA801]),
    ("bad destination", yields("somewhere"), None, {}, [0xC515]),
    ("no destination", yields(), None, {}, [0xC514]),
    ("bad count", yields(("127.0.0.1", 104), "many"), None, {}, [0xC513]),
    ("uncountable", yields(("127.0.0.1", 104), (0xA701, None)), None, {}, [0xA701]),
    ("status instead of count", yields(("127.0.0.1", 104), (0x0124, None)), None, {}, [0xC513]),
    ("nothing to send", yields(("127.0.0.1", 104), 0), None, {}, [0x0000]),
]


@pytest.mark.parametrize("model", MODELS, ids=IDS)
@pytest.mark.parametrize(
    ("case", "handler", "identifier", "overrides", "expected"),
    FIND_CASES,
    ids=[case[0] for case in FIND_CASES],
)
def test_find_statuses(
    model: FlatModel,
    case: str,
    handler: Handler | None,
    identifier: bytes | None,
    overrides: dict[str, Any],
    expected: list[int],
) -> None:
    assert run(model, "find", handler, identifier, **overrides) == expected, case


@pytest.mark.parametrize("model", MODELS, ids=IDS)
@pytest.mark.parametrize(
    ("case", "handler", "identifier", "overrides", "expected"),
    GET_CASES,
    ids=[case[0] for case in GET_CASES],
)
def test_get_statuses(
    model: FlatModel,
    case: str,
    handler: Handler | None,
    identifier: bytes | None,
    overrides: dict[str, Any],
    expected: list[int],
) -> None:
    assert run(model, "get", handler, identifier, **overrides)[-1:] == expected, case


@pytest.mark.parametrize("model", MODELS, ids=IDS)
@pytest.mark.parametrize(
    ("case", "handler", "identifier", "overrides", "expected"),
    MOVE_CASES,
    ids=[case[0] for case in MOVE_CASES],
)
def test_move_statuses(
    model: FlatModel,
    case: str,
    handler: Handler | None,
    identifier: bytes | None,
    overrides: dict[str, Any],
    expected: list[int],
) -> None:
    assert run(model, "move", handler, identifier, **overrides)[-1:] == expected, case


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_find_cancel_is_fe00(model: FlatModel) -> None:
    statuses = run(model, "find", endless, cancel_after=2)
    assert statuses == [0xFF00, 0xFF00, 0xFE00]
