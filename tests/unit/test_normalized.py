"""The six DIMSE-N operations end to end between two in-memory engines.

Every transition of the twelve N charts (SCU and SCP of N-EVENT-REPORT, N-GET,
N-SET, N-ACTION, N-CREATE, N-DELETE) is fired here by the operations' own
models; each test says which ones.  Before this module's change every N
request was answered 0x0211 by the dispatcher and no ``send_n_*`` existed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.tag import Tag

from dimsefsm import evt
from dimsefsm import status as st
from dimsefsm.assoc.negotiation import AcceptorPolicy, RequestorProposal, propose_contexts
from dimsefsm.association import AssociationCore, Reply
from dimsefsm.datasets import encode_dataset
from dimsefsm.dimse.commands import (
    NO_DATASET,
    CommandField,
    decode_command,
    encode_command,
    missing_fields,
    n_rq,
    n_rsp,
)
from dimsefsm.dimse.message import Message
from dimsefsm.dimse.reassemble import MAX_IDENTIFIER_LENGTH
from dimsefsm.engine import AssociationEngine
from dimsefsm.fsm import RECORDER
from dimsefsm.pdu.model import RoleSelection
from dimsefsm.services.dispatch import RequestDispatcher
from dimsefsm.services.normalized import (
    N_ACTION,
    N_CREATE,
    N_DELETE,
    N_EVENT_REPORT,
    N_GET,
    N_SET,
    OPERATIONS,
    NEvent,
    NOperation,
    NormalizedScu,
    after_response,
    start_n_request,
)
from dimsefsm.sop_class import (
    IMPLICIT_VR_LITTLE_ENDIAN,
    MODALITY_PERFORMED_PROCEDURE_STEP,
    STORAGE_COMMITMENT_INSTANCE,
    STORAGE_COMMITMENT_PUSH_MODEL,
)
from tests.pair import EnginePair

MPPS = MODALITY_PERFORMED_PROCEDURE_STEP
STGCMT = STORAGE_COMMITMENT_PUSH_MODEL
PRINTER = "1.2.840.10008.5.1.1.16"
GRAYSCALE_META = "1.2.840.10008.5.1.1.9"
FILM_SESSION = "1.2.840.10008.5.1.1.1"
INSTANCE = "1.2.826.0.1.3680043.8.498.1"
ELE = IMPLICIT_VR_LITTLE_ENDIAN
ALL = (N_EVENT_REPORT, N_GET, N_SET, N_ACTION, N_CREATE, N_DELETE)
IDS = [op.name for op in ALL]
Handlers = dict[evt.EventType, Callable[[Any], Any]]


def recorder(seen: list[NEvent], answer: Any = (0, None)) -> Callable[[NEvent], Any]:
    """A handler that keeps the events it gets and returns ``answer``."""

    def handler(event: NEvent) -> Any:
        seen.append(event)
        return answer

    return handler


class PairAssociation(AssociationCore[Dataset, Any, None, Reply]):
    """The association API over one engine of an in-memory pair (either end)."""

    def __init__(self, pair: EnginePair, engine: AssociationEngine) -> None:
        super().__init__(engine, acse_timeout=None, dimse_timeout=None, artim_timeout=30)
        self.pair = pair

    def _status(self, op: Any, batches: Iterable[None]) -> Dataset:
        self.pair.run()
        return op.result()

    def _reply(self, op: NormalizedScu) -> Reply:
        self.pair.run()
        return op.reply()


def make_pair(
    handlers: Handlers | None = None,
    requestor_handlers: Handlers | None = None,
    *,
    roles: tuple[RoleSelection, ...] = (),
    scp_role_for: frozenset[str] = frozenset(),
    max_identifier_size: int | None = None,
) -> EnginePair:
    classes = (MPPS, STGCMT, PRINTER, GRAYSCALE_META)
    proposal = RequestorProposal(
        "SCU", "SCP", propose_contexts([(uid, [ELE]) for uid in classes]), roles=roles
    )
    policy = AcceptorPolicy("SCP", {uid: (ELE,) for uid in classes}, scp_role_for=scp_role_for)
    acceptor_dispatch = RequestDispatcher(handlers or {})
    requestor_dispatch = RequestDispatcher(requestor_handlers or {})
    pair = EnginePair(
        AssociationEngine(requestor=True, proposal=proposal, on_request=requestor_dispatch),
        AssociationEngine(
            requestor=False,
            policy=policy,
            on_request=acceptor_dispatch,
            max_identifier_size=max_identifier_size or MAX_IDENTIFIER_LENGTH,
        ),
    )
    acceptor_dispatch.assoc = pair.acceptor
    pair.connect()
    assert pair.requestor.is_established and pair.acceptor.is_established
    return pair


def scu(pair: EnginePair) -> PairAssociation:
    return PairAssociation(pair, pair.requestor)


def fired(chart: str, name: str) -> int:
    return RECORDER.count(chart, name)


def status_ds(code: int, **extra: Any) -> Dataset:
    ds = Dataset()
    ds.Status = code
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def attributes(**values: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def send_raw(
    pair: EnginePair,
    op: NOperation,
    overrides: dict[str, Any] | None = None,
    dataset: bytes | None = None,
    context_id: int = 1,
    *,
    run: bool = True,
    sender: AssociationEngine | None = None,
) -> NormalizedScu:
    """Send ``op``'s request with fields overridden (None: left out), as a peer might."""
    engine = sender or pair.requestor
    message_id = engine.next_message_id()
    assert engine.negotiated is not None
    ctx = engine.negotiated.contexts[context_id]
    scu_op = NormalizedScu(message_id, op, ctx)
    engine.start_operation(message_id, scu_op)
    scu_op.sent()
    command = n_rq(
        op.request,
        message_id,
        ctx.abstract_syntax,
        INSTANCE,
        has_dataset=dataset is not None,
        event_type=1 if op is N_EVENT_REPORT else None,
        action_type=1 if op is N_ACTION else None,
    )
    command.update(overrides or {})
    engine.send_message(
        Message(context_id, {k: v for k, v in command.items() if v is not None}, dataset)
    )
    if run:
        pair.run()
    return scu_op


def request_dataset(op: NOperation) -> bytes | None:
    """A small valid data set for requests that carry one (N-SET must)."""
    if op.data_in is None:
        return None
    return encode_dataset(attributes(PatientName="Doe^J"), ELE)


def call(assoc: PairAssociation, op: NOperation, dataset: Dataset | None = None) -> Any:
    """The pynetdicom-shaped SCU call for ``op`` on the MPPS context."""
    if op is N_EVENT_REPORT:
        return assoc.send_n_event_report(dataset, 2, MPPS, INSTANCE)
    if op is N_GET:
        return assoc.send_n_get([0x00100010, Tag(0x0040, 0x0252)], MPPS, INSTANCE)
    if op is N_SET:
        return assoc.send_n_set(dataset or attributes(PatientName="Doe^J"), MPPS, INSTANCE)
    if op is N_ACTION:
        return assoc.send_n_action(dataset, 3, MPPS, INSTANCE)
    if op is N_CREATE:
        return assoc.send_n_create(dataset, MPPS, INSTANCE)
    return assoc.send_n_delete(MPPS, INSTANCE)


# -- command sets -------------------------------------------------------------------------
def test_n_requests_and_responses_round_trip_with_their_fields() -> None:
    rq = n_rq(
        CommandField.N_GET_RQ,
        7,
        MPPS,
        INSTANCE,
        has_dataset=False,
        attribute_identifiers=(0x00100010, 0x00400252),
    )
    assert rq["RequestedSOPClassUID"] == MPPS and rq["RequestedSOPInstanceUID"] == INSTANCE
    assert decode_command(encode_command(rq)) == rq
    assert missing_fields(rq) == []
    rsp = n_rsp(
        CommandField.N_SET_RSP,
        7,
        st.NO_SUCH_ATTRIBUTE,
        sop_class_uid=MPPS,
        sop_instance_uid=INSTANCE,
        error_comment="unknown",
        error_id=5,
        attribute_identifiers=(0x00100020,),
    )
    assert decode_command(encode_command(rsp)) == rsp
    assert rsp["AffectedSOPInstanceUID"] == INSTANCE and rsp["CommandDataSetType"] == NO_DATASET
    report = n_rq(CommandField.N_EVENT_REPORT_RQ, 1, STGCMT, "1.2", has_dataset=True, event_type=1)
    assert report["AffectedSOPInstanceUID"] == "1.2" and report["EventTypeID"] == 1
    assert decode_command(encode_command(report)) == report


@pytest.mark.parametrize(
    ("field", "missing"),
    [
        (CommandField.N_EVENT_REPORT_RQ, ["EventTypeID"]),
        (CommandField.N_ACTION_RQ, ["ActionTypeID"]),
        (CommandField.N_CREATE_RQ, []),
        (CommandField.N_DELETE_RQ, []),
    ],
)
def test_n_request_mandatory_fields(field: int, missing: list[str]) -> None:
    command = n_rq(field, 1, MPPS, INSTANCE, has_dataset=False)
    assert missing_fields(command) == missing
    del command["MessageID"]
    assert "MessageID" in missing_fields(command)


# -- success, both ways, with the data sets -------------------------------------------------
def test_n_create_success_returns_the_attribute_list() -> None:
    seen: list[NEvent] = []

    def on_create(event: NEvent) -> tuple[int, Dataset]:
        seen.append(event)
        assert event.attribute_list is not None
        reply = attributes(PatientName=event.attribute_list.PatientName, PatientID="42")
        return st.SUCCESS, reply

    before = fired("n-create-scp", "success"), fired("n-create-scu", "success")
    status, reply = scu(make_pair({evt.EVT_N_CREATE: on_create})).send_n_create(
        attributes(PatientName="Doe^J"), MPPS, INSTANCE
    )
    assert status.Status == 0 and status.AffectedSOPInstanceUID == INSTANCE
    assert reply is not None and reply.PatientName == "Doe^J" and reply.PatientID == "42"
    event = seen[0]
    assert event.event is evt.EVT_N_CREATE and event.request.AffectedSOPInstanceUID == INSTANCE
    assert event.context.abstract_syntax == MPPS and event.message_id == 1
    assert event.timestamp is not None and event.assoc is not None
    assert (fired("n-create-scp", "success"), fired("n-create-scu", "success")) == (
        before[0] + 1,
        before[1] + 1,
    )


def test_n_set_success_sees_the_modification_list() -> None:
    def on_set(event: NEvent) -> tuple[int, Dataset]:
        assert event.modification_list is not None
        assert event.request.RequestedSOPInstanceUID == INSTANCE
        return 0, attributes(PerformedProcedureStepStatus="COMPLETED")

    status, reply = scu(make_pair({evt.EVT_N_SET: on_set})).send_n_set(
        attributes(PerformedProcedureStepStatus="COMPLETED"), MPPS, INSTANCE
    )
    assert status.Status == 0 and reply is not None
    assert reply.PerformedProcedureStepStatus == "COMPLETED"


def test_n_get_passes_the_attribute_identifier_list() -> None:
    asked: list[list[Any]] = []

    def on_get(event: NEvent) -> tuple[int, Dataset]:
        asked.append(event.attribute_identifiers)
        return 0, attributes(PatientName="Doe^J")

    status, reply = scu(make_pair({evt.EVT_N_GET: on_get})).send_n_get(
        [0x00100010, (0x0040, 0x0252)], MPPS, INSTANCE
    )
    assert status.Status == 0 and reply == attributes(PatientName="Doe^J")
    assert asked == [[Tag(0x00100010), Tag(0x00400252)]]


def test_n_get_without_identifiers_asks_for_everything() -> None:
    asked: list[list[Any]] = []

    def on_get(event: NEvent) -> tuple[int, None]:
        asked.append(event.attribute_identifiers)
        return 0, None

    status, reply = scu(make_pair({evt.EVT_N_GET: on_get})).send_n_get([], MPPS, INSTANCE)
    assert asked == [[]] and status.Status == 0
    assert reply == Dataset()  # pynetdicom's: Success without a data set is an empty one


def test_n_action_passes_type_and_information_and_returns_the_reply() -> None:
    def on_action(event: NEvent) -> tuple[int, Dataset]:
        assert event.action_type == 3 and event.action_information is not None
        return 0, attributes(TransactionUID="1.2.3")

    status, reply = scu(make_pair({evt.EVT_N_ACTION: on_action})).send_n_action(
        attributes(PatientName="A"), 3, MPPS, INSTANCE
    )
    assert status.Status == 0 and reply is not None and reply.TransactionUID == "1.2.3"


def test_n_action_without_information_gets_none() -> None:
    def on_action(event: NEvent) -> tuple[int, None]:
        assert event.action_information is None
        return 0, None

    status, reply = scu(make_pair({evt.EVT_N_ACTION: on_action})).send_n_action(
        None, 1, MPPS, INSTANCE
    )
    assert status.Status == 0 and reply == Dataset()


def test_n_delete_returns_the_status_alone() -> None:
    deleted: list[str] = []

    def on_delete(event: NEvent) -> int:
        deleted.append(event.request.RequestedSOPInstanceUID)
        return 0

    status = scu(make_pair({evt.EVT_N_DELETE: on_delete})).send_n_delete(MPPS, INSTANCE)
    assert status.Status == 0 and deleted == [INSTANCE]


def test_n_event_report_to_the_acceptor() -> None:
    def on_report(event: NEvent) -> tuple[int, Dataset]:
        assert event.event_type == 2 and event.event_information is not None
        return 0, attributes(PatientID="ok")

    status, reply = scu(make_pair({evt.EVT_N_EVENT_REPORT: on_report})).send_n_event_report(
        attributes(PatientName="X"), 2, MPPS, INSTANCE
    )
    assert status.Status == 0 and status.EventTypeID == 2
    assert status.AffectedSOPInstanceUID == INSTANCE and reply is not None
    assert reply.PatientID == "ok"


def test_acceptor_reports_to_requestor_on_the_same_association() -> None:
    """Storage Commitment's "same association" path: the N-ACTION is answered, then the
    acceptor (the SOP class's SCP) sends N-EVENT-REPORT and the requestor's handler answers."""
    reports: list[tuple[int, Dataset | None]] = []

    def on_report(event: NEvent) -> tuple[int, None]:
        reports.append((event.event_type, event.event_information))
        return 0, None

    pair = make_pair(
        {evt.EVT_N_ACTION: lambda event: (0, None)},
        {evt.EVT_N_EVENT_REPORT: on_report},
    )
    status, _ = scu(pair).send_n_action(
        attributes(TransactionUID="1.2.9"), 1, STGCMT, STORAGE_COMMITMENT_INSTANCE
    )
    assert status.Status == 0
    status, reply = PairAssociation(pair, pair.acceptor).send_n_event_report(
        attributes(TransactionUID="1.2.9"), 1, STGCMT, STORAGE_COMMITMENT_INSTANCE
    )
    assert status.Status == 0 and reply == Dataset()
    assert reports[0][0] == 1 and reports[0][1] is not None
    assert reports[0][1].TransactionUID == "1.2.9"


def test_requestor_without_a_report_handler_answers_unrecognized() -> None:
    pair = make_pair()
    status, reply = PairAssociation(pair, pair.acceptor).send_n_event_report(
        None, 1, STGCMT, STORAGE_COMMITMENT_INSTANCE
    )
    assert status.Status == st.UNRECOGNIZED_OPERATION and reply is None


def test_report_on_a_context_where_the_sender_took_the_scp_role() -> None:
    """Storage Commitment's "new association" path: the SCP requests, proposing only the
    SCP role; the acceptor (the SOP class's SCU) gets the N-EVENT-REPORT."""
    got: list[int] = []

    def on_report(event: NEvent) -> tuple[int, None]:
        got.append(event.event_type)
        return 0, None

    pair = make_pair(
        {evt.EVT_N_EVENT_REPORT: on_report},
        roles=(RoleSelection(STGCMT, False, True),),
        scp_role_for=frozenset({STGCMT}),
    )
    assert pair.requestor.negotiated is not None
    ctx = pair.requestor.negotiated.find_context(STGCMT, as_scp=True)
    assert ctx is not None and not ctx.as_scu
    status, _ = scu(pair).send_n_event_report(None, 2, STGCMT, STORAGE_COMMITMENT_INSTANCE)
    assert status.Status == 0 and got == [2]
    with pytest.raises(ValueError, match="no accepted presentation context"):
        scu(pair).send_n_action(None, 1, STGCMT, STORAGE_COMMITMENT_INSTANCE)


def test_meta_sop_class_context_carries_member_classes() -> None:
    def on_create(event: NEvent) -> tuple[int, None]:
        assert event.context.abstract_syntax == GRAYSCALE_META
        assert event.request.AffectedSOPClassUID == FILM_SESSION
        return 0, None

    status, _ = scu(make_pair({evt.EVT_N_CREATE: on_create})).send_n_create(
        None, FILM_SESSION, INSTANCE, meta_uid=GRAYSCALE_META
    )
    assert status.Status == 0


# -- N-CREATE without an instance UID ----------------------------------------------------------
@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "AffectedSOPInstanceUID"])
def test_n_create_without_uid_takes_the_handlers(keyword: str) -> None:
    def on_create(event: NEvent) -> tuple[int, Dataset]:
        assert event.request.AffectedSOPInstanceUID is None
        reply = Dataset()
        setattr(reply, keyword, "1.2.3.4")
        reply.PatientID = "7"
        return 0, reply

    status, reply = scu(make_pair({evt.EVT_N_CREATE: on_create})).send_n_create(
        attributes(PatientID="7"), MPPS
    )
    assert status.Status == 0 and status.AffectedSOPInstanceUID == "1.2.3.4"
    assert reply is not None and reply.PatientID == "7"
    assert ("AffectedSOPInstanceUID" in reply) is False


def test_n_create_without_any_uid_is_processing_failure() -> None:
    before = fired("n-create-scp", "no_instance_uid")
    status, reply = scu(
        make_pair({evt.EVT_N_CREATE: lambda event: (0, attributes(PatientID="7"))})
    ).send_n_create(None, MPPS)
    assert status.Status == st.PROCESSING_FAILURE and reply is None
    assert "SOPInstanceUID" in status.ErrorComment
    assert fired("n-create-scp", "no_instance_uid") == before + 1


# -- every named status, both charts ---------------------------------------------------------
NAMED = [(op, code) for op in ALL for code in st.N_OPERATION_CODES[op.service]]


@pytest.mark.parametrize(
    ("op", "code"), NAMED, ids=[f"{op.name}-0x{code:04X}" for op, code in NAMED]
)
def test_named_status_passes_with_comment_and_identifiers(op: NOperation, code: int) -> None:
    name = st.NAMES[code]
    returned = status_ds(
        code, ErrorComment="because", ErrorID=9, AttributeIdentifierList=[0x00100010, 0x00100020]
    )

    def handler(event: NEvent) -> Any:
        return (returned, attributes(PatientID="1")) if op.replies else returned

    before = fired(f"{op.slug}-scp", name), fired(f"{op.slug}-scu", name)
    result = call(scu(make_pair({op.event: handler})), op)
    status, reply = result if op.replies else (result, None)
    assert status.Status == code
    assert status.ErrorComment == "because" and status.ErrorID == 9
    if "AttributeIdentifierList" in OPERATIONS_STATUS_KEYWORDS[op.request]:
        assert status.AttributeIdentifierList == [0x00100010, 0x00100020]
    if st.category(code) is st.Category.WARNING:
        assert reply == attributes(PatientID="1")
    else:
        assert reply is None
    assert fired(f"{op.slug}-scp", name) == before[0] + 1
    assert fired(f"{op.slug}-scu", name) == before[1] + 1


OPERATIONS_STATUS_KEYWORDS = {
    CommandField.N_EVENT_REPORT_RQ: (),
    CommandField.N_GET_RQ: ("AttributeIdentifierList",),
    CommandField.N_SET_RQ: ("AttributeIdentifierList",),
    CommandField.N_ACTION_RQ: ("AttributeIdentifierList",),
    CommandField.N_CREATE_RQ: ("AttributeIdentifierList",),
    CommandField.N_DELETE_RQ: (),
}

# (what the handler returns, SCP transition, status sent, SCU state, SCU transition)
OUTCOMES = [
    (0x0000, "success", 0x0000, "Succeeded", "success"),
    (Dataset(), "no_status_element", 0xC001, "Failed", "failure"),
    ("yes", "invalid_status", 0xC002, "Failed", "failure"),
    (0xB300, "warning", 0xB300, "Warned", "warning"),
    (0xC310, "failure", 0xC310, "Failed", "failure"),
    (0xFF00, "unknown_status", 0xFF00, "Failed", "unknown_status"),
]


@pytest.mark.parametrize("op", ALL, ids=IDS)
@pytest.mark.parametrize(
    ("returned", "scp_name", "code", "scu_state", "scu_name"),
    OUTCOMES,
    ids=[o[1] for o in OUTCOMES],
)
def test_handler_outcomes(
    op: NOperation, returned: Any, scp_name: str, code: int, scu_state: str, scu_name: str
) -> None:
    def handler(event: NEvent) -> Any:
        return (returned, None) if op.replies else returned

    before = fired(f"{op.slug}-scp", scp_name), fired(f"{op.slug}-scu", scu_name)
    pair = make_pair({op.event: handler})
    scu_op = send_raw(pair, op, dataset=request_dataset(op))
    assert scu_op.state == scu_state and scu_op.result().Status == code
    assert fired(f"{op.slug}-scp", scp_name) == before[0] + 1
    assert fired(f"{op.slug}-scu", scu_name) == before[1] + 1
    assert pair.acceptor.is_established


@pytest.mark.parametrize(
    "op", [op for op in ALL if op.replies], ids=[op.name for op in ALL if op.replies]
)
def test_reply_that_is_not_a_dataset_is_an_invalid_status(op: NOperation) -> None:
    scu_op = send_raw(
        make_pair({op.event: lambda event: (0, "not a data set")}), op, dataset=request_dataset(op)
    )
    assert scu_op.result().Status == st.INVALID_STATUS_OBJECT


@pytest.mark.parametrize("op", ALL, ids=IDS)
def test_handler_that_raises_is_processing_failure_and_the_association_goes_on(
    op: NOperation,
) -> None:
    def handler(event: NEvent) -> Any:
        raise RuntimeError("disk on fire\nsecond line")

    before = fired(f"{op.slug}-scp", "handler_raised")
    pair = make_pair({op.event: handler})
    scu_op = send_raw(pair, op, dataset=request_dataset(op))
    result = scu_op.result()
    assert result.Status == st.PROCESSING_FAILURE
    assert result.ErrorComment == "handler raised RuntimeError: disk on fire"
    assert fired(f"{op.slug}-scp", "handler_raised") == before + 1
    assert pair.acceptor.is_established and pair.requestor.is_established


@pytest.mark.parametrize("op", ALL, ids=IDS)
def test_no_handler_is_unrecognized_operation(op: NOperation) -> None:
    before = fired(f"{op.slug}-scp", "no_handler")
    scu_op = send_raw(make_pair(), op, dataset=request_dataset(op))
    result = scu_op.result()
    assert result.Status == st.UNRECOGNIZED_OPERATION
    assert result.ErrorComment == f"no {op.event.name} handler"
    assert fired(f"{op.slug}-scp", "no_handler") == before + 1


@pytest.mark.parametrize(
    "op", [op for op in ALL if op.replies], ids=[op.name for op in ALL if op.replies]
)
def test_reply_that_cannot_be_encoded_is_processing_failure(op: NOperation) -> None:
    bad = Dataset()
    bad.add_new(0x00280010, "US", "abc")
    before = fired(f"{op.slug}-scp", "reply_unencodable")
    scu_op = send_raw(
        make_pair({op.event: lambda event: (0, bad)}), op, dataset=request_dataset(op)
    )
    result = scu_op.result()
    assert result.Status == st.PROCESSING_FAILURE and "cannot be encoded" in result.ErrorComment
    assert scu_op.response is not None and scu_op.response.dataset is None
    assert fired(f"{op.slug}-scp", "reply_unencodable") == before + 1


# -- bad requests ------------------------------------------------------------------------------
def _class_key(op: NOperation) -> str:
    return "AffectedSOPClassUID" if op in (N_EVENT_REPORT, N_CREATE) else "RequestedSOPClassUID"


def _instance_key(op: NOperation) -> str:
    return (
        "AffectedSOPInstanceUID" if op in (N_EVENT_REPORT, N_CREATE) else "RequestedSOPInstanceUID"
    )


MISTYPED = [
    *((op, {_class_key(op): None}) for op in ALL),
    *((op, {_instance_key(op): None}) for op in ALL if op is not N_CREATE),
    (N_EVENT_REPORT, {"EventTypeID": None}),
    (N_ACTION, {"ActionTypeID": None}),
]


@pytest.mark.parametrize(
    ("op", "overrides"), MISTYPED, ids=[f"{op.name}-{next(iter(o))}" for op, o in MISTYPED]
)
def test_missing_field_is_mistyped_argument(op: NOperation, overrides: dict[str, Any]) -> None:
    called: list[NEvent] = []
    before = fired(f"{op.slug}-scp", "mistyped")
    scu_op = send_raw(
        make_pair({op.event: recorder(called)}),
        op,
        overrides,
        dataset=request_dataset(op),
    )
    result = scu_op.result()
    assert result.Status == st.MISTYPED_ARGUMENT and called == []
    assert result.ErrorComment == f"missing {next(iter(overrides))}"
    assert fired(f"{op.slug}-scp", "mistyped") == before + 1


def test_n_set_without_modification_list_is_mistyped_argument() -> None:
    scu_op = send_raw(make_pair({evt.EVT_N_SET: lambda event: (0, None)}), N_SET)
    assert scu_op.result().Status == st.MISTYPED_ARGUMENT


def test_request_without_message_id_is_aborted() -> None:
    pair = make_pair({evt.EVT_N_GET: lambda event: (0, None)})
    scu_op = send_raw(pair, N_GET, {"MessageID": None})
    assert scu_op.state == "Aborted" and pair.acceptor.outcome == "aborted"
    assert scu_op.reply() == (Dataset(), None)


@pytest.mark.parametrize("op", ALL, ids=IDS)
def test_other_sop_class_than_the_contexts_is_no_such_sop_class(op: NOperation) -> None:
    before = fired(f"{op.slug}-scp", "wrong_sop_class")
    scu_op = send_raw(
        make_pair({op.event: lambda event: (0, None)}),
        op,
        {_class_key(op): PRINTER},
        dataset=request_dataset(op),
    )
    result = scu_op.result()
    assert result.Status == st.NO_SUCH_SOP_CLASS
    assert result.ErrorComment == f"SOP class {PRINTER} is not the context's"
    assert fired(f"{op.slug}-scp", "wrong_sop_class") == before + 1


@pytest.mark.parametrize("op", ALL, ids=IDS)
def test_instance_uid_that_is_not_a_uid_is_invalid_object_instance(op: NOperation) -> None:
    before = fired(f"{op.slug}-scp", "invalid_uid")
    scu_op = send_raw(
        make_pair({op.event: lambda event: (0, None)}),
        op,
        {_instance_key(op): "1.02.x"},
        dataset=request_dataset(op),
    )
    result = scu_op.result()
    assert result.Status == st.INVALID_OBJECT_INSTANCE
    assert scu_op.response is not None
    assert "AffectedSOPInstanceUID" not in scu_op.response.command
    assert fired(f"{op.slug}-scp", "invalid_uid") == before + 1


NOT_REPORT = [op for op in ALL if op is not N_EVENT_REPORT]


@pytest.mark.parametrize("op", NOT_REPORT, ids=[op.name for op in NOT_REPORT])
def test_request_where_we_are_not_scp_is_unrecognized(op: NOperation) -> None:
    """The requestor is not the SCP by default: a request its peer sends is refused."""
    before = fired(f"{op.slug}-scp", "role_not_agreed")
    handler_called: list[NEvent] = []
    pair = make_pair(requestor_handlers={op.event: recorder(handler_called)})
    with pytest.raises(ValueError, match="no accepted presentation context"):
        call(PairAssociation(pair, pair.acceptor), op)  # the API does not send it...
    scu_op = send_raw(pair, op, dataset=request_dataset(op), sender=pair.acceptor)  # ...a peer may
    status = scu_op.result()
    assert status.Status == st.UNRECOGNIZED_OPERATION and handler_called == []
    assert fired(f"{op.slug}-scp", "role_not_agreed") == before + 1


DATA_IN = [op for op in ALL if op.data_in is not None]


@pytest.mark.parametrize("op", DATA_IN, ids=[op.name for op in DATA_IN])
def test_undecodable_data_set_is_processing_failure(op: NOperation) -> None:
    called: list[NEvent] = []
    before = fired(f"{op.slug}-scp", "undecodable")
    scu_op = send_raw(
        make_pair({op.event: recorder(called)}),
        op,
        dataset=b"\x10\x00\x10\x00\xff\xff\xff\x7f",
    )
    result = scu_op.result()
    assert result.Status == st.PROCESSING_FAILURE and "cannot be decoded" in result.ErrorComment
    assert called == [] and fired(f"{op.slug}-scp", "undecodable") == before + 1


@pytest.mark.parametrize("op", DATA_IN, ids=[op.name for op in DATA_IN])
def test_data_set_over_the_limit_is_resource_limitation(op: NOperation) -> None:
    before = fired(f"{op.slug}-scp", "too_large")
    big = encode_dataset(attributes(PatientName="x" * 200), ELE)
    scu_op = send_raw(
        make_pair({op.event: lambda event: (0, None)}, max_identifier_size=64), op, dataset=big
    )
    assert scu_op.result().Status == st.RESOURCE_LIMITATION
    assert fired(f"{op.slug}-scp", "too_large") == before + 1


# -- the SCU's other ends --------------------------------------------------------------------
@pytest.mark.parametrize("op", ALL, ids=IDS)
def test_association_lost_before_the_response(op: NOperation) -> None:
    pair = make_pair({op.event: lambda event: (0, None)})
    before = fired(f"{op.slug}-scu", "aborted")
    scu_op = send_raw(pair, op, dataset=request_dataset(op), run=False)
    pair.close_transport()
    assert scu_op.state == "Aborted" and scu_op.reply() == (Dataset(), None)
    assert fired(f"{op.slug}-scu", "aborted") == before + 1


@pytest.mark.parametrize("op", ALL, ids=IDS)
def test_no_response_in_time(op: NOperation) -> None:
    pair = make_pair({op.event: lambda event: (0, None)})
    before = fired(f"{op.slug}-scu", "timed_out")
    scu_op = send_raw(pair, op, dataset=request_dataset(op), run=False)
    scu_op.on_timeout()
    assert scu_op.state == "TimedOut" and scu_op.result() == Dataset()
    assert fired(f"{op.slug}-scu", "timed_out") == before + 1


def test_response_data_set_that_cannot_be_decoded_is_processing_failure() -> None:
    pair = make_pair()
    assert pair.requestor.negotiated is not None
    op = NormalizedScu(1, N_GET, pair.requestor.negotiated.contexts[1])
    op.sent()
    op.on_response(
        Message(
            1,
            n_rsp(CommandField.N_GET_RSP, 1, 0, has_dataset=True),
            b"\x10\x00\x10\x00\xff\xff\xff\x7f",
        )
    )
    status, reply = op.reply()
    assert status.Status == st.PROCESSING_FAILURE and reply is None


def test_event_attributes_belong_to_their_event() -> None:
    events: list[NEvent] = []
    scu(make_pair({evt.EVT_N_DELETE: recorder(events, 0)})).send_n_delete(MPPS, INSTANCE)
    for attribute in (
        "action_type",
        "action_information",
        "event_type",
        "event_information",
        "attribute_list",
        "modification_list",
        "attribute_identifiers",
    ):
        with pytest.raises(AttributeError, match="handlers only"):
            getattr(events[0], attribute)


def test_every_operation_has_its_charts() -> None:
    assert sorted(op.slug for op in OPERATIONS.values()) == sorted(op.slug for op in ALL)


def test_acceptor_reports_after_its_response_from_the_handler() -> None:
    """An SCP's handler queues an N-EVENT-REPORT that follows its own response on the wire
    (Storage Commitment's same-association report, as an acceptor sends it)."""
    outcomes: list[NormalizedScu] = []
    order: list[str] = []

    def on_action(event: NEvent) -> tuple[int, None]:
        after_response(
            event.assoc,
            event.message_id,
            lambda: start_n_request(
                event.assoc,
                N_EVENT_REPORT,
                STGCMT,
                STORAGE_COMMITMENT_INSTANCE,
                attributes(TransactionUID="1.2.9"),
                event_type=1,
                on_done=outcomes.append,
            ),
        )
        return 0, None

    def on_report(event: NEvent) -> tuple[int, Dataset]:
        order.append(f"report after N-ACTION {action.state}")
        assert event.event_information is not None
        return 0, attributes(TransactionUID=event.event_information.TransactionUID)

    pair = make_pair({evt.EVT_N_ACTION: on_action}, {evt.EVT_N_EVENT_REPORT: on_report})
    action = send_raw(
        pair,
        N_ACTION,
        {"RequestedSOPInstanceUID": STORAGE_COMMITMENT_INSTANCE},
        context_id=3,
        run=False,
    )
    pair.run()
    assert action.result().Status == 0
    assert order == ["report after N-ACTION Succeeded"]
    status, reply = outcomes[0].reply()
    assert status.Status == 0 and reply is not None and reply.TransactionUID == "1.2.9"
    assert not pair.acceptor.scp_operations and not pair.acceptor.operations


def test_follow_up_of_an_association_that_ended_does_not_run() -> None:
    ran: list[bool] = []
    pair = make_pair()
    after_response(pair.acceptor, 9, lambda: ran.append(True))
    pair.close_transport()
    assert ran == [] and not pair.acceptor.scp_operations
