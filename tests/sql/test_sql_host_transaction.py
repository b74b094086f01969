"""Concurrent requests that hand cxflow their own connection and transaction.

This is how a web host (FastAPI with SQLAlchemy, say) wires cxflow: each
request opens a connection and a transaction on the host's engine, builds a
``SqlStore`` on it, calls cxflow, writes its own tables, and commits. On
SQLite the transaction must be opened with ``WRITE_TRANSACTION`` so it takes
the write lock at ``BEGIN``; then every request lands, one writer at a time.
On PostgreSQL the same code runs unchanged (the options do nothing there).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cxflow import StorageError, TaskService, TestClock
from cxflow.storage.sql import WRITE_TRANSACTION, SqlStore, sqlite_engine
from cxflow.testing import T0, sample_flow

TENANT = "acme"
WRITERS = 20
HOST = sa.Table(
    "host_orders",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("task_id", sa.String(64), nullable=False),
)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """The host's engine, with a connection per writer: a SQLite file, or the
    PostgreSQL test server. cxflow's schema and the host's table, both empty;
    flow ``support`` and task ``shared`` stored."""
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "host.db", pool_size=WRITERS)
        SqlStore(engine).create_schema()
    else:
        fresh: Callable[[], SqlStore] = request.getfixturevalue("fresh_postgres_store")
        bind = fresh().bind
        assert isinstance(bind, sa.Engine)
        engine = sa.create_engine(bind.url, pool_size=WRITERS)
    HOST.drop(engine, checkfirst=True)
    HOST.create(engine)
    service = TaskService(SqlStore(engine), TestClock(T0))
    service.create_flow(TENANT, sample_flow(), by="admin")
    service.create_task(TENANT, flow_id="support", title="Shared", by="admin", task_id="shared")
    try:
        yield engine
    finally:
        HOST.drop(engine, checkfirst=True)
        engine.dispose()


def _concurrently(request: Callable[[int], None]) -> list[str]:
    """Run ``request(0)`` .. ``request(WRITERS - 1)`` on as many threads, all
    released at once; return the failures (empty when every request landed)."""
    start = threading.Barrier(WRITERS)
    failures: list[str] = []

    def run(number: int) -> None:
        start.wait(timeout=60)
        try:
            request(number)
        except Exception as exc:  # every failure is reported, not only cxflow's
            failures.append(f"request {number}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a request hung"
    return failures


def _host_rows(engine: sa.Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        return [(row.id, row.task_id) for row in conn.execute(sa.select(HOST).order_by(HOST.c.id))]


def test_concurrent_host_transactions_all_land(engine: sa.Engine) -> None:
    writer = engine.execution_options(**WRITE_TRANSACTION)

    def request(number: int) -> None:
        with writer.begin() as conn:
            service = TaskService(SqlStore(conn), TestClock(T0))
            task = service.create_task(  # reads the flow, then writes
                TENANT, flow_id="support", title=f"Order {number}", by="web", task_id=f"t{number}"
            )
            service.add_comment(TENANT, task.id, "Received.", by="web")  # read, then write
            conn.execute(sa.insert(HOST).values(id=number, task_id=task.id))

    assert _concurrently(request) == []
    store = SqlStore(engine)
    assert _host_rows(engine) == [(n, f"t{n}") for n in range(WRITERS)]
    for number in range(WRITERS):
        task = store.get_task(TENANT, f"t{number}")
        assert (task.version, [c.body for c in task.comments]) == (2, ["Received."])
    positions = [e.position for e in store.read_events(TENANT, limit=1000)]
    assert positions == list(range(1, len(positions) + 1))  # no gap, no duplicate


def test_concurrent_host_connections_without_a_transaction_all_land(engine: sa.Engine) -> None:
    """Each cxflow call then runs in a transaction of its own that cxflow commits
    (on SQLite begun ``IMMEDIATE``); the host commits its own statements."""

    def request(number: int) -> None:
        with engine.connect() as conn:
            service = TaskService(SqlStore(conn), TestClock(T0))
            task = service.create_task(
                TENANT, flow_id="support", title=f"Order {number}", by="web", task_id=f"t{number}"
            )
            service.add_comment(TENANT, task.id, "Received.", by="web")
            assert not conn.in_transaction()  # cxflow left nothing open
            conn.execute(sa.insert(HOST).values(id=number, task_id=task.id))
            conn.commit()

    assert _concurrently(request) == []
    store = SqlStore(engine)
    assert _host_rows(engine) == [(n, f"t{n}") for n in range(WRITERS)]
    for number in range(WRITERS):
        assert len(store.get_task(TENANT, f"t{number}").comments) == 1


def test_a_read_on_a_host_connection_leaves_no_transaction_to_swallow_the_write(
    engine: sa.Engine,
) -> None:
    """A cxflow call that reads before it writes, on a connection outside a
    transaction, commits its write (it was once left inside the transaction the
    read had begun, and lost when the connection closed)."""
    with engine.connect() as conn:
        TaskService(SqlStore(conn), TestClock(T0)).add_comment(
            TENANT, "shared", "Hello", by="ana"
        )
        assert not conn.in_transaction()
    assert len(SqlStore(engine).get_task(TENANT, "shared").comments) == 1


def test_sqlite_host_transactions_writing_one_task_queue_instead_of_conflicting(
    tmp_path: Path,
) -> None:
    """What it costs and buys on SQLite: writers run one at a time from BEGIN
    to commit, so even read-modify-writes of one task never conflict."""
    engine = sqlite_engine(tmp_path / "host.db", pool_size=WRITERS)
    SqlStore(engine).create_schema()
    service = TaskService(SqlStore(engine), TestClock(T0))
    service.create_flow(TENANT, sample_flow(), by="admin")
    service.create_task(TENANT, flow_id="support", title="Shared", by="admin", task_id="shared")
    writer = engine.execution_options(**WRITE_TRANSACTION)

    def request(number: int) -> None:
        with writer.begin() as conn:
            TaskService(SqlStore(conn), TestClock(T0)).add_comment(
                TENANT, "shared", f"comment {number}", by=f"agent-{number}"
            )

    try:
        assert _concurrently(request) == []
        task = SqlStore(engine).get_task(TENANT, "shared")
    finally:
        engine.dispose()
    assert task.version == 1 + WRITERS
    assert sorted(c.body for c in task.comments) == sorted(f"comment {n}" for n in range(WRITERS))


def test_a_deferred_sqlite_host_transaction_refused_the_lock_says_how_to_begin(
    tmp_path: Path,
) -> None:
    """Deterministic: the host transaction reads, another connection commits a
    write, then cxflow's write in the host transaction cannot take the lock."""
    engine = sqlite_engine(tmp_path / "host.db", busy_timeout=1)
    SqlStore(engine).create_schema()
    other = TaskService(SqlStore(engine), TestClock(T0))
    other.create_flow(TENANT, sample_flow(), by="admin")
    other.create_task(TENANT, flow_id="support", title="One", by="admin", task_id="t1")
    try:
        with engine.begin() as conn:  # deferred: no WRITE_TRANSACTION
            service = TaskService(SqlStore(conn), TestClock(T0))
            service.get_task(TENANT, "t1")
            other.add_comment(TENANT, "t1", "Meanwhile", by="bo")
            with pytest.raises(StorageError, match="WRITE_TRANSACTION") as info:
                service.add_comment(TENANT, "t1", "Late", by="ana")
            assert isinstance(info.value.__cause__, sa.exc.OperationalError)
        assert [c.body for c in other.get_task(TENANT, "t1").comments] == ["Meanwhile"]
    finally:
        engine.dispose()
