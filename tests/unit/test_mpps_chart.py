"""The MPPS state model (PS3.3 C.4.14) and the attribute rules of PS3.4 F.7.2, in memory.

Every transition of the ``mpps`` chart is fired here by the model's own
inputs: the guards read the rules, so each test names the rule it proves.
"""

from __future__ import annotations

import copy
import sys

import pytest
from pydicom import Dataset
from pydicom.tag import Tag

from dimsefsm import status as st
from dimsefsm.fsm import RECORDER
from dimsefsm.services import mpps_rules as rules
from dimsefsm.services.mpps import (
    ABSENT,
    CHART,
    COMPLETED,
    DISCONTINUED,
    IN_PROGRESS,
    ProcedureStep,
    short_comment,
)
from tests.scenarios import run_module_scenarios
from tests.unit.mpps_data import create_attributes, final_attributes

UID = "1.2.826.0.1.3680043.10.1.1"


def created() -> ProcedureStep:
    step = ProcedureStep(UID)
    outcome = step.receive_create(create_attributes())
    assert outcome.status == st.SUCCESS
    return step


def test_create_makes_the_step_in_progress() -> None:
    step = ProcedureStep(UID)
    outcome = step.receive_create(create_attributes())
    assert (outcome.status, outcome.changed, step.state) == (st.SUCCESS, True, IN_PROGRESS)
    assert outcome.attributes is not None
    assert outcome.attributes.SOPInstanceUID == UID
    assert outcome.attributes.SOPClassUID == "1.2.840.10008.3.1.2.3.3"


@pytest.mark.parametrize(
    "keyword", ["PerformedStationAETitle", "Modality", "PerformedProcedureStepStartDate"]
)
def test_create_without_a_type_1_attribute_is_0x0120(keyword: str) -> None:
    attributes = create_attributes()
    delattr(attributes, keyword)
    step = ProcedureStep(UID)
    outcome = step.receive_create(attributes)
    assert outcome.status == st.MISSING_ATTRIBUTE
    assert outcome.tags == (Tag(keyword),)
    assert outcome.comment is not None and keyword in outcome.comment
    assert (step.state, outcome.changed, step.attributes) == (ABSENT, False, None)


def test_create_with_an_empty_type_1_attribute_is_0x0121() -> None:
    attributes = create_attributes()
    attributes.PerformedProcedureStepID = ""
    outcome = ProcedureStep(UID).receive_create(attributes)
    assert outcome.status == st.MISSING_ATTRIBUTE_VALUE
    assert outcome.tags == (Tag("PerformedProcedureStepID"),)


def test_create_without_the_study_uid_in_the_scheduled_step_names_the_sequence() -> None:
    attributes = create_attributes()
    del attributes.ScheduledStepAttributesSequence[0].StudyInstanceUID
    outcome = ProcedureStep(UID).receive_create(attributes)
    assert outcome.status == st.MISSING_ATTRIBUTE
    assert outcome.tags == (Tag("ScheduledStepAttributesSequence"),)
    assert outcome.comment is not None
    assert "ScheduledStepAttributesSequence[0].StudyInstanceUID" in outcome.comment


def test_create_with_another_status_is_0x0106() -> None:
    attributes = create_attributes()
    attributes.PerformedProcedureStepStatus = "COMPLETED"
    step = ProcedureStep(UID)
    outcome = step.receive_create(attributes)
    assert outcome.status == st.INVALID_ATTRIBUTE_VALUE
    assert outcome.tags == (Tag("PerformedProcedureStepStatus"),)
    assert step.state == ABSENT


@pytest.mark.parametrize("end", [None, "COMPLETED", "DISCONTINUED"])
def test_create_of_an_existing_uid_is_0x0111(end: str | None) -> None:
    step = created()
    if end is not None:
        assert step.receive_set(final_attributes(end)).status == st.SUCCESS
    before = copy.deepcopy(step.attributes)
    outcome = step.receive_create(create_attributes())
    assert outcome.status == st.DUPLICATE_SOP_INSTANCE
    assert outcome.comment == "an MPPS of this SOP Instance UID already exists"
    assert (outcome.changed, step.attributes) == (False, before)


def test_set_of_an_unknown_uid_is_0x0112() -> None:
    outcome = ProcedureStep(UID).receive_set(final_attributes())
    assert (outcome.status, outcome.changed) == (st.NO_SUCH_SOP_INSTANCE, False)


def test_set_keeps_the_step_in_progress_and_merges() -> None:
    step = created()
    modification = Dataset()
    modification.PerformedProcedureStepDescription = "CT head, contrast"
    outcome = step.receive_set(modification)
    assert (outcome.status, outcome.changed, step.state) == (st.SUCCESS, True, IN_PROGRESS)
    assert step.attributes is not None
    assert step.attributes.PerformedProcedureStepDescription == "CT head, contrast"
    assert step.attributes.PatientID == "P1"


def test_set_completed_ends_the_step() -> None:
    step = created()
    outcome = step.receive_set(final_attributes("COMPLETED"))
    assert (outcome.status, step.state) == (st.SUCCESS, COMPLETED)
    assert step.attributes is not None
    assert step.attributes.PerformedProcedureStepStatus == "COMPLETED"
    assert len(step.attributes.PerformedSeriesSequence) == 1
    got = step.receive_get([Tag("PerformedProcedureStepStatus")]).attributes
    assert got is not None and got.PerformedProcedureStepStatus == "COMPLETED"


def test_set_discontinued_ends_the_step() -> None:
    step = created()
    outcome = step.receive_set(final_attributes("DISCONTINUED"))
    assert (outcome.status, step.state) == (st.SUCCESS, DISCONTINUED)
    got = step.receive_get([Tag("PerformedProcedureStepStatus")]).attributes
    assert got is not None and got.PerformedProcedureStepStatus == "DISCONTINUED"


@pytest.mark.parametrize("end", ["COMPLETED", "DISCONTINUED"])
def test_set_after_the_end_is_0x0110_with_the_reason(end: str) -> None:
    step = created()
    step.receive_set(final_attributes(end))
    before = copy.deepcopy(step.attributes)
    modification = Dataset()
    modification.PerformedProcedureStepDescription = "too late"
    outcome = step.receive_set(modification)
    assert outcome.status == st.PROCESSING_FAILURE
    assert outcome.error_id == 0xA710
    assert outcome.detail == f"it is {end}"
    assert outcome.comment == "Performed Procedure Step Object may no longer be updated"
    assert (outcome.changed, step.attributes, step.state) == (False, before, step.state)


def test_set_of_a_not_allowed_attribute_is_0x0105_and_changes_nothing() -> None:
    step = created()
    before = copy.deepcopy(step.attributes)
    modification = final_attributes()
    modification.PatientID = "OTHER"
    outcome = step.receive_set(modification)
    assert outcome.status == st.NO_SUCH_ATTRIBUTE
    assert outcome.tags == (Tag("PatientID"),)
    assert (outcome.changed, step.attributes, step.state) == (False, before, IN_PROGRESS)


def test_set_of_an_unknown_status_is_0x0106() -> None:
    step = created()
    modification = Dataset()
    modification.PerformedProcedureStepStatus = "SCHEDULED"
    outcome = step.receive_set(modification)
    assert outcome.status == st.INVALID_ATTRIBUTE_VALUE
    assert outcome.tags == (Tag("PerformedProcedureStepStatus"),)
    assert step.state == IN_PROGRESS


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        ("PerformedProcedureStepEndDate", "PerformedProcedureStepEndDate"),
        ("PerformedSeriesSequence", "PerformedSeriesSequence"),
    ],
)
def test_completing_without_the_final_state_is_0x0110(drop: str, named: str) -> None:
    step = created()
    before = copy.deepcopy(step.attributes)
    modification = final_attributes()
    delattr(modification, drop)  # the record has it empty (Type 2 at N-CREATE)
    outcome = step.receive_set(modification)
    assert outcome.status == st.PROCESSING_FAILURE
    assert outcome.comment is not None and named in outcome.comment
    assert outcome.tags == ()
    assert (outcome.changed, step.attributes, step.state) == (False, before, IN_PROGRESS)


def test_completing_with_a_series_item_without_its_uid_is_0x0110() -> None:
    step = created()
    modification = final_attributes()
    del modification.PerformedSeriesSequence[0].SeriesInstanceUID
    outcome = step.receive_set(modification)
    assert outcome.status == st.PROCESSING_FAILURE
    assert outcome.comment is not None
    assert "PerformedSeriesSequence[0].SeriesInstanceUID" in outcome.comment


def test_get_returns_what_is_asked_for() -> None:
    step = created()
    outcome = step.receive_get([Tag("PerformedProcedureStepStatus"), Tag("PatientID")])
    assert outcome.status == st.SUCCESS
    assert outcome.attributes is not None
    assert [e.keyword for e in outcome.attributes] == ["PatientID", "PerformedProcedureStepStatus"]
    everything = step.receive_get([]).attributes
    assert everything is not None and "Modality" in everything


def test_get_of_an_unknown_uid_is_0x0112() -> None:
    assert ProcedureStep(UID).receive_get([]).status == st.NO_SUCH_SOP_INSTANCE


def test_a_step_restored_from_its_record_is_in_its_state() -> None:
    attributes = create_attributes()
    attributes.PerformedProcedureStepStatus = "COMPLETED"
    assert ProcedureStep(UID, attributes).state == COMPLETED


def test_status_dataset_carries_the_comment_the_id_and_the_tags() -> None:
    attributes = create_attributes()
    del attributes.Modality
    status = ProcedureStep(UID).receive_create(attributes).status_dataset()
    assert status.Status == st.MISSING_ATTRIBUTE
    assert status.AttributeIdentifierList == Tag("Modality")
    assert "Modality" in status.ErrorComment
    assert len(short_comment("x" * 100)) == 64


def test_set_with_another_character_set_keeps_both_texts() -> None:
    step = created()
    assert step.attributes is not None
    step.attributes.SpecificCharacterSet = "ISO_IR 100"
    step.attributes.PerformedProcedureStepDescription = "Schädel"
    modification = Dataset()
    modification.SpecificCharacterSet = "ISO_IR 192"
    modification.CommentsOnThePerformedProcedureStep = "Ω"
    assert step.receive_set(modification).status == st.SUCCESS
    assert step.attributes.SpecificCharacterSet == "ISO_IR 192"
    assert step.attributes.PerformedProcedureStepDescription == "Schädel"
    assert step.attributes.CommentsOnThePerformedProcedureStep == "Ω"


def test_rules_name_unknown_tags() -> None:
    assert rules.name(0x00091001) == "(0009,1001)"


def test_the_chart_is_fully_covered() -> None:
    """Order-free: every scenario of this module runs again inside one coverage window."""
    with RECORDER.during() as run:
        calls = run_module_scenarios(
            sys.modules[__name__], {}, skip=("test_the_chart_is_fully_covered",)
        )
    assert calls > 20
    missing = set(CHART.declared_edges()) - run.fired(CHART.name)
    assert missing == set(), f"mpps missing {sorted(missing)}"
