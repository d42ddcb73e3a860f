"""Unified Procedure Step records in the archive database (PS3.4 CC), beside the index tables.

``ups`` holds one row per UPS: its state, its lock (the Transaction UID of
the performer that claimed it, never part of the attributes returned to
anyone) and the AE that claimed it, and its attributes as Explicit VR Little
Endian bytes.  ``ups_subscription`` names the AEs that receive a UPS's event
reports (with their deletion lock), ``ups_global_subscription`` the AEs
subscribed to every UPS, or to those their Matching Keys select.

The tables join the index's metadata (``archive.db.schema``), so one engine,
one schema version and one transaction cover them: a refused request writes
nothing, an accepted one writes the record and its subscriptions together.
Types are portable (String, Integer, LargeBinary): SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)

from dimsefsm.archive.db.schema import metadata

ups = Table(
    "ups",
    metadata,
    Column("sop_uid", String, primary_key=True),
    Column("state", String, nullable=False),
    Column("transaction_uid", String, nullable=True),
    Column("performer_ae", String, nullable=True),
    Column("dataset", LargeBinary, nullable=False),
)
ups_subscription = Table(
    "ups_subscription",
    metadata,
    Column("sop_uid", String, ForeignKey("ups.sop_uid"), primary_key=True),
    Column("ae_title", String, primary_key=True),
    Column("deletion_lock", Integer, nullable=False, default=0),
)
ups_global_subscription = Table(
    "ups_global_subscription",
    metadata,
    Column("ae_title", String, primary_key=True),
    Column("deletion_lock", Integer, nullable=False, default=0),
    # The Matching Keys of a filtered global subscription (Explicit VR LE); NULL: every UPS.
    Column("matching_keys", LargeBinary, nullable=True),
)
Index("ix_ups_subscription_ae_title", ups_subscription.c.ae_title)
Index("ix_ups_state", ups.c.state)

UPS_TABLES = (ups, ups_subscription, ups_global_subscription)


def add_ups_tables(connection: Connection) -> None:
    """Create the UPS tables a database lacks (a schema migration step: idempotent)."""
    for table in UPS_TABLES:
        table.create(connection, checkfirst=True)
