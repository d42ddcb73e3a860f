"""The UPS state model (PS3.4 CC.1.1): every transition of both charts, from the step itself."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import pytest
from pydicom import Dataset

from dimsefsm import status as st
from dimsefsm.fsm import RECORDER
from dimsefsm.services.ups_state import (
    ASSIGNED,
    CANCEL_REQUESTED,
    GLOBAL_CHART,
    PROGRESS_REPORT,
    STATE_REPORT,
    UPS_CHART,
    GlobalStep,
    StepOutcome,
    UpsRecord,
    UpsStep,
    action_trigger,
    global_trigger,
)
from tests.scenarios import run_module_scenarios
from tests.unit.ups_data import change_state, completion, subscription, ups_create

UID = "1.2.826.0.1.3680043.10.1.1"
LOCK = "1.2.826.0.1.3680043.10.1.99"
KNOWN = {"WATCHER", "PERFORMER"}


def step(
    trigger: str,
    record: UpsRecord | None,
    attributes: Dataset | None = None,
    *,
    subscribers: Iterable[str] = (),
    identifiers: Iterable[int] = (),
    action_type: int | None = None,
) -> StepOutcome:
    return UpsStep(
        UID,
        record,
        attributes,
        calling_ae="PERFORMER",
        known_ae=KNOWN.__contains__,
        subscribers=subscribers,
        now="20261205130000",
        worklist_label="DIMSEFSM",
        identifiers=identifiers,
        action_type=action_type,
    ).run(trigger)


def scheduled() -> UpsRecord:
    outcome = step("n_create", None, ups_create())
    assert outcome.status == st.SUCCESS and outcome.record is not None
    return outcome.record


def in_progress() -> UpsRecord:
    outcome = step("change_state", scheduled(), change_state("IN PROGRESS", LOCK))
    assert outcome.status == st.SUCCESS and outcome.record is not None
    return outcome.record


def finished() -> UpsRecord:
    record = in_progress()
    done = step("n_set", record, completion(LOCK)).record
    outcome = step("change_state", done, change_state("COMPLETED", LOCK))
    assert outcome.status == st.SUCCESS and outcome.record is not None
    return outcome.record


def canceled() -> UpsRecord:
    outcome = step("request_cancel", scheduled())
    assert outcome.record is not None
    return outcome.record


def test_create_makes_a_scheduled_ups_and_reports_it() -> None:
    create = ups_create()
    outcome = step("n_create", None, create)
    assert outcome.status == st.SUCCESS and outcome.changed
    record = outcome.record
    assert record is not None and record.state == "SCHEDULED"
    assert "TransactionUID" not in record.dataset
    assert record.dataset.SOPInstanceUID == UID
    assert record.dataset.SOPClassUID == "1.2.840.10008.5.1.4.34.6.1"
    assert [r.event_type for r in outcome.reports] == [STATE_REPORT]
    assert outcome.reports[0].information.ProcedureStepState == "SCHEDULED"
    assert "TransactionUID" in create  # the request is not modified


def test_create_fills_the_worklist_label_and_reports_an_assignment() -> None:
    create = ups_create(ScheduledStationNameCodeSequence=[Dataset()])
    create.ScheduledStationNameCodeSequence[0].CodeValue = "WS1"
    del create.WorklistLabel
    outcome = step("n_create", None, create)
    assert outcome.record is not None and outcome.record.dataset.WorklistLabel == "DIMSEFSM"
    assert [r.event_type for r in outcome.reports] == [STATE_REPORT, ASSIGNED]


@pytest.mark.parametrize(
    ("change", "status", "offending"),
    [
        ({"ProcedureStepState": "IN PROGRESS"}, st.UPS_NOT_SCHEDULED, ()),
        ({"TransactionUID": LOCK}, st.INVALID_ATTRIBUTE_VALUE, ()),
        ({"ScheduledProcedureStepPriority": None}, st.MISSING_ATTRIBUTE, (0x00741200,)),
        ({"InputReadinessState": ""}, st.MISSING_ATTRIBUTE_VALUE, (0x00404041,)),
        ({"ScheduledProcedureStepPriority": "URGENT"}, st.INVALID_ATTRIBUTE_VALUE, (0x00741200,)),
    ],
    ids=["not-scheduled", "transaction-uid", "missing", "empty", "invalid"],
)
def test_create_refusals_create_nothing(
    change: dict[str, str | None], status: int, offending: tuple[int, ...]
) -> None:
    create = ups_create()
    for keyword, value in change.items():
        if value is None:
            delattr(create, keyword)
        else:
            setattr(create, keyword, value)
    outcome = step("n_create", None, create)
    assert outcome.status == status and outcome.comment
    assert outcome.record is None and not outcome.changed and not outcome.reports
    assert tuple(outcome.offending) == offending


def test_duplicate_create_leaves_the_ups_unchanged() -> None:
    record = in_progress()
    outcome = step("n_create", record, ups_create())
    assert outcome.status == st.DUPLICATE_SOP_INSTANCE
    assert outcome.record is record and not outcome.changed
    assert outcome.comment == "a UPS with this SOP Instance UID exists"


def test_claim_records_the_lock_and_the_performer() -> None:
    record = in_progress()
    assert record.state == "IN PROGRESS"
    assert record.transaction_uid == LOCK and record.performer_ae == "PERFORMER"
    assert record.dataset.ProcedureStepState == "IN PROGRESS"


def test_set_on_scheduled_and_in_progress() -> None:
    change = Dataset()
    change.ProcedureStepLabel = "new label"
    outcome = step("n_set", scheduled(), change)
    assert outcome.status == st.SUCCESS and outcome.record is not None
    assert outcome.record.dataset.ProcedureStepLabel == "new label"
    assert outcome.reports == []

    change.TransactionUID = LOCK
    outcome = step("n_set", scheduled(), change)
    assert outcome.status == st.UPS_NOT_IN_PROGRESS and not outcome.changed

    record = in_progress()
    outcome = step("n_set", record, change)
    assert outcome.status == st.SUCCESS
    assert outcome.record is not None and outcome.record.transaction_uid == LOCK
    assert "TransactionUID" not in outcome.record.dataset


def test_set_reports_readiness_progress_and_assignment() -> None:
    change = Dataset()
    change.TransactionUID = LOCK
    change.InputReadinessState = "INCOMPLETE"
    progress = Dataset()
    progress.ProcedureStepProgress = "50"
    change.ProcedureStepProgressInformationSequence = [progress]
    performer = Dataset()
    performer.HumanPerformerName = "Smith^Ann"
    change.ScheduledHumanPerformersSequence = [performer]
    outcome = step("n_set", in_progress(), change)
    assert [r.event_type for r in outcome.reports] == [STATE_REPORT, PROGRESS_REPORT, ASSIGNED]


@pytest.mark.parametrize("lock", [None, "1.2.3.4"], ids=["no-uid", "wrong-uid"])
def test_set_without_the_lock_changes_nothing(lock: str | None) -> None:
    record = in_progress()
    change = Dataset()
    change.ProcedureStepLabel = "hijack"
    if lock is not None:
        change.TransactionUID = lock
    outcome = step("n_set", record, change)
    assert outcome.status == st.UPS_WRONG_TRANSACTION_UID
    assert outcome.record is record and not outcome.changed


def test_set_may_not_change_identity_or_state() -> None:
    change = Dataset()
    change.ProcedureStepState = "COMPLETED"
    outcome = step("n_set", scheduled(), change)
    assert outcome.status == st.INVALID_ATTRIBUTE_VALUE
    assert outcome.offending == (0x00741000,)
    change.TransactionUID = LOCK
    change.SOPInstanceUID = "1.2.3"
    outcome = step("n_set", in_progress(), change)
    assert outcome.status == st.INVALID_ATTRIBUTE_VALUE
    assert outcome.comment == "N-SET may not change UIDs or the state"


@pytest.mark.parametrize("final", [finished, canceled], ids=["completed", "canceled"])
def test_set_on_a_final_ups_is_refused(final: object) -> None:
    record = final()  # type: ignore[operator]
    change = Dataset()
    change.TransactionUID = LOCK
    change.ProcedureStepLabel = "late"
    outcome = step("n_set", record, change)
    assert outcome.status == st.UPS_MAY_NO_LONGER_BE_UPDATED
    assert outcome.comment == f"UPS is {record.state}: it may no longer be updated"
    assert outcome.record is record and not outcome.changed


@pytest.mark.parametrize(
    "trigger",
    ["n_set", "n_get", "change_state", "request_cancel", "subscribe", "unsubscribe", "suspend"],
)
def test_a_uid_without_ups_answers_0xc307(trigger: str) -> None:
    outcome = step(trigger, None, change_state("IN PROGRESS", LOCK))
    assert outcome.status == st.UPS_NO_SUCH_INSTANCE
    assert outcome.record is None and not outcome.changed


def test_get_returns_what_is_asked_never_the_lock() -> None:
    record = in_progress()
    outcome = step("n_get", record, identifiers=[0x00741000, 0x00081195, 0x00100010])
    assert outcome.status == st.SUCCESS and outcome.reply is not None
    assert outcome.reply.ProcedureStepState == "IN PROGRESS"
    assert outcome.reply.PatientName == "Doe^Jane"
    assert "TransactionUID" not in outcome.reply
    everything = step("n_get", record).reply
    assert everything is not None and "ProcedureStepLabel" in everything
    assert "TransactionUID" not in everything


def test_change_state_refusals_in_scheduled() -> None:
    record = scheduled()
    for attributes, status in (
        (change_state("IN PROGRESS", None), st.INVALID_ARGUMENT_VALUE),
        (change_state("PAUSED", LOCK), st.INVALID_ARGUMENT_VALUE),
        (change_state("SCHEDULED", LOCK), st.UPS_SCHEDULED_ONLY_BY_CREATE),
        (change_state("COMPLETED", LOCK), st.UPS_NOT_IN_PROGRESS),
        (change_state("CANCELED", LOCK), st.UPS_NOT_IN_PROGRESS),
    ):
        outcome = step("change_state", record, attributes)
        assert outcome.status == status and outcome.comment
        assert outcome.record is record and not outcome.changed


def test_change_state_in_progress() -> None:
    record = in_progress()
    second = step("change_state", record, change_state("IN PROGRESS", "1.2.3.5"))
    assert second.status == st.UPS_ALREADY_IN_PROGRESS
    wrong = step("change_state", record, change_state("COMPLETED", "1.2.3.5"))
    assert wrong.status == st.UPS_WRONG_TRANSACTION_UID and wrong.record is record
    unmet = step("change_state", record, change_state("COMPLETED", LOCK))
    assert unmet.status == st.UPS_FINAL_STATE_REQUIREMENTS_NOT_MET
    assert unmet.comment is not None and "UnifiedProcedureStep" in unmet.comment
    assert unmet.record is record
    cancel = step("change_state", record, change_state("CANCELED", LOCK))
    assert cancel.status == st.SUCCESS and cancel.record is not None
    assert cancel.record.state == "CANCELED" and cancel.record.transaction_uid is None
    progress = cancel.record.dataset.ProcedureStepProgressInformationSequence[0]
    assert progress.ProcedureStepCancellationDateTime == "20261205130000"
    assert cancel.reports[0].information.ProcedureStepState == "CANCELED"


def test_completion_lists_what_is_missing() -> None:
    record = in_progress()
    partial = completion(LOCK)
    del partial.UnifiedProcedureStepPerformedProcedureSequence[0].PerformedWorkitemCodeSequence
    set_ = step("n_set", record, partial)
    assert set_.record is not None
    outcome = step("change_state", set_.record, change_state("COMPLETED", LOCK))
    assert outcome.status == st.UPS_FINAL_STATE_REQUIREMENTS_NOT_MET
    assert outcome.comment == "final state requirements not met: PerformedWorkitemCodeSequence"


def test_complete_then_the_final_states_answer() -> None:
    record = finished()
    assert record.state == "COMPLETED" and record.transaction_uid is None
    again = step("change_state", record, change_state("COMPLETED", LOCK))
    assert again.status == st.UPS_ALREADY_COMPLETED_WARNING and not again.changed
    cancel = step("change_state", record, change_state("CANCELED", LOCK))
    assert cancel.status == st.UPS_MAY_NO_LONGER_BE_UPDATED
    ended = canceled()
    assert step("change_state", ended, change_state("CANCELED", LOCK)).status == (
        st.UPS_ALREADY_CANCELED
    )
    assert step("change_state", ended, change_state("COMPLETED", LOCK)).status == (
        st.UPS_MAY_NO_LONGER_BE_UPDATED
    )


def test_request_cancel_by_state() -> None:
    record = scheduled()
    reason = Dataset()
    reason.ReasonForCancellation = "patient left"
    outcome = step("request_cancel", record, reason)
    assert outcome.status == st.SUCCESS and outcome.record is not None
    assert outcome.record.state == "CANCELED"
    assert outcome.reports[0].information.ReasonForCancellation == "patient left"

    running = in_progress()
    unreachable = step("request_cancel", running, reason, subscribers={"WATCHER"})
    assert unreachable.status == st.UPS_PERFORMER_UNREACHABLE and not unreachable.reports
    asked = step("request_cancel", running, reason, subscribers={"PERFORMER"})
    assert asked.status == st.SUCCESS and not asked.changed
    assert asked.record is running
    assert [r.event_type for r in asked.reports] == [CANCEL_REQUESTED]
    assert asked.reports[0].information.RequestingAE == "PERFORMER"

    assert step("request_cancel", finished()).status == st.UPS_ALREADY_COMPLETED
    assert step("request_cancel", canceled()).status == st.UPS_ALREADY_CANCELED


def test_subscriptions_to_one_ups() -> None:
    record = scheduled()
    outcome = step("subscribe", record, subscription("WATCHER", lock=True))
    assert outcome.status == st.SUCCESS and outcome.subscription is not None
    assert outcome.subscription.ae_title == "WATCHER" and outcome.subscription.deletion_lock
    assert outcome.reports[0].receivers == ("WATCHER",)
    unknown = step("subscribe", record, subscription("STRANGER"))
    assert unknown.status == st.UPS_UNKNOWN_RECEIVING_AE
    assert unknown.comment == "Receiving AE 'STRANGER' is unknown to this SCP"
    gone = step("unsubscribe", record, subscription("WATCHER"))
    assert gone.status == st.SUCCESS and gone.subscription is not None
    assert not gone.subscription.add
    suspend = step("suspend", record, subscription("WATCHER"))
    assert suspend.status == st.UPS_ACTION_NOT_APPROPRIATE


@pytest.mark.parametrize("record", [None, "scheduled"], ids=["absent", "scheduled"])
def test_unknown_action_type(record: str | None) -> None:
    stored = scheduled() if record else None
    outcome = step(action_trigger(99), stored, Dataset(), action_type=99)
    assert outcome.status == st.NO_SUCH_ACTION
    assert outcome.comment == "no such Action Type ID: 99"
    assert outcome.record is stored and not outcome.changed


STORED = {
    "scheduled": scheduled,
    "in-progress": in_progress,
    "completed": finished,
    "canceled": canceled,
}


@pytest.mark.parametrize("state", sorted(STORED))
def test_what_every_stored_state_answers_alike(state: str) -> None:
    record = STORED[state]()
    answers = {
        "duplicate": step("n_create", record, ups_create()).status,
        "get": step("n_get", record).status,
        "no-uid": step("change_state", record, change_state("COMPLETED", None)).status,
        "to-scheduled": step("change_state", record, change_state("SCHEDULED", LOCK)).status,
        "unknown-ae": step("subscribe", record, subscription("NOBODY")).status,
        "subscribe": step("subscribe", record, subscription("WATCHER")).status,
        "unsubscribe": step("unsubscribe", record, subscription("WATCHER")).status,
        "suspend": step("suspend", record, subscription("WATCHER")).status,
        "action-9": step("other_action", record, None, action_type=9).status,
    }
    assert answers == {
        "duplicate": st.DUPLICATE_SOP_INSTANCE,
        "get": st.SUCCESS,
        "no-uid": st.INVALID_ARGUMENT_VALUE,
        "to-scheduled": st.UPS_SCHEDULED_ONLY_BY_CREATE,
        "unknown-ae": st.UPS_UNKNOWN_RECEIVING_AE,
        "subscribe": st.SUCCESS,
        "unsubscribe": st.SUCCESS,
        "suspend": st.UPS_ACTION_NOT_APPROPRIATE,
        "action-9": st.NO_SUCH_ACTION,
    }


@pytest.mark.parametrize("subscribed", [False, True], ids=["unsubscribed", "subscribed"])
def test_global_answers_alike_in_both_states(subscribed: bool) -> None:
    def run(trigger: str, attributes: Dataset | None, action_type: int | None = None) -> int:
        global_step = GlobalStep(
            subscribed, attributes, known_ae=KNOWN.__contains__, action_type=action_type
        )
        return global_step.run(trigger).status

    assert run("subscribe", subscription("WATCHER")) == st.SUCCESS
    assert run("subscribe", subscription("")) == st.UPS_UNKNOWN_RECEIVING_AE
    assert run("unsubscribe", subscription("WATCHER")) == st.SUCCESS
    assert run("suspend", subscription("WATCHER")) == st.SUCCESS
    assert run("change_state", None, 1) == st.UPS_ACTION_NOT_APPROPRIATE
    assert run("other_action", None, 6) == st.NO_SUCH_ACTION


def test_global_subscription_chart() -> None:
    known = KNOWN.__contains__
    sub = GlobalStep(False, subscription("WATCHER", True), known_ae=known).run("subscribe")
    assert (sub.status, sub.effect, sub.state) == (st.SUCCESS, "subscribe", "Subscribed")
    assert sub.deletion_lock
    bad = GlobalStep(True, subscription("NOBODY"), known_ae=known).run("subscribe")
    assert bad.status == st.UPS_UNKNOWN_RECEIVING_AE and bad.effect is None
    off = GlobalStep(True, subscription("WATCHER"), known_ae=known).run("unsubscribe")
    assert (off.status, off.effect, off.state) == (st.SUCCESS, "unsubscribe", "Unsubscribed")
    held = GlobalStep(True, subscription("WATCHER"), known_ae=known).run("suspend")
    assert (held.status, held.effect) == (st.SUCCESS, "suspend")
    claim = GlobalStep(False, None, known_ae=known).run(global_trigger(1))
    assert claim.status == st.UPS_ACTION_NOT_APPROPRIATE
    assert global_trigger(2) == "change_state"
    other = GlobalStep(False, None, known_ae=known, action_type=7).run(global_trigger(7))
    assert other.status == st.NO_SUCH_ACTION and other.comment == "no such Action Type ID: 7"


def test_both_charts_fully_covered() -> None:
    """Every edge fires from the step's own callbacks (the coverage gate's source)."""
    with RECORDER.during() as run:
        assert run_module_scenarios(sys.modules[__name__], {}) > 30
    for chart in (UPS_CHART, GLOBAL_CHART):
        missing = set(chart.declared_edges()) - run.fired(chart.name)
        assert missing == set(), f"{chart.name}: {sorted(missing)}"
