"""Property and fuzz tests of the PDU codec: bytes from the wire end in a PDU or a PduError.

Three sources of input: random bytes, valid PDUs built from the model, and those
valid PDUs mutated (bytes flipped, truncated, length fields rewritten, unknown
items inserted, huge length claims).  Whatever decodes must re-encode to bytes
that decode to an equal value.
"""

from __future__ import annotations

import string
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dimsefsm.pdu.codec import PduFramer, decode_pdu, encode_pdu
from dimsefsm.pdu.errors import PduError, PduTooLarge
from dimsefsm.pdu.model import (
    PDV,
    Abort,
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

FUZZ = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FRAMER_CAP = 1 << 16

# -- valid values ---------------------------------------------------------------------
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
odd_id = st.integers(0, 127).map(lambda i: 2 * i + 1)
uid = st.lists(st.integers(0, 99999), min_size=1, max_size=6).map(
    lambda parts: ".".join(map(str, parts))
)
_PRINTABLE = "".join(c for c in string.printable if c not in string.whitespace or c == " ")
ae_title = (
    st.text(st.sampled_from(_PRINTABLE), min_size=1, max_size=16)
    .map(lambda s: s.strip(" "))
    .filter(bool)
)
version_name = st.text(st.sampled_from(_PRINTABLE), min_size=1, max_size=16).map(
    lambda s: s.rstrip(" ") or "X"
)
small_bytes = st.binary(max_size=24)

user_info = st.builds(
    UserInformation,
    max_length=st.integers(0, 0xFFFF_FFFF),
    implementation_class_uid=st.none() | uid,
    implementation_version_name=st.none() | version_name,
    async_ops=st.none() | st.builds(AsyncOperationsWindow, u16, u16),
    roles=st.lists(st.builds(RoleSelection, uid, st.booleans(), st.booleans()), max_size=3).map(
        tuple
    ),
    extended_negotiation=st.lists(
        st.builds(SOPClassExtendedNegotiation, uid, small_bytes), max_size=2
    ).map(tuple),
    common_extended_negotiation=st.lists(
        st.builds(
            SOPClassCommonExtendedNegotiation,
            uid,
            uid,
            st.lists(uid, max_size=3).map(tuple),
        ),
        max_size=2,
    ).map(tuple),
    user_identity_rq=st.none()
    | st.builds(UserIdentityRQ, u8, st.booleans(), small_bytes, small_bytes),
    user_identity_ac=st.none() | st.builds(UserIdentityAC, small_bytes),
)


@st.composite
def associate_rq(draw: st.DrawFn) -> AssociateRQ:
    ids = draw(st.lists(odd_id, min_size=1, max_size=4, unique=True))
    contexts = tuple(
        PresentationContextRQ(i, draw(uid), tuple(draw(st.lists(uid, min_size=1, max_size=3))))
        for i in ids
    )
    return AssociateRQ(
        draw(ae_title), draw(ae_title), contexts, draw(user_info), draw(uid), draw(u16)
    )


@st.composite
def associate_ac(draw: st.DrawFn) -> AssociateAC:
    ids = draw(st.lists(odd_id, min_size=1, max_size=4, unique=True))
    contexts = []
    for i in ids:
        result = draw(st.sampled_from([0, 0, 1, 2, 3, 4, 255]))
        syntax = draw(uid) if result == 0 else draw(st.just("") | uid)
        contexts.append(PresentationContextAC(i, result, syntax))
    return AssociateAC(
        draw(ae_title), draw(ae_title), tuple(contexts), draw(user_info), draw(uid), draw(u16)
    )


pdata = st.lists(
    st.builds(PDV, odd_id, st.booleans(), st.booleans(), st.binary(max_size=64)),
    min_size=1,
    max_size=4,
).map(lambda pdvs: PDataTF(tuple(pdvs)))

any_pdu: st.SearchStrategy[Pdu] = st.one_of(
    associate_rq(),
    associate_ac(),
    st.builds(AssociateRJ, u8, u8, u8),
    pdata,
    st.just(ReleaseRQ()),
    st.just(ReleaseRP()),
    st.builds(Abort, u8, u8),
)


# -- helpers -----------------------------------------------------------------------------
def check_decoded(pdu: Pdu) -> None:
    """A decoded PDU re-encodes to bytes that decode to an equal value."""
    encoded = encode_pdu(pdu)
    assert struct.unpack_from(">I", encoded, 2)[0] == len(encoded) - 6
    assert decode_pdu(encoded[0], encoded[6:]) == pdu


def decode_or_refuse(pdu_type: int, body: bytes) -> Pdu | None:
    try:
        pdu = decode_pdu(pdu_type, body)
    except PduError:
        return None
    check_decoded(pdu)
    return pdu


def frame_all(data: bytes, cuts: list[int]) -> list[Pdu | PduError]:
    """Feed ``data`` in pieces split at ``cuts``; collect PDUs until the first error."""
    framer = PduFramer(max_body=FRAMER_CAP)
    outcomes: list[Pdu | PduError] = []
    fed = 0
    bounds = [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    start = 0
    for stop in bounds:
        framer.feed(data[start:stop])
        fed += stop - start
        start = stop
        try:
            while (pdu := framer.next_pdu()) is not None:
                check_decoded(pdu)
                outcomes.append(pdu)
        except PduError as exc:
            outcomes.append(exc)
            return outcomes
        assert 0 <= framer.buffered <= fed
    return outcomes


# -- properties ---------------------------------------------------------------------------
@FUZZ
@given(any_pdu)
def test_valid_pdus_round_trip(pdu: Pdu) -> None:
    encoded = encode_pdu(pdu)
    assert decode_pdu(encoded[0], encoded[6:]) == pdu


@FUZZ
@given(st.lists(any_pdu, min_size=1, max_size=5), st.lists(st.integers(0, 4000), max_size=8))
def test_framer_reassembles_any_split(pdus: list[Pdu], cuts: list[int]) -> None:
    stream = b"".join(encode_pdu(p) for p in pdus)
    assert frame_all(stream, cuts) == pdus


@FUZZ
@given(st.integers(0, 9) | u8, st.binary(max_size=400))
def test_random_bodies_decode_or_refuse(pdu_type: int, body: bytes) -> None:
    decode_or_refuse(pdu_type, body)


@FUZZ
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=6))
def test_random_streams_into_the_framer(data: bytes, cuts: list[int]) -> None:
    for outcome in frame_all(data, cuts):
        assert isinstance(outcome, PduError) or outcome.pdu_type in range(1, 8)


@FUZZ
@given(st.integers(1, 7), st.binary(min_size=68, max_size=68), st.binary(max_size=300))
def test_random_items_after_a_plausible_fixed_part(
    pdu_type: int, fixed: bytes, items: bytes
) -> None:
    decode_or_refuse(pdu_type, fixed + items)


def _item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


# Structured noise: real item types with random values, so decoding gets past the item walk.
sized_uid = st.builds(
    lambda v, tail: struct.pack(">H", len(v)) + v + tail, uid.map(str.encode), small_bytes
)
sub_item = st.builds(
    _item,
    st.sampled_from([*range(0x51, 0x5B), 0x30, 0x40, 0x10, 0xFF]),
    st.binary(max_size=8) | sized_uid,
)
context_sub = (
    st.sampled_from([_item(0x30, b"1.2"), _item(0x40, b"1.2"), _item(0x40, b"")]) | sub_item
)
context_item = st.builds(
    lambda item_type, context_id, result, subs: _item(
        item_type, bytes((context_id, 0, result, 0)) + b"".join(subs)
    ),
    st.sampled_from([0x20, 0x21]),
    st.sampled_from([1, 3, 2, 0]),
    st.sampled_from([0, 3]),
    st.lists(context_sub, max_size=4),
)
user_info_item = st.lists(sub_item, max_size=5).map(
    lambda subs: _item(0x50, _item(0x51, bytes(4)) + b"".join(subs))
)
application_context_item = st.just(_item(0x10, b"1.2.840.10008.3.1.1.1"))


@FUZZ
@given(
    st.sampled_from([1, 2]),
    user_info_item,
    st.lists(application_context_item | context_item | sub_item, max_size=2),
    st.data(),
)
def test_item_soup_decodes_or_refuses(
    pdu_type: int, user_information: bytes, extras: list[bytes], data: st.DataObject
) -> None:
    """Mandatory items present, then noise: sub-item rules and extra items get exercised."""
    context = _item(0x20, b"\x01\0\0\0" + _item(0x30, b"1.2") + _item(0x40, b"1.2"))
    if pdu_type == 2:
        context = _item(0x21, b"\x01\0\0\0" + _item(0x40, b"1.2"))
    items = data.draw(st.permutations([_item(0x10, b"1.2"), context, user_information, *extras]))
    fixed = struct.pack(">HH", 1, 0) + b"A".ljust(16) + b"B".ljust(16) + bytes(32)
    decode_or_refuse(pdu_type, fixed + b"".join(items))


def _item_boundaries(encoded: bytes) -> list[int]:
    """Offsets where a top-level item may start (RQ/AC), else just the body's ends."""
    if encoded[0] not in (1, 2):
        return [6, len(encoded)]
    offsets = [74]
    while offsets[-1] < len(encoded):
        offsets.append(offsets[-1] + 4 + struct.unpack_from(">H", encoded, offsets[-1] + 2)[0])
    return offsets


def _mutate(data: st.DataObject, encoded: bytes) -> bytes:
    buf = bytearray(encoded)
    body = st.integers(6, len(buf) - 1)  # the header has its own mutation ("huge")
    kind = data.draw(st.sampled_from(["flip", "truncate", "u16", "u32", "insert", "item", "huge"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            buf[data.draw(body)] = data.draw(u8)
    elif kind == "truncate":
        del buf[data.draw(st.integers(0, len(buf) - 1)) :]
    elif kind in {"u16", "u32"}:
        fmt, limit = (">H", 0xFFFF) if kind == "u16" else (">I", 0xFFFF_FFFF)
        at = data.draw(body)
        value = data.draw(st.integers(0, limit) | st.sampled_from([0, 1, 2, 3, 4, limit]))
        buf[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)[: len(buf) - at]
    elif kind == "insert":
        at = data.draw(st.integers(6, len(buf)))
        buf[at:at] = data.draw(st.binary(min_size=1, max_size=12))
    elif kind == "item":
        # A whole item of any type with a consistent length, between two top-level items.
        payload = data.draw(st.binary(max_size=20))
        at = data.draw(st.sampled_from(_item_boundaries(encoded)))
        buf[at:at] = struct.pack(">BBH", data.draw(u8), 0, len(payload)) + payload
    else:  # huge length claim
        struct.pack_into(">I", buf, 2, data.draw(st.integers(FRAMER_CAP + 1, 0xFFFF_FFFF)))
        return bytes(buf)
    # Mostly keep the header consistent with the size, so the body parser is what gets tested.
    if len(buf) >= 6 and data.draw(st.sampled_from([True, True, True, False])):
        struct.pack_into(">I", buf, 2, len(buf) - 6)
    return bytes(buf)
    # Mostly keep the header consistent with the size, so the body parser is what gets tested.
    if len(buf) >= 6 and data.draw(st.sampled_from([True, True, True, False])):
        struct.pack_into(">I", buf, 2, len(buf) - 6)
    return bytes(buf)


@settings(FUZZ, max_examples=3000)
@given(associate_rq() | associate_ac() | any_pdu, st.data())
def test_mutated_pdus_decode_or_refuse(pdu: Pdu, data: st.DataObject) -> None:
    mutated = _mutate(data, encode_pdu(pdu))
    if len(mutated) >= 6:
        decode_or_refuse(mutated[0], mutated[6:])
    cuts = data.draw(st.lists(st.integers(0, len(mutated)), max_size=4))
    outcomes = frame_all(mutated, cuts)
    length = struct.unpack_from(">I", mutated, 2)[0] if len(mutated) >= 6 else 0
    if length > FRAMER_CAP and mutated[0] in range(1, 8):
        assert len(outcomes) == 1
        assert isinstance(outcomes[0], PduTooLarge)


@FUZZ
@given(associate_rq(), st.data())
def test_unknown_user_info_sub_items_never_change_the_value(
    rq: AssociateRQ, data: st.DataObject
) -> None:
    encoded = bytearray(encode_pdu(rq))
    # The user information item comes last: append an unknown sub-item (0x5A..0xFF) to it.
    value = data.draw(st.binary(max_size=30))
    sub = struct.pack(">BBH", data.draw(st.integers(0x5A, 0xFF)), 0, len(value)) + value
    ui_at = len(encoded) - 4 - _last_item_length(encoded)
    struct.pack_into(">H", encoded, ui_at + 2, _last_item_length(encoded) + len(sub))
    encoded += sub
    struct.pack_into(">I", encoded, 2, len(encoded) - 6)
    assert decode_pdu(0x01, bytes(encoded[6:])) == rq


def _last_item_length(pdu: bytes | bytearray) -> int:
    offset = 74
    length = 0
    while offset < len(pdu):
        length = struct.unpack_from(">H", pdu, offset + 2)[0]
        offset += 4 + length
    return length
