"""``SqlStore``: the storage protocols on SQLAlchemy Core (SQLite and PostgreSQL).

Build it from an ``Engine`` (cxflow opens a connection and a
transaction per call) or from an open ``Connection`` (cxflow
works inside the host's transaction: see ``SqlStore``).

The boundary: every read checks its tenant (``require_tenant``) and ids
(``cxflow._validate.check_id``, naming the parameter) before any SQL runs,
so a bad tenant or id is the same ``ValidationError`` on every store; a
query filter value that no stored record can hold (not text, or text with
NUL or lone surrogates) matches nothing, as on the memory store, without
reaching the driver. Every public method is wrapped so that nothing
outside the error tree escapes: any exception that is not a
``CxflowError`` (a driver's ``DataError``, ``UnicodeEncodeError``,
``OverflowError``, ...) is raised as ``StorageError`` with it as
``__cause__``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cxflow import _validate as v
from cxflow.assignment.model import Agent, Routing
from cxflow.conversations.model import Conversation, Customer
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.cursors import Cursor
from cxflow.errors import (
    ConflictError,
    CxflowError,
    NotFound,
    StorageError,
    ValidationError,
    summary,
)
from cxflow.events import Event
from cxflow.flows.model import Flow
from cxflow.serialization import event_from_dict, event_to_dict, from_dict, to_dict
from cxflow.storage.kinds import RecordKind, kind_named, kinds
from cxflow.storage.memory import (
    check_claim_arguments,
    check_finished_routings,
    check_records,
)
from cxflow.storage.protocols import (
    ChangeSet,
    RecordKey,
    StoredEvent,
    check_record_keys,
    require_tenant,
)
from cxflow.storage.sql import one_statement, schema
from cxflow.storage.sql.engines import _WRITE_OPTION, WRITE_TRANSACTION
from cxflow.storage.sql.schema import (
    agents,
    conversation_tags,
    conversations,
    cursors,
    customer_tags,
    customers,
    events,
    flows,
    routing_heads,
    routings,
    tasks,
    timers,
)
from cxflow.tasks.model import Task
from cxflow.tasks.query import Page, TaskQuery, TaskSort
from cxflow.timers.model import Timer, TimerState

__all__ = ["SqlStore"]

_T = TypeVar("_T")
_P = ParamSpec("_P")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

_HOST_LOCK_HINT = (
    "On SQLite, a host transaction that cxflow writes in must take the write lock "
    "when it begins: open it on "
    "engine.execution_options(**cxflow.storage.sql.WRITE_TRANSACTION)"
)

_FINISH_BATCH = 500
"""Conversation ids per DELETE of finished routing records."""

# SQLSTATEs of a lost race on PostgreSQL: serialization failure, deadlock victim.
_RACE_SQLSTATES = frozenset({"40001", "40P01"})

_MAX_SQL_INT = 2**31 - 1
"""The largest INTEGER (flow versions): a larger version is never stored."""
_MAX_SQL_BIGINT = 2**63 - 1
"""The largest BIGINT: event positions, offsets and limits are capped below it
(no tenant holds that many rows, so capping changes no result)."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What no text column of a shipped database keeps: NUL (PostgreSQL) and
lone surrogates (UTF-8)."""


def _storable(value: object) -> bool:
    """Whether a stored text column could hold ``value``: a query filter that
    is not storable matches no record, as it matches none on the memory store."""
    return isinstance(value, str) and _UNSTORABLE.search(value) is None


def _guarded(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """The error boundary of a public method: ``CxflowError`` passes; any other
    exception becomes ``StorageError`` naming the method, the original as
    ``__cause__`` (the message quotes at most 200 characters of it)."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except CxflowError:
            raise
        except Exception as exc:
            raise StorageError(f"{method.__name__} failed: {summary(exc)}") from exc

    return guarded


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // _MICROSECOND


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _translate(exc: sa_exc.SQLAlchemyError, what: str) -> CxflowError:
    """Map a driver error onto the cxflow error tree."""
    if isinstance(exc, sa_exc.IntegrityError):
        return ConflictError(f"{what}: a concurrent write got there first ({exc.orig})")
    driver_error: Any = getattr(exc, "orig", None)
    sqlstate = getattr(driver_error, "sqlstate", None)
    if sqlstate == schema.CONFLICT_SQLSTATE:  # a version check of a one-statement commit
        return ConflictError(str(driver_error.diag.message_primary))
    if sqlstate in _RACE_SQLSTATES:
        return ConflictError(f"{what}: lost a race with a concurrent transaction ({driver_error})")
    return StorageError(f"{what} failed: {exc}")


class SqlStore:
    """Implements ``cxflow.storage.FullStore``,
    ``cxflow.storage.protocols.AssignmentStore`` and
    ``cxflow.storage.protocols.CursorStore`` (every tier) on SQLite or PostgreSQL.

    ``bind`` is an ``Engine`` or an open ``Connection``:

    - **Engine**: each read runs on its own connection; each ``commit`` is
      one transaction that cxflow commits.
    - **Connection**: every call runs on the host's connection. If a
      transaction is open, ``commit`` writes inside it under a SAVEPOINT
      (a refused commit rolls back only cxflow's part) and the writes become
      durable when the *host* commits. On SQLite the host must have begun it
      with ``WRITE_TRANSACTION`` (``engine.execution_options(**WRITE_TRANSACTION)
      .begin()``), else concurrent writers fail with "database is locked". If
      none is open, each call runs in a transaction of its own that cxflow
      commits, and leaves none open.

    Create the tables once with ``create_schema``. For SQLite use
    ``cxflow.storage.sql.sqlite_engine`` (or ``configure_sqlite`` on
    your engine) so writes take the lock up front (``BEGIN IMMEDIATE``) and
    wait for each other (busy timeout) instead of failing.

    Driver errors are translated: a unique-key violation or a PostgreSQL
    serialization failure/deadlock is a ``ConflictError``,
    anything else a ``StorageError`` with the driver error as
    ``__cause__``.

    ``claim_timers`` runs in one write transaction: on PostgreSQL it locks
    the due rows with ``FOR UPDATE SKIP LOCKED`` (concurrent claimers skip
    each other's rows instead of waiting); on SQLite the write transaction
    (``BEGIN IMMEDIATE``) already excludes every other writer.

    The routing version of a tenant (``ChangeSet.routing_version``) is one row
    advanced by a conditional ``UPDATE`` (version 1: an insert that does nothing
    on conflict); a commit that changes no row lost the race and raises
    ``ConflictError``, so two schedulers never both commit over one version.
    """

    def __init__(self, bind: sa.Engine | sa.Connection) -> None:
        if not isinstance(bind, sa.Engine | sa.Connection):
            raise ValidationError("bind", "expected a SQLAlchemy Engine or Connection")
        self._bind = bind
        self._last_commit_in_host = False
        # A read is one statement, so it needs no transaction of its own.
        self._autocommit_reads = True
        self._pending: list[tuple[Callable[[], None], Callable[[], None]]] = []
        self._listening = False
        self._held: sa.Connection | None = None
        """The connection of the current ``unit_scope`` (PostgreSQL engines only)."""

    @property
    def bind(self) -> sa.Engine | sa.Connection:
        """The engine or connection this store runs on."""
        return self._bind

    @property
    def dialect(self) -> str:
        """The database dialect name (``"sqlite"`` or ``"postgresql"``)."""
        return self._bind.dialect.name

    # -- transactions ----------------------------------------------------------------

    @contextmanager
    def _reading(self, what: str) -> Iterator[sa.Connection]:
        """A connection to read on. On a host connection outside a transaction,
        the transaction the read begins (SQLAlchemy autobegins one) is ended
        again, so a later write is not left inside it, uncommitted."""
        try:
            if self._held is not None:
                yield self._held
            elif isinstance(self._bind, sa.Engine):
                with self._bind.connect() as conn:
                    if self._autocommit_reads:
                        # One round trip per read: no BEGIN, and no ROLLBACK
                        # when the connection goes back to the pool.
                        conn.execution_options(isolation_level="AUTOCOMMIT")
                    yield conn
            elif self._bind.in_transaction():
                yield self._bind
            else:
                try:
                    yield self._bind
                finally:
                    self._bind.rollback()  # only cxflow's reads ran in it
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc, what) from exc

    @contextmanager
    def _writing(self, what: str) -> Iterator[sa.Connection]:
        """A transaction to write in: cxflow's own one (engine, or a host
        connection outside a transaction), begun with ``WRITE_TRANSACTION``;
        else a SAVEPOINT in the host's transaction."""
        try:
            if isinstance(self._bind, sa.Engine):
                with self._bind.connect() as conn:
                    conn.execution_options(**WRITE_TRANSACTION)
                    with conn.begin():
                        yield conn
            elif self._bind.in_transaction():
                try:
                    with self._bind.begin_nested():
                        yield self._bind
                except sa_exc.OperationalError as exc:
                    if self._locked_in_deferred_host_transaction(exc):
                        raise StorageError(f"{what} failed: {exc.orig}. {_HOST_LOCK_HINT}") from exc
                    raise
            else:
                conn = self._bind
                previous = conn.get_execution_options().get(_WRITE_OPTION, False)
                conn.execution_options(**WRITE_TRANSACTION)
                try:
                    transaction = conn.begin()  # BEGIN IMMEDIATE on SQLite
                finally:
                    conn.execution_options(**{_WRITE_OPTION: previous})
                with transaction:
                    yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc, what) from exc

    def _locked_in_deferred_host_transaction(self, exc: sa_exc.OperationalError) -> bool:
        """True when SQLite refused the write lock to a host transaction that
        was not begun with ``WRITE_TRANSACTION``."""
        return (
            self.dialect == "sqlite"
            and "database is locked" in str(exc.orig)
            and not self._bind.get_execution_options().get(_WRITE_OPTION, False)
        )

    # -- schema ----------------------------------------------------------------------

    @_guarded
    def create_schema(self) -> int:
        """Create the tables if missing, or upgrade them; return the schema version.

        On a database written by an older cxflow, runs the missing steps of
        ``schema.UPGRADES`` in order, in the same transaction. Idempotent.
        Raises ``StorageError`` when the database was written by a newer
        cxflow (its schema version is higher than this one's), and then
        changes nothing.
        """
        info = schema.schema_info
        with self._writing("create_schema") as conn:
            found: int | None = None
            if sa.inspect(conn).has_table(info.name):
                found = conn.execute(
                    sa.select(info.c.version).where(info.c.component == "cxflow")
                ).scalar_one_or_none()
            if found is not None and found > schema.SCHEMA_VERSION:
                raise StorageError(
                    f"the database has cxflow schema v{found}, newer than this cxflow's "
                    f"v{schema.SCHEMA_VERSION}; upgrade cxflow"
                )
            if found is not None:
                for version in range(found, schema.SCHEMA_VERSION):
                    schema.UPGRADES[version](conn)
            schema.kind_tables()  # the tables of kinds registered by the host
            schema.metadata.create_all(conn)  # anything still missing
            schema.create_functions(conn)
            if found is None:
                conn.execute(
                    sa.insert(info).values(component="cxflow", version=schema.SCHEMA_VERSION)
                )
            elif found != schema.SCHEMA_VERSION:
                conn.execute(
                    sa.update(info)
                    .where(info.c.component == "cxflow")
                    .values(version=schema.SCHEMA_VERSION)
                )
            return schema.SCHEMA_VERSION

    @_guarded
    def schema_version(self) -> int | None:
        """The schema version recorded in the database, or ``None`` before
        ``create_schema``."""
        info = schema.schema_info
        with self._reading("schema_version") as conn:
            if not sa.inspect(conn).has_table(info.name):
                return None
            version: int | None = conn.execute(
                sa.select(info.c.version).where(info.c.component == "cxflow")
            ).scalar_one_or_none()
            return version

    @_guarded
    def drop_schema(self) -> None:
        """Drop every cxflow table. **Deletes all cxflow data of every tenant.**"""
        with self._writing("drop_schema") as conn:
            schema.metadata.drop_all(conn)
            schema.drop_functions(conn)

    def _list_all(self, table: sa.Table, kind: type[_T], what: str, tenant: str) -> list[_T]:
        """Every record of ``tenant`` in ``table``, ordered by id (code point): one
        SELECT."""
        tenant = require_tenant(tenant)
        query = (
            sa.select(table.c.data)
            .where(table.c.tenant == tenant)
            .order_by(self._code_point_order(schema.id_column(table)))
        )
        with self._reading(what) as conn:
            rows = conn.execute(query).scalars().all()
        return [from_dict(kind, json.loads(data)) for data in rows]

    def _get_one(
        self, table: sa.Table, kind: type[_T], name: str, tenant: str, record_id: str
    ) -> _T:
        """The record ``record_id`` of ``tenant`` in ``table`` (keyed by tenant and
        one id column, JSON in ``data``); ``NotFound(name, record_id)`` when
        absent, ``ValidationError`` (naming the id column) for a bad id."""
        tenant = require_tenant(tenant)
        key = schema.id_column(table)
        record_id = v.check_id(record_id, key.name)
        with self._reading(f"get_{name}") as conn:
            data = conn.exec_driver_sql(
                _sql(_style(conn), _select_template(table)), {"tenant": tenant, "id": record_id}
            ).scalar_one_or_none()
        if data is None:
            raise NotFound(name, record_id)
        return from_dict(kind, json.loads(data))

    # -- flows -----------------------------------------------------------------------

    @_guarded
    def get_flow(self, tenant: str, flow_id: str, version: int | None = None) -> Flow:
        tenant = require_tenant(tenant)
        flow_id = v.check_id(flow_id, "flow_id")
        if version is not None and (
            not isinstance(version, int)
            or isinstance(version, bool)
            or not 1 <= version <= _MAX_SQL_INT
        ):
            raise NotFound("flow", f"{flow_id}@v{version}")
        query = sa.select(flows.c.data).where(flows.c.tenant == tenant, flows.c.flow_id == flow_id)
        if version is None:
            query = query.order_by(flows.c.version.desc()).limit(1)
        else:
            query = query.where(flows.c.version == version)
        with self._reading("get_flow") as conn:
            data = conn.execute(query).scalar_one_or_none()
        if data is None:
            raise NotFound("flow", flow_id if version is None else f"{flow_id}@v{version}")
        return from_dict(Flow, json.loads(data))

    @_guarded
    def list_flows(self, tenant: str) -> list[Flow]:
        tenant = require_tenant(tenant)
        latest = (
            sa.select(flows.c.flow_id, sa.func.max(flows.c.version).label("version"))
            .where(flows.c.tenant == tenant)
            .group_by(flows.c.flow_id)
            .subquery()
        )
        query = sa.select(flows.c.data).join(
            latest,
            sa.and_(flows.c.flow_id == latest.c.flow_id, flows.c.version == latest.c.version),
        ).where(flows.c.tenant == tenant)
        with self._reading("list_flows") as conn:
            rows = conn.execute(query).scalars().all()
        found = [from_dict(Flow, json.loads(data)) for data in rows]
        return sorted(found, key=lambda flow: flow.id)  # code-point order, as documented

    @_guarded
    def list_flow_versions(self, tenant: str, flow_id: str) -> list[Flow]:
        tenant = require_tenant(tenant)
        flow_id = v.check_id(flow_id, "flow_id")
        query = (
            sa.select(flows.c.data)
            .where(flows.c.tenant == tenant, flows.c.flow_id == flow_id)
            .order_by(flows.c.version)
        )
        with self._reading("list_flow_versions") as conn:
            rows = conn.execute(query).scalars().all()
        if not rows:
            raise NotFound("flow", flow_id)
        return [from_dict(Flow, json.loads(data)) for data in rows]

    # -- tasks -----------------------------------------------------------------------

    @_guarded
    def get_task(self, tenant: str, task_id: str) -> Task:
        return self._get_one(tasks, Task, "task", tenant, task_id)

    @_guarded
    def query_tasks(self, tenant: str, query: TaskQuery) -> Page:
        tenant = require_tenant(tenant)
        if not isinstance(query, TaskQuery):
            raise ValidationError("query", "expected a TaskQuery")
        where = self._filters(tenant, query)
        if where is None:  # a filter no stored task can match
            return Page(items=(), total=0, offset=query.offset, limit=query.limit)
        count = sa.select(sa.func.count()).select_from(tasks).where(*where)
        page = (
            sa.select(tasks.c.data)
            .where(*where)
            .order_by(*self._order(query))
            .offset(min(query.offset, _MAX_SQL_BIGINT))
            .limit(query.limit)
        )
        with self._reading("query_tasks") as conn:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(page).scalars().all()
        return Page(
            items=tuple(from_dict(Task, json.loads(data)) for data in rows),
            total=total,
            offset=query.offset,
            limit=query.limit,
        )

    @staticmethod
    def _filters(tenant: str, query: TaskQuery) -> list[sa.ColumnElement[bool]] | None:
        """The WHERE clauses of ``query``; ``None`` when a filter value is one
        no stored task can hold (see ``_storable``), so nothing matches."""
        c = tasks.c
        texts = (query.flow_id, query.assignee, query.conversation_id)
        if any(text is not None and not _storable(text) for text in texts):
            return None
        where: list[sa.ColumnElement[bool]] = [c.tenant == tenant]
        if query.deleted is not None:
            where.append(c.deleted == query.deleted)
        if query.flow_id is not None:
            where.append(c.flow_id == query.flow_id)
        if query.statuses is not None:
            where.append(c.status.in_([key for key in query.statuses if _storable(key)]))
        if query.assignee is not None:
            where.append(c.assignee == query.assignee)
        if query.priority is not None:
            where.append(c.priority_rank == query.priority.rank)
        if query.conversation_id is not None:
            where.append(c.conversation_id == query.conversation_id)
        if query.overdue is not None:
            overdue = sa.and_(
                c.due_at_us.is_not(None),
                c.completed_at_us.is_(None),
                c.due_at_us < _micros(query.at),
            )
            where.append(overdue if query.overdue else sa.not_(overdue))
        return where

    def _order(self, query: TaskQuery) -> list[sa.ColumnElement[Any]]:
        c = tasks.c
        # Strings sort by code point, as in Python: PostgreSQL needs the "C" collation.
        if self.dialect == "postgresql":
            task_id: sa.ColumnElement[Any] = c.task_id.collate("C")
            title: sa.ColumnElement[Any] = c.title_key.collate("C")
        else:
            task_id, title = c.task_id, c.title_key
        # Tasks without a due date last in both directions, as TaskQuery.sort_key.
        no_due = sa.case((c.due_at_us.is_(None), 1), else_=0).asc()
        due_or_created = sa.func.coalesce(c.due_at_us, c.created_at_us)
        keys: list[sa.ColumnElement[Any]]
        match query.sort:
            case TaskSort.PRIORITY:
                keys = [c.priority_rank, no_due, due_or_created, c.created_at_us, task_id]
            case TaskSort.DUE_AT:
                keys = [no_due, due_or_created, task_id]
            case TaskSort.CREATED_AT:
                keys = [c.created_at_us, task_id]
            case TaskSort.UPDATED_AT:
                keys = [c.updated_at_us, task_id]
            case TaskSort.TITLE:
                keys = [title, task_id]
        direction = sa.desc if query.descending else sa.asc
        return [key if key is no_due else direction(key) for key in keys]

    # -- conversations and customers ---------------------------------------------------

    def _code_point_order(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """``column`` sorting by code point, as Python sorts strings."""
        return column.collate("C") if self.dialect == "postgresql" else column

    @_guarded
    def get_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        return self._get_one(conversations, Conversation, "conversation", tenant, conversation_id)

    @_guarded
    def query_conversations(self, tenant: str, query: ConversationQuery) -> list[Conversation]:
        tenant = require_tenant(tenant)
        if not isinstance(query, ConversationQuery):
            raise ValidationError("query", "expected a ConversationQuery")
        texts = (query.customer_id, query.channel, query.assignee, query.room_tag)
        if any(text is not None and not _storable(text) for text in texts):
            return []  # no stored conversation holds such a value
        c = conversations.c
        where: list[sa.ColumnElement[bool]] = [c.tenant == tenant]
        if query.customer_id is not None:
            where.append(c.customer_id == query.customer_id)
        if query.state is not None:
            where.append(c.state == query.state.value)
        if query.channel is not None:
            where.append(c.channel == query.channel)
        if query.assignee is not None:
            where.append(c.assignee == query.assignee)
        if query.room_tag is not None:
            where.append(_tagged(conversation_tags, c.conversation_id, tenant, query.room_tag))
        select = (
            sa.select(c.data)
            .where(*where)
            .order_by(c.opened_at_us, self._code_point_order(c.conversation_id))
            .limit(query.limit)
        )
        with self._reading("query_conversations") as conn:
            rows = conn.execute(select).scalars().all()
        return [from_dict(Conversation, json.loads(data)) for data in rows]

    @_guarded
    def get_records(self, tenant: str, keys: Sequence[RecordKey]) -> dict[RecordKey, Any]:
        """``BatchReads``: every record of ``keys`` in one statement (a
        ``UNION ALL`` of the single reads), one round trip."""
        tenant = require_tenant(tenant)
        checked: list[RecordKey] = []
        params: dict[str, Any] = {"tenant": tenant}
        for n, (kind, record_id) in enumerate(check_record_keys(keys)):
            table, _ = _BATCH_TABLES[kind]
            checked.append((kind, v.check_id(record_id, schema.id_column(table).name)))
            params[f"id{n}"] = record_id
        if not checked:
            return {}
        template = _batch_template(tuple(kind for kind, _ in checked))
        with self._reading("get_records") as conn:
            rows = conn.exec_driver_sql(_sql(_style(conn), template), params).all()
        found: dict[RecordKey, Any] = {}
        for n, data in rows:
            key = checked[n]
            found[key] = from_dict(_BATCH_TABLES[key[0]][1], json.loads(data))
        return found

    @_guarded
    def get_customer(self, tenant: str, customer_id: str) -> Customer:
        return self._get_one(customers, Customer, "customer", tenant, customer_id)

    @_guarded
    def query_customers(self, tenant: str, query: CustomerQuery) -> list[Customer]:
        tenant = require_tenant(tenant)
        if not isinstance(query, CustomerQuery):
            raise ValidationError("query", "expected a CustomerQuery")
        if query.tag is not None and not _storable(query.tag):
            return []  # no stored customer carries such a tag
        c = customers.c
        where: list[sa.ColumnElement[bool]] = [c.tenant == tenant]
        if query.tag is not None:
            where.append(_tagged(customer_tags, c.customer_id, tenant, query.tag))
        select = (
            sa.select(c.data)
            .where(*where)
            .order_by(self._code_point_order(c.customer_id))
            .limit(query.limit)
        )
        with self._reading("query_customers") as conn:
            rows = conn.execute(select).scalars().all()
        return [from_dict(Customer, json.loads(data)) for data in rows]

    # -- timers ----------------------------------------------------------------------

    @_guarded
    def get_timer(self, tenant: str, timer_id: str) -> Timer:
        return self._get_one(timers, Timer, "timer", tenant, timer_id)

    @_guarded
    def claim_timers(
        self, tenant: str, at: datetime, *, worker: str, lease: timedelta, limit: int = 100
    ) -> list[Timer]:
        tenant = require_tenant(tenant)
        at = check_claim_arguments(at, worker, lease, limit)
        at_us = _micros(at)
        c = timers.c
        due = (
            sa.select(c.timer_id, c.version, c.data)
            .where(
                c.tenant == tenant,
                c.state == TimerState.PENDING.value,
                c.deadline_us <= at_us,
                sa.or_(c.lease_until_us.is_(None), c.lease_until_us <= at_us),
            )
            .order_by(c.deadline_us, self._code_point_order(c.timer_id))
            .limit(limit)
        )
        if self.dialect == "postgresql":
            # Lock the rows; rows another claimer holds are skipped, not waited on.
            due = due.with_for_update(skip_locked=True)
        claimed: list[Timer] = []
        with self._writing("claim_timers") as conn:
            for timer_id, version, data in conn.execute(due).all():
                timer = from_dict(Timer, json.loads(data))
                if not timer.is_due(at):  # the columns and the record disagree: leave it
                    continue
                claim = timer.claimed(worker, at, lease)
                done = conn.execute(
                    sa.update(timers)
                    .where(c.tenant == tenant, c.timer_id == timer_id, c.version == version)
                    .values(**_timer_row(tenant, claim))
                )
                if done.rowcount != 1:
                    raise ConflictError(f"timer {timer_id!r}: changed while being claimed")
                claimed.append(claim)
        return claimed

    # -- cursors ---------------------------------------------------------------------

    @_guarded
    def get_cursor(self, tenant: str, name: str) -> Cursor:
        return self._get_one(cursors, Cursor, "cursor", tenant, name)

    # -- any registered kind ---------------------------------------------------------

    @_guarded
    def get_record(self, tenant: str, kind: str, record_id: str) -> Any:
        found = kind_named(kind)
        tenant = require_tenant(tenant)
        record_id = v.check_id(record_id, "record_id")
        return self._get_one(_table_of(found)[0], found.record, found.name, tenant, record_id)

    @_guarded
    def list_records(self, tenant: str, kind: str) -> list[Any]:
        found = kind_named(kind)
        return self._list_all(_table_of(found)[0], found.record, "list_records", tenant)

    # -- assignment ------------------------------------------------------------------

    @_guarded
    def get_agent(self, tenant: str, agent_id: str) -> Agent:
        return self._get_one(agents, Agent, "agent", tenant, agent_id)

    @_guarded
    def list_agents(self, tenant: str) -> list[Agent]:
        return self._list_all(agents, Agent, "list_agents", tenant)

    @_guarded
    def get_routing(self, tenant: str, conversation_id: str) -> Routing:
        return self._get_one(routings, Routing, "routing", tenant, conversation_id)

    @_guarded
    def list_routings(self, tenant: str) -> list[Routing]:
        return self._list_all(routings, Routing, "list_routings", tenant)

    @_guarded
    def routing_version(self, tenant: str) -> int:
        """See ``AssignmentStore.routing_version``. Inside a host's transaction
        on PostgreSQL the read locks the tenant's routing head (``FOR UPDATE``)
        until the host commits: a scheduler decides from this version, so
        another transaction routing the tenant waits here for the commit
        instead of deciding from the old version and losing the race."""
        tenant = require_tenant(tenant)
        query = sa.select(routing_heads.c.version).where(routing_heads.c.tenant == tenant)
        if self.dialect == "postgresql" and self.transaction_owner() is not None:
            query = query.with_for_update()
        with self._reading("routing_version") as conn:
            version: int | None = conn.execute(query).scalar_one_or_none()
        return version or 0

    # -- outbox ----------------------------------------------------------------------

    @_guarded
    def read_events(self, tenant: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        tenant = require_tenant(tenant)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValidationError("after", "must be an integer >= 0")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValidationError("limit", "must be an integer >= 1")
        if after >= _MAX_SQL_BIGINT:
            return []  # no position is that large
        query = (
            sa.select(events.c.position, events.c.data)
            .where(events.c.tenant == tenant, events.c.position > after)
            .order_by(events.c.position)
            .limit(min(limit, _MAX_SQL_BIGINT))
        )
        with self._reading("read_events") as conn:
            rows = conn.execute(query).all()
        return [
            StoredEvent(position=position, event=event_from_dict(json.loads(data)))
            for position, data in rows
        ]

    # -- writes ----------------------------------------------------------------------

    @_guarded
    def commit(self, tenant: str, changes: ChangeSet) -> None:
        tenant = require_tenant(tenant)
        if not isinstance(changes, ChangeSet):
            raise ValidationError("changes", "expected a ChangeSet")
        # Serialise before touching the database: bad values fail with nothing written.
        flow_rows = [
            (f.id, f.version, _dumps(to_dict(f)))
            for f in check_records(changes.flows, Flow, "flows")
        ]
        record_rows: list[tuple[sa.Table, str, list[_Row]]] = []
        for kind in kinds():
            values = changes.part(kind.part)
            if values:
                table, row_of = _table_of(kind)
                checked = check_records(values, cast(type[Any], kind.record), kind.part)
                rows = [row_of(tenant, record) for record in checked]
                record_rows.append((table, kind.name, rows))
        finished = check_finished_routings(changes.finished_routings)
        event_rows = [_event_row(event) for event in changes.events]
        if not changes:
            return
        in_host = isinstance(self._bind, sa.Connection) and self._bind.in_transaction()
        self._last_commit_in_host = False
        one = (
            one_statement.statement(
                tenant,
                record_rows,
                finished,
                _fence_version(changes.routing_version),
                event_rows,
            )
            if self.dialect == "postgresql" and not flow_rows
            else None
        )
        if one is not None:
            self._commit_statement(*one)
            self._last_commit_in_host = in_host
            return
        with self._writing("commit") as conn:
            # The fence first: a scheduler that lost the race fails before writing more.
            if changes.routing_version is not None:
                self._advance_routing_version(conn, tenant, changes.routing_version)
            self._write_flows(conn, tenant, flow_rows)
            for table, name, rows in record_rows:
                _write_records(conn, table, name, tenant, rows)
            _finish_routings(conn, tenant, finished)
            self._append_events(conn, tenant, event_rows)
        self._last_commit_in_host = in_host

    def _commit_statement(self, sql: str, params: dict[str, Any]) -> None:
        """Run a one-statement commit: in autocommit on an engine's connection
        (one round trip), else in ``_writing``'s transaction or savepoint."""
        if not isinstance(self._bind, sa.Engine):
            with self._writing("commit") as conn:
                conn.exec_driver_sql(sql, params)
            return
        try:
            if self._held is not None:
                self._held.exec_driver_sql(sql, params)
                return
            with self._bind.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql(sql, params)
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc, "commit") from exc

    @contextmanager
    def unit_scope(self) -> Iterator[None]:
        """``UnitScope``: on a PostgreSQL engine, one pooled connection in
        autocommit serves the reads and the one-statement commit of a unit of
        work (one checkout instead of one per call). Elsewhere (SQLite, a
        host's connection) it changes nothing. Not reentrant."""
        if self._held is not None or not (
            isinstance(self._bind, sa.Engine) and self.dialect == "postgresql"
        ):
            yield
            return
        try:
            conn = self._bind.connect()
            conn.execution_options(isolation_level="AUTOCOMMIT")
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc, "unit_scope") from exc
        self._held = conn
        try:
            yield
        finally:
            self._held = None
            conn.close()

    def record_scope(self) -> object | None:
        """``RecordScope``: the ``Engine`` of an engine-bound store (sessions on
        one engine share the engine's cached snapshots); ``None`` on a host's
        connection, where reads go to the database."""
        return self._bind if isinstance(self._bind, sa.Engine) else None

    def transaction_owner(self) -> object | None:
        """``HostTransaction``: the host's ``Connection`` while it has a
        transaction open (a commit would write inside it), else ``None``."""
        bind = self._bind
        return bind if isinstance(bind, sa.Connection) and bind.in_transaction() else None

    def on_outcome(self, committed: Callable[[], None], discarded: Callable[[], None]) -> bool:
        """``HostTransaction``: after a ``commit`` written inside the host's
        transaction (a ``Connection`` with a transaction open), run ``committed``
        when the host commits it, or ``discarded`` when the host rolls it back
        or rolls back to a savepoint (conservatively: maybe one around
        cxflow's write). False, keeping nothing, when the commit was cxflow's
        own transaction."""
        if not self._last_commit_in_host:
            return False
        connection = self._bind
        assert isinstance(connection, sa.Connection)
        if not self._listening:
            sa.event.listen(connection, "commit", self._host_committed)
            sa.event.listen(connection, "rollback", self._host_discarded)
            sa.event.listen(connection, "rollback_savepoint", self._host_discarded)
            self._listening = True
        self._pending.append((committed, discarded))
        return True

    def _host_committed(self, *_args: object) -> None:
        pending, self._pending = self._pending, []
        for committed, _discarded in pending:
            committed()

    def _host_discarded(self, *_args: object) -> None:
        pending, self._pending = self._pending, []
        for _committed, discarded in pending:
            discarded()

    def _advance_routing_version(self, conn: sa.Connection, tenant: str, version: int) -> None:
        """Set the tenant's routing version to ``version`` over the stored
        ``version - 1``; ``ConflictError`` when no row changed (a concurrent
        commit advanced it first)."""
        h = routing_heads.c
        style = _style(conn)
        if version == 1:
            # RETURNING tells whether the row was inserted (rowcount may be -1 here).
            written = conn.exec_driver_sql(
                _sql(style, _FIRST_ROUTING_VERSION), {"tenant": tenant}
            ).scalar_one_or_none()
        elif version > _MAX_SQL_BIGINT:
            written = None  # never the successor of a stored version: a lost race, as in memory
        else:
            written = conn.exec_driver_sql(
                _sql(style, _NEXT_ROUTING_VERSION),
                {"tenant": tenant, "version": version, "stored": version - 1},
            ).scalar_one_or_none()
        if written is None:
            stored = conn.execute(
                sa.select(h.version).where(h.tenant == tenant)
            ).scalar_one_or_none()
            raise ConflictError(
                f"routing version: cannot write v{version} over stored v{stored or 0}"
            )

    @staticmethod
    def _write_flows(
        conn: sa.Connection, tenant: str, rows: Sequence[tuple[str, int, str]]
    ) -> None:
        latest: dict[str, int] = {}
        for flow_id, version, data in rows:
            if flow_id not in latest:
                stored = conn.execute(
                    sa.select(sa.func.max(flows.c.version)).where(
                        flows.c.tenant == tenant, flows.c.flow_id == flow_id
                    )
                ).scalar_one()
                latest[flow_id] = stored or 0
            if version != latest[flow_id] + 1:
                raise ConflictError(
                    f"flow {flow_id!r}: cannot write v{version} over stored v{latest[flow_id]}"
                )
            conn.execute(
                sa.insert(flows).values(tenant=tenant, flow_id=flow_id, version=version, data=data)
            )
            latest[flow_id] = version

    def _append_events(
        self, conn: sa.Connection, tenant: str, rows: Sequence[tuple[str, str]]
    ) -> None:
        if not rows:
            return
        count = len(rows)
        # One upsert reserves the positions; its row lock orders concurrent commits.
        style = _style(conn)
        last = conn.exec_driver_sql(
            _sql(style, _RESERVE_POSITIONS), {"tenant": tenant, "count": count}
        ).scalar_one()
        first = last - count + 1
        conn.exec_driver_sql(
            _sql(style, _INSERT_EVENT),
            [
                {"tenant": tenant, "position": first + i, "type": kind, "data": data}
                for i, (kind, data) in enumerate(rows)
            ],
        )


_FIRST_ROUTING_VERSION = (
    "INSERT INTO cxflow_routing_heads (tenant, version) VALUES ({tenant}, 1) "
    "ON CONFLICT (tenant) DO NOTHING RETURNING version"
)
_NEXT_ROUTING_VERSION = (
    "UPDATE cxflow_routing_heads SET version = {version} "
    "WHERE tenant = {tenant} AND version = {stored} RETURNING version"
)
_RESERVE_POSITIONS = (
    "INSERT INTO cxflow_outbox_heads (tenant, last_position) VALUES ({tenant}, {count}) "
    "ON CONFLICT (tenant) DO UPDATE SET last_position = "
    "cxflow_outbox_heads.last_position + excluded.last_position RETURNING last_position"
)
_INSERT_EVENT = (
    "INSERT INTO cxflow_events (tenant, position, type, data) "
    "VALUES ({tenant}, {position}, {type}, {data})"
)


@functools.cache
def _sql(style: str, template: str) -> str:
    """``template`` with each ``{name}`` a driver placeholder in ``style``
    (``"named"``: SQLite's ``:name``; ``"pyformat"``: psycopg's ``%(name)s``).
    The general write path runs these texts with ``exec_driver_sql``: building
    and caching a SQLAlchemy construct per row costs more than the row."""
    names = re.findall(r"\{(\w+)\}", template)
    mark = ":{}" if style == "named" else "%({})s"
    return template.format(**{name: mark.format(name) for name in names})


def _style(conn: sa.Connection) -> str:
    return "pyformat" if conn.dialect.paramstyle == "pyformat" else "named"


@functools.cache
def _update_template(table: sa.Table, columns: tuple[str, ...]) -> str:
    """The versioned update of ``table``: the columns, over the stored version."""
    id_name = schema.id_column(table).name
    settable = ", ".join(
        f"{name} = {{{name}}}" for name in columns if name not in ("tenant", id_name)
    )
    return (
        f"UPDATE {table.name} SET {settable} WHERE tenant = {{tenant}} "
        f"AND {id_name} = {{{id_name}}} AND version = {{stored_version}}"
    )


@functools.cache
def _select_template(table: sa.Table) -> str:
    """The read of one record of ``table`` by tenant and id."""
    return (
        f"SELECT data FROM {table.name} WHERE tenant = {{tenant}} "
        f"AND {schema.id_column(table).name} = {{id}}"
    )


_BATCH_TABLES: dict[str, tuple[sa.Table, type[Any]]] = {
    "task": (tasks, Task),
    "conversation": (conversations, Conversation),
    "customer": (customers, Customer),
}
"""``BatchReads`` kinds: their table and record class."""


@functools.cache
def _batch_template(kinds: tuple[str, ...]) -> str:
    """The one statement reading one record of each of ``kinds`` (in order):
    rows of (the key's position, data)."""
    return " UNION ALL ".join(
        f"SELECT {n} AS n, data FROM {_BATCH_TABLES[kind][0].name} WHERE tenant = {{tenant}} "
        f"AND {schema.id_column(_BATCH_TABLES[kind][0]).name} = {{id{n}}}"
        for n, kind in enumerate(kinds)
    )


@functools.cache
def _insert_template(table: sa.Table, columns: tuple[str, ...]) -> str:
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(f'{{{name}}}' for name in columns)})"
    )


def _fence_version(version: int | None) -> int | None:
    """``version`` for the one-statement fence; ``ConflictError`` for one no
    stored version can precede (beyond BIGINT), a lost race as in memory."""
    if version is not None and version > _MAX_SQL_BIGINT:
        raise ConflictError(f"routing version: cannot write v{version} over a stored version")
    return version


def _task_row(tenant: str, task: Task) -> dict[str, Any]:
    if not isinstance(task, Task):
        raise ValidationError("tasks", f"expected a Task, got {type(task).__name__}")
    return {
        "tenant": tenant,
        "task_id": task.id,
        "version": task.version,
        "flow_id": task.flow_id,
        "status": task.status,
        "assignee": task.assignee,
        "conversation_id": task.conversation_id,
        "priority_rank": task.priority.rank,
        "due_at_us": _micros(task.due_at),
        "created_at_us": _micros(task.created_at),
        "updated_at_us": _micros(task.updated_at),
        "completed_at_us": _micros(task.completed_at),
        "deleted": task.deleted,
        "title_key": task.title.casefold(),
        "data": _dumps(to_dict(task)),
    }


_Row = dict[str, Any]
"""The column values of one record; tag rows ride along under ``_TAGS``."""

_TAGS = one_statement.TAGS

def _write_records(
    conn: sa.Connection, table: sa.Table, kind: str, tenant: str, rows: Sequence[_Row]
) -> None:
    """Write versioned records in order: version 1 inserts (a duplicate id is a
    ``ConflictError``), version *n* updates the stored *n - 1* only; tag rows
    are rewritten with their record. Runs of version-1 records are inserted
    with one multi-row statement."""
    if not rows:
        return
    style = _style(conn)
    id_column = schema.id_column(table)
    tag_table = schema.TAG_TABLES.get(table.name)
    tag_id = None if tag_table is None else tag_table.c[id_column.name]
    new_rows: list[_Row] = []

    def insert_new_rows() -> None:
        if not new_rows:
            return
        values = [_columns(row) for row in new_rows]
        insert = _insert_template(table, tuple(values[0]))
        conn.exec_driver_sql(_sql(style, insert), values)
        if tag_table is not None and tag_id is not None:
            tag_rows = [
                {"tenant": tenant, tag_id.name: row[id_column.name], "tag": key}
                for row in new_rows
                for key in row[_TAGS]
            ]
            if tag_rows:
                conn.exec_driver_sql(
                    _sql(style, _insert_template(tag_table, tuple(tag_rows[0]))), tag_rows
                )
        new_rows.clear()

    for full_row in rows:
        if full_row["version"] == 1:
            new_rows.append(full_row)
            continue
        insert_new_rows()  # an update may follow the insert of the same id
        row = _columns(full_row)
        record_id, version = row[id_column.name], row["version"]
        done = conn.exec_driver_sql(
            _sql(style, _update_template(table, tuple(row))),
            {**row, "stored_version": version - 1},
        )
        if done.rowcount != 1:
            stored = conn.execute(
                sa.select(table.c.version).where(table.c.tenant == tenant, id_column == record_id)
            ).scalar_one_or_none()
            raise ConflictError(
                f"{kind} {record_id!r}: cannot write v{version} over stored v{stored or 0}"
            )
        if tag_table is None or tag_id is None:
            continue
        conn.execute(sa.delete(tag_table).where(tag_table.c.tenant == tenant, tag_id == record_id))
        keys: list[str] = full_row[_TAGS]
        if keys:
            tag_rows = [{"tenant": tenant, tag_id.name: record_id, "tag": key} for key in keys]
            conn.exec_driver_sql(
                _sql(style, _insert_template(tag_table, tuple(tag_rows[0]))), tag_rows
            )
    insert_new_rows()


def _columns(full_row: _Row) -> _Row:
    """The column values of ``full_row`` (without its tag keys)."""
    return {name: value for name, value in full_row.items() if name != _TAGS}


def _finish_routings(conn: sa.Connection, tenant: str, finished: Sequence[str]) -> None:
    """Delete the routing records of ``finished``; ``ConflictError`` when one is
    not stored (or listed twice: the first delete removed it)."""
    seen: set[str] = set()
    for conversation_id in finished:
        if conversation_id in seen:
            raise ConflictError(f"routing {conversation_id!r}: cannot finish, none is stored")
        seen.add(conversation_id)
    r = routings.c
    for start in range(0, len(finished), _FINISH_BATCH):
        batch = finished[start : start + _FINISH_BATCH]
        deleted = set(
            conn.execute(
                sa.delete(routings)
                .where(r.tenant == tenant, r.conversation_id.in_(batch))
                .returning(r.conversation_id)
            ).scalars()
        )
        for conversation_id in batch:
            if conversation_id not in deleted:
                raise ConflictError(
                    f"routing {conversation_id!r}: cannot finish, none is stored"
                )


def _tagged(tags: sa.Table, owner: sa.Column[Any], tenant: str, tag: str) -> sa.ColumnElement[bool]:
    """The ``owner`` id column's record carries ``tag`` in the tag table ``tags``."""
    t = tags.c
    return sa.exists().where(t.tenant == tenant, t[owner.name] == owner, t.tag == tag)


def _distinct(tags: Sequence[str]) -> list[str]:
    """The distinct ``tags``, in first-seen order."""
    return list(dict.fromkeys(tags))


def _conversation_row(tenant: str, conversation: object) -> _Row:
    if not isinstance(conversation, Conversation):
        raise ValidationError(
            "conversations", f"expected a Conversation, got {type(conversation).__name__}"
        )
    data = _dumps(to_dict(conversation))  # first: it validates the whole record
    return {
        "tenant": tenant,
        "conversation_id": conversation.id,
        "version": conversation.version,
        "customer_id": conversation.customer_id,
        "state": conversation.state.value,
        "channel": conversation.channel,
        "assignee": conversation.assignee,
        "opened_at_us": _micros(conversation.opened_at),
        "data": data,
        _TAGS: _distinct(conversation.room_tags),
    }


def _customer_row(tenant: str, customer: object) -> _Row:
    if not isinstance(customer, Customer):
        raise ValidationError("customers", f"expected a Customer, got {type(customer).__name__}")
    return {
        "tenant": tenant,
        "customer_id": customer.id,
        "version": customer.version,
        "data": _dumps(to_dict(customer)),
        _TAGS: _distinct(customer.tags),
    }


def _timer_row(tenant: str, timer: Timer) -> _Row:
    return {
        "tenant": tenant,
        "timer_id": timer.id,
        "version": timer.version,
        "kind": timer.kind,
        "subject_id": timer.subject_id,
        "state": timer.state.value,
        "deadline_us": _micros(timer.deadline),
        "lease_until_us": _micros(timer.lease_until),
        "data": _dumps(to_dict(timer)),
    }


def _agent_row(tenant: str, agent: Agent) -> _Row:
    return {
        "tenant": tenant,
        "agent_id": agent.id,
        "version": agent.version,
        "data": _dumps(to_dict(agent)),
    }


def _cursor_row(tenant: str, cursor: Cursor) -> _Row:
    return {
        "tenant": tenant,
        "name": cursor.name,
        "version": cursor.version,
        "data": _dumps(to_dict(cursor)),
    }


def _routing_row(tenant: str, routing: Routing) -> _Row:
    return {
        "tenant": tenant,
        "conversation_id": routing.conversation_id,
        "version": routing.version,
        "data": _dumps(to_dict(routing)),
    }


def _kind_row(kind: RecordKind) -> Callable[[str, Any], _Row]:
    """The row writer of a kind registered later (its ``kind_table``)."""

    def row(tenant: str, record: Any) -> _Row:
        return {
            "tenant": tenant,
            "record_id": kind.key_of(record),
            "version": kind.version_of(record),
            "data": _dumps(to_dict(record)),
        }

    return row


_BUILT_IN_TABLES: dict[str, tuple[sa.Table, Callable[[str, Any], _Row]]] = {
    "task": (tasks, _task_row),
    "customer": (customers, _customer_row),
    "conversation": (conversations, _conversation_row),
    "timer": (timers, _timer_row),
    "agent": (agents, _agent_row),
    "routing": (routings, _routing_row),
    "cursor": (cursors, _cursor_row),
}
"""The table and row writer of each built-in kind, by kind name."""


def _table_of(kind: RecordKind) -> tuple[sa.Table, Callable[[str, Any], _Row]]:
    """Where ``kind``'s records live and how one becomes a row."""
    found = _BUILT_IN_TABLES.get(kind.name)  # a host cannot register a built-in name
    if found is not None:
        return found
    return schema.kind_table(kind.part), _kind_row(kind)


def _event_row(event: object) -> tuple[str, str]:
    if not isinstance(event, Event):
        raise ValidationError("events", f"expected an Event, got {type(event).__name__}")
    return type(event).type, _dumps(event_to_dict(event))
