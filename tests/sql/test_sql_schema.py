"""The SQL schema: tenant in every primary key, versioning and the upgrade path."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cxflow import StorageError
from cxflow.storage.sql import SCHEMA_VERSION, SqlStore, sqlite_engine
from cxflow.storage.sql import schema as sql_schema

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
