"""``-k`` query keys: the same expressions give the same data set as dcmtk's path syntax."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dimsefsm.cli.keys import (
    MAX_ITEM_NUMBER,
    KeyPath,
    KeySyntaxError,
    PathNode,
    QueryKeyError,
    UnknownKeyError,
    apply_key,
    build_identifier,
    key_argument,
    parse_key,
)
from dimsefsm.datasets import EXPLICIT_VR_LITTLE_ENDIAN, decode_dataset, encode_dataset

PATIENT_NAME = 0x00100010
SCHEDULED_STEP_SEQUENCE = 0x00400100
MODALITY = 0x00080060


def dcmodify_args(specs: list[str]) -> list[str]:
    return [arg for spec in specs for arg in ("-i", spec)]


def dcmtk_model(path: Path) -> dict[str, Any]:
    return pydicom.dcmread(path).to_json_dict()


def dcmtk_identifier(tmp_path: Path, specs: list[str]) -> dict[str, Any]:
    """The data set dcmtk builds from the same key expressions (findscu and dcmodify share the
    path syntax; dcmodify writes it to a file we can read back)."""
    path = tmp_path / "dcmtk.dcm"
    subprocess.run(
        ["dcmodify", "+fc", "-nb", *dcmodify_args(specs), str(path)],
        check=True,
        capture_output=True,
    )
    return dcmtk_model(path)


def our_model(identifier: Dataset) -> dict[str, Any]:
    """Through our encoder and back, so float32 precision and VRs are compared as sent."""
    encoded = encode_dataset(identifier, EXPLICIT_VR_LITTLE_ENDIAN)
    return decode_dataset(encoded, EXPLICIT_VR_LITTLE_ENDIAN).to_json_dict()


# -- same data set as dcmtk -------------------------------------------------------------------

DCMTK_CASES: dict[str, list[str]] = {
    "keyword, bare key, both tag forms": [
        "PatientName=Doe*",
        "PatientID",
        "(0010,0030)=19700101",
        "0010,0040=F",
        "(0010,0020)=",
    ],
    "study query with ranges and lists": [
        "QueryRetrieveLevel=STUDY",
        "StudyDate=20200101-20201231",
        "StudyTime=0800-1200",
        "ModalitiesInStudy=CT\\MR",
        "StudyInstanceUID=1.2.3\\1.2.4",
        "AccessionNumber=?12*",
    ],
    "nested sequence keys": [
        "ReferencedStudySequence[0].ReferencedSOPClassUID=1.2",
        "(0008,1110)[0].(0008,1155)",
    ],
    "item index creates the items before it": ["ScheduledProcedureStepSequence[2].Modality=CT"],
    "bare sequence is an empty sequence": ["ScheduledProcedureStepSequence"],
    "path ending with an item": ["(0040,0275)[1]"],
    "old tag syntax inside a path": [
        "0040,0100[0].0008,0060=CT",
        "(0040,0100)[0].ScheduledStationAETitle",
    ],
    "two levels deep": [
        "(0008,1111)[0].(0008,1111)[1].(0010,0010)=A Third One",
        "(0008,1111)[0].(0008,1111)[1].PatientID=7",
    ],
    "binary numbers and multiple values": [
        "Rows=512",
        "AcquisitionMatrix=1\\2\\3\\4",
        "TimeRange=1.5\\-2",
        "RecommendedDisplayFrameRateInFloat=29.97",
        "ReferencePixelX0=-5",
        "TagAngleSecondAxis=-7",
        "SimpleFrameList=1\\4294967295",
        "SelectorSVValue=-9000000000",
        "SmallestImagePixelValue=5",
    ],
    "decimal and integer strings": [
        "PixelSpacing=0.5\\0.5",
        "SliceThickness",
        "SeriesNumber=3",
        "FrameTime=1e3",
    ],
    "attribute tag value": ["SelectorAttribute=(0010,0010)"],
    "backslash is text in LT": ["PatientComments=a\\b"],
    "private creator and retired keyword": ["(0009,0010)=FOO", "RETIRED_OtherPatientIDs=x"],
    "later key replaces value, bare sequence keeps items": [
        "PatientName=x",
        "PatientName",
        "(0040,0100)[0].Modality=CT",
        "(0040,0100)",
    ],
}


@pytest.mark.parametrize("specs", DCMTK_CASES.values(), ids=DCMTK_CASES.keys())
def test_identifier_matches_dcmtk(tmp_path: Path, specs: list[str]) -> None:
    assert our_model(build_identifier(specs)) == dcmtk_identifier(tmp_path, specs)


def test_keys_on_a_query_file_match_dcmtk(tmp_path: Path) -> None:
    base_specs = [
        "PatientName=Smith",
        "PatientID=1",
        "ScheduledProcedureStepSequence[1].Modality=MR",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=A",
    ]
    keys = [
        "PatientName=Doe*",
        "(0040,0100)[1].ScheduledStationAETitle",
        "(0040,0100)[0].Modality=CT",
        "StudyDate",
    ]
    base_path = tmp_path / "base.dcm"
    subprocess.run(
        ["dcmodify", "+fc", "-nb", *dcmodify_args(base_specs), str(base_path)],
        check=True,
        capture_output=True,
    )
    base = pydicom.dcmread(base_path)
    base_model = base.to_json_dict()
    subprocess.run(["dcmodify", "-nb", *dcmodify_args(keys), str(base_path)], check=True)

    identifier = build_identifier(keys, base=base)

    assert our_model(identifier) == dcmtk_model(base_path)
    assert base.to_json_dict() == base_model, "the query file's data set must stay unchanged"
    assert not hasattr(identifier, "file_meta")


def test_private_creator_and_empty_pixel_data_get_dcmtk_vrs() -> None:
    # dcmodify cannot save a PixelData without pixel module; findscu sends it as OW
    identifier = build_identifier(["PixelData", "(0029,0010)=SIEMENS CSA HEADER"])
    assert identifier[0x7FE00010].VR == "OW"
    assert identifier[0x7FE00010].value is None
    assert identifier[0x00290010].VR == "LO"
    assert identifier[0x00290010].value == "SIEMENS CSA HEADER"


# -- parsed form ------------------------------------------------------------------------------


def test_parse_keyword_with_value() -> None:
    key = parse_key("PatientName=Doe*")
    assert key == KeyPath((PathNode(PATIENT_NAME, "PN"),), "Doe*", "Doe*", "PatientName=Doe*")
    assert key.tag == PATIENT_NAME
    assert key.vr == "PN"
    assert key.keyword == "PatientName"
    assert not key.ends_with_item


@pytest.mark.parametrize("spec", ["PatientName", "PatientName=", "(0010,0010)", "0010,0010="])
def test_missing_or_empty_value_is_a_return_key(spec: str) -> None:
    key = parse_key(spec)
    assert key.tag == PATIENT_NAME
    assert key.value == ""
    assert build_identifier([key])[PATIENT_NAME].is_empty


def test_empty_number_is_none_not_zero() -> None:
    assert parse_key("Rows").value is None
    assert build_identifier(["Rows"])[0x00280010].value is None


def test_nested_path_nodes_and_label() -> None:
    key = parse_key("(0040,0100)[0].(0008,0060)=CT")
    assert key.nodes == (
        PathNode(SCHEDULED_STEP_SEQUENCE, "SQ", 0),
        PathNode(MODALITY, "CS"),
    )
    assert key.label == "ScheduledProcedureStepSequence[0].Modality"
    assert key.keyword == "Modality"
    assert str(key) == "ScheduledProcedureStepSequence[0].Modality=CT"


def test_path_ending_with_item() -> None:
    key = parse_key("ScheduledProcedureStepSequence[3]")
    assert key.ends_with_item
    assert key.value is None
    assert str(key) == "ScheduledProcedureStepSequence[3]"
    identifier = build_identifier([key])
    assert len(identifier.ScheduledProcedureStepSequence) == 4
    assert all(len(item) == 0 for item in identifier.ScheduledProcedureStepSequence)


def test_lowercase_hex_and_spaces_in_item_number() -> None:
    assert parse_key("(0008,103e)=x").tag == 0x0008103E
    assert parse_key("(0040,0100)[ 01 ].Modality").nodes[0].item == 1


def test_unnamed_tag_label_uses_tag_text() -> None:
    assert parse_key("(0009,0010)=X").label == "(0009,0010)"


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ("Rows= 12", 12),
        ("AcquisitionMatrix=1\\2\\3\\4", (1, 2, 3, 4)),
        ("TimeRange=1.5\\-2", (1.5, -2.0)),
        ("SelectorAttribute=0010,0020", 0x00100020),
        ("SelectorAttribute=(0010,0010)\\(0020,000D)", (0x00100010, 0x0020000D)),
        ("ModalitiesInStudy=CT\\MR", ("CT", "MR")),
        ("PatientComments=a\\b", "a\\b"),
        ("PatientName= Doe ", " Doe "),
        ("StudyDescription=a=b", "a=b"),
    ],
)
def test_value_conversion(spec: str, value: object) -> None:
    assert parse_key(spec).value == value


def test_query_retrieve_level_like_dcmtk() -> None:
    identifier = build_identifier(["QueryRetrieveLevel=STUDY", "StudyInstanceUID"])
    assert identifier.QueryRetrieveLevel == "STUDY"
    assert identifier[0x00080052].VR == "CS"


def test_keys_apply_in_order() -> None:
    identifier = build_identifier(["PatientID=1", "PatientID=2"])
    assert identifier.PatientID == "2"


def test_bare_sequence_keeps_items_given_before() -> None:
    identifier = build_identifier(["(0040,0100)[0].Modality=CT", "ScheduledProcedureStepSequence"])
    assert [item.Modality for item in identifier.ScheduledProcedureStepSequence] == ["CT"]


def test_apply_key_to_existing_item() -> None:
    identifier = Dataset()
    item = Dataset()
    item.Modality = "MR"
    identifier.ScheduledProcedureStepSequence = Sequence([item])
    apply_key(identifier, parse_key("ScheduledProcedureStepSequence[0].ScheduledStationAETitle=A"))
    assert identifier.ScheduledProcedureStepSequence[0].Modality == "MR"
    assert identifier.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "A"


def test_base_element_that_is_not_a_sequence_is_an_error() -> None:
    base = Dataset()
    base.add_new(SCHEDULED_STEP_SEQUENCE, "LO", "oops")
    with pytest.raises(KeySyntaxError, match=r"VR LO, not SQ.*'\(0040,0100\)\[0\]\.Modality'"):
        build_identifier(["(0040,0100)[0].Modality"], base=base)


def test_base_is_not_changed() -> None:
    base = Dataset()
    base.PatientName = "Smith"
    build_identifier(["PatientName=Doe", "PatientID=1"], base=base)
    assert base.PatientName == "Smith"
    assert "PatientID" not in base


def test_non_ascii_value_adds_utf8_character_set() -> None:
    identifier = build_identifier(["PatientName=Müller"])
    assert identifier.SpecificCharacterSet == "ISO_IR 192"
    encoded = encode_dataset(identifier, EXPLICIT_VR_LITTLE_ENDIAN)
    assert "Müller".encode() in encoded


def test_nested_non_ascii_value_adds_utf8_character_set() -> None:
    identifier = build_identifier(["ModalitiesInStudy=CT\\MR", "(0040,0100)[0].(0040,0010)=Raum ß"])
    assert identifier.SpecificCharacterSet == "ISO_IR 192"


def test_given_character_set_is_kept() -> None:
    identifier = build_identifier(["SpecificCharacterSet=ISO_IR 100", "PatientName=Müller"])
    assert identifier.SpecificCharacterSet == "ISO_IR 100"


def test_ascii_values_add_no_character_set() -> None:
    assert "SpecificCharacterSet" not in build_identifier(["PatientName=Muller", "Rows=1"])


# -- errors -----------------------------------------------------------------------------------

SYNTAX_ERRORS: dict[str, str] = {
    "=x": "missing tag or keyword",
    "": "missing tag or keyword",
    "(00100010)=1": "cannot read a tag",
    "(0010,001g)=1": "cannot read a tag",
    "PatientName[0].PatientID=1": "PatientName is not a sequence",
    "ScheduledProcedureStepSequence=CT": "cannot put a value into sequence",
    "(0040,0100)[0]=CT": "cannot put a value into sequence",
    "(0040,0100).Modality": r"needs an item number like \[0\] before '\.'",
    "(0040,0100)[*].Modality=CT": r"item wildcard \[\*\] is not allowed",
    "(0040,0100)[-1].Modality=CT": r"negative item number \[-1\]",
    "(0040,0100)[x].Modality=CT": r"item number \[x\] is not a number",
    "(0040,0100)[].Modality=CT": r"item number \[\] is not a number",
    f"(0040,0100)[{MAX_ITEM_NUMBER + 1}]": "is above",
    "(0040,0100)[0].": "nothing follows the last '.'",
    "(0040,0100)[0](0008,0060)=CT": "expected '.' after",
    "PatientName PatientID": r"expected '.' or '\[n\]' after",
    "Rows=70000": r"must be in 0\.\.65535, not 70000",
    "TagAngleSecondAxis=-40000": r"must be in -32768\.\.32767",
    "Rows=1.5": "needs an integer, not '1.5'",
    "Rows=abc": "needs an integer, not 'abc'",
    "TimeRange=fast": "needs a number, not 'fast'",
    "SeriesNumber=1-3": r"SeriesNumber \(IS\) needs an integer",
    "SliceThickness=abc": r"SliceThickness \(DS\) needs a decimal number",
    "SelectorAttribute=PatientName": r"needs a tag like \(0010,0010\)",
    "PixelData=1": "binary VR OW",
    "(0010,0000)=1": "group length",
    "(0000,0900)=0": "command",
    "(0002,0010)=1.2": "file meta",
    "(FFFE,E000)": "item",
}


@pytest.mark.parametrize(("spec", "message"), SYNTAX_ERRORS.items(), ids=SYNTAX_ERRORS.keys())
def test_syntax_errors_name_the_spec(spec: str, message: str) -> None:
    with pytest.raises(KeySyntaxError, match=message) as caught:
        parse_key(spec)
    assert repr(spec) in str(caught.value)
    assert isinstance(caught.value, ValueError)


UNKNOWN_KEYS: dict[str, str] = {
    "NoSuchKeyword=1": "unknown keyword 'NoSuchKeyword'",
    "patientname=x": r"did you mean PatientName\?",
    "STUDYDATE": r"did you mean StudyDate\?",
    "PatientsName=x": r"did you mean PatientName\?",
    "(0009,1001)=1": r"private tag \(0009,1001\) has no dictionary VR",
    "(0011,0001)=1": r"private tag \(0011,0001\)",
    "(0003,0010)=1": r"private tag \(0003,0010\)",
    "(0008,FFFE)=1": r"tag \(0008,FFFE\) is not in the DICOM dictionary",
    "(0040,0100)[0].Nope=1": "unknown keyword 'Nope'",
}


@pytest.mark.parametrize(("spec", "message"), UNKNOWN_KEYS.items(), ids=UNKNOWN_KEYS.keys())
def test_unknown_keys_are_key_errors_naming_the_spec(spec: str, message: str) -> None:
    with pytest.raises(UnknownKeyError, match=message) as caught:
        parse_key(spec)
    assert isinstance(caught.value, KeyError)
    assert isinstance(caught.value, QueryKeyError)
    assert repr(spec) in str(caught.value)
    assert not str(caught.value).startswith("'"), "KeyError must not quote the sentence"


def test_no_hint_for_a_keyword_like_nothing_known() -> None:
    with pytest.raises(UnknownKeyError) as caught:
        parse_key("Nope=1")
    assert str(caught.value) == "unknown keyword 'Nope' in key 'Nope=1'"


def test_build_identifier_raises_for_bad_spec() -> None:
    with pytest.raises(QueryKeyError, match="'Rows=x'"):
        build_identifier(["PatientID", "Rows=x"])


def test_key_argument_reports_through_argparse(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="findscu")
    parser.add_argument("-k", "--key", type=key_argument, action="append", default=[])
    args = parser.parse_args(["-k", "PatientName=Doe*", "-k", "(0040,0100)[0].Modality"])
    assert [str(key) for key in args.key] == [
        "PatientName=Doe*",
        "ScheduledProcedureStepSequence[0].Modality",
    ]
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["-k", "NoSuchKeyword=1"])
    assert exited.value.code == 2
    assert "argument -k/--key: unknown keyword 'NoSuchKeyword'" in capsys.readouterr().err
