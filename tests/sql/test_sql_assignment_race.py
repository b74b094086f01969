"""Several OS processes route one tenant's conversations through one database.

Each worker process has its own engine, store and ``AssignmentService`` (so
its own in-memory scheduler) and routes and closes conversations as fast as
it can. The routing-version fence must keep them honest: afterwards no agent
holds more than its capacity, no conversation is held twice or lost, no agent
with free capacity is idle while a conversation waits, and the outbox tells
the same story as the stored records.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cxflow import (
    Agent,
    AssignmentService,
    ConflictError,
    Presence,
    Routing,
    TestClock,
)
from cxflow.events import AgentAssigned, AssignmentFinished, ConversationQueued
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.testing import T0

TENANT = "acme"
WORKERS = 4
ROUNDS = 15
AGENTS = {"mina": 2, "joon": 1, "sora": 2}


def _engine(target: str) -> sa.Engine:
    if target.startswith("postgresql"):
        return sa.create_engine(target, pool_size=1, max_overflow=0)
    return sqlite_engine(target, busy_timeout=60)


def _worker(target: str, worker: int, start: Any, results: Any) -> None:
    """Route two conversations, then close one, ROUNDS times; report what landed."""
    engine = _engine(target)
    service = AssignmentService(SqlStore(engine), TestClock(T0 + timedelta(minutes=worker)))
    routed: list[str] = []
    closed: list[str] = []
    gave_up = 0
    try:
        start.wait(timeout=60)
        for round_ in range(ROUNDS):
            for k in range(2):
                cid = f"w{worker}-{round_}-{k}"
                routing = Routing(
                    conversation_id=cid,
                    channel="chat",
                    arrived_at=T0 + timedelta(seconds=round_ * 10 + k),
                    plan=("enterprise", "smb")[k],
                )
                try:
                    service.route(TENANT, routing, by=f"widget-{worker}")
                except ConflictError:
                    gave_up += 1
                    continue
                routed.append(cid)
            if routed[len(closed) :]:
                cid = routed[len(closed)]
                try:
                    service.close(TENANT, cid, by=f"agent-{worker}")
                except ConflictError:
                    gave_up += 1
                    continue
                closed.append(cid)
    finally:
        engine.dispose()
        results.put((routed, closed, gave_up))


def _run_race(target: str, store: SqlStore) -> None:
    setup = AssignmentService(store, TestClock(T0))
    for name, capacity in AGENTS.items():
        setup.save_agent(
            TENANT, Agent(id=name, presence=Presence.ONLINE, capacity=capacity), by="admin"
        )
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(target, n, start, results)) for n in range(WORKERS)
    ]
    for process in workers:
        process.start()
    reports = [results.get(timeout=180) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0, "a worker crashed (an error other than ConflictError)"

    routed = {cid for r, _c, _g in reports for cid in r}
    closed = {cid for _r, c, _g in reports for cid in c}
    assert routed, "nothing was routed"
    print(f"{store.dialect}: {len(routed)} routed, {len(closed)} closed, "
          f"{sum(g for *_x, g in reports)} gave up")

    records = {r.conversation_id: r for r in store.list_routings(TENANT)}
    assert set(records) == routed - closed, "a conversation was lost or not finished"
    held = Counter(r.agent for r in records.values() if r.agent is not None)
    for name, capacity in AGENTS.items():
        assert held[name] <= capacity, f"{name} is over capacity"
    if any(r.agent is None for r in records.values()):
        assert all(held[name] == capacity for name, capacity in AGENTS.items()), (
            "an agent with free capacity is idle while a conversation waits"
        )

    # The outbox tells the same story: replaying it gives the stored holders.
    holder: dict[str, str | None] = {}
    for stored in store.read_events(TENANT, limit=100_000):
        event = stored.event
        if isinstance(event, ConversationQueued):
            holder[event.conversation_id] = None
        elif isinstance(event, AgentAssigned):
            assert holder.get(event.conversation_id) is None, "assigned twice"
            holder[event.conversation_id] = event.agent_id
        elif isinstance(event, AssignmentFinished):
            assert holder.pop(event.conversation_id) == event.agent_id
    assert holder == {cid: r.agent for cid, r in records.items()}

    # A fresh process rebuilds the same scheduler from the store.
    rebuilt = AssignmentService(store, TestClock(T0)).scheduler(TENANT)
    for name in AGENTS:
        assert rebuilt.held_by(name) == {cid for cid, r in records.items() if r.agent == name}


def test_processes_routing_on_sqlite_keep_every_invariant(tmp_path: Path) -> None:
    path = tmp_path / "race.db"
    engine = sqlite_engine(path)
    store = SqlStore(engine)
    store.create_schema()
    try:
        _run_race(str(path), store)
    finally:
        engine.dispose()


def test_processes_routing_on_postgres_keep_every_invariant(postgres_store: SqlStore) -> None:
    url = postgres_store.bind.engine.url.render_as_string(hide_password=False)
    _run_race(url, postgres_store)
