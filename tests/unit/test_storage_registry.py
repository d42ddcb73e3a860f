"""The Storage SOP class registry against two independent derivations of PS3.4 Annex B.

The registry selects Storage SOP classes by their PS3.6 *name*.  These tests
derive the list by other means and compare, so that a rule that silently drops
a family (as "name ends in Storage" dropped DX, MG, IO, IVOCT and DICOS DX)
fails here rather than at a modality:

* pynetdicom's own storage and non-patient storage tables (hand-kept lists);
* pydicom's PS3.6 dictionary by *keyword* rather than name.
"""

from __future__ import annotations

import pytest
from pydicom._uid_dict import UID_dictionary
from pynetdicom import sop_class as pynetdicom_sop

from dimsefsm.sop_class import STORAGE_SOP_CLASSES, is_storage, lookup, service_of

# SOP classes with "Storage" in their keyword that another service class defines.
OTHER_SERVICES = {
    "MediaStorageDirectoryStorage",  # DICOMDIR (PS3.10), not exchanged by C-STORE
    "StorageCommitmentPushModel",  # Storage Commitment (PS3.4 Annex J), N-ACTION/N-EVENT
    "StorageCommitmentPullModel",
}


def _pynetdicom_storage() -> set[str]:
    """Every class pynetdicom serves with its (non-patient) Storage service class."""
    tables = (
        pynetdicom_sop._STORAGE_CLASSES,
        pynetdicom_sop._NON_PATIENT_OBJECT_CLASSES,
    )
    return {str(uid) for table in tables for uid in table.values()}


def _pydicom_storage_by_keyword() -> set[str]:
    return {
        uid
        for uid, (_name, kind, _info, _retired, keyword) in UID_dictionary.items()
        if kind == "SOP Class" and "Storage" in keyword and keyword not in OTHER_SERVICES
    }


def test_every_storage_class_pynetdicom_knows_is_accepted() -> None:
    missing = _pynetdicom_storage() - set(STORAGE_SOP_CLASSES)
    assert not missing, sorted(missing)


def test_every_storage_class_pydicom_lists_by_keyword_is_accepted() -> None:
    missing = _pydicom_storage_by_keyword() - set(STORAGE_SOP_CLASSES)
    assert not missing, sorted(missing)


def test_nothing_but_storage_classes_is_registered_as_storage() -> None:
    extra = set(STORAGE_SOP_CLASSES) - _pynetdicom_storage() - _pydicom_storage_by_keyword()
    assert not extra, sorted(extra)
    assert len(STORAGE_SOP_CLASSES) == len(set(STORAGE_SOP_CLASSES))


@pytest.mark.parametrize(
    "uid",
    [
        "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray - For Presentation
        "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray - For Processing
        "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray - For Presentation
        "1.2.840.10008.5.1.4.1.1.1.3.1",  # Digital Intra-Oral X-Ray - For Processing
        "1.2.840.10008.5.1.4.1.1.13.1.4",  # Breast Projection X-Ray - For Presentation
        "1.2.840.10008.5.1.4.1.1.14.2",  # IVOCT - For Processing
        "1.2.840.10008.5.1.4.1.1.501.2.1",  # DICOS Digital X-Ray - For Presentation
        "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation (newer than pydicom 3.0)
    ],
)
def test_for_presentation_processing_and_newer_classes_are_storage(uid: str) -> None:
    assert is_storage(uid)
    sop = lookup(uid)
    assert sop is not None and "Storage" in sop.name


@pytest.mark.parametrize(
    "uid",
    [
        "1.2.840.10008.1.20.1",  # Storage Commitment Push Model
        "1.2.840.10008.1.3.10",  # Media Storage Directory Storage
        "1.2.840.10008.5.1.4.1.2.2.1",  # Study Root Q/R - FIND
        "1.2.840.10008.1.1",  # Verification
    ],
)
def test_other_services_are_not_storage(uid: str) -> None:
    assert not is_storage(uid)


def test_non_patient_objects_keep_their_own_service() -> None:
    assert service_of("1.2.840.10008.5.1.4.38.1") == "non-patient-storage"  # Hanging Protocol
    assert service_of("1.2.840.10008.5.1.4.1.1.1.1") == "storage"
