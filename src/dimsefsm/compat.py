"""pynetdicom's names for dimsefsm's things, so that pynetdicom code ports by its imports.

``from pynetdicom import AE, evt, StoragePresentationContexts`` becomes
``from dimsefsm.compat import AE, evt, StoragePresentationContexts``, and
``from pynetdicom.sop_class import Verification`` becomes
``from dimsefsm.compat import Verification``.  docs/porting.md lists every
name and what differs.

The SOP class constants are generated from the registries (pydicom's UID
dictionary for their keywords, :mod:`dimsefsm.sop_class` and
:mod:`dimsefsm.qr.registry` for which ones we serve), never listed by hand,
so a class the registries learn is exported here too.  This module imports
pydicom: it is for porting, not for the echo path's start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom._uid_dict import UID_dictionary
from pydicom.uid import UID

from dimsefsm import evt
from dimsefsm.ae import AE
from dimsefsm.pdu.model import RoleSelection
from dimsefsm.qr import registry as qr
from dimsefsm.sop_class import (
    ALL_TRANSFER_SYNTAXES as _ALL_TS,
)
from dimsefsm.sop_class import (
    COMMON_STORAGE_SOP_CLASSES,
    DEFAULT_TRANSFER_SYNTAXES,
    N_SOP_CLASSES,
    STORAGE_SOP_CLASSES,
    VERIFICATION,
    lookup,
)
from dimsefsm.trace import debug_logger

ALL_TRANSFER_SYNTAXES: list[str] = list(_ALL_TS)
DEFAULT_TRANSFER_SYNTAXES_LIST: list[str] = list(DEFAULT_TRANSFER_SYNTAXES)


@dataclass
class PresentationContext:
    """An abstract syntax and its transfer syntaxes, as pynetdicom's contexts are read.

    Only what ported code reads and writes is kept: ``abstract_syntax``,
    ``transfer_syntax`` (a list) and the roles ``scu_role``/``scp_role``.
    """

    abstract_syntax: str
    transfer_syntax: list[str] = field(default_factory=lambda: list(DEFAULT_TRANSFER_SYNTAXES))
    scu_role: bool | None = None
    scp_role: bool | None = None
    context_id: int | None = None

    def add_transfer_syntax(self, syntax: str) -> None:
        if syntax not in self.transfer_syntax:
            self.transfer_syntax.append(syntax)


def build_context(
    abstract_syntax: str, transfer_syntax: str | Sequence[str] | None = None
) -> PresentationContext:
    """pynetdicom's ``build_context``: one context, default syntaxes if none are named."""
    if transfer_syntax is None:
        syntaxes = list(DEFAULT_TRANSFER_SYNTAXES)
    elif isinstance(transfer_syntax, str):
        syntaxes = [transfer_syntax]
    else:
        syntaxes = list(transfer_syntax)
    return PresentationContext(str(abstract_syntax), syntaxes)


def build_role(uid: str, scu_role: bool = False, scp_role: bool = False) -> RoleSelection:
    """pynetdicom's ``build_role``: an SCP/SCU Role Selection item for ``ext_neg``.

    Pass the result in ``Association``/``associate(ext_neg=[...])`` as in
    pynetdicom; :func:`associate` here reads them into ``ae.propose_role``.
    """
    return RoleSelection(str(uid), scu_role, scp_role)


def associate(
    ae: AE,
    addr: str,
    port: int,
    ae_title: str = "ANY-SCP",
    ext_neg: Iterable[Any] | None = None,
    **kwargs: Any,
) -> Any:
    """``ae.associate`` taking pynetdicom's ``ext_neg`` (role selection items)."""
    for item in ext_neg or ():
        if isinstance(item, RoleSelection):
            ae.propose_role(item.sop_class_uid, bool(item.scu_role), bool(item.scp_role))
    return ae.associate(addr, port, ae_title=ae_title, **kwargs)


# -- SOP class constants, named by their PS3.6 keyword ---------------------------------------
# pynetdicom names these few differently from the PS3.6 keyword.
_PYNETDICOM_ALIASES = {
    "ModalityWorklistInformationFind": "ModalityWorklistInformationModelFind",
}


def _sop_class_constants() -> dict[str, UID]:
    """keyword -> UID for every SOP class the registries know (Verification, storage, Q/R)."""
    uids = [VERIFICATION, *STORAGE_SOP_CLASSES, *(sop.uid for sop in qr.QR_SOP_CLASSES)]
    constants: dict[str, UID] = {}
    for uid in uids:
        entry = UID_dictionary.get(uid)
        keyword = entry[4] if entry else _keyword_from_name(lookup(uid))
        if keyword:
            constants[keyword] = UID(uid)
    # The DIMSE-N classes under pynetdicom's names, whatever pydicom calls them.
    for keyword, (uid, _name, _service) in N_SOP_CLASSES.items():
        constants[keyword] = UID(uid)
    for alias, keyword in _PYNETDICOM_ALIASES.items():
        if keyword in constants:
            constants[alias] = constants[keyword]
    return constants


def _keyword_from_name(sop: Any) -> str:
    """A keyword for a class newer than pydicom's dictionary: its name's words joined."""
    if sop is None:
        return ""
    return "".join(w[:1].upper() + w[1:] for w in sop.name.replace("-", " ").split())


SOP_CLASSES: dict[str, UID] = _sop_class_constants()
"""Every generated constant, keyword -> UID (also module attributes of the same name)."""
globals().update(SOP_CLASSES)


def __getattr__(name: str) -> UID:
    # For type checkers the constants are dynamic; at run time they are in globals().
    raise AttributeError(name)


# -- context lists -------------------------------------------------------------------------
def _contexts(uids: Iterable[str]) -> list[PresentationContext]:
    return [build_context(uid) for uid in uids]


def _models(*models: str) -> list[str]:
    return [sop.uid for sop in qr.QR_SOP_CLASSES if sop.model in models and not sop.retired]


VerificationPresentationContexts = _contexts([VERIFICATION])
AllStoragePresentationContexts = _contexts(STORAGE_SOP_CLASSES)
# At most 128 contexts fit one association (PS3.8 9.3.2.2: odd IDs 1..255): the
# usual modalities first, then others, 120 in all, leaving room for a few more.
StoragePresentationContexts = _contexts(
    list(dict.fromkeys([*COMMON_STORAGE_SOP_CLASSES, *STORAGE_SOP_CLASSES]))[:120]
)
QueryRetrievePresentationContexts = _contexts(
    _models(
        qr.PATIENT_ROOT,
        qr.STUDY_ROOT,
        qr.PATIENT_STUDY_ONLY,
        qr.COMPOSITE_INSTANCE_ROOT,
        qr.COMPOSITE_INSTANCE_NO_BULK,
    )
)
BasicWorklistManagementPresentationContexts = _contexts(_models(qr.MODALITY_WORKLIST))
HangingProtocolPresentationContexts = _contexts(_models(qr.HANGING_PROTOCOL))
ColorPalettePresentationContexts = _contexts(_models(qr.COLOR_PALETTE))
DefinedProcedureProtocolPresentationContexts = _contexts(_models(qr.DEFINED_PROCEDURE_PROTOCOL))
ImplantTemplatePresentationContexts = _contexts(
    _models(qr.GENERIC_IMPLANT_TEMPLATE, qr.IMPLANT_ASSEMBLY_TEMPLATE, qr.IMPLANT_TEMPLATE_GROUP)
)
RelevantPatientInformationPresentationContexts = _contexts(_models(qr.RELEVANT_PATIENT_INFORMATION))
SubstanceAdministrationPresentationContexts = _contexts(_models(qr.SUBSTANCE_ADMINISTRATION))
ProtocolApprovalPresentationContexts = _contexts(_models(qr.PROTOCOL_APPROVAL))


def _n_service(*services: str) -> list[str]:
    return sorted(uid for uid, _name, service in N_SOP_CLASSES.values() if service in services)


# The DIMSE-N services' contexts, as pynetdicom groups them.
ApplicationEventLoggingPresentationContexts = _contexts(_n_service("application-event-logging"))
DisplaySystemPresentationContexts = _contexts(_n_service("display-system"))
InstanceAvailabilityPresentationContexts = _contexts(_n_service("instance-availability"))
MediaCreationManagementPresentationContexts = _contexts(_n_service("media-creation"))
PrintManagementPresentationContexts = _contexts(_n_service("print", "print-meta"))
ProcedureStepPresentationContexts = _contexts(_n_service("procedure-step"))
ModalityPerformedPresentationContexts = _contexts(_n_service("procedure-step"))
RTMachineVerificationPresentationContexts = _contexts(_n_service("rt-machine-verification"))
StorageCommitmentPresentationContexts = _contexts(_n_service("storage-commitment"))
# pynetdicom's list also holds the UPS Query class (C-FIND, 1.2.840.10008.5.1.4.34.6.5).
UnifiedProcedurePresentationContexts = _contexts(
    sorted([*_n_service("unified-procedure-step"), "1.2.840.10008.5.1.4.34.6.5"])
)

__all__ = [
    "AE",
    "ALL_TRANSFER_SYNTAXES",
    "AllStoragePresentationContexts",
    "ApplicationEventLoggingPresentationContexts",
    "DisplaySystemPresentationContexts",
    "InstanceAvailabilityPresentationContexts",
    "MediaCreationManagementPresentationContexts",
    "ModalityPerformedPresentationContexts",
    "PrintManagementPresentationContexts",
    "ProcedureStepPresentationContexts",
    "RTMachineVerificationPresentationContexts",
    "StorageCommitmentPresentationContexts",
    "UnifiedProcedurePresentationContexts",
    "BasicWorklistManagementPresentationContexts",
    "ColorPalettePresentationContexts",
    "DefinedProcedureProtocolPresentationContexts",
    "HangingProtocolPresentationContexts",
    "ImplantTemplatePresentationContexts",
    "PresentationContext",
    "ProtocolApprovalPresentationContexts",
    "QueryRetrievePresentationContexts",
    "RelevantPatientInformationPresentationContexts",
    "StoragePresentationContexts",
    "SubstanceAdministrationPresentationContexts",
    "VerificationPresentationContexts",
    "associate",
    "build_context",
    "build_role",
    "debug_logger",
    "evt",
    *SOP_CLASSES,
]
