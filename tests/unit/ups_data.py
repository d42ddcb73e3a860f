"""Unified Procedure Step data sets for the tests: a valid N-CREATE and the steps after it."""

from __future__ import annotations

from typing import Any

from pydicom import Dataset


def code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "99TEST"
    item.CodeMeaning = meaning
    return item


def ups_create(patient: str = "Doe^Jane", patient_id: str = "P1", **extra: Any) -> Dataset:
    """The attribute list of an N-CREATE that a UPS Push SCP must accept."""
    ds = Dataset()
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ProcedureStepLabel = "CT head review"
    ds.WorklistLabel = "READING"
    ds.ScheduledProcedureStepStartDateTime = "20261205120000"
    ds.InputReadinessState = "READY"
    ds.PatientName = patient
    ds.PatientID = patient_id
    ds.ScheduledWorkitemCodeSequence = [code("110005", "Interpretation")]
    ds.ScheduledStationNameCodeSequence = []
    ds.TransactionUID = ""
    for keyword, value in extra.items():
        setattr(ds, keyword, value)
    return ds


def completion(
    transaction_uid: str, start: str = "20261205120500", end: str = "20261205121500"
) -> Dataset:
    """An N-SET modification list meeting the final state requirements of COMPLETED."""
    item = Dataset()
    item.PerformedProcedureStepStartDateTime = start
    item.PerformedProcedureStepEndDateTime = end
    item.PerformedStationNameCodeSequence = [code("WS1", "Workstation 1")]
    item.PerformedWorkitemCodeSequence = [code("110005", "Interpretation")]
    item.OutputInformationSequence = []
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    ds.UnifiedProcedureStepPerformedProcedureSequence = [item]
    return ds


def change_state(state: str, transaction_uid: str | None) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    if transaction_uid is not None:
        ds.TransactionUID = transaction_uid
    return ds


def subscription(receiving_ae: str, lock: bool = False) -> Dataset:
    ds = Dataset()
    ds.ReceivingAE = receiving_ae
    ds.DeletionLock = "TRUE" if lock else "FALSE"
    return ds
