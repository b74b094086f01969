"""The engine inside a host's own transaction, on a SQLite file and
PostgreSQL: what the in-memory schedulers remember follows what the host
really commits, also when it rolls back after cxflow wrote."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from cxflow import (
    Agent,
    AssignmentSettings,
    ConflictError,
    Engine,
    Presence,
    RetryPolicy,
    TenantSettings,
    TestClock,
)
from cxflow.storage.sql import WRITE_TRANSACTION, SqlStore, sqlite_engine

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
ROUTED = TenantSettings(assignment=AssignmentSettings())


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "host.db")
        SqlStore(engine).create_schema()
        yield engine
        engine.dispose()
    else:
        yield request.getfixturevalue("fresh_postgres_store")().bind


def open_in(engine: Engine, conn: sa.Connection, cid: str) -> str | None:
    session = engine.session(SqlStore(conn))
    return session.conversations.open_conversation(
        TENANT, customer_id=f"cust-{cid}", channel="chat", by="widget", conversation_id=cid
    ).assignee


def test_a_routing_the_host_rolled_back_is_forgotten(db: sa.Engine) -> None:
    clock = TestClock(START)
    first, second = Engine(settings=ROUTED, clock=clock), Engine(settings=ROUTED, clock=clock)
    with db.begin() as conn:
        first.session(SqlStore(conn)).assignment.save_agent(
            TENANT, Agent(id="mina", capacity=1, presence=Presence.ONLINE), by="mina"
        )
    # The first process routes c1 to mina inside a request that then fails.
    with db.connect() as conn:
        conn.begin()
        assert open_in(first, conn, "c1") == "mina"
        conn.rollback()
    assert first.schedulers.get(TENANT) is None
    # Another process routes c2 to mina: the routing version the first one saw.
    with db.begin() as conn:
        assert open_in(second, conn, "c2") == "mina"
    # The first process knows mina holds c2, not c1: closing c2 frees her for c3.
    with db.begin() as conn:
        assert open_in(first, conn, "c3") is None
        session = first.session(SqlStore(conn))
        session.conversations.close(TENANT, "c2", by="mina")
        assert session.assignment.get_routing(TENANT, "c3").agent == "mina"


def test_a_routing_the_host_committed_keeps_the_scheduler_warm(db: sa.Engine) -> None:
    engine = Engine(settings=ROUTED, clock=TestClock(START))
    with db.begin() as conn:
        engine.session(SqlStore(conn)).assignment.save_agent(
            TENANT, Agent(id="mina", capacity=2, presence=Presence.ONLINE), by="mina"
        )
    lock = engine.schedulers.lock(TENANT)
    with db.begin() as conn:
        open_in(engine, conn, "c1")
        with pytest.raises(ConflictError):  # held by this transaction until it commits
            lock.acquire(object(), timeout=0)
    someone = object()
    lock.acquire(someone, timeout=0)
    lock.release(someone)
    cached = engine.schedulers.get(TENANT)
    assert cached is not None
    assert cached.scheduler.held_by("mina") == {"c1"}
    with db.begin() as conn:
        assert open_in(engine, conn, "c2") == "mina"
    assert engine.schedulers.get(TENANT) is cached  # reused, not rebuilt


def test_a_refused_call_inside_the_host_transaction_keeps_the_hosts_other_work(
    db: sa.Engine,
) -> None:
    engine = Engine(settings=ROUTED, clock=TestClock(START))
    with db.begin() as conn:
        engine.session(SqlStore(conn)).assignment.save_agent(
            TENANT, Agent(id="mina", capacity=2, presence=Presence.ONLINE), by="mina"
        )
    with db.begin() as conn:
        open_in(engine, conn, "c1")
        with pytest.raises(Exception, match="already exists"):
            open_in(engine, conn, "c1")
    with db.connect() as conn:
        routings = SqlStore(conn).list_routings(TENANT)
    assert [r.conversation_id for r in routings] == ["c1"]


def test_host_transactions_of_one_process_take_turns_on_a_tenant(db: sa.Engine) -> None:
    """Two request threads route one tenant inside their own transactions at
    once: they queue on the tenant's lock, so neither loses a race (no retry)."""
    sleeps: list[float] = []
    engine = Engine(
        settings=ROUTED, clock=TestClock(START), retry=RetryPolicy(sleep=sleeps.append)
    )
    writes = db.execution_options(**WRITE_TRANSACTION)
    with writes.begin() as conn:
        engine.session(SqlStore(conn)).assignment.save_agent(
            TENANT, Agent(id="mina", capacity=5, presence=Presence.ONLINE), by="mina"
        )
    start = threading.Barrier(2)

    def requests(thread: int) -> None:
        start.wait()
        for index in range(10):
            with writes.begin() as conn:
                open_in(engine, conn, f"t{thread}-{index}")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(requests, range(2)))
    with db.connect() as conn:
        routings = SqlStore(conn).list_routings(TENANT)
    assert len(routings) == 20
    assert sum(1 for routing in routings if routing.agent == "mina") == 5
    assert sleeps == []  # no unit lost a race
