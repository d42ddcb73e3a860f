"""Query keys written the way dcmtk's ``findscu -k`` / ``dcmodify -i`` take them.

Users move between dcmtk and this tool, so a ``-k`` argument must mean the same
data set on both sides:

- ``PatientName=Doe*`` (keyword), ``(0010,0020)=123`` or the older ``0010,0020=123``;
- no ``=`` or an empty value: the attribute is sent with zero length (a return key);
- ``\\`` separates multiple values, except in LT/ST/UT/UR where it is text;
- ``Sequence[n].Keyword=value``: ``.`` separates path nodes, ``[n]`` picks an item
  counted from zero; missing sequences and items (up to ``n``) are created;
- a bare ``Sequence`` (or ``Sequence[n]``) is a sequence return key; an existing
  sequence keeps its items, as in dcmtk.

Deliberate differences, all rejections of input dcmtk silently bends: numbers out
of range or not integral (dcmtk wraps 70000 to 4464 and cuts 1.5 to 1), values
for binary VRs, private data elements (dcmtk inserts them as UN: the SCP cannot
match an UN key), command/meta/group-length/item tags, a trailing ``.``, two
nodes without ``.`` between them and item numbers above ``MAX_ITEM_NUMBER``.
The item wildcard ``[*]`` is refused like dcmtk's findscu does. Also unlike
dcmtk, when a value needs more than ASCII and the identifier has no Specific
Character Set, ``ISO_IR 192`` (UTF-8) is added so the identifier can be encoded
at all.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from pydicom.datadict import dictionary_VR, keyword_dict, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

SPECIFIC_CHARACTER_SET: Final = 0x00080005
QUERY_RETRIEVE_LEVEL: Final = 0x00080052

_NODE: Final = re.compile(
    r"""
    (?: \( (?P<group>[0-9A-Fa-f]{4}) , (?P<element>[0-9A-Fa-f]{4}) \)
      | (?P<old_group>[0-9A-Fa-f]{4}) , (?P<old_element>[0-9A-Fa-f]{4})
      | (?P<keyword>[A-Za-z][A-Za-z0-9_]*) )
    (?: \[ (?P<item>[^\]]*) \] )?
    """,
    re.VERBOSE,
)
MAX_ITEM_NUMBER: Final = 9999
"""A typo like ``[10000000]`` would otherwise build ten million empty items."""

_ITEM_NUMBER: Final = re.compile(r"\s*(\d+)\s*")
_TAG_VALUE: Final = re.compile(r"\s*\(?\s*([0-9A-Fa-f]{4})\s*,\s*([0-9A-Fa-f]{4})\s*\)?\s*")
_IS: Final = re.compile(r"\s*[+-]?\d+\s*")
_DS: Final = re.compile(r"\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*")

_INTEGER_RANGES: Final[dict[str, tuple[int, int]]] = {
    "US": (0, 0xFFFF),
    "UL": (0, 0xFFFFFFFF),
    "UV": (0, 0xFFFFFFFFFFFFFFFF),
    "SS": (-0x8000, 0x7FFF),
    "SL": (-0x80000000, 0x7FFFFFFF),
    "SV": (-0x8000000000000000, 0x7FFFFFFFFFFFFFFF),
}
_FLOAT_VRS: Final = frozenset({"FL", "FD"})
_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_SINGLE_VALUED_TEXT_VRS: Final = frozenset({"LT", "ST", "UT", "UR"})
"""VRs where a backslash is a character, not a value separator (PS3.5 6.2)."""
_TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_AMBIGUOUS_VR_CHOICE: Final[dict[str, str]] = {
    "US or SS": "US",
    "OB or OW": "OW",
    "US or SS or OW": "US",
    "US or OW": "US",
}
"""dcmtk's choices for the dictionary's "xs"/"ox" VRs, so a key encodes the same on both."""
_RETIRED_PREFIX: Final = "RETIRED_"
"""dcmtk's dictionary names retired attributes ``RETIRED_<Keyword>``."""


class QueryKeyError(Exception):
    """Anything wrong with a ``-k`` argument; catch this to report every kind at once."""

    def __str__(self) -> str:
        # KeyError would repr() its message; a CLI wants the sentence as written.
        return str(self.args[0]) if self.args else ""


class KeySyntaxError(QueryKeyError, ValueError):
    """The key does not follow dcmtk's path syntax, or its value does not fit the VR."""


class UnknownKeyError(QueryKeyError, KeyError):
    """A keyword or tag the data dictionary does not know, so no VR can be chosen."""


@dataclass(frozen=True, slots=True)
class PathNode:
    """One step of a key path: an attribute, and for sequences the item it descends into."""

    tag: int
    vr: str
    item: int | None = None

    @property
    def name(self) -> str:
        return keyword_for_tag(self.tag) or f"({self.tag >> 16:04X},{self.tag & 0xFFFF:04X})"

    def __str__(self) -> str:
        return self.name if self.item is None else f"{self.name}[{self.item}]"


@dataclass(frozen=True, slots=True)
class KeyPath:
    """A parsed ``-k`` argument: where the attribute sits and what value it gets.

    ``value`` is already converted for the leaf VR (``int``/``float`` for binary
    numbers, ``str`` otherwise, a tuple for several values, the VR's empty value
    for a return key), so errors surface while parsing the command line rather
    than half-way through building the identifier.
    """

    nodes: tuple[PathNode, ...]
    text: str | None
    value: Any
    spec: str

    @property
    def leaf(self) -> PathNode:
        return self.nodes[-1]

    @property
    def tag(self) -> int:
        return self.nodes[-1].tag

    @property
    def vr(self) -> str:
        return self.nodes[-1].vr

    @property
    def ends_with_item(self) -> bool:
        """``Sequence[n]``: the key asks for an (empty) item, not for an attribute in it."""
        return self.nodes[-1].item is not None

    @property
    def keyword(self) -> str:
        """The leaf's keyword, or ``(gggg,eeee)`` for tags without one."""
        return self.nodes[-1].name

    @property
    def label(self) -> str:
        """The path in keyword form, e.g. ``ScheduledProcedureStepSequence[0].Modality``."""
        return ".".join(str(node) for node in self.nodes)

    def __str__(self) -> str:
        return self.label if self.text is None else f"{self.label}={self.text}"


def parse_key(spec: str) -> KeyPath:
    """Parse one ``-k`` argument (``path`` or ``path=value``)."""
    path_text, has_value, text = spec.partition("=")
    nodes = _parse_path(path_text.strip(), spec)
    value_text = text if has_value else None
    leaf = nodes[-1]
    if value_text and (leaf.item is not None or leaf.vr == "SQ"):
        raise KeySyntaxError(
            f"cannot put a value into sequence {leaf.name} in key {spec!r}: "
            f"give the attribute inside an item, e.g. {leaf.name}[0].Keyword=value"
        )
    value = _convert_value(leaf, value_text, spec)
    return KeyPath(nodes, value_text, value, spec)


def key_argument(spec: str) -> KeyPath:
    """``parse_key`` for ``argparse`` ``type=``: argparse reports only its own error type."""
    try:
        return parse_key(spec)
    except QueryKeyError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_identifier(specs: Iterable[str | KeyPath], base: Dataset | None = None) -> Dataset:
    """The C-FIND/C-GET/C-MOVE identifier: ``base`` (copied, not changed) with every key applied.

    Keys apply in order, later ones replacing earlier values like repeated
    ``-k`` options in dcmtk.
    """
    # Dataset(base) drops a FileDataset's file meta and preamble: an identifier has none.
    identifier = copy.deepcopy(Dataset(base)) if base is not None else Dataset()
    for spec in specs:
        key = spec if isinstance(spec, KeyPath) else parse_key(spec)
        apply_key(identifier, key)
    if SPECIFIC_CHARACTER_SET not in identifier and _needs_unicode(identifier):
        identifier.SpecificCharacterSet = "ISO_IR 192"
    return identifier


def apply_key(identifier: Dataset, key: KeyPath) -> None:
    """Insert or replace ``key`` in ``identifier``, creating sequences and items on the way."""
    current = identifier
    for node in key.nodes[:-1]:
        assert node.item is not None  # the parser guarantees an item index before '.'
        current = _item(current, node, node.item, key)
    leaf = key.leaf
    if leaf.item is not None:
        _item(current, leaf, leaf.item, key)
    elif leaf.vr == "SQ":
        _sequence(current, leaf, key)
    else:
        current[leaf.tag] = DataElement(leaf.tag, leaf.vr, _element_value(key.value))


# -- parsing ---------------------------------------------------------------------------------


def _parse_path(path: str, spec: str) -> tuple[PathNode, ...]:
    if not path:
        raise KeySyntaxError(f"missing tag or keyword in key {spec!r}")
    nodes: list[PathNode] = []
    pos = 0
    while True:
        match = _NODE.match(path, pos)
        if match is None:
            raise KeySyntaxError(
                f"cannot read a tag (gggg,eeee) or keyword at {path[pos:]!r} in key {spec!r}"
            )
        node = _node(match, spec)
        nodes.append(node)
        pos = match.end()
        if pos == len(path):
            return tuple(nodes)
        if path[pos] != ".":
            expected = "'.'" if node.item is not None else "'.' or '[n]'"
            raise KeySyntaxError(
                f"expected {expected} after {match.group(0)!r}, found {path[pos:]!r} "
                f"in key {spec!r}"
            )
        if node.item is None:
            raise KeySyntaxError(
                f"{node.name} needs an item number like [0] before '.' in key {spec!r}"
            )
        pos += 1
        if pos == len(path):
            raise KeySyntaxError(f"nothing follows the last '.' in key {spec!r}")


def _node(match: re.Match[str], spec: str) -> PathNode:
    if match.group("keyword") is not None:
        tag = _tag_for_keyword(match.group("keyword"), spec)
    else:
        group = match.group("group") or match.group("old_group")
        element = match.group("element") or match.group("old_element")
        tag = int(group, 16) << 16 | int(element, 16)
    vr = _vr_for(tag, spec)
    item_text = match.group("item")
    if item_text is None:
        return PathNode(tag, vr)
    item = _item_number(item_text, spec)
    if vr != "SQ":
        raise KeySyntaxError(
            f"{PathNode(tag, vr).name} is not a sequence (VR {vr}), so it has no item "
            f"[{item_text}] in key {spec!r}"
        )
    return PathNode(tag, vr, item)


def _item_number(text: str, spec: str) -> int:
    match = _ITEM_NUMBER.fullmatch(text)
    if match is not None:
        number = int(match.group(1))
        if number > MAX_ITEM_NUMBER:
            raise KeySyntaxError(
                f"item number [{number}] is above {MAX_ITEM_NUMBER} in key {spec!r}: every "
                f"item before it would be created"
            )
        return number
    if text.strip() == "*":
        raise KeySyntaxError(
            f"item wildcard [*] is not allowed in query keys (dcmtk's findscu refuses it too) "
            f"in key {spec!r}"
        )
    if text.strip().startswith("-"):
        raise KeySyntaxError(f"negative item number [{text}] in key {spec!r}")
    raise KeySyntaxError(f"item number [{text}] is not a number in key {spec!r}")


def _tag_for_keyword(keyword: str, spec: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None and keyword.startswith(_RETIRED_PREFIX):
        tag = tag_for_keyword(keyword.removeprefix(_RETIRED_PREFIX))
    if tag is not None:
        return tag
    hint = _keyword_hint(keyword)
    raise UnknownKeyError(f"unknown keyword {keyword!r} in key {spec!r}{hint}")


def _keyword_hint(keyword: str) -> str:
    """Wrong case is the usual slip (dcmtk is case-sensitive too); then a close spelling."""
    folded = keyword.casefold()
    same = [known for known in keyword_dict if known.casefold() == folded]
    close = same or difflib.get_close_matches(keyword, keyword_dict, n=1, cutoff=0.8)
    return f" (did you mean {close[0]}?)" if close else ""


def _vr_for(tag: int, spec: str) -> str:
    group, element = tag >> 16, tag & 0xFFFF
    text = f"({group:04X},{element:04X})"
    if group in (0x0000, 0x0002, 0xFFFE) or element == 0x0000:
        raise KeySyntaxError(
            f"{text} is a command, file meta, item or group length tag and cannot be a "
            f"query key, in key {spec!r}"
        )
    if group & 1:
        if group > 0x0008 and 0x0010 <= element <= 0x00FF:
            return "LO"  # private creator (PS3.5 7.8.1)
        raise UnknownKeyError(
            f"private tag {text} has no dictionary VR (only private creator elements "
            f"(gggg,0010)-(gggg,00FF) can be given) in key {spec!r}"
        )
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        raise UnknownKeyError(
            f"tag {text} is not in the DICOM dictionary, in key {spec!r}"
        ) from None
    return _AMBIGUOUS_VR_CHOICE.get(vr, vr)


# -- values ----------------------------------------------------------------------------------


def _convert_value(node: PathNode, text: str | None, spec: str) -> Any:
    vr = node.vr
    if node.item is not None or vr == "SQ":
        return None
    if not text:
        return empty_value_for_VR(vr)
    if vr in _BINARY_VRS:
        raise KeySyntaxError(
            f"{node.name} has binary VR {vr}; only an empty (return) key is possible, "
            f"in key {spec!r}"
        )
    parts = [text] if vr in _SINGLE_VALUED_TEXT_VRS else text.split("\\")
    values = tuple(_convert_one(node, vr, part, spec) for part in parts)
    return values[0] if len(values) == 1 else values


def _convert_one(node: PathNode, vr: str, text: str, spec: str) -> int | float | str:
    if vr in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[vr]
        try:
            number = int(text)
        except ValueError:
            raise KeySyntaxError(
                f"{node.name} ({vr}) needs an integer, not {text!r}, in key {spec!r}"
            ) from None
        if not low <= number <= high:
            raise KeySyntaxError(
                f"{node.name} ({vr}) must be in {low}..{high}, not {number}, in key {spec!r}"
            )
        return number
    if vr in _FLOAT_VRS:
        try:
            return float(text)
        except ValueError:
            raise KeySyntaxError(
                f"{node.name} ({vr}) needs a number, not {text!r}, in key {spec!r}"
            ) from None
    if vr == "AT":
        match = _TAG_VALUE.fullmatch(text)
        if match is None:
            raise KeySyntaxError(
                f"{node.name} (AT) needs a tag like (0010,0010), not {text!r}, in key {spec!r}"
            )
        return int(match.group(1), 16) << 16 | int(match.group(2), 16)
    if vr == "IS" and not _IS.fullmatch(text):
        raise KeySyntaxError(f"{node.name} (IS) needs an integer, not {text!r}, in key {spec!r}")
    if vr == "DS" and not _DS.fullmatch(text):
        raise KeySyntaxError(
            f"{node.name} (DS) needs a decimal number, not {text!r}, in key {spec!r}"
        )
    return text


def _element_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# -- building --------------------------------------------------------------------------------


def _sequence(current: Dataset, node: PathNode, key: KeyPath) -> Sequence:
    existing = current.get(node.tag)
    if existing is None:
        current[node.tag] = DataElement(node.tag, "SQ", Sequence())
        sequence: Sequence = current[node.tag].value
        return sequence
    if existing.VR != "SQ":
        raise KeySyntaxError(
            f"{node.name} in the base identifier has VR {existing.VR}, not SQ, in key {key.spec!r}"
        )
    if existing.value is None:
        existing.value = Sequence()
    sequence = existing.value
    return sequence


def _item(current: Dataset, node: PathNode, index: int, key: KeyPath) -> Dataset:
    sequence = _sequence(current, node, key)
    while len(sequence) <= index:
        sequence.append(Dataset())
    item: Dataset = sequence[index]
    return item


def _needs_unicode(dataset: Dataset) -> bool:
    for element in dataset.iterall():
        if element.VR not in _TEXT_VRS:
            continue
        value = element.value
        values = value if isinstance(value, list | MultiValue) else [value]
        if any(not str(value).isascii() for value in values if value is not None):
            return True
    return False
