"""SOP class and transfer syntax UIDs, and which service each SOP class uses.

One registry answers "which service and which status table does this UID
use?" so that negotiation, dispatch and the conformance tables agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

VERIFICATION = "1.2.840.10008.1.1"

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

# Preference order for an acceptor choosing among proposed uncompressed syntaxes.
UNCOMPRESSED_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
)
DEFAULT_TRANSFER_SYNTAXES: tuple[str, ...] = (
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)


@dataclass(frozen=True, slots=True)
class SOPClass:
    uid: str
    name: str
    service: str


_REGISTRY: dict[str, SOPClass] = {}


def register(uid: str, name: str, service: str) -> SOPClass:
    sop = SOPClass(uid, name, service)
    _REGISTRY[uid] = sop
    return sop


def lookup(uid: str) -> SOPClass | None:
    sop = _REGISTRY.get(uid)
    if sop is None and "STORAGE_SOP_CLASSES" not in globals():
        _lazy("STORAGE_SOP_CLASSES")  # the storage classes register on first need
        sop = _REGISTRY.get(uid)
    return sop


def registered() -> tuple[SOPClass, ...]:
    """Every registered SOP class, the storage classes included, in registration order.

    The conformance statement iterates this, so a service that registers its
    SOP classes appears there without being listed anywhere else.
    """
    if "STORAGE_SOP_CLASSES" not in globals():
        _lazy("STORAGE_SOP_CLASSES")
    return tuple(_REGISTRY.values())


def service_of(uid: str) -> str | None:
    sop = lookup(uid)
    return sop.service if sop else None


register(VERIFICATION, "Verification SOP Class", "verification")

# -- SOP classes of the DIMSE-N services (pynetdicom's names) ----------------------------
STORAGE_COMMITMENT_PUSH_MODEL = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
"""The well-known SOP Instance of Storage Commitment (PS3.4 J.3.5)."""
MODALITY_PERFORMED_PROCEDURE_STEP = "1.2.840.10008.3.1.2.3.3"
UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"
UPS_WATCH = "1.2.840.10008.5.1.4.34.6.2"
UPS_PULL = "1.2.840.10008.5.1.4.34.6.3"
UPS_EVENT = "1.2.840.10008.5.1.4.34.6.4"
UPS_GLOBAL_SUBSCRIPTION_INSTANCE = "1.2.840.10008.5.1.4.34.5"
"""The well-known UPS instance to (un)subscribe to every UPS (PS3.4 CC.3.1)."""
UPS_FILTERED_GLOBAL_SUBSCRIPTION_INSTANCE = "1.2.840.10008.5.1.4.34.5.1"
"""The well-known UPS instance for a subscription filtered by a query (PS3.4 CC.3.1)."""

# keyword (pynetdicom's) -> (UID, name, service); every DIMSE-N class pynetdicom knows.
N_SOP_CLASSES: dict[str, tuple[str, str, str]] = {
    "StorageCommitmentPushModel": (
        STORAGE_COMMITMENT_PUSH_MODEL,
        "Storage Commitment Push Model SOP Class",
        "storage-commitment",
    ),
    "ModalityPerformedProcedureStep": (
        MODALITY_PERFORMED_PROCEDURE_STEP,
        "Modality Performed Procedure Step SOP Class",
        "procedure-step",
    ),
    "ModalityPerformedProcedureStepRetrieve": (
        "1.2.840.10008.3.1.2.3.4",
        "Modality Performed Procedure Step Retrieve SOP Class",
        "procedure-step",
    ),
    "ModalityPerformedProcedureStepNotification": (
        "1.2.840.10008.3.1.2.3.5",
        "Modality Performed Procedure Step Notification SOP Class",
        "procedure-step",
    ),
    "UnifiedProcedureStepPush": (
        UPS_PUSH,
        "Unified Procedure Step - Push SOP Class",
        "unified-procedure-step",
    ),
    "UnifiedProcedureStepWatch": (
        UPS_WATCH,
        "Unified Procedure Step - Watch SOP Class",
        "unified-procedure-step",
    ),
    "UnifiedProcedureStepPull": (
        UPS_PULL,
        "Unified Procedure Step - Pull SOP Class",
        "unified-procedure-step",
    ),
    "UnifiedProcedureStepEvent": (
        UPS_EVENT,
        "Unified Procedure Step - Event SOP Class",
        "unified-procedure-step",
    ),
    "BasicFilmSession": ("1.2.840.10008.5.1.1.1", "Basic Film Session SOP Class", "print"),
    "BasicFilmBox": ("1.2.840.10008.5.1.1.2", "Basic Film Box SOP Class", "print"),
    "BasicGrayscaleImageBox": (
        "1.2.840.10008.5.1.1.4",
        "Basic Grayscale Image Box SOP Class",
        "print",
    ),
    "BasicColorImageBox": ("1.2.840.10008.5.1.1.4.1", "Basic Color Image Box SOP Class", "print"),
    "PrintJob": ("1.2.840.10008.5.1.1.14", "Print Job SOP Class", "print"),
    "BasicAnnotationBox": ("1.2.840.10008.5.1.1.15", "Basic Annotation Box SOP Class", "print"),
    "Printer": ("1.2.840.10008.5.1.1.16", "Printer SOP Class", "print"),
    "PrinterConfigurationRetrieval": (
        "1.2.840.10008.5.1.1.16.376",
        "Printer Configuration Retrieval SOP Class",
        "print",
    ),
    "PresentationLUT": ("1.2.840.10008.5.1.1.23", "Presentation LUT SOP Class", "print"),
    "BasicGrayscalePrintManagementMeta": (
        "1.2.840.10008.5.1.1.9",
        "Basic Grayscale Print Management Meta SOP Class",
        "print-meta",
    ),
    "BasicColorPrintManagementMeta": (
        "1.2.840.10008.5.1.1.18",
        "Basic Color Print Management Meta SOP Class",
        "print-meta",
    ),
    "ProceduralEventLogging": (
        "1.2.840.10008.1.40",
        "Procedural Event Logging SOP Class",
        "application-event-logging",
    ),
    "SubstanceAdministrationLogging": (
        "1.2.840.10008.1.42",
        "Substance Administration Logging SOP Class",
        "application-event-logging",
    ),
    "DisplaySystem": ("1.2.840.10008.5.1.1.40", "Display System SOP Class", "display-system"),
    "InstanceAvailabilityNotification": (
        "1.2.840.10008.5.1.4.33",
        "Instance Availability Notification SOP Class",
        "instance-availability",
    ),
    "MediaCreationManagement": (
        "1.2.840.10008.5.1.1.33",
        "Media Creation Management SOP Class UID",
        "media-creation",
    ),
    "RTConventionalMachineVerification": (
        "1.2.840.10008.5.1.4.34.8",
        "RT Conventional Machine Verification",
        "rt-machine-verification",
    ),
    "RTIonMachineVerification": (
        "1.2.840.10008.5.1.4.34.9",
        "RT Ion Machine Verification",
        "rt-machine-verification",
    ),
    "InventoryCreation": (
        "1.2.840.10008.5.1.4.1.1.201.5",
        "Inventory Creation",
        "storage-management",
    ),
}
for _uid, _name, _service in N_SOP_CLASSES.values():
    register(_uid, _name, _service)

META_SOP_CLASSES: frozenset[str] = frozenset(
    uid for uid, _name, service in N_SOP_CLASSES.values() if service == "print-meta"
)
"""Meta SOP classes: one presentation context for several SOP classes (PS3.4 H.3), so a
request on it names a member class, not the context's abstract syntax."""


def is_normalized(uid: str) -> bool:
    """Whether ``uid`` is a SOP class of a DIMSE-N service (as the registry knows them)."""
    return uid in _N_UIDS


_N_UIDS: frozenset[str] = frozenset(uid for uid, _name, _service in N_SOP_CLASSES.values())


# PS3.4 Annex GG: storage of objects that are not about a patient; they have
# their own status table (no Warning codes).
NON_PATIENT_STORAGE: frozenset[str] = frozenset(
    {
        "1.2.840.10008.5.1.4.38.1",  # Hanging Protocol Storage
        "1.2.840.10008.5.1.4.39.1",  # Color Palette Storage
        "1.2.840.10008.5.1.4.43.1",  # Generic Implant Template Storage
        "1.2.840.10008.5.1.4.44.1",  # Implant Assembly Template Storage
        "1.2.840.10008.5.1.4.45.1",  # Implant Template Group Storage
        "1.2.840.10008.5.1.4.1.1.200.1",  # CT Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.200.3",  # Protocol Approval Storage
        "1.2.840.10008.5.1.4.1.1.200.7",  # XA Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.201.1",  # Inventory Storage
    }
)


# Storage SOP classes newer than the pydicom release we depend on (PS3.6 Table A-1,
# 2024): added by hand until pydicom's UID dictionary lists them.
_STORAGE_NEWER_THAN_PYDICOM: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.9.100.1": "Waveform Presentation State Storage",
    "1.2.840.10008.5.1.4.1.1.9.100.2": "Waveform Acquisition Presentation State Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.8": "Height Map Segmentation Storage",
}

# A Storage SOP class is named "<object> Storage", optionally followed by the
# image's intent (DX, MG, IO, breast projection, IVOCT, DICOS DX: "- For
# Presentation" / "- For Processing") or, for retired trial classes, "- Trial";
# the retired print-era classes add " SOP Class".
_STORAGE_NAME = re.compile(
    r"Storage(?: - (?:For Presentation|For Processing|Trial))?(?: SOP Class)?$"
)

# SOP classes whose name matches the pattern but that belong to other services:
# Storage Commitment (PS3.4 Annex J) and the DICOMDIR's Media Storage Directory
# (PS3.10; never exchanged through C-STORE, not in PS3.4 Annex B).
_NOT_STORAGE: frozenset[str] = frozenset(
    {
        "1.2.840.10008.1.3.10",  # Media Storage Directory Storage
        "1.2.840.10008.1.20.1",  # Storage Commitment Push Model SOP Class
        "1.2.840.10008.1.20.2",  # Storage Commitment Pull Model SOP Class (retired)
    }
)


def _storage_class_names() -> dict[str, str]:
    """UID -> name of every Storage SOP class of PS3.4 Annex B / GG, retired ones included.

    Taken from pydicom's UID dictionary (PS3.6 Table A-1, type "SOP Class"),
    plus the classes newer than that dictionary.
    """
    from pydicom._uid_dict import UID_dictionary

    names = {
        uid: name
        for uid, (name, kind, *_rest) in UID_dictionary.items()
        if kind == "SOP Class" and uid not in _NOT_STORAGE and _STORAGE_NAME.search(name)
    }
    for uid, name in _STORAGE_NEWER_THAN_PYDICOM.items():
        names.setdefault(uid, name)
    return names


def _register_storage_classes() -> tuple[str, ...]:
    """Register every Storage class; a class registered before (by hand) stays as it is."""
    uids = []
    for uid, name in _storage_class_names().items():
        service = "non-patient-storage" if uid in NON_PATIENT_STORAGE else "storage"
        if uid not in _REGISTRY:
            register(uid, name, service)
        uids.append(uid)
    return tuple(uids)


CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


def is_storage(uid: str) -> bool:
    return service_of(uid) in ("storage", "non-patient-storage")


def _all_transfer_syntaxes() -> tuple[str, ...]:
    """Uncompressed first (our preference), then every encapsulated syntax as pass-through."""
    from pydicom.uid import AllTransferSyntaxes

    rest = [str(ts) for ts in AllTransferSyntaxes if str(ts) not in UNCOMPRESSED_TRANSFER_SYNTAXES]
    return UNCOMPRESSED_TRANSFER_SYNTAXES + tuple(rest)


from dimsefsm.qr.registry import register_all as _register_qr_classes  # noqa: E402

_register_qr_classes()


def _common_storage() -> tuple[str, ...]:
    """Storage classes a retrieving SCU proposes by default (the usual modalities)."""
    from pydicom._uid_dict import UID_dictionary

    names = (
        "CT Image Storage",
        "Enhanced CT Image Storage",
        "MR Image Storage",
        "Enhanced MR Image Storage",
        "Computed Radiography Image Storage",
        "Digital X-Ray Image Storage - For Presentation",
        "Digital X-Ray Image Storage - For Processing",
        "Digital Mammography X-Ray Image Storage - For Presentation",
        "Digital Mammography X-Ray Image Storage - For Processing",
        "Ultrasound Image Storage",
        "Ultrasound Multi-frame Image Storage",
        "Secondary Capture Image Storage",
        "Multi-frame Single Bit Secondary Capture Image Storage",
        "Multi-frame Grayscale Byte Secondary Capture Image Storage",
        "Multi-frame Grayscale Word Secondary Capture Image Storage",
        "Multi-frame True Color Secondary Capture Image Storage",
        "Nuclear Medicine Image Storage",
        "Positron Emission Tomography Image Storage",
        "Enhanced PET Image Storage",
        "X-Ray Angiographic Image Storage",
        "X-Ray Radiofluoroscopic Image Storage",
        "RT Image Storage",
        "RT Dose Storage",
        "RT Structure Set Storage",
        "RT Plan Storage",
        "Basic Text SR Storage",
        "Enhanced SR Storage",
        "Comprehensive SR Storage",
        "Key Object Selection Document Storage",
        "Encapsulated PDF Storage",
        "Segmentation Storage",
        "VL Photographic Image Storage",
        "Grayscale Softcopy Presentation State Storage",
        "Raw Data Storage",
        "Breast Tomosynthesis Image Storage",
        "Digital Intra-Oral X-Ray Image Storage - For Presentation",
        "12-lead ECG Waveform Storage",
        "General ECG Waveform Storage",
        "Spatial Registration Storage",
        "Hanging Protocol Storage",
        "Color Palette Storage",
    )
    by_name = {entry[0]: uid for uid, entry in UID_dictionary.items()}
    return tuple(by_name[name] for name in names)


# The tables drawn from pydicom's dictionaries are built on first access (PEP 562),
# so that importing this module (every association does) does not import pydicom.
_LAZY: dict[str, Callable[[], tuple[str, ...]]] = {
    "STORAGE_SOP_CLASSES": _register_storage_classes,
    "ALL_TRANSFER_SYNTAXES": _all_transfer_syntaxes,
    "COMMON_STORAGE_SOP_CLASSES": _common_storage,
}

if TYPE_CHECKING:
    STORAGE_SOP_CLASSES: tuple[str, ...]
    ALL_TRANSFER_SYNTAXES: tuple[str, ...]
    COMMON_STORAGE_SOP_CLASSES: tuple[str, ...]


def _lazy(name: str) -> tuple[str, ...]:
    value = _LAZY[name]()
    globals()[name] = value
    return value


def __getattr__(name: str) -> tuple[str, ...]:
    if name in _LAZY:
        return _lazy(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
