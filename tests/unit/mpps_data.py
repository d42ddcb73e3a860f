"""MPPS attribute lists as a modality sends them (PS3.4 F.7.2)."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.uid import generate_uid


def create_attributes(study_uid: str | None = None) -> Dataset:
    """A complete N-CREATE attribute list: every Type 1 attribute, the Type 2 ones empty."""
    ds = Dataset()
    step = Dataset()
    step.StudyInstanceUID = study_uid or generate_uid()
    step.ReferencedStudySequence = []
    step.AccessionNumber = "A1"
    step.RequestedProcedureID = "RP1"
    step.RequestedProcedureDescription = "CT head"
    step.ScheduledProcedureStepID = "SPS1"
    step.ScheduledProcedureStepDescription = "CT head plain"
    step.ScheduledProtocolCodeSequence = []
    ds.ScheduledStepAttributesSequence = [step]
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedStationName = "CT 1"
    ds.PerformedLocation = "Room 1"
    ds.PerformedProcedureStepStartDate = "20261205"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "CT head"
    ds.PerformedProcedureTypeDescription = ""
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = "1"
    ds.PerformedProtocolCodeSequence = []
    ds.PerformedSeriesSequence = []
    return ds


def final_attributes(status: str = "COMPLETED", series_uid: str | None = None) -> Dataset:
    """An N-SET modification ending the step: end date/time and one performed series."""
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20261205"
    ds.PerformedProcedureStepEndTime = "103000"
    series = Dataset()
    series.PerformingPhysicianName = ""
    series.ProtocolName = "Head"
    series.OperatorsName = ""
    series.SeriesInstanceUID = series_uid or generate_uid()
    series.SeriesDescription = "Axial"
    series.RetrieveAETitle = ""
    series.ReferencedImageSequence = []
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds
