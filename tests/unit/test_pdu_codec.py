"""PDU codec and stream framer (PS3.8 9.3, Annex D; PS3.7 D.3.3).

Expected bytes are written out by hand from the tables in
``reference/pdu-formats.md``, and two independent implementations (a DCMTK
``echoscu`` capture and pynetdicom's encoder/decoder) check the codec from
outside, so these tests do not only check that it agrees with itself.
"""

from __future__ import annotations

import struct
import tracemalloc
from dataclasses import replace
from typing import Any

import pytest
from pynetdicom.pdu import A_ASSOCIATE_RQ as PyndAssociateRQ

from dimsefsm.pdu.codec import DEFAULT_MAX_BODY, PduFramer, decode_pdu, encode_pdata, encode_pdu
from dimsefsm.pdu.errors import (
    InvalidParameter,
    PduEncodeError,
    PduError,
    PduTooLarge,
    UnexpectedParameter,
    UnrecognizedParameter,
    UnrecognizedPdu,
)
from dimsefsm.pdu.model import (
    PDV,
    Abort,
    AbortReason,
    AbortSource,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOperationsWindow,
    PDataTF,
    Pdu,
    PresentationContextAC,
    PresentationContextRQ,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
APP_CONTEXT = "1.2.840.10008.3.1.1.1"

# First PDU sent by DCMTK 3.6.7 `echoscu -aet ECHOSCU -aec ANY-SCP 127.0.0.1 PORT`, read
# from a raw socket server.  DCMTK puts 0xFF in a reserved byte of the presentation
# context item (value offset +2), which a receiver must not test.
ECHOSCU_RQ = bytes.fromhex(
    "0100000000cd00010000414e592d5343502020202020202020204543484f534355202020202020202020"
    "000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834"
    "302e31303030382e332e312e312e312000002e0100ff0030000011312e322e3834302e31303030382e31"
    "2e3140000011312e322e3834302e31303030382e312e325000003a51000004000040005200001b312e32"
    "2e3237362e302e373233303031302e332e302e332e362e375500000f4f464649535f44434d544b5f3336"
    "37"
)

# pynetdicom 3 (A_ASSOCIATE_RQ/AC.from_primitive(...).encode()) with every user-information
# sub-item; it orders them 0x51, 0x52, 0x55, 0x53, ... (the order is not normative).
PYNETDICOM_RQ = bytes.fromhex(
    "0100000001de00010000414e592d53435020202020202020202050594e44534355202020202020202020"
    "000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834"
    "302e31303030382e332e312e312e31200000450100000030000011312e322e3834302e31303030382e31"
    "2e3140000011312e322e3834302e31303030382e312e3240000013312e322e3834302e31303030382e31"
    "2e322e31200000380300000030000019312e322e3834302e31303030382e352e312e342e312e312e3240"
    "000013312e322e3834302e31303030382e312e322e31500000f8510000040000800052000007312e322e"
    "332e345500000950594e445f5445535453000004000500035400001d0019312e322e3834302e31303030"
    "382e352e312e342e312e312e32000156000020001b312e322e3834302e31303030382e352e312e342e31"
    "2e322e312e3101000157000072001d312e322e3834302e31303030382e352e312e342e312e312e38382e"
    "31310011312e322e3834302e31303030382e342e32003e001d312e322e3834302e31303030382e352e31"
    "2e342e312e312e38382e3232001d312e322e3834302e31303030382e352e312e342e312e312e38382e33"
    "335800001102010005616c6963650006733363726574"
)
PYNETDICOM_AC = bytes.fromhex(
    "02000000011800010000414e592d53435020202020202020202050594e44534355202020202020202020"
    "000000000000000000000000000000000000000000000000000000000000000010000015312e322e3834"
    "302e31303030382e332e312e312e31210000190100000040000011312e322e3834302e31303030382e31"
    "2e322100001b0300030040000013312e322e3834302e31303030382e312e322e315000007b5100000400"
    "00800052000007312e322e332e345500000950594e445f5445535453000004000500035400001d001931"
    "2e322e3834302e31303030382e352e312e342e312e312e32000156000020001b312e322e3834302e3130"
    "3030382e352e312e342e312e322e312e310100015900000a0008746f6b656e2d6f6b"
)

SR_ROLE = RoleSelection(CT, scu_role=False, scp_role=True)
QR_EXT = SOPClassExtendedNegotiation("1.2.840.10008.5.1.4.1.2.1.1", b"\x01\x00\x01")
SR_COMMON = SOPClassCommonExtendedNegotiation(
    "1.2.840.10008.5.1.4.1.1.88.11",
    "1.2.840.10008.4.2",
    ("1.2.840.10008.5.1.4.1.1.88.22", "1.2.840.10008.5.1.4.1.1.88.33"),
)
FULL_RQ_INFO = UserInformation(
    max_length=32768,
    implementation_class_uid="1.2.3.4",
    implementation_version_name="PYND_TEST",
    async_ops=AsyncOperationsWindow(5, 3),
    roles=(SR_ROLE,),
    extended_negotiation=(QR_EXT,),
    common_extended_negotiation=(SR_COMMON,),
    user_identity_rq=UserIdentityRQ(2, True, b"alice", b"s3cret"),
)
FULL_RQ = AssociateRQ(
    called_ae="ANY-SCP",
    calling_ae="PYNDSCU",
    presentation_contexts=(
        PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE, EXPLICIT_LE)),
        PresentationContextRQ(3, CT, (EXPLICIT_LE,)),
    ),
    user_info=FULL_RQ_INFO,
)
FULL_AC = AssociateAC(
    called_ae="ANY-SCP",
    calling_ae="PYNDSCU",
    presentation_contexts=(
        PresentationContextAC(1, 0, IMPLICIT_LE),
        PresentationContextAC(3, 3, EXPLICIT_LE),
    ),
    user_info=UserInformation(
        max_length=32768,
        implementation_class_uid="1.2.3.4",
        implementation_version_name="PYND_TEST",
        async_ops=AsyncOperationsWindow(5, 3),
        roles=(SR_ROLE,),
        extended_negotiation=(QR_EXT,),
        user_identity_ac=UserIdentityAC(b"token-ok"),
    ),
)


def split(pdu: bytes) -> tuple[int, bytes]:
    """Type and body of an encoded PDU, checking the header's length field."""
    pdu_type, _, length = struct.unpack_from(">BBI", pdu)
    assert length == len(pdu) - 6
    return pdu_type, pdu[6:]


def roundtrip(pdu: Pdu) -> Pdu:
    return decode_pdu(*split(encode_pdu(pdu)))


def item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def sized(value: bytes) -> bytes:
    return struct.pack(">H", len(value)) + value


def sub_items(user_info_value: bytes) -> list[tuple[int, bytes]]:
    """(type, value) of each sub-item, parsed independently of the codec."""
    found = []
    offset = 0
    while offset < len(user_info_value):
        sub_type, _, length = struct.unpack_from(">BBH", user_info_value, offset)
        found.append((sub_type, user_info_value[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    assert offset == len(user_info_value)
    return found


def user_info_of(pdu: bytes) -> bytes:
    """The value of the last item of an encoded RQ/AC: the user information (we send it last)."""
    offset = 6 + 68
    last = b""
    while offset < len(pdu):
        item_type, _, length = struct.unpack_from(">BBH", pdu, offset)
        last = pdu[offset + 4 : offset + 4 + length]
        assert item_type in {0x10, 0x20, 0x21, 0x50}
        offset += 4 + length
    return last


# -- building blocks for hand-made association bodies -------------------------------
APP = item(0x10, APP_CONTEXT.encode())
PC1 = item(
    0x20, b"\x01\x00\x00\x00" + item(0x30, VERIFICATION.encode()) + item(0x40, b"1.2.840.10008.1.2")
)
PC1_AC = item(0x21, b"\x01\x00\x00\x00" + item(0x40, IMPLICIT_LE.encode()))
MAXLEN = item(0x51, struct.pack(">I", 16384))
UI = item(0x50, MAXLEN + item(0x52, b"1.2.3"))


def assoc_body(
    *items: bytes, version: int = 1, called: bytes = b"SCP", calling: bytes = b"SCU"
) -> bytes:
    fixed = struct.pack(">HH", version, 0) + called.ljust(16) + calling.ljust(16) + bytes(32)
    return fixed + b"".join(items)


def pc_rq(context_id: int, *subs: bytes) -> bytes:
    return item(0x20, bytes((context_id, 0, 0, 0)) + b"".join(subs))


# =============================================================================
# exact byte layouts, written out from PS3.8 tables 9-11 .. 9-26
# =============================================================================
def test_release_and_abort_layouts() -> None:
    assert encode_pdu(ReleaseRQ()) == bytes.fromhex("05 00 00000004 00000000")
    assert encode_pdu(ReleaseRP()) == bytes.fromhex("06 00 00000004 00000000")
    abort = Abort(AbortSource.SERVICE_PROVIDER, AbortReason.INVALID_PDU_PARAMETER)
    assert encode_pdu(abort) == bytes.fromhex("07 00 00000004 00 00 02 06")
    assert encode_pdu(Abort()) == bytes.fromhex("07 00 00000004 00 00 00 00")


def test_associate_rj_layout() -> None:
    # rejected-permanent, service-user, called-AE-title-not-recognized
    assert encode_pdu(AssociateRJ(1, 1, 7)) == bytes.fromhex("03 00 00000004 00 01 01 07")
    assert decode_pdu(0x03, bytes.fromhex("00 02 03 01")) == AssociateRJ(2, 3, 1)


def test_pdata_with_one_pdv_layout() -> None:
    expected = bytes.fromhex(
        "04 00 0000000a"  # P-DATA-TF, length 10
        "00000006 01 03"  # PDV item length 6, context 1, command + last
        "08000000"  # fragment
    )
    pdu = PDataTF((PDV(1, is_command=True, is_last=True, data=b"\x08\x00\x00\x00"),))
    assert encode_pdu(pdu) == expected
    assert encode_pdata(1, True, True, b"\x08\x00\x00\x00") == expected
    assert encode_pdata(1, True, True, memoryview(b"\x08\x00\x00\x00")) == expected
    assert decode_pdu(*split(expected)) == pdu


@pytest.mark.parametrize(
    ("is_command", "is_last", "control"),
    [(False, False, 0x00), (True, False, 0x01), (False, True, 0x02), (True, True, 0x03)],
)
def test_message_control_header(is_command: bool, is_last: bool, control: int) -> None:
    pdu = encode_pdata(7, is_command, is_last, b"ab")
    assert pdu == bytes.fromhex("04 00 00000008 00000004 07") + bytes((control,)) + b"ab"
    assert decode_pdu(*split(pdu)) == PDataTF((PDV(7, is_command, is_last, b"ab"),))


def test_control_header_bits_2_to_7_are_not_checked() -> None:
    body = bytes.fromhex("00000004 05 fe") + b"xy"
    assert decode_pdu(0x04, body) == PDataTF((PDV(5, False, True, b"xy"),))


def test_pdata_with_several_pdvs() -> None:
    pdvs = (PDV(1, True, True, b"\x01\x02"), PDV(1, False, False, b""), PDV(1, False, True, b"zz"))
    encoded = encode_pdu(PDataTF(pdvs))
    assert encoded == bytes.fromhex(
        "04 00 00000016"  # P-DATA-TF, length 22
        "00000004 01 03 0102"  # command, last
        "00000002 01 00"  # empty data fragment, not last
        "00000004 01 02 7a7a"  # data, last
    )
    assert decode_pdu(*split(encoded)) == PDataTF(pdvs)


MINIMAL_RQ = AssociateRQ(
    called_ae="SCP",
    calling_ae="SCU",
    presentation_contexts=(PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),),
    user_info=UserInformation(max_length=16384, implementation_class_uid="1.2.3"),
)
MINIMAL_RQ_BYTES = b"".join(
    (
        bytes.fromhex("01 00 000000a4"),  # A-ASSOCIATE-RQ, length 164
        bytes.fromhex("0001 0000"),  # protocol version 1, reserved
        b"SCP             ",  # called AE, space padded to 16
        b"SCU             ",  # calling AE
        bytes(32),  # reserved
        bytes.fromhex("10 00 0015"),
        b"1.2.840.10008.3.1.1.1",
        bytes.fromhex("20 00 002e 01 00 00 00"),  # presentation context 1, 46 bytes
        bytes.fromhex("30 00 0011"),
        b"1.2.840.10008.1.1",
        bytes.fromhex("40 00 0011"),
        b"1.2.840.10008.1.2",
        bytes.fromhex("50 00 0011"),  # user information, 17 bytes
        bytes.fromhex("51 00 0004 00004000"),  # maximum length 16384
        bytes.fromhex("52 00 0005"),
        b"1.2.3",
    )
)


def test_minimal_associate_rq_layout() -> None:
    assert encode_pdu(MINIMAL_RQ) == MINIMAL_RQ_BYTES
    assert MINIMAL_RQ.encode() == MINIMAL_RQ_BYTES
    assert decode_pdu(*split(MINIMAL_RQ_BYTES)) == MINIMAL_RQ


def test_minimal_associate_ac_layout_echoes_ae_titles() -> None:
    ac = AssociateAC(
        called_ae="SCP",
        calling_ae="SCU",
        presentation_contexts=(PresentationContextAC(1, 0, IMPLICIT_LE),),
        user_info=UserInformation(max_length=0, implementation_class_uid="1.2.3"),
    )
    expected = b"".join(
        (
            bytes.fromhex("02 00 0000008f 0001 0000"),  # length 143
            b"SCP             SCU             ",
            bytes(32),
            bytes.fromhex("10 00 0015"),
            b"1.2.840.10008.3.1.1.1",
            bytes.fromhex("21 00 0019 01 00 00 00 40 00 0011"),  # accepted, 25 bytes
            b"1.2.840.10008.1.2",
            bytes.fromhex("50 00 0011 51 00 0004 00000000 52 00 0005"),  # max length 0
            b"1.2.3",
        )
    )
    assert encode_pdu(ac) == expected
    assert decode_pdu(*split(expected)) == ac


def test_role_selection_sends_scu_byte_first() -> None:
    info = UserInformation(
        max_length=0, roles=(RoleSelection("1.2", scu_role=True, scp_role=False),)
    )
    rq = AssociateRQ("A", "B", MINIMAL_RQ.presentation_contexts, info)
    subs = sub_items(user_info_of(encode_pdu(rq)))
    assert subs[1] == (0x54, bytes.fromhex("0003") + b"1.2" + bytes.fromhex("01 00"))


def test_common_extended_negotiation_layout() -> None:
    info = UserInformation(max_length=0, common_extended_negotiation=(SR_COMMON,))
    rq = AssociateRQ("A", "B", MINIMAL_RQ.presentation_contexts, info)
    related = sized(b"1.2.840.10008.5.1.4.1.1.88.22") + sized(b"1.2.840.10008.5.1.4.1.1.88.33")
    expected_value = (
        sized(b"1.2.840.10008.5.1.4.1.1.88.11") + sized(b"1.2.840.10008.4.2") + sized(related)
    )
    assert sub_items(user_info_of(encode_pdu(rq)))[1] == (0x57, expected_value)
    assert roundtrip(rq) == rq


def test_common_extended_negotiation_without_related_classes() -> None:
    common = SOPClassCommonExtendedNegotiation("1.2.3", "1.2.840.10008.4.2")
    info = UserInformation(max_length=0, common_extended_negotiation=(common,))
    rq = AssociateRQ("A", "B", MINIMAL_RQ.presentation_contexts, info)
    assert sub_items(user_info_of(encode_pdu(rq)))[1] == (
        0x57,
        sized(b"1.2.3") + sized(b"1.2.840.10008.4.2") + b"\x00\x00",
    )
    assert roundtrip(rq) == rq


def test_user_identity_rq_layout_with_passcode() -> None:
    identity = UserIdentityRQ(2, True, b"alice", b"s3cret")
    rq = AssociateRQ(
        "A", "B", MINIMAL_RQ.presentation_contexts, UserInformation(0, user_identity_rq=identity)
    )
    subs = sub_items(user_info_of(encode_pdu(rq)))
    assert subs[1] == (0x58, bytes.fromhex("02 01") + sized(b"alice") + sized(b"s3cret"))
    assert roundtrip(rq) == rq


def test_user_identity_rq_username_only_keeps_empty_secondary_field() -> None:
    identity = UserIdentityRQ(1, False, b"bob")
    rq = AssociateRQ(
        "A", "B", MINIMAL_RQ.presentation_contexts, UserInformation(0, user_identity_rq=identity)
    )
    assert sub_items(user_info_of(encode_pdu(rq)))[1] == (
        0x58,
        b"\x01\x00" + sized(b"bob") + b"\x00\x00",
    )
    assert roundtrip(rq) == rq


def test_user_identity_ac_layout() -> None:
    info = UserInformation(0, user_identity_ac=UserIdentityAC(b"ticket"))
    ac = AssociateAC("A", "B", (PresentationContextAC(1, 0, IMPLICIT_LE),), info)
    assert sub_items(user_info_of(encode_pdu(ac)))[1] == (0x59, sized(b"ticket"))
    assert roundtrip(ac) == ac


def test_extended_negotiation_and_async_window_layouts() -> None:
    info = UserInformation(0, async_ops=AsyncOperationsWindow(0, 2), extended_negotiation=(QR_EXT,))
    rq = AssociateRQ("A", "B", MINIMAL_RQ.presentation_contexts, info)
    subs = sub_items(user_info_of(encode_pdu(rq)))
    assert subs[1] == (0x53, bytes.fromhex("0000 0002"))
    assert subs[2] == (0x56, sized(QR_EXT.sop_class_uid.encode()) + b"\x01\x00\x01")


def test_user_info_sub_item_order() -> None:
    info = replace(
        FULL_RQ_INFO,
        roles=(SR_ROLE, RoleSelection("1.2", True, True)),
        user_identity_ac=UserIdentityAC(b""),
    )
    encoded = encode_pdu(AssociateRQ("A", "B", MINIMAL_RQ.presentation_contexts, info))
    order = [0x51, 0x52, 0x53, 0x54, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59]
    assert [t for t, _ in sub_items(user_info_of(encoded))] == order


def test_optional_sub_items_are_omitted() -> None:
    info = UserInformation(
        max_length=16384, implementation_class_uid=None, implementation_version_name=""
    )
    encoded = encode_pdu(AssociateRQ("A", "B", MINIMAL_RQ.presentation_contexts, info))
    assert sub_items(user_info_of(encoded)) == [(0x51, bytes.fromhex("00004000"))]


def test_ae_titles_are_space_padded_and_stripped() -> None:
    rq = AssociateRQ(
        "SIXTEEN_CHARS_AE", "X", MINIMAL_RQ.presentation_contexts, MINIMAL_RQ.user_info
    )
    encoded = encode_pdu(rq)
    assert encoded[10:42] == b"SIXTEEN_CHARS_AEX               "
    body = assoc_body(APP, PC1, UI, called=b"  PADDED  ", calling=b"NUL\0\0\0")
    decoded = decode_pdu(0x01, body)
    assert isinstance(decoded, AssociateRQ)
    assert (decoded.called_ae, decoded.calling_ae) == ("PADDED", "NUL")


def test_uid_padding_is_tolerated_on_receipt() -> None:
    body = assoc_body(
        item(0x10, APP_CONTEXT.encode() + b"\0"),
        pc_rq(1, item(0x30, b"1.2.840.10008.1.1\0"), item(0x40, b"1.2.840.10008.1.2 ")),
        item(0x50, MAXLEN + item(0x52, b"1.2.34\0")),
    )
    decoded = decode_pdu(0x01, body)
    assert decoded == AssociateRQ(
        "SCP", "SCU", MINIMAL_RQ.presentation_contexts, UserInformation(16384, "1.2.34")
    )


def test_protocol_version_is_returned_as_is() -> None:
    decoded = decode_pdu(0x01, assoc_body(APP, PC1, UI, version=0x0003))
    assert isinstance(decoded, AssociateRQ)
    assert decoded.protocol_version == 3


def test_reserved_fields_are_not_tested() -> None:
    body = bytearray(assoc_body(APP, PC1, UI))
    body[2:4] = b"\xff\xff"  # reserved after the protocol version
    body[36:68] = b"\xee" * 32  # reserved 32 bytes
    assert decode_pdu(0x01, bytes(body)) == decode_pdu(0x01, assoc_body(APP, PC1, UI))
    assert decode_pdu(0x05, b"\xff\xff\xff\xff") == ReleaseRQ()
    assert decode_pdu(0x07, b"\xff\xff\x00\x00") == Abort(0, 0)


# =============================================================================
# round trips
# =============================================================================
ROUND_TRIP_CASES: list[Pdu] = [
    MINIMAL_RQ,
    FULL_RQ,
    FULL_AC,
    AssociateAC("A", "B", (PresentationContextAC(1, 0, IMPLICIT_LE),), UserInformation(0)),
    AssociateRJ(2, 3, 2),
    AssociateRJ(1, 2, 2),
    PDataTF((PDV(255, False, True, bytes(range(256)) * 10),)),
    PDataTF((PDV(1, True, False, b""), PDV(3, False, False, b"\x00\x01"))),
    ReleaseRQ(),
    ReleaseRP(),
    Abort(),
    Abort(AbortSource.SERVICE_PROVIDER, AbortReason.UNRECOGNIZED_PDU),
    AssociateRQ(
        "CALLED",
        "CALLING",
        tuple(PresentationContextRQ(i, CT, (EXPLICIT_LE, IMPLICIT_LE)) for i in range(1, 256, 2)),
        UserInformation(
            max_length=0,
            roles=(RoleSelection(CT, False, False), RoleSelection(VERIFICATION, True, True)),
        ),
        application_context="1.2.3.4.5",
        protocol_version=0xFFFF,
    ),
]


@pytest.mark.parametrize("pdu", ROUND_TRIP_CASES, ids=lambda p: type(p).__name__)
def test_round_trip(pdu: Pdu) -> None:
    encoded = encode_pdu(pdu)
    assert encoded[0] == pdu.pdu_type
    assert decode_pdu(*split(encoded)) == pdu
    assert pdu.encode() == encoded


def test_decoded_pdv_data_is_bytes_even_from_a_memoryview() -> None:
    body = memoryview(bytearray(bytes.fromhex("00000006 01 02 61626364")))
    decoded = decode_pdu(0x04, body)
    assert isinstance(decoded, PDataTF)
    assert type(decoded.pdvs[0].data) is bytes
    assert decoded.pdvs[0].data == b"abcd"


# =============================================================================
# independent peers
# =============================================================================
def test_decode_real_echoscu_rq() -> None:
    decoded = decode_pdu(*split(ECHOSCU_RQ))
    assert decoded == AssociateRQ(
        called_ae="ANY-SCP",
        calling_ae="ECHOSCU",
        presentation_contexts=(PresentationContextRQ(1, VERIFICATION, (IMPLICIT_LE,)),),
        user_info=UserInformation(
            max_length=16384,
            implementation_class_uid="1.2.276.0.7230010.3.0.3.6.7",
            implementation_version_name="OFFIS_DCMTK_367",
        ),
    )
    # Our encoding differs only in the reserved byte DCMTK sets to 0xFF.
    ours = encode_pdu(decoded)
    assert len(ours) == len(ECHOSCU_RQ)
    assert [i for i in range(len(ours)) if ours[i] != ECHOSCU_RQ[i]] == [
        ECHOSCU_RQ.index(b"\x01\x00\xff\x00") + 2
    ]


def test_decode_pynetdicom_rq_and_ac_with_every_sub_item() -> None:
    assert decode_pdu(*split(PYNETDICOM_RQ)) == FULL_RQ
    assert decode_pdu(*split(PYNETDICOM_AC)) == FULL_AC


def test_pynetdicom_decodes_our_rq() -> None:
    theirs = PyndAssociateRQ()
    theirs.decode(encode_pdu(FULL_RQ))
    primitive = theirs.to_primitive()
    assert (primitive.called_ae_title, primitive.calling_ae_title) == ("ANY-SCP", "PYNDSCU")
    by_name: dict[str, Any] = {type(sub).__name__: sub for sub in primitive.user_information}
    role = by_name["SCP_SCU_RoleSelectionNegotiation"]
    assert (role.sop_class_uid, role.scu_role, role.scp_role) == (CT, False, True)
    identity = by_name["UserIdentityNegotiation"]
    assert (identity.user_identity_type, identity.primary_field, identity.secondary_field) == (
        2,
        b"alice",
        b"s3cret",
    )
    common = by_name["SOPClassCommonExtendedNegotiation"]
    assert common.related_general_sop_class_identification == list(
        SR_COMMON.related_general_sop_classes
    )
    assert by_name["MaximumLengthNotification"].maximum_length_received == 32768
    assert [pc.context_id for pc in primitive.presentation_context_definition_list] == [1, 3]


# =============================================================================
# decoder errors: class and the A-ABORT reason that answers them
# =============================================================================
def rq(*items: bytes, called: bytes = b"SCP") -> tuple[int, bytes]:
    return 0x01, assoc_body(*items, called=called)


def ac(*items: bytes) -> tuple[int, bytes]:
    return 0x02, assoc_body(*items)


def with_subs(*subs: bytes) -> tuple[int, bytes]:
    """An RQ whose user information holds the maximum length, then ``subs``."""
    return rq(APP, PC1, item(0x50, MAXLEN + b"".join(subs)))


def framed(pdu: tuple[int, bytes]) -> bytes:
    pdu_type, body = pdu
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def ctx(context_id: int, head: bytes = b"\x00\x00\x00") -> bytes:
    return bytes((context_id,)) + head


TS = item(0x40, b"1.2")
AS = item(0x30, b"1.2")
UID_1_2 = sized(b"1.2")
ERROR_CASES: dict[str, tuple[tuple[int, bytes], type[PduError]]] = {
    "unknown PDU type": ((0x08, bytes(4)), UnrecognizedPdu),
    "PDU type 0": ((0x00, b""), UnrecognizedPdu),
    "RQ shorter than fixed part": ((0x01, assoc_body()[:67]), InvalidParameter),
    "RQ without any item": (rq(), InvalidParameter),
    "RQ missing application context": (rq(PC1, UI), InvalidParameter),
    "RQ missing presentation context": (rq(APP, UI), InvalidParameter),
    "RQ missing user information": (rq(APP, PC1), InvalidParameter),
    "user info without max length": (rq(APP, PC1, item(0x50, item(0x52, b"1"))), InvalidParameter),
    "empty application context": (rq(item(0x10, b""), PC1, UI), InvalidParameter),
    "non-ASCII AE title": (rq(APP, PC1, UI, called=b"SC\xc3\xbc"), InvalidParameter),
    "non-ASCII UID": (rq(item(0x10, b"1.2\xff"), PC1, UI), InvalidParameter),
    "item length overflows PDU": ((0x01, assoc_body(APP, PC1, UI)[:-1]), InvalidParameter),
    "truncated item header": (rq(APP, PC1, UI, b"\x10\x00"), InvalidParameter),
    "even presentation context id": (rq(APP, pc_rq(2, AS, TS), UI), InvalidParameter),
    "zero presentation context id": (rq(APP, pc_rq(0, AS, TS), UI), InvalidParameter),
    "repeated presentation context id": (rq(APP, PC1, PC1, UI), InvalidParameter),
    "context without abstract syntax": (rq(APP, pc_rq(1, TS), UI), InvalidParameter),
    "context without transfer syntax": (rq(APP, pc_rq(1, AS), UI), InvalidParameter),
    "context with empty transfer syntax": (
        rq(APP, pc_rq(1, AS, item(0x40, b"")), UI),
        InvalidParameter,
    ),
    "context with two abstract syntaxes": (rq(APP, pc_rq(1, AS, AS, TS), UI), UnexpectedParameter),
    "context item shorter than 4": (rq(APP, item(0x20, b"\x01\x00"), UI), InvalidParameter),
    "unknown sub-item in context": (
        rq(APP, pc_rq(1, AS, TS, item(0x41, b"")), UI),
        UnrecognizedParameter,
    ),
    "unknown item in RQ": (rq(APP, PC1, UI, item(0x99, b"x")), UnrecognizedParameter),
    "AC context item in RQ": (rq(APP, PC1, PC1_AC, UI), UnexpectedParameter),
    "user-info sub-item at PDU level": (rq(APP, PC1, UI, MAXLEN), UnexpectedParameter),
    "second user information": (rq(APP, PC1, UI, UI), UnexpectedParameter),
    "second application context": (rq(APP, APP, PC1, UI), UnexpectedParameter),
    "repeated max length sub-item": (with_subs(MAXLEN), UnexpectedParameter),
    "repeated implementation class UID": (
        with_subs(item(0x52, b"1"), item(0x52, b"2")),
        UnexpectedParameter,
    ),
    "max length sub-item of 3 bytes": (
        rq(APP, PC1, item(0x50, item(0x51, bytes(3)))),
        InvalidParameter,
    ),
    "async window of 2 bytes": (with_subs(item(0x53, b"\0\1")), InvalidParameter),
    "role item without flags": (with_subs(item(0x54, UID_1_2 + b"\x01")), InvalidParameter),
    "role item with extra byte": (
        with_subs(item(0x54, UID_1_2 + b"\x01\x00\x00")),
        InvalidParameter,
    ),
    "role UID length overflows": (
        with_subs(item(0x54, b"\x00\x09" + b"1.2\x01\x01")),
        InvalidParameter,
    ),
    "ext negotiation without UID length": (with_subs(item(0x56, b"\x00")), InvalidParameter),
    "common ext with trailing bytes": (
        with_subs(item(0x57, sized(b"1") + sized(b"2") + sized(b"") + b"!")),
        InvalidParameter,
    ),
    "common ext related list broken": (
        with_subs(item(0x57, sized(b"1") + sized(b"2") + sized(b"\x00\x05ab"))),
        InvalidParameter,
    ),
    "identity RQ of 1 byte": (with_subs(item(0x58, b"\x01")), InvalidParameter),
    "identity RQ without secondary length": (
        with_subs(item(0x58, b"\x01\x00" + sized(b"bob"))),
        InvalidParameter,
    ),
    "identity AC with trailing bytes": (
        ac(APP, PC1_AC, item(0x50, MAXLEN + item(0x59, sized(b"t") + b"x"))),
        InvalidParameter,
    ),
    "AC missing presentation context": (ac(APP, UI), InvalidParameter),
    "AC missing user information": (ac(APP, PC1_AC), InvalidParameter),
    "RQ context item in AC": (ac(APP, PC1, UI), UnexpectedParameter),
    "unknown item in AC": (ac(APP, PC1_AC, UI, item(0x22, b"")), UnrecognizedParameter),
    "accepted AC context without TS": (ac(APP, item(0x21, ctx(1)), UI), InvalidParameter),
    "AC context with two TS": (ac(APP, item(0x21, ctx(1) + TS + TS), UI), UnexpectedParameter),
    "AC context with abstract syntax": (
        ac(APP, item(0x21, ctx(1) + AS + TS), UI),
        UnexpectedParameter,
    ),
    "even AC context id": (ac(APP, item(0x21, ctx(4) + TS), UI), InvalidParameter),
    "RJ of 3 bytes": ((0x03, b"\0\1\1"), InvalidParameter),
    "RJ of 5 bytes": ((0x03, b"\0\1\1\1\0"), InvalidParameter),
    "release RQ of 0 bytes": ((0x05, b""), InvalidParameter),
    "release RP of 6 bytes": ((0x06, bytes(6)), InvalidParameter),
    "abort of 2 bytes": ((0x07, b"\0\0"), InvalidParameter),
    "P-DATA without PDV": ((0x04, b""), InvalidParameter),
    "PDV item length 1": ((0x04, bytes.fromhex("00000001 01")), InvalidParameter),
    "PDV item length 0": ((0x04, bytes.fromhex("00000000 0000")), InvalidParameter),
    "PDV item overflows PDU": ((0x04, bytes.fromhex("00000009 01 02 6162")), InvalidParameter),
    "truncated PDV header": ((0x04, bytes.fromhex("00000004 01 02 6162 0000")), InvalidParameter),
    "PDV with even context id": ((0x04, bytes.fromhex("00000004 02 02 6162")), InvalidParameter),
    "PDV with context id 0": ((0x04, bytes.fromhex("00000004 00 02 6162")), InvalidParameter),
}
ABORT_REASON_OF: dict[type[PduError], int] = {
    UnrecognizedPdu: 1,
    UnrecognizedParameter: 4,
    UnexpectedParameter: 5,
    InvalidParameter: 6,
    PduTooLarge: 6,
}


@pytest.mark.parametrize(("pdu", "error"), list(ERROR_CASES.values()), ids=list(ERROR_CASES))
def test_decoder_errors(pdu: tuple[int, bytes], error: type[PduError]) -> None:
    with pytest.raises(PduError) as caught:
        decode_pdu(*pdu)
    assert type(caught.value) is error
    assert caught.value.abort_reason == ABORT_REASON_OF[error]


@pytest.mark.parametrize(("pdu", "error"), list(ERROR_CASES.values()), ids=list(ERROR_CASES))
def test_framer_raises_the_same_errors(pdu: tuple[int, bytes], error: type[PduError]) -> None:
    framer = PduFramer()
    framer.feed(framed(pdu))
    with pytest.raises(error):
        framer.next_pdu()


@pytest.mark.parametrize(("error", "reason"), ABORT_REASON_OF.items())
def test_each_error_names_its_abort_reason(error: type[PduError], reason: int) -> None:
    assert error("x").abort_reason == reason


def test_unknown_user_info_sub_items_are_skipped() -> None:
    unknown = item(0x5A, b"future") + item(0xFF, b"") + item(0x10, b"not here")
    body = assoc_body(
        APP, PC1, item(0x50, unknown + MAXLEN + item(0x60, bytes(100)) + item(0x52, b"1.2.3"))
    )
    assert decode_pdu(0x01, body) == decode_pdu(0x01, assoc_body(APP, PC1, UI))


def test_rejected_ac_context_may_lack_its_transfer_syntax() -> None:
    body = assoc_body(
        APP,
        PC1_AC,
        item(0x21, b"\x03\x00\x03\x00"),
        item(0x21, b"\x05\x00\x04\x00" + item(0x40, b"")),
        UI,
    )
    decoded = decode_pdu(0x02, body)
    assert isinstance(decoded, AssociateAC)
    assert decoded.presentation_contexts == (
        PresentationContextAC(1, 0, IMPLICIT_LE),
        PresentationContextAC(3, 3, ""),
        PresentationContextAC(5, 4, ""),
    )
    assert roundtrip(decoded) == decoded


def test_empty_optional_strings_decode_as_absent() -> None:
    body = assoc_body(APP, PC1, item(0x50, MAXLEN + item(0x52, b"") + item(0x55, b"")))
    decoded = decode_pdu(0x01, body)
    assert isinstance(decoded, AssociateRQ)
    assert decoded.user_info == UserInformation(max_length=16384)


def test_rj_and_abort_values_pass_through() -> None:
    assert decode_pdu(0x03, b"\x00\x07\x09\xff") == AssociateRJ(7, 9, 255)
    assert decode_pdu(0x07, b"\x00\x00\x01\x03") == Abort(
        AbortSource.RESERVED, AbortReason.RESERVED
    )


# =============================================================================
# encoder refusals (our caller's bugs, not the peer's)
# =============================================================================
@pytest.mark.parametrize(
    "pdu",
    [
        AssociateRQ(
            "SEVENTEEN_CHARS_X", "B", MINIMAL_RQ.presentation_contexts, MINIMAL_RQ.user_info
        ),
        AssociateRQ("Ä", "B", MINIMAL_RQ.presentation_contexts, MINIMAL_RQ.user_info),
        AssociateRQ(
            "A", "B", (PresentationContextRQ(2, CT, (IMPLICIT_LE,)),), MINIMAL_RQ.user_info
        ),
        AssociateRQ(
            "A", "B", (PresentationContextRQ(1, "1.2.ü", (IMPLICIT_LE,)),), MINIMAL_RQ.user_info
        ),
        AssociateRQ(
            "A", "B", (PresentationContextRQ(1, CT, ("1.2" * 30000,)),), MINIMAL_RQ.user_info
        ),
        AssociateRQ(
            "A", "B", MINIMAL_RQ.presentation_contexts, UserInformation(max_length=1 << 32)
        ),
        AssociateRQ(
            "A",
            "B",
            MINIMAL_RQ.presentation_contexts,
            UserInformation(0, user_identity_rq=UserIdentityRQ(256, False, b"")),
        ),
        AssociateAC("A", "B", (PresentationContextAC(257, 0, IMPLICIT_LE),), UserInformation(0)),
        AssociateRJ(256, 1, 1),
        Abort(0, -1),
        PDataTF(()),
        PDataTF((PDV(0, True, True, b""),)),
    ],
)
def test_encoder_refuses_what_the_wire_cannot_carry(pdu: Pdu) -> None:
    with pytest.raises(PduEncodeError):
        encode_pdu(pdu)


@pytest.mark.parametrize("context_id", [0, 2, 256, -1])
def test_encode_pdata_refuses_invalid_context_ids(context_id: int) -> None:
    with pytest.raises(PduEncodeError):
        encode_pdata(context_id, False, False, b"")


def test_encode_pdu_refuses_non_pdus() -> None:
    with pytest.raises(TypeError):
        encode_pdu(PDV(1, True, True, b""))  # type: ignore[arg-type]


# =============================================================================
# framer
# =============================================================================
STREAM_PDUS: list[Pdu] = [
    FULL_RQ,
    PDataTF((PDV(1, True, True, b"\x02\x00" * 50),)),
    PDataTF((PDV(1, False, False, b"ab"), PDV(1, False, True, b"cd"))),
    ReleaseRQ(),
    FULL_AC,
    Abort(2, 1),
]
STREAM = b"".join(encode_pdu(p) for p in STREAM_PDUS)


def drain(framer: PduFramer) -> list[Pdu]:
    found = []
    while (pdu := framer.next_pdu()) is not None:
        found.append(pdu)
    return found


def test_framer_byte_by_byte() -> None:
    framer = PduFramer()
    found: list[Pdu] = []
    for offset in range(len(STREAM)):
        framer.feed(STREAM[offset : offset + 1])
        found += drain(framer)
        assert framer.buffered == offset + 1 - sum(len(encode_pdu(p)) for p in found)
    assert found == STREAM_PDUS
    assert framer.buffered == 0


def test_framer_everything_in_one_feed() -> None:
    framer = PduFramer()
    framer.feed(STREAM)
    assert drain(framer) == STREAM_PDUS
    assert framer.buffered == 0
    assert framer.next_pdu() is None


@pytest.mark.parametrize("chunk", [7, 100, 1000, 4096])
def test_framer_in_uneven_chunks(chunk: int) -> None:
    framer = PduFramer()
    found: list[Pdu] = []
    for offset in range(0, len(STREAM), chunk):
        framer.feed(memoryview(STREAM)[offset : offset + chunk])
        found += drain(framer)
    assert found == STREAM_PDUS


def test_framer_next_raw() -> None:
    framer = PduFramer()
    framer.feed(encode_pdu(ReleaseRP()) + MINIMAL_RQ_BYTES[:10])
    assert framer.next_raw() == (0x06, b"\0\0\0\0")
    assert framer.next_raw() is None
    framer.feed(MINIMAL_RQ_BYTES[10:])
    assert framer.next_raw() == (0x01, MINIMAL_RQ_BYTES[6:])
    assert framer.buffered == 0


def test_framer_refuses_a_huge_length_from_the_header_alone() -> None:
    framer = PduFramer(max_body=1 << 20)
    framer.feed(bytes.fromhex("04 00 7fff"))
    assert framer.next_pdu() is None
    framer.feed(bytes.fromhex("ffff"))
    assert framer.buffered == 6
    with pytest.raises(PduTooLarge) as caught:
        framer.next_pdu()
    assert caught.value.abort_reason == AbortReason.INVALID_PDU_PARAMETER
    assert isinstance(caught.value, InvalidParameter)


def test_framer_length_at_the_cap_is_accepted() -> None:
    framer = PduFramer(max_body=10)
    framer.feed(encode_pdata(1, False, True, b"abcd"))  # body of exactly 10 bytes
    assert framer.next_pdu() == PDataTF((PDV(1, False, True, b"abcd"),))


def test_framer_buffers_only_what_was_fed_for_a_claimed_large_pdu() -> None:
    framer = PduFramer()
    header = struct.pack(">BBI", 0x04, 0, DEFAULT_MAX_BODY)
    tracemalloc.start()
    try:
        framer.feed(header)
        assert framer.next_pdu() is None
        fed = len(header)
        for _ in range(4):
            framer.feed(bytes(65536))
            fed += 65536
            assert framer.next_pdu() is None
            assert framer.buffered == fed
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * fed + (1 << 20)  # nowhere near the 64 MiB claimed


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (bytes.fromhex("08 00 00000004"), UnrecognizedPdu),
        (bytes.fromhex("ff 00 ffffffff"), UnrecognizedPdu),
        (bytes.fromhex("05 00 00000005"), InvalidParameter),
        (bytes.fromhex("07 00 00000003"), InvalidParameter),
        (bytes.fromhex("03 00 ffffffff"), PduTooLarge),
    ],
)
def test_framer_refuses_bad_headers_before_the_body(header: bytes, error: type[PduError]) -> None:
    framer = PduFramer()
    framer.feed(header)
    with pytest.raises(error):
        framer.next_pdu()
    with pytest.raises(error):  # the stream stays refused
        framer.next_raw()


def test_framer_one_large_pdu_in_64k_pieces() -> None:
    data = bytes(range(256)) * (4 << 12)  # 4 MiB
    encoded = encode_pdata(3, False, True, data)
    framer = PduFramer()
    for offset in range(0, len(encoded), 65536):
        assert framer.next_pdu() is None
        framer.feed(encoded[offset : offset + 65536])
    assert framer.next_pdu() == PDataTF((PDV(3, False, True, data),))
    assert framer.buffered == 0


def test_framer_compacts_consumed_bytes() -> None:
    one = encode_pdata(1, False, False, b"xy" * 100)
    framer = PduFramer()
    for _ in range(1000):
        framer.feed(one + one[:50])
        assert len(drain(framer)) >= 1
        framer.feed(one[50:])
        assert len(drain(framer)) == 1
    assert framer.buffered == 0


@pytest.mark.parametrize(
    "bad",
    [
        bytes.fromhex("04 00 0000000a 00000006 02 03 08000000"),  # even PDV context id
        framed(rq(APP, PC1, UI, called=b"\xff")),
        framed(with_subs(item(0x57, b"\x00"))),
    ],
    ids=["pdata", "ae-title", "sub-item"],
)
def test_framer_keeps_working_after_a_bad_complete_pdu(bad: bytes) -> None:
    framer = PduFramer()
    framer.feed(bad + encode_pdu(ReleaseRQ())[:3])
    with pytest.raises(PduError):
        framer.next_pdu()
    framer.feed(encode_pdu(ReleaseRQ())[3:])  # the buffer is not locked by a lingering view
    assert framer.next_pdu() == ReleaseRQ()
    assert framer.buffered == 0
