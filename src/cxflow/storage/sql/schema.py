"""The SQL schema of cxflow's tables (SQLAlchemy Core).

Every table that holds tenant data has the tenant as the first column of its
primary key, and every query cxflow issues filters on it. ``cxflow_schema``
holds one row per schema component (its version) and no tenant data.

Instants are stored as integer microseconds since the Unix epoch (UTC) so
that ordering and comparisons are exact and identical on every database;
full records are stored as JSON text made by ``cxflow.serialization``,
next to the columns that queries filter and sort on.

Tags (room tags of conversations, customer tags) live in child tables, one
row per distinct tag, rewritten with every write of their record, and are
matched by plain equality. Tags are names (``cxflow._validate.check_name``:
at most 200 characters, no control characters or lone surrogates), so every
database stores them as they are.

Upgrade path: ``SCHEMA_VERSION`` is written to ``cxflow_schema`` by
``create_schema``. A later cxflow that changes the schema adds a step to
``UPGRADES`` (from version *n* to *n + 1*); ``create_schema`` runs the
missing steps in order, in one transaction, and refuses a database whose
version is newer than the library's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from cxflow.storage.kinds import BUILT_IN_PARTS, kinds

__all__ = [
    "CONFLICT_SQLSTATE",
    "CREATE_CONFLICT_FUNCTION",
    "DROP_CONFLICT_FUNCTION",
    "SCHEMA_VERSION",
    "TAG_TABLES",
    "UPGRADES",
    "V2_TABLES",
    "V3_TABLES",
    "V5_TABLES",
    "agents",
    "conversation_tags",
    "conversations",
    "customer_tags",
    "create_functions",
    "customers",
    "drop_functions",
    "events",
    "flows",
    "id_column",
    "kind_table",
    "kind_tables",
    "metadata",
    "outbox_heads",
    "routing_heads",
    "routings",
    "schema_info",
    "tasks",
    "timers",
]

SCHEMA_VERSION = 5
"""The schema version this cxflow writes and reads.

- 1: flows, tasks, the outbox.
- 2: conversations, customers and timers (with tag tables).
- 3: agents, routing records and the routing version of each tenant.
- 4: on PostgreSQL, the function ``cxflow_conflict`` that a commit written
  as one statement raises its version conflicts with
  (``cxflow.storage.sql.one_statement``); no change on SQLite.
- 5: the cursors of the log's consumers.
"""

CONFLICT_SQLSTATE = "CXF01"
"""The SQLSTATE ``cxflow_conflict`` raises: a version check of the statement failed."""

CREATE_CONFLICT_FUNCTION = (
    "CREATE OR REPLACE FUNCTION cxflow_conflict(message text) RETURNS void "
    "LANGUAGE plpgsql AS $cxflow$ BEGIN "
    f"RAISE EXCEPTION USING ERRCODE = '{CONFLICT_SQLSTATE}', MESSAGE = message; "
    "END $cxflow$"
)
"""The DDL of the function the one-statement commit raises its conflicts with."""

DROP_CONFLICT_FUNCTION = "DROP FUNCTION IF EXISTS cxflow_conflict(text)"
"""The DDL that drops it again."""

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

conversations = sa.Table(
    "cxflow_conversations",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("conversation_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("customer_id", ID, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("channel", ID, nullable=False),
    sa.Column("assignee", sa.Text, nullable=True),
    sa.Column("opened_at_us", sa.BigInteger, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_cxflow_conversations_opened", "tenant", "opened_at_us", "conversation_id"),
    sa.Index("ix_cxflow_conversations_customer", "tenant", "customer_id"),
    sa.Index("ix_cxflow_conversations_state", "tenant", "state", "opened_at_us"),
)

conversation_tags = sa.Table(
    "cxflow_conversation_tags",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("conversation_id", ID, primary_key=True),
    sa.Column("tag", ID, primary_key=True),
    sa.Index("ix_cxflow_conversation_tags_tag", "tenant", "tag"),
    comment="Room tags of the latest conversation snapshots (tag keys: see the module).",
)

customers = sa.Table(
    "cxflow_customers",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

customer_tags = sa.Table(
    "cxflow_customer_tags",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("customer_id", ID, primary_key=True),
    sa.Column("tag", ID, primary_key=True),
    sa.Index("ix_cxflow_customer_tags_tag", "tenant", "tag"),
    comment="Tags of the latest customer snapshots (tag keys: see the module).",
)

timers = sa.Table(
    "cxflow_timers",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("timer_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("kind", ID, nullable=False),
    sa.Column("subject_id", ID, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("deadline_us", sa.BigInteger, nullable=False),
    sa.Column("lease_until_us", sa.BigInteger, nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Index("ix_cxflow_timers_due", "tenant", "state", "deadline_us"),
)

V2_TABLES: tuple[sa.Table, ...] = (
    conversations, conversation_tags, customers, customer_tags, timers
)
"""The tables schema version 2 added."""

agents = sa.Table(
    "cxflow_agents",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("agent_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

routings = sa.Table(
    "cxflow_routings",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("conversation_id", ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    comment="One routing record per open routed conversation; finished ones are deleted.",
)

routing_heads = sa.Table(
    "cxflow_routing_heads",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    comment="Routing version per tenant (no row: 0); the fence of scheduler commits.",
)

V3_TABLES: tuple[sa.Table, ...] = (agents, routings, routing_heads)
"""The tables schema version 3 added."""

cursors = sa.Table(
    "cxflow_cursors",
    metadata,
    sa.Column("tenant", ID, primary_key=True),
    sa.Column("name", ID, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    comment="How far each consumer of a tenant's outbox got (cxflow.cursors.Cursor).",
)

V5_TABLES: tuple[sa.Table, ...] = (cursors,)
"""The tables schema version 5 added."""


TAG_TABLES: Mapping[str, sa.Table] = {
    conversations.name: conversation_tags,
    customers.name: customer_tags,
}
"""The tag table of each table whose records carry tags, by table name."""


def id_column(table: sa.Table) -> sa.Column[Any]:
    """The record id column of ``table``: its primary key after the tenant."""
    tenant, record_id = table.primary_key.columns
    assert tenant.name == "tenant", table.name
    return record_id


def kind_table(part: str) -> sa.Table:
    """The table of the record kind registered later with part ``part``
    (``cxflow.storage.kinds``): ``cxflow_kind_<part>``, keyed by tenant and
    ``record_id``, with the version and the record's JSON. Added to
    ``metadata`` on first use, so ``create_schema`` (and Alembic's
    autogenerate) see it once ``kind_tables()`` ran after the registration."""
    name = f"cxflow_kind_{part}"
    found = metadata.tables.get(name)
    if found is not None:
        return found
    return sa.Table(
        name,
        metadata,
        sa.Column("tenant", ID, primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        comment=f"Records of the registered kind with ChangeSet part {part!r}.",
    )


def kind_tables() -> tuple[sa.Table, ...]:
    """The tables of every kind registered after the built-in ones, added to
    ``metadata`` (see ``kind_table``)."""
    return tuple(kind_table(kind.part) for kind in kinds() if kind.part not in BUILT_IN_PARTS)


def _upgrade_1_to_2(conn: sa.Connection) -> None:
    """Add the conversation, customer and timer tables (and their indexes)."""
    metadata.create_all(conn, tables=list(V2_TABLES), checkfirst=True)


def _upgrade_2_to_3(conn: sa.Connection) -> None:
    """Add the agent, routing and routing-version tables."""
    metadata.create_all(conn, tables=list(V3_TABLES), checkfirst=True)


def create_functions(conn: sa.Connection) -> None:
    """Create (or replace) cxflow's database functions: on PostgreSQL the
    conflict function of the one-statement commit; nothing elsewhere."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(CREATE_CONFLICT_FUNCTION)


def drop_functions(conn: sa.Connection) -> None:
    """Drop what ``create_functions`` created."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(DROP_CONFLICT_FUNCTION)


def _upgrade_3_to_4(conn: sa.Connection) -> None:
    """Add the conflict function of the one-statement commit (PostgreSQL)."""
    create_functions(conn)


def _upgrade_4_to_5(conn: sa.Connection) -> None:
    """Add the cursor table."""
    metadata.create_all(conn, tables=list(V5_TABLES), checkfirst=True)


UPGRADES: Mapping[int, Callable[[sa.Connection], None]] = {
    1: _upgrade_1_to_2,
    2: _upgrade_2_to_3,
    3: _upgrade_3_to_4,
    4: _upgrade_4_to_5,
}
"""Upgrade steps: ``UPGRADES[n]`` migrates a database from version *n* to *n + 1*.

Each step is idempotent (``create_schema`` also creates any missing table
after the steps ran)."""
