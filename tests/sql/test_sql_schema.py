"""The SQL schema: tenant in every primary key, versioning and the upgrade path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import attrs
import pytest
import sqlalchemy as sa

from cxflow import ChangeSet, ConflictError, NotFound, StorageError
from cxflow.assignment.model import Agent, Presence, Routing
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.cursors import Cursor
from cxflow.events import Event
from cxflow.storage.sql import SCHEMA_VERSION, SqlStore, sqlite_engine
from cxflow.storage.sql import schema as sql_schema
from cxflow.tasks import commands
from cxflow.tasks.model import Task
from cxflow.testing import (
    T0,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_timer,
)

HOUR = timedelta(hours=1)

TENANT_FREE_TABLES = {"cxflow_schema"}
"""Tables allowed to lack the tenant: the schema-version row holds no tenant data."""


def _tables_missing_tenant_key(engine: sa.Engine) -> list[str]:
    inspector = sa.inspect(engine)
    missing = []
    for table in inspector.get_table_names():
        if not table.startswith("cxflow_") or table in TENANT_FREE_TABLES:
            continue
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        if not key or key[0] != "tenant":
            missing.append(f"{table} (primary key {key})")
    return missing


def test_every_declared_table_keys_by_tenant_first() -> None:
    for table in sql_schema.metadata.sorted_tables:
        if table.name in TENANT_FREE_TABLES:
            continue
        assert next(c.name for c in table.primary_key.columns) == "tenant", table.name


def test_every_sqlite_table_keys_by_tenant_first() -> None:
    engine = sqlite_engine()
    SqlStore(engine).create_schema()
    assert _tables_missing_tenant_key(engine) == []


def test_every_postgres_table_keys_by_tenant_first(postgres_store: SqlStore) -> None:
    engine = sa.create_engine(postgres_store.bind.engine.url)
    try:
        assert _tables_missing_tenant_key(engine) == []
    finally:
        engine.dispose()


def test_the_inspection_catches_a_table_without_the_tenant() -> None:
    engine = sqlite_engine()
    SqlStore(engine).create_schema()
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE cxflow_rogue (id TEXT PRIMARY KEY, tenant TEXT)")
    assert _tables_missing_tenant_key(engine) == ["cxflow_rogue (primary key ['id'])"]


def test_schema_version_is_none_before_create_schema() -> None:
    assert SqlStore(sqlite_engine()).schema_version() is None


def test_create_schema_records_the_version_and_is_idempotent() -> None:
    store = SqlStore(sqlite_engine())
    assert store.create_schema() == SCHEMA_VERSION
    assert store.create_schema() == SCHEMA_VERSION
    assert store.schema_version() == SCHEMA_VERSION


def test_a_newer_database_is_refused_and_left_alone() -> None:
    engine = sqlite_engine()
    store = SqlStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        conn.execute(sa.update(sql_schema.schema_info).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StorageError, match="newer"):
        store.create_schema()
    assert store.schema_version() == SCHEMA_VERSION + 1


def test_create_schema_runs_missing_upgrade_steps_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = sqlite_engine()
    store = SqlStore(engine)
    store.create_schema()
    ran: list[int] = []

    def step(version: int) -> object:
        return lambda conn: ran.append(version)

    monkeypatch.setattr(sql_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 2)
    monkeypatch.setattr(
        sql_schema, "UPGRADES", {SCHEMA_VERSION: step(1), SCHEMA_VERSION + 1: step(2)}
    )
    assert store.create_schema() == SCHEMA_VERSION + 2
    assert ran == [1, 2]
    assert store.schema_version() == SCHEMA_VERSION + 2
    assert store.create_schema() == SCHEMA_VERSION + 2
    assert ran == [1, 2]


def test_drop_schema_removes_every_table() -> None:
    engine = sqlite_engine()
    store = SqlStore(engine)
    store.create_schema()
    store.drop_schema()
    assert [t for t in sa.inspect(engine).get_table_names() if t.startswith("cxflow_")] == []


# -- the upgrade from schema v1 (flows, tasks, outbox) to v2 (conversations, timers) ------

V1_TABLES = ("cxflow_schema", "cxflow_flows", "cxflow_tasks", "cxflow_outbox_heads",
             "cxflow_events")
V2_TABLE_NAMES = {table.name for table in sql_schema.V2_TABLES}
V3_TABLE_NAMES = {table.name for table in sql_schema.V3_TABLES}
V5_TABLE_NAMES = {table.name for table in sql_schema.V5_TABLES}


def _cxflow_tables(engine: sa.Engine) -> set[str]:
    """cxflow's own tables (not those of kinds registered by a host, such as
    the tests' ``cxflow_kind_notes``)."""
    return {
        t for t in sa.inspect(engine).get_table_names()
        if t.startswith("cxflow_") and not t.startswith("cxflow_kind_")
    }


def _make_v1_database(engine: sa.Engine) -> None:
    """Only the tables of schema v1, with version row 1, as cxflow 0.1 left them."""
    v1 = sa.MetaData()
    for name in V1_TABLES:
        sql_schema.metadata.tables[name].to_metadata(v1)
    with engine.begin() as conn:
        v1.create_all(conn)
        conn.execute(sa.insert(sql_schema.schema_info).values(component="cxflow", version=1))


def _v1_records() -> tuple[Task, list[Event]]:
    """A task of a v1 database and the events its creation appended."""
    return commands.create_task(flow=sample_flow(), task_id="old-task", title="Kept",
                                by="ana", at=T0)


def _seed_v1_records(store: SqlStore) -> None:
    """Records of the v1 tiers, written by today's store (they touch only v1 tables)."""
    task, events = _v1_records()
    store.commit("acme", ChangeSet(flows=(sample_flow(),), tasks=(task,), events=tuple(events)))


def _assert_upgraded(store: SqlStore, engine: sa.Engine) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    assert _cxflow_tables(engine) >= V2_TABLE_NAMES | V3_TABLE_NAMES | V5_TABLE_NAMES
    # The v1 records are intact...
    assert store.get_flow("acme", "support") == sample_flow()
    task, events = _v1_records()
    assert store.get_task("acme", "old-task") == task
    assert [e.event for e in store.read_events("acme")] == events
    # ...and the v2 tiers work.
    store.commit("acme", ChangeSet(
        conversations=(sample_conversation(room_tags=("vip",)),), timers=(sample_timer(),),
    ))
    query = ConversationQuery(room_tag="vip")
    assert [c.id for c in store.query_conversations("acme", query)] == ["conv-1"]
    assert [t.id for t in store.claim_timers("acme", T0, worker="w", lease=HOUR)] == ["timer-1"]


def test_schema_version_is_5() -> None:
    assert SCHEMA_VERSION == 5
    assert set(sql_schema.UPGRADES) == {1, 2, 3, 4}


def test_upgrade_step_1_creates_exactly_the_v2_tables() -> None:
    engine = sqlite_engine()
    _make_v1_database(engine)
    with engine.begin() as conn:
        sql_schema.UPGRADES[1](conn)
    assert _cxflow_tables(engine) == set(V1_TABLES) | V2_TABLE_NAMES


def test_upgrade_step_1_is_idempotent() -> None:
    engine = sqlite_engine()
    store = SqlStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        sql_schema.UPGRADES[1](conn)
    assert _cxflow_tables(engine) == (
        set(V1_TABLES) | V2_TABLE_NAMES | V3_TABLE_NAMES | V5_TABLE_NAMES
    )


def test_v1_database_upgrades_to_the_latest_keeping_its_records() -> None:
    engine = sqlite_engine()
    _make_v1_database(engine)
    store = SqlStore(engine)
    _seed_v1_records(store)
    assert store.schema_version() == 1
    assert store.create_schema() == SCHEMA_VERSION
    _assert_upgraded(store, engine)
    _assert_v3_tiers_work(store)


def test_v1_database_file_upgrades_to_the_latest_keeping_its_records(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    engine = sqlite_engine(path)
    _make_v1_database(engine)
    _seed_v1_records(SqlStore(engine))
    engine.dispose()
    engine = sqlite_engine(path)  # a later process, with the newer cxflow
    try:
        store = SqlStore(engine)
        assert store.create_schema() == SCHEMA_VERSION
        _assert_upgraded(store, engine)
    finally:
        engine.dispose()


def test_upgraded_database_is_left_alone_by_the_next_create_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = sqlite_engine()
    _make_v1_database(engine)
    store = SqlStore(engine)
    store.create_schema()
    ran: list[int] = []
    monkeypatch.setattr(
        sql_schema, "UPGRADES", {1: lambda conn: ran.append(1), 2: lambda conn: ran.append(2)}
    )
    assert store.create_schema() == SCHEMA_VERSION
    assert ran == []


def test_newer_database_is_refused_before_any_table_is_created() -> None:
    engine = sqlite_engine()
    _make_v1_database(engine)
    with engine.begin() as conn:
        conn.execute(sa.update(sql_schema.schema_info).values(version=SCHEMA_VERSION + 1))
    with pytest.raises(StorageError, match="newer"):
        SqlStore(engine).create_schema()
    assert _cxflow_tables(engine) == set(V1_TABLES)


def test_postgres_v1_database_upgrades_to_v2_keeping_its_records(
    postgres_store: SqlStore,
) -> None:
    engine = postgres_store.bind
    assert isinstance(engine, sa.Engine)
    # Turn the shared test database back into a v1 one: drop the v2 and v3 tables.
    with engine.begin() as conn:
        sql_schema.metadata.drop_all(
            conn, tables=[*sql_schema.V2_TABLES, *sql_schema.V3_TABLES]
        )
        conn.execute(sa.update(sql_schema.schema_info).values(version=1))
    assert not (V2_TABLE_NAMES | V3_TABLE_NAMES) & _cxflow_tables(engine)
    _seed_v1_records(postgres_store)
    assert postgres_store.create_schema() == SCHEMA_VERSION
    _assert_upgraded(postgres_store, engine)
    _assert_v3_tiers_work(postgres_store)


# -- the upgrade from schema v2 to v3 (agents, routing records, routing versions) --------

V2_TABLES = (*V1_TABLES, *sorted(V2_TABLE_NAMES))


def _make_v2_database(engine: sa.Engine) -> None:
    """Only the tables of schema v2, with version row 2, as cxflow 0.2 left them."""
    v2 = sa.MetaData()
    for name in V2_TABLES:
        sql_schema.metadata.tables[name].to_metadata(v2)
    with engine.begin() as conn:
        v2.create_all(conn)
        conn.execute(sa.insert(sql_schema.schema_info).values(component="cxflow", version=2))


def _seed_v2_records(store: SqlStore) -> None:
    """Records of every v2 tier (they touch only v2 tables)."""
    _seed_v1_records(store)
    store.commit("acme", ChangeSet(
        conversations=(sample_conversation(room_tags=("vip",)),),
        customers=(sample_customer(tags=("gold",)),),
        timers=(sample_timer(),),
    ))


def _assert_v2_records_kept(store: SqlStore) -> None:
    assert store.get_flow("acme", "support") == sample_flow()
    task, events = _v1_records()
    assert store.get_task("acme", "old-task") == task
    assert [e.event for e in store.read_events("acme")] == events
    assert store.get_conversation("acme", "conv-1") == sample_conversation(room_tags=("vip",))
    query = ConversationQuery(room_tag="vip")
    assert [c.id for c in store.query_conversations("acme", query)] == ["conv-1"]
    assert [c.id for c in store.query_customers("acme", CustomerQuery(tag="gold"))] == ["cust-1"]
    assert store.get_timer("acme", "timer-1") == sample_timer()


def _assert_v3_tiers_work(store: SqlStore) -> None:
    """Agents, routing records and the routing version work on the upgraded database."""
    assert store.routing_version("acme") == 0
    assert store.list_agents("acme") == []
    agent = Agent(id="ana", presence=Presence.ONLINE, skills={"billing": 3})
    routing = Routing(conversation_id="conv-1", channel="web", arrived_at=T0)
    store.commit("acme", ChangeSet(agents=(agent,), routings=(routing,), routing_version=1))
    assert store.list_agents("acme") == [agent]
    assert store.get_routing("acme", "conv-1") == routing
    with pytest.raises(ConflictError):
        store.commit("acme", ChangeSet(routing_version=1))
    store.commit("acme", ChangeSet(finished_routings=("conv-1",), routing_version=2))
    with pytest.raises(NotFound):
        store.get_routing("acme", "conv-1")
    assert store.routing_version("acme") == 2


def test_upgrade_step_2_creates_exactly_the_v3_tables() -> None:
    engine = sqlite_engine()
    _make_v2_database(engine)
    with engine.begin() as conn:
        sql_schema.UPGRADES[2](conn)
    assert _cxflow_tables(engine) == set(V2_TABLES) | V3_TABLE_NAMES


def test_upgrade_step_2_is_idempotent() -> None:
    engine = sqlite_engine()
    SqlStore(engine).create_schema()
    with engine.begin() as conn:
        sql_schema.UPGRADES[2](conn)
    assert _cxflow_tables(engine) == set(V2_TABLES) | V3_TABLE_NAMES | V5_TABLE_NAMES


def test_v2_database_upgrades_to_v3_keeping_its_records() -> None:
    engine = sqlite_engine()
    _make_v2_database(engine)
    store = SqlStore(engine)
    _seed_v2_records(store)
    assert store.schema_version() == 2
    assert store.create_schema() == SCHEMA_VERSION
    assert store.schema_version() == SCHEMA_VERSION
    _assert_v2_records_kept(store)
    _assert_v3_tiers_work(store)


def test_v2_database_upgrade_runs_only_the_later_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = sqlite_engine()
    _make_v2_database(engine)
    ran: list[int] = []

    def step(version: int) -> object:
        real = sql_schema.UPGRADES[version]
        return lambda conn: (ran.append(version), real(conn))

    monkeypatch.setattr(sql_schema, "UPGRADES", {n: step(n) for n in (1, 2, 3, 4)})
    assert SqlStore(engine).create_schema() == SCHEMA_VERSION
    assert ran == [2, 3, 4]


def test_v2_database_file_upgrades_to_v3_keeping_its_records(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    engine = sqlite_engine(path)
    _make_v2_database(engine)
    _seed_v2_records(SqlStore(engine))
    engine.dispose()
    engine = sqlite_engine(path)  # a later process, with the newer cxflow
    try:
        store = SqlStore(engine)
        assert store.create_schema() == SCHEMA_VERSION
        assert _cxflow_tables(engine) == set(V2_TABLES) | V3_TABLE_NAMES | V5_TABLE_NAMES
        _assert_v2_records_kept(store)
        _assert_v3_tiers_work(store)
    finally:
        engine.dispose()


def test_postgres_v2_database_upgrades_to_v3_keeping_its_records(
    postgres_store: SqlStore,
) -> None:
    engine = postgres_store.bind
    assert isinstance(engine, sa.Engine)
    # Turn the shared test database back into a v2 one: drop the v3 tables.
    with engine.begin() as conn:
        sql_schema.metadata.drop_all(conn, tables=list(sql_schema.V3_TABLES))
        conn.execute(sa.update(sql_schema.schema_info).values(version=2))
    assert not V3_TABLE_NAMES & _cxflow_tables(engine)
    _seed_v2_records(postgres_store)
    assert postgres_store.create_schema() == SCHEMA_VERSION
    assert _cxflow_tables(engine) >= V3_TABLE_NAMES
    _assert_v2_records_kept(postgres_store)
    _assert_v3_tiers_work(postgres_store)


# -- the upgrade from schema v3 to v4 (PostgreSQL: the one-statement commit's function) --


def _has_conflict_function(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT to_regprocedure('cxflow_conflict(text)') IS NOT NULL"  # on the search path
        ).scalar_one()
    return bool(found)


def test_upgrade_step_3_changes_no_table_on_sqlite() -> None:
    engine = sqlite_engine()
    SqlStore(engine).create_schema()
    before = _cxflow_tables(engine)
    with engine.begin() as conn:
        sql_schema.UPGRADES[3](conn)
    assert _cxflow_tables(engine) == before


def test_postgres_v3_database_upgrades_to_v4_and_its_commits_refuse_stale_versions(
    postgres_store: SqlStore,
) -> None:
    engine = postgres_store.bind
    assert isinstance(engine, sa.Engine)
    # Turn the shared test database back into a v3 one: drop the function.
    with engine.begin() as conn:
        sql_schema.drop_functions(conn)
        conn.execute(sa.update(sql_schema.schema_info).values(version=3))
    assert not _has_conflict_function(engine)
    _seed_v2_records(postgres_store)  # inserts only: no version check runs
    assert postgres_store.create_schema() == SCHEMA_VERSION
    assert _has_conflict_function(engine)
    _assert_v2_records_kept(postgres_store)
    _assert_v3_tiers_work(postgres_store)
    stale = attrs.evolve(sample_conversation(room_tags=("vip",)), version=3)
    with pytest.raises(ConflictError, match="cannot write v3 over stored v1"):
        postgres_store.commit("acme", ChangeSet(conversations=(stale,)))


def test_drop_schema_drops_the_conflict_function(postgres_store: SqlStore) -> None:
    engine = postgres_store.bind
    assert isinstance(engine, sa.Engine)
    postgres_store.drop_schema()
    try:
        assert not _has_conflict_function(engine)
    finally:
        postgres_store.create_schema()


# -- the upgrade from schema v4 to v5 (the cursors of the log's consumers) ---------------


def _make_v4_database(engine: sa.Engine) -> None:
    """Every table but the cursors', with version row 4, as cxflow 0.4 left them."""
    SqlStore(engine).create_schema()
    with engine.begin() as conn:
        sql_schema.metadata.drop_all(conn, tables=list(sql_schema.V5_TABLES))
        conn.execute(sa.update(sql_schema.schema_info).values(version=4))


def test_upgrade_step_4_creates_exactly_the_cursor_table() -> None:
    engine = sqlite_engine()
    _make_v4_database(engine)
    before = _cxflow_tables(engine)
    with engine.begin() as conn:
        sql_schema.UPGRADES[4](conn)
    assert _cxflow_tables(engine) == before | V5_TABLE_NAMES


def test_upgrade_step_4_is_idempotent() -> None:
    engine = sqlite_engine()
    SqlStore(engine).create_schema()
    with engine.begin() as conn:
        sql_schema.UPGRADES[4](conn)
    assert _cxflow_tables(engine) >= V5_TABLE_NAMES


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_v4_database_upgrades_and_keeps_its_outbox(
    backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        engine = sqlite_engine()
    else:
        engine = request.getfixturevalue("postgres_store").bind
    _make_v4_database(engine)
    store = SqlStore(engine)
    _seed_v1_records(store)
    assert store.schema_version() == 4
    assert store.create_schema() == SCHEMA_VERSION
    _task, events = _v1_records()
    assert [e.event for e in store.read_events("acme")] == events
    cursor = Cursor(name="stats", position=len(events))
    store.commit("acme", ChangeSet(cursors=(cursor,)))
    assert store.get_cursor("acme", "stats") == cursor
