"""The SQL schema of cxflow's tables (SQLAlchemy Core).

Every table that holds tenant data has the tenant as the first column of its
primary key, and every query cxflow issues filters on it. ``cxflow_schema``
holds one row per schema component (its version) and no tenant data.

Instants are stored as integer microseconds since the Unix epoch (UTC) so
that ordering and comparisons are exact and identical on every database;
full records are stored as JSON text made by ``cxflow.serialization``,
next to the columns that queries filter and sort on.

Upgrade path: ``SCHEMA_VERSION`` is written to ``cxflow_schema`` by
``create_schema``. A later cxflow that changes the schema adds a step to
``UPGRADES`` (from version *n* to *n + 1*); ``create_schema`` runs the
missing steps in order, in one transaction, and refuses a database whose
version is newer than the library's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import sqlalchemy as sa

__all__ = [
    "SCHEMA_VERSION",
    "UPGRADES",
    "events",
    "flows",
    "metadata",
    "outbox_heads",
    "schema_info",
    "tasks",
]

SCHEMA_VERSION = 1
"""The schema version this cxflow writes and reads."""

UPGRADES: Mapping[int, Callable[[sa.Connection], None]] = {}
"""Upgrade steps: ``UPGRADES[n]`` migrates a database from version *n* to *n + 1*."""

ID = sa.String(200)

metadata = sa.MetaData()

schema_info = sa.Table(
    "cxflow_schema",
    metadata,
    sa.Column("component", sa.String(32), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    comment="Schema version per component; holds no tenant data.",
)

flows = sa.Table(
    "cxflow_flows",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("flow_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", sa.Text, nullable=False),
)

tasks = sa.Table(
    "cxflow_tasks",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("task_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("flow_id", ID, nullable=False),
    sa.Column("status", sa.String(64), nullable=False),
    sa.Column("assignee", sa.Text, nullable=True),
    sa.Column("conversation_id", sa.Text, nullable=True),
    sa.Column("priority_rank", sa.SmallInteger, nullable=False),
    sa.Column("due_at_us", sa.BigInteger, nullable=True),
    sa.Column("created_at_us", sa.BigInteger, nullable=False),
    sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    sa.Column("completed_at_us", sa.BigInteger, nullable=True),
    sa.Column("deleted", sa.Boolean, nullable=False),
    sa.Column("title_key", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_cxflow_tasks_flow_status", "tenant", "flow_id", "status"),
    sa.Index("ix_cxflow_tasks_due", "tenant", "due_at_us"),
)

outbox_heads = sa.Table(
    "cxflow_outbox_heads",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("last_position", sa.BigInteger, nullable=False),
    comment="Last outbox position per tenant; its row lock orders concurrent commits.",
)

events = sa.Table(
    "cxflow_events",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)
