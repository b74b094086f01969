"""Several OS processes run one consumer name over one tenant's log.

Each worker process builds its own engine and store and runs the consumer
``relay`` until it is caught up. Its handler's effect of each source event is
one more event in the log (no record whose version would catch a second
apply), so only the cursor keeps two processes from both applying a batch.
Meanwhile the parent SIGKILLs workers at points spread over the log and starts
new ones.

Afterwards every source event has exactly one effect. The same harness with a
naive control (read after a position saved in a table of its own, commit the
effects, then save the new position with a plain write) double-applies, so
the harness can fail.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cxflow import ChangeSet, Consumer, TestClock
from cxflow.app.consumers import Batch
from cxflow.events import CustomerTagAdded, FlowSaved
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.testing import T0

TENANT = "acme"
SOURCES = 1_000
WORKERS = 3
KILLS = 4
GIVE_UP_AFTER = 120.0
EFFECTS = "effects"


def _engine(target: str) -> sa.Engine:
    if target.startswith("postgresql"):
        return sa.create_engine(target, pool_size=2, max_overflow=0)
    return sqlite_engine(target, busy_timeout=60)


def _relay(batch: Batch) -> None:
    for stored in batch.events:
        event = stored.event
        if isinstance(event, CustomerTagAdded):
            continue
        effect = CustomerTagAdded(
            at=batch.at, by=f"pid-{os.getpid()}", customer_id=EFFECTS, tag=f"p{stored.position}"
        )
        batch.emit([effect], caused_by=event)
    time.sleep(0.005)  # a handler that takes a moment: batches overlap between workers


def _worker(target: str, seed: int) -> None:
    """Run the consumer until it is caught up."""
    engine = _engine(target)
    try:
        rnd = random.Random(seed)
        consumer = Consumer(
            SqlStore(engine), "relay", _relay, batch_size=rnd.randint(3, 25), clock=TestClock(T0)
        )
        deadline = time.monotonic() + GIVE_UP_AFTER
        while time.monotonic() < deadline and consumer.run(TENANT, max_batches=5):
            pass
    finally:
        engine.dispose()


def _control_worker(target: str, seed: int) -> None:
    """The naive relay: read after a position it saved, apply, save the new one."""
    engine = _engine(target)
    store = SqlStore(engine)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE IF NOT EXISTS naive_cursor (name TEXT PRIMARY KEY, position BIGINT)"
            )
            conn.exec_driver_sql(
                "INSERT INTO naive_cursor VALUES ('relay', 0) ON CONFLICT DO NOTHING"
            )
        while True:
            with engine.connect() as conn:
                after = conn.exec_driver_sql(
                    "SELECT position FROM naive_cursor WHERE name = 'relay'"
                ).scalar_one()
            batch = [
                s for s in store.read_events(TENANT, after=after, limit=10)
                if not isinstance(s.event, CustomerTagAdded)
            ]
            if not batch:
                return
            time.sleep(0.002)
            store.commit(TENANT, ChangeSet(events=tuple(
                CustomerTagAdded(at=T0, by="naive", customer_id=EFFECTS, tag=f"p{s.position}")
                for s in batch
            )))
            with engine.begin() as conn:
                conn.exec_driver_sql(
                    "UPDATE naive_cursor SET position = %s WHERE name = 'relay'"
                    if engine.dialect.paramstyle == "pyformat"
                    else "UPDATE naive_cursor SET position = ? WHERE name = 'relay'",
                    (batch[-1].position,),
                )
    finally:
        engine.dispose()


def _seed(store: SqlStore) -> None:
    events = [
        FlowSaved(flow_id=f"flow-{n}", version=1, at=T0, by="seed") for n in range(SOURCES)
    ]
    for start in range(0, SOURCES, 20):
        store.commit(TENANT, ChangeSet(events=tuple(events[start : start + 20])))


def _effects(store: SqlStore) -> Counter[str]:
    return Counter(
        s.event.tag
        for s in store.read_events(TENANT, limit=100_000)
        if isinstance(s.event, CustomerTagAdded)
    )


def _run(
    target: str, store: SqlStore, worker: Any, *, kills: int, killed: list[int] | None = None
) -> Counter[str]:
    """Seed the log, run ``WORKERS`` processes of ``worker``, SIGKILL ``kills`` of
    them along the way (each replaced), finish, and count the effects.
    ``killed`` gets the cursor position after each kill."""
    killed = [] if killed is None else killed
    _seed(store)
    context = multiprocessing.get_context("spawn")
    rnd = random.Random(5)
    seeds = iter(range(1000))
    running = [context.Process(target=worker, args=(target, next(seeds))) for _ in range(WORKERS)]
    for process in running:
        process.start()
    # Kill at spread-out points of the log (the handler's pause makes most
    # of them land between a batch's read and its commit).
    watcher = Consumer(store, "relay", _relay)
    thresholds = [2 * SOURCES * (n + 1) // (kills + 1) for n in range(kills)]
    deadline = time.monotonic() + GIVE_UP_AFTER
    while thresholds and time.monotonic() < deadline:
        alive = [p for p in running if p.is_alive()]
        if not alive:
            break
        if watcher.position(TENANT) < thresholds[0]:
            time.sleep(0.005)
            continue
        thresholds.pop(0)
        victim = rnd.choice(alive)
        os.kill(victim.pid or 0, signal.SIGKILL)
        victim.join()
        killed.append(watcher.position(TENANT))
        replacement = context.Process(target=worker, args=(target, next(seeds)))
        replacement.start()
        running.append(replacement)
    for process in running:
        process.join(timeout=GIVE_UP_AFTER)
        assert process.exitcode in (0, -signal.SIGKILL), "a worker failed"
    # Whatever the last kill left unhandled, one more run finishes.
    worker(target, next(seeds))
    return _effects(store)


def _assert_exactly_once(effects: Counter[str]) -> None:
    assert set(effects) == {f"p{n}" for n in range(1, SOURCES + 1)}
    doubled = {tag: n for tag, n in effects.items() if n != 1}
    assert not doubled, f"applied more than once: {sorted(doubled)[:10]}"


def test_consumers_in_several_processes_apply_each_event_once_on_postgres(
    postgres_store: SqlStore,
) -> None:
    url = postgres_store.bind.url.render_as_string(hide_password=False)  # type: ignore[union-attr]
    killed: list[int] = []
    _assert_exactly_once(_run(url, postgres_store, _worker, kills=KILLS, killed=killed))
    assert len(killed) == KILLS  # every kill landed while the workers were consuming
    assert max(killed) < 2 * SOURCES


def test_consumers_in_several_processes_apply_each_event_once_on_sqlite(
    tmp_path: Path,
) -> None:
    path = tmp_path / "consumers.db"
    engine = sqlite_engine(path)
    store = SqlStore(engine)
    store.create_schema()
    try:
        killed: list[int] = []
        _assert_exactly_once(_run(str(path), store, _worker, kills=2, killed=killed))
        assert len(killed) == 2
    finally:
        engine.dispose()


def test_the_naive_relay_in_the_same_harness_applies_events_twice(
    postgres_store: SqlStore,
) -> None:
    url = postgres_store.bind.url.render_as_string(hide_password=False)  # type: ignore[union-attr]
    with postgres_store.bind.begin() as conn:  # type: ignore[union-attr]
        conn.exec_driver_sql("DROP TABLE IF EXISTS naive_cursor")
    effects = _run(url, postgres_store, _control_worker, kills=0)
    assert set(effects) == {f"p{n}" for n in range(1, SOURCES + 1)}  # none lost...
    with pytest.raises(AssertionError, match="more than once"):
        _assert_exactly_once(effects)  # ...but some applied twice
