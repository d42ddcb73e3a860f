"""The single-level Q/R information models: their storage classes and key tables.

Hanging Protocol (PS3.4 U.6.1.2), Color Palette (X.6.1.2), Defined Procedure
Protocol (HH.6.1.2) and the three Implant Template models (BB.6.1.2) have no
patient/study/series hierarchy: one entity, the stored instance, identified
by its SOP Instance UID.  C-FIND uses the "Worklist" search method (no
Query/Retrieve Level, one response per matching instance); C-GET and C-MOVE
take SOP Instance UID alone, one UID or a list (U.4.2, U.4.3, HH.4.2, ...).

This module is data: which storage classes each model serves (the archive
files an instance under the model of its SOP class), the key table of each
model (the conformance statement lists it) and the short names the command
line tools take (``findscu --model hanging-protocol``).  Key types follow the
tables: ``U`` unique, ``R`` required matching key, ``-`` return key only;
the return key type is the table's (1, 1C, 2, 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydicom.datadict import tag_for_keyword

from dimsefsm.qr import registry

__all__ = [
    "FLAT_MODELS",
    "MODEL_NAMES",
    "FlatModel",
    "Key",
    "flat_model",
    "model_of_storage_class",
]


@dataclass(frozen=True, slots=True)
class Key:
    """One row of a model's key table; ``items`` are the keys of a sequence's item."""

    tag: int
    matching: str
    returned: str
    items: tuple[Key, ...] = ()

    @property
    def keyword(self) -> str:
        from pydicom.datadict import keyword_for_tag

        return keyword_for_tag(self.tag)


def _key(keyword: str, matching: str, returned: str, *items: Key) -> Key:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - guards typos in the tables below
        raise ValueError(f"unknown DICOM keyword {keyword!r}")
    return Key(tag, matching, returned, items)


@dataclass(frozen=True, slots=True)
class FlatModel:
    name: str
    """The registry's model name (``registry.HANGING_PROTOCOL`` ...)."""
    title: str
    section: str
    """Where PS3.4 defines its attributes."""
    storage_classes: tuple[str, ...]
    keys: tuple[Key, ...]

    @property
    def find_class(self) -> str:
        return _class_of(self.name, "find")

    @property
    def get_class(self) -> str:
        return _class_of(self.name, "get")

    @property
    def move_class(self) -> str:
        return _class_of(self.name, "move")


def _class_of(model: str, service: str) -> str:
    (sop,) = (s for s in registry.classes_of_model(model) if s.service == service)
    return sop.uid


# PS3.4 Table 8-1a, the coded entry macro the models include: matched on the code, not
# on its meaning.
_CODE: Final = (
    _key("CodeValue", "R", "1C"),
    _key("CodingSchemeDesignator", "R", "1C"),
    _key("CodingSchemeVersion", "R", "1C"),
    _key("CodeMeaning", "-", "1"),
    _key("LongCodeValue", "R", "1C"),
    _key("URNCodeValue", "R", "1C"),
)
_REFERENCE: Final = (
    _key("ReferencedSOPClassUID", "R", "1"),
    _key("ReferencedSOPInstanceUID", "R", "1"),
)
_SOP_COMMON: Final = (
    _key("SOPClassUID", "R", "1"),
    _key("SOPInstanceUID", "U", "1"),
)

HANGING_PROTOCOL: Final = FlatModel(
    registry.HANGING_PROTOCOL,
    "Hanging Protocol",
    "PS3.4 U.6.1.2",
    ("1.2.840.10008.5.1.4.38.1",),
    (
        *_SOP_COMMON,
        _key("HangingProtocolName", "R", "1"),
        _key("HangingProtocolDescription", "-", "1"),
        _key("HangingProtocolLevel", "R", "1"),
        _key("HangingProtocolCreator", "-", "1"),
        _key("HangingProtocolCreationDateTime", "-", "1"),
        _key(
            "HangingProtocolDefinitionSequence",
            "R",
            "1",
            _key("Modality", "R", "2"),
            _key("AnatomicRegionSequence", "R", "2", *_CODE),
            _key("Laterality", "R", "2"),
            _key("ProcedureCodeSequence", "R", "2", *_CODE),
            _key("ReasonForRequestedProcedureCodeSequence", "R", "2", *_CODE),
        ),
        _key("NumberOfPriorsReferenced", "R", "1"),
        _key("HangingProtocolUserIdentificationCodeSequence", "R", "2", *_CODE),
        _key("HangingProtocolUserGroupName", "R", "3"),
        _key("NumberOfScreens", "R", "2"),
        _key(
            "NominalScreenDefinitionSequence",
            "-",
            "2",
            _key("NumberOfVerticalPixels", "-", "1"),
            _key("NumberOfHorizontalPixels", "-", "1"),
            _key("DisplayEnvironmentSpatialPosition", "-", "1"),
            _key("ScreenMinimumGrayscaleBitDepth", "-", "1C"),
            _key("ScreenMinimumColorBitDepth", "-", "1C"),
            _key("ApplicationMaximumRepaintTime", "-", "3"),
        ),
    ),
)

COLOR_PALETTE: Final = FlatModel(
    registry.COLOR_PALETTE,
    "Color Palette",
    "PS3.4 X.6.1.2",
    ("1.2.840.10008.5.1.4.39.1",),
    (
        *_SOP_COMMON,
        _key("ContentLabel", "R", "1"),
        _key("ContentDescription", "-", "2"),
        _key("ContentCreatorName", "-", "2"),
        _key(
            "AlternateContentDescriptionSequence",
            "-",
            "3",
            _key("ContentDescription", "-", "1"),
            _key("LanguageCodeSequence", "-", "1", *_CODE),
        ),
    ),
)

DEFINED_PROCEDURE_PROTOCOL: Final = FlatModel(
    registry.DEFINED_PROCEDURE_PROTOCOL,
    "Defined Procedure Protocol",
    "PS3.4 HH.6.1.2",
    (
        "1.2.840.10008.5.1.4.1.1.200.1",  # CT Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.200.7",  # XA Defined Procedure Protocol Storage
    ),
    (
        *_SOP_COMMON,
        _key(
            "CustodialOrganizationSequence",
            "R",
            "2",
            _key("InstitutionName", "R", "2"),
            _key("InstitutionCodeSequence", "R", "2", *_CODE),
        ),
        _key("ResponsibleGroupCodeSequence", "R", "2", *_CODE),
        _key("ProtocolName", "R", "1"),
        _key("PotentialScheduledProtocolCodeSequence", "R", "1", *_CODE),
        _key("PotentialRequestedProcedureCodeSequence", "R", "1", *_CODE),
        _key("PotentialReasonsForProcedure", "-", "2"),
        _key("PotentialReasonsForProcedureCodeSequence", "R", "2", *_CODE),
        _key("PotentialDiagnosticTasks", "-", "2"),
        _key("PredecessorProtocolSequence", "R", "2", *_REFERENCE),
        _key("ContentCreatorName", "R", "1"),
        _key("InstanceCreationDate", "R", "1"),
        _key("InstanceCreationTime", "R", "1"),
        _key("ClinicalTrialSponsorName", "R", "1"),
        _key("ClinicalTrialProtocolID", "R", "1"),
        _key("EquipmentModality", "R", "1"),
        _key(
            "ModelSpecificationSequence",
            "R",
            "2",
            _key("Manufacturer", "R", "1"),
            _key("ManufacturerRelatedModelGroup", "R", "2"),
            _key("ManufacturerModelName", "R", "2"),
            _key("SoftwareVersions", "R", "2"),
            _key("DeviceSerialNumber", "-", "2"),
        ),
        _key("AnatomicRegionSequence", "R", "2", *_CODE),
        _key("PrimaryAnatomicStructureSequence", "R", "2", *_CODE),
    ),
)

GENERIC_IMPLANT_TEMPLATE: Final = FlatModel(
    registry.GENERIC_IMPLANT_TEMPLATE,
    "Generic Implant Template",
    "PS3.4 BB.6.1.2.1",
    ("1.2.840.10008.5.1.4.43.1",),
    (
        *_SOP_COMMON,
        _key("Manufacturer", "R", "1"),
        _key("ImplantName", "R", "1"),
        _key("ImplantSize", "R", "2"),
        _key("ImplantPartNumber", "R", "1"),
        _key("ReplacedImplantTemplateSequence", "R", "2", *_REFERENCE),
        _key("DerivationImplantTemplateSequence", "R", "2", *_REFERENCE),
        _key("EffectiveDateTime", "R", "1"),
        _key("OriginalImplantTemplateSequence", "R", "2", *_REFERENCE),
        _key(
            "ImplantTargetAnatomySequence",
            "R",
            "2",
            _key("AnatomicRegionSequence", "R", "1", *_CODE),
        ),
        _key("ImplantRegulatoryDisapprovalCodeSequence", "R", "2", *_CODE),
        _key("MaterialCodeSequence", "R", "1", *_CODE),
        _key("CoatingMaterialsCodeSequence", "R", "1", *_CODE),
    ),
)

IMPLANT_ASSEMBLY_TEMPLATE: Final = FlatModel(
    registry.IMPLANT_ASSEMBLY_TEMPLATE,
    "Implant Assembly Template",
    "PS3.4 BB.6.1.2.2",
    ("1.2.840.10008.5.1.4.44.1",),
    (
        *_SOP_COMMON,
        _key("ImplantAssemblyTemplateName", "R", "1"),
        _key("Manufacturer", "R", "1"),
        _key("ProcedureTypeCodeSequence", "R", "1", *_CODE),
        _key("ReplacedImplantAssemblyTemplateSequence", "R", "1", *_REFERENCE),
        _key("OriginalImplantAssemblyTemplateSequence", "R", "1", *_REFERENCE),
        _key("DerivationImplantAssemblyTemplateSequence", "R", "1", *_REFERENCE),
        _key("SurgicalTechnique", "R", "2"),
    ),
)

IMPLANT_TEMPLATE_GROUP: Final = FlatModel(
    registry.IMPLANT_TEMPLATE_GROUP,
    "Implant Template Group",
    "PS3.4 BB.6.1.2.3",
    ("1.2.840.10008.5.1.4.45.1",),
    (
        *_SOP_COMMON,
        _key("ImplantTemplateGroupName", "R", "1"),
        _key("ImplantTemplateGroupDescription", "-", "2"),
        _key("ImplantTemplateGroupIssuer", "R", "1"),
        _key("EffectiveDateTime", "R", "1"),
        _key("ReplacedImplantTemplateGroupSequence", "R", "2", *_REFERENCE),
    ),
)

FLAT_MODELS: Final[dict[str, FlatModel]] = {
    model.name: model
    for model in (
        HANGING_PROTOCOL,
        COLOR_PALETTE,
        DEFINED_PROCEDURE_PROTOCOL,
        GENERIC_IMPLANT_TEMPLATE,
        IMPLANT_ASSEMBLY_TEMPLATE,
        IMPLANT_TEMPLATE_GROUP,
    )
}
"""The single-level models an archive serves, by registry model name."""

MODEL_NAMES: Final[dict[str, str]] = {
    "hanging-protocol": registry.HANGING_PROTOCOL,
    "color-palette": registry.COLOR_PALETTE,
    "dpp": registry.DEFINED_PROCEDURE_PROTOCOL,
    "implant": registry.GENERIC_IMPLANT_TEMPLATE,
    "implant-assembly": registry.IMPLANT_ASSEMBLY_TEMPLATE,
    "implant-group": registry.IMPLANT_TEMPLATE_GROUP,
}
"""Short names the command line tools take (``--model``), to registry model names."""

_BY_STORAGE_CLASS: Final[dict[str, str]] = {
    uid: model.name for model in FLAT_MODELS.values() for uid in model.storage_classes
}


def model_of_storage_class(sop_class_uid: str) -> str | None:
    """The single-level model an instance of this storage class is filed under; None if none."""
    return _BY_STORAGE_CLASS.get(sop_class_uid)


def flat_model(name: str) -> FlatModel | None:
    return FLAT_MODELS.get(name)
