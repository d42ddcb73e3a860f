"""The archive index of the Q/R SCP: a database of key attributes, headers and file paths.

Every stored instance is a row of the ``instance`` table under its series,
study and patient rows (``archive.db.schema``), with the key attributes of each
level as columns and the instance's header (no pixel data) kept whole, so a
query is answered from the database alone: no file is opened, at start or
per query.  The default database is a SQLite file under the storage
directory; any SQLAlchemy URL (``postgresql+psycopg://...``) lets several
processes share one index and one storage tree.

Filing rule (issue 11, item 7), held by the database so that every process
agrees: one SOP Instance UID has one place.  :meth:`ArchiveIndex.file` checks
the UID's row, writes the rows, renames the file into place (the caller's
``commit``) and commits, all in one write transaction: a re-store into the
same Patient ID, study and series replaces the file; one into another place
is refused and the first stays.  The instance row is written before the file
is renamed, so a second process filing the same UID at the same moment waits
on (PostgreSQL) or is serialised behind (SQLite) the first, then sees its row.

An instance of a single-level model (Hanging Protocol, Color Palette, Defined
Procedure Protocol, Implant Template: ``qr.flat_models``) is one row of
``family_instance`` instead, its place being its SOP class; a UID is looked up
in both tables by the same statement, so it has one place across the archive
(on PostgreSQL a per-UID advisory lock orders two filers of one UID, since no
constraint spans two tables).

An entity's attributes (a patient's name, a study's date) are those its
instances carry; when they disagree, the most recently stored non-empty value
wins, and a C-FIND response is built from the entity's first instance.

Files already on disk (an archive from elsewhere, or a storage directory
from before the database) are imported once: each file is structure-checked
(a torn file is not indexed), examined like a received instance and filed
under the same rule; a file already indexed under its path is skipped
without being read, so importing twice changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pydicom import Dataset, dcmread
from pydicom.errors import InvalidDicomError
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    String,
    Table,
    bindparam,
    cast,
    func,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from dimsefsm.archive.admission import examine
from dimsefsm.archive.db.attributes import AttributeRow, attribute_rows
from dimsefsm.archive.db.columns import LEVEL_COLUMNS, LevelValues, columns_of
from dimsefsm.archive.db.computed import COMPUTED_KEYS, computed_attributes
from dimsefsm.archive.db.families import compile_family_find, family_retrieve
from dimsefsm.archive.db.header import header_bytes, header_of
from dimsefsm.archive.db.query import compile_find
from dimsefsm.archive.db.schema import (
    WRITE_OPTION,
    add_series_attributes,
    family_instance,
    instance,
    open_engine,
    patient,
    schema_table,
    series,
    study,
)
from dimsefsm.archive.location import adopt_old_index, default_url, sqlite_files
from dimsefsm.datasets import DatasetChecker, DatasetDecodeError
from dimsefsm.part10 import iter_file_chunks, read_part10_info
from dimsefsm.qr.flat_models import FLAT_MODELS, model_of_storage_class

__all__ = [
    "COMPUTED_KEYS",
    "ArchiveIndex",
    "Conflict",
    "ImportCounts",
    "Match",
    "Record",
    "check_structure",
]

LOG = logging.getLogger("dimsefsm.qr.index")

_KEY_DEPTH: Final = {0x00100020: 0, 0x0020000D: 1, 0x0020000E: 2, 0x00080018: 3}
# Another process can win the insert of the patient, study, series and instance row once
# each (rows are never deleted, so the next attempt finds the winner's): 4 losses at most.
_FILING_ATTEMPTS: Final = 5
_STREAM_BATCH: Final = 64
_IMPORT_LOG_EVERY: Final = 10_000


@dataclass(frozen=True, slots=True)
class Record:
    """An indexed instance (or an entity's first instance): its file and its header."""

    path: Path | None
    blob: bytes | None = field(default=None, repr=False)

    @property
    def header(self) -> Dataset:
        return header_of(self.blob) if self.blob is not None else Dataset()


@dataclass(frozen=True, slots=True)
class Match:
    """One C-FIND match: its record, the header it matched on, the computed attributes."""

    record: Record
    header: Dataset
    computed: Dataset


@dataclass(frozen=True, slots=True)
class Conflict:
    """The UID is already filed elsewhere: where (for the refusal's log line)."""

    patient_id: str
    study_uid: str
    path: Path
    sop_class_uid: str | None = None
    """Set when the UID is filed as a single-level model's instance (of this SOP class)."""

    @property
    def place(self) -> str:
        if self.sop_class_uid is not None:
            return f"as an instance of another SOP class ({self.sop_class_uid})"
        return "under another patient, study or series"


@dataclass
class ImportCounts:
    imported: int = 0
    skipped: int = 0  # already indexed under the same path: not read again
    refused: int = 0  # torn, unreadable, failing the admission checks, or filed elsewhere


def check_structure(path: Path) -> None:
    """Raise ``ValueError`` unless the file's data set is complete and well framed.

    Only element framing is walked (values are skipped), so a torn file, cut
    in its pixel data, is caught at the cost of reading it once.
    """
    info = read_part10_info(path)
    checker = DatasetChecker(info.transfer_syntax)
    try:
        for chunk in iter_file_chunks(path, info.dataset_offset):
            checker.feed(chunk)
        checker.finish()
    except DatasetDecodeError as exc:
        raise ValueError(f"data set is not complete: {exc}") from None


def _candidate_files(directory: Path, skip: frozenset[Path] = frozenset()) -> list[Path]:
    """Files below ``directory`` but those in ``skip`` (absolute paths: a SQLite index given
    with ``--database`` inside the tree); hidden files and folders (the default index in
    ``.dimsefsm``, temporary files) are not DICOM and not walked."""
    found = []
    for root, folders, names in os.walk(directory):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            path = Path(root, name)
            if not name.startswith(".") and path.absolute() not in skip and path.is_file():
                found.append(path)
    return sorted(found)


class ArchiveIndex:
    """Thread-safe: every operation takes its own connection from the engine's pool."""

    def __init__(self, directory: Path, database: str | None = None, durable: bool = False) -> None:
        """``durable``: commits survive a power loss, not only a crash (qrscp ``--fsync``)."""
        self.directory = directory
        self.durable = durable
        # The default SQLite file may still be at its old place until open() moves it.
        self._default_database = database is None
        self.url = database or default_url(directory)
        self._engine: Engine | None = None
        # Only spares SQLite's busy handler the threads of this process: the database
        # itself serialises filing (BEGIN IMMEDIATE, the unique SOP Instance UID).
        self._filing = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and check the schema (``SchemaError`` if this database is not usable)."""
        if self._engine is None:
            if self._default_database:
                self.url = f"sqlite:///{adopt_old_index(self.directory)}"
            self._engine = open_engine(self.url, durable=self.durable)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self.open()
        assert self._engine is not None
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __len__(self) -> int:
        with self.engine.connect() as connection:
            return sum(
                int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (instance, family_instance)
            )

    # -- paths -----------------------------------------------------------------------------
    def _stored_path(self, path: Path) -> str:
        """Relative to the storage directory when inside it (several nodes may mount it)."""
        if path.is_absolute() == self.directory.is_absolute() and path.is_relative_to(
            self.directory
        ):
            return path.relative_to(self.directory).as_posix()
        return str(path.absolute())

    def _resolve(self, stored: str) -> Path:
        return self.directory / stored

    # -- filing ----------------------------------------------------------------------------
    def get(self, sop_instance_uid: str) -> Record | None:
        with self.engine.connect() as connection:
            for table in (instance, family_instance):
                row = connection.execute(
                    select(table.c.path, table.c.header).where(table.c.sop_uid == sop_instance_uid)
                ).first()
                if row is not None:
                    return Record(self._resolve(row.path), row.header)
        return None

    def file(self, header: Dataset, commit: Callable[[], Path]) -> Path | Conflict:
        """Check the UID's place, write the rows and ``commit()`` the file, as one transaction.

        ``header`` has passed ``admission.examine``.  Returns the committed
        path, or the :class:`Conflict` when the UID is filed under another
        patient, study or series (``commit`` is then not called).  ``OSError``
        from ``commit`` rolls the rows back and propagates.
        """
        identity, levels = columns_of(header)
        blob = header_bytes(header)
        sop_class = levels["IMAGE"]["sop_class_uid"] or ""
        model = model_of_storage_class(sop_class)
        attributes = attribute_rows(header) if model is None else []
        for attempt in range(_FILING_ATTEMPTS):
            try:
                with self._filing, self.engine.connect() as connection:
                    connection = connection.execution_options(**{WRITE_OPTION: True})
                    with connection.begin():
                        if model is not None:
                            return self._file_family(
                                connection, model, sop_class, identity[3], blob, commit
                            )
                        return self._file(connection, identity, levels, blob, attributes, commit)
            except IntegrityError:
                # Another process inserted a row of this UID (or its patient, study, series)
                # between our check and our insert: look again.
                if attempt == _FILING_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _file(
        self,
        connection: Connection,
        identity: tuple[str, str, str, str],
        levels: dict[str, dict[str, str | None]],
        blob: bytes,
        attributes: list[AttributeRow],
        commit: Callable[[], Path],
    ) -> Path | Conflict:
        patient_id, study_uid, series_uid, uid = identity
        _lock_uid(connection, uid)
        row = _PLACE_OF_UID.first(connection, {"uid": uid})
        if row is not None and (
            row["patient_id"],
            row["study_uid"],
            row["series_uid"],
            row["sop_class_uid"],
        ) != (patient_id, study_uid, series_uid, None):
            return self._conflict(row)
        series_pk = _existing_series(connection, identity, levels)
        if series_pk is None:
            patient_pk = _LEVELS[0].upsert(connection, (patient_id,), levels["PATIENT"])
            study_pk = _LEVELS[1].upsert(connection, (patient_pk, study_uid), levels["STUDY"])
            series_pk = _LEVELS[2].upsert(connection, (study_pk, series_uid), levels["SERIES"])
        add_series_attributes(connection, series_pk, attributes)
        values = dict(levels["IMAGE"], series_pk=series_pk, header=blob, sop_uid=uid)
        if row is None:
            # The row first: a concurrent filer of this UID now waits for our commit.
            _INSERT_INSTANCE.run(connection, dict(values, path=""))
        path = commit()
        # By UID, which is unique: the new row's key is not needed (no RETURNING).
        update = _UPDATE_PATH if row is None else _UPDATE_INSTANCE
        update.run(connection, dict(values, path=self._stored_path(path)))
        return path

    def _conflict(self, row: Mapping[str, Any]) -> Conflict:
        return Conflict(
            row["patient_id"] or "",
            row["study_uid"] or "",
            self._resolve(row["path"]),
            row["sop_class_uid"],
        )

    def _file_family(
        self,
        connection: Connection,
        model: str,
        sop_class: str,
        uid: str,
        blob: bytes,
        commit: Callable[[], Path],
    ) -> Path | Conflict:
        """:meth:`file` for an instance of a single-level model: one row, no hierarchy.

        The UID's place is its SOP class: a re-store of the same class replaces
        the file (a retransmission), one of another class or of a patient's
        instance is refused.
        """
        _lock_uid(connection, uid)
        row = _PLACE_OF_UID.first(connection, {"uid": uid})
        if row is not None and row["sop_class_uid"] != sop_class:
            return self._conflict(row)
        values = {"model": model, "sop_class_uid": sop_class, "sop_uid": uid, "header": blob}
        if row is None:
            # The row first: a concurrent filer of this UID now waits for our commit.
            connection.execute(family_instance.insert().values(dict(values, path="")))
        path = commit()
        connection.execute(
            family_instance.update()
            .where(family_instance.c.sop_uid == uid)
            .values(dict(values, path=self._stored_path(path)))
        )
        return path

    # -- import ----------------------------------------------------------------------------
    def add_file(self, path: Path) -> Record | None:
        """Index one file found on disk, checked like a received instance; None if not indexed."""
        try:
            check_structure(path)
            header = dcmread(path, stop_before_pixels=True)
            uid = str(header.get("SOPInstanceUID", "") or "")
            command = {
                "AffectedSOPInstanceUID": uid,
                "AffectedSOPClassUID": str(header.get("SOPClassUID", "") or ""),
            }
        except (InvalidDicomError, OSError, ValueError, TypeError) as exc:
            LOG.warning("not indexed: %s: %s", path, exc)
            return None
        if not uid:
            LOG.warning("not indexed: %s has no SOP Instance UID", path)
            return None
        refusal = examine(header, command)
        if refusal is not None:
            LOG.warning("not indexed: %s: %s", path, refusal.comment)
            return None
        try:
            outcome = self.file(header, lambda: path)
        except ValueError as exc:
            LOG.warning("not indexed: %s: %s", path, exc)
            return None
        if isinstance(outcome, Conflict):
            LOG.warning(
                "not indexed: %s holds SOP Instance UID %s, already indexed from %s %s",
                path,
                uid,
                outcome.path,
                outcome.place,
            )
            return None
        return Record(outcome)

    def _indexed_paths(self) -> set[str]:
        """Every indexed path, read once per import (one query instead of one per file)."""
        with self.engine.connect() as connection:
            return set(connection.execute(select(instance.c.path)).scalars()) | set(
                connection.execute(select(family_instance.c.path)).scalars()
            )

    def import_directory(
        self, directory: Path, progress: Callable[[int, int], None] | None = None
    ) -> ImportCounts:
        """Index every file below ``directory`` not indexed yet; the files stay where they are."""
        counts = ImportCounts()
        files = _candidate_files(directory, sqlite_files(self.url))
        indexed = self._indexed_paths()
        for done, path in enumerate(files, 1):
            if self._stored_path(path) in indexed:
                counts.skipped += 1
            elif self.add_file(path) is None:
                counts.refused += 1
            else:
                counts.imported += 1
            if progress is not None:
                progress(done, len(files))
            if done % _IMPORT_LOG_EVERY == 0:
                LOG.info("import of %s: %d of %d file(s) done", directory, done, len(files))
        LOG.info(
            "import of %s: %d instance(s) indexed, %d already indexed, %d not indexed",
            directory,
            counts.imported,
            counts.skipped,
            counts.refused,
        )
        return counts

    def import_storage_once(self) -> ImportCounts | None:
        """On the first start over a storage directory with files: import them, never again."""
        with self.engine.connect() as connection:
            done = connection.execute(select(schema_table.c.storage_imported)).scalar_one()
        if done:
            return None
        counts = None
        skip = sqlite_files(self.url)
        if len(self) == 0 and self.directory.is_dir() and _candidate_files(self.directory, skip):
            counts = self.import_directory(self.directory)
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                connection.execute(schema_table.update().values(storage_imported=1))
        return counts

    # -- queries ---------------------------------------------------------------------------
    def find(self, identifier: Dataset, model: str) -> Generator[Match, None, None]:
        """C-FIND matches, one per entity at the Query/Retrieve Level, streamed from a cursor.

        Closing the generator (a C-CANCEL) closes the cursor and returns the connection.
        A single-level model (``qr.flat_models``) has one entity, the instance.
        """
        if model in FLAT_MODELS:
            yield from self._family_matches(identifier, model)
        else:
            yield from self._rows(identifier, model, with_header=True)

    def query(self, identifier: Dataset, model: str) -> Iterator[Record]:
        """The records (paths) ``identifier`` names: what a C-GET or C-MOVE sends."""
        if model in FLAT_MODELS:
            with self.engine.connect() as connection:
                for stored in connection.execute(family_retrieve(identifier, model)).scalars():
                    yield Record(self._resolve(stored))
            return
        for match in self._rows(identifier, model, with_header=False):
            yield match.record

    def _family_matches(self, identifier: Dataset, model: str) -> Iterator[Match]:
        compiled = compile_family_find(identifier, model)
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=_STREAM_BATCH).execute(
                compiled.statement
            )
            with contextlib.closing(result):
                for row in result:
                    header = header_of(row.header)
                    if compiled.residual is None or compiled.residual.matches(header):
                        yield Match(Record(self._resolve(row.path), row.header), header, Dataset())

    def _rows(self, identifier: Dataset, model: str, *, with_header: bool) -> Iterator[Match]:
        compiled = compile_find(identifier, model, with_header=with_header, with_path=True)
        key_depths = [_KEY_DEPTH[tag] for tag in compiled.uniques if tag in _KEY_DEPTH]
        seen: set[tuple[Any, ...]] = set()
        with self.engine.connect() as connection:
            result = connection.execution_options(yield_per=_STREAM_BATCH).execute(
                compiled.statement
            )
            with contextlib.closing(result):
                for row in result:
                    mapping = row._mapping
                    key: tuple[Any, ...] | None = None
                    if key_depths:  # a study-root study may span two patients' rows
                        key = tuple(mapping[f"key{d}"] for d in key_depths)
                        if key in seen:  # already answered: its other rows are not read
                            continue
                    blob = mapping.get("header")
                    header = header_of(blob) if blob is not None else Dataset()
                    if compiled.residual is not None and not compiled.residual.matches(header):
                        continue
                    if key is not None:
                        seen.add(key)
                    computed = Dataset()
                    if compiled.computed_tags:
                        pks = tuple(mapping[f"pk{d}"] for d in range(compiled.entity_depth + 1))
                        computed = computed_attributes(connection, compiled.computed_tags, pks)
                        matcher = compiled.computed_matcher
                        if matcher is not None and not matcher.matches(computed):
                            continue
                    stored = mapping.get("path")
                    path = self._resolve(stored) if stored is not None else None
                    yield Match(Record(path, blob), header, computed)


class _LevelWriter:
    """Prepared statements that find or create a patient, study or series row.

    Built once: filing an instance runs them with parameters only, so no
    statement is rebuilt or recompiled per instance.
    """

    def __init__(self, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> None:
        self.columns = columns
        self.keys = keys
        self.find = select(table.c.pk, *(table.c[name] for name in columns)).where(
            *(table.c[name] == bindparam(name) for name in keys)
        )
        self.insert = table.insert()
        # Non-empty values win; an instance without a value keeps the entity's.
        self.update = (
            table.update()
            .where(table.c.pk == bindparam("pk_"))
            .values({name: func.coalesce(bindparam(name), table.c[name]) for name in columns})
        )

    def upsert(
        self, connection: Connection, keys: tuple[Any, ...], values: dict[str, str | None]
    ) -> int:
        params = dict(zip(self.keys, keys, strict=True))
        row = connection.execute(self.find, params).first()
        if row is None:
            return _inserted_pk(connection.execute(self.insert, dict(params, **values)))
        self.refresh(connection, int(row.pk), row._mapping, values)
        return int(row.pk)

    def refresh(
        self,
        connection: Connection,
        pk: int,
        current: Mapping[Any, Any],
        values: dict[str, str | None],
        prefix: str = "",
    ) -> None:
        """Write the non-empty ``values`` that differ from the row's ``current`` ones."""
        if any(v is not None and current[prefix + name] != v for name, v in values.items()):
            connection.execute(self.update, dict(values, pk_=pk))


def _existing_series(
    connection: Connection, identity: tuple[str, str, str, str], levels: LevelValues
) -> int | None:
    """The series row of ``identity`` with its study and patient refreshed; None if new.

    The usual case (the next instance of a series being received) costs one
    statement instead of one per level.
    """
    params = {"patient_id": identity[0], "study_uid": identity[1], "series_uid": identity[2]}
    current = _HIERARCHY.first(connection, params)
    if current is None:
        return None
    for depth, level in enumerate(("PATIENT", "STUDY", "SERIES")):
        prefix = f"l{depth}_"
        _LEVELS[depth].refresh(connection, current[f"{prefix}pk"], current, levels[level], prefix)
    return int(current["l2_pk"])


class _Prepared:
    """A Core statement compiled once per dialect and run on the driver's cursor.

    Filing an instance runs four statements; through SQLAlchemy's execution
    path each cost about 0.1 ms of Python (cache key, execution context,
    result object): ten times SQLite's own work and most of the time of a
    C-STORE into qrscp.  The statements of that path are compiled to the
    driver's SQL once, by SQLAlchemy for the connection's dialect (so the same
    code runs on SQLite and PostgreSQL), and then run with their parameters
    only, inside the connection's transaction.  Their values are text, bytes,
    integers or None, which every driver takes as they are: no bind or result
    processing is skipped that these columns would need.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self.keys: tuple[str, ...] = tuple(
            column.key for column in getattr(statement, "selected_columns", ())
        )
        self._sql: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def _compiled(self, connection: Connection) -> tuple[str, tuple[str, ...] | None]:
        dialect = connection.dialect
        found = self._sql.get(dialect.name)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup or ()) if dialect.positional else None
            found = self._sql[dialect.name] = (compiled.string, order)
        return found

    def _execute(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        """The driver's cursor after the statement; the driver's errors as SQLAlchemy's
        (``IntegrityError`` when another process won an insert), as ``execute`` raises them."""
        sql, order = self._compiled(connection)
        values = params if order is None else tuple(params[key] for key in order)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        dialect = connection.dialect
        if connection.dispatch.before_cursor_execute:  # instrumentation sees these statements too
            connection.dispatch.before_cursor_execute(connection, cursor, sql, values, None, False)
        try:
            cursor.execute(sql, values)
        except dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise DBAPIError.instance(
                sql, values, exc, dialect.loaded_dbapi.Error, dialect=dialect
            ) from exc
        return cursor

    def run(self, connection: Connection, params: Mapping[str, Any]) -> None:
        self._execute(connection, params).close()

    def first(self, connection: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as a mapping of the statement's column keys, or None."""
        cursor = self._execute(connection, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else dict(zip(self.keys, row, strict=True))


def _column_names(level: str) -> tuple[str, ...]:
    return tuple(spec.column for spec in LEVEL_COLUMNS[level])


_LEVELS: Final = (
    _LevelWriter(patient, ("patient_id",), _column_names("PATIENT")),
    _LevelWriter(study, ("patient_pk", "study_uid"), _column_names("STUDY")),
    _LevelWriter(series, ("study_pk", "series_uid"), _column_names("SERIES")),
)
_HIERARCHY: Final = _Prepared(
    select(
        *(
            column.label(f"l{depth}_{column.name}")
            for depth, table in enumerate((patient, study, series))
            for column in (table.c.pk, *(table.c[n] for n in _LEVELS[depth].columns))
        )
    )
    .select_from(
        patient.join(study, study.c.patient_pk == patient.c.pk).join(
            series, series.c.study_pk == study.c.pk
        )
    )
    .where(
        patient.c.patient_id == bindparam("patient_id"),
        study.c.study_uid == bindparam("study_uid"),
        series.c.series_uid == bindparam("series_uid"),
    )
)
_NO_TEXT: Final = cast(null(), String)
_PLACE_OF_UID: Final = _Prepared(
    # Where a UID is filed, in either table: a patient's instance (sop_class_uid NULL) or a
    # single-level model's (patient, study and series NULL).  One statement for both.
    union_all(
        select(
            instance.c.pk,
            instance.c.path,
            patient.c.patient_id,
            study.c.study_uid,
            series.c.series_uid,
            _NO_TEXT.label("sop_class_uid"),
        )
        .select_from(
            patient.join(study, study.c.patient_pk == patient.c.pk)
            .join(series, series.c.study_pk == study.c.pk)
            .join(instance, instance.c.series_pk == series.c.pk)
        )
        .where(instance.c.sop_uid == bindparam("uid")),
        select(
            family_instance.c.pk,
            family_instance.c.path,
            _NO_TEXT,
            _NO_TEXT,
            _NO_TEXT,
            family_instance.c.sop_class_uid,
        ).where(family_instance.c.sop_uid == bindparam("uid")),
    )
)
_UID_LOCK_SPACE: Final = 0x75696473  # "uids": PostgreSQL advisory locks of the filing rule
_UID_LOCK: Final = text("SELECT pg_advisory_xact_lock(:space, hashtext(:uid))")


def _lock_uid(connection: Connection, uid: str) -> None:
    """PostgreSQL: serialise the filing of one UID across processes, until the commit.

    The UID is unique in each table by constraint, but a patient's instance and a
    single-level model's instance live in two tables, and two transactions each checking
    the other's table would both see nothing before either commits.  SQLite needs no
    lock: a write transaction (BEGIN IMMEDIATE) already excludes every other writer.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_UID_LOCK, {"space": _UID_LOCK_SPACE, "uid": uid})


_INSTANCE_COLUMNS: Final = ("series_pk", "header", "path", *_column_names("IMAGE"))
_INSERT_INSTANCE: Final = _Prepared(
    instance.insert().values({name: bindparam(name) for name in ("sop_uid", *_INSTANCE_COLUMNS)})
)
_BY_UID: Final = instance.c.sop_uid == bindparam("sop_uid")
_UPDATE_PATH: Final = _Prepared(instance.update().where(_BY_UID).values(path=bindparam("path")))
_UPDATE_INSTANCE: Final = _Prepared(
    instance.update().where(_BY_UID).values({name: bindparam(name) for name in _INSTANCE_COLUMNS})
)


def _inserted_pk(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
