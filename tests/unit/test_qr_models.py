"""Q/R information models: levels and keys, 0xA900 identifier checks, response identifiers."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dimsefsm import status
from dimsefsm.datasets import EXPLICIT_VR_LITTLE_ENDIAN, decode_dataset, encode_dataset
from dimsefsm.qr import registry
from dimsefsm.qr.models import (
    MAX_COMMENT,
    MODELS,
    IdentifierProblem,
    check_identifier,
    check_request,
    response_identifier,
)

A900 = status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
QR_LEVEL = 0x00080052
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
MODALITY = 0x00080060
STUDY_DATE = 0x00080020


def ident(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


# -- levels and keys -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "levels"),
    [
        ("patient-root", ("PATIENT", "STUDY", "SERIES", "IMAGE")),
        ("study-root", ("STUDY", "SERIES", "IMAGE")),
        ("patient-study-only", ("PATIENT", "STUDY")),
        ("composite-instance-root", ("IMAGE", "FRAME")),
        ("composite-instance-no-bulk", ("IMAGE",)),
    ],
)
def test_levels_of_each_model(model: str, levels: tuple[str, ...]) -> None:
    assert MODELS[model].level_names == levels


@pytest.mark.parametrize(
    ("model", "uniques"),
    [
        ("patient-root", (PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID)),
        ("study-root", (STUDY_UID, SERIES_UID, SOP_UID)),
        ("patient-study-only", (PATIENT_ID, STUDY_UID)),
        ("composite-instance-root", (SOP_UID, None)),
        ("composite-instance-no-bulk", (SOP_UID,)),
    ],
)
def test_unique_key_of_each_level(model: str, uniques: tuple[int | None, ...]) -> None:
    assert tuple(level.unique for level in MODELS[model].levels) == uniques


def test_required_keys_follow_the_reference_table() -> None:
    patient_root = MODELS["patient-root"]
    assert patient_root.levels[0].required == (PATIENT_NAME,)
    assert set(patient_root.levels[1].required) == {
        STUDY_DATE,
        0x00080030,  # Study Time
        0x00080050,  # Accession Number
        0x00200010,  # Study ID
    }
    assert set(patient_root.levels[2].required) == {MODALITY, 0x00200011}
    assert patient_root.levels[3].required == (0x00200013,)


def test_study_root_puts_patient_keys_at_study_level() -> None:
    study_root = MODELS["study-root"]
    assert {PATIENT_NAME, PATIENT_ID} <= set(study_root.levels[0].required)
    assert study_root.level_of(PATIENT_NAME) == 0
    assert study_root.level_of(0x00100030) == 0  # Patient's Birth Date (optional)
    assert MODELS["patient-root"].level_of(PATIENT_NAME) == 0
    assert MODELS["patient-root"].level_of(STUDY_DATE) == 1


def test_model_helpers() -> None:
    model = MODELS["patient-root"]
    assert model.index("SERIES") == 2
    assert model.index("FRAME") is None
    assert model.level("FRAME") is None
    assert model.keys_at("FRAME") == frozenset()
    assert SERIES_UID in model.keys_at("SERIES")
    assert MODALITY in model.keys_at("SERIES")
    assert model.unique_keys_down_to("SERIES") == (PATIENT_ID, STUDY_UID, SERIES_UID)
    assert model.unique_keys_down_to("FRAME") == ()
    assert model.level_of(0x00091010) is None
    frame = MODELS["composite-instance-root"].levels[1]
    assert frame.one_of == (0x00081161, 0x00081162, 0x00081163)
    assert frame.keys == frozenset(frame.one_of)


# -- Query/Retrieve Level --------------------------------------------------------------------
@pytest.mark.parametrize("service", ["find", "get", "move"])
def test_missing_level_is_a900(service: str) -> None:
    problem = check_identifier("study-root", ident(StudyInstanceUID="1.2"), service)
    assert problem == IdentifierProblem(
        A900, "Query/Retrieve Level (0008,0052) is missing", (QR_LEVEL,)
    )


def test_empty_level_is_a900() -> None:
    problem = check_identifier("patient-root", ident(QueryRetrieveLevel=""), "find")
    assert problem is not None
    assert problem.comment == "Query/Retrieve Level (0008,0052) is missing"


def test_multi_valued_level_is_a900() -> None:
    problem = check_identifier(
        "patient-root", ident(QueryRetrieveLevel=["STUDY", "SERIES"]), "find"
    )
    assert problem == IdentifierProblem(
        A900, "Query/Retrieve Level (0008,0052) must have one value", (QR_LEVEL,)
    )


@pytest.mark.parametrize(
    ("model", "level", "comment"),
    [
        ("patient-study-only", "SERIES", "Level 'SERIES' is not one of PATIENT/STUDY"),
        ("study-root", "PATIENT", "Level 'PATIENT' is not one of STUDY/SERIES/IMAGE"),
        ("patient-root", "FRAME", "Level 'FRAME' is not one of PATIENT/STUDY/SERIES/IMAGE"),
        ("composite-instance-no-bulk", "SERIES", "Level 'SERIES' is not one of IMAGE"),
        (
            "patient-root",
            "WHATEVER_LONG_LEVEL",
            "Level 'WHATEVER_LON~' is not one of PATIENT/STUDY/SERIES/IMAGE",
        ),
    ],
)
def test_level_the_model_does_not_have_is_a900(model: str, level: str, comment: str) -> None:
    problem = check_identifier(model, ident(QueryRetrieveLevel=level), "find")
    assert problem == IdentifierProblem(A900, comment, (QR_LEVEL,))
    assert len(problem.comment) <= MAX_COMMENT


def test_level_is_read_case_insensitively_and_trimmed() -> None:
    assert check_identifier("study-root", ident(QueryRetrieveLevel="study "), "find") is None


# -- C-FIND key rules ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "identifier"),
    [
        ("patient-root", ident(QueryRetrieveLevel="PATIENT", PatientID="", PatientName="A*")),
        (
            "patient-root",
            ident(QueryRetrieveLevel="STUDY", PatientID="123", StudyDate="20200101", StudyID=""),
        ),
        (
            "patient-root",
            ident(
                QueryRetrieveLevel="IMAGE",
                PatientID="1",
                StudyInstanceUID="1.2",
                SeriesInstanceUID="1.2.3",
                InstanceNumber="",
            ),
        ),
        ("study-root", ident(QueryRetrieveLevel="STUDY", PatientName="DOE*", PatientID="")),
        (
            "study-root",
            ident(QueryRetrieveLevel="SERIES", StudyInstanceUID="1.2", Modality="CT"),
        ),
        ("patient-study-only", ident(QueryRetrieveLevel="STUDY", PatientID="7", StudyDate="")),
    ],
)
def test_valid_hierarchical_queries_pass(model: str, identifier: Dataset) -> None:
    assert check_identifier(model, identifier, "find") is None


def test_non_unique_key_above_the_level_is_a900_with_the_offending_tag() -> None:
    identifier = ident(QueryRetrieveLevel="STUDY", PatientName="DOE", StudyDate="")
    problem = check_identifier("patient-root", identifier, "find")
    assert problem == IdentifierProblem(
        A900, "Non-unique key above STUDY level: (0010,0010)", (PATIENT_NAME,)
    )


def test_several_non_unique_keys_above_the_level_are_all_reported() -> None:
    identifier = ident(
        QueryRetrieveLevel="SERIES",
        PatientName="DOE",
        StudyInstanceUID="1.2",
        StudyDate="20200101",
        Modality="",
    )
    problem = check_identifier("patient-root", identifier, "find")
    assert problem is not None
    assert problem.status == A900
    assert problem.offending == (STUDY_DATE, PATIENT_NAME)
    assert problem.comment == "Non-unique keys above SERIES level: (0008,0020), (0010,0010)"


@pytest.mark.parametrize("level", ["SERIES", "IMAGE"])
@pytest.mark.parametrize("model", ["study-root", "patient-root"])
def test_zero_length_keys_above_the_level_are_return_keys(model: str, level: str) -> None:
    """Orthanc's SERIES/IMAGE queries: empty PatientID and AccessionNumber ask for values."""
    identifier = ident(
        QueryRetrieveLevel=level,
        PatientID="",
        AccessionNumber="",
        PatientName=None,
        StudyInstanceUID="1.2",
        SeriesInstanceUID="1.2.3" if level == "IMAGE" else "",
        OtherPatientIDsSequence=[],
    )
    assert check_identifier(model, identifier, "find") is None


def test_a_valued_key_beside_zero_length_ones_above_the_level_is_still_a900() -> None:
    identifier = ident(
        QueryRetrieveLevel="SERIES", PatientID="", AccessionNumber="A1", StudyInstanceUID="1.2"
    )
    problem = check_identifier("study-root", identifier, "find")
    assert problem == IdentifierProblem(
        A900, "Non-unique key above SERIES level: (0008,0050)", (0x00080050,)
    )


def test_a_sequence_key_above_the_level_with_a_value_is_a900() -> None:
    item = ident(PatientID="other")
    identifier = ident(
        QueryRetrieveLevel="SERIES", OtherPatientIDsSequence=[item], StudyInstanceUID="1.2"
    )
    problem = check_identifier("study-root", identifier, "find")
    assert problem is not None and problem.offending == (0x00101002,)


def test_study_root_patient_keys_are_above_a_series_query() -> None:
    identifier = ident(QueryRetrieveLevel="SERIES", PatientID="1", StudyInstanceUID="1.2")
    problem = check_identifier("study-root", identifier, "find")
    assert problem is not None
    assert problem.offending == (PATIENT_ID,)


def test_long_offending_lists_keep_the_comment_within_lo() -> None:
    identifier = ident(
        QueryRetrieveLevel="IMAGE",
        PatientName="A",
        PatientBirthDate="19700101",
        PatientSex="F",
        StudyDate="20200101",
        StudyTime="1015",
        Modality="CT",
    )
    problem = check_identifier("patient-root", identifier, "find")
    assert problem is not None
    assert len(problem.offending) == 6
    assert len(problem.comment) == MAX_COMMENT
    assert problem.comment.endswith("...")


def test_relational_queries_accept_keys_above_the_level() -> None:
    identifier = ident(QueryRetrieveLevel="SERIES", PatientName="DOE*", Modality="MR")
    assert check_identifier("patient-root", identifier, "find", relational=True) is None


def test_keys_below_the_level_are_accepted_unless_strict() -> None:
    identifier = ident(QueryRetrieveLevel="STUDY", StudyDate="", Modality="CT")
    assert check_identifier("study-root", identifier, "find") is None
    problem = check_identifier("study-root", identifier, "find", strict=True)
    assert problem == IdentifierProblem(
        A900, "Baseline query forbids key below STUDY level: (0008,0060)", (MODALITY,)
    )


def test_strict_find_needs_single_unique_keys_above_the_level() -> None:
    identifier = ident(QueryRetrieveLevel="SERIES", Modality="CT")
    assert check_identifier("study-root", identifier, "find") is None
    problem = check_identifier("study-root", identifier, "find", strict=True)
    assert problem == IdentifierProblem(
        A900, "Unique key (0020,000D) of STUDY level is missing", (STUDY_UID,)
    )
    identifier.StudyInstanceUID = ["1.2", "1.3"]
    problem = check_identifier("study-root", identifier, "find", strict=True)
    assert problem is not None
    assert problem.comment == "Unique key (0020,000D) of STUDY level needs one value"
    assert check_identifier("study-root", identifier, "find", strict=True, relational=True) is None


def test_private_unknown_and_control_keys_are_not_level_checked() -> None:
    identifier = ident(
        QueryRetrieveLevel="STUDY",
        SpecificCharacterSet="ISO_IR 100",
        RetrieveAETitle="",
        TimezoneOffsetFromUTC="+0100",
        StudyInstanceUID="",
    )
    identifier.add_new(0x00091010, "LO", "private")
    identifier.add_new(0x00181020, "LO", "")  # Software Versions: not in the model's tables
    assert check_identifier("study-root", identifier, "find", strict=True) is None


# -- C-GET / C-MOVE key rules ----------------------------------------------------------------
@pytest.mark.parametrize("service", ["get", "move"])
@pytest.mark.parametrize(
    ("model", "identifier"),
    [
        ("patient-root", ident(QueryRetrieveLevel="PATIENT", PatientID="1")),
        (
            "patient-root",
            ident(QueryRetrieveLevel="STUDY", PatientID="1", StudyInstanceUID=["1.2", "1.3"]),
        ),
        ("study-root", ident(QueryRetrieveLevel="STUDY", StudyInstanceUID="1.2")),
        (
            "study-root",
            ident(
                QueryRetrieveLevel="IMAGE",
                StudyInstanceUID="1.2",
                SeriesInstanceUID="1.2.3",
                SOPInstanceUID=["1.2.3.4", "1.2.3.5"],
            ),
        ),
        (
            "patient-study-only",
            ident(QueryRetrieveLevel="STUDY", PatientID="9", StudyInstanceUID="1"),
        ),
        ("composite-instance-root", ident(QueryRetrieveLevel="IMAGE", SOPInstanceUID=["1", "2"])),
        (
            "composite-instance-root",
            ident(QueryRetrieveLevel="FRAME", SOPInstanceUID="1", SimpleFrameList=[1, 3]),
        ),
    ],
)
def test_valid_retrieves_pass(service: str, model: str, identifier: Dataset) -> None:
    assert check_identifier(model, identifier, service) is None


@pytest.mark.parametrize("service", ["get", "move"])
def test_retrieve_needs_the_unique_keys_of_every_level_above(service: str) -> None:
    identifier = ident(QueryRetrieveLevel="SERIES", PatientID="1", SeriesInstanceUID="1.2.3")
    problem = check_identifier("patient-root", identifier, service)
    assert problem == IdentifierProblem(
        A900, "Unique key (0020,000D) of STUDY level is missing", (STUDY_UID,)
    )


def test_retrieve_needs_the_unique_key_of_its_own_level() -> None:
    identifier = ident(QueryRetrieveLevel="SERIES", StudyInstanceUID="1.2", SeriesInstanceUID="")
    problem = check_identifier("study-root", identifier, "move")
    assert problem == IdentifierProblem(
        A900, "Unique key (0020,000E) of SERIES level is missing", (SERIES_UID,)
    )
    problem = check_identifier("study-root", identifier, "move", relational=True)
    assert problem is not None
    assert problem.offending == (SERIES_UID,)


def test_retrieve_above_the_level_needs_single_values() -> None:
    identifier = ident(
        QueryRetrieveLevel="SERIES", StudyInstanceUID=["1.2", "1.3"], SeriesInstanceUID="1.2.3"
    )
    problem = check_identifier("study-root", identifier, "get")
    assert problem == IdentifierProblem(
        A900, "Unique key (0020,000D) of STUDY level needs one value", (STUDY_UID,)
    )


def test_patient_level_retrieve_takes_one_patient_id_without_wild_cards() -> None:
    several = ident(QueryRetrieveLevel="PATIENT", PatientID=["1", "2"])
    problem = check_identifier("patient-root", several, "move")
    assert problem is not None
    assert problem.comment == "Unique key (0010,0020) of PATIENT level needs one value"
    wild = ident(QueryRetrieveLevel="PATIENT", PatientID="12*")
    problem = check_identifier("patient-root", wild, "move")
    assert problem == IdentifierProblem(
        A900, "Unique key (0010,0020) of PATIENT level has a wild card", (PATIENT_ID,)
    )


def test_relational_retrieve_drops_the_keys_above() -> None:
    identifier = ident(QueryRetrieveLevel="SERIES", SeriesInstanceUID="1.2.3")
    assert check_identifier("patient-root", identifier, "get", relational=True) is None
    assert check_identifier("patient-root", identifier, "get") is not None


def test_retrieve_extra_keys_are_ignored_unless_strict() -> None:
    identifier = ident(
        QueryRetrieveLevel="STUDY", StudyInstanceUID="1.2", PatientName="DOE", StudyDate=""
    )
    assert check_identifier("study-root", identifier, "move") is None
    problem = check_identifier("study-root", identifier, "move", strict=True)
    assert problem == IdentifierProblem(
        A900,
        "Retrieve takes unique keys only: (0008,0020), (0010,0010)",
        (STUDY_DATE, PATIENT_NAME),
    )


def test_frame_level_needs_exactly_one_frame_range_key() -> None:
    none = ident(QueryRetrieveLevel="FRAME", SOPInstanceUID="1.2")
    problem = check_identifier("composite-instance-root", none, "get")
    assert problem == IdentifierProblem(
        A900,
        "FRAME level needs one of (0008,1161), (0008,1162), (0008,1163)",
        (0x00081161, 0x00081162, 0x00081163),
    )
    two = ident(QueryRetrieveLevel="FRAME", SOPInstanceUID="1.2", SimpleFrameList=[1])
    two.TimeRange = [0.0, 1.5]
    problem = check_identifier("composite-instance-root", two, "move")
    assert problem is not None
    assert problem.offending == (0x00081161, 0x00081163)


def test_frame_level_takes_one_sop_instance() -> None:
    identifier = ident(
        QueryRetrieveLevel="FRAME", SOPInstanceUID=["1.2", "1.3"], CalculatedFrameList=[1, 9, 2]
    )
    problem = check_identifier("composite-instance-root", identifier, "get")
    assert problem is not None
    assert problem.offending == (SOP_UID,)


# -- models without levels -------------------------------------------------------------------
@pytest.mark.parametrize(
    "model",
    [
        "modality-worklist",
        "hanging-protocol",
        "relevant-patient-information",
        "substance-administration",
        "repository-query",
    ],
)
def test_flat_models_have_no_level_check_for_find(model: str) -> None:
    identifier = ident(PatientName="DOE*", ScheduledProcedureStepSequence=[])
    assert check_identifier(model, identifier, "find", strict=True) is None


@pytest.mark.parametrize(
    "model",
    [
        "hanging-protocol",
        "color-palette",
        "defined-procedure-protocol",
        "generic-implant-template",
        "implant-assembly-template",
        "implant-template-group",
        "protocol-approval",
        "inventory",
    ],
)
def test_flat_retrieve_needs_sop_instance_uids(model: str) -> None:
    assert check_identifier(model, ident(SOPInstanceUID=["1.2", "1.3"]), "move") is None
    problem = check_identifier(model, ident(PatientID="1"), "get")
    assert problem == IdentifierProblem(A900, "SOP Instance UID (0008,0018) is missing", (SOP_UID,))


def test_flat_retrieve_with_a_level_is_refused_only_when_strict() -> None:
    identifier = ident(QueryRetrieveLevel="IMAGE", SOPInstanceUID="1.2")
    assert check_identifier("inventory", identifier, "get") is None
    problem = check_identifier("inventory", identifier, "get", strict=True)
    assert problem == IdentifierProblem(
        A900, "Query/Retrieve Level (0008,0052) must not be present", (QR_LEVEL,)
    )


def _code(value: str) -> Dataset:
    return ident(CodeValue=value, CodingSchemeDesignator="DCM")


def test_flat_find_refuses_a_sequence_key_of_two_items() -> None:
    """Sequence matching takes one item (PS3.4 C.2.2.2.6): two are refused, not guessed at."""
    user = 0x0072000E
    identifier = ident(
        HangingProtocolName="*",
        HangingProtocolUserIdentificationCodeSequence=[_code("A"), _code("B")],
    )
    problem = check_identifier("hanging-protocol", identifier, "find")
    assert problem == IdentifierProblem(
        A900, "Sequence key must have one item: (0072,000E)", (user,)
    )
    one = ident(HangingProtocolUserIdentificationCodeSequence=[_code("A")])
    assert check_identifier("hanging-protocol", one, "find") is None


def test_flat_find_with_a_level_is_refused_only_when_strict() -> None:
    identifier = ident(QueryRetrieveLevel="IMAGE", ContentLabel="HOT*")
    assert check_identifier("color-palette", identifier, "find") is None
    problem = check_identifier("color-palette", identifier, "find", strict=True)
    assert problem is not None and problem.offending == (QR_LEVEL,)


def test_flat_retrieve_refuses_a_wild_card_uid() -> None:
    problem = check_identifier("implant-template-group", ident(SOPInstanceUID="1.2.*"), "get")
    assert problem == IdentifierProblem(
        A900, "SOP Instance UID (0008,0018) has a wild card", (SOP_UID,)
    )


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="service"):
        check_identifier("study-root", Dataset(), "store")
    with pytest.raises(ValueError, match="unknown information model"):
        check_identifier("no-such-model", Dataset(), "find")
    with pytest.raises(ValueError, match="not a Query/Retrieve SOP class"):
        check_request("1.2.840.10008.1.1", Dataset())


def test_check_request_uses_the_sop_class_model_and_service() -> None:
    identifier = ident(QueryRetrieveLevel="SERIES", SeriesInstanceUID="1.2.3")
    assert check_request(registry.STUDY_ROOT_FIND, identifier) is None
    problem = check_request(registry.STUDY_ROOT_MOVE, identifier)
    assert problem is not None
    assert problem.offending == (STUDY_UID,)
    assert check_request(registry.STUDY_ROOT_MOVE, identifier, relational=True) is None
    assert check_request(registry.MODALITY_WORKLIST_FIND, Dataset()) is None


# -- C-FIND response identifiers -------------------------------------------------------------
def stored_instance() -> Dataset:
    ds = ident(
        SpecificCharacterSet="ISO_IR 100",
        PatientName="Müller^Hans",
        PatientID="P1",
        PatientBirthDate="19700101",
        StudyInstanceUID="1.2.3",
        StudyDate="20240101",
        StudyDescription="Chest",
        ModalitiesInStudy=["CT", "SR"],
        SeriesInstanceUID="1.2.3.4",
        SOPInstanceUID="1.2.3.4.5",
        RetrieveAETitle="ARCHIVE",
    )
    first = ident(CodeValue="T-D3000", CodingSchemeDesignator="SRT", CodeMeaning="Chest")
    second = ident(CodeValue="T-D4000", CodingSchemeDesignator="SRT", CodeMeaning="Abdomen")
    ds.ProcedureCodeSequence = Sequence([first, second])
    return ds


def test_response_holds_the_requested_keys_only_with_the_match_values() -> None:
    request = ident(
        QueryRetrieveLevel="STUDY",
        PatientName="M*",
        StudyInstanceUID="",
        StudyDate="2024-",
        AccessionNumber="",
        NumberOfStudyRelatedInstances="",
    )
    response = response_identifier(request, stored_instance(), retrieve_ae="QRSCP")
    assert set(response.keys()) == {
        0x00080005,
        0x00080020,
        0x00080050,
        0x00080052,
        0x00080054,
        0x00100010,
        0x0020000D,
        0x00201208,
    }
    assert response.QueryRetrieveLevel == "STUDY"
    assert str(response.PatientName) == "Müller^Hans"
    assert response.StudyInstanceUID == "1.2.3"
    assert response.StudyDate == "20240101"
    assert response.AccessionNumber == ""
    assert response["AccessionNumber"].VR == "SH"
    assert response["NumberOfStudyRelatedInstances"].value is None
    assert response.SpecificCharacterSet == "ISO_IR 100"
    assert response.RetrieveAETitle == "QRSCP"


def test_level_echo_can_be_turned_off_and_worklist_requests_have_none() -> None:
    request = ident(QueryRetrieveLevel="STUDY", StudyInstanceUID="")
    response = response_identifier(request, stored_instance(), level_echo=False)
    assert "QueryRetrieveLevel" not in response
    worklist = response_identifier(ident(PatientID=""), stored_instance())
    assert set(worklist.keys()) == {0x00080005, PATIENT_ID}


def test_character_set_comes_from_the_match_not_the_request() -> None:
    request = ident(SpecificCharacterSet="ISO_IR 192", PatientID="")
    plain = ident(PatientID="P1")
    assert "SpecificCharacterSet" not in response_identifier(request, plain)
    response = response_identifier(request, stored_instance())
    assert response.SpecificCharacterSet == "ISO_IR 100"


def test_retrieve_ae_title_from_the_match_when_none_is_given() -> None:
    request = ident(QueryRetrieveLevel="STUDY", RetrieveAETitle="")
    assert response_identifier(request, stored_instance()).RetrieveAETitle == "ARCHIVE"
    assert response_identifier(request, ident(PatientID="1")).RetrieveAETitle == ""
    assert "RetrieveAETitle" not in response_identifier(ident(PatientID=""), ident(PatientID="1"))


def test_multi_valued_answers_are_copied_not_aliased() -> None:
    match = stored_instance()
    response = response_identifier(ident(ModalitiesInStudy=""), match)
    assert list(response.ModalitiesInStudy) == ["CT", "SR"]
    response.ModalitiesInStudy.append("MR")
    assert list(match.ModalitiesInStudy) == ["CT", "SR"]


def test_universal_sequence_key_returns_every_item() -> None:
    for request_value in (Sequence([]), Sequence([Dataset()])):
        request = Dataset()
        request.ProcedureCodeSequence = request_value
        response = response_identifier(request, stored_instance())
        items = response.ProcedureCodeSequence
        assert [item.CodeValue for item in items] == ["T-D3000", "T-D4000"]
        assert items[0].CodeMeaning == "Chest"


def test_response_items_do_not_alias_the_match() -> None:
    match = stored_instance()
    request = Dataset()
    request.ProcedureCodeSequence = Sequence([])
    response = response_identifier(request, match)
    response.ProcedureCodeSequence[0].CodeValue = "CHANGED"
    response.ProcedureCodeSequence[0].CodeMeaning = "X"
    del response.ProcedureCodeSequence[0].CodingSchemeDesignator
    assert match.ProcedureCodeSequence[0].CodingSchemeDesignator == "SRT"


def test_sequence_items_carry_only_the_requested_item_keys() -> None:
    request = Dataset()
    request.ProcedureCodeSequence = Sequence([ident(CodeValue="", CodeMeaning="")])
    response = response_identifier(request, stored_instance())
    items = response.ProcedureCodeSequence
    assert len(items) == 2
    assert set(items[0].keys()) == {0x00080100, 0x00080104}
    assert items[1].CodeMeaning == "Abdomen"


def test_sequence_items_are_the_matching_ones_when_any_match() -> None:
    request = Dataset()
    request.ProcedureCodeSequence = Sequence([ident(CodeValue="T-D4*", CodeMeaning="")])
    items = response_identifier(request, stored_instance()).ProcedureCodeSequence
    assert [(item.CodeValue, item.CodeMeaning) for item in items] == [("T-D4000", "Abdomen")]
    request.ProcedureCodeSequence[0].CodeValue = "NOPE"
    items = response_identifier(request, stored_instance()).ProcedureCodeSequence
    assert [item.CodeValue for item in items] == ["T-D3000", "T-D4000"]


def test_missing_sequence_comes_back_empty_and_nested_sequences_are_cut_down() -> None:
    request = Dataset()
    request.RequestAttributesSequence = Sequence([])
    assert len(response_identifier(request, stored_instance()).RequestAttributesSequence) == 0

    step = ident(ScheduledProcedureStepID="S1", ScheduledStationAETitle="CT1")
    step.ScheduledProtocolCodeSequence = Sequence(
        [ident(CodeValue="P1", CodingSchemeDesignator="L", CodeMeaning="Proto")]
    )
    match = ident(PatientID="1")
    match.ScheduledProcedureStepSequence = Sequence([step])
    nested_request = ident(ScheduledProcedureStepID="")
    nested_request.ScheduledProtocolCodeSequence = Sequence([ident(CodeValue="")])
    request = Dataset()
    request.ScheduledProcedureStepSequence = Sequence([nested_request])
    response = response_identifier(request, match)
    (item,) = response.ScheduledProcedureStepSequence
    assert set(item.keys()) == {0x00400009, 0x00400008}
    (code,) = item.ScheduledProtocolCodeSequence
    assert set(code.keys()) == {0x00080100}
    assert code.CodeValue == "P1"


def test_group_lengths_and_command_elements_are_not_returned() -> None:
    request = ident(PatientID="")
    request.add_new(0x00100000, "UL", 8)
    response = response_identifier(request, ident(PatientID="1"))
    assert set(response.keys()) == {PATIENT_ID}


def test_response_encodes_and_decodes() -> None:
    request = ident(
        QueryRetrieveLevel="STUDY",
        PatientName="",
        StudyDate="",
        NumberOfStudyRelatedSeries="",
        ModalitiesInStudy="",
    )
    request.ProcedureCodeSequence = Sequence([ident(CodeValue="")])
    response = response_identifier(request, stored_instance(), retrieve_ae="QRSCP")
    decoded = decode_dataset(
        encode_dataset(response, EXPLICIT_VR_LITTLE_ENDIAN), EXPLICIT_VR_LITTLE_ENDIAN
    )
    assert str(decoded.PatientName) == "Müller^Hans"
    assert list(decoded.ModalitiesInStudy) == ["CT", "SR"]
    assert decoded.NumberOfStudyRelatedSeries is None
    assert [item.CodeValue for item in decoded.ProcedureCodeSequence] == ["T-D3000", "T-D4000"]
    assert decoded.RetrieveAETitle == "QRSCP"


def test_a_match_still_as_read_is_answered_with_its_bytes_unconverted() -> None:
    """A stored header's elements stay raw into the response: the same identifier on the
    wire as from the decoded match, without converting each value and back."""
    from pydicom.dataelem import RawDataElement

    from dimsefsm.datasets import decode_dataset, encode_dataset
    from dimsefsm.sop_class import EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN

    stored = stored_instance()
    del stored.ProcedureCodeSequence
    blob = encode_dataset(stored, EXPLICIT_VR_LITTLE_ENDIAN)
    raw = decode_dataset(blob, EXPLICIT_VR_LITTLE_ENDIAN, convert_values=False)
    request = ident(QueryRetrieveLevel="STUDY", PatientName="", StudyDate="", ModalitiesInStudy="")
    response = response_identifier(request, raw, retrieve_ae="QRSCP")
    assert isinstance(response.get_item(0x00100010), RawDataElement)
    assert str(response.PatientName) == "Müller^Hans"
    expected = response_identifier(request, stored, retrieve_ae="QRSCP")
    for syntax in (EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN):
        assert encode_dataset(response, syntax) == encode_dataset(expected, syntax)
