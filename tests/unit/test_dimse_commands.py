"""Command set encoding/decoding, validation and builders (PS3.7 6.3.1, 9.3, Annex E)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from dimsefsm import status as st
from dimsefsm.dimse import commands as cmd
from dimsefsm.dimse.commands import (
    BY_KEYWORD,
    COMMAND_ELEMENTS,
    DATASET_PRESENT,
    NO_DATASET,
    CommandField,
    Priority,
    decode_command,
    encode_command,
    missing_fields,
)
from dimsefsm.dimse.errors import CommandEncodeError, CommandError, DimseError

CT = "1.2.840.10008.5.1.4.1.1.2"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STUDY_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
INSTANCE = "1.2.3.4.5.6.7.8.9"


def _element(elem: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, elem, len(value)) + value


# -- exact bytes ------------------------------------------------------------------------
def test_echo_rq_bytes_written_out_by_hand() -> None:
    expected = (
        # (0000,0000) UL length 4, value 56 = 26 (UI element) + 3 * 10 (US elements)
        b"\x00\x00\x00\x00"
        + b"\x04\x00\x00\x00"
        + b"\x38\x00\x00\x00"
        # (0000,0002) UI length 18: 17 characters + NUL pad
        + b"\x00\x00\x02\x00"
        + b"\x12\x00\x00\x00"
        + b"1.2.840.10008.1.1\x00"
        # (0000,0100) US length 2: 0x0030 C-ECHO-RQ
        + b"\x00\x00\x00\x01"
        + b"\x02\x00\x00\x00"
        + b"\x30\x00"
        # (0000,0110) US length 2: MessageID 1
        + b"\x00\x00\x10\x01"
        + b"\x02\x00\x00\x00"
        + b"\x01\x00"
        # (0000,0800) US length 2: 0x0101 no data set
        + b"\x00\x00\x00\x08"
        + b"\x02\x00\x00\x00"
        + b"\x01\x01"
    )
    assert encode_command(cmd.echo_rq(1)) == expected
    assert len(expected) == 68


def test_encoding_orders_tags_whatever_the_mapping_order() -> None:
    fields = cmd.store_rq(5, CT, INSTANCE, move_originator_ae="MOVER", move_originator_message_id=3)
    reversed_fields = dict(reversed(list(fields.items())))
    data = encode_command(reversed_fields)
    assert data == encode_command(fields)
    tags = []
    offset = 0
    while offset < len(data):
        _, elem, length = struct.unpack_from("<HHI", data, offset)
        tags.append(elem)
        offset += 8 + length
    assert tags == sorted(tags)
    assert tags[0] == 0x0000


def test_group_length_counts_every_byte_after_itself() -> None:
    data = encode_command(
        cmd.move_rsp(9, st.PENDING, remaining=1, completed=2, failed=3, warning=4)
    )
    (group_length,) = struct.unpack_from("<I", data, 8)
    assert group_length == len(data) - 12


@pytest.mark.parametrize(
    ("keyword", "value", "raw"),
    [
        ("AffectedSOPClassUID", "1.2.3", b"1.2.3\x00"),
        ("AffectedSOPClassUID", "1.2.34", b"1.2.34"),
        ("MoveDestination", "STORESCP", b"STORESCP"),
        ("MoveDestination", "ABC", b"ABC "),
        ("ErrorComment", "bad", b"bad "),
        ("OffendingElement", (0x00100010, 0x7FE00010), b"\x10\x00\x10\x00\xe0\x7f\x10\x00"),
        ("OffendingElement", 0x00080018, b"\x08\x00\x18\x00"),
        ("Status", 0xA801, b"\x01\xa8"),
    ],
)
def test_value_encoding_and_padding(keyword: str, value: Any, raw: bytes) -> None:
    data = encode_command({keyword: value})
    assert data[12:] == _element(BY_KEYWORD[keyword].tag, raw)


def test_decoding_strips_padding() -> None:
    data = encode_command(
        {"AffectedSOPClassUID": "1.2.3", "MoveDestination": "ABC", "ErrorComment": "bad"}
    )
    assert decode_command(data) == {
        "AffectedSOPClassUID": "1.2.3",
        "MoveDestination": "ABC",
        "ErrorComment": "bad",
    }


def test_decoding_tolerates_space_padded_uid_and_leading_spaces_in_ae() -> None:
    data = _element(0x0002, b"1.2.3 ") + _element(0x0600, b"  ABC ")
    assert decode_command(data) == {"AffectedSOPClassUID": "1.2.3", "MoveDestination": "ABC"}


def test_decoding_accepts_a_missing_group_length() -> None:
    data = encode_command(cmd.echo_rq(3))[12:]
    assert decode_command(data) == cmd.echo_rq(3)


def test_decoding_memoryview_and_bytearray() -> None:
    data = encode_command(cmd.echo_rq(3))
    assert decode_command(memoryview(data)) == cmd.echo_rq(3)
    assert decode_command(bytearray(data)) == cmd.echo_rq(3)


def test_unknown_group_0000_element_kept_raw_and_retired_decoded() -> None:
    data = (
        _element(0x0100, b"\x30\x00")
        + _element(0x0200, b"OLDAE ")
        + _element(0x0805, b"\x01\x02")
        + _element(0x51B0, b"\x01\x00\x02\x00")
    )
    assert decode_command(data) == {
        "CommandField": 0x0030,
        "Initiator": "OLDAE",
        "(0000,0805)": b"\x01\x02",
        "Overlays": (1, 2),
    }


def test_empty_us_value_decodes_to_none() -> None:
    assert decode_command(_element(0x0902, b"") + _element(0x0903, b"")) == {
        "ErrorComment": "",
        "ErrorID": None,
    }


def test_pydicom_encoded_command_decodes_identically() -> None:
    """pydicom as an independent oracle for Implicit VR Little Endian."""
    fields = cmd.move_rq(7, STUDY_MOVE, "DEST", priority=Priority.HIGH)
    ds = Dataset()
    for keyword, value in fields.items():
        setattr(ds, keyword, int(value) if isinstance(value, int) else value)
    body = DicomBytesIO()
    body.is_little_endian = True
    body.is_implicit_VR = True
    write_dataset(body, ds)
    raw = body.getvalue()
    ours = encode_command(fields)
    assert ours[12:] == raw
    assert decode_command(raw) == fields


# -- decode errors ----------------------------------------------------------------------
VALID = encode_command(cmd.echo_rq(1))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (VALID[:-2], "overruns"),
        (VALID[:-10], "CommandGroupLength 56 but 46"),
        (VALID[:14], "truncated element header"),
        (VALID + b"\x00\x00\x00\x09\x04\x00\x00\x00\x00\x00", "overruns"),
        (VALID + b"\x00", "odd length"),
        (_element(0x0100, b"\x30\x00") + struct.pack("<HHI", 8, 0x18, 0), "not a command element"),
        (_element(0x0100, b"\x30\x00") * 2, "duplicate"),
        (_element(0x0110, b"\x01\x00") + _element(0x0100, b"\x30\x00"), "out of order"),
        (_element(0x0002, b"1.2.3") + b"\x00", "odd length"),
        (_element(0x0100, b"\x30\x00\x00\x00"), "US value of 4 bytes"),
        (_element(0x0000, b"\x01\x00"), "UL value of 2 bytes"),
        (_element(0x0901, b"\x10\x00\x10\x00\x20\x00"), "AT value of 6 bytes"),
        (struct.pack("<HHI", 0, 0x0002, 0xFFFFFFFF), "overruns"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_decode_errors(data: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message) as info:
        decode_command(data)
    assert isinstance(info.value, DimseError)
    assert info.value.from_peer


def test_group_length_mismatch_is_an_error() -> None:
    data = bytearray(VALID)
    data[8] += 2
    with pytest.raises(CommandError, match="CommandGroupLength 58"):
        decode_command(bytes(data))


# -- encode errors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"Initiator": "OLD"}, "retired"),
        ({"PatientName": "X"}, "not a command element"),
        ({"(0000,0805)": b"\x00\x00"}, "not a command element"),
        ({"MessageID": 0x10000}, "MessageID"),
        ({"MessageID": -1}, "MessageID"),
        ({"MessageID": "1"}, "MessageID"),
        ({"AffectedSOPClassUID": 1}, "must be str"),
        ({"AffectedSOPClassUID": "1." * 40}, "longer than 64"),
        ({"MoveDestination": "A" * 17}, "longer than 16"),
        ({"MoveDestination": "ÄÖ"}, "MoveDestination"),
        ({"OffendingElement": ("x",)}, "OffendingElement"),
    ],
)
def test_encode_errors_are_local(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(CommandEncodeError, match=message) as info:
        encode_command(fields)
    assert not info.value.from_peer
    assert isinstance(info.value, ValueError)


def test_error_comment_is_squeezed_into_lo_not_refused() -> None:
    decoded = decode_command(encode_command({"ErrorComment": "é" + "x" * 100}))
    assert decoded == {"ErrorComment": "?" + "x" * 63}


def test_none_values_and_supplied_group_length_are_ignored() -> None:
    fields = {**cmd.echo_rq(1), "ErrorComment": None, "CommandGroupLength": 12345}
    assert encode_command(fields) == VALID


# -- dictionary, CommandField ---------------------------------------------------------------
def test_dictionary_is_in_tag_order_and_has_the_reference_elements() -> None:
    tags = [e.tag for e in COMMAND_ELEMENTS]
    assert tags == sorted(tags)
    assert len(set(tags)) == len(tags)
    current = {e.keyword: (e.tag, e.vr) for e in COMMAND_ELEMENTS if not e.retired}
    assert current == {
        "CommandGroupLength": (0x0000, "UL"),
        "AffectedSOPClassUID": (0x0002, "UI"),
        "RequestedSOPClassUID": (0x0003, "UI"),
        "CommandField": (0x0100, "US"),
        "MessageID": (0x0110, "US"),
        "MessageIDBeingRespondedTo": (0x0120, "US"),
        "MoveDestination": (0x0600, "AE"),
        "Priority": (0x0700, "US"),
        "CommandDataSetType": (0x0800, "US"),
        "Status": (0x0900, "US"),
        "OffendingElement": (0x0901, "AT"),
        "ErrorComment": (0x0902, "LO"),
        "ErrorID": (0x0903, "US"),
        "AffectedSOPInstanceUID": (0x1000, "UI"),
        "RequestedSOPInstanceUID": (0x1001, "UI"),
        "EventTypeID": (0x1002, "US"),
        "AttributeIdentifierList": (0x1005, "AT"),
        "ActionTypeID": (0x1008, "US"),
        "NumberOfRemainingSuboperations": (0x1020, "US"),
        "NumberOfCompletedSuboperations": (0x1021, "US"),
        "NumberOfFailedSuboperations": (0x1022, "US"),
        "NumberOfWarningSuboperations": (0x1023, "US"),
        "MoveOriginatorApplicationEntityTitle": (0x1030, "AE"),
        "MoveOriginatorMessageID": (0x1031, "US"),
    }
    retired = {e.tag for e in COMMAND_ELEMENTS if e.retired}
    assert {0x0001, 0x0010, 0x0200, 0x0300, 0x0400, 0x0850, 0x0860, 0x4000, 0x51B0} <= retired


def test_command_field_values() -> None:
    assert CommandField.C_STORE_RQ == 0x0001
    assert CommandField.C_GET_RQ == 0x0010
    assert CommandField.C_FIND_RQ == 0x0020
    assert CommandField.C_MOVE_RQ == 0x0021
    assert CommandField.C_ECHO_RQ == 0x0030
    assert CommandField.C_CANCEL_RQ == 0x0FFF
    assert CommandField.N_DELETE_RQ == 0x0150
    for member in CommandField:
        if member.name.endswith("_RQ") and member is not CommandField.C_CANCEL_RQ:
            assert CommandField[member.name[:-3] + "_RSP"] == member | 0x8000
    assert "C_CANCEL_RSP" not in CommandField.__members__
    assert NO_DATASET == 0x0101


# -- builders -------------------------------------------------------------------------------
BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "echo_rq": lambda: cmd.echo_rq(1),
    "echo_rsp": lambda: cmd.echo_rsp(1, st.SUCCESS, error_comment=None),
    "echo_rsp_failure": lambda: cmd.echo_rsp(
        1, st.PROCESSING_FAILURE, sop_class_uid=None, error_comment="handler failed"
    ),
    "store_rq": lambda: cmd.store_rq(2, CT, INSTANCE, priority=Priority.LOW),
    "store_rq_move": lambda: cmd.store_rq(
        2, CT, INSTANCE, move_originator_ae="MOVESCU", move_originator_message_id=17
    ),
    "store_rsp": lambda: cmd.store_rsp(
        2,
        st.CANNOT_UNDERSTAND,
        sop_class_uid=CT,
        sop_instance_uid=INSTANCE,
        offending_element=(0x00100010,),
        error_comment="cannot parse",
        error_id=42,
    ),
    "find_rq": lambda: cmd.find_rq(3, STUDY_FIND),
    "find_rsp_pending": lambda: cmd.find_rsp(3, st.PENDING, sop_class_uid=STUDY_FIND),
    "find_rsp_final": lambda: cmd.find_rsp(3, st.SUCCESS),
    "get_rq": lambda: cmd.get_rq(4, STUDY_GET, priority=Priority.HIGH),
    "get_rsp_pending": lambda: cmd.get_rsp(
        4, st.PENDING, remaining=3, completed=1, failed=0, warning=0
    ),
    "get_rsp_final": lambda: cmd.get_rsp(
        4, st.SUBOPERATIONS_WITH_FAILURES, completed=3, failed=1, warning=0, has_identifier=True
    ),
    "move_rq": lambda: cmd.move_rq(5, STUDY_MOVE, "DEST"),
    "move_rsp_pending": lambda: cmd.move_rsp(
        5, st.PENDING, sop_class_uid=STUDY_MOVE, remaining=2, completed=0, failed=0, warning=0
    ),
    "move_rsp_refused": lambda: cmd.move_rsp(
        5, st.MOVE_DESTINATION_UNKNOWN, error_comment="who is DEST?"
    ),
    "cancel_rq": lambda: cmd.cancel_rq(3),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_builder_round_trip(name: str) -> None:
    fields = BUILDERS[name]()
    data = encode_command(fields)
    assert decode_command(data) == fields
    assert encode_command(decode_command(data)) == data
    assert missing_fields(fields) == []


@pytest.mark.parametrize("name", BUILDERS)
def test_responses_never_carry_message_id(name: str) -> None:
    fields = BUILDERS[name]()
    is_request = not fields["CommandField"] & 0x8000
    assert ("MessageID" in fields) == (is_request and name != "cancel_rq")
    assert ("MessageIDBeingRespondedTo" in fields) == (not is_request or name == "cancel_rq")


@pytest.mark.parametrize(
    ("name", "data_set_type"),
    [
        ("echo_rq", NO_DATASET),
        ("echo_rsp", NO_DATASET),
        ("store_rq", DATASET_PRESENT),
        ("store_rsp", NO_DATASET),
        ("find_rq", DATASET_PRESENT),
        ("find_rsp_pending", DATASET_PRESENT),
        ("find_rsp_final", NO_DATASET),
        ("get_rq", DATASET_PRESENT),
        ("get_rsp_pending", NO_DATASET),
        ("get_rsp_final", DATASET_PRESENT),
        ("move_rq", DATASET_PRESENT),
        ("move_rsp_refused", NO_DATASET),
        ("cancel_rq", NO_DATASET),
    ],
)
def test_builder_data_set_type(name: str, data_set_type: int) -> None:
    assert BUILDERS[name]()["CommandDataSetType"] == data_set_type


def test_cancel_carries_only_the_operation_id() -> None:
    assert cmd.cancel_rq(3) == {
        "CommandField": 0x0FFF,
        "MessageIDBeingRespondedTo": 3,
        "CommandDataSetType": NO_DATASET,
    }


def test_find_rsp_identifier_can_be_forced() -> None:
    assert cmd.find_rsp(1, st.PENDING_WARNING)["CommandDataSetType"] == DATASET_PRESENT
    assert cmd.find_rsp(1, st.CANCEL)["CommandDataSetType"] == NO_DATASET
    forced = cmd.find_rsp(1, st.SUCCESS, has_identifier=True)
    assert forced["CommandDataSetType"] == DATASET_PRESENT


# -- missing_fields --------------------------------------------------------------------------
MANDATORY = {
    "echo_rq": ["AffectedSOPClassUID", "MessageID", "CommandDataSetType"],
    "echo_rsp": ["MessageIDBeingRespondedTo", "CommandDataSetType", "Status"],
    "store_rq": [
        "AffectedSOPClassUID",
        "MessageID",
        "Priority",
        "CommandDataSetType",
        "AffectedSOPInstanceUID",
    ],
    "store_rsp": ["MessageIDBeingRespondedTo", "CommandDataSetType", "Status"],
    "find_rq": ["AffectedSOPClassUID", "MessageID", "Priority", "CommandDataSetType"],
    "find_rsp_final": ["MessageIDBeingRespondedTo", "CommandDataSetType", "Status"],
    "get_rq": ["AffectedSOPClassUID", "MessageID", "Priority", "CommandDataSetType"],
    "get_rsp_final": ["MessageIDBeingRespondedTo", "CommandDataSetType", "Status"],
    "move_rq": [
        "AffectedSOPClassUID",
        "MessageID",
        "MoveDestination",
        "Priority",
        "CommandDataSetType",
    ],
    "move_rsp_refused": ["MessageIDBeingRespondedTo", "CommandDataSetType", "Status"],
    "cancel_rq": ["MessageIDBeingRespondedTo", "CommandDataSetType"],
}


@pytest.mark.parametrize("name", MANDATORY)
def test_missing_fields_reports_every_mandatory_field(name: str) -> None:
    fields = BUILDERS[name]()
    for keyword in MANDATORY[name]:
        reduced = {k: v for k, v in fields.items() if k != keyword}
        assert missing_fields(reduced) == [keyword]
    bare = {"CommandField": fields["CommandField"]}
    assert missing_fields(bare) == MANDATORY[name]


def test_missing_command_field() -> None:
    assert missing_fields({"MessageID": 1}) == ["CommandField"]


@pytest.mark.parametrize("builder", [cmd.get_rsp, cmd.move_rsp])
def test_pending_retrieve_response_needs_all_four_counts(
    builder: Callable[..., dict[str, Any]],
) -> None:
    assert missing_fields(builder(1, st.PENDING, remaining=2, completed=1)) == [
        "NumberOfFailedSuboperations",
        "NumberOfWarningSuboperations",
    ]
    assert missing_fields(builder(1, st.SUCCESS, completed=1)) == []


def test_move_originator_fields_come_in_pairs() -> None:
    only_ae = cmd.store_rq(1, CT, INSTANCE, move_originator_ae="MOVESCU")
    only_id = cmd.store_rq(1, CT, INSTANCE, move_originator_message_id=9)
    assert missing_fields(only_ae) == ["MoveOriginatorMessageID"]
    assert missing_fields(only_id) == ["MoveOriginatorApplicationEntityTitle"]


def test_message_types_without_a_table_need_the_data_set_type() -> None:
    assert missing_fields({"CommandField": 0x0456}) == ["CommandDataSetType"]
    assert missing_fields({"CommandField": 0x0123, "CommandDataSetType": NO_DATASET}) == []
