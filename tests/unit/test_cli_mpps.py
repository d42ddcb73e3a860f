"""``dimsefsm mppsscu``: the requests its arguments build, and its usage errors (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmwrite
from pydicom.dataset import FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian

from dimsefsm.cli.keys import parse_key
from dimsefsm.cli.main import main
from dimsefsm.cli.mpps import MppsArgumentError, create_request, get_request, set_request
from tests.unit.mpps_data import create_attributes


def test_create_fills_status_and_start_and_applies_the_keys() -> None:
    keys = [
        parse_key("Modality=CT"),
        parse_key("ScheduledStepAttributesSequence[0].StudyInstanceUID=1.2.3"),
    ]
    attributes = create_request(keys)
    assert attributes.Modality == "CT"
    assert attributes.ScheduledStepAttributesSequence[0].StudyInstanceUID == "1.2.3"
    assert attributes.PerformedProcedureStepStatus == "IN PROGRESS"
    assert len(attributes.PerformedProcedureStepStartDate) == 8
    assert len(attributes.PerformedProcedureStepStartTime) == 6


def test_create_takes_a_file_and_keys_override_it(tmp_path: Path) -> None:
    ds = create_attributes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "mpps.dcm"
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.3.1.2.3.3")
    ds.file_meta.MediaStorageSOPInstanceUID = UID("1.2.3.4")
    dcmwrite(path, ds, enforce_file_format=True)
    attributes = create_request([parse_key("PatientID=OTHER")], path)
    assert attributes.PatientID == "OTHER"
    assert attributes.PerformedProcedureStepStartTime == "101500"


def test_set_with_an_end_status_adds_end_date_and_time() -> None:
    modification = set_request(
        [parse_key("PerformedSeriesSequence[0].SeriesInstanceUID=1.2")], "COMPLETED"
    )
    assert modification.PerformedProcedureStepStatus == "COMPLETED"
    assert "PerformedProcedureStepEndDate" in modification
    assert "PerformedProcedureStepEndTime" in modification
    kept = set_request([parse_key("PerformedProcedureStepEndTime=120000")], "DISCONTINUED")
    assert kept.PerformedProcedureStepEndTime == "120000"


def test_set_without_anything_is_refused() -> None:
    with pytest.raises(MppsArgumentError, match="nothing to set"):
        set_request([], None)


def test_get_names_top_level_attributes_only() -> None:
    assert get_request([parse_key("PatientID"), parse_key("(0040,0252)")]) == [
        Tag("PatientID"),
        Tag("PerformedProcedureStepStatus"),
    ]
    with pytest.raises(MppsArgumentError, match="inside a sequence"):
        get_request([parse_key("PerformedSeriesSequence[0].SeriesInstanceUID")])


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["set", "127.0.0.1", "104", "1.2.3"], "nothing to set"),
        (["create", "127.0.0.1", "104", "/nonexistent/mpps.dcm"], "no such file"),
        # the file after the flags, as dcmtk takes it (argparse alone refused it)
        (
            [
                "create",
                "127.0.0.1",
                "104",
                "-aec",
                "X",
                "/nonexistent/mpps.dcm",
                "-k",
                "Modality=CT",
            ],
            "no such file",
        ),
        (
            ["set", "127.0.0.1", "104", "1.2.3", "--status", "COMPLETED", "/nonexistent/s.dcm"],
            "no such file",
        ),
        (
            ["get", "127.0.0.1", "104", "1.2.3", "-k", "PerformedSeriesSequence[0].Modality"],
            "inside",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["mppsscu", *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1


def test_an_unknown_status_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["mppsscu", "set", "127.0.0.1", "104", "1.2.3", "--status", "DONE"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
