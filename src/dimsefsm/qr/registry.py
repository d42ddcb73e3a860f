"""Every Query/Retrieve-family SOP class as one table row.

Negotiation, dispatch, the C-FIND/C-GET/C-MOVE charts and the conformance
statement all need the same three facts about a Q/R abstract syntax: which
DIMSE service it uses, which information model its identifiers follow (so
the right level and key rules apply) and which status table gives its codes
their meaning.  Keeping them in one row per UID stops those users drifting
apart.  UIDs and names follow PS3.6 as carried by pydicom's UID dictionary
(a unit test checks every row against it).

This module deliberately does not import :mod:`dimsefsm.sop_class` at import
time: ``sop_class`` calls :func:`register_all` at the end of its own import,
so the dependency must point one way only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from dimsefsm.status import Service

QRService = Literal["find", "get", "move"]

# -- information model names -----------------------------------------------------------------
PATIENT_ROOT: Final = "patient-root"
STUDY_ROOT: Final = "study-root"
PATIENT_STUDY_ONLY: Final = "patient-study-only"
COMPOSITE_INSTANCE_ROOT: Final = "composite-instance-root"
COMPOSITE_INSTANCE_NO_BULK: Final = "composite-instance-no-bulk"
MODALITY_WORKLIST: Final = "modality-worklist"
HANGING_PROTOCOL: Final = "hanging-protocol"
COLOR_PALETTE: Final = "color-palette"
DEFINED_PROCEDURE_PROTOCOL: Final = "defined-procedure-protocol"
GENERIC_IMPLANT_TEMPLATE: Final = "generic-implant-template"
IMPLANT_ASSEMBLY_TEMPLATE: Final = "implant-assembly-template"
IMPLANT_TEMPLATE_GROUP: Final = "implant-template-group"
RELEVANT_PATIENT_INFORMATION: Final = "relevant-patient-information"
SUBSTANCE_ADMINISTRATION: Final = "substance-administration"
PROTOCOL_APPROVAL: Final = "protocol-approval"
INVENTORY: Final = "inventory"
REPOSITORY_QUERY: Final = "repository-query"
UNIFIED_PROCEDURE_STEP: Final = "unified-procedure-step"
"""The UPS information model (PS3.4 CC.2.8): flat like the worklist and matched alike.  Its
C-FIND classes (:data:`UPS_FIND_CLASSES`) are rows of no table here: they are DIMSE-N
classes too (N-GET, N-SET, N-ACTION), which :mod:`dimsefsm.sop_class` names."""

HIERARCHICAL_MODELS: Final[frozenset[str]] = frozenset(
    {
        PATIENT_ROOT,
        STUDY_ROOT,
        PATIENT_STUDY_ONLY,
        COMPOSITE_INSTANCE_ROOT,
        COMPOSITE_INSTANCE_NO_BULK,
    }
)
"""Models whose identifiers carry a Query/Retrieve Level (PS3.4 C.6, Y, Z)."""

_SOP_SERVICE: Final[dict[str, str]] = {"find": "qr-find", "get": "qr-get", "move": "qr-move"}


@dataclass(frozen=True, slots=True)
class QRSopClass:
    uid: str
    name: str
    service: QRService
    model: str
    status_service: Service
    retired: bool = False

    @property
    def sop_service(self) -> str:
        """The service name under which :mod:`dimsefsm.sop_class` knows this UID."""
        return _SOP_SERVICE[self.service]

    @property
    def hierarchical(self) -> bool:
        return self.model in HIERARCHICAL_MODELS


def _row(
    uid: str,
    name: str,
    service: QRService,
    model: str,
    status_service: Service | None = None,
    *,
    retired: bool = False,
) -> QRSopClass:
    if status_service is None:
        status_service = {
            "find": Service.QR_FIND,
            "get": Service.QR_GET,
            "move": Service.QR_MOVE,
        }[service]
    return QRSopClass(uid, name, service, model, status_service, retired)


_QR = "1.2.840.10008.5.1.4.1.2"
_MODEL = "Query/Retrieve Information Model"

QR_SOP_CLASSES: Final[tuple[QRSopClass, ...]] = (
    # PS3.4 Annex C
    _row(f"{_QR}.1.1", f"Patient Root {_MODEL} - FIND", "find", PATIENT_ROOT),
    _row(f"{_QR}.1.2", f"Patient Root {_MODEL} - MOVE", "move", PATIENT_ROOT),
    _row(f"{_QR}.1.3", f"Patient Root {_MODEL} - GET", "get", PATIENT_ROOT),
    _row(f"{_QR}.2.1", f"Study Root {_MODEL} - FIND", "find", STUDY_ROOT),
    _row(f"{_QR}.2.2", f"Study Root {_MODEL} - MOVE", "move", STUDY_ROOT),
    _row(f"{_QR}.2.3", f"Study Root {_MODEL} - GET", "get", STUDY_ROOT),
    _row(
        f"{_QR}.3.1",
        f"Patient/Study Only {_MODEL} - FIND",
        "find",
        PATIENT_STUDY_ONLY,
        retired=True,
    ),
    _row(
        f"{_QR}.3.2",
        f"Patient/Study Only {_MODEL} - MOVE",
        "move",
        PATIENT_STUDY_ONLY,
        retired=True,
    ),
    _row(
        f"{_QR}.3.3",
        f"Patient/Study Only {_MODEL} - GET",
        "get",
        PATIENT_STUDY_ONLY,
        retired=True,
    ),
    _row("1.2.840.10008.5.1.4.1.1.201.6", "Repository Query", "find", REPOSITORY_QUERY),
    # Annex Y, Z
    _row(f"{_QR}.4.2", "Composite Instance Root Retrieve - MOVE", "move", COMPOSITE_INSTANCE_ROOT),
    _row(f"{_QR}.4.3", "Composite Instance Root Retrieve - GET", "get", COMPOSITE_INSTANCE_ROOT),
    _row(
        f"{_QR}.5.3",
        "Composite Instance Retrieve Without Bulk Data - GET",
        "get",
        COMPOSITE_INSTANCE_NO_BULK,
    ),
    # Annex K
    _row(
        "1.2.840.10008.5.1.4.31",
        "Modality Worklist Information Model - FIND",
        "find",
        MODALITY_WORKLIST,
        Service.BASIC_WORKLIST,
    ),
    # Annex Q
    _row(
        "1.2.840.10008.5.1.4.37.1",
        "General Relevant Patient Information Query",
        "find",
        RELEVANT_PATIENT_INFORMATION,
        Service.RELEVANT_PATIENT,
    ),
    _row(
        "1.2.840.10008.5.1.4.37.2",
        "Breast Imaging Relevant Patient Information Query",
        "find",
        RELEVANT_PATIENT_INFORMATION,
        Service.RELEVANT_PATIENT,
    ),
    _row(
        "1.2.840.10008.5.1.4.37.3",
        "Cardiac Relevant Patient Information Query",
        "find",
        RELEVANT_PATIENT_INFORMATION,
        Service.RELEVANT_PATIENT,
    ),
    # Annex U
    _row(
        "1.2.840.10008.5.1.4.38.2",
        "Hanging Protocol Information Model - FIND",
        "find",
        HANGING_PROTOCOL,
    ),
    _row(
        "1.2.840.10008.5.1.4.38.3",
        "Hanging Protocol Information Model - MOVE",
        "move",
        HANGING_PROTOCOL,
    ),
    _row(
        "1.2.840.10008.5.1.4.38.4",
        "Hanging Protocol Information Model - GET",
        "get",
        HANGING_PROTOCOL,
    ),
    # Annex V
    _row(
        "1.2.840.10008.5.1.4.41",
        "Product Characteristics Query SOP Class",
        "find",
        SUBSTANCE_ADMINISTRATION,
        Service.SUBSTANCE_ADMINISTRATION,
    ),
    _row(
        "1.2.840.10008.5.1.4.42",
        "Substance Approval Query SOP Class",
        "find",
        SUBSTANCE_ADMINISTRATION,
        Service.SUBSTANCE_ADMINISTRATION,
    ),
    # Annex X
    _row(
        "1.2.840.10008.5.1.4.39.2",
        f"Color Palette {_MODEL} - FIND",
        "find",
        COLOR_PALETTE,
    ),
    _row(
        "1.2.840.10008.5.1.4.39.3",
        f"Color Palette {_MODEL} - MOVE",
        "move",
        COLOR_PALETTE,
    ),
    _row(
        "1.2.840.10008.5.1.4.39.4",
        f"Color Palette {_MODEL} - GET",
        "get",
        COLOR_PALETTE,
    ),
    # Annex BB
    _row(
        "1.2.840.10008.5.1.4.43.2",
        "Generic Implant Template Information Model - FIND",
        "find",
        GENERIC_IMPLANT_TEMPLATE,
    ),
    _row(
        "1.2.840.10008.5.1.4.43.3",
        "Generic Implant Template Information Model - MOVE",
        "move",
        GENERIC_IMPLANT_TEMPLATE,
    ),
    _row(
        "1.2.840.10008.5.1.4.43.4",
        "Generic Implant Template Information Model - GET",
        "get",
        GENERIC_IMPLANT_TEMPLATE,
    ),
    _row(
        "1.2.840.10008.5.1.4.44.2",
        "Implant Assembly Template Information Model - FIND",
        "find",
        IMPLANT_ASSEMBLY_TEMPLATE,
    ),
    _row(
        "1.2.840.10008.5.1.4.44.3",
        "Implant Assembly Template Information Model - MOVE",
        "move",
        IMPLANT_ASSEMBLY_TEMPLATE,
    ),
    _row(
        "1.2.840.10008.5.1.4.44.4",
        "Implant Assembly Template Information Model - GET",
        "get",
        IMPLANT_ASSEMBLY_TEMPLATE,
    ),
    _row(
        "1.2.840.10008.5.1.4.45.2",
        "Implant Template Group Information Model - FIND",
        "find",
        IMPLANT_TEMPLATE_GROUP,
    ),
    _row(
        "1.2.840.10008.5.1.4.45.3",
        "Implant Template Group Information Model - MOVE",
        "move",
        IMPLANT_TEMPLATE_GROUP,
    ),
    _row(
        "1.2.840.10008.5.1.4.45.4",
        "Implant Template Group Information Model - GET",
        "get",
        IMPLANT_TEMPLATE_GROUP,
    ),
    # Annex HH
    _row(
        "1.2.840.10008.5.1.4.20.1",
        "Defined Procedure Protocol Information Model - FIND",
        "find",
        DEFINED_PROCEDURE_PROTOCOL,
    ),
    _row(
        "1.2.840.10008.5.1.4.20.2",
        "Defined Procedure Protocol Information Model - MOVE",
        "move",
        DEFINED_PROCEDURE_PROTOCOL,
    ),
    _row(
        "1.2.840.10008.5.1.4.20.3",
        "Defined Procedure Protocol Information Model - GET",
        "get",
        DEFINED_PROCEDURE_PROTOCOL,
    ),
    # Annex II
    _row(
        "1.2.840.10008.5.1.4.1.1.200.4",
        "Protocol Approval Information Model - FIND",
        "find",
        PROTOCOL_APPROVAL,
    ),
    _row(
        "1.2.840.10008.5.1.4.1.1.200.5",
        "Protocol Approval Information Model - MOVE",
        "move",
        PROTOCOL_APPROVAL,
    ),
    _row(
        "1.2.840.10008.5.1.4.1.1.200.6",
        "Protocol Approval Information Model - GET",
        "get",
        PROTOCOL_APPROVAL,
    ),
    # Annex JJ
    _row("1.2.840.10008.5.1.4.1.1.201.2", "Inventory - FIND", "find", INVENTORY),
    _row("1.2.840.10008.5.1.4.1.1.201.3", "Inventory - MOVE", "move", INVENTORY),
    _row("1.2.840.10008.5.1.4.1.1.201.4", "Inventory - GET", "get", INVENTORY),
)

_BY_UID: Final[dict[str, QRSopClass]] = {sop.uid: sop for sop in QR_SOP_CLASSES}

# -- convenience names -----------------------------------------------------------------------
PATIENT_ROOT_FIND: Final = f"{_QR}.1.1"
PATIENT_ROOT_MOVE: Final = f"{_QR}.1.2"
PATIENT_ROOT_GET: Final = f"{_QR}.1.3"
STUDY_ROOT_FIND: Final = f"{_QR}.2.1"
STUDY_ROOT_MOVE: Final = f"{_QR}.2.2"
STUDY_ROOT_GET: Final = f"{_QR}.2.3"
PATIENT_STUDY_ONLY_FIND: Final = f"{_QR}.3.1"
PATIENT_STUDY_ONLY_MOVE: Final = f"{_QR}.3.2"
PATIENT_STUDY_ONLY_GET: Final = f"{_QR}.3.3"
REPOSITORY_QUERY_FIND: Final = "1.2.840.10008.5.1.4.1.1.201.6"
COMPOSITE_INSTANCE_ROOT_MOVE: Final = f"{_QR}.4.2"
COMPOSITE_INSTANCE_ROOT_GET: Final = f"{_QR}.4.3"
COMPOSITE_INSTANCE_NO_BULK_GET: Final = f"{_QR}.5.3"
MODALITY_WORKLIST_FIND: Final = "1.2.840.10008.5.1.4.31"
GENERAL_RELEVANT_PATIENT_FIND: Final = "1.2.840.10008.5.1.4.37.1"
BREAST_IMAGING_RELEVANT_PATIENT_FIND: Final = "1.2.840.10008.5.1.4.37.2"
CARDIAC_RELEVANT_PATIENT_FIND: Final = "1.2.840.10008.5.1.4.37.3"
HANGING_PROTOCOL_FIND: Final = "1.2.840.10008.5.1.4.38.2"
HANGING_PROTOCOL_MOVE: Final = "1.2.840.10008.5.1.4.38.3"
HANGING_PROTOCOL_GET: Final = "1.2.840.10008.5.1.4.38.4"
COLOR_PALETTE_FIND: Final = "1.2.840.10008.5.1.4.39.2"
COLOR_PALETTE_MOVE: Final = "1.2.840.10008.5.1.4.39.3"
COLOR_PALETTE_GET: Final = "1.2.840.10008.5.1.4.39.4"
PRODUCT_CHARACTERISTICS_FIND: Final = "1.2.840.10008.5.1.4.41"
SUBSTANCE_APPROVAL_FIND: Final = "1.2.840.10008.5.1.4.42"
GENERIC_IMPLANT_TEMPLATE_FIND: Final = "1.2.840.10008.5.1.4.43.2"
GENERIC_IMPLANT_TEMPLATE_MOVE: Final = "1.2.840.10008.5.1.4.43.3"
GENERIC_IMPLANT_TEMPLATE_GET: Final = "1.2.840.10008.5.1.4.43.4"
IMPLANT_ASSEMBLY_TEMPLATE_FIND: Final = "1.2.840.10008.5.1.4.44.2"
IMPLANT_ASSEMBLY_TEMPLATE_MOVE: Final = "1.2.840.10008.5.1.4.44.3"
IMPLANT_ASSEMBLY_TEMPLATE_GET: Final = "1.2.840.10008.5.1.4.44.4"
IMPLANT_TEMPLATE_GROUP_FIND: Final = "1.2.840.10008.5.1.4.45.2"
IMPLANT_TEMPLATE_GROUP_MOVE: Final = "1.2.840.10008.5.1.4.45.3"
IMPLANT_TEMPLATE_GROUP_GET: Final = "1.2.840.10008.5.1.4.45.4"
DEFINED_PROCEDURE_PROTOCOL_FIND: Final = "1.2.840.10008.5.1.4.20.1"
DEFINED_PROCEDURE_PROTOCOL_MOVE: Final = "1.2.840.10008.5.1.4.20.2"
DEFINED_PROCEDURE_PROTOCOL_GET: Final = "1.2.840.10008.5.1.4.20.3"
PROTOCOL_APPROVAL_FIND: Final = "1.2.840.10008.5.1.4.1.1.200.4"
PROTOCOL_APPROVAL_MOVE: Final = "1.2.840.10008.5.1.4.1.1.200.5"
PROTOCOL_APPROVAL_GET: Final = "1.2.840.10008.5.1.4.1.1.200.6"
INVENTORY_FIND: Final = "1.2.840.10008.5.1.4.1.1.201.2"
INVENTORY_MOVE: Final = "1.2.840.10008.5.1.4.1.1.201.3"
INVENTORY_GET: Final = "1.2.840.10008.5.1.4.1.1.201.4"


UPS_FIND_CLASSES: Final[tuple[str, ...]] = (
    "1.2.840.10008.5.1.4.34.6.3",  # Unified Procedure Step - Pull
    "1.2.840.10008.5.1.4.34.6.2",  # Unified Procedure Step - Watch
    "1.2.840.10008.5.1.4.34.6.5",  # Unified Procedure Step - Query
)
"""The SOP classes whose C-FIND queries the :data:`UNIFIED_PROCEDURE_STEP` model."""


def lookup(uid: str) -> QRSopClass | None:
    return _BY_UID.get(uid)


def classes_for(service: QRService) -> tuple[QRSopClass, ...]:
    return tuple(sop for sop in QR_SOP_CLASSES if sop.service == service)


def find_classes() -> tuple[QRSopClass, ...]:
    return classes_for("find")


def get_classes() -> tuple[QRSopClass, ...]:
    return classes_for("get")


def move_classes() -> tuple[QRSopClass, ...]:
    return classes_for("move")


def classes_of_model(model: str) -> tuple[QRSopClass, ...]:
    return tuple(sop for sop in QR_SOP_CLASSES if sop.model == model)


def register_all() -> None:
    """Enter every row into the general SOP class registry (idempotent).

    Imported lazily because ``sop_class`` itself calls this at the end of its
    import; by then its ``register`` exists.
    """
    from dimsefsm.sop_class import register

    for sop in QR_SOP_CLASSES:
        register(sop.uid, sop.name, sop.sop_service)
