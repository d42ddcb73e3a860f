"""Tables of the archive index, the engine set-up and the schema version check.

Four tables follow the Q/R information model (PS3.4 C.6): ``patient`` (by
Patient ID), ``study`` (by patient and Study Instance UID), ``series`` (by
study and Series Instance UID) and ``instance`` (by SOP Instance UID, unique
across the archive: one place per instance, enforced by the database so that
several processes sharing one database agree).  Each level holds the key
attributes of its level as columns (see ``columns``), indexed where queries
commonly match; an instance also keeps its whole header without pixel data
(Explicit VR Little Endian bytes), so any key can be matched and returned
without opening its file, and the path of its file.  ``series_attribute``
keeps the distinct values of the other text attributes per series, so a key
that is no column is narrowed in SQL before the matcher reads headers (see
``attributes``).  ``family_instance`` holds the instances of the single-level
models (Hanging Protocol, Color Palette, Defined Procedure Protocol, Implant
Templates), which have no patient, study or series: model, SOP class, UID,
path and header.

Types are portable (Integer, String, LargeBinary): the same tables work on
SQLite and PostgreSQL.  The only SQLite-specific code is the engine set-up
below: WAL (readers never wait for the writer, the writer never waits for a
streaming reader), ``synchronous`` (see :func:`open_engine`), case-sensitive ``LIKE`` (DICOM
matching is case sensitive, as ``LIKE`` is on PostgreSQL) and
``BEGIN IMMEDIATE`` for write transactions (the filing check and the write
are one serialised step across processes).  On PostgreSQL the schema check
holds an advisory lock, so nodes starting at once on an empty database do not
race to create the tables.

The ``dimsefsm_schema`` table holds the schema version.  A database written
by a newer dimsefsm, or a foreign database holding tables of these names, is
refused at start with a clear error instead of being misread; one written by
an older one is brought up to date at start (:data:`MIGRATIONS`), in the
transaction of the check.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any, Final

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from dimsefsm.archive.db.attributes import AttributeRow, attribute_rows
from dimsefsm.archive.db.columns import LEVEL_COLUMNS
from dimsefsm.archive.db.header import header_of
from dimsefsm.archive.db.mpps_table import add_mpps_table, declare_mpps_table

LOG = logging.getLogger("dimsefsm.qr.index")

SCHEMA_VERSION: Final = 5
WRITE_OPTION: Final = "dimsefsm_write"
_WAL_ATTEMPTS: Final = 5
_SCHEMA_LOCK_KEY: Final = 0x64696D73  # "dims": PostgreSQL advisory lock of the schema check
"""Execution option marking a connection whose transactions write (SQLite: BEGIN IMMEDIATE)."""

metadata = MetaData()

schema_table = Table(
    "dimsefsm_schema",
    metadata,
    Column("version", Integer, nullable=False),
    Column("storage_imported", Integer, nullable=False, default=0),
)


def _columns(level: str) -> list[Column[Any]]:
    return [Column(spec.column, String, nullable=True) for spec in LEVEL_COLUMNS[level]]


patient = Table(
    "patient",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", String, nullable=False),
    *_columns("PATIENT"),
    UniqueConstraint("patient_id", name="uq_patient_id"),
)
study = Table(
    "study",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("patient_pk", Integer, ForeignKey("patient.pk"), nullable=False),
    Column("study_uid", String, nullable=False),
    *_columns("STUDY"),
    UniqueConstraint("patient_pk", "study_uid", name="uq_study"),
)
series = Table(
    "series",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("study_pk", Integer, ForeignKey("study.pk"), nullable=False),
    Column("series_uid", String, nullable=False),
    *_columns("SERIES"),
    UniqueConstraint("study_pk", "series_uid", name="uq_series"),
)
instance = Table(
    "instance",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("series_pk", Integer, ForeignKey("series.pk"), nullable=False),
    Column("sop_uid", String, nullable=False),
    *_columns("IMAGE"),
    Column("path", String, nullable=False),
    Column("header", LargeBinary, nullable=False),
    UniqueConstraint("sop_uid", name="uq_instance_sop_uid"),
)

family_instance = Table(
    # Instances of the single-level models (Hanging Protocol, Color Palette, Defined
    # Procedure Protocol, Implant Templates: ``qr.flat_models``): no patient, study or
    # series, filed under the model of their SOP class.  Their UIDs share one space with
    # ``instance`` (the filing checks both, see ``families``).
    "family_instance",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("model", String, nullable=False),
    Column("sop_class_uid", String, nullable=False),
    Column("sop_uid", String, nullable=False),
    Column("path", String, nullable=False),
    Column("header", LargeBinary, nullable=False),
    UniqueConstraint("sop_uid", name="uq_family_instance_sop_uid"),
)
Index("ix_family_instance_model", family_instance.c.model)
Index("ix_family_instance_path", family_instance.c.path)

series_attribute = Table(
    "series_attribute",
    metadata,
    Column("series_pk", Integer, ForeignKey("series.pk"), nullable=False),
    Column("tag", Integer, nullable=False),
    Column("value", String, nullable=False),
    Column("truncated", Integer, nullable=False),
    # Also the index of the queries: by tag, then value (the series comes last).
    UniqueConstraint("tag", "value", "truncated", "series_pk", name="uq_series_attribute"),
)

mpps = declare_mpps_table(metadata)

LEVEL_TABLES: Final = {"PATIENT": patient, "STUDY": study, "SERIES": series, "IMAGE": instance}

# Unique keys are covered by the unique constraints; these serve hierarchy walks
# (the foreign keys), the UID lookups of retrieves and the common matching keys.
for _table in (study, series, instance):
    for _column in _table.columns:
        if _column.foreign_keys:
            Index(f"ix_{_table.name}_{_column.name}", _column)
Index("ix_study_study_uid", study.c.study_uid)
Index("ix_series_series_uid", series.c.series_uid)
Index("ix_instance_path", instance.c.path)
for _level, _table in LEVEL_TABLES.items():
    for _spec in LEVEL_COLUMNS[_level]:
        if _spec.indexed:
            Index(f"ix_{_table.name}_{_spec.column}", _table.c[_spec.column])


_ADD_ATTRIBUTES: Final = {
    "sqlite": sqlite_insert(series_attribute).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(series_attribute).on_conflict_do_nothing(),
}
_MIGRATION_BATCH: Final = 1000


def add_series_attributes(connection: Connection, series_pk: int, rows: list[AttributeRow]) -> None:
    """Record an instance's kept attribute values under its series; known ones are skipped."""
    if not rows:
        return
    params = [
        {"series_pk": series_pk, "tag": tag, "value": value, "truncated": truncated}
        for tag, value, truncated in rows
    ]
    statement = _ADD_ATTRIBUTES.get(connection.dialect.name)
    if statement is None:  # another back end: look first (a race ends in the filing retry)
        known = set(
            connection.execute(
                select(
                    series_attribute.c.tag, series_attribute.c.value, series_attribute.c.truncated
                ).where(series_attribute.c.series_pk == series_pk)
            ).tuples()
        )
        params = [p for p in params if (p["tag"], p["value"], p["truncated"]) not in known]
        if not params:
            return
        statement = series_attribute.insert()
    connection.execute(statement, params)


def _add_series_attribute_table(connection: Connection) -> None:
    """Version 1 to 2: ``series_attribute``, filled from the headers the index already keeps."""
    series_attribute.create(connection)
    last, count = 0, 0
    while True:
        batch = connection.execute(
            select(instance.c.pk, instance.c.series_pk, instance.c.header)
            .where(instance.c.pk > last)
            .order_by(instance.c.pk)
            .limit(_MIGRATION_BATCH)
        ).all()
        if not batch:
            break
        for _pk, series_pk, blob in batch:
            add_series_attributes(connection, series_pk, attribute_rows(header_of(blob)))
        last, count = batch[-1].pk, count + len(batch)
    LOG.info("index: attribute values of %d instance(s) recorded per series", count)


def _add_workflow_tables(connection: Connection) -> None:
    """Version 3 to 4: the Unified Procedure Step tables (``ups_table``), empty."""
    from dimsefsm.archive.db.ups_table import add_ups_tables

    add_ups_tables(connection)


def _add_family_instance_table(connection: Connection) -> None:
    """Version 4 to 5: ``family_instance``, and the single-level instances moved into it.

    Before, such an instance was filed under an empty Patient ID, Study and
    Series Instance UID (the only place without them); it moves to its model's
    table with its path and header as they were, and the rows of that empty
    place go when nothing else is left under them.
    """
    from dimsefsm.qr.flat_models import model_of_storage_class

    family_instance.create(connection, checkfirst=True)
    rows = connection.execute(
        select(
            instance.c.pk,
            instance.c.series_pk,
            instance.c.sop_class_uid,
            instance.c.sop_uid,
            instance.c.path,
            instance.c.header,
        ).where(instance.c.sop_class_uid.in_(_family_storage_classes()))
    ).all()
    for row in rows:
        model = model_of_storage_class(row.sop_class_uid)
        assert model is not None
        connection.execute(
            family_instance.insert().values(
                model=model,
                sop_class_uid=row.sop_class_uid,
                sop_uid=row.sop_uid,
                path=row.path,
                header=row.header,
            )
        )
        connection.execute(instance.delete().where(instance.c.pk == row.pk))
    emptied = {row.series_pk for row in rows}
    for series_pk in emptied:
        _drop_if_empty(connection, series_pk)
    LOG.info("index: %d single-level instance(s) moved to their models' table", len(rows))


def _family_storage_classes() -> list[str]:
    from dimsefsm.qr.flat_models import FLAT_MODELS

    return [uid for model in FLAT_MODELS.values() for uid in model.storage_classes]


def _drop_if_empty(connection: Connection, series_pk: int) -> None:
    """Remove a series left without instances, then its study and patient if left empty."""
    if connection.execute(select(instance.c.pk).where(instance.c.series_pk == series_pk)).first():
        return
    study_pk = connection.execute(
        select(series.c.study_pk).where(series.c.pk == series_pk)
    ).scalar()
    connection.execute(series_attribute.delete().where(series_attribute.c.series_pk == series_pk))
    connection.execute(series.delete().where(series.c.pk == series_pk))
    if connection.execute(select(series.c.pk).where(series.c.study_pk == study_pk)).first():
        return
    patient_pk = connection.execute(
        select(study.c.patient_pk).where(study.c.pk == study_pk)
    ).scalar()
    connection.execute(study.delete().where(study.c.pk == study_pk))
    if connection.execute(select(study.c.pk).where(study.c.patient_pk == patient_pk)).first():
        return
    connection.execute(patient.delete().where(patient.c.pk == patient_pk))


MIGRATIONS: Final = {
    1: _add_series_attribute_table,
    2: lambda connection: add_mpps_table(mpps, connection),
    3: _add_workflow_tables,
    4: _add_family_instance_table,
}
"""From a version to the next: run in the schema check's transaction, so all or nothing."""


class SchemaError(RuntimeError):
    """The database cannot be used by this version (newer, foreign or damaged)."""


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL once; connections opened later find it so (the mode persists).

    Two connections switching a new file at once deadlock on the upgrade of
    their read locks, and SQLite then answers one of them "database is locked"
    at once instead of waiting: the loser looks again, its read waiting (busy
    timeout) until the winner's switch is done.  Several processes starting on
    one new file (qrscp --workers, two indexes) would otherwise fail at random.
    """
    for attempt in range(_WAL_ATTEMPTS):
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == _WAL_ATTEMPTS - 1:
                raise


def _sqlite_setup(engine: Engine, durable: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by pysqlite
        cursor = dbapi_connection.cursor()
        _use_wal(cursor)
        for pragma in (
            f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}",
            "PRAGMA case_sensitive_like=ON",
            "PRAGMA foreign_keys=ON",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        statement = "BEGIN IMMEDIATE" if write else "BEGIN"
        # On the driver's connection: SQLAlchemy's execution path costs more than the BEGIN.
        try:
            connection.connection.driver_connection.execute(statement)
        except sqlite3.Error as exc:  # e.g. "database is locked": SQLAlchemy's errors as usual
            raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc


def _postgresql_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO on")
        dbapi_connection.commit()


def open_engine(url: str, *, durable: bool = False) -> Engine:
    """An engine on ``url`` with the tables present and the schema version checked.

    A commit survives a crash of this process in any case: SQLite's log is
    written (``synchronous=NORMAL``), PostgreSQL's server has it.  ``durable``
    (qrscp ``--fsync``) makes it survive a power loss too, as the instance's
    file does: SQLite syncs its log at every commit (``synchronous=FULL``),
    and PostgreSQL sessions wait for the server's WAL flush
    (``synchronous_commit=on``, the server's default, set in case the server
    was configured otherwise).
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 60.0, "check_same_thread": False},
            pool_size=8,
            max_overflow=56,
        )
        _sqlite_setup(engine, durable)
    else:
        engine = create_engine(url, pool_size=8, max_overflow=24, pool_pre_ping=True)
        if durable and engine.dialect.name == "postgresql":
            _postgresql_setup(engine)
    try:
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def check_schema(engine: Engine) -> None:
    """Create the tables of an empty database; refuse an unknown or newer schema."""
    url = engine.url.render_as_string(hide_password=True)
    with engine.connect() as connection:
        connection = connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if engine.dialect.name == "postgresql":
                # Nodes starting at once on an empty database: one creates the tables, the
                # others wait here and then find them (SQLite: BEGIN IMMEDIATE does this).
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY}
                )
            names = set(inspect(connection).get_table_names())
            ours = {table.name for table in metadata.sorted_tables}
            if schema_table.name not in names:
                if names & ours:
                    raise SchemaError(
                        f"database {url} holds tables {sorted(names & ours)} but no "
                        f"{schema_table.name} table: not a dimsefsm index, refused"
                    )
                metadata.create_all(connection)
                connection.execute(
                    schema_table.insert().values(version=SCHEMA_VERSION, storage_imported=0)
                )
                LOG.info("index database %s created (schema version %d)", url, SCHEMA_VERSION)
                return
            versions = connection.execute(select(schema_table.c.version)).scalars().all()
            if len(versions) != 1:
                raise SchemaError(
                    f"database {url}: {schema_table.name} has {len(versions)} rows, not 1"
                )
            (version,) = versions
            if version in MIGRATIONS:
                _migrate(connection, url, version)
                return
    if version != SCHEMA_VERSION:
        newer = "a newer" if version > SCHEMA_VERSION else "an unknown older"
        raise SchemaError(
            f"database {url} has schema version {version}, {newer} one than this dimsefsm "
            f"knows ({SCHEMA_VERSION}): refused, nothing changed"
        )


def _migrate(connection: Connection, url: str, version: int) -> None:
    """Bring a database of an older known version to :data:`SCHEMA_VERSION`."""
    started = version
    while version in MIGRATIONS:
        MIGRATIONS[version](connection)
        version += 1
    connection.execute(schema_table.update().values(version=version))
    LOG.info("index database %s: schema version %d brought to %d", url, started, version)


# The workflow tables join ``metadata`` (created with the others, migrated above).
from dimsefsm.archive.db import ups_table as _ups_table  # noqa: E402,F401
