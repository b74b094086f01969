"""PostgreSQL: a whole ``commit`` as one statement (one round trip).

``SqlStore.commit`` on PostgreSQL writes a change set with one statement: a
chain of data-modifying CTEs (record inserts and updates, tag rows, finished
routings, the routing-version fence, the outbox) and a final ``SELECT`` that
calls ``cxflow_conflict(message)`` when a version check failed. That function
(created by ``create_schema``, schema version 4) raises
``schema.CONFLICT_SQLSTATE``;
an error anywhere in a statement undoes all of it, so a refused commit
writes nothing, exactly as the statement-per-row path that SQLite uses.
Outside a host's transaction the statement runs in autocommit: one round
trip, no ``BEGIN`` and no ``COMMIT``.

The CTEs of one statement all see the database as it was when the statement
began and may not touch one row twice, so a change set that writes a record
twice, writes and finishes one routing, or writes flows (their version is
checked against the stored maximum) takes the general path instead
(``statement`` returns ``None``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cxflow.storage.sql.schema import (
    TAG_TABLES,
    events,
    id_column,
    outbox_heads,
    routing_heads,
    routings,
)

__all__ = ["TAGS", "statement"]

TAGS = "__tags__"
"""The key under which a row of a tagged record carries its distinct tags."""

class _Statement:
    """The CTEs, checks and parameters of one commit statement, built in order
    so that change sets of one shape give one statement text (psycopg then
    prepares it once per connection)."""

    def __init__(self, tenant: str) -> None:
        self.params: dict[str, Any] = {"t": tenant}
        self.ctes: list[str] = []
        self.checks: list[str] = []

    def param(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def cte(self, sql: str) -> str:
        name = f"w{len(self.ctes)}"
        self.ctes.append(f"{name} AS ({sql})")
        return name

    def check(self, failed: str, message: str, stored_version: str) -> None:
        """A conflict, reported as ``message`` followed by the stored version
        (``stored_version``: a scalar subquery), when ``failed`` holds."""
        self.checks.append(
            f"SELECT {self.param(message)} || coalesce(({stored_version})::text, '0') "
            f"WHERE {failed}"
        )

    def sql(self) -> str:
        checks = " UNION ALL ".join(f"({check})" for check in self.checks)
        final = (
            f"SELECT cxflow_conflict(string_agg(m, '; ')) FROM ({checks}) AS conflicts(m) "
            "HAVING count(*) > 0"
            if checks
            else "SELECT 0"
        )
        return f"WITH {', '.join(self.ctes)} {final}" if self.ctes else final


def statement(
    tenant: str,
    records: Sequence[tuple[sa.Table, str, Sequence[dict[str, Any]]]],
    finished: Sequence[str],
    routing_version: int | None,
    event_rows: Sequence[tuple[str, str]],
) -> tuple[str, dict[str, Any]] | None:
    """The statement and parameters that commit a change set, or ``None`` when
    it must take the general path (see the module).

    ``records`` holds ``(table, kind, rows)``: the full rows of each table in
    commit order (version 1 inserts, version *n* updates the stored *n - 1*;
    tagged kinds carry their tags under ``TAGS``). ``finished`` are routing
    records to delete; ``routing_version`` the fence to advance; ``event_rows``
    the ``(type, data)`` of the events to append."""
    written_routings: set[str] = set()
    for table, _kind, rows in records:
        id_name = id_column(table).name
        ids = [row[id_name] for row in rows]
        if len(set(ids)) != len(ids):
            return None
        if table is routings:
            written_routings.update(ids)
    if written_routings.intersection(finished) or len(set(finished)) != len(finished):
        return None
    built = _Statement(tenant)
    if routing_version is not None:
        _fence(built, routing_version)
    for table, kind, rows in records:
        if rows:
            _records(built, table, kind, rows)
    if finished:
        _finish(built, finished)
    if event_rows:
        _append(built, event_rows)
    return built.sql(), built.params


def _fence(built: _Statement, version: int) -> None:
    table = routing_heads.name
    if version == 1:
        written = built.cte(
            f"INSERT INTO {table} (tenant, version) VALUES (%(t)s, 1) "
            "ON CONFLICT (tenant) DO NOTHING RETURNING 1"
        )
    else:
        written = built.cte(
            f"UPDATE {table} SET version = {built.param(version)} "
            f"WHERE tenant = %(t)s AND version = {built.param(version - 1)} RETURNING 1"
        )
    built.check(
        f"NOT EXISTS (SELECT FROM {written})",
        f"routing version: cannot write v{version} over stored v",
        f"SELECT version FROM {table} WHERE tenant = %(t)s",
    )


def _records(
    built: _Statement, table: sa.Table, kind: str, rows: Sequence[dict[str, Any]]
) -> None:
    id_name = id_column(table).name
    tag_table = TAG_TABLES.get(table.name)
    columns = [name for name in rows[0] if name != TAGS]
    new = [row for row in rows if row["version"] == 1]
    if new:
        values = ", ".join(
            "(" + ", ".join(built.param(row[name]) for name in columns) + ")" for row in new
        )
        built.cte(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}")
    settable = [name for name in columns if name not in ("tenant", id_name)]
    tag_values: list[str] = []
    for row in rows:
        record_id = built.param(row[id_name])
        if row["version"] != 1:
            assignments = ", ".join(f"{name} = {built.param(row[name])}" for name in settable)
            written = built.cte(
                f"UPDATE {table.name} SET {assignments} WHERE tenant = %(t)s "
                f"AND {id_name} = {record_id} AND version = {built.param(row['version'] - 1)} "
                "RETURNING 1"
            )
            built.check(
                f"NOT EXISTS (SELECT FROM {written})",
                f"{kind} {row[id_name]!r}: cannot write v{row['version']} over stored v",
                f"SELECT version FROM {table.name} WHERE tenant = %(t)s "
                f"AND {id_name} = {record_id}",
            )
        if tag_table is None:
            continue
        tags: list[str] = row[TAGS]
        if row["version"] != 1:
            # Tags no longer carried go; the insert below skips those kept.
            built.cte(
                f"DELETE FROM {tag_table.name} WHERE tenant = %(t)s AND {id_name} = {record_id} "
                f"AND tag <> ALL({built.param(tags)}::text[])"
            )
        tag_values += [f"(%(t)s, {record_id}, {built.param(tag)})" for tag in tags]
    if tag_table is not None and tag_values:
        built.cte(
            f"INSERT INTO {tag_table.name} (tenant, {id_name}, tag) "
            f"VALUES {', '.join(tag_values)} ON CONFLICT DO NOTHING"
        )


def _finish(built: _Statement, finished: Sequence[str]) -> None:
    ids = built.param(list(finished))
    deleted = built.cte(
        f"DELETE FROM {routings.name} WHERE tenant = %(t)s "
        f"AND conversation_id = ANY({ids}::text[]) RETURNING conversation_id"
    )
    built.checks.append(
        "SELECT 'routing ' || quote_literal(x) || ': cannot finish, none is stored' "
        f"FROM unnest({ids}::text[]) AS x WHERE x NOT IN (SELECT conversation_id FROM {deleted})"
    )


def _append(built: _Statement, event_rows: Sequence[tuple[str, str]]) -> None:
    count = built.param(len(event_rows))
    head = built.cte(
        f"INSERT INTO {outbox_heads.name} (tenant, last_position) VALUES (%(t)s, {count}) "
        f"ON CONFLICT (tenant) DO UPDATE SET last_position = "
        f"{outbox_heads.name}.last_position + EXCLUDED.last_position RETURNING last_position"
    )
    # Rows of parameters rather than arrays: psycopg dumps a list by looking at
    # its elements, which costs more than the few rows of a commit.
    rows = ", ".join(
        f"({number}, {built.param(kind)}, {built.param(data)})"
        for number, (kind, data) in enumerate(event_rows, start=1)
    )
    built.cte(
        f"INSERT INTO {events.name} (tenant, position, type, data) "
        f"SELECT %(t)s, {head}.last_position - {count} + e.ord, e.type, e.data "
        f"FROM {head}, (VALUES {rows}) AS e(ord, type, data)"
    )
