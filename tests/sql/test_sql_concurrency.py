"""Several OS processes write the same tasks through one database.

Each worker process builds its own engine and service and comments on shared
tasks as fast as it can. Every write must either land or raise
ConflictError; afterwards each task holds exactly the comments of the writes
that landed (no lost update), its version counts them, and the outbox holds
exactly one event per landed write.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cxflow import ConflictError, TaskService, TestClock
from cxflow.events import TaskCommented
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.testing import T0, sample_flow

TENANT = "acme"
TASKS = ("shared-1", "shared-2")
WORKERS = 4
ATTEMPTS = 30


def _engine(target: str) -> sa.Engine:
    if target.startswith("postgresql"):
        return sa.create_engine(target, pool_size=1, max_overflow=0)
    return sqlite_engine(target, busy_timeout=60)


def _worker(target: str, worker: int, start: Any, results: Any) -> None:
    """Comment ATTEMPTS times, alternating tasks; report landed writes per task."""
    engine = _engine(target)
    service = TaskService(SqlStore(engine), TestClock(T0))
    landed: Counter[str] = Counter()
    conflicts = 0
    try:
        start.wait(timeout=60)  # every process starts writing at once
        for attempt in range(ATTEMPTS):
            task_id = TASKS[(worker + attempt) % len(TASKS)]
            try:
                service.add_comment(TENANT, task_id, f"w{worker}-{attempt}", by=f"agent-{worker}")
            except ConflictError:
                conflicts += 1
                continue
            landed[task_id] += 1
    finally:
        engine.dispose()
        results.put((dict(landed), conflicts))


def _run_race(target: str, store: SqlStore) -> None:
    service = TaskService(store, TestClock(T0))
    flow = service.create_flow(TENANT, sample_flow(), by="admin")
    for task_id in TASKS:
        service.create_task(TENANT, flow_id=flow.id, title="Shared", by="admin", task_id=task_id)
    before = len(store.read_events(TENANT, limit=1000))

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(target, n, start, results))
        for n in range(WORKERS)
    ]
    for process in workers:
        process.start()
    reports = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0, "a worker crashed (an error other than ConflictError)"

    landed: Counter[str] = Counter()
    for written, _conflicts in reports:
        landed.update(written)
    conflicts = sum(c for _written, c in reports)
    # Every attempt either landed or raised ConflictError (anything else kills the worker).
    assert sum(landed.values()) + conflicts == WORKERS * ATTEMPTS
    assert sum(landed.values()) > 0
    print(f"{store.dialect}: {sum(landed.values())} landed, {conflicts} conflicts")
    for task_id in TASKS:
        task = store.get_task(TENANT, task_id)
        assert len(task.comments) == landed[task_id], "a landed write was lost"
        assert task.version == 1 + landed[task_id]
    stored = store.read_events(TENANT, after=before, limit=10_000)
    assert [e.position for e in stored] == list(range(before + 1, before + 1 + len(stored)))
    commented = Counter(e.event.task_id for e in stored if isinstance(e.event, TaskCommented))
    assert commented == landed
    assert len(stored) == sum(landed.values())


def test_processes_racing_on_sqlite_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    engine = sqlite_engine(path)
    store = SqlStore(engine)
    store.create_schema()
    try:
        _run_race(str(path), store)
    finally:
        engine.dispose()


def test_processes_racing_on_postgres_lose_no_update(postgres_store: SqlStore) -> None:
    bind = postgres_store.bind
    url = bind.engine.url.render_as_string(hide_password=False)
    _run_race(url, postgres_store)
