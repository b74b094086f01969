"""``SqlStore`` passes the full storage contract suite on SQLite (memory and file),
through a host's connection, and on PostgreSQL — by subclassing, as any
user's adapter would."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.testing import FullStoreContract


class TestSqliteMemoryStore(FullStoreContract):
    def make_store(self) -> SqlStore:
        store = SqlStore(sqlite_engine())
        store.create_schema()
        return store


class TestSqliteFileStore(FullStoreContract):
    @pytest.fixture(autouse=True)
    def _database_file(self, tmp_path: Path) -> None:
        self.path = tmp_path / "cxflow.db"

    def make_store(self) -> SqlStore:
        self.engine = sqlite_engine(self.path)
        store = SqlStore(self.engine)
        store.create_schema()
        return store

    def dispose_store(self, store: object) -> None:
        self.engine.dispose()


class TestSqliteHostConnectionStore(FullStoreContract):
    """The host hands cxflow an open connection, outside any transaction."""

    def make_store(self) -> SqlStore:
        self.engine = sqlite_engine()
        self.connection = self.engine.connect()
        store = SqlStore(self.connection)
        store.create_schema()
        return store

    def dispose_store(self, store: object) -> None:
        self.connection.close()
        self.engine.dispose()


class TestPostgresStore(FullStoreContract):
    @pytest.fixture(autouse=True)
    def _postgres(self, fresh_postgres_store: Callable[[], SqlStore]) -> None:
        self.fresh_store = fresh_postgres_store

    def make_store(self) -> SqlStore:
        return self.fresh_store()  # the shared test server, every table emptied


def test_ci_runs_the_postgres_tests() -> None:
    """In CI (CI=true) the PostgreSQL tests must run, not skip."""
    if not os.environ.get("CI"):
        pytest.skip("only enforced in CI (CI=true)")
    assert os.environ.get("CXFLOW_TEST_POSTGRES_URL"), "CI must start PostgreSQL"
