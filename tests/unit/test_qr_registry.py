"""The Q/R SOP class table: UIDs against pydicom's PS3.6 registry, models, services."""

from __future__ import annotations

import pytest
from pydicom._uid_dict import UID_dictionary

from dimsefsm import sop_class
from dimsefsm.qr import registry
from dimsefsm.qr.registry import QR_SOP_CLASSES, lookup
from dimsefsm.status import TABLES, Service

# Query-style classes pydicom knows that belong to other families (N-services, retired GPWL).
NOT_QR_FAMILY = {
    "1.2.840.10008.5.1.4.34.6.5",  # Unified Procedure Step - Query (UPS, Annex CC)
    "1.2.840.10008.5.1.4.32.1",  # General Purpose Worklist - FIND (retired service class)
}


@pytest.mark.parametrize("sop", QR_SOP_CLASSES, ids=lambda sop: sop.uid)
def test_every_row_is_a_pydicom_sop_class_with_the_same_name(sop: registry.QRSopClass) -> None:
    name, kind, _info, retired, _keyword = UID_dictionary[sop.uid]
    assert kind == "SOP Class"
    assert sop.name == name
    assert sop.retired == (retired == "Retired")


@pytest.mark.parametrize("sop", QR_SOP_CLASSES, ids=lambda sop: sop.uid)
def test_service_agrees_with_the_standard_name(sop: registry.QRSopClass) -> None:
    name = UID_dictionary[sop.uid][0]
    if name.endswith(" - MOVE"):
        assert sop.service == "move"
    elif name.endswith(" - GET"):
        assert sop.service == "get"
    else:
        assert sop.service == "find"


def test_table_covers_every_find_move_get_and_query_class_of_pydicom() -> None:
    expected = {
        uid
        for uid, (name, kind, *_rest) in UID_dictionary.items()
        if kind == "SOP Class"
        and (name.endswith((" - FIND", " - MOVE", " - GET")) or "Query" in name.split("/")[0])
        and uid not in NOT_QR_FAMILY
    }
    assert expected == {sop.uid for sop in QR_SOP_CLASSES}


def test_uids_are_unique() -> None:
    uids = [sop.uid for sop in QR_SOP_CLASSES]
    assert len(uids) == len(set(uids)) == 43


EXPECTED_MODELS = {
    "1.2.840.10008.5.1.4.1.2.1.1": "patient-root",
    "1.2.840.10008.5.1.4.1.2.1.2": "patient-root",
    "1.2.840.10008.5.1.4.1.2.1.3": "patient-root",
    "1.2.840.10008.5.1.4.1.2.2.1": "study-root",
    "1.2.840.10008.5.1.4.1.2.2.2": "study-root",
    "1.2.840.10008.5.1.4.1.2.2.3": "study-root",
    "1.2.840.10008.5.1.4.1.2.3.1": "patient-study-only",
    "1.2.840.10008.5.1.4.1.2.3.2": "patient-study-only",
    "1.2.840.10008.5.1.4.1.2.3.3": "patient-study-only",
    "1.2.840.10008.5.1.4.1.2.4.2": "composite-instance-root",
    "1.2.840.10008.5.1.4.1.2.4.3": "composite-instance-root",
    "1.2.840.10008.5.1.4.1.2.5.3": "composite-instance-no-bulk",
    "1.2.840.10008.5.1.4.20.1": "defined-procedure-protocol",
    "1.2.840.10008.5.1.4.20.2": "defined-procedure-protocol",
    "1.2.840.10008.5.1.4.20.3": "defined-procedure-protocol",
    "1.2.840.10008.5.1.4.38.2": "hanging-protocol",
    "1.2.840.10008.5.1.4.38.3": "hanging-protocol",
    "1.2.840.10008.5.1.4.38.4": "hanging-protocol",
    "1.2.840.10008.5.1.4.39.2": "color-palette",
    "1.2.840.10008.5.1.4.39.3": "color-palette",
    "1.2.840.10008.5.1.4.39.4": "color-palette",
    "1.2.840.10008.5.1.4.43.2": "generic-implant-template",
    "1.2.840.10008.5.1.4.43.3": "generic-implant-template",
    "1.2.840.10008.5.1.4.43.4": "generic-implant-template",
    "1.2.840.10008.5.1.4.44.2": "implant-assembly-template",
    "1.2.840.10008.5.1.4.44.3": "implant-assembly-template",
    "1.2.840.10008.5.1.4.44.4": "implant-assembly-template",
    "1.2.840.10008.5.1.4.45.2": "implant-template-group",
    "1.2.840.10008.5.1.4.45.3": "implant-template-group",
    "1.2.840.10008.5.1.4.45.4": "implant-template-group",
    "1.2.840.10008.5.1.4.31": "modality-worklist",
    "1.2.840.10008.5.1.4.37.1": "relevant-patient-information",
    "1.2.840.10008.5.1.4.37.2": "relevant-patient-information",
    "1.2.840.10008.5.1.4.37.3": "relevant-patient-information",
    "1.2.840.10008.5.1.4.41": "substance-administration",
    "1.2.840.10008.5.1.4.42": "substance-administration",
    "1.2.840.10008.5.1.4.1.1.200.4": "protocol-approval",
    "1.2.840.10008.5.1.4.1.1.200.5": "protocol-approval",
    "1.2.840.10008.5.1.4.1.1.200.6": "protocol-approval",
    "1.2.840.10008.5.1.4.1.1.201.2": "inventory",
    "1.2.840.10008.5.1.4.1.1.201.3": "inventory",
    "1.2.840.10008.5.1.4.1.1.201.4": "inventory",
    "1.2.840.10008.5.1.4.1.1.201.6": "repository-query",
}


@pytest.mark.parametrize(("uid", "model"), sorted(EXPECTED_MODELS.items()))
def test_information_model_of_each_class(uid: str, model: str) -> None:
    sop = lookup(uid)
    assert sop is not None
    assert sop.model == model


@pytest.mark.parametrize(
    ("uid", "service"),
    [
        ("1.2.840.10008.5.1.4.1.2.1.1", Service.QR_FIND),
        ("1.2.840.10008.5.1.4.1.2.2.2", Service.QR_MOVE),
        ("1.2.840.10008.5.1.4.1.2.2.3", Service.QR_GET),
        ("1.2.840.10008.5.1.4.1.2.5.3", Service.QR_GET),
        ("1.2.840.10008.5.1.4.38.2", Service.QR_FIND),
        ("1.2.840.10008.5.1.4.39.3", Service.QR_MOVE),
        ("1.2.840.10008.5.1.4.31", Service.BASIC_WORKLIST),
        ("1.2.840.10008.5.1.4.37.1", Service.RELEVANT_PATIENT),
        ("1.2.840.10008.5.1.4.37.3", Service.RELEVANT_PATIENT),
        ("1.2.840.10008.5.1.4.41", Service.SUBSTANCE_ADMINISTRATION),
        ("1.2.840.10008.5.1.4.42", Service.SUBSTANCE_ADMINISTRATION),
        ("1.2.840.10008.5.1.4.1.1.201.6", Service.QR_FIND),
    ],
)
def test_status_table_of_each_family(uid: str, service: Service) -> None:
    sop = lookup(uid)
    assert sop is not None
    assert sop.status_service is service
    assert service in TABLES


def test_every_row_names_an_existing_status_table() -> None:
    assert all(sop.status_service in TABLES for sop in QR_SOP_CLASSES)


def test_lookup_of_an_unknown_uid_is_none() -> None:
    assert lookup("1.2.840.10008.1.1") is None
    assert lookup("") is None


def test_find_get_move_lists_partition_the_table() -> None:
    finds, gets, moves = registry.find_classes(), registry.get_classes(), registry.move_classes()
    assert {s.service for s in finds} == {"find"}
    assert {s.service for s in gets} == {"get"}
    assert {s.service for s in moves} == {"move"}
    assert (len(finds), len(gets), len(moves)) == (18, 13, 12)
    assert set(finds) | set(gets) | set(moves) == set(QR_SOP_CLASSES)


def test_classes_of_model() -> None:
    uids = {sop.uid for sop in registry.classes_of_model("study-root")}
    assert uids == {
        registry.STUDY_ROOT_FIND,
        registry.STUDY_ROOT_GET,
        registry.STUDY_ROOT_MOVE,
    }


def test_hierarchical_flag() -> None:
    hierarchical = {sop.model for sop in QR_SOP_CLASSES if sop.hierarchical}
    assert hierarchical == {
        "patient-root",
        "study-root",
        "patient-study-only",
        "composite-instance-root",
        "composite-instance-no-bulk",
    }


@pytest.mark.parametrize(
    ("name", "uid"),
    [
        ("PATIENT_ROOT_FIND", "1.2.840.10008.5.1.4.1.2.1.1"),
        ("PATIENT_ROOT_MOVE", "1.2.840.10008.5.1.4.1.2.1.2"),
        ("PATIENT_ROOT_GET", "1.2.840.10008.5.1.4.1.2.1.3"),
        ("STUDY_ROOT_FIND", "1.2.840.10008.5.1.4.1.2.2.1"),
        ("STUDY_ROOT_MOVE", "1.2.840.10008.5.1.4.1.2.2.2"),
        ("STUDY_ROOT_GET", "1.2.840.10008.5.1.4.1.2.2.3"),
        ("PATIENT_STUDY_ONLY_FIND", "1.2.840.10008.5.1.4.1.2.3.1"),
        ("PATIENT_STUDY_ONLY_MOVE", "1.2.840.10008.5.1.4.1.2.3.2"),
        ("PATIENT_STUDY_ONLY_GET", "1.2.840.10008.5.1.4.1.2.3.3"),
        ("COMPOSITE_INSTANCE_ROOT_MOVE", "1.2.840.10008.5.1.4.1.2.4.2"),
        ("COMPOSITE_INSTANCE_ROOT_GET", "1.2.840.10008.5.1.4.1.2.4.3"),
        ("COMPOSITE_INSTANCE_NO_BULK_GET", "1.2.840.10008.5.1.4.1.2.5.3"),
        ("MODALITY_WORKLIST_FIND", "1.2.840.10008.5.1.4.31"),
        ("HANGING_PROTOCOL_GET", "1.2.840.10008.5.1.4.38.4"),
        ("COLOR_PALETTE_MOVE", "1.2.840.10008.5.1.4.39.3"),
        ("DEFINED_PROCEDURE_PROTOCOL_FIND", "1.2.840.10008.5.1.4.20.1"),
        ("IMPLANT_TEMPLATE_GROUP_GET", "1.2.840.10008.5.1.4.45.4"),
        ("SUBSTANCE_APPROVAL_FIND", "1.2.840.10008.5.1.4.42"),
    ],
)
def test_named_constants(name: str, uid: str) -> None:
    assert getattr(registry, name) == uid
    assert lookup(uid) is not None


def test_every_uid_constant_names_a_row() -> None:
    constants = {
        value
        for name, value in vars(registry).items()
        if name.isupper()
        and not name.startswith("_")
        and isinstance(value, str)
        and value.startswith("1.2.840.")
    }
    assert constants == {sop.uid for sop in QR_SOP_CLASSES}


def test_sop_class_registry_knows_every_row_with_its_qr_service() -> None:
    for sop in QR_SOP_CLASSES:
        entry = sop_class.lookup(sop.uid)
        assert entry is not None
        assert entry.service == f"qr-{sop.service}"
        assert entry.name == sop.name
    assert sop_class.service_of(registry.STUDY_ROOT_MOVE) == "qr-move"
    assert not sop_class.is_storage(registry.PATIENT_ROOT_GET)


def test_register_all_is_idempotent() -> None:
    before = sop_class.lookup(registry.MODALITY_WORKLIST_FIND)
    registry.register_all()
    assert sop_class.lookup(registry.MODALITY_WORKLIST_FIND) == before
    assert sop_class.service_of(registry.MODALITY_WORKLIST_FIND) == "qr-find"
