"""C-FIND attribute matching (PS3.4 C.2.2.2), compiled once per query.

An SCP matches one identifier against thousands of candidates, so the query
is turned into a list of small closures up front: each closure fetches one
attribute from a candidate and applies a predicate prepared for exactly that
key (set membership for UID lists, a segment matcher or ``startswith`` for
wild cards, pre-normalised bounds for ranges).  Universal keys produce no
closure at all, so ``PatientName=""`` costs nothing per candidate.

Behaviour an SCP must document (PS3.2 Annex N), decided here:

* Person names are compared case-sensitively (option: ``pn_case_insensitive``)
  per component group: a query without ``=`` is matched against the
  alphabetic group only; trailing ``^`` separators are not significant.
* A lone ``*`` in a wild card VR is universal; ``*``/``?`` in UI, dates,
  times and numbers are literal characters.
* DA/TM/DT single values match the whole span of their precision
  (``TM 1200`` matches ``120030``); range ends are inclusive, the upper end
  covers the whole span of its precision too (``-1200`` includes 12:00:59).
* DT values with a UTC offset are compared in UTC; values without one use the
  candidate's Timezone Offset From UTC (0008,0201), else the query's, else UTC.
* ``""`` (two quotation marks) is empty value matching (C.2.2.2.7).
* A key with several values (other than a UID list) needs every value to be
  matched by some value of the candidate (C.2.2.2.8 multiple value matching).
* A candidate with several values matches when any one of them matches.
* An absent or empty candidate attribute fails every non-universal key.
* Sequence keys match when any item of the candidate's sequence matches the
  query item; the query item's keys are matched recursively.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

__all__ = [
    "CONTROL_TAGS",
    "WILDCARD_VRS",
    "Matcher",
    "candidate_element",
    "compile_query",
    "is_universal",
    "matches",
    "wildcard_matcher",
]

CONTROL_TAGS: Final[frozenset[int]] = frozenset(
    {
        0x00080005,  # Specific Character Set: declares the encoding, never matched
        0x00080052,  # Query/Retrieve Level
        0x00080053,  # Query/Retrieve View
        0x00080054,  # Retrieve AE Title: filled in by the SCP
        0x00080056,  # Instance Availability: filled in by the SCP
        0x00080201,  # Timezone Offset From UTC: sets the zone of the query's DT values
    }
)
"""Identifier attributes that steer the query or are supplied by the SCP; not matched."""

WILDCARD_VRS: Final[frozenset[str]] = frozenset(
    {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}
)
_NUMERIC_VRS: Final[frozenset[str]] = frozenset(
    {"IS", "DS", "US", "UL", "SS", "SL", "FL", "FD", "SV", "UV"}
)
_TIMEZONE_OFFSET_TAG: Final = 0x00080201
_EMPTY_VALUE_KEY: Final = '""'

Check = Callable[[Dataset], bool]
Predicate = Callable[[Any], bool]


# -- candidate access ------------------------------------------------------------------------
def candidate_element(candidate: Dataset, tag: int) -> DataElement | None:
    """The candidate's element without pydicom's per-access overhead where possible."""
    elem = candidate._dict.get(tag)  # type: ignore[call-overload]
    if elem is None or isinstance(elem, DataElement):
        return elem
    return candidate[tag]  # a raw element read from bytes: let pydicom convert it once


def _values(value: Any) -> tuple[Any, ...]:
    """An element value as the tuple of its non-empty values."""
    if value is None:
        return ()
    if isinstance(value, str | bytes):
        return (value,) if value else ()
    if isinstance(value, MultiValue | list | tuple):
        return tuple(v for v in value if v is not None and v != "")
    if isinstance(value, PersonName) and not str(value):
        return ()
    return (value,)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \0")
    return str(value)


def is_universal(elem: DataElement) -> bool:
    """Zero length, a sequence with no item or one empty item, or a lone ``*`` wild card."""
    value = elem.value
    if elem.VR == "SQ":
        return len(value or ()) == 0 or all(len(item) == 0 for item in value)
    values = _values(value)
    if not values:
        return True
    return elem.VR in WILDCARD_VRS and len(values) == 1 and _text(values[0]).strip("*") == ""


# -- wild cards ------------------------------------------------------------------------------
# ``*`` and ``?`` (PS3.4 C.2.2.2.4) are matched without a regular expression: a
# backtracking regex takes exponential time on patterns like ``*A*A*A*B`` or
# ``*?*?*?...`` (one such query froze a server), and a compiled regex runs as
# one long C call holding the GIL.  A glob of ``*`` and ``?`` only is matched
# exactly by greedy leftmost placement of its ``*``-separated segments: the
# first is anchored at the start, the last at the end, each middle one is put
# at its leftmost fit after the previous one (a later fit never helps, since
# anything after it could also follow the earlier one).  Each fit is found by
# ``str.find`` on the segment's longest literal run, then checked in place:
# O(len(text) * len(pattern)) at worst, in steps that each return quickly.


@dataclass(frozen=True, slots=True)
class _Segment:
    """A run of literal characters and ``?`` between two ``*``."""

    size: int
    runs: tuple[tuple[int, str], ...]
    """``(offset, literal run)`` pairs; the gaps between them are ``?``."""
    anchor: str
    """The longest literal run: located with ``str.find`` (``""`` if only ``?``)."""
    anchor_at: int

    @classmethod
    def of(cls, text: str) -> _Segment:
        runs: list[tuple[int, str]] = []
        offset = 0
        for run in text.split("?"):
            if run:
                runs.append((offset, run))
            offset += len(run) + 1
        anchor_at, anchor = max(runs, key=lambda r: len(r[1]), default=(0, ""))
        return cls(len(text), tuple(runs), anchor, anchor_at)

    def fits_at(self, text: str, pos: int) -> bool:
        """The segment matches ``text[pos : pos + size]`` (the caller checked the room)."""
        for offset, run in self.runs:  # noqa: SIM110 - a plain loop is faster than all(<genexpr>)
            if not text.startswith(run, pos + offset):
                return False
        return True

    def leftmost(self, text: str, start: int, stop: int) -> int:
        """The first position >= ``start`` where the segment fits inside ``text[:stop]``; -1."""
        last = stop - self.size
        if last < start:
            return -1
        anchor, anchor_at = self.anchor, self.anchor_at
        if not anchor:
            return start  # only ``?``: any position with room fits
        probe, end = start + anchor_at, last + anchor_at + len(anchor)
        while (found := text.find(anchor, probe, end)) >= 0:
            if self.fits_at(text, found - anchor_at):
                return found - anchor_at
            probe = found + 1
        return -1


def wildcard_matcher(pattern: str) -> Callable[[str], bool]:
    """A test of a whole text against a ``*``/``?`` pattern: no regex, no backtracking."""
    parts = pattern.split("*")
    if len(parts) == 1:
        whole = _Segment.of(pattern)
        return lambda text: len(text) == whole.size and whole.fits_at(text, 0)
    if len(parts) == 2 and "?" not in pattern:
        prefix, suffix = parts
        need = len(pattern) - 1
        return lambda text: len(text) >= need and text.startswith(prefix) and text.endswith(suffix)
    head, last = _Segment.of(parts[0]), _Segment.of(parts[-1])
    middle = [_Segment.of(part) for part in parts[1:-1] if part]  # ``**`` is one ``*``
    need = head.size + last.size + sum(segment.size for segment in middle)

    def fits(text: str) -> bool:
        stop = len(text) - last.size
        if len(text) < need or not head.fits_at(text, 0) or not last.fits_at(text, stop):
            return False
        pos = head.size
        for segment in middle:
            found = segment.leftmost(text, pos, stop)
            if found < 0:
                return False
            pos = found + segment.size
        return True

    return fits


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text


# -- person names ----------------------------------------------------------------------------
def _pn_groups(text: str, fold: bool) -> list[str]:
    if fold:
        text = text.lower()
    return [group.strip(" ").rstrip("^") for group in text.split("=")]


def _pn_predicate(query: str, fold: bool) -> Callable[[str], bool]:
    """Group-by-group comparison; empty query groups accept anything in that group."""
    wanted = [(index, group) for index, group in enumerate(_pn_groups(query, fold)) if group != ""]
    tests: list[tuple[int, Callable[[str], bool]]] = []
    for index, group in wanted:
        if _has_wildcard(group):
            fits = wildcard_matcher(group)

            def test(text: str, fits: Callable[[str], bool] = fits) -> bool:
                # "SMITH^*" must accept a stored "SMITH": also try the padded form.
                return fits(text) or fits(text + "^" * (4 - text.count("^")))

            tests.append((index, test))
        else:
            tests.append((index, group.__eq__))

    def matches_name(value: str) -> bool:
        groups = _pn_groups(value, fold)
        return all(index < len(groups) and test(groups[index]) for index, test in tests)

    return matches_name


# -- dates and times -------------------------------------------------------------------------
def _da(text: str) -> str | None:
    text = text.strip().replace(".", "")  # ACR-NEMA style YYYY.MM.DD
    return text if len(text) == 8 and text.isdigit() else None


def _tm(text: str, ceil: bool) -> str | None:
    """``HHMMSSffffff`` (12 digits) filling missing parts with their first or last value."""
    text = text.strip().replace(":", "")
    main, _, fraction = text.partition(".")
    if len(main) not in (2, 4, 6) or not main.isdigit() or len(fraction) > 6:
        return None
    if fraction and not fraction.isdigit():
        return None
    if fraction and len(main) != 6:
        return None
    fill = "005959999999" if ceil else "000000000000"
    digits = main + fraction
    return digits + fill[len(digits) :]


def _offset_minutes(text: str) -> int | None:
    """``+HHMM``/``-HHMM`` as minutes east of UTC; None when it is not a valid offset."""
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
        return None
    hours, minutes = int(text[1:3]), int(text[3:5])
    if hours > 14 or minutes > 59:
        return None
    total = hours * 60 + minutes
    return -total if text[0] == "-" else total


def _split_dt(text: str) -> tuple[str, int | None] | None:
    """DT text without its offset, and the offset; None when malformed."""
    text = text.strip()
    offset: int | None = None
    if len(text) > 5 and text[-5] in "+-":
        offset = _offset_minutes(text[-5:])
        if offset is None:
            return None
        text = text[:-5]
    main, _, fraction = text.partition(".")
    if not main.isdigit() or len(main) not in (4, 6, 8, 10, 12, 14):
        return None
    if fraction and (not fraction.isdigit() or len(fraction) > 6 or len(main) != 14):
        return None
    return text, offset


def _dt(text: str, ceil: bool, default_offset: int) -> datetime | None:
    """A UTC-normalised datetime at the start (or end) of the value's precision."""
    split = _split_dt(text)
    if split is None:
        return None
    value, offset = split
    main, _, fraction = value.partition(".")
    try:
        year = int(main[0:4])
        month = int(main[4:6]) if len(main) >= 6 else (12 if ceil else 1)
        if len(main) >= 8:
            day = int(main[6:8])
        else:
            day = calendar.monthrange(year, month)[1] if ceil else 1
        hour = int(main[8:10]) if len(main) >= 10 else (23 if ceil else 0)
        minute = int(main[10:12]) if len(main) >= 12 else (59 if ceil else 0)
        second = int(main[12:14]) if len(main) >= 14 else (59 if ceil else 0)
        micro = int(fraction.ljust(6, "9" if ceil else "0")) if fraction else 0
        if ceil and not fraction:
            micro = 999999
        result = datetime(year, month, day, hour, minute, min(second, 59), micro)
    except ValueError:
        return None
    return result - timedelta(minutes=default_offset if offset is None else offset)


def _range_parts(vr: str, text: str) -> tuple[str, str] | None:
    """``(low, high)`` texts of a range key (empty for an open end); None for a single value."""
    if "-" not in text:
        return None
    if vr == "DT":
        if _split_dt(text) is not None:
            return None  # a single value with a negative UTC offset
        for index, ch in enumerate(text):
            if ch != "-":
                continue
            low, high = text[:index], text[index + 1 :]
            low_ok = low == "" or _split_dt(low) is not None
            high_ok = high == "" or _split_dt(high) is not None
            if low_ok and high_ok and (low or high):
                return low, high
        return text, text  # malformed: matches nothing because neither end parses
    low, _, high = text.partition("-")
    return low, high


def _temporal_predicate(vr: str, text: str, query_offset: int) -> Callable[[Any, int], bool]:
    """A test on one candidate value (and the candidate's UTC offset, for DT)."""
    parts = _range_parts(vr, text)
    low_text, high_text = parts if parts is not None else (text, text)
    never: Callable[[Any, int], bool] = lambda _value, _offset: False  # noqa: E731
    if vr == "DT":
        low_dt = _dt(low_text, False, query_offset) if low_text else None
        high_dt = _dt(high_text, True, query_offset) if high_text else None
        if (low_text and low_dt is None) or (high_text and high_dt is None):
            return never

        def in_dt_range(value: Any, offset: int) -> bool:
            moment = _dt(_text(value), False, offset)
            if moment is None:
                return False
            return (low_dt is None or moment >= low_dt) and (high_dt is None or moment <= high_dt)

        return in_dt_range
    if vr == "DA":
        low_s, high_s = _da(low_text) if low_text else "", _da(high_text) if high_text else ""
        normalise: Callable[[str], str | None] = _da
    else:
        low_s = _tm(low_text, False) if low_text else ""
        high_s = _tm(high_text, True) if high_text else ""

        def normalise(value: str) -> str | None:
            return _tm(value, False)

    if low_s is None or high_s is None:
        return never

    def in_range(value: Any, _offset: int) -> bool:
        point = normalise(_text(value))
        if point is None:
            return False
        return (not low_s or point >= low_s) and (not high_s or point <= high_s)

    return in_range


# -- per-key compilation ---------------------------------------------------------------------
def _number(value: Any) -> float | None:
    try:
        return float(_text(value) if isinstance(value, bytes) else value)
    except (TypeError, ValueError):
        return None


def _value_predicate(vr: str, value: Any, fold_pn: bool) -> Predicate:
    """One query value -> a test on one candidate value (text or number)."""
    if vr in _NUMERIC_VRS:
        wanted = _number(value)
        if wanted is None:
            return lambda _candidate: False

        def same_number(candidate: Any) -> bool:
            return _number(candidate) == wanted

        return same_number
    text = _text(value)
    if vr == "PN":
        test = _pn_predicate(text, fold_pn)

        def pn(candidate: Any) -> bool:
            return test(_text(candidate))

        return pn
    if vr in WILDCARD_VRS and _has_wildcard(text):
        fits = wildcard_matcher(text)
        return lambda candidate: fits(_text(candidate))
    return lambda candidate: _text(candidate) == text


def _empty_value_check(tag: int) -> Check:
    def check(candidate: Dataset) -> bool:
        elem = candidate_element(candidate, tag)
        return elem is None or not _values(elem.value)

    return check


def _any_value_check(tag: int, predicate: Predicate) -> Check:
    def check(candidate: Dataset) -> bool:
        elem = candidate_element(candidate, tag)
        if elem is None:
            return False
        value = elem.value
        if isinstance(value, MultiValue | list):
            return any(predicate(v) for v in value if v is not None and v != "")
        return value is not None and value != "" and predicate(value)

    return check


def _all_values_check(tag: int, predicates: list[Predicate]) -> Check:
    def check(candidate: Dataset) -> bool:
        elem = candidate_element(candidate, tag)
        if elem is None:
            return False
        values = _values(elem.value)
        return all(any(p(v) for v in values) for p in predicates)

    return check


def _uid_check(tag: int, uids: frozenset[str]) -> Check:
    if len(uids) == 1:
        (uid,) = uids

        def one(candidate: Dataset) -> bool:
            elem = candidate_element(candidate, tag)
            if elem is None:
                return False
            value = elem.value
            if isinstance(value, MultiValue | list):
                return any(str(v) == uid for v in value)
            return value == uid

        return one

    def listed(candidate: Dataset) -> bool:
        elem = candidate_element(candidate, tag)
        if elem is None:
            return False
        return any(str(v) in uids for v in _values(elem.value))

    return listed


def _temporal_check(tag: int, vr: str, texts: list[str], query_offset: int) -> Check:
    tests = [_temporal_predicate(vr, text, query_offset) for text in texts]
    uses_offset = vr == "DT"

    def check(candidate: Dataset) -> bool:
        elem = candidate_element(candidate, tag)
        if elem is None:
            return False
        values = _values(elem.value)
        if not values:
            return False
        offset = query_offset
        if uses_offset:
            zone = candidate_element(candidate, _TIMEZONE_OFFSET_TAG)
            if zone is not None and zone.value:
                parsed = _offset_minutes(_text(zone.value).strip())
                if parsed is not None:
                    offset = parsed
        return all(any(test(v, offset) for v in values) for test in tests)

    return check


def _sequence_check(tag: int, item_matcher: Matcher) -> Check:
    def check(candidate: Dataset) -> bool:
        elem = candidate_element(candidate, tag)
        if elem is None or not elem.value:
            return False
        return any(item_matcher.matches(item) for item in elem.value)

    return check


@dataclass(frozen=True, slots=True)
class MatchOptions:
    pn_case_insensitive: bool = False
    timezone_offset: int = 0
    """Minutes east of UTC for DT values without an offset (the query's 0008,0201)."""


def _compile_key(elem: DataElement, options: MatchOptions) -> Check | None:
    tag = int(elem.tag)
    vr = elem.VR.split(" or ")[0]
    if vr == "SQ":
        item = elem.value[0] if elem.value else Dataset()
        sub = _compile(item, options)
        return None if sub.is_universal else _sequence_check(tag, sub)
    if is_universal(elem):
        return None
    values = _values(elem.value)
    if len(values) == 1 and _text(values[0]) == _EMPTY_VALUE_KEY:
        return _empty_value_check(tag)
    if vr == "UI":
        return _uid_check(tag, frozenset(_text(v).strip("\0 ") for v in values))
    if vr in ("DA", "TM", "DT"):
        return _temporal_check(tag, vr, [_text(v) for v in values], options.timezone_offset)
    predicates = [_value_predicate(vr, v, options.pn_case_insensitive) for v in values]
    if len(predicates) == 1:
        return _any_value_check(tag, predicates[0])
    return _all_values_check(tag, predicates)


def _is_control(tag: int) -> bool:
    group, element = tag >> 16, tag & 0xFFFF
    if group <= 0x0002 or element == 0:
        return True  # command/meta groups and group lengths are not keys
    if group & 1 and 0x0010 <= element <= 0x00FF:
        return True  # private creator reservations
    return tag in CONTROL_TAGS


def _compile(query: Dataset, options: MatchOptions) -> Matcher:
    checks: list[Check] = []
    tags: list[int] = []
    for elem in query:  # iterating a Dataset converts raw elements for us
        tag = int(elem.tag)
        if _is_control(tag):
            continue
        check = _compile_key(elem, options)
        if check is not None:
            checks.append(check)
            tags.append(tag)
    return Matcher(tuple(checks), tuple(tags))


@dataclass(frozen=True, slots=True)
class Matcher:
    """A compiled identifier: call :meth:`matches` once per candidate."""

    checks: tuple[Check, ...] = field(repr=False)
    matching_tags: tuple[int, ...]
    """Tags of the keys that actually constrain the result (non-universal ones)."""

    @property
    def is_universal(self) -> bool:
        return not self.checks

    def matches(self, candidate: Dataset) -> bool:
        for check in self.checks:  # noqa: SIM110 - a plain loop is faster than all(<genexpr>)
            if not check(candidate):
                return False
        return True

    def filter(self, candidates: Iterable[Dataset]) -> Iterator[Dataset]:
        checks = self.checks
        for candidate in candidates:
            if all(check(candidate) for check in checks):
                yield candidate


def compile_query(
    query: Dataset, *, pn_case_insensitive: bool = False, timezone_offset: int | None = None
) -> Matcher:
    """Prepare ``query`` for matching many candidates.

    ``timezone_offset`` (minutes east of UTC) overrides the zone otherwise
    taken from the query's Timezone Offset From UTC (0008,0201).
    """
    if timezone_offset is None:
        zone = query.get(_TIMEZONE_OFFSET_TAG)
        parsed = (
            _offset_minutes(_text(zone.value).strip()) if zone is not None and zone.value else None
        )
        timezone_offset = parsed or 0
    return _compile(query, MatchOptions(pn_case_insensitive, timezone_offset))


def matches(query: Dataset, candidate: Dataset) -> bool:
    """One-off convenience; compile the query with :func:`compile_query` for many candidates."""
    return compile_query(query).matches(candidate)
