"""``SqlStore`` passes the storage contract suite of every tier on SQLite (memory
and file), through a host's connection, and on PostgreSQL — by subclassing, as
any user's adapter would."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cxflow import ChangeSet
from cxflow.assignment.model import Agent, Routing
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.testing import (
    T0,
    ConsumerContract,
    CursorStoreContract,
    EveryTierContract,
    RecordKindContract,
)


class TestSqliteMemoryStore(EveryTierContract, CursorStoreContract, ConsumerContract):
    def make_store(self) -> SqlStore:
        store = SqlStore(sqlite_engine())
        store.create_schema()
        return store


class TestSqliteFileStore(EveryTierContract, CursorStoreContract, ConsumerContract):
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


class TestSqliteHostConnectionStore(EveryTierContract, CursorStoreContract, ConsumerContract):
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


class TestPostgresStore(EveryTierContract, CursorStoreContract, ConsumerContract):
    @pytest.fixture(autouse=True)
    def _postgres(self, fresh_postgres_store: Callable[[], SqlStore]) -> None:
        self.fresh_store = fresh_postgres_store

    def make_store(self) -> SqlStore:
        return self.fresh_store()  # the shared test server, every table emptied


class TestSqliteRecordKinds(RecordKindContract):
    """Every registered kind (the tests' ``note`` in its own table) on SQLite."""

    def make_store(self) -> SqlStore:
        store = SqlStore(sqlite_engine())
        store.create_schema()
        return store


class TestPostgresRecordKinds(RecordKindContract):
    """Every registered kind on PostgreSQL (one-statement commits included)."""

    @pytest.fixture(autouse=True)
    def _postgres(self, fresh_postgres_store: Callable[[], SqlStore]) -> None:
        self.fresh_store = fresh_postgres_store

    def make_store(self) -> SqlStore:
        return self.fresh_store()


def test_ci_runs_the_postgres_tests() -> None:
    """In CI (CI=true) the PostgreSQL tests must run, not skip."""
    if not os.environ.get("CI"):
        pytest.skip("only enforced in CI (CI=true)")
    assert os.environ.get("CXFLOW_TEST_POSTGRES_URL"), "CI must start PostgreSQL"


# -- statements per call: the scheduler rebuilds from whole lists --------------------------


@contextmanager
def _statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` runs inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def _routings(count: int) -> tuple[Routing, ...]:
    return tuple(
        Routing(conversation_id=f"conv-{n:05}", channel="web", arrived_at=T0)
        for n in range(count)
    )


def test_list_routings_and_agents_run_one_select_each() -> None:
    engine = sqlite_engine()
    store = SqlStore(engine)
    store.create_schema()
    agents = tuple(Agent(id=f"agent-{n:03}") for n in range(50))
    store.commit("acme", ChangeSet(agents=agents, routings=_routings(300)))
    with _statements(engine) as seen:
        assert len(store.list_routings("acme")) == 300
        assert len(store.list_agents("acme")) == 50
    assert [s.split()[0] for s in seen if not s.startswith(("BEGIN", "ROLLBACK"))] == [
        "SELECT", "SELECT"
    ]


def test_commit_of_many_new_routings_and_finishing_them_is_batched() -> None:
    engine = sqlite_engine()
    store = SqlStore(engine)
    store.create_schema()
    with _statements(engine) as seen:
        store.commit("acme", ChangeSet(routings=_routings(1000), routing_version=1))
        store.commit("acme", ChangeSet(
            finished_routings=[f"conv-{n:05}" for n in range(1000)], routing_version=2
        ))
    assert len(seen) < 20, seen
    assert store.list_routings("acme") == []
    assert store.routing_version("acme") == 2
