"""The ``mpps`` table: one row per Modality Performed Procedure Step the archive received.

A step is a normalized SOP instance (PS3.4 F.7), not part of the Q/R
hierarchy: it is kept by its SOP Instance UID with its state and all its
attributes (Explicit VR Little Endian bytes, as the index keeps headers), so
an N-SET or N-GET reads one row.  ``patient_id`` and ``study_uid`` (of the
first scheduled step) are columns for whoever looks for a patient's steps.

The table lives on the index's ``MetaData`` (``schema``), so it is created
with the others and brought into an older database by the migration from
schema version 2 (:func:`add_mpps_table`).
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, Index, Integer, LargeBinary, MetaData, String, Table


def declare_mpps_table(metadata: MetaData) -> Table:
    """Declare ``mpps`` on ``metadata`` (the index's)."""
    table = Table(
        "mpps",
        metadata,
        Column("pk", Integer, primary_key=True, autoincrement=True),
        Column("sop_uid", String, nullable=False, unique=True),
        Column("status", String, nullable=False),  # IN PROGRESS, COMPLETED, DISCONTINUED
        Column("patient_id", String, nullable=True),
        Column("study_uid", String, nullable=True),
        Column("created", String, nullable=False),  # ISO 8601 UTC
        Column("updated", String, nullable=False),
        Column("attributes", LargeBinary, nullable=False),
    )
    Index("ix_mpps_patient_id", table.c.patient_id)
    return table


def add_mpps_table(table: Table, connection: Connection) -> None:
    """Schema version 2 to 3: the ``mpps`` table (empty: no earlier version kept steps)."""
    table.create(connection, checkfirst=True)
