"""Hierarchical Q/R information models: levels, keys, identifier checks, responses.

The C-FIND/C-GET/C-MOVE SCP charts need two answers before they touch any
data: "is this identifier acceptable for this SOP class?" (else 0xA900 with
an ErrorComment and OffendingElement, PS3.4 C.4.1.2 / C.4.2.2 / C.4.3.2) and,
per match, "what goes into the Pending response's identifier?"
(C.4.1.1.3.2).  Both depend only on the model's level/key tables below
(PS3.4 C.6.1-C.6.3, Y.6, Z.6; key lists follow DCMTK's and pynetdicom's
SCPs, which agree on unique and required keys).

Leniency, documented for the conformance statement: by default a C-FIND may
carry keys below its level and need not give (single-valued) unique keys
above it, and C-GET/C-MOVE identifiers may carry keys besides the unique
ones (they are ignored), as DCMTK's SCP allows unless told to check;
``strict=True`` enforces the baseline rules exactly.
Non-unique keys above the query level are refused without relational queries
when they carry a value, because hierarchical search cannot match on them.  A
zero-length one only asks for the value to be returned (Orthanc adds an empty
PatientID and AccessionNumber to every SERIES and IMAGE query): it is a return
key, not a matching key, and is answered with the value of the instance's
patient or study (PS3.4 C.4.1.1.3.2), as dcmqrscp does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeGuard

from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from dimsefsm import status
from dimsefsm.qr import registry
from dimsefsm.qr.matching import CONTROL_TAGS, candidate_element, compile_query

__all__ = [
    "LEVEL_INDEPENDENT_TAGS",
    "MODELS",
    "IdentifierProblem",
    "InformationModel",
    "Level",
    "check_identifier",
    "check_request",
    "response_identifier",
]

QUERY_RETRIEVE_LEVEL: Final = 0x00080052
SPECIFIC_CHARACTER_SET: Final = 0x00080005
RETRIEVE_AE_TITLE: Final = 0x00080054
SOP_INSTANCE_UID: Final = 0x00080018
MAX_COMMENT: Final = 64
"""ErrorComment (0000,0902) is LO: longer text would be cut by the command encoder."""


def _tags(*keywords: str) -> tuple[int, ...]:
    tags = []
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is None:  # pragma: no cover - guards typos in the tables below
            raise ValueError(f"unknown DICOM keyword {keyword!r}")
        tags.append(tag)
    return tuple(tags)


def _tag(keyword: str) -> int:
    return _tags(keyword)[0]


LEVEL_INDEPENDENT_TAGS: Final[frozenset[int]] = CONTROL_TAGS | frozenset(
    _tags("StorageMediaFileSetID", "StorageMediaFileSetUID", "RetrieveLocationUID", "RetrieveURL")
)
"""Keys that may appear at any level: control keys and where-to-retrieve keys."""


@dataclass(frozen=True, slots=True)
class Level:
    name: str
    unique: int | None
    required: tuple[int, ...] = ()
    optional: tuple[int, ...] = ()
    one_of: tuple[int, ...] = ()
    """Keys of which a retrieve identifier needs exactly one (FRAME level, Annex Y)."""

    @property
    def keys(self) -> frozenset[int]:
        unique = () if self.unique is None else (self.unique,)
        return frozenset(unique + self.required + self.optional + self.one_of)


@dataclass(frozen=True)
class InformationModel:
    name: str
    levels: tuple[Level, ...]
    _level_of: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        level_of: dict[int, int] = {}
        for index, level in enumerate(self.levels):
            for tag in level.keys:
                level_of.setdefault(tag, index)
        object.__setattr__(self, "_level_of", level_of)

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(level.name for level in self.levels)

    def index(self, level_name: str) -> int | None:
        for index, level in enumerate(self.levels):
            if level.name == level_name:
                return index
        return None

    def level(self, level_name: str) -> Level | None:
        index = self.index(level_name)
        return None if index is None else self.levels[index]

    def level_of(self, tag: int) -> int | None:
        """Index of the level a key belongs to; None for keys this model does not list."""
        return self._level_of.get(tag)

    def keys_at(self, level_name: str) -> frozenset[int]:
        level = self.level(level_name)
        return frozenset() if level is None else level.keys

    def unique_keys_down_to(self, level_name: str) -> tuple[int, ...]:
        """Unique keys from the top level down to ``level_name`` included."""
        index = self.index(level_name)
        if index is None:
            return ()
        return tuple(level.unique for level in self.levels[: index + 1] if level.unique is not None)


# -- key tables (PS3.4 C.6.1.1, C.6.2.1, C.6.3.1) --------------------------------------------
_PATIENT_REQUIRED = _tags("PatientName")
_PATIENT_OPTIONAL = _tags(
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "PatientMotherBirthName",
    "EthnicGroup",
    "PatientComments",
    "PatientSpeciesDescription",
    "PatientBreedDescription",
    "ResponsiblePerson",
    "ResponsibleOrganization",
    "NumberOfPatientRelatedStudies",
    "NumberOfPatientRelatedSeries",
    "NumberOfPatientRelatedInstances",
)
_STUDY_REQUIRED = _tags("StudyDate", "StudyTime", "AccessionNumber", "StudyID")
_STUDY_OPTIONAL = _tags(
    "StudyDescription",
    "ReferringPhysicianName",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
    "ModalitiesInStudy",
    "SOPClassesInStudy",
    "AnatomicRegionsInStudyCodeSequence",
    "IssuerOfAccessionNumberSequence",
    "ProcedureCodeSequence",
    "ReferencedStudySequence",
    "OtherStudyNumbers",
    "AdmittingDiagnosesDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "Occupation",
    "AdditionalPatientHistory",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
_SERIES_REQUIRED = _tags("Modality", "SeriesNumber")
_SERIES_OPTIONAL = _tags(
    "SeriesDescription",
    "SeriesDate",
    "SeriesTime",
    "BodyPartExamined",
    "Laterality",
    "ProtocolName",
    "PerformingPhysicianName",
    "OperatorsName",
    "Manufacturer",
    "InstitutionName",
    "StationName",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "RequestAttributesSequence",
    "NumberOfSeriesRelatedInstances",
)
_IMAGE_REQUIRED = _tags("InstanceNumber")
_IMAGE_OPTIONAL = _tags(
    "SOPClassUID",
    "ImageType",
    "ContentDate",
    "ContentTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
    "AcquisitionNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImageComments",
    "ContentLabel",
    "ContentDescription",
    "ConceptNameCodeSequence",
    "ContentTemplateSequence",
    "CompletionFlag",
    "VerificationFlag",
    "ObservationDateTime",
    "AlternateRepresentationSequence",
)

PATIENT_LEVEL: Final = Level("PATIENT", _tag("PatientID"), _PATIENT_REQUIRED, _PATIENT_OPTIONAL)
STUDY_LEVEL: Final = Level("STUDY", _tag("StudyInstanceUID"), _STUDY_REQUIRED, _STUDY_OPTIONAL)
STUDY_ROOT_STUDY_LEVEL: Final = Level(
    "STUDY",
    _tag("StudyInstanceUID"),
    _STUDY_REQUIRED + _tags("PatientName", "PatientID"),
    _STUDY_OPTIONAL + _PATIENT_OPTIONAL,
)
SERIES_LEVEL: Final = Level("SERIES", _tag("SeriesInstanceUID"), _SERIES_REQUIRED, _SERIES_OPTIONAL)
IMAGE_LEVEL: Final = Level("IMAGE", SOP_INSTANCE_UID, _IMAGE_REQUIRED, _IMAGE_OPTIONAL)
INSTANCE_ONLY_LEVEL: Final = Level("IMAGE", SOP_INSTANCE_UID)
FRAME_LEVEL: Final = Level(
    "FRAME", None, one_of=_tags("SimpleFrameList", "CalculatedFrameList", "TimeRange")
)

MODELS: Final[dict[str, InformationModel]] = {
    model.name: model
    for model in (
        InformationModel(
            registry.PATIENT_ROOT, (PATIENT_LEVEL, STUDY_LEVEL, SERIES_LEVEL, IMAGE_LEVEL)
        ),
        InformationModel(registry.STUDY_ROOT, (STUDY_ROOT_STUDY_LEVEL, SERIES_LEVEL, IMAGE_LEVEL)),
        InformationModel(registry.PATIENT_STUDY_ONLY, (PATIENT_LEVEL, STUDY_LEVEL)),
        InformationModel(registry.COMPOSITE_INSTANCE_ROOT, (INSTANCE_ONLY_LEVEL, FRAME_LEVEL)),
        InformationModel(registry.COMPOSITE_INSTANCE_NO_BULK, (INSTANCE_ONLY_LEVEL,)),
    )
}
"""The models whose identifiers carry a Query/Retrieve Level."""

_FLAT_MODELS: Final[frozenset[str]] = frozenset(
    sop.model for sop in registry.QR_SOP_CLASSES
) - frozenset(MODELS)


# -- identifier checks -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IdentifierProblem:
    """Why an identifier is refused: the status and the fields of the failure response."""

    status: int
    comment: str
    offending: tuple[int, ...] = ()


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _fit(text: str) -> str:
    return text if len(text) <= MAX_COMMENT else text[: MAX_COMMENT - 3] + "..."


def _problem(comment: str, offending: tuple[int, ...]) -> IdentifierProblem:
    return IdentifierProblem(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, _fit(comment), offending)


def _tag_list(tags: list[int]) -> str:
    return ", ".join(_tag_text(tag) for tag in tags)


def _keys_problem(what: str, tags: list[int]) -> IdentifierProblem:
    noun = "key" if len(tags) == 1 else "keys"
    return _problem(f"{what.format(noun=noun)}: {_tag_list(tags)}", tuple(tags))


def _texts(elem: DataElement | None) -> list[str]:
    if elem is None or elem.value is None:
        return []
    value = elem.value
    if isinstance(value, str | bytes):
        values = [value]
    else:
        try:
            values = list(value)
        except TypeError:
            values = [value]
    texts = [v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in values]
    return [text.strip(" \0") for text in texts if text.strip(" \0")]


def _is_zero_length(elem: DataElement) -> bool:
    """Universal matching (PS3.4 C.2.2.2.3, C.2.2.2.6): no value, or no items / one empty item."""
    if elem.VR == "SQ":
        items = list(elem.value or ())
        return not items or (len(items) == 1 and all(_is_zero_length(e) for e in items[0]))
    return elem.VM == 0


def _is_key(tag: int) -> bool:
    """Whether the tag is a key whose level matters (not control, meta, private or length)."""
    group, element = tag >> 16, tag & 0xFFFF
    return group > 0x0002 and element != 0 and not group & 1 and tag not in LEVEL_INDEPENDENT_TAGS


def _query_level(model: InformationModel, identifier: Dataset) -> int | IdentifierProblem:
    elem = identifier.get(QUERY_RETRIEVE_LEVEL)
    values = _texts(elem)
    offending = (QUERY_RETRIEVE_LEVEL,)
    if not values:
        return _problem("Query/Retrieve Level (0008,0052) is missing", offending)
    if len(values) > 1:
        return _problem("Query/Retrieve Level (0008,0052) must have one value", offending)
    index = model.index(values[0].upper())
    if index is None:
        shown = values[0] if len(values[0]) <= 12 else values[0][:12] + "~"
        names = "/".join(model.level_names)
        return _problem(f"Level {shown!r} is not one of {names}", offending)
    return index


def _single_value_problem(
    identifier: Dataset, level: Level, *, allow_list: bool
) -> IdentifierProblem | None:
    """The level's unique key must be present with one value (or a UID list)."""
    assert level.unique is not None
    tag = level.unique
    values = _texts(identifier.get(tag))
    if not values:
        return _problem(f"Unique key {_tag_text(tag)} of {level.name} level is missing", (tag,))
    if len(values) > 1 and not allow_list:
        return _problem(
            f"Unique key {_tag_text(tag)} of {level.name} level needs one value", (tag,)
        )
    if any("*" in text or "?" in text for text in values):
        return _problem(
            f"Unique key {_tag_text(tag)} of {level.name} level has a wild card", (tag,)
        )
    return None


def _check_find(
    model: InformationModel,
    identifier: Dataset,
    query_index: int,
    *,
    relational: bool,
    strict: bool,
) -> IdentifierProblem | None:
    level_name = model.levels[query_index].name
    above: list[int] = []
    below: list[int] = []
    for elem in identifier:
        tag = int(elem.tag)
        if not _is_key(tag):
            continue
        index = model.level_of(tag)
        if index is None:
            continue
        if index < query_index and tag != model.levels[index].unique:
            if not _is_zero_length(elem):  # a zero-length one is a return key only
                above.append(tag)
        elif index > query_index:
            below.append(tag)
    if above and not relational:
        return _keys_problem(f"Non-unique {{noun}} above {level_name} level", above)
    if not strict:
        return None
    if not relational:
        for level in model.levels[:query_index]:
            if level.unique is not None:
                problem = _single_value_problem(identifier, level, allow_list=False)
                if problem is not None:
                    return problem
    if below:
        return _keys_problem(f"Baseline query forbids {{noun}} below {level_name} level", below)
    return None


def _check_retrieve(
    model: InformationModel,
    identifier: Dataset,
    retrieve_index: int,
    *,
    relational: bool,
    strict: bool,
) -> IdentifierProblem | None:
    first = retrieve_index if relational else 0
    for index in range(first, retrieve_index + 1):
        level = model.levels[index]
        if level.unique is None:
            continue
        at_level = index == retrieve_index
        allow_list = at_level and level.name != "PATIENT"
        problem = _single_value_problem(identifier, level, allow_list=allow_list)
        if problem is not None:
            return problem
    level = model.levels[retrieve_index]
    if level.one_of:
        present = [tag for tag in level.one_of if _texts(identifier.get(tag))]
        if len(present) != 1:
            return _problem(
                f"{level.name} level needs one of {_tag_list(list(level.one_of))}",
                tuple(present) or level.one_of,
            )
    if strict:
        extra = [
            int(elem.tag)
            for elem in identifier
            if _is_key(int(elem.tag))
            and int(elem.tag) not in model.unique_keys_down_to(level.name)
            and int(elem.tag) not in level.one_of
        ]
        if extra:
            return _keys_problem("Retrieve takes unique keys only", extra)
    return None


def _check_flat_find(identifier: Dataset, *, strict: bool) -> IdentifierProblem | None:
    """The "Worklist" search method (K.4.1, U.4.1, HH.4.1): no level; a sequence key is one item.

    Sequence matching takes a sequence of exactly one item (PS3.4 C.2.2.2.6):
    with two, which one to match is not defined, so the query is refused
    rather than answered by a guess.
    """
    several = [
        int(elem.tag)
        for elem in identifier
        if _is_key(int(elem.tag)) and elem.VR == "SQ" and len(elem.value or ()) > 1
    ]
    if several:
        return _keys_problem("Sequence {noun} must have one item", several)
    if strict and QUERY_RETRIEVE_LEVEL in identifier:
        return _problem(
            "Query/Retrieve Level (0008,0052) must not be present", (QUERY_RETRIEVE_LEVEL,)
        )
    return None


def _check_flat_retrieve(identifier: Dataset, *, strict: bool) -> IdentifierProblem | None:
    """U.4.2, X, BB, HH.4.2, JJ.3.2: SOP Instance UID (one or a list) is the only key."""
    uids = _texts(identifier.get(SOP_INSTANCE_UID))
    if not uids:
        return _problem("SOP Instance UID (0008,0018) is missing", (SOP_INSTANCE_UID,))
    if any("*" in uid or "?" in uid for uid in uids):
        return _problem("SOP Instance UID (0008,0018) has a wild card", (SOP_INSTANCE_UID,))
    if strict and QUERY_RETRIEVE_LEVEL in identifier:
        return _problem(
            "Query/Retrieve Level (0008,0052) must not be present", (QUERY_RETRIEVE_LEVEL,)
        )
    return None


def check_identifier(
    model: str,
    identifier: Dataset,
    service: str,
    *,
    relational: bool = False,
    strict: bool = False,
) -> IdentifierProblem | None:
    """None when the identifier suits ``model`` for ``service`` ("find", "get", "move").

    ``relational`` is the outcome of the relational-queries / relational-retrieval
    extended negotiation for this presentation context.
    """
    if service not in ("find", "get", "move"):
        raise ValueError(f"service must be 'find', 'get' or 'move', not {service!r}")
    info = MODELS.get(model)
    if info is None:
        if model not in _FLAT_MODELS:
            raise ValueError(f"unknown information model {model!r}")
        if service == "find":
            return _check_flat_find(identifier, strict=strict)
        return _check_flat_retrieve(identifier, strict=strict)
    index = _query_level(info, identifier)
    if isinstance(index, IdentifierProblem):
        return index
    if service == "find":
        return _check_find(info, identifier, index, relational=relational, strict=strict)
    return _check_retrieve(info, identifier, index, relational=relational, strict=strict)


def check_request(
    sop_class_uid: str, identifier: Dataset, *, relational: bool = False, strict: bool = False
) -> IdentifierProblem | None:
    """:func:`check_identifier` for the model and service of a registered Q/R SOP class."""
    sop = registry.lookup(sop_class_uid)
    if sop is None:
        raise ValueError(f"{sop_class_uid} is not a Query/Retrieve SOP class")
    return check_identifier(
        sop.model, identifier, sop.service, relational=relational, strict=strict
    )


# -- C-FIND response identifiers -------------------------------------------------------------
def _copied(source: DataElement, tag: int, request_vr: str) -> DataElement:
    vr = request_vr if source.VR == "UN" and request_vr != "UN" else source.VR
    value = source.value
    if isinstance(value, list):  # MultiValue and friends: the response must not alias it
        value = list(value)
    return DataElement(tag, vr, value)


def _passes_raw(raw: object) -> TypeGuard[RawDataElement]:
    """A still undecoded little endian element of a known VR (not a sequence): returned whole.

    A response copies the match's value, so the bytes read are the bytes to
    send (the response declares the match's character set): converting them
    to Python values and back cost most of a C-FIND response's time.
    """
    return (
        isinstance(raw, RawDataElement)
        and raw.is_little_endian
        and raw.VR not in (None, "SQ", "UN")
        and raw.length != 0xFFFFFFFF
    )


def _returned_item(request_item: Dataset, item: Dataset) -> Dataset:
    result = Dataset()
    for elem in request_item:
        result[elem.tag] = _returned(elem, item)
    return result


def _shallow_copy(item: Dataset) -> Dataset:
    """A new item holding the same elements: ``Dataset(item)`` would alias the original."""
    copy = Dataset()
    for elem in item:
        copy.add(elem)
    return copy


def _returned_sequence(request: DataElement, source: DataElement | None) -> DataElement:
    tag = int(request.tag)
    items = list(source.value) if source is not None and source.VR == "SQ" else []
    query_items = request.value if request.VR == "SQ" else ()
    if not items or not query_items or all(len(item) == 0 for item in query_items):
        return DataElement(tag, "SQ", Sequence([_shallow_copy(item) for item in items]))
    query_item = query_items[0]
    matcher = compile_query(query_item)
    chosen = [item for item in items if matcher.matches(item)] or items
    return DataElement(tag, "SQ", Sequence([_returned_item(query_item, i) for i in chosen]))


def _returned(request: DataElement, match: Dataset) -> DataElement | RawDataElement:
    tag = int(request.tag)
    raw = match._dict.get(tag)  # type: ignore[call-overload]
    if _passes_raw(raw) and request.VR != "SQ":
        return raw  # as read: no conversion now, its bytes encoded as they are (fast_encode)
    source = candidate_element(match, tag)
    if request.VR == "SQ" or (source is not None and source.VR == "SQ"):
        return _returned_sequence(request, source)
    if source is None:
        return DataElement(tag, request.VR, empty_value_for_VR(request.VR))
    return _copied(source, tag, request.VR)


def response_identifier(
    request: Dataset,
    match: Dataset,
    *,
    retrieve_ae: str | None = None,
    level_echo: bool = True,
) -> Dataset:
    """The identifier of one Pending C-FIND response for ``match`` (PS3.4 C.4.1.1.3.2).

    Only the requested keys come back, with the match's values (empty when
    the match lacks one).  Sequence keys return the match's items cut down to
    the requested item keys, and only the items that match the request item
    (all of them when none does, i.e. when the SCP did not match on it).
    """
    response = Dataset()
    for elem in request:
        tag = int(elem.tag)
        group = tag >> 16
        if group <= 0x0002 or tag & 0xFFFF == 0 or tag == SPECIFIC_CHARACTER_SET:
            continue
        if tag == QUERY_RETRIEVE_LEVEL:
            if level_echo:
                response.add(DataElement(tag, "CS", elem.value))
            continue
        if tag == RETRIEVE_AE_TITLE and retrieve_ae is not None:
            continue
        response[tag] = _returned(elem, match)
    charset = candidate_element(match, SPECIFIC_CHARACTER_SET)
    if charset is not None and charset.value:
        response.add(_copied(charset, SPECIFIC_CHARACTER_SET, "CS"))
    if retrieve_ae is not None:
        response.add(DataElement(RETRIEVE_AE_TITLE, "AE", retrieve_ae))
    return response
