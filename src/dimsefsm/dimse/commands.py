"""DIMSE command sets: group-0000 elements as a plain ``dict`` keyword -> value.

A command set is always Implicit VR Little Endian, in ascending tag order,
with (0000,0000) CommandGroupLength first (PS3.7 6.3.1).  It is encoded and
decoded here with precomputed ``struct`` formats instead of pydicom because
it is touched once per message on the hot path and only ever holds a couple
of dozen fixed elements.

Values: ``int`` for US/UL, ``str`` for UI/AE/LO/CS (and the retired text VRs),
``tuple[int, ...]`` of ``0xGGGGEEEE`` tags for AT.  CommandGroupLength is an
encoding detail: it is computed by :func:`encode_command` and checked and
dropped by :func:`decode_command`, so ``encode(decode(b)) == b`` for a
canonical command set.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, Final, NamedTuple

from dimsefsm.dimse.errors import CommandEncodeError, CommandError
from dimsefsm.status import SUCCESS, is_pending

# -- constants ------------------------------------------------------------------
NO_DATASET: Final = 0x0101
"""CommandDataSetType meaning "no data set"; every other value means one follows."""
DATASET_PRESENT: Final = 0x0001
"""What we send when a data set follows (as pynetdicom and DCMTK do)."""
RESPONSE_BIT: Final = 0x8000
VERIFICATION_SOP_CLASS: Final = "1.2.840.10008.1.1"


class CommandField(IntEnum):
    """(0000,0100) values, PS3.7 Annex E; a response is its request | 0x8000."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150
    C_CANCEL_RQ = 0x0FFF


class Priority(IntEnum):
    """(0000,0700) values."""

    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


# -- the group-0000 dictionary ------------------------------------------------------
class CommandElement(NamedTuple):
    tag: int
    keyword: str
    vr: str
    vm: str
    retired: bool


def _element(
    elem: int, keyword: str, vr: str, vm: str = "1", retired: bool = False
) -> CommandElement:
    return CommandElement(elem, keyword, vr, vm, retired)


COMMAND_ELEMENTS: Final[tuple[CommandElement, ...]] = (
    _element(0x0000, "CommandGroupLength", "UL"),
    _element(0x0001, "CommandLengthToEnd", "UL", retired=True),
    _element(0x0002, "AffectedSOPClassUID", "UI"),
    _element(0x0003, "RequestedSOPClassUID", "UI"),
    _element(0x0010, "CommandRecognitionCode", "SH", retired=True),
    _element(0x0100, "CommandField", "US"),
    _element(0x0110, "MessageID", "US"),
    _element(0x0120, "MessageIDBeingRespondedTo", "US"),
    _element(0x0200, "Initiator", "AE", retired=True),
    _element(0x0300, "Receiver", "AE", retired=True),
    _element(0x0400, "FindLocation", "AE", retired=True),
    _element(0x0600, "MoveDestination", "AE"),
    _element(0x0700, "Priority", "US"),
    _element(0x0800, "CommandDataSetType", "US"),
    _element(0x0850, "NumberOfMatches", "US", retired=True),
    _element(0x0860, "ResponseSequenceNumber", "US", retired=True),
    _element(0x0900, "Status", "US"),
    _element(0x0901, "OffendingElement", "AT", "1-n"),
    _element(0x0902, "ErrorComment", "LO"),
    _element(0x0903, "ErrorID", "US"),
    _element(0x1000, "AffectedSOPInstanceUID", "UI"),
    _element(0x1001, "RequestedSOPInstanceUID", "UI"),
    _element(0x1002, "EventTypeID", "US"),
    _element(0x1005, "AttributeIdentifierList", "AT", "1-n"),
    _element(0x1008, "ActionTypeID", "US"),
    _element(0x1020, "NumberOfRemainingSuboperations", "US"),
    _element(0x1021, "NumberOfCompletedSuboperations", "US"),
    _element(0x1022, "NumberOfFailedSuboperations", "US"),
    _element(0x1023, "NumberOfWarningSuboperations", "US"),
    _element(0x1030, "MoveOriginatorApplicationEntityTitle", "AE"),
    _element(0x1031, "MoveOriginatorMessageID", "US"),
    _element(0x4000, "DialogReceiver", "LT", retired=True),
    _element(0x4010, "TerminalType", "LT", retired=True),
    _element(0x5010, "MessageSetID", "SH", retired=True),
    _element(0x5020, "EndMessageID", "SH", retired=True),
    _element(0x5110, "DisplayFormat", "LT", retired=True),
    _element(0x5120, "PagePositionID", "LT", retired=True),
    _element(0x5130, "TextFormatID", "CS", retired=True),
    _element(0x5140, "NormalReverse", "CS", retired=True),
    _element(0x5150, "AddGrayScale", "CS", retired=True),
    _element(0x5160, "Borders", "CS", retired=True),
    _element(0x5170, "Copies", "IS", retired=True),
    _element(0x5180, "CommandMagnificationType", "CS", retired=True),
    _element(0x5190, "Erase", "CS", retired=True),
    _element(0x51A0, "Print", "CS", retired=True),
    _element(0x51B0, "Overlays", "US", "1-n", retired=True),
)
BY_KEYWORD: Final[dict[str, CommandElement]] = {e.keyword: e for e in COMMAND_ELEMENTS}
BY_TAG: Final[dict[int, CommandElement]] = {e.tag: e for e in COMMAND_ELEMENTS}

# Maximum value lengths (PS3.5 Table 6.2-1) for the VRs we encode.
_MAX_CHARS: Final = {"UI": 64, "AE": 16, "LO": 64, "CS": 16}

# -- encoding -----------------------------------------------------------------------
_HEADER = struct.Struct("<HHI")
_US_ELEMENT = struct.Struct("<HHIH")
_UL_ELEMENT = struct.Struct("<HHII")

Encoder = Callable[[Any], bytes]


def _us_encoder(elem: int) -> Encoder:
    pack = _US_ELEMENT.pack

    def encode(value: int) -> bytes:
        return pack(0, elem, 2, value)

    return encode


def _ul_encoder(elem: int) -> Encoder:
    pack = _UL_ELEMENT.pack

    def encode(value: int) -> bytes:
        return pack(0, elem, 4, value)

    return encode


def _at_encoder(elem: int) -> Encoder:
    def encode(value: int | tuple[int, ...]) -> bytes:
        tags = (value,) if isinstance(value, int) else tuple(value)
        halves: list[int] = []
        for tag in tags:
            halves += (tag >> 16, tag & 0xFFFF)
        return _HEADER.pack(0, elem, 4 * len(tags)) + struct.pack(f"<{len(halves)}H", *halves)

    return encode


def _text_encoder(elem: int, vr: str) -> Encoder:
    pad = b"\0" if vr == "UI" else b" "
    limit = _MAX_CHARS[vr]
    # ErrorComment is free text often built from an exception message: a
    # failure response must still go out, so it is squeezed into LO rather
    # than refused.  UIDs and AE titles that do not fit are caller bugs.
    lenient = vr == "LO"

    def encode(value: str) -> bytes:
        if not isinstance(value, str):
            raise CommandEncodeError(f"{vr} value must be str, not {type(value).__name__}")
        if lenient:
            # Free text must stay one value: a backslash would split it (VM > 1).
            raw = value[:limit].replace("\\", "/").encode("ascii", "replace")
        else:
            raw = value.encode("ascii")
            if len(raw) > limit:
                raise CommandEncodeError(f"{vr} value longer than {limit} characters: {value!r}")
        if len(raw) & 1:
            raw += pad
        return _HEADER.pack(0, elem, len(raw)) + raw

    return encode


def _make_encoder(element: CommandElement) -> Encoder:
    if element.vr == "US":
        return _us_encoder(element.tag)
    if element.vr == "UL":
        return _ul_encoder(element.tag)
    if element.vr == "AT":
        return _at_encoder(element.tag)
    return _text_encoder(element.tag, element.vr)


_ENCODERS: Final[dict[str, tuple[int, Encoder]]] = {
    e.keyword: (e.tag, _make_encoder(e))
    for e in COMMAND_ELEMENTS
    if not e.retired and e.keyword != "CommandGroupLength"
}


def _tag_of(item: tuple[int, str, Encoder, Any]) -> int:
    return item[0]


def encode_command(fields: Mapping[str, Any]) -> bytes:
    """Encode a command set; ``None`` values are left out, CommandGroupLength is computed."""
    items: list[tuple[int, str, Encoder, Any]] = []
    for keyword, value in fields.items():
        if value is None or keyword == "CommandGroupLength":
            continue
        try:
            tag, encoder = _ENCODERS[keyword]
        except KeyError:
            reason = "retired" if keyword in BY_KEYWORD else "not a command element"
            raise CommandEncodeError(f"{keyword!r} cannot be encoded: {reason}") from None
        items.append((tag, keyword, encoder, value))
    items.sort(key=_tag_of)
    parts: list[bytes] = [b""]
    length = 0
    for _, keyword, encoder, value in items:
        try:
            part = encoder(value)
        except CommandEncodeError as exc:
            raise CommandEncodeError(f"{keyword}: {exc}") from exc
        except (struct.error, TypeError, ValueError) as exc:
            raise CommandEncodeError(f"{keyword}: invalid value {value!r}: {exc}") from exc
        parts.append(part)
        length += len(part)
    parts[0] = _UL_ELEMENT.pack(0, 0, 4, length)
    return b"".join(parts)


# -- decoding -----------------------------------------------------------------------
Decoder = Callable[[bytes, int, int], Any]
_US = struct.Struct("<H")
_UL = struct.Struct("<I")


def _decode_us(data: bytes, offset: int, length: int) -> int | None:
    if length == 2:
        return int(_US.unpack_from(data, offset)[0])
    if length == 0:
        return None
    raise CommandError(f"US value of {length} bytes")


def _decode_us_multi(data: bytes, offset: int, length: int) -> tuple[int, ...]:
    return struct.unpack_from(f"<{length // 2}H", data, offset)


def _decode_ul(data: bytes, offset: int, length: int) -> int | None:
    if length == 4:
        return int(_UL.unpack_from(data, offset)[0])
    if length == 0:
        return None
    raise CommandError(f"UL value of {length} bytes")


def _decode_at(data: bytes, offset: int, length: int) -> tuple[int, ...]:
    if length % 4:
        raise CommandError(f"AT value of {length} bytes")
    halves = struct.unpack_from(f"<{length // 2}H", data, offset)
    return tuple((halves[i] << 16) | halves[i + 1] for i in range(0, len(halves), 2))


def _decode_uid(data: bytes, offset: int, length: int) -> str:
    # Peers pad UIDs with NUL as required, some with a space: accept both.
    return data[offset : offset + length].rstrip(b"\0 ").decode("latin-1")


def _decode_text(data: bytes, offset: int, length: int) -> str:
    # Leading and trailing spaces are insignificant for AE/LO/CS/SH/IS.
    return data[offset : offset + length].strip(b" \0").decode("latin-1")


def _decode_long_text(data: bytes, offset: int, length: int) -> str:
    return data[offset : offset + length].rstrip(b" \0").decode("latin-1")


def _make_decoder(element: CommandElement) -> Decoder:
    if element.vr == "US":
        return _decode_us if element.vm == "1" else _decode_us_multi
    if element.vr == "UL":
        return _decode_ul
    if element.vr == "AT":
        return _decode_at
    if element.vr == "UI":
        return _decode_uid
    if element.vr == "LT":
        return _decode_long_text
    return _decode_text


_DECODERS: Final[dict[int, tuple[str, Decoder]]] = {
    e.tag: (e.keyword, _make_decoder(e)) for e in COMMAND_ELEMENTS
}


def decode_command(data: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Decode a command set strictly; unknown group-0000 elements keep their raw bytes.

    Unknown elements appear under keys like ``"(0000,4321)"``.  Raises
    :class:`CommandError` on anything that is not a well-formed command set,
    because a peer that cannot encode a command cannot be trusted with the
    rest of the association either.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    size = len(data)
    if size & 1:
        raise CommandError(f"command set of odd length {size}")
    fields: dict[str, Any] = {}
    offset = 0
    previous = -1
    unpack_header = _HEADER.unpack_from
    while offset < size:
        if offset + 8 > size:
            raise CommandError(f"truncated element header at offset {offset}")
        group, elem, length = unpack_header(data, offset)
        if group != 0:
            raise CommandError(f"({group:04X},{elem:04X}) is not a command element")
        if elem <= previous:
            order = "duplicate" if elem == previous else "out of order"
            raise CommandError(f"(0000,{elem:04X}) {order}")
        previous = elem
        offset += 8
        end = offset + length
        if end > size:
            raise CommandError(f"(0000,{elem:04X}) value of {length} bytes overruns the command")
        if length & 1:
            raise CommandError(f"(0000,{elem:04X}) has odd length {length}")
        spec = _DECODERS.get(elem)
        if spec is None:
            fields[f"(0000,{elem:04X})"] = data[offset:end]
        else:
            keyword, decoder = spec
            try:
                fields[keyword] = decoder(data, offset, length)
            except CommandError as exc:
                raise CommandError(f"{keyword}: {exc}") from None
        offset = end
    group_length = fields.pop("CommandGroupLength", None)
    if group_length is not None and group_length != size - 12:
        raise CommandError(f"CommandGroupLength {group_length} but {size - 12} bytes follow it")
    return fields


# -- validation ---------------------------------------------------------------------------
_REQUEST_BASE = ("AffectedSOPClassUID", "MessageID")
_RESPONSE_BASE = ("MessageIDBeingRespondedTo",)
_COUNTS = (
    "NumberOfRemainingSuboperations",
    "NumberOfCompletedSuboperations",
    "NumberOfFailedSuboperations",
    "NumberOfWarningSuboperations",
)
# Mandatory fields besides CommandField, in tag order (PS3.7 9.3 and 9.1 tables).
_MANDATORY: Final[dict[int, tuple[str, ...]]] = {
    CommandField.C_ECHO_RQ: (*_REQUEST_BASE, "CommandDataSetType"),
    CommandField.C_ECHO_RSP: (*_RESPONSE_BASE, "CommandDataSetType", "Status"),
    CommandField.C_STORE_RQ: (
        *_REQUEST_BASE,
        "Priority",
        "CommandDataSetType",
        "AffectedSOPInstanceUID",
    ),
    CommandField.C_STORE_RSP: (*_RESPONSE_BASE, "CommandDataSetType", "Status"),
    CommandField.C_FIND_RQ: (*_REQUEST_BASE, "Priority", "CommandDataSetType"),
    CommandField.C_FIND_RSP: (*_RESPONSE_BASE, "CommandDataSetType", "Status"),
    CommandField.C_GET_RQ: (*_REQUEST_BASE, "Priority", "CommandDataSetType"),
    CommandField.C_GET_RSP: (*_RESPONSE_BASE, "CommandDataSetType", "Status"),
    CommandField.C_MOVE_RQ: (
        *_REQUEST_BASE,
        "MoveDestination",
        "Priority",
        "CommandDataSetType",
    ),
    CommandField.C_MOVE_RSP: (*_RESPONSE_BASE, "CommandDataSetType", "Status"),
    CommandField.C_CANCEL_RQ: (*_RESPONSE_BASE, "CommandDataSetType"),
    # DIMSE-N (PS3.7 10.3): requests name the instance they act on; responses need only
    # their status (the UIDs are U(=) or C).
    CommandField.N_EVENT_REPORT_RQ: (
        *_REQUEST_BASE,
        "CommandDataSetType",
        "AffectedSOPInstanceUID",
        "EventTypeID",
    ),
    CommandField.N_GET_RQ: (
        "RequestedSOPClassUID",
        "MessageID",
        "CommandDataSetType",
        "RequestedSOPInstanceUID",
    ),
    CommandField.N_SET_RQ: (
        "RequestedSOPClassUID",
        "MessageID",
        "CommandDataSetType",
        "RequestedSOPInstanceUID",
    ),
    CommandField.N_ACTION_RQ: (
        "RequestedSOPClassUID",
        "MessageID",
        "CommandDataSetType",
        "RequestedSOPInstanceUID",
        "ActionTypeID",
    ),
    CommandField.N_CREATE_RQ: (*_REQUEST_BASE, "CommandDataSetType"),
    CommandField.N_DELETE_RQ: (
        "RequestedSOPClassUID",
        "MessageID",
        "CommandDataSetType",
        "RequestedSOPInstanceUID",
    ),
    **{
        field: (*_RESPONSE_BASE, "CommandDataSetType", "Status")
        for field in (
            CommandField.N_EVENT_REPORT_RSP,
            CommandField.N_GET_RSP,
            CommandField.N_SET_RSP,
            CommandField.N_ACTION_RSP,
            CommandField.N_CREATE_RSP,
            CommandField.N_DELETE_RSP,
        )
    },
}


def missing_fields(fields: Mapping[str, Any]) -> list[str]:
    """Mandatory (and applicable conditional) fields absent for this CommandField.

    Conditional rules checked: the four sub-operation counts of a Pending
    C-GET/C-MOVE response (PS3.4 C.4.2.1.6) and the MoveOriginator pair of a
    C-STORE-RQ (one without the other cannot be correlated).  A message type
    without a table here only needs CommandDataSetType.
    """
    command_field = fields.get("CommandField")
    if command_field is None:
        return ["CommandField"]
    required = _MANDATORY.get(command_field, ("CommandDataSetType",))
    missing = [keyword for keyword in required if fields.get(keyword) is None]
    if command_field in (CommandField.C_GET_RSP, CommandField.C_MOVE_RSP):
        status = fields.get("Status")
        if status is not None and is_pending(status):
            missing += [keyword for keyword in _COUNTS if fields.get(keyword) is None]
    elif command_field == CommandField.C_STORE_RQ:
        originator_ae = fields.get("MoveOriginatorApplicationEntityTitle")
        originator_id = fields.get("MoveOriginatorMessageID")
        if originator_ae is None and originator_id is not None:
            missing.append("MoveOriginatorApplicationEntityTitle")
        elif originator_id is None and originator_ae is not None:
            missing.append("MoveOriginatorMessageID")
    return missing


# -- builders used by the services ------------------------------------------------------
def _data_set_type(present: bool) -> int:
    return DATASET_PRESENT if present else NO_DATASET


def _status_fields(
    status: int,
    offending_element: tuple[int, ...] | None,
    error_comment: str | None,
    error_id: int | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {"Status": status}
    if offending_element is not None:
        fields["OffendingElement"] = offending_element
    if error_comment is not None:
        fields["ErrorComment"] = error_comment
    if error_id is not None:
        fields["ErrorID"] = error_id
    return fields


def echo_rq(message_id: int, sop_class_uid: str = VERIFICATION_SOP_CLASS) -> dict[str, Any]:
    return {
        "AffectedSOPClassUID": sop_class_uid,
        "CommandField": CommandField.C_ECHO_RQ,
        "MessageID": message_id,
        "CommandDataSetType": NO_DATASET,
    }


def echo_rsp(
    message_id_being_responded_to: int,
    status: int = SUCCESS,
    *,
    sop_class_uid: str | None = VERIFICATION_SOP_CLASS,
    error_comment: str | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "CommandField": CommandField.C_ECHO_RSP,
        "MessageIDBeingRespondedTo": message_id_being_responded_to,
        "CommandDataSetType": NO_DATASET,
    }
    if sop_class_uid is not None:
        fields["AffectedSOPClassUID"] = sop_class_uid
    fields.update(_status_fields(status, None, error_comment, None))
    return fields


def store_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    *,
    priority: int = Priority.MEDIUM,
    move_originator_ae: str | None = None,
    move_originator_message_id: int | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "AffectedSOPClassUID": sop_class_uid,
        "CommandField": CommandField.C_STORE_RQ,
        "MessageID": message_id,
        "Priority": priority,
        "CommandDataSetType": DATASET_PRESENT,
        "AffectedSOPInstanceUID": sop_instance_uid,
    }
    if move_originator_ae is not None:
        fields["MoveOriginatorApplicationEntityTitle"] = move_originator_ae
    if move_originator_message_id is not None:
        fields["MoveOriginatorMessageID"] = move_originator_message_id
    return fields


def store_rsp(
    message_id_being_responded_to: int,
    status: int,
    *,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
    offending_element: tuple[int, ...] | None = None,
    error_comment: str | None = None,
    error_id: int | None = None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "CommandField": CommandField.C_STORE_RSP,
        "MessageIDBeingRespondedTo": message_id_being_responded_to,
        "CommandDataSetType": NO_DATASET,
    }
    if sop_class_uid is not None:
        fields["AffectedSOPClassUID"] = sop_class_uid
    if sop_instance_uid is not None:
        fields["AffectedSOPInstanceUID"] = sop_instance_uid
    fields.update(_status_fields(status, offending_element, error_comment, error_id))
    return fields


def _query_rq(
    command_field: CommandField, message_id: int, sop_class_uid: str, priority: int
) -> dict[str, Any]:
    return {
        "AffectedSOPClassUID": sop_class_uid,
        "CommandField": command_field,
        "MessageID": message_id,
        "Priority": priority,
        "CommandDataSetType": DATASET_PRESENT,
    }


def find_rq(
    message_id: int, sop_class_uid: str, *, priority: int = Priority.MEDIUM
) -> dict[str, Any]:
    return _query_rq(CommandField.C_FIND_RQ, message_id, sop_class_uid, priority)


def get_rq(
    message_id: int, sop_class_uid: str, *, priority: int = Priority.MEDIUM
) -> dict[str, Any]:
    return _query_rq(CommandField.C_GET_RQ, message_id, sop_class_uid, priority)


def move_rq(
    message_id: int,
    sop_class_uid: str,
    move_destination: str,
    *,
    priority: int = Priority.MEDIUM,
) -> dict[str, Any]:
    fields = _query_rq(CommandField.C_MOVE_RQ, message_id, sop_class_uid, priority)
    fields["MoveDestination"] = move_destination
    return fields


def find_rsp(
    message_id_being_responded_to: int,
    status: int,
    *,
    sop_class_uid: str | None = None,
    has_identifier: bool | None = None,
    offending_element: tuple[int, ...] | None = None,
    error_comment: str | None = None,
    error_id: int | None = None,
) -> dict[str, Any]:
    """``has_identifier`` defaults to "status is Pending": only pending responses carry one."""
    if has_identifier is None:
        has_identifier = is_pending(status)
    fields: dict[str, Any] = {
        "CommandField": CommandField.C_FIND_RSP,
        "MessageIDBeingRespondedTo": message_id_being_responded_to,
        "CommandDataSetType": _data_set_type(has_identifier),
    }
    if sop_class_uid is not None:
        fields["AffectedSOPClassUID"] = sop_class_uid
    fields.update(_status_fields(status, offending_element, error_comment, error_id))
    return fields


def retrieve_rsp(
    command_field: CommandField,
    message_id_being_responded_to: int,
    status: int,
    *,
    sop_class_uid: str | None = None,
    remaining: int | None = None,
    completed: int | None = None,
    failed: int | None = None,
    warning: int | None = None,
    has_identifier: bool = False,
    offending_element: tuple[int, ...] | None = None,
    error_comment: str | None = None,
    error_id: int | None = None,
) -> dict[str, Any]:
    """A C-GET-RSP or C-MOVE-RSP: the two differ only in their Command Field.

    ``has_identifier``: a Failed SOP Instance UID List data set follows
    (PS3.4 C.4.2.1.4, C.4.3.1.3).
    """
    fields: dict[str, Any] = {
        "CommandField": command_field,
        "MessageIDBeingRespondedTo": message_id_being_responded_to,
        "CommandDataSetType": _data_set_type(has_identifier),
    }
    if sop_class_uid is not None:
        fields["AffectedSOPClassUID"] = sop_class_uid
    fields.update(_status_fields(status, offending_element, error_comment, error_id))
    for keyword, count in zip(_COUNTS, (remaining, completed, failed, warning), strict=True):
        if count is not None:
            fields[keyword] = count
    return fields


get_rsp = functools.partial(retrieve_rsp, CommandField.C_GET_RSP)
move_rsp = functools.partial(retrieve_rsp, CommandField.C_MOVE_RSP)


def cancel_rq(message_id_being_responded_to: int) -> dict[str, Any]:
    """C-CANCEL-RQ carries nothing but the MessageID of the operation to cancel."""
    return {
        "CommandField": CommandField.C_CANCEL_RQ,
        "MessageIDBeingRespondedTo": message_id_being_responded_to,
        "CommandDataSetType": NO_DATASET,
    }


# -- DIMSE-N (PS3.7 10.3.1-10.3.6) -----------------------------------------------------
N_REQUEST_CLASS_KEY: Final[dict[int, tuple[str, str]]] = {
    CommandField.N_EVENT_REPORT_RQ: ("AffectedSOPClassUID", "AffectedSOPInstanceUID"),
    CommandField.N_GET_RQ: ("RequestedSOPClassUID", "RequestedSOPInstanceUID"),
    CommandField.N_SET_RQ: ("RequestedSOPClassUID", "RequestedSOPInstanceUID"),
    CommandField.N_ACTION_RQ: ("RequestedSOPClassUID", "RequestedSOPInstanceUID"),
    CommandField.N_CREATE_RQ: ("AffectedSOPClassUID", "AffectedSOPInstanceUID"),
    CommandField.N_DELETE_RQ: ("RequestedSOPClassUID", "RequestedSOPInstanceUID"),
}
"""Where each N request names its SOP class and instance: Affected for the two that
make or report on an instance (N-CREATE, N-EVENT-REPORT), Requested for the rest."""


def n_rq(
    command_field: int,
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str | None,
    *,
    has_dataset: bool,
    event_type: int | None = None,
    action_type: int | None = None,
    attribute_identifiers: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Any DIMSE-N request; the UIDs go in its Affected or Requested fields.

    ``sop_instance_uid`` may be None only for N-CREATE (the SCP then assigns
    one); ``attribute_identifiers`` is N-GET's list (None or empty: all).
    """
    class_key, instance_key = N_REQUEST_CLASS_KEY[command_field]
    fields: dict[str, Any] = {
        class_key: sop_class_uid,
        "CommandField": command_field,
        "MessageID": message_id,
        "CommandDataSetType": _data_set_type(has_dataset),
    }
    if sop_instance_uid is not None:
        fields[instance_key] = sop_instance_uid
    if event_type is not None:
        fields["EventTypeID"] = event_type
    if action_type is not None:
        fields["ActionTypeID"] = action_type
    if attribute_identifiers:
        fields["AttributeIdentifierList"] = tuple(attribute_identifiers)
    return fields


def n_rsp(
    command_field: int,
    message_id_being_responded_to: int,
    status: int,
    *,
    sop_class_uid: str | None = None,
    sop_instance_uid: str | None = None,
    has_dataset: bool = False,
    event_type: int | None = None,
    action_type: int | None = None,
    error_comment: str | None = None,
    error_id: int | None = None,
    attribute_identifiers: tuple[int, ...] | None = None,
) -> dict[str, Any]:
    """Any DIMSE-N response; the UIDs always go in the Affected fields (PS3.7 10.3).

    ``attribute_identifiers``: the Attribute Identifier List of a 0x0105/0x0107
    answer (PS3.7 C.4.2, C.4.3).
    """
    fields: dict[str, Any] = {
        "CommandField": command_field,
        "MessageIDBeingRespondedTo": message_id_being_responded_to,
        "CommandDataSetType": _data_set_type(has_dataset),
    }
    if sop_class_uid is not None:
        fields["AffectedSOPClassUID"] = sop_class_uid
    if sop_instance_uid is not None:
        fields["AffectedSOPInstanceUID"] = sop_instance_uid
    if event_type is not None:
        fields["EventTypeID"] = event_type
    if action_type is not None:
        fields["ActionTypeID"] = action_type
    if attribute_identifiers:
        fields["AttributeIdentifierList"] = tuple(attribute_identifiers)
    fields.update(_status_fields(status, None, error_comment, error_id))
    return fields


__all__ = [
    "BY_KEYWORD",
    "BY_TAG",
    "COMMAND_ELEMENTS",
    "DATASET_PRESENT",
    "NO_DATASET",
    "N_REQUEST_CLASS_KEY",
    "RESPONSE_BIT",
    "VERIFICATION_SOP_CLASS",
    "CommandElement",
    "CommandField",
    "Priority",
    "cancel_rq",
    "decode_command",
    "echo_rq",
    "echo_rsp",
    "encode_command",
    "find_rq",
    "find_rsp",
    "get_rq",
    "get_rsp",
    "missing_fields",
    "move_rq",
    "move_rsp",
    "n_rq",
    "n_rsp",
    "store_rq",
    "store_rsp",
]
