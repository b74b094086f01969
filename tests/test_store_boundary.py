"""The read-side boundary contract (``cxflow.testing.boundary_contract``) on
every shipped store: memory, SQLite and PostgreSQL. The same bad id or tenant
is the same ``ValidationError`` on each of them (issue 10)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cxflow.storage import MemoryStore
from cxflow.testing.boundary_contract import ReadBoundaryContract

sa = pytest.importorskip("sqlalchemy", reason="the SQL stores need the 'sql' extra")

from cxflow.storage.sql import SqlStore, sqlite_engine  # noqa: E402
from cxflow.storage.sql.schema import metadata, schema_info  # noqa: E402

POSTGRES_URL = os.environ.get("CXFLOW_TEST_POSTGRES_URL")


class TestMemoryStoreBoundary(ReadBoundaryContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


class TestSqliteStoreBoundary(ReadBoundaryContract):
    def make_store(self) -> SqlStore:
        store = SqlStore(sqlite_engine())
        store.create_schema()
        return store


@pytest.fixture(scope="module")
def postgres_engine() -> Iterator[sa.Engine]:
    """An engine on a schema of this module's own on the test server, so
    other test runs sharing the server (and their TRUNCATEs) cannot interfere."""
    if not POSTGRES_URL:
        pytest.skip("CXFLOW_TEST_POSTGRES_URL is not set (scripts/pg-test-server.sh start)")
    schema = f"cxflow_boundary_{os.getpid()}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine = sa.create_engine(
        POSTGRES_URL, pool_size=2, max_overflow=2,
        connect_args={"options": f"-csearch_path={schema}"},
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


class TestPostgresStoreBoundary(ReadBoundaryContract):
    @pytest.fixture(autouse=True)
    def _postgres(self, postgres_engine: sa.Engine) -> None:
        self.engine = postgres_engine

    def make_store(self) -> SqlStore:
        store = SqlStore(self.engine)
        store.create_schema()
        with self.engine.begin() as conn:  # DELETE: faster than TRUNCATE on tiny tables
            for table in reversed(metadata.sorted_tables):
                if table is not schema_info:
                    conn.execute(table.delete())
        return store
