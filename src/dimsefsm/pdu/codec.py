"""Bytes <-> PDU values (PS3.8 9.3, Annex D; PS3.7 D.3.3) and TCP stream framing.

The decoder is the trust boundary of the whole engine: whatever the peer sends
ends either in a PDU value or in one :class:`~dimsefsm.pdu.errors.PduError`
carrying the A-ABORT reason that answers it; no ``IndexError`` or
``struct.error`` escapes, and no length field is believed before the bytes it
announces have arrived.  Decoding is strict about structure (lengths must add
up, mandatory items must be there) and tolerant only where the standard or
real peers require it: unknown user-information sub-items are skipped,
reserved fields are never tested, trailing NUL/space padding of UIDs and AE
titles is stripped.

P-DATA-TF is the hot path in both directions: :func:`encode_pdata` builds a
one-PDV PDU with a single ``struct.pack``, and :class:`PduFramer` decodes PDVs
straight out of its receive buffer, so each fragment is copied exactly once.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Any, Final, NoReturn

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
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOperationsWindow,
    PDataTF,
    Pdu,
    PduType,
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

__all__ = [
    "DEFAULT_MAX_BODY",
    "ItemType",
    "PduFramer",
    "decode_pdu",
    "encode_pdata",
    "encode_pdu",
]

Buffer = bytes | bytearray | memoryview

DEFAULT_MAX_BODY: Final = 64 << 20
"""Largest PDU length field :class:`PduFramer` accepts unless told otherwise."""

HEADER_SIZE: Final = 6
ASSOCIATE_FIXED_SIZE: Final = 68
"""Bytes of an A-ASSOCIATE-RQ/AC body before its first item (offsets 6..73)."""


class ItemType(IntEnum):
    """Variable item and user-information sub-item types (PS3.8 9.3.2.2, 9.3.2.3, D.3.3)."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNC_OPERATIONS_WINDOW = 0x53
    ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    EXTENDED_NEGOTIATION = 0x56
    COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


_KNOWN_ITEMS: Final = frozenset(int(t) for t in ItemType)
# User-information sub-items that may occur at most once (the others repeat per SOP class).
_SINGLE_SUB_ITEMS: Final = frozenset(
    {
        ItemType.MAXIMUM_LENGTH,
        ItemType.IMPLEMENTATION_CLASS_UID,
        ItemType.ASYNC_OPERATIONS_WINDOW,
        ItemType.IMPLEMENTATION_VERSION_NAME,
        ItemType.USER_IDENTITY_RQ,
        ItemType.USER_IDENTITY_AC,
    }
)

_HEADER = struct.Struct(">BBI")
_ITEM = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_TWO_U16 = struct.Struct(">HH")
_FOUR_U8 = struct.Struct(">BBBB")
_PDV_HEADER = struct.Struct(">IBB")
_ONE_PDV_HEADER = struct.Struct(">BBIIBB")
_SHORT_PDU = struct.Struct(">BBIBBBB")
_ASSOCIATE_FIXED = struct.Struct(">HH16s16s32s")

_P_DATA_TF: Final = 0x04
_COMMAND_BIT: Final = 0x01
_LAST_BIT: Final = 0x02
_AE_SIZE: Final = 16
_RESERVED_32: Final = bytes(32)
_RELEASE_RQ: Final = _SHORT_PDU.pack(0x05, 0, 4, 0, 0, 0, 0)
_RELEASE_RP: Final = _SHORT_PDU.pack(0x06, 0, 4, 0, 0, 0, 0)
# Body length of the PDUs whose size PS3.8 fixes; anything else is refused from the header.
_FIXED_BODY: Final = {0x03: 4, 0x05: 4, 0x06: 4, 0x07: 4}
# What a malformed buffer can make struct, slicing or ASCII decoding raise.
_MALFORMED: Final = (struct.error, IndexError, ValueError, OverflowError)


# =============================================================================
# encoding
# =============================================================================
def encode_pdu(pdu: Pdu) -> bytes:
    """The complete PDU (header included) ready for the wire.

    Raises :class:`PduEncodeError` for values the wire cannot carry (an AE
    title over 16 bytes, non-ASCII UIDs, an item over 65535 bytes, an even
    presentation context id ...): those are our caller's bugs, not the peer's.
    """
    encoder = _ENCODERS.get(type(pdu))
    if encoder is None:
        raise TypeError(f"not a PDU value: {pdu!r}")
    try:
        return encoder(pdu)
    except PduEncodeError:
        raise
    except (struct.error, ValueError, OverflowError) as exc:
        raise PduEncodeError(f"cannot encode {type(pdu).__name__}: {exc}") from exc


def encode_pdata(context_id: int, is_command: bool, is_last: bool, data: Buffer) -> bytes:
    """A P-DATA-TF holding exactly one PDV: one header pack plus the data, one copy."""
    if not context_id & 1 or not 0 < context_id < 256:
        raise PduEncodeError(f"presentation context id {context_id} is not odd 1..255")
    size = len(data)
    control = (_COMMAND_BIT if is_command else 0) | (_LAST_BIT if is_last else 0)
    return _ONE_PDV_HEADER.pack(_P_DATA_TF, 0, size + 6, size + 2, context_id, control) + data


def _encode_a_assoc_rq(pdu: AssociateRQ) -> bytes:
    items = [_uid_item(ItemType.APPLICATION_CONTEXT, pdu.application_context)]
    for pc in pdu.presentation_contexts:
        parts = [
            _context_head(pc.context_id, 0),
            _uid_item(ItemType.ABSTRACT_SYNTAX, pc.abstract_syntax),
        ]
        parts += [_uid_item(ItemType.TRANSFER_SYNTAX, ts) for ts in pc.transfer_syntaxes]
        items.append(_item(ItemType.PRESENTATION_CONTEXT_RQ, b"".join(parts)))
    items.append(_encode_user_info(pdu.user_info))
    return _encode_a_assoc(0x01, pdu, items)


def _encode_a_assoc_ac(pdu: AssociateAC) -> bytes:
    items = [_uid_item(ItemType.APPLICATION_CONTEXT, pdu.application_context)]
    for pc in pdu.presentation_contexts:
        value = _context_head(pc.context_id, pc.result) + _uid_item(
            ItemType.TRANSFER_SYNTAX, pc.transfer_syntax
        )
        items.append(_item(ItemType.PRESENTATION_CONTEXT_AC, value))
    items.append(_encode_user_info(pdu.user_info))
    return _encode_a_assoc(0x02, pdu, items)


def _encode_a_assoc(pdu_type: int, pdu: AssociateRQ | AssociateAC, items: list[bytes]) -> bytes:
    fixed = _ASSOCIATE_FIXED.pack(
        pdu.protocol_version, 0, _ae_title(pdu.called_ae), _ae_title(pdu.calling_ae), _RESERVED_32
    )
    length = ASSOCIATE_FIXED_SIZE + sum(map(len, items))
    return b"".join((_HEADER.pack(pdu_type, 0, length), fixed, *items))


def _context_head(context_id: int, result: int) -> bytes:
    if not context_id & 1 or not 0 < context_id < 256:
        raise PduEncodeError(f"presentation context id {context_id} is not odd 1..255")
    return _FOUR_U8.pack(context_id, 0, result, 0)


def _encode_user_info(info: UserInformation) -> bytes:
    """Sub-items in the order 0x51, 0x52, 0x53, 0x54*, 0x55, 0x56*, 0x57*, 0x58, 0x59."""
    subs: list[bytes] = []
    if info.max_length is not None:
        subs.append(_item(ItemType.MAXIMUM_LENGTH, _U32.pack(info.max_length)))
    if info.implementation_class_uid:
        subs.append(_uid_item(ItemType.IMPLEMENTATION_CLASS_UID, info.implementation_class_uid))
    if info.async_ops is not None:
        window = _TWO_U16.pack(info.async_ops.max_invoked, info.async_ops.max_performed)
        subs.append(_item(ItemType.ASYNC_OPERATIONS_WINDOW, window))
    for role in info.roles:
        flags = bytes((1 if role.scu_role else 0, 1 if role.scp_role else 0))  # SCU first
        subs.append(_item(ItemType.ROLE_SELECTION, _sized_uid(role.sop_class_uid) + flags))
    if info.implementation_version_name:
        name = info.implementation_version_name.encode("ascii")
        subs.append(_item(ItemType.IMPLEMENTATION_VERSION_NAME, name))
    for ext in info.extended_negotiation:
        value = _sized_uid(ext.sop_class_uid) + bytes(ext.application_information)
        subs.append(_item(ItemType.EXTENDED_NEGOTIATION, value))
    for common in info.common_extended_negotiation:
        related = b"".join(_sized_uid(uid) for uid in common.related_general_sop_classes)
        value = b"".join(
            (
                _sized_uid(common.sop_class_uid),
                _sized_uid(common.service_class_uid),
                _sized(related),
            )
        )
        subs.append(_item(ItemType.COMMON_EXTENDED_NEGOTIATION, value))
    if info.user_identity_rq is not None:
        identity = info.user_identity_rq
        value = b"".join(
            (
                bytes((identity.identity_type, 1 if identity.positive_response_requested else 0)),
                _sized(identity.primary),
                _sized(identity.secondary),
            )
        )
        subs.append(_item(ItemType.USER_IDENTITY_RQ, value))
    if info.user_identity_ac is not None:
        subs.append(_item(ItemType.USER_IDENTITY_AC, _sized(info.user_identity_ac.server_response)))
    return _item(ItemType.USER_INFORMATION, b"".join(subs))


def _encode_pdata(pdu: PDataTF) -> bytes:
    if not pdu.pdvs:
        raise PduEncodeError("a P-DATA-TF carries at least one PDV")
    parts: list[Buffer] = [b""]
    length = 0
    for pdv in pdu.pdvs:
        if not pdv.context_id & 1 or not 0 < pdv.context_id < 256:
            raise PduEncodeError(f"presentation context id {pdv.context_id} is not odd 1..255")
        size = len(pdv.data)
        control = (_COMMAND_BIT if pdv.is_command else 0) | (_LAST_BIT if pdv.is_last else 0)
        parts += (_PDV_HEADER.pack(size + 2, pdv.context_id, control), pdv.data)
        length += size + 6
    parts[0] = _HEADER.pack(_P_DATA_TF, 0, length)
    return b"".join(parts)


def _encode_rj(pdu: AssociateRJ) -> bytes:
    return _SHORT_PDU.pack(0x03, 0, 4, 0, pdu.result, pdu.source, pdu.reason)


def _encode_abort(pdu: Abort) -> bytes:
    return _SHORT_PDU.pack(0x07, 0, 4, 0, 0, pdu.source, pdu.reason)


def _encode_release_rq(_: ReleaseRQ) -> bytes:
    return _RELEASE_RQ


def _encode_release_rp(_: ReleaseRP) -> bytes:
    return _RELEASE_RP


def _ae_title(title: str) -> bytes:
    raw = title.encode("ascii")
    if len(raw) > _AE_SIZE:
        raise PduEncodeError(f"AE title {title!r} is longer than 16 characters")
    return raw.ljust(_AE_SIZE, b" ")


def _item(item_type: int, value: bytes) -> bytes:
    if len(value) > 0xFFFF:
        raise PduEncodeError(f"item 0x{item_type:02X} needs {len(value)} bytes; at most 65535 fit")
    return _ITEM.pack(item_type, 0, len(value)) + value


def _uid_item(item_type: int, uid: str) -> bytes:
    return _item(item_type, uid.encode("ascii"))


def _sized(value: bytes) -> bytes:
    """``length:u16 | value``, the layout of every field inside the newer sub-items."""
    return _U16.pack(len(value)) + bytes(value)


def _sized_uid(uid: str) -> bytes:
    return _sized(uid.encode("ascii"))


_ENCODERS: Final[dict[type, Callable[[Any], bytes]]] = {
    AssociateRQ: _encode_a_assoc_rq,
    AssociateAC: _encode_a_assoc_ac,
    AssociateRJ: _encode_rj,
    PDataTF: _encode_pdata,
    ReleaseRQ: _encode_release_rq,
    ReleaseRP: _encode_release_rp,
    Abort: _encode_abort,
}


# =============================================================================
# decoding
# =============================================================================
def decode_pdu(pdu_type: int, body: Buffer) -> Pdu:
    """The PDU of type ``pdu_type`` whose body (the bytes after the 6-byte header) is ``body``.

    Raises only :class:`PduError` subclasses; each names the A-ABORT reason to send.
    """
    decoder = _DECODERS.get(pdu_type)
    if decoder is None:
        raise UnrecognizedPdu(f"unknown PDU type 0x{pdu_type:02X}")
    fixed = _FIXED_BODY.get(pdu_type)
    if fixed is not None and len(body) != fixed:
        raise InvalidParameter(f"{_name(pdu_type)} body is {len(body)} bytes, not {fixed}")
    try:
        return decoder(body, 0, len(body))
    except _MALFORMED as exc:
        raise InvalidParameter(f"malformed {_name(pdu_type)}: {exc}") from exc


def _decode_a_assoc_rq(buf: Buffer, pos: int, end: int) -> AssociateRQ:
    version, called, calling = _decode_a_assoc_fixed(buf, pos, end, "A-ASSOCIATE-RQ")
    application_context: str | None = None
    contexts: list[PresentationContextRQ] = []
    user_info: UserInformation | None = None
    for item_type, start, stop in _items(buf, pos + ASSOCIATE_FIXED_SIZE, end):
        if item_type == ItemType.PRESENTATION_CONTEXT_RQ:
            contexts.append(_decode_context_rq(buf, start, stop))
        elif item_type == ItemType.APPLICATION_CONTEXT and application_context is None:
            application_context = _required_uid(buf, start, stop, "application context name")
        elif item_type == ItemType.USER_INFORMATION and user_info is None:
            user_info = _decode_user_info(buf, start, stop)
        else:
            _misplaced(item_type, "A-ASSOCIATE-RQ")
    _check_unique_ids(contexts)
    return AssociateRQ(
        called_ae=called,
        calling_ae=calling,
        presentation_contexts=tuple(contexts),
        user_info=_required_user_info(user_info),
        application_context=_required_application_context(application_context),
        protocol_version=version,
    )


def _decode_a_assoc_ac(buf: Buffer, pos: int, end: int) -> AssociateAC:
    version, called, calling = _decode_a_assoc_fixed(buf, pos, end, "A-ASSOCIATE-AC")
    application_context: str | None = None
    contexts: list[PresentationContextAC] = []
    user_info: UserInformation | None = None
    for item_type, start, stop in _items(buf, pos + ASSOCIATE_FIXED_SIZE, end):
        if item_type == ItemType.PRESENTATION_CONTEXT_AC:
            contexts.append(_decode_context_ac(buf, start, stop))
        elif item_type == ItemType.APPLICATION_CONTEXT and application_context is None:
            application_context = _required_uid(buf, start, stop, "application context name")
        elif item_type == ItemType.USER_INFORMATION and user_info is None:
            user_info = _decode_user_info(buf, start, stop)
        else:
            _misplaced(item_type, "A-ASSOCIATE-AC")
    _check_unique_ids(contexts)
    return AssociateAC(
        called_ae=called,
        calling_ae=calling,
        presentation_contexts=tuple(contexts),
        user_info=_required_user_info(user_info),
        application_context=_required_application_context(application_context),
        protocol_version=version,
    )


def _decode_a_assoc_fixed(buf: Buffer, pos: int, end: int, what: str) -> tuple[int, str, str]:
    """Protocol version (returned as-is: the upper layer tests bit 0) and both AE titles."""
    if end - pos < ASSOCIATE_FIXED_SIZE:
        raise InvalidParameter(f"{what} body is {end - pos} bytes, shorter than its fixed part")
    version, _, called, calling, _ = _ASSOCIATE_FIXED.unpack_from(buf, pos)
    return version, _decode_ae(called), _decode_ae(calling)


def _decode_ae(raw: bytes) -> str:
    # Spaces are not significant (PS3.8 9.3.2); some old peers pad with NULs.
    return str(raw, "ascii").strip(" \0")


def _required_user_info(user_info: UserInformation | None) -> UserInformation:
    if user_info is None:
        raise InvalidParameter("no user information item")
    return user_info


def _required_application_context(name: str | None) -> str:
    if name is None:
        raise InvalidParameter("no application context item")
    return name


def _check_unique_ids(contexts: list[PresentationContextRQ] | list[PresentationContextAC]) -> None:
    ids = [pc.context_id for pc in contexts]
    if not ids:
        raise InvalidParameter("no presentation context item")
    if len(set(ids)) != len(ids):
        raise InvalidParameter(f"presentation context ids repeat: {ids}")


def _decode_context_rq(buf: Buffer, pos: int, end: int) -> PresentationContextRQ:
    context_id = _context_id(buf, pos, end)
    abstract_syntax: str | None = None
    transfer_syntaxes: list[str] = []
    for item_type, start, stop in _items(buf, pos + 4, end):
        if item_type == ItemType.TRANSFER_SYNTAX:
            transfer_syntaxes.append(_required_uid(buf, start, stop, "transfer syntax"))
        elif item_type == ItemType.ABSTRACT_SYNTAX and abstract_syntax is None:
            abstract_syntax = _required_uid(buf, start, stop, "abstract syntax")
        else:
            _misplaced(item_type, f"presentation context {context_id}")
    if abstract_syntax is None:
        raise InvalidParameter(f"presentation context {context_id} has no abstract syntax")
    if not transfer_syntaxes:
        raise InvalidParameter(f"presentation context {context_id} has no transfer syntax")
    return PresentationContextRQ(context_id, abstract_syntax, tuple(transfer_syntaxes))


def _decode_context_ac(buf: Buffer, pos: int, end: int) -> PresentationContextAC:
    context_id = _context_id(buf, pos, end)
    result = buf[pos + 2]
    transfer_syntax: str | None = None
    for item_type, start, stop in _items(buf, pos + 4, end):
        if item_type == ItemType.TRANSFER_SYNTAX and transfer_syntax is None:
            transfer_syntax = _uid(buf, start, stop)
        else:
            _misplaced(item_type, f"presentation context {context_id}")
    if result == 0 and not transfer_syntax:
        raise InvalidParameter(f"accepted presentation context {context_id} has no transfer syntax")
    # For a rejected context the sub-item "is not significant" (PS3.8 9.3.3.2): tolerate none.
    return PresentationContextAC(context_id, result, transfer_syntax or "")


def _context_id(buf: Buffer, pos: int, end: int) -> int:
    if end - pos < 4:
        raise InvalidParameter("presentation context item shorter than 4 bytes")
    context_id = buf[pos]
    if not context_id & 1:
        raise InvalidParameter(f"presentation context id {context_id} is not odd")
    return context_id


def _decode_user_info(buf: Buffer, pos: int, end: int) -> UserInformation:
    max_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_ops: AsyncOperationsWindow | None = None
    roles: list[RoleSelection] = []
    extended: list[SOPClassExtendedNegotiation] = []
    common: list[SOPClassCommonExtendedNegotiation] = []
    identity_rq: UserIdentityRQ | None = None
    identity_ac: UserIdentityAC | None = None
    seen: set[int] = set()
    for item_type, start, stop in _items(buf, pos, end):
        if item_type in _SINGLE_SUB_ITEMS:
            if item_type in seen:
                raise UnexpectedParameter(f"user information sub-item 0x{item_type:02X} repeats")
            seen.add(item_type)
        if item_type == ItemType.MAXIMUM_LENGTH:
            _expect_size(start, stop, 4, "maximum length sub-item")
            max_length = _U32.unpack_from(buf, start)[0]
        elif item_type == ItemType.IMPLEMENTATION_CLASS_UID:
            implementation_class_uid = _uid(buf, start, stop) or None
        elif item_type == ItemType.ASYNC_OPERATIONS_WINDOW:
            _expect_size(start, stop, 4, "asynchronous operations window sub-item")
            async_ops = AsyncOperationsWindow(*_TWO_U16.unpack_from(buf, start))
        elif item_type == ItemType.ROLE_SELECTION:
            roles.append(_decode_role(buf, start, stop))
        elif item_type == ItemType.IMPLEMENTATION_VERSION_NAME:
            implementation_version_name = str(buf[start:stop], "ascii").rstrip(" \0") or None
        elif item_type == ItemType.EXTENDED_NEGOTIATION:
            uid, at = _sized_field(buf, start, stop)
            extended.append(SOPClassExtendedNegotiation(_text_uid(uid), bytes(buf[at:stop])))
        elif item_type == ItemType.COMMON_EXTENDED_NEGOTIATION:
            common.append(_decode_common_extended(buf, start, stop))
        elif item_type == ItemType.USER_IDENTITY_RQ:
            identity_rq = _decode_identity_rq(buf, start, stop)
        elif item_type == ItemType.USER_IDENTITY_AC:
            response, at = _sized_field(buf, start, stop)
            _expect_size(at, stop, 0, "user identity (AC) sub-item tail")
            identity_ac = UserIdentityAC(response)
        # Any other sub-item type: PS3.8 D.2 says ignore it.
    if max_length is None:
        raise InvalidParameter("user information has no maximum length sub-item")
    return UserInformation(
        max_length=max_length,
        implementation_class_uid=implementation_class_uid,
        implementation_version_name=implementation_version_name,
        async_ops=async_ops,
        roles=tuple(roles),
        extended_negotiation=tuple(extended),
        common_extended_negotiation=tuple(common),
        user_identity_rq=identity_rq,
        user_identity_ac=identity_ac,
    )


def _decode_role(buf: Buffer, pos: int, end: int) -> RoleSelection:
    uid, at = _sized_field(buf, pos, end)
    _expect_size(at, end, 2, "role selection flags")
    return RoleSelection(_text_uid(uid), scu_role=bool(buf[at]), scp_role=bool(buf[at + 1]))


def _decode_common_extended(buf: Buffer, pos: int, end: int) -> SOPClassCommonExtendedNegotiation:
    sop_class, at = _sized_field(buf, pos, end)
    service_class, at = _sized_field(buf, at, end)
    related_block, at = _sized_field(buf, at, end)
    _expect_size(at, end, 0, "common extended negotiation tail")
    related: list[str] = []
    offset = 0
    while offset < len(related_block):
        uid, offset = _sized_field(related_block, offset, len(related_block))
        related.append(_text_uid(uid))
    return SOPClassCommonExtendedNegotiation(
        _text_uid(sop_class), _text_uid(service_class), tuple(related)
    )


def _decode_identity_rq(buf: Buffer, pos: int, end: int) -> UserIdentityRQ:
    if end - pos < 2:
        raise InvalidParameter("user identity (RQ) sub-item shorter than 2 bytes")
    primary, at = _sized_field(buf, pos + 2, end)
    secondary, at = _sized_field(buf, at, end)
    _expect_size(at, end, 0, "user identity (RQ) tail")
    return UserIdentityRQ(buf[pos], bool(buf[pos + 1]), primary, secondary)


def _decode_pdata(buf: Buffer, pos: int, end: int) -> PDataTF:
    if pos == end:
        raise InvalidParameter("P-DATA-TF without a PDV item")
    pdvs: list[PDV] = []
    unpack = _PDV_HEADER.unpack_from
    while pos < end:
        if end - pos < 6:
            raise InvalidParameter(f"truncated PDV item header ({end - pos} bytes left)")
        length, context_id, control = unpack(buf, pos)
        stop = pos + 4 + length
        if length < 2 or stop > end:
            raise InvalidParameter(f"PDV item length {length} does not fit the P-DATA-TF")
        if not context_id & 1:
            raise InvalidParameter(f"PDV presentation context id {context_id} is not odd")
        pdvs.append(
            PDV(
                context_id,
                bool(control & _COMMAND_BIT),
                bool(control & _LAST_BIT),
                bytes(buf[pos + 6 : stop]),
            )
        )
        pos = stop
    return PDataTF(tuple(pdvs))


def _decode_rj(buf: Buffer, pos: int, end: int) -> AssociateRJ:
    # Values pass through unchecked: reporting the rejection beats aborting over a reserved code.
    _, result, source, reason = _FOUR_U8.unpack_from(buf, pos)
    return AssociateRJ(result, source, reason)


def _decode_release_rq(buf: Buffer, pos: int, end: int) -> ReleaseRQ:
    return ReleaseRQ()


def _decode_release_rp(buf: Buffer, pos: int, end: int) -> ReleaseRP:
    return ReleaseRP()


def _decode_abort(buf: Buffer, pos: int, end: int) -> Abort:
    _, _, source, reason = _FOUR_U8.unpack_from(buf, pos)
    return Abort(source, reason)


# -- item walking ----------------------------------------------------------------
def _items(buf: Buffer, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """``(type, value start, value end)`` of each item between ``pos`` and ``end``."""
    while pos < end:
        if end - pos < 4:
            raise InvalidParameter(f"truncated item header ({end - pos} bytes left)")
        item_type, _, length = _ITEM.unpack_from(buf, pos)
        start = pos + 4
        pos = start + length
        if pos > end:
            raise InvalidParameter(
                f"item 0x{item_type:02X} claims {length} bytes, only {end - start} remain"
            )
        yield item_type, start, pos


def _misplaced(item_type: int, where: str) -> NoReturn:
    if item_type in _KNOWN_ITEMS:
        raise UnexpectedParameter(f"item 0x{item_type:02X} not expected (again) in {where}")
    raise UnrecognizedParameter(f"unknown item type 0x{item_type:02X} in {where}")


def _expect_size(start: int, stop: int, size: int, what: str) -> None:
    if stop - start != size:
        raise InvalidParameter(f"{what} is {stop - start} bytes, not {size}")


def _sized_field(buf: Buffer, pos: int, end: int) -> tuple[bytes, int]:
    """The ``length:u16 | value`` field at ``pos`` and the offset just after it."""
    if end - pos < 2:
        raise InvalidParameter("truncated length field inside a sub-item")
    length = _U16.unpack_from(buf, pos)[0]
    stop = pos + 2 + length
    if stop > end:
        raise InvalidParameter(f"field claims {length} bytes, only {end - pos - 2} remain")
    return bytes(buf[pos + 2 : stop]), stop


def _uid(buf: Buffer, start: int, stop: int) -> str:
    # UIDs go unpadded (PS3.8 9.3.2.2); tolerate the PS3.5 even-length padding some peers add.
    return str(buf[start:stop], "ascii").rstrip("\0 ")


def _text_uid(raw: bytes) -> str:
    return raw.decode("ascii").rstrip("\0 ")


def _required_uid(buf: Buffer, start: int, stop: int, what: str) -> str:
    uid = _uid(buf, start, stop)
    if not uid:
        raise InvalidParameter(f"empty {what}")
    return uid


def _name(pdu_type: int) -> str:
    """Only called for the seven known types."""
    return PduType(pdu_type).name


_DECODERS: Final[dict[int, Callable[[Buffer, int, int], Pdu]]] = {
    0x01: _decode_a_assoc_rq,
    0x02: _decode_a_assoc_ac,
    0x03: _decode_rj,
    0x04: _decode_pdata,
    0x05: _decode_release_rq,
    0x06: _decode_release_rp,
    0x07: _decode_abort,
}


# =============================================================================
# stream framing
# =============================================================================
class PduFramer:
    """Cuts a TCP byte stream into PDUs.

    Only bytes that were fed are ever held: a header's length field is checked
    against ``max_body`` the moment the 6 header bytes are in, and nothing is
    allocated for the body it announces.  Consumed bytes are dropped lazily
    (an offset, compacted once it passes half the buffer), so many tiny feeds
    and one huge PDU arriving in pieces both cost linear time.

    A :class:`PduError` leaves the stream unusable (the association must be
    aborted); a complete PDU that failed to decode has been consumed, a bad
    header is reported again on the next call.
    """

    __slots__ = ("_buf", "_pos", "max_body")

    def __init__(self, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.max_body = max_body
        self._buf = bytearray()
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes fed but not yet returned as a PDU."""
        return len(self._buf) - self._pos

    def feed(self, data: Buffer) -> None:
        buf = self._buf
        pos = self._pos
        if pos and pos >= len(buf) >> 1:
            del buf[:pos]
            self._pos = 0
        buf += data

    def next_raw(self) -> tuple[int, bytes] | None:
        """``(pdu type, body)`` of the next complete PDU of a known type, without decoding."""
        found = self._next_bounds()
        if found is None:
            return None
        pdu_type, start, stop = found
        with memoryview(self._buf) as view:
            body = bytes(view[start:stop])
        self._consume(stop)
        return pdu_type, body

    def next_pdu(self) -> Pdu | None:
        """The next complete PDU, or None until more bytes are fed."""
        found = self._next_bounds()
        if found is None:
            return None
        pdu_type, start, stop = found
        view = memoryview(self._buf)
        error: PduError | None = None
        pdu: Pdu | None = None
        try:
            pdu = _DECODERS[pdu_type](view, start, stop)
        except PduError as exc:
            error = _detached(exc)
        except _MALFORMED as exc:
            error = InvalidParameter(f"malformed {_name(pdu_type)}: {exc}")
        finally:
            # No slice of ``view`` outlives this block, so the buffer can grow again.
            view.release()
        self._consume(stop)
        if error is not None:
            raise error
        return pdu

    def _next_bounds(self) -> tuple[int, int, int] | None:
        """Type and body bounds of the next PDU once all of it is buffered."""
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < HEADER_SIZE:
            return None
        pdu_type, _, length = _HEADER.unpack_from(buf, pos)
        if pdu_type not in _DECODERS:
            raise UnrecognizedPdu(f"unknown PDU type 0x{pdu_type:02X}")
        if length > self.max_body:
            raise PduTooLarge(f"{_name(pdu_type)} of {length} bytes exceeds {self.max_body}")
        fixed = _FIXED_BODY.get(pdu_type)
        if fixed is not None and length != fixed:
            raise InvalidParameter(f"{_name(pdu_type)} length is {length}, not {fixed}")
        stop = pos + HEADER_SIZE + length
        if len(buf) < stop:
            return None
        return pdu_type, pos + HEADER_SIZE, stop

    def _consume(self, stop: int) -> None:
        if stop == len(self._buf):
            self._buf.clear()
            self._pos = 0
        else:
            self._pos = stop


def _detached(error: PduError) -> PduError:
    """``error`` without traceback or chained causes.

    The decoder frames a traceback keeps alive may hold slices of the framer's
    buffer; while one lives the bytearray cannot be resized and the next
    :meth:`PduFramer.feed` would raise ``BufferError``.
    """
    error.__traceback__ = None
    error.__cause__ = None
    error.__context__ = None
    return error
