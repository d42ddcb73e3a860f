"""The seven PDUs of PS3.8 Section 9.3 and their items, as plain values.

These classes are the contract between the codec (bytes <-> values), the
upper-layer chart and association negotiation.  They carry no behaviour beyond
``encode()``; decoding lives in :mod:`dimsefsm.pdu.codec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"


class PduType(IntEnum):
    ASSOCIATE_RQ = 0x01
    ASSOCIATE_AC = 0x02
    ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    RELEASE_RQ = 0x05
    RELEASE_RP = 0x06
    ABORT = 0x07


class ContextResult(IntEnum):
    """Presentation Context AC result/reason (PS3.8 Table 9-18)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class RejectResult(IntEnum):
    PERMANENT = 1
    TRANSIENT = 2


class RejectSource(IntEnum):
    SERVICE_USER = 1
    PROVIDER_ACSE = 2
    PROVIDER_PRESENTATION = 3


class RejectReason:
    """Reasons of A-ASSOCIATE-RJ; the meaning depends on the source (PS3.8 Table 9-21)."""

    NO_REASON = 1  # source 1 or 2
    APPLICATION_CONTEXT_NOT_SUPPORTED = 2  # source 1
    CALLING_AE_NOT_RECOGNIZED = 3  # source 1
    CALLED_AE_NOT_RECOGNIZED = 7  # source 1
    PROTOCOL_VERSION_NOT_SUPPORTED = 2  # source 2
    TEMPORARY_CONGESTION = 1  # source 3
    LOCAL_LIMIT_EXCEEDED = 2  # source 3


class AbortSource(IntEnum):
    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(IntEnum):
    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    RESERVED = 3
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER = 6


# -- presentation contexts ----------------------------------------------------
@dataclass(frozen=True, slots=True)
class PresentationContextRQ:
    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PresentationContextAC:
    context_id: int
    result: int
    transfer_syntax: str


# -- user information sub-items -----------------------------------------------
@dataclass(frozen=True, slots=True)
class AsyncOperationsWindow:
    max_invoked: int
    max_performed: int


@dataclass(frozen=True, slots=True)
class RoleSelection:
    """SCP/SCU role selection; on the wire the SCU byte comes first."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass(frozen=True, slots=True)
class SOPClassExtendedNegotiation:
    sop_class_uid: str
    application_information: bytes


@dataclass(frozen=True, slots=True)
class SOPClassCommonExtendedNegotiation:
    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserIdentityRQ:
    identity_type: int
    positive_response_requested: bool
    primary: bytes
    secondary: bytes = b""


@dataclass(frozen=True, slots=True)
class UserIdentityAC:
    server_response: bytes


@dataclass(frozen=True, slots=True)
class UserInformation:
    """The User Information item (0x50) with every sub-item PS3.7 Annex D defines.

    ``max_length`` None means the sub-item was absent (a protocol error in an
    RQ/AC, reported by negotiation rather than the codec); 0 means unlimited.
    """

    max_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_ops: AsyncOperationsWindow | None = None
    roles: tuple[RoleSelection, ...] = ()
    extended_negotiation: tuple[SOPClassExtendedNegotiation, ...] = ()
    common_extended_negotiation: tuple[SOPClassCommonExtendedNegotiation, ...] = ()
    user_identity_rq: UserIdentityRQ | None = None
    user_identity_ac: UserIdentityAC | None = None


# -- PDUs -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AssociateRQ:
    pdu_type: ClassVar[PduType] = PduType.ASSOCIATE_RQ
    called_ae: str
    calling_ae: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_info: UserInformation
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1

    def encode(self) -> bytes:
        from dimsefsm.pdu.codec import encode_pdu

        return encode_pdu(self)


@dataclass(frozen=True, slots=True)
class AssociateAC:
    """The AE title fields are reserved in the AC: they echo the RQ's values."""

    pdu_type: ClassVar[PduType] = PduType.ASSOCIATE_AC
    called_ae: str
    calling_ae: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_info: UserInformation
    application_context: str = APPLICATION_CONTEXT
    protocol_version: int = 1

    def encode(self) -> bytes:
        from dimsefsm.pdu.codec import encode_pdu

        return encode_pdu(self)


@dataclass(frozen=True, slots=True)
class AssociateRJ:
    pdu_type: ClassVar[PduType] = PduType.ASSOCIATE_RJ
    result: int
    source: int
    reason: int

    def encode(self) -> bytes:
        return bytes((0x03, 0, 0, 0, 0, 4, 0, self.result, self.source, self.reason))


@dataclass(frozen=True, slots=True)
class PDV:
    """One presentation data value: a fragment of a command or of a data set."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class PDataTF:
    pdu_type: ClassVar[PduType] = PduType.P_DATA_TF
    pdvs: tuple[PDV, ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        from dimsefsm.pdu.codec import encode_pdu

        return encode_pdu(self)


@dataclass(frozen=True, slots=True)
class ReleaseRQ:
    pdu_type: ClassVar[PduType] = PduType.RELEASE_RQ

    def encode(self) -> bytes:
        return b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class ReleaseRP:
    pdu_type: ClassVar[PduType] = PduType.RELEASE_RP

    def encode(self) -> bytes:
        return b"\x06\x00\x00\x00\x00\x04\x00\x00\x00\x00"


@dataclass(frozen=True, slots=True)
class Abort:
    pdu_type: ClassVar[PduType] = PduType.ABORT
    source: int = AbortSource.SERVICE_USER
    reason: int = AbortReason.NOT_SPECIFIED

    def encode(self) -> bytes:
        return bytes((0x07, 0, 0, 0, 0, 4, 0, 0, self.source, self.reason))


Pdu = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | Abort

__all__ = [
    "APPLICATION_CONTEXT",
    "PDV",
    "Abort",
    "AbortReason",
    "AbortSource",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "AsyncOperationsWindow",
    "ContextResult",
    "PDataTF",
    "Pdu",
    "PduType",
    "PresentationContextAC",
    "PresentationContextRQ",
    "RejectReason",
    "RejectResult",
    "RejectSource",
    "ReleaseRP",
    "ReleaseRQ",
    "RoleSelection",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "UserIdentityAC",
    "UserIdentityRQ",
    "UserInformation",
]
