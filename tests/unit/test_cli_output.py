"""Match output: DICOM JSON lines that round-trip, a readable table, the final status line."""

from __future__ import annotations

import io
import json

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from dimsefsm import status
from dimsefsm.cli.keys import build_identifier, parse_key
from dimsefsm.cli.output import (
    MatchTable,
    cell_text,
    describe_status,
    format_match_json,
    print_status_line,
    status_line,
    table_columns,
    truncate,
)
from dimsefsm.status import Service

STUDY_UID = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"


def raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    """An element as the decoder leaves it before pydicom converts the value."""
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def study_match(name: str, patient_id: str, modalities: list[str], items: int) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.StudyDate = "20240131"
    ds.ModalitiesInStudy = modalities
    ds.StudyInstanceUID = STUDY_UID
    ds.NumberOfStudyRelatedInstances = 120
    ds.ReferencedStudySequence = Sequence(Dataset() for _ in range(items))
    step = Dataset()
    step.Modality = modalities[0]
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


# -- JSON -------------------------------------------------------------------------------------


def rich_match() -> Dataset:
    ds = study_match("Müller^Hans", "ID\\1", ["CT", "MR"], 2)
    ds.Rows = 512
    ds.PixelSpacing = [0.5, 0.25]
    ds.SelectorAttribute = 0x00100010
    ds.PatientComments = "first line\r\nsecond line"
    ds.AccessionNumber = ""
    ds.add_new(0x00091010, "OB", b"\x00\x01\x02\x03")
    return ds


def test_json_is_one_line_of_the_dicom_json_model() -> None:
    line = format_match_json(rich_match())
    assert "\n" not in line
    assert "\r" not in line
    model = json.loads(line)
    assert model["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Müller^Hans"}]}
    assert model["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert model["00280010"] == {"vr": "US", "Value": [512]}
    assert model["00080050"] == {"vr": "SH"}
    assert model["00091010"] == {"vr": "OB", "InlineBinary": "AAECAw=="}
    assert list(model) == sorted(model)


def test_json_round_trips_through_from_json() -> None:
    ds = rich_match()
    assert Dataset.from_json(format_match_json(ds)) == ds


def test_json_equals_pydicoms_model_for_valid_data() -> None:
    ds = rich_match()
    assert json.loads(format_match_json(ds)) == ds.to_json_dict()


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on the bad value
def test_json_keeps_an_undecodable_value_as_un_bytes() -> None:
    ds = Dataset()
    ds.PatientName = "Doe"
    ds[0x00200011] = raw(0x00200011, "IS", b"abc ")
    item = Dataset()
    item[0x00200011] = raw(0x00200011, "IS", b"x ")
    item.Modality = "CT"
    ds.ScheduledProcedureStepSequence = Sequence([item])

    model = json.loads(format_match_json(ds))

    assert model["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe"}]}
    assert model["00200011"] == {"vr": "UN", "InlineBinary": "YWJjIA=="}
    assert model["00400100"]["Value"] == [
        {
            "00080060": {"vr": "CS", "Value": ["CT"]},
            "00200011": {"vr": "UN", "InlineBinary": "eCA="},
        }
    ]


def test_json_of_empty_match() -> None:
    assert format_match_json(Dataset()) == "{}"


# -- table ------------------------------------------------------------------------------------


def render(table_keys: list[str], matches: list[Dataset], max_width: int = 24) -> str:
    keys = [parse_key(spec) for spec in table_keys]
    out = io.StringIO()
    table = MatchTable(table_columns(build_identifier(keys), keys), out, max_width=max_width)
    for match in matches:
        table.add(match)
    return out.getvalue()


def test_table_of_study_matches() -> None:
    matches = [
        study_match("Doe^John", "12345", ["CT"], 1),
        study_match("Doe^Jane^Middle^Dr^PhD-long-suffix", "7", ["CT", "MR"], 3),
    ]
    text = render(
        [
            "QueryRetrieveLevel=STUDY",
            "PatientName=Doe*",
            "PatientID",
            "ModalitiesInStudy",
            "ReferencedStudySequence",
            "ScheduledProcedureStepSequence[0].Modality",
            "StudyInstanceUID",
        ],
        matches,
    )
    uid_rule = "-" * 64
    assert text.splitlines() == [
        "   #  PatientName               PatientID                 ModalitiesInStudy  "
        "ReferencedStudySequence  Modality          StudyInstanceUID",
        f"----  ------------------------  ------------------------  -----------------  "
        f"-----------------------  ----------------  {uid_rule}",
        "   1  Doe^John                  12345                     CT                 "
        f"[1 item]                 CT                {STUDY_UID}",
        "   2  Doe^Jane^Middle^Dr^Ph...  7                         CT\\MR              "
        f"[3 items]                CT                {STUDY_UID}",
    ]


def test_table_prints_header_with_first_match_only() -> None:
    assert render(["PatientID"], []) == ""
    lines = render(["PatientID"], [study_match("A", "1", ["CT"], 0)] * 3).splitlines()
    assert lines[0] == "   #  PatientID"
    assert [line.split() for line in lines[2:]] == [["1", "1"], ["2", "1"], ["3", "1"]]


def test_table_columns_add_query_file_attributes_after_keys() -> None:
    base = Dataset()
    base.SpecificCharacterSet = "ISO_IR 100"
    base.StudyDate = ""
    base.PatientName = "Smith"
    base.ReferencedStudySequence = Sequence()
    keys = [parse_key("PatientID"), parse_key("PatientName=Doe*")]
    identifier = build_identifier(keys, base=base)

    columns = table_columns(identifier, keys)

    assert [column.label for column in columns] == [
        "PatientID",
        "PatientName",
        "StudyDate",
        "ReferencedStudySequence",
    ]


def test_repeated_key_is_one_column() -> None:
    keys = [parse_key("PatientID=1"), parse_key("PatientID=2")]
    assert [column.label for column in table_columns(build_identifier(keys), keys)] == ["PatientID"]


def test_headers_use_full_path_when_keywords_repeat() -> None:
    keys = [parse_key("(0040,0100)[0].Modality"), parse_key("(0040,0100)[1].Modality")]
    table = MatchTable(keys, io.StringIO())
    assert table.headers == [
        "ScheduledProcedureStepSequence[0].Modality",
        "ScheduledProcedureStepSequence[1].Modality",
    ]
    assert table.widths == [24, 24]


def test_cell_text_follows_paths_and_tolerates_missing_parts() -> None:
    ds = study_match("Doe", "1", ["CT"], 0)
    assert cell_text(ds, parse_key("ScheduledProcedureStepSequence[0].Modality")) == "CT"
    assert cell_text(ds, parse_key("ScheduledProcedureStepSequence[1].Modality")) == ""
    assert cell_text(ds, parse_key("(0040,0275)[0].(0040,1001)")) == ""
    assert cell_text(ds, parse_key("ReferencedStudySequence")) == "[0 items]"
    assert cell_text(ds, parse_key("ScheduledProcedureStepSequence[0]")) == "[1 item]"
    assert cell_text(ds, parse_key("NumberOfStudyRelatedInstances")) == "120"
    assert cell_text(ds, parse_key("AccessionNumber")) == ""
    assert cell_text(ds, parse_key("Rows")) == ""


def test_cell_text_joins_multiple_numbers_with_backslash() -> None:
    ds = Dataset()
    ds.AcquisitionMatrix = [0, 256, 256, 0]
    ds.PixelSpacing = ["0.5", "0.25"]
    assert cell_text(ds, parse_key("AcquisitionMatrix")) == "0\\256\\256\\0"
    assert cell_text(ds, parse_key("PixelSpacing")) == "0.5\\0.25"


def test_cell_text_shows_bytes_count_for_binary_value() -> None:
    ds = Dataset()
    ds.add_new(0x7FE00010, "OW", b"\x00" * 10)
    assert cell_text(ds, parse_key("PixelData")) == "<10 bytes>"


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on the bad value
def test_cell_text_strips_terminal_control_characters() -> None:
    ds = Dataset()
    ds[0x00081030] = raw(0x00081030, "LO", b"a\x1b[2Jb\r\nc\x07")
    assert cell_text(ds, parse_key("StudyDescription")) == "a?[2Jb  c?"


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on the bad value
def test_cell_text_shows_undecodable_value_as_its_text() -> None:
    ds = Dataset()
    ds[0x00200011] = raw(0x00200011, "IS", b"abc ")
    assert cell_text(ds, parse_key("SeriesNumber")) == "abc"


def test_cell_text_shows_byte_count_for_undecodable_number() -> None:
    ds = Dataset()
    ds[0x00280010] = raw(0x00280010, "US", b"abc")  # odd length: pydicom raises
    assert cell_text(ds, parse_key("Rows")) == "<3 bytes>"


def test_json_keeps_undecodable_number_as_un_bytes() -> None:
    ds = Dataset()
    ds[0x00280010] = raw(0x00280010, "US", b"abc")
    ds.Columns = 2
    assert json.loads(format_match_json(ds)) == {
        "00280010": {"vr": "UN", "InlineBinary": "YWJj"},
        "00280011": {"vr": "US", "Value": [2]},
    }


def test_truncate() -> None:
    assert truncate("abcdef", 6) == "abcdef"
    assert truncate("abcdefg", 6) == "abc..."


def test_narrow_table_keeps_minimum_width() -> None:
    out = io.StringIO()
    table = MatchTable([parse_key("PatientName")], out, max_width=1)
    table.add(study_match("Doe", "1", ["CT"], 0))
    assert table.widths == [4]
    assert out.getvalue().splitlines() == ["   #  P...", "----  ----", "   1  Doe"]


# -- status -----------------------------------------------------------------------------------


def test_describe_status() -> None:
    assert describe_status(status.SUCCESS) == "0x0000 Success"
    assert describe_status(status.CANCEL).startswith("0xFE00 Cancel")
    assert describe_status(status.OUT_OF_RESOURCES) == "0xA700 Failure: Refused: out of resources"
    assert describe_status(0xC123) == "0xC123 Failure: Unable to process"
    assert describe_status(status.PENDING).startswith("0xFF00 Pending: Matches are continuing")
    assert describe_status(0x1234) == "0x1234 Unknown: Unknown status (not a PS3.7 Annex C code)"


def test_describe_status_for_other_services() -> None:
    assert describe_status(status.MOVE_DESTINATION_UNKNOWN, Service.QR_MOVE) == (
        "0xA801 Failure: Refused: move destination unknown"
    )
    assert describe_status(status.SUCCESS, Service.QR_GET) == (
        "0x0000 Success: Sub-operations complete, no failures"
    )


def test_status_line() -> None:
    assert status_line(0x0000, None, 3) == "Final status: 0x0000 Success; 3 matches"
    assert status_line(0x0000, None, 1) == "Final status: 0x0000 Success; 1 match"
    assert status_line(0xA700, "Refused", 0) == "Final status: 0xA700 Refused; 0 matches"
    assert status_line(0xFE00, "0xFE00 Cancel", 2) == "Final status: 0xFE00 Cancel; 2 matches"


def test_print_status_line_to_given_stream() -> None:
    out = io.StringIO()
    print_status_line(0x0000, describe_status(0x0000), 0, stream=out)
    assert out.getvalue() == "Final status: 0x0000 Success; 0 matches\n"


def test_print_status_line_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    print_status_line(0xC001, None, 5)
    captured = capsys.readouterr()
    assert captured.out.startswith("Final status: 0xC001 Failure: Unable to process: ")
    assert captured.out.endswith("; 5 matches\n")
    assert captured.err == ""
