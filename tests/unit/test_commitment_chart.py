"""The Storage Commitment SCP exchange as a chart: every path, driven in memory.

Each test feeds the exchange the inputs its runner would (the check's
outcome, the association's fate, the report's status, the retry timer) and
checks the effects it asks for and where it ends.  No sockets, no clocks.
"""

from __future__ import annotations

import pytest
from pydicom import Dataset

from dimsefsm import status as st
from dimsefsm.fsm import RefusedTrigger
from dimsefsm.fsm.coverage import RECORDER
from dimsefsm.services import commitment as sc
from dimsefsm.services.commitment import (
    CHART,
    CheckReferences,
    CommitmentExchange,
    CommitmentOutcome,
    CommitmentRequest,
    Finished,
    OpenReportAssociation,
    Reference,
    RequestRefused,
    SendReport,
    WaitToRetry,
)

CT = "1.2.840.10008.5.1.4.1.1.2"
REFS = (Reference(CT, "1.2.3.1"), Reference(CT, "1.2.3.2"))
REQUEST = CommitmentRequest("1.2.3.99", REFS)
ADDRESS = ("127.0.0.1", 11113)
ALL_GOOD = CommitmentOutcome("1.2.3.99", REFS)


def exchange(address: tuple[str, int] | None = ADDRESS, retries: int = 1) -> CommitmentExchange:
    return CommitmentExchange(REQUEST, "MODALITY", address, retries=retries, retry_interval=2.5)


def kinds(ex: CommitmentExchange) -> list[type]:
    return [type(e) for e in ex.take_effects()]


def test_the_table_is_total() -> None:
    assert CHART.gaps() == []


def test_same_association_report_delivered() -> None:
    ex = exchange()
    ex.accepted()
    assert kinds(ex) == [CheckReferences]
    ex.checked(ALL_GOOD, requestor_connected=True)
    (send,) = ex.take_effects()
    assert isinstance(send, SendReport) and send.same_association
    ex.report_answered(st.SUCCESS)
    (end,) = ex.take_effects()
    assert isinstance(end, Finished) and end.delivered and not end.kept
    assert ex.state == "Done"


def test_the_log_says_which_association_carried_the_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", "dimsefsm.commitment")
    test_same_association_report_delivered()
    assert "report delivered to MODALITY on its association" in caplog.text
    test_requestor_gone_the_report_goes_on_a_new_association()
    assert "report delivered to MODALITY on a new association" in caplog.text


def test_requestor_gone_the_report_goes_on_a_new_association() -> None:
    ex = exchange()
    ex.accepted()
    ex.take_effects()
    ex.checked(ALL_GOOD, requestor_connected=False)
    (dial,) = ex.take_effects()
    assert isinstance(dial, OpenReportAssociation)
    assert (dial.address, dial.called_ae) == (ADDRESS, "MODALITY")
    ex.assoc_accepted(role_accepted=True)
    (send,) = ex.take_effects()
    assert isinstance(send, SendReport) and not send.same_association
    ex.report_answered(0x0001)  # a warning is an answer too
    assert ex.state == "Done"


def test_same_association_lost_under_the_report_then_dialled() -> None:
    ex = exchange()
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=True)
    ex.take_effects()
    ex.report_unanswered("A-ABORT")
    assert kinds(ex) == [OpenReportAssociation]
    assert ex.state == "Dialling"


def test_same_association_lost_and_no_address(caplog: pytest.LogCaptureFixture) -> None:
    ex = exchange(address=None)
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=True)
    ex.take_effects()
    ex.report_unanswered("A-ABORT")
    (end,) = ex.take_effects()
    assert isinstance(end, Finished) and not end.delivered and not end.kept
    assert ex.state == "Failed"
    assert "NOT delivered" in caplog.text and "may receive" in caplog.text


def test_no_return_address_fails_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    ex = exchange(address=None)
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=False)
    assert kinds(ex) == [CheckReferences, Finished]
    assert ex.state == "Failed"
    assert "1.2.3.99" in caplog.text and "NOT delivered" in caplog.text


def test_report_refused_by_the_requestor_is_not_retried() -> None:
    ex = exchange()
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=False)
    ex.assoc_accepted(role_accepted=True)
    ex.take_effects()
    ex.report_answered(st.PROCESSING_FAILURE)
    assert kinds(ex) == [Finished]
    assert ex.state == "Failed" and "answered the report 0x0110" in ex.problem


def test_report_refused_on_the_same_association_goes_on_a_new_one() -> None:
    ex = exchange()
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=True)
    ex.take_effects()
    ex.report_answered(st.UNRECOGNIZED_OPERATION)
    assert kinds(ex) == [OpenReportAssociation]
    assert ex.state == "Dialling"


def test_unreachable_requestor_is_retried_then_given_up() -> None:
    ex = exchange(retries=1)
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=False)
    ex.take_effects()
    ex.assoc_failed("connection refused")
    (wait,) = ex.take_effects()
    assert isinstance(wait, WaitToRetry) and wait.seconds == 2.5
    ex.retry_due()
    assert kinds(ex) == [OpenReportAssociation]
    assert ex.attempts == 2
    ex.assoc_failed("connection refused")
    assert kinds(ex) == [Finished]
    assert ex.state == "Failed"


def test_role_refused_is_retried_then_given_up() -> None:
    ex = exchange(retries=1)
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=False)
    ex.take_effects()
    ex.assoc_accepted(role_accepted=False)
    assert kinds(ex) == [WaitToRetry]
    ex.retry_due()
    ex.take_effects()
    ex.assoc_accepted(role_accepted=False)
    assert kinds(ex) == [Finished]
    assert "SCP role" in ex.problem


def test_report_association_lost_is_retried_then_given_up() -> None:
    ex = exchange(retries=1)
    ex.accepted()
    ex.checked(ALL_GOOD, requestor_connected=False)
    ex.assoc_accepted(role_accepted=True)
    ex.take_effects()
    ex.report_unanswered("DIMSE timeout")
    assert kinds(ex) == [WaitToRetry]
    ex.retry_due()
    ex.assoc_accepted(role_accepted=True)
    ex.take_effects()
    ex.report_unanswered("DIMSE timeout")
    assert kinds(ex) == [Finished]
    assert ex.state == "Failed"


@pytest.mark.parametrize(
    "steps",
    [
        (),
        ("accepted",),
        ("accepted", "same"),
        ("accepted", "gone"),
        ("accepted", "gone", "opened"),
        ("accepted", "gone", "failed"),
    ],
)
def test_stopping_suspends_and_keeps_the_journal(steps: tuple[str, ...]) -> None:
    ex = exchange()
    for step in steps:
        if step == "accepted":
            ex.accepted()
        elif step in ("same", "gone"):
            ex.checked(ALL_GOOD, requestor_connected=step == "same")
        elif step == "opened":
            ex.assoc_accepted(role_accepted=True)
        else:
            ex.assoc_failed("refused")
    ex.take_effects()
    ex.stopped()
    (end,) = ex.take_effects()
    assert isinstance(end, Finished) and end.kept and not end.delivered
    assert ex.state == "Suspended"


def test_resumed_exchange_checks_again() -> None:
    ex = exchange()
    ex.resumed()
    assert kinds(ex) == [CheckReferences]


@pytest.mark.parametrize(
    ("state_steps", "trigger"),
    [
        ((), "checked"),
        (("accepted",), "accepted"),
        (("accepted",), "retry_due"),
        (("accepted",), "report_answered"),
    ],
)
def test_inputs_out_of_place_are_refused(state_steps: tuple[str, ...], trigger: str) -> None:
    ex = exchange()
    for step in state_steps:
        CHART.fire(ex, step)
    with pytest.raises(RefusedTrigger):
        CHART.fire(ex, trigger)


def test_every_edge_fires() -> None:
    """The tests above walk every transition of the chart (the gate's view, this module)."""
    with RECORDER.during() as fired:
        for test in (
            test_same_association_report_delivered,
            test_requestor_gone_the_report_goes_on_a_new_association,
            test_same_association_lost_under_the_report_then_dialled,
            test_report_refused_by_the_requestor_is_not_retried,
            test_unreachable_requestor_is_retried_then_given_up,
            test_role_refused_is_retried_then_given_up,
            test_report_association_lost_is_retried_then_given_up,
            test_resumed_exchange_checks_again,
        ):
            test()
        ex = exchange(address=None)
        ex.accepted()
        ex.checked(ALL_GOOD, requestor_connected=False)
        ex = exchange(address=None)
        ex.accepted()
        ex.checked(ALL_GOOD, requestor_connected=True)
        ex.report_unanswered("gone")
        ex = exchange(address=None)
        ex.accepted()
        ex.checked(ALL_GOOD, requestor_connected=True)
        ex.report_answered(st.NOT_AUTHORIZED)
        test_report_refused_on_the_same_association_goes_on_a_new_one()
        for steps in (
            (),
            ("accepted",),
            ("accepted", "same"),
            ("accepted", "gone"),
            ("accepted", "gone", "opened"),
            ("accepted", "gone", "failed"),
        ):
            test_stopping_suspends_and_keeps_the_journal(steps)
    missing = set(CHART.declared_edges()) - fired.fired(CHART.name)
    assert missing == set()


# -- the request and the report ---------------------------------------------------------------
def information(**kwargs: object) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = "1.2.3.99"
    item = Dataset()
    item.ReferencedSOPClassUID = CT
    item.ReferencedSOPInstanceUID = "1.2.3.1"
    ds.ReferencedSOPSequence = [item]
    for key, value in kwargs.items():
        if value is None:
            del ds[key]
        else:
            setattr(ds, key, value)
    return ds


def test_a_well_formed_request_parses() -> None:
    parsed = sc.parse_request(1, sc.STORAGE_COMMITMENT_INSTANCE, information())
    assert parsed == CommitmentRequest("1.2.3.99", (Reference(CT, "1.2.3.1"),))


@pytest.mark.parametrize(
    ("action", "instance", "info", "status", "says"),
    [
        (
            2,
            sc.STORAGE_COMMITMENT_INSTANCE,
            information(),
            st.NO_SUCH_ACTION,
            "no Action Type ID 2",
        ),
        (1, "1.2.3", information(), st.INVALID_OBJECT_INSTANCE, "must be 1.2.840.10008.1.20.1.1"),
        (1, sc.STORAGE_COMMITMENT_INSTANCE, None, st.MISSING_ATTRIBUTE, "Transaction UID"),
        (
            1,
            sc.STORAGE_COMMITMENT_INSTANCE,
            information(TransactionUID=None),
            st.MISSING_ATTRIBUTE,
            "TransactionUID is missing",
        ),
        (
            1,
            sc.STORAGE_COMMITMENT_INSTANCE,
            information(TransactionUID=""),
            st.MISSING_ATTRIBUTE_VALUE,
            "TransactionUID has no value",
        ),
        (
            1,
            sc.STORAGE_COMMITMENT_INSTANCE,
            information(TransactionUID="1..2"),
            st.INVALID_ARGUMENT_VALUE,
            "empty component",
        ),
        (
            1,
            sc.STORAGE_COMMITMENT_INSTANCE,
            information(ReferencedSOPSequence=None),
            st.MISSING_ATTRIBUTE,
            "Referenced SOP Sequence is missing",
        ),
        (
            1,
            sc.STORAGE_COMMITMENT_INSTANCE,
            information(ReferencedSOPSequence=[]),
            st.MISSING_ATTRIBUTE_VALUE,
            "empty",
        ),
        (
            1,
            sc.STORAGE_COMMITMENT_INSTANCE,
            information(ReferencedSOPSequence=[Dataset()]),
            st.MISSING_ATTRIBUTE,
            "item 1: ReferencedSOPClassUID",
        ),
    ],
)
def test_malformed_requests_get_the_standard_status(
    action: int, instance: str, info: Dataset | None, status: int, says: str
) -> None:
    refused = sc.parse_request(action, instance, info)
    assert isinstance(refused, RequestRefused)
    assert refused.status == status
    assert says in refused.comment


def test_report_round_trip_with_failures() -> None:
    outcome = sc.outcome_of("1.2.3.99", [(REFS[0], None), (REFS[1], sc.NO_SUCH_OBJECT_INSTANCE)])
    assert outcome.event_type == sc.FAILURES_EXIST
    ds = sc.report_dataset(outcome, "ARCHIVE")
    assert ds.FailedSOPSequence[0].FailureReason == 0x0112
    assert ds.RetrieveAETitle == "ARCHIVE"
    assert sc.parse_report(2, ds) == outcome


def test_report_all_committed_has_no_failed_sequence() -> None:
    ds = sc.report_dataset(ALL_GOOD)
    assert "FailedSOPSequence" not in ds
    assert sc.parse_report(1, ds) == ALL_GOOD


@pytest.mark.parametrize("event_type", [3, None])
def test_unreadable_reports_say_why(event_type: object) -> None:
    with pytest.raises(ValueError, match="Event Type"):
        sc.parse_report(event_type, sc.report_dataset(ALL_GOOD))


def test_report_event_type_must_match_its_sequences() -> None:
    with pytest.raises(ValueError, match="without a Failed"):
        sc.parse_report(2, sc.report_dataset(ALL_GOOD))
    failed = sc.report_dataset(CommitmentOutcome("1.2.3.99", failed=((REFS[0], 0x0112),)))
    with pytest.raises(ValueError, match="with a Failed"):
        sc.parse_report(1, failed)
    with pytest.raises(ValueError, match="Transaction UID"):
        sc.parse_report(1, Dataset())


@pytest.mark.parametrize("implicit", [True, False])
def test_request_and_report_encode_alike_on_both_paths(implicit: bool) -> None:
    """Items built from their tags stay pydicom data sets: its writer and the fast path
    write the same bytes (the fast path declining would fall back to pydicom)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    from dimsefsm.fast_encode import fast_encode

    outcome = sc.outcome_of("1.2.3.99", [(REFS[0], None), (REFS[1], 0x0112)])
    for ds in (sc.request_dataset("1.2.3.99", REFS), sc.report_dataset(outcome, "QR")):
        out = DicomBytesIO()
        out.is_implicit_VR, out.is_little_endian = implicit, True
        write_dataset(out, ds)
        assert fast_encode(ds, implicit) == out.getvalue()
