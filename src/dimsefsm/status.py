"""DIMSE status codes as data: classes, per-service tables and named constants.

Every status the engine sends or interprets is named here, so charts refer to
``status.MOVE_DESTINATION_UNKNOWN`` rather than ``0xA801`` and the conformance
statement tables (PS3.2 Annex N) can be generated from the same rows.

Sources: PS3.7 Annex C (classes and general codes), PS3.4 B.2.3, C.4.1-C.4.3,
K.4.1.1.4, Q, V, GG (service tables), pynetdicom's documented library codes
(0xC001/0xC002, 0xC2xx-0xC5xx) kept with the same meaning so users can migrate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class Category(StrEnum):
    """Status class of PS3.7 Annex C; the strings match pynetdicom's category names."""

    SUCCESS = "Success"
    WARNING = "Warning"
    FAILURE = "Failure"
    CANCEL = "Cancel"
    PENDING = "Pending"
    UNKNOWN = "Unknown"


class Service(StrEnum):
    """The service whose status table gives a code its specific meaning."""

    GENERAL = "General"
    VERIFICATION = "Verification"
    STORAGE = "Storage"
    NON_PATIENT_STORAGE = "Non-Patient Object Storage"
    QR_FIND = "Query/Retrieve - FIND"
    QR_MOVE = "Query/Retrieve - MOVE"
    QR_GET = "Query/Retrieve - GET"
    BASIC_WORKLIST = "Basic Worklist Management"
    RELEVANT_PATIENT = "Relevant Patient Information Query"
    SUBSTANCE_ADMINISTRATION = "Substance Administration Query"
    N_EVENT_REPORT = "DIMSE-N N-EVENT-REPORT"
    N_GET = "DIMSE-N N-GET"
    N_SET = "DIMSE-N N-SET"
    N_ACTION = "DIMSE-N N-ACTION"
    N_CREATE = "DIMSE-N N-CREATE"
    N_DELETE = "DIMSE-N N-DELETE"


# -- named codes ----------------------------------------------------------------------
# General (PS3.7 Annex C.4, C.5)
SUCCESS: Final = 0x0000
OPTIONAL_ATTRIBUTES_NOT_SUPPORTED: Final = 0x0001
NO_SUCH_ATTRIBUTE: Final = 0x0105
INVALID_ATTRIBUTE_VALUE: Final = 0x0106
ATTRIBUTE_LIST_ERROR: Final = 0x0107
PROCESSING_FAILURE: Final = 0x0110
DUPLICATE_SOP_INSTANCE: Final = 0x0111
NO_SUCH_SOP_INSTANCE: Final = 0x0112
NO_SUCH_EVENT_TYPE: Final = 0x0113
NO_SUCH_ARGUMENT: Final = 0x0114
INVALID_ARGUMENT_VALUE: Final = 0x0115
ATTRIBUTE_VALUE_OUT_OF_RANGE: Final = 0x0116
INVALID_OBJECT_INSTANCE: Final = 0x0117
NO_SUCH_SOP_CLASS: Final = 0x0118
CLASS_INSTANCE_CONFLICT: Final = 0x0119
MISSING_ATTRIBUTE: Final = 0x0120
MISSING_ATTRIBUTE_VALUE: Final = 0x0121
SOP_CLASS_NOT_SUPPORTED: Final = 0x0122
NO_SUCH_ACTION: Final = 0x0123
NOT_AUTHORIZED: Final = 0x0124
DUPLICATE_INVOCATION: Final = 0x0210
UNRECOGNIZED_OPERATION: Final = 0x0211
MISTYPED_ARGUMENT: Final = 0x0212
RESOURCE_LIMITATION: Final = 0x0213
CANCEL: Final = 0xFE00
PENDING: Final = 0xFF00
PENDING_WARNING: Final = 0xFF01
"""C-FIND pending: one or more optional keys were not supported for this identifier."""

# Storage (PS3.4 Table B.2-1); the A7xx/A9xx/Cxxx ranges are meant as a whole
OUT_OF_RESOURCES: Final = 0xA700
DATASET_DOES_NOT_MATCH_SOP_CLASS: Final = 0xA900
CANNOT_UNDERSTAND: Final = 0xC000
COERCION_OF_DATA_ELEMENTS: Final = 0xB000
ELEMENTS_DISCARDED: Final = 0xB006
DATASET_DOES_NOT_MATCH_SOP_CLASS_WARNING: Final = 0xB007

# Query (PS3.4 C.4.1, C.6.4, K, Q, V)
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: Final = 0xA900
UNABLE_TO_PROCESS: Final = 0xC000
INVALID_PRIOR_RECORD_KEY: Final = 0xA710
RESPONSE_LIMIT_REACHED: Final = 0xB001
MORE_THAN_ONE_MATCH: Final = 0xC100
UNABLE_TO_SUPPORT_TEMPLATE: Final = 0xC200

# Retrieve (PS3.4 C.4.2, C.4.3, Y)
OUT_OF_RESOURCES_MATCHES: Final = 0xA701
OUT_OF_RESOURCES_SUBOPERATIONS: Final = 0xA702
MOVE_DESTINATION_UNKNOWN: Final = 0xA801
NO_FRAMES_FOUND: Final = 0xAA00
UNABLE_TO_CREATE_OBJECT: Final = 0xAA01
UNABLE_TO_EXTRACT_FRAMES: Final = 0xAA02
TIME_BASED_REQUEST_FOR_NON_TIME_BASED: Final = 0xAA03
INVALID_FRAME_REQUEST: Final = 0xAA04
SUBOPERATIONS_WITH_FAILURES: Final = 0xB000

# Library codes (pynetdicom meanings, inside the standard's Cxxx failure range)
STATUS_DATASET_WITHOUT_STATUS: Final = 0xC001
INVALID_STATUS_OBJECT: Final = 0xC002
STORE_DECODE_FAILED: Final = 0xC210
STORE_HANDLER_FAILED: Final = 0xC211
FIND_DECODE_FAILED: Final = 0xC310
FIND_HANDLER_FAILED: Final = 0xC311
FIND_ENCODE_FAILED: Final = 0xC312
GET_DECODE_FAILED: Final = 0xC410
GET_HANDLER_FAILED: Final = 0xC411
GET_BAD_SUBOPERATION_COUNT: Final = 0xC413
GET_TOO_MANY_MATCHES: Final = 0xC416
MOVE_DECODE_FAILED: Final = 0xC510
MOVE_HANDLER_FAILED: Final = 0xC511
MOVE_BAD_SUBOPERATION_COUNT: Final = 0xC513
MOVE_NO_DESTINATION_OR_COUNT: Final = 0xC514
MOVE_BAD_DESTINATION: Final = 0xC515
MOVE_TOO_MANY_MATCHES: Final = 0xC516


# -- classes ------------------------------------------------------------------------------
_WARNING_01XX: Final = frozenset(
    {OPTIONAL_ATTRIBUTES_NOT_SUPPORTED, ATTRIBUTE_LIST_ERROR, ATTRIBUTE_VALUE_OUT_OF_RANGE}
)


def category(code: int) -> Category:
    """Status class of PS3.7 Annex C; anything outside the listed classes is UNKNOWN."""
    if code == SUCCESS:
        return Category.SUCCESS
    high = code >> 12
    if high == 0xF:
        if code in (PENDING, PENDING_WARNING):
            return Category.PENDING
        if code == CANCEL:
            return Category.CANCEL
        return Category.UNKNOWN
    if high == 0xA or high == 0xC:
        return Category.FAILURE
    if high == 0xB:
        return Category.WARNING
    if code in _WARNING_01XX:
        return Category.WARNING
    if 0x0100 <= code <= 0x02FF:
        return Category.FAILURE
    return Category.UNKNOWN


def is_pending(code: int) -> bool:
    return code in (PENDING, PENDING_WARNING)


def is_final(code: int) -> bool:
    """Whether a response with this code ends its operation (unknown codes do too)."""
    return code not in (PENDING, PENDING_WARNING)


# -- tables ---------------------------------------------------------------------------------
StatusEntry = tuple[Category, str]


@dataclass(frozen=True, slots=True)
class StatusRange:
    first: int
    last: int
    category: Category
    description: str


@dataclass(frozen=True)
class StatusTable(Mapping[int, StatusEntry]):
    """One service's codes: explicit codes first, then whole ranges (e.g. C000-CFFF).

    Lookups (``table[code]``, ``code in table``) honour the ranges; iteration
    and ``len`` cover the explicit codes only, :meth:`rows` gives both in the
    order a conformance statement lists them.
    """

    service: Service
    codes: dict[int, StatusEntry]
    ranges: tuple[StatusRange, ...] = field(default=())

    def __getitem__(self, code: int) -> StatusEntry:
        entry = self.codes.get(code)
        if entry is not None:
            return entry
        for span in self.ranges:
            if span.first <= code <= span.last:
                return span.category, span.description
        raise KeyError(code)

    def __iter__(self) -> Iterator[int]:
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def rows(self) -> Iterator[tuple[int, int, Category, str]]:
        """``(first, last, category, description)`` rows; ``first == last`` for single codes."""
        for code, (cat, text) in self.codes.items():
            yield code, code, cat, text
        for span in self.ranges:
            yield span.first, span.last, span.category, span.description


_S, _W, _F, _C, _P = (
    Category.SUCCESS,
    Category.WARNING,
    Category.FAILURE,
    Category.CANCEL,
    Category.PENDING,
)

GENERAL_STATUSES: Final = StatusTable(
    Service.GENERAL,
    {
        SUCCESS: (_S, "Success"),
        OPTIONAL_ATTRIBUTES_NOT_SUPPORTED: (_W, "Requested optional attributes are not supported"),
        NO_SUCH_ATTRIBUTE: (_F, "No such attribute"),
        INVALID_ATTRIBUTE_VALUE: (_F, "Invalid attribute value"),
        ATTRIBUTE_LIST_ERROR: (_W, "Attribute list error"),
        PROCESSING_FAILURE: (_F, "Processing failure"),
        DUPLICATE_SOP_INSTANCE: (_F, "Duplicate SOP Instance"),
        NO_SUCH_SOP_INSTANCE: (_F, "No such SOP Instance"),
        NO_SUCH_EVENT_TYPE: (_F, "No such event type"),
        NO_SUCH_ARGUMENT: (_F, "No such argument"),
        INVALID_ARGUMENT_VALUE: (_F, "Invalid argument value"),
        ATTRIBUTE_VALUE_OUT_OF_RANGE: (_W, "Attribute value out of range"),
        INVALID_OBJECT_INSTANCE: (_F, "Invalid object instance"),
        NO_SUCH_SOP_CLASS: (_F, "No such SOP Class"),
        CLASS_INSTANCE_CONFLICT: (_F, "Class-instance conflict"),
        MISSING_ATTRIBUTE: (_F, "Missing attribute"),
        MISSING_ATTRIBUTE_VALUE: (_F, "Missing attribute value"),
        SOP_CLASS_NOT_SUPPORTED: (_F, "Refused: SOP Class not supported"),
        NO_SUCH_ACTION: (_F, "No such action"),
        NOT_AUTHORIZED: (_F, "Refused: not authorized"),
        DUPLICATE_INVOCATION: (_F, "Duplicate invocation"),
        UNRECOGNIZED_OPERATION: (_F, "Unrecognized operation"),
        MISTYPED_ARGUMENT: (_F, "Mistyped argument"),
        RESOURCE_LIMITATION: (_F, "Resource limitation"),
        CANCEL: (_C, "Cancel"),
    },
)


def _general(*codes: int) -> dict[int, StatusEntry]:
    """The general codes a service may return (DCMTK's per-service grouping)."""
    return {code: GENERAL_STATUSES.codes[code] for code in codes}


def _table(
    service: Service,
    general: dict[int, StatusEntry],
    specific: dict[int, StatusEntry],
    ranges: tuple[StatusRange, ...] = (),
) -> StatusTable:
    return StatusTable(service, {**general, **specific}, ranges)


_LIBRARY_COMMON: Final[dict[int, StatusEntry]] = {
    STATUS_DATASET_WITHOUT_STATUS: (
        _F,
        "Unable to process: the handler yielded a status data set without (0000,0900) Status",
    ),
    INVALID_STATUS_OBJECT: (_F, "Unable to process: the handler yielded an invalid status object"),
}

_UNABLE_TO_PROCESS = StatusRange(0xC000, 0xCFFF, _F, "Unable to process")
_QUERY_GENERAL = _general(SUCCESS, SOP_CLASS_NOT_SUPPORTED, CANCEL)
_QUERY_PENDING: Final[dict[int, StatusEntry]] = {
    PENDING: (
        _P,
        "Matches are continuing: current match supplied, optional keys supported like "
        "required keys",
    ),
    PENDING_WARNING: (
        _P,
        "Matches are continuing: one or more optional keys were not supported for this identifier",
    ),
}

VERIFICATION_STATUSES: Final = _table(
    Service.VERIFICATION,
    _general(
        SUCCESS,
        SOP_CLASS_NOT_SUPPORTED,
        DUPLICATE_INVOCATION,
        UNRECOGNIZED_OPERATION,
        MISTYPED_ARGUMENT,
    ),
    {},
)

_STORAGE_GENERAL = _general(
    SUCCESS,
    INVALID_OBJECT_INSTANCE,
    SOP_CLASS_NOT_SUPPORTED,
    NOT_AUTHORIZED,
    DUPLICATE_INVOCATION,
    UNRECOGNIZED_OPERATION,
    MISTYPED_ARGUMENT,
)

STORAGE_STATUSES: Final = _table(
    Service.STORAGE,
    _STORAGE_GENERAL,
    {
        COERCION_OF_DATA_ELEMENTS: (_W, "Coercion of data elements"),
        ELEMENTS_DISCARDED: (_W, "Elements discarded"),
        DATASET_DOES_NOT_MATCH_SOP_CLASS_WARNING: (_W, "Data set does not match SOP Class"),
        STORE_DECODE_FAILED: (_F, "Cannot understand: the data set could not be decoded"),
        STORE_HANDLER_FAILED: (_F, "Cannot understand: the storage handler raised an exception"),
    },
    (
        StatusRange(0xA700, 0xA7FF, _F, "Refused: out of resources"),
        StatusRange(0xA900, 0xA9FF, _F, "Error: data set does not match SOP Class"),
        StatusRange(0xC000, 0xCFFF, _F, "Error: cannot understand"),
    ),
)

NON_PATIENT_STORAGE_STATUSES: Final = _table(
    Service.NON_PATIENT_STORAGE,
    _STORAGE_GENERAL,
    {
        OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        DATASET_DOES_NOT_MATCH_SOP_CLASS: (_F, "Error: data set does not match SOP Class"),
        CANNOT_UNDERSTAND: (_F, "Error: cannot understand"),
    },
)

QR_FIND_STATUSES: Final = _table(
    Service.QR_FIND,
    _QUERY_GENERAL,
    {
        CANCEL: (_C, "Matching terminated due to cancel"),
        OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        INVALID_PRIOR_RECORD_KEY: (_F, "Refused: invalid Prior Record Key"),
        IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: (_F, "Error: identifier does not match SOP Class"),
        RESPONSE_LIMIT_REACHED: (
            _W,
            "Matching reached the response limit; a later query may return more matches",
        ),
        **_QUERY_PENDING,
        **_LIBRARY_COMMON,
        FIND_DECODE_FAILED: (_F, "Unable to process: the identifier could not be decoded"),
        FIND_HANDLER_FAILED: (_F, "Unable to process: the find handler raised an exception"),
        FIND_ENCODE_FAILED: (
            _F,
            "Unable to process: an identifier yielded by the find handler could not be encoded",
        ),
    },
    (_UNABLE_TO_PROCESS,),
)

_RETRIEVE_COMMON: Final[dict[int, StatusEntry]] = {
    OUT_OF_RESOURCES_MATCHES: (
        _F,
        "Refused: out of resources, unable to calculate number of matches",
    ),
    OUT_OF_RESOURCES_SUBOPERATIONS: (
        _F,
        "Refused: out of resources, unable to perform sub-operations",
    ),
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: (_F, "Error: identifier does not match SOP Class"),
    NO_FRAMES_FOUND: (_F, "None of the frames requested were found in the SOP Instance"),
    UNABLE_TO_CREATE_OBJECT: (_F, "Unable to create new object for this SOP Class"),
    UNABLE_TO_EXTRACT_FRAMES: (_F, "Unable to extract frames"),
    TIME_BASED_REQUEST_FOR_NON_TIME_BASED: (
        _F,
        "Time-based request received for a non-time-based original SOP Instance",
    ),
    INVALID_FRAME_REQUEST: (_F, "Invalid request"),
    PENDING: (_P, "Sub-operations are continuing"),
    **_LIBRARY_COMMON,
}
_RETRIEVE_GENERAL = _general(
    SUCCESS,
    SOP_CLASS_NOT_SUPPORTED,
    NOT_AUTHORIZED,
    DUPLICATE_INVOCATION,
    UNRECOGNIZED_OPERATION,
    MISTYPED_ARGUMENT,
    CANCEL,
)
_SUBOPS_SUCCESS = (_S, "Sub-operations complete, no failures")
_SUBOPS_CANCEL = (_C, "Sub-operations terminated due to cancel")

QR_MOVE_STATUSES: Final = _table(
    Service.QR_MOVE,
    {**_RETRIEVE_GENERAL, SUCCESS: _SUBOPS_SUCCESS, CANCEL: _SUBOPS_CANCEL},
    {
        **_RETRIEVE_COMMON,
        MOVE_DESTINATION_UNKNOWN: (_F, "Refused: move destination unknown"),
        SUBOPERATIONS_WITH_FAILURES: (_W, "Sub-operations complete, one or more failures"),
        MOVE_DECODE_FAILED: (_F, "Unable to process: the identifier could not be decoded"),
        MOVE_HANDLER_FAILED: (_F, "Unable to process: the move handler raised an exception"),
        MOVE_BAD_SUBOPERATION_COUNT: (
            _F,
            "Unable to process: the move handler yielded an invalid number of sub-operations",
        ),
        MOVE_NO_DESTINATION_OR_COUNT: (
            _F,
            "Unable to process: the move handler failed to yield the (address, port) and/or "
            "the number of sub-operations",
        ),
        MOVE_BAD_DESTINATION: (
            _F,
            "Unable to process: the move handler yielded an invalid (address, port) pair",
        ),
        MOVE_TOO_MANY_MATCHES: (
            _F,
            "Unable to process: more than 65535 sub-operations",
        ),
    },
    (_UNABLE_TO_PROCESS,),
)

QR_GET_STATUSES: Final = _table(
    Service.QR_GET,
    {**_RETRIEVE_GENERAL, SUCCESS: _SUBOPS_SUCCESS, CANCEL: _SUBOPS_CANCEL},
    {
        **_RETRIEVE_COMMON,
        SUBOPERATIONS_WITH_FAILURES: (
            _W,
            "Sub-operations complete, one or more failures or warnings",
        ),
        GET_DECODE_FAILED: (_F, "Unable to process: the identifier could not be decoded"),
        GET_HANDLER_FAILED: (_F, "Unable to process: the get handler raised an exception"),
        GET_BAD_SUBOPERATION_COUNT: (
            _F,
            "Unable to process: the get handler yielded an invalid number of sub-operations",
        ),
        GET_TOO_MANY_MATCHES: (_F, "Unable to process: more than 65535 sub-operations"),
    },
    (_UNABLE_TO_PROCESS,),
)

BASIC_WORKLIST_STATUSES: Final = _table(
    Service.BASIC_WORKLIST,
    _QUERY_GENERAL,
    {
        OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: (_F, "Error: identifier does not match SOP Class"),
        **_QUERY_PENDING,
    },
    (_UNABLE_TO_PROCESS,),
)

RELEVANT_PATIENT_STATUSES: Final = _table(
    Service.RELEVANT_PATIENT,
    _QUERY_GENERAL,
    {
        OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: (_F, "Error: identifier does not match SOP Class"),
        UNABLE_TO_PROCESS: (_F, "Failed: unable to process"),
        MORE_THAN_ONE_MATCH: (_F, "Failed: more than one match found"),
        UNABLE_TO_SUPPORT_TEMPLATE: (_F, "Failed: unable to support requested template"),
        PENDING: (_P, "Pending: current match is supplied"),
    },
)

SUBSTANCE_ADMINISTRATION_STATUSES: Final = _table(
    Service.SUBSTANCE_ADMINISTRATION,
    _QUERY_GENERAL,
    {
        OUT_OF_RESOURCES: (_F, "Refused: out of resources"),
        IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: (_F, "Error: data set does not match SOP Class"),
        **_QUERY_PENDING,
    },
    (_UNABLE_TO_PROCESS,),
)

# -- DIMSE-N (PS3.7 10.1.1-10.1.6: the statuses each N response may carry) ---------------
NAMES: Final[dict[int, str]] = {
    NO_SUCH_ATTRIBUTE: "no_such_attribute",
    INVALID_ATTRIBUTE_VALUE: "invalid_attribute_value",
    ATTRIBUTE_LIST_ERROR: "attribute_list_error",
    PROCESSING_FAILURE: "processing_failure",
    DUPLICATE_SOP_INSTANCE: "duplicate_sop_instance",
    NO_SUCH_SOP_INSTANCE: "no_such_sop_instance",
    NO_SUCH_EVENT_TYPE: "no_such_event_type",
    NO_SUCH_ARGUMENT: "no_such_argument",
    INVALID_ARGUMENT_VALUE: "invalid_argument_value",
    ATTRIBUTE_VALUE_OUT_OF_RANGE: "attribute_value_out_of_range",
    INVALID_OBJECT_INSTANCE: "invalid_object_instance",
    NO_SUCH_SOP_CLASS: "no_such_sop_class",
    CLASS_INSTANCE_CONFLICT: "class_instance_conflict",
    MISSING_ATTRIBUTE: "missing_attribute",
    MISSING_ATTRIBUTE_VALUE: "missing_attribute_value",
    NO_SUCH_ACTION: "no_such_action",
    NOT_AUTHORIZED: "not_authorized",
    DUPLICATE_INVOCATION: "duplicate_invocation",
    UNRECOGNIZED_OPERATION: "unrecognized_operation",
    MISTYPED_ARGUMENT: "mistyped_argument",
    RESOURCE_LIMITATION: "resource_limitation",
}
"""Snake-case names of the general codes: the named transitions of the DIMSE-N charts."""

_N_COMMON = (
    PROCESSING_FAILURE,
    NO_SUCH_SOP_CLASS,
    INVALID_OBJECT_INSTANCE,
    DUPLICATE_INVOCATION,
    UNRECOGNIZED_OPERATION,
    MISTYPED_ARGUMENT,
    RESOURCE_LIMITATION,
)
N_OPERATION_CODES: Final[dict[Service, tuple[int, ...]]] = {
    Service.N_EVENT_REPORT: (
        *_N_COMMON,
        NO_SUCH_SOP_INSTANCE,
        NO_SUCH_EVENT_TYPE,
        NO_SUCH_ARGUMENT,
        INVALID_ARGUMENT_VALUE,
        CLASS_INSTANCE_CONFLICT,
    ),
    Service.N_GET: (
        *_N_COMMON,
        ATTRIBUTE_LIST_ERROR,
        NO_SUCH_SOP_INSTANCE,
        CLASS_INSTANCE_CONFLICT,
        NOT_AUTHORIZED,
    ),
    Service.N_SET: (
        *_N_COMMON,
        NO_SUCH_ATTRIBUTE,
        INVALID_ATTRIBUTE_VALUE,
        ATTRIBUTE_VALUE_OUT_OF_RANGE,
        NO_SUCH_SOP_INSTANCE,
        CLASS_INSTANCE_CONFLICT,
        MISSING_ATTRIBUTE_VALUE,
        NOT_AUTHORIZED,
    ),
    Service.N_ACTION: (
        *_N_COMMON,
        NO_SUCH_SOP_INSTANCE,
        NO_SUCH_ARGUMENT,
        INVALID_ARGUMENT_VALUE,
        CLASS_INSTANCE_CONFLICT,
        NO_SUCH_ACTION,
        NOT_AUTHORIZED,
    ),
    Service.N_CREATE: (
        *_N_COMMON,
        NO_SUCH_ATTRIBUTE,
        INVALID_ATTRIBUTE_VALUE,
        ATTRIBUTE_LIST_ERROR,
        DUPLICATE_SOP_INSTANCE,
        ATTRIBUTE_VALUE_OUT_OF_RANGE,
        MISSING_ATTRIBUTE,
        MISSING_ATTRIBUTE_VALUE,
        NOT_AUTHORIZED,
    ),
    Service.N_DELETE: (
        *_N_COMMON,
        NO_SUCH_SOP_INSTANCE,
        CLASS_INSTANCE_CONFLICT,
        NOT_AUTHORIZED,
    ),
}
"""The general codes PS3.7 lists for each N response, in PS3.7's order of concern."""

_N_LIBRARY = {**_LIBRARY_COMMON}
N_STATUS_TABLES: Final[dict[Service, StatusTable]] = {
    service: _table(service, _general(SUCCESS, *sorted(codes)), _N_LIBRARY)
    for service, codes in N_OPERATION_CODES.items()
}

TABLES: Final[dict[Service, StatusTable]] = {
    table.service: table
    for table in (
        GENERAL_STATUSES,
        VERIFICATION_STATUSES,
        STORAGE_STATUSES,
        NON_PATIENT_STORAGE_STATUSES,
        QR_FIND_STATUSES,
        QR_MOVE_STATUSES,
        QR_GET_STATUSES,
        BASIC_WORKLIST_STATUSES,
        RELEVANT_PATIENT_STATUSES,
        SUBSTANCE_ADMINISTRATION_STATUSES,
        *N_STATUS_TABLES.values(),
    )
}

LIBRARY_CODES: Final[frozenset[int]] = frozenset(
    {
        STATUS_DATASET_WITHOUT_STATUS,
        INVALID_STATUS_OBJECT,
        STORE_DECODE_FAILED,
        STORE_HANDLER_FAILED,
        FIND_DECODE_FAILED,
        FIND_HANDLER_FAILED,
        FIND_ENCODE_FAILED,
        GET_DECODE_FAILED,
        GET_HANDLER_FAILED,
        GET_BAD_SUBOPERATION_COUNT,
        GET_TOO_MANY_MATCHES,
        MOVE_DECODE_FAILED,
        MOVE_HANDLER_FAILED,
        MOVE_BAD_SUBOPERATION_COUNT,
        MOVE_NO_DESTINATION_OR_COUNT,
        MOVE_BAD_DESTINATION,
        MOVE_TOO_MANY_MATCHES,
    }
)
"""Codes this library (like pynetdicom) assigns inside the Cxxx range to say what went wrong."""

_FALLBACK_TEXT: Final[dict[Category, str]] = {
    Category.SUCCESS: "Success",
    Category.WARNING: "Warning",
    Category.FAILURE: "Failure",
    Category.CANCEL: "Cancel",
    Category.PENDING: "Pending",
    Category.UNKNOWN: "Unknown status (not a PS3.7 Annex C code)",
}


def lookup(code: int, service: Service | str = Service.GENERAL) -> StatusEntry:
    """Category and meaning of ``code`` for ``service``, falling back to the general table.

    A code no table lists still gets its Annex C class, so an SCU can always
    decide between "continue" and "done" (PS3.2 N.7 "other status codes").
    """
    table = TABLES[Service(service)]
    entry = table.get(code)
    if entry is None:
        entry = GENERAL_STATUSES.get(code)
    if entry is None:
        cat = category(code)
        entry = (cat, _FALLBACK_TEXT[cat])
    return entry


def describe(code: int, service: Service | str = Service.GENERAL) -> str:
    """Human-readable meaning of ``code`` in ``service`` for logs and error messages."""
    cat, text = lookup(code, service)
    return f"0x{code:04X} {cat.value}: {text}"
