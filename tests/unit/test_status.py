"""Status classes (PS3.7 Annex C) and the per-service status tables."""

from __future__ import annotations

import pytest

from dimsefsm import status as st
from dimsefsm.status import Category, Service, category, describe, lookup

S, W, F, C, P, U = (
    Category.SUCCESS,
    Category.WARNING,
    Category.FAILURE,
    Category.CANCEL,
    Category.PENDING,
    Category.UNKNOWN,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (0x0000, S),
        (0x0001, W),
        (0x0002, U),
        (0x00FF, U),
        (0x0100, F),
        (0x0106, F),
        (0x0107, W),
        (0x0108, F),
        (0x0115, F),
        (0x0116, W),
        (0x0117, F),
        (0x01FF, F),
        (0x0200, F),
        (0x0212, F),
        (0x02FF, F),
        (0x0300, U),
        (0x9FFF, U),
        (0xA000, F),
        (0xA700, F),
        (0xA7FF, F),
        (0xAFFF, F),
        (0xB000, W),
        (0xBFFF, W),
        (0xC000, F),
        (0xCFFF, F),
        (0xD000, U),
        (0xFDFF, U),
        (0xFE00, C),
        (0xFE01, U),
        (0xFEFF, U),
        (0xFF00, P),
        (0xFF01, P),
        (0xFF02, U),
        (0xFFFF, U),
    ],
)
def test_category_at_every_class_boundary(code: int, expected: Category) -> None:
    assert category(code) is expected


def test_category_strings_match_pynetdicom() -> None:
    assert [c.value for c in Category] == [
        "Success",
        "Warning",
        "Failure",
        "Cancel",
        "Pending",
        "Unknown",
    ]


def test_pending_and_final() -> None:
    assert st.is_pending(0xFF00) and st.is_pending(0xFF01)
    assert not st.is_pending(0xFE00)
    assert st.is_final(0x0000) and st.is_final(0xD000) and not st.is_final(0xFF01)


@pytest.mark.parametrize("service", list(Service))
def test_every_table_entry_agrees_with_annex_c(service: Service) -> None:
    table = st.TABLES[service]
    assert table.service is service
    for first, last, cat, text in table.rows():
        assert text
        assert category(first) is cat, f"{service}: 0x{first:04X}"
        assert category(last) is cat, f"{service}: 0x{last:04X}"
        if first == last:
            assert table[first] == (cat, text)


def test_named_constants() -> None:
    expected = {
        "SUCCESS": 0x0000,
        "PENDING": 0xFF00,
        "PENDING_WARNING": 0xFF01,
        "CANCEL": 0xFE00,
        "SOP_CLASS_NOT_SUPPORTED": 0x0122,
        "NOT_AUTHORIZED": 0x0124,
        "DUPLICATE_INVOCATION": 0x0210,
        "UNRECOGNIZED_OPERATION": 0x0211,
        "MISTYPED_ARGUMENT": 0x0212,
        "PROCESSING_FAILURE": 0x0110,
        "OUT_OF_RESOURCES": 0xA700,
        "OUT_OF_RESOURCES_MATCHES": 0xA701,
        "OUT_OF_RESOURCES_SUBOPERATIONS": 0xA702,
        "MOVE_DESTINATION_UNKNOWN": 0xA801,
        "IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS": 0xA900,
        "SUBOPERATIONS_WITH_FAILURES": 0xB000,
        "ELEMENTS_DISCARDED": 0xB006,
        "DATASET_DOES_NOT_MATCH_SOP_CLASS_WARNING": 0xB007,
        "UNABLE_TO_PROCESS": 0xC000,
        "MORE_THAN_ONE_MATCH": 0xC100,
        "UNABLE_TO_SUPPORT_TEMPLATE": 0xC200,
        "STATUS_DATASET_WITHOUT_STATUS": 0xC001,
        "INVALID_STATUS_OBJECT": 0xC002,
        "STORE_DECODE_FAILED": 0xC210,
        "STORE_HANDLER_FAILED": 0xC211,
        "FIND_DECODE_FAILED": 0xC310,
        "FIND_HANDLER_FAILED": 0xC311,
        "FIND_ENCODE_FAILED": 0xC312,
        "GET_DECODE_FAILED": 0xC410,
        "GET_HANDLER_FAILED": 0xC411,
        "GET_BAD_SUBOPERATION_COUNT": 0xC413,
        "MOVE_DECODE_FAILED": 0xC510,
        "MOVE_HANDLER_FAILED": 0xC511,
        "MOVE_BAD_SUBOPERATION_COUNT": 0xC513,
        "MOVE_NO_DESTINATION_OR_COUNT": 0xC514,
        "MOVE_BAD_DESTINATION": 0xC515,
    }
    assert {name: getattr(st, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("service", "codes"),
    [
        (Service.VERIFICATION, {0x0000, 0x0122, 0x0210, 0x0211, 0x0212}),
        (Service.STORAGE, {0x0000, 0x0117, 0x0122, 0x0124, 0x0210, 0x0211, 0x0212}),
        (Service.QR_FIND, {0x0000, 0x0122, 0xFE00}),
        (Service.QR_GET, {0x0000, 0x0122, 0x0124, 0xFE00, 0x0210, 0x0211, 0x0212}),
        (Service.QR_MOVE, {0x0000, 0x0122, 0x0124, 0xFE00, 0x0210, 0x0211, 0x0212}),
    ],
)
def test_general_codes_per_service(service: Service, codes: set[int]) -> None:
    table = st.TABLES[service]
    general = {code for code in table if code < 0x0300 or code == 0xFE00}
    assert general == codes


@pytest.mark.parametrize(
    ("service", "code", "expected"),
    [
        (Service.STORAGE, 0xA700, (F, "Refused: out of resources")),
        (Service.STORAGE, 0xA7FF, (F, "Refused: out of resources")),
        (Service.STORAGE, 0xA912, (F, "Error: data set does not match SOP Class")),
        (Service.STORAGE, 0xC123, (F, "Error: cannot understand")),
        (Service.STORAGE, 0xB007, (W, "Data set does not match SOP Class")),
        (Service.STORAGE, 0xC210, (F, "Cannot understand: the data set could not be decoded")),
        (Service.NON_PATIENT_STORAGE, 0xA700, (F, "Refused: out of resources")),
        (Service.QR_FIND, 0xFF01, st.QR_FIND_STATUSES.codes[0xFF01]),
        (Service.QR_FIND, 0xCABC, (F, "Unable to process")),
        (Service.QR_FIND, 0xC312, st.QR_FIND_STATUSES.codes[0xC312]),
        (Service.QR_MOVE, 0xA801, (F, "Refused: move destination unknown")),
        (Service.QR_MOVE, 0xB000, (W, "Sub-operations complete, one or more failures")),
        (Service.QR_GET, 0xB000, (W, "Sub-operations complete, one or more failures or warnings")),
        (Service.QR_GET, 0xAA04, (F, "Invalid request")),
        (Service.BASIC_WORKLIST, 0xA900, (F, "Error: identifier does not match SOP Class")),
        (Service.RELEVANT_PATIENT, 0xC100, (F, "Failed: more than one match found")),
        (Service.RELEVANT_PATIENT, 0xC200, (F, "Failed: unable to support requested template")),
        (Service.SUBSTANCE_ADMINISTRATION, 0xFF01, st.QR_FIND_STATUSES.codes[0xFF01]),
    ],
)
def test_service_specific_meanings(
    service: Service, code: int, expected: tuple[Category, str]
) -> None:
    assert st.TABLES[service][code] == expected
    assert lookup(code, service) == expected


def test_storage_ranges_and_library_codes_placement() -> None:
    assert 0xA750 in st.STORAGE_STATUSES
    assert 0xA800 not in st.STORAGE_STATUSES
    assert 0xC210 in st.STORAGE_STATUSES and 0xC210 not in st.QR_FIND_STATUSES.codes
    assert {0xC001, 0xC002, 0xC310, 0xC311, 0xC312} <= set(st.QR_FIND_STATUSES)
    assert {0xC001, 0xC002, 0xC410, 0xC411, 0xC413} <= set(st.QR_GET_STATUSES)
    assert {0xC001, 0xC002, 0xC510, 0xC511, 0xC513, 0xC514, 0xC515} <= set(st.QR_MOVE_STATUSES)
    assert 0xA801 not in st.QR_GET_STATUSES
    assert {code for table in st.TABLES.values() for code in table} >= st.LIBRARY_CODES


def test_table_mapping_semantics() -> None:
    table = st.QR_FIND_STATUSES
    assert 0xC777 in table
    assert 0xC777 not in list(table)
    assert len(table) == len(table.codes)
    assert (0xC000, 0xCFFF, F, "Unable to process") in list(table.rows())
    with pytest.raises(KeyError):
        table[0xD000]


def test_lookup_falls_back_to_general_then_class() -> None:
    assert lookup(0x0213, Service.VERIFICATION) == (F, "Resource limitation")
    assert lookup(0xB123, Service.VERIFICATION) == (W, "Warning")
    assert lookup(0xD000, Service.QR_FIND)[0] is U
    assert lookup(0xFF00, "Query/Retrieve - GET") == (P, "Sub-operations are continuing")


def test_describe() -> None:
    assert describe(0xA801, Service.QR_MOVE) == "0xA801 Failure: Refused: move destination unknown"
    assert describe(0x0000) == "0x0000 Success: Success"
    assert describe(0xFE01) == "0xFE01 Unknown: Unknown status (not a PS3.7 Annex C code)"
    assert describe(0xC311, Service.QR_FIND).startswith("0xC311 Failure: Unable to process:")
