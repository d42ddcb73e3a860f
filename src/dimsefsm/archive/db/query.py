"""A C-FIND identifier compiled into one SQL statement over the index tables.

Each key becomes a condition on its column where SQL can decide exactly what
``qr.matching`` decides (see ``columns`` for the normal forms):

* single value: ``=``; a UID list: ``IN``; ``""``: the column is empty;
* ``*``/``?`` in a wild card VR: ``LIKE`` with ``%``/``_`` and escaping (case
  sensitive: SQLite's engine set-up makes it so); a Person Name is compared on
  its alphabetic group, and ``SMITH^*`` also accepts a stored ``SMITH`` (the
  name padded to four ``^``), as the matcher does;
* DA/TM single values and ranges: comparisons on ``YYYYMMDD`` and
  ``HHMMSSffffff`` with the bounds the matcher computes.

The statement returns one row per entity of the query level (a patient,
study or series, with keys of lower levels as ``EXISTS`` conditions), ordered
by when the entity was first stored, with the header of the entity's first
instance that satisfies the lower-level keys as the source of the response: a
cursor over it yields the first match before the last row is read.

Every other key (sequences, several values, DT, numbers, attributes that are
no column) is left to the matcher, run on the header kept in the database of
the first instance of each entity of the key's level: a study key is matched
once per study; a series key in a STUDY query once per series, the statement
then returning one row per series and the studies being formed in Python; a
key of no level of the model (Operators' Name) on every instance, as the
in-memory index did.  A text key among them first narrows the rows in SQL to
the entities holding a series whose ``series_attribute`` values contain its
literal pieces (see ``attributes``): the matcher then reads the headers of
those alone, not of the whole archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from pydicom import Dataset
from pydicom.dataelem import DataElement
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    case,
    false,
    func,
    or_,
    select,
)

from dimsefsm.archive.db.attributes import KeyPieces, key_pieces
from dimsefsm.archive.db.columns import SPECS, ColumnSpec, normalise
from dimsefsm.archive.db.computed import COMPUTED_KEYS
from dimsefsm.archive.db.schema import instance, patient, series, series_attribute, study
from dimsefsm.qr.matching import (
    WILDCARD_VRS,
    Matcher,
    _is_control,
    _range_parts,
    _text,
    _tm,
    _values,
    compile_query,
    is_universal,
)
from dimsefsm.qr.models import MODELS, InformationModel

__all__ = ["DEPTHS", "CompiledFind", "compile_find", "like_pattern"]

DEPTHS: Final = {"PATIENT": 0, "STUDY": 1, "SERIES": 2, "IMAGE": 3}
CHAIN: Final = (patient, study, series, instance)
_LINKS: Final = (
    None,
    study.c.patient_pk == patient.c.pk,
    series.c.study_pk == study.c.pk,
    instance.c.series_pk == series.c.pk,
)
_EMPTY_VALUE_KEY: Final = '""'


@dataclass(frozen=True)
class CompiledFind:
    depth: int
    """0-3: the rows are patients, studies, series or instances."""
    statement: Select[Any]
    """Columns: ``pk0..pk{depth}`` (patient down), ``key0..`` (their unique values), ``header``
    (None unless asked) and, for instance rows, ``path``."""
    residual: Matcher | None
    """Keys SQL does not decide: matched on each row's header (the entity's first instance,
    or each instance when a key is of a lower level than the query's)."""
    entity_depth: int
    """The level whose entities are returned (rows are deduplicated to them)."""
    uniques: tuple[int, ...]
    computed_tags: tuple[int, ...]
    computed_matcher: Matcher | None


def like_pattern(text: str) -> str:
    """A DICOM ``*``/``?`` pattern as a LIKE pattern with ``\\`` as escape character."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _like(column: Any, text: str) -> ColumnElement[bool]:
    return column.like(like_pattern(text), escape="\\")


def _padded_name(column: Any) -> Any:
    """The name with ``^`` added up to four separators (the matcher's second try)."""
    carets = func.length(column) - func.length(func.replace(column, "^", ""))
    return case((carets >= 4, column), else_=column + func.substr("^^^^", 1, 4 - carets))


def _condition(spec: ColumnSpec, elem: DataElement) -> ColumnElement[bool] | None:
    """The exact SQL form of one key; None when only the matcher can decide it."""
    column = CHAIN[DEPTHS[spec.level]].c[spec.column]
    vr = elem.VR.split(" or ")[0]
    values = _values(elem.value)
    if spec.kind == "uid" and vr == "UI":
        uids = sorted({_text(v).strip("\0 ") for v in values})
        if uids == [_EMPTY_VALUE_KEY]:
            return column == "" if spec.identity else column.is_(None)
        return column == uids[0] if len(uids) == 1 else column.in_(uids)
    if len(values) != 1:
        return None  # multiple value matching: every value must be matched, by the matcher
    text = _text(values[0])
    if text == _EMPTY_VALUE_KEY:
        return column == "" if spec.identity else column.is_(None)
    if spec.kind == "text" and vr not in ("DA", "TM", "DT", "PN", "SQ"):
        if vr in WILDCARD_VRS and ("*" in text or "?" in text):
            return _like(column, text)
        return column == text
    if spec.kind == "pn" and vr == "PN":
        if "=" in text:
            return None
        group = normalise("pn", text)
        if group is None:
            return None
        if "*" in group or "?" in group:
            return or_(_like(column, group), _like(_padded_name(column), group))
        return column == group
    if spec.kind in ("da", "tm") and vr == spec.kind.upper():
        parts = _range_parts(vr, text)
        low_text, high_text = parts if parts is not None else (text, text)
        if spec.kind == "da":
            low = normalise("da", low_text) if low_text else ""
            high = normalise("da", high_text) if high_text else ""
        else:  # the upper end covers the whole span of its precision, as in the matcher
            low = _tm(low_text, False) if low_text else ""
            high = _tm(high_text, True) if high_text else ""
        if low is None or high is None:
            return false()
        conditions: list[ColumnElement[bool]] = [column.is_not(None)]
        if low:
            conditions.append(column >= low)
        if high:
            conditions.append(column <= high)
        return and_(*conditions)
    return None


def _joined(first: int, last: int) -> FromClause:
    """CHAIN[first] joined down to CHAIN[last]."""
    joined: FromClause = CHAIN[first]
    for depth in range(first + 1, last + 1):
        link = _LINKS[depth]
        assert link is not None
        joined = joined.join(CHAIN[depth], link)
    return joined


def _below(
    depth: int, conditions: dict[int, list[ColumnElement[bool]]], last: int, column: Any
) -> Select[Any]:
    """``column`` of the rows of the levels below ``depth`` (down to ``last``) in the entity."""
    link = _LINKS[depth + 1]
    assert link is not None
    lower = [c for d in range(depth + 1, last + 1) for c in conditions.get(d, ())]
    return select(column).select_from(_joined(depth + 1, last)).where(link, *lower)


def _narrowed(depth: int, pieces: KeyPieces) -> ColumnElement[bool]:
    """The rows at ``depth`` of entities holding a series with a value the key may match."""
    values = series_attribute.c.value
    per_value = [
        and_(*(values.like(f"%{like_pattern(piece)}%", escape="\\") for piece in value))
        for value in pieces.per_value
    ]
    found = or_(*per_value) if pieces.any_value else and_(*per_value)
    holding = select(series_attribute.c.series_pk).where(
        series_attribute.c.tag == pieces.tag, or_(series_attribute.c.truncated == 1, found)
    )
    if depth == 3:
        return instance.c.series_pk.in_(holding)
    if depth == 2:
        return series.c.pk.in_(holding)
    if depth == 1:
        return study.c.pk.in_(select(series.c.study_pk).where(series.c.pk.in_(holding)))
    return patient.c.pk.in_(
        select(study.c.patient_pk)
        .select_from(study.join(series, _LINKS[2]))
        .where(series.c.pk.in_(holding))
    )


def _level_depth(info: InformationModel | None, tag: int) -> int:
    """The depth (0 patient .. 3 instance) of a key's level; 3 for keys the model does not list."""
    if info is None:
        return 3
    index = info.level_of(tag)
    if index is None:
        return 3
    return DEPTHS.get(info.levels[index].name, 3)


def compile_find(
    identifier: Dataset, model: str, *, with_header: bool = True, with_path: bool = False
) -> CompiledFind:
    """The statement (and what is left to Python) for ``identifier`` in ``model``."""
    level_name = str(identifier.get("QueryRetrieveLevel", "") or "IMAGE").strip().upper()
    entity_depth = DEPTHS.get(level_name, 3)
    info = MODELS.get(model)
    uniques = info.unique_keys_down_to(level_name) if info is not None else ()
    conditions: dict[int, list[ColumnElement[bool]]] = {}
    residual = Dataset()
    computed_tags: list[int] = []
    computed_keys = Dataset()
    for elem in identifier:
        tag = int(elem.tag)
        if _is_control(tag):
            continue
        if tag in COMPUTED_KEYS:
            computed_tags.append(tag)
            if not is_universal(elem):
                computed_keys.add(elem)
            continue
        if elem.VR == "SQ":
            if not is_universal(elem):
                residual.add(elem)
            continue
        if is_universal(elem):
            continue
        spec = SPECS.get(tag)
        condition = _condition(spec, elem) if spec is not None else None
        if condition is None:
            residual.add(elem)
        else:
            conditions.setdefault(DEPTHS[spec.level], []).append(condition)  # type: ignore[union-attr]
    if "SpecificCharacterSet" in identifier and len(residual):
        residual.SpecificCharacterSet = identifier.SpecificCharacterSet
    if "TimezoneOffsetFromUTC" in identifier and len(residual):
        residual.TimezoneOffsetFromUTC = identifier.TimezoneOffsetFromUTC
    residual_matcher = compile_query(residual) if len(residual) else None
    if residual_matcher is not None and residual_matcher.is_universal:
        residual_matcher = None
    # A key the matcher decides is matched on the first instance of each entity of its own
    # level (a study key: one header per study; a series key: one per series), or of the
    # query level when that is lower; a key of no level of the model, on every instance.
    depth = max(
        [entity_depth]
        + [
            _level_depth(info, tag)
            for tag in (residual_matcher.matching_tags if residual_matcher else ())
        ]
    )
    with_header = with_header or residual_matcher is not None
    deepest = max(conditions, default=0)
    columns: list[Any] = []
    for d in range(depth + 1):
        columns.append(CHAIN[d].c.pk.label(f"pk{d}"))
    for d, name in enumerate(("patient_id", "study_uid", "series_uid", "sop_uid")[: depth + 1]):
        columns.append(CHAIN[d].c[name].label(f"key{d}"))
    where = [c for d in range(depth + 1) for c in conditions.get(d, ())]
    if residual_matcher is not None:
        narrowing = (key_pieces(elem) for elem in residual if elem.VR != "SQ")
        where += [_narrowed(depth, pieces) for pieces in narrowing if pieces is not None]
    if deepest > depth:
        where.append(_below(depth, conditions, deepest, CHAIN[deepest].c.pk).exists())
    if depth == 3:
        if with_header:
            columns.append(instance.c.header.label("header"))
        if with_path:
            columns.append(instance.c.path.label("path"))
    elif with_header:
        first = _below(depth, conditions, 3, instance.c.header).order_by(instance.c.pk).limit(1)
        columns.append(first.scalar_subquery().label("header"))
    statement = (
        select(*columns).select_from(_joined(0, depth)).where(*where).order_by(CHAIN[depth].c.pk)
    )
    computed_matcher = compile_query(computed_keys) if len(computed_keys) else None
    return CompiledFind(
        depth,
        statement,
        residual_matcher,
        entity_depth,
        tuple(uniques),
        tuple(computed_tags),
        computed_matcher,
    )
