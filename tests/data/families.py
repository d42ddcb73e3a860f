"""One realistic instance of each single-level Q/R family, built with pydicom.

Each carries the Type 1 and 2 attributes of its IOD that the model's keys
name (PS3.3 A.38 Hanging Protocol, A.58 Color Palette, A.83/A.82 Defined
Procedure Protocol, A.60-A.62 Implant Templates), with values a vendor would
write, so queries match on the attributes real instances have.
"""

from __future__ import annotations

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from dimsefsm.qr import registry

HANGING_PROTOCOL_STORAGE = "1.2.840.10008.5.1.4.38.1"
COLOR_PALETTE_STORAGE = "1.2.840.10008.5.1.4.39.1"
CT_DPP_STORAGE = "1.2.840.10008.5.1.4.1.1.200.1"
XA_DPP_STORAGE = "1.2.840.10008.5.1.4.1.1.200.7"
GENERIC_IMPLANT_TEMPLATE_STORAGE = "1.2.840.10008.5.1.4.43.1"
IMPLANT_ASSEMBLY_TEMPLATE_STORAGE = "1.2.840.10008.5.1.4.44.1"
IMPLANT_TEMPLATE_GROUP_STORAGE = "1.2.840.10008.5.1.4.45.1"


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def reference(sop_class: str, uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = uid
    return item


def _common(sop_class: str, uid: str | None) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.InstanceCreationDate = "20250301"
    ds.InstanceCreationTime = "101500"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid or generate_uid()
    ds.Manufacturer = "Dimse Imaging"
    return ds


def hanging_protocol(uid: str | None = None, *, user: str = "jdoe") -> Dataset:
    ds = _common(HANGING_PROTOCOL_STORAGE, uid)
    ds.HangingProtocolName = "CHEST CT PRIORS"
    ds.HangingProtocolDescription = "Chest CT with two priors, lung and mediastinum windows"
    ds.HangingProtocolLevel = "USER"
    ds.HangingProtocolCreator = "Dr. J. Doe"
    ds.HangingProtocolCreationDateTime = "20250301101500"
    definition = Dataset()
    definition.Modality = "CT"
    definition.AnatomicRegionSequence = [code("T-D3000", "SRT", "Chest")]
    definition.Laterality = ""
    definition.ProcedureCodeSequence = [code("RPID16", "RADLEX", "CT Chest")]
    definition.ReasonForRequestedProcedureCodeSequence = []
    ds.HangingProtocolDefinitionSequence = [definition]
    ds.NumberOfPriorsReferenced = 2
    ds.HangingProtocolUserIdentificationCodeSequence = [code(user, "99HOSP", f"User {user}")]
    ds.HangingProtocolUserGroupName = "Thoracic radiology"
    ds.NumberOfScreens = 2
    screen = Dataset()
    screen.NumberOfVerticalPixels = 2048
    screen.NumberOfHorizontalPixels = 1536
    screen.DisplayEnvironmentSpatialPosition = [0.0, 0.0, 0.5, 1.0]
    screen.ScreenMinimumGrayscaleBitDepth = 10
    ds.NominalScreenDefinitionSequence = [screen]
    image_set = Dataset()
    image_set.ImageSetNumber = 1
    ds.ImageSetsSequence = [image_set]
    return ds


def color_palette(uid: str | None = None) -> Dataset:
    ds = _common(COLOR_PALETTE_STORAGE, uid)
    ds.ContentLabel = "HOT_IRON"
    ds.ContentDescription = "Hot iron palette for PET fusion"
    ds.ContentCreatorName = "Doe^Jane"
    ds.RedPaletteColorLookupTableDescriptor = [256, 0, 16]
    ds.GreenPaletteColorLookupTableDescriptor = [256, 0, 16]
    ds.BluePaletteColorLookupTableDescriptor = [256, 0, 16]
    ramp = b"".join(min(v * 3, 255).to_bytes(1, "little") * 2 for v in range(256))
    ds.RedPaletteColorLookupTableData = ramp
    ds.GreenPaletteColorLookupTableData = ramp[::-1]
    ds.BluePaletteColorLookupTableData = bytes(512)
    return ds


def defined_procedure_protocol(
    uid: str | None = None, *, sop_class: str = CT_DPP_STORAGE, manufacturer: str = "Dimse Imaging"
) -> Dataset:
    ds = _common(sop_class, uid)
    ds.Manufacturer = manufacturer
    ds.ProtocolName = "CT HEAD ROUTINE"
    ds.ContentCreatorName = "Physicist^Pat"
    custodian = Dataset()
    custodian.InstitutionName = "General Hospital"
    custodian.InstitutionCodeSequence = [code("GH01", "99HOSP", "General Hospital")]
    ds.CustodialOrganizationSequence = [custodian]
    ds.ResponsibleGroupCodeSequence = [code("NEURO", "99HOSP", "Neuroradiology")]
    ds.PotentialScheduledProtocolCodeSequence = [code("P-HEAD", "99HOSP", "Head routine")]
    ds.PotentialRequestedProcedureCodeSequence = [code("RPID22", "RADLEX", "CT Head")]
    ds.PotentialReasonsForProcedure = "Headache"
    ds.PotentialReasonsForProcedureCodeSequence = []
    ds.PotentialDiagnosticTasks = "Exclude bleeding"
    ds.PredecessorProtocolSequence = []
    ds.ClinicalTrialSponsorName = ""
    ds.ClinicalTrialProtocolID = ""
    ds.EquipmentModality = "CT" if sop_class == CT_DPP_STORAGE else "XA"
    model = Dataset()
    model.Manufacturer = manufacturer
    model.ManufacturerRelatedModelGroup = "Scanner 128"
    model.ManufacturerModelName = "Scanner 128 Pro"
    model.SoftwareVersions = "VB20"
    model.DeviceSerialNumber = "SN4711"
    ds.ModelSpecificationSequence = [model]
    ds.AnatomicRegionSequence = [code("T-D1100", "SRT", "Head")]
    ds.PrimaryAnatomicStructureSequence = []
    return ds


def generic_implant_template(uid: str | None = None) -> Dataset:
    ds = _common(GENERIC_IMPLANT_TEMPLATE_STORAGE, uid)
    ds.ImplantName = "Hip Stem Classic"
    ds.ImplantSize = "12"
    ds.ImplantPartNumber = "HS-12-C"
    ds.EffectiveDateTime = "20240115000000"
    ds.ImplantTemplateVersion = "1"
    ds.ImplantType = "DERIVED"
    ds.ReplacedImplantTemplateSequence = []
    ds.DerivationImplantTemplateSequence = []
    ds.OriginalImplantTemplateSequence = [
        reference(GENERIC_IMPLANT_TEMPLATE_STORAGE, "1.2.826.0.1.3680043.9.7133.1.1")
    ]
    anatomy = Dataset()
    anatomy.AnatomicRegionSequence = [code("T-15710", "SRT", "Hip joint")]
    ds.ImplantTargetAnatomySequence = [anatomy]
    ds.ImplantRegulatoryDisapprovalCodeSequence = []
    ds.MaterialCodeSequence = [code("C-12250", "SRT", "Titanium")]
    ds.CoatingMaterialsCodeSequence = [code("C-2000B", "SRT", "Hydroxyapatite")]
    return ds


def implant_assembly_template(uid: str | None = None) -> Dataset:
    ds = _common(IMPLANT_ASSEMBLY_TEMPLATE_STORAGE, uid)
    ds.ImplantAssemblyTemplateName = "Total Hip Assembly"
    ds.ImplantAssemblyTemplateIssuer = "Dimse Implants"
    ds.ImplantAssemblyTemplateVersion = "2"
    ds.ImplantAssemblyTemplateType = "ORIGINAL"
    ds.ProcedureTypeCodeSequence = [code("P1-15710", "SRT", "Total hip replacement")]
    ds.ReplacedImplantAssemblyTemplateSequence = []
    ds.OriginalImplantAssemblyTemplateSequence = []
    ds.DerivationImplantAssemblyTemplateSequence = []
    ds.SurgicalTechnique = "Posterior approach"
    return ds


def implant_template_group(uid: str | None = None) -> Dataset:
    ds = _common(IMPLANT_TEMPLATE_GROUP_STORAGE, uid)
    ds.ImplantTemplateGroupName = "Hip Stems 2025"
    ds.ImplantTemplateGroupDescription = "Cemented and uncemented stems"
    ds.ImplantTemplateGroupIssuer = "Dimse Implants"
    ds.EffectiveDateTime = "20250101000000"
    ds.ImplantTemplateGroupVersion = "3"
    ds.ReplacedImplantTemplateGroupSequence = []
    return ds


# (model, builder, a key that finds it) per family: what the end-to-end tests walk.
FAMILIES = {
    registry.HANGING_PROTOCOL: (hanging_protocol, {"HangingProtocolName": "CHEST*"}),
    registry.COLOR_PALETTE: (color_palette, {"ContentLabel": "HOT_IRON"}),
    registry.DEFINED_PROCEDURE_PROTOCOL: (defined_procedure_protocol, {"ProtocolName": "CT HEAD*"}),
    registry.GENERIC_IMPLANT_TEMPLATE: (generic_implant_template, {"ImplantPartNumber": "HS-12-C"}),
    registry.IMPLANT_ASSEMBLY_TEMPLATE: (
        implant_assembly_template,
        {"ImplantAssemblyTemplateName": "Total Hip*"},
    ),
    registry.IMPLANT_TEMPLATE_GROUP: (implant_template_group, {"ImplantTemplateGroupName": "Hip*"}),
}
