"""Several OS processes claim and fire the same timers through one database.

Each worker process builds its own engine and store, then repeatedly claims
due timers with a short lease and fires each one: it commits
``timer.fired(at)`` (the claimed version + 1) together with a ``TimerFired``
event. Now and then a worker stalls past its lease before firing, so another
worker re-claims the timer and the staller's commit must fail with
``ConflictError`` (the version is the fence).

Afterwards: every due timer fired exactly once (one ``TimerFired`` per
``(timer, cycle)`` in the outbox, none missing), no two claims of a timer
overlapped in time, every claim and fire is accounted for in the timer's
version, and timers that were never due (cancelled, fired, far in the future)
were never touched. Leases run on the wall clock, but nothing here asserts on
timing: stalls only make re-claims likely.
"""

from __future__ import annotations

import multiprocessing
import random
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from cxflow import ChangeSet, ConflictError
from cxflow.events import TimerFired
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.testing import T0, sample_timer
from cxflow.timers.model import Timer, TimerState

TENANT = "acme"
WORKERS = 4
DUE = 40
"""Timers due from the start (deadlines in the past); every fifth is in cycle 2."""
LEASE = timedelta(milliseconds=250)
STALL = 2 * LEASE
STALL_CHANCE = 0.15
BATCH = 3
GIVE_UP_AFTER = 90.0
"""Seconds a worker keeps going before it stops anyway (the parent then fails)."""

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def _engine(target: str) -> sa.Engine:
    if target.startswith("postgresql"):
        return sa.create_engine(target, pool_size=1, max_overflow=0)
    return sqlite_engine(target, busy_timeout=60)


def _due_histories() -> list[list[Timer]]:
    """Every snapshot of each due timer, oldest first: cycle 1 at version 1, or
    (every fifth) fired once and rescheduled, cycle 2 at version 3."""
    histories = []
    for n in range(DUE):
        timer = sample_timer(f"due-{n:02}", deadline=T0 + n * timedelta(seconds=1),
                             subject_id=f"conv-{n % 7}")
        history = [timer]
        if n % 5 == 0:
            history.append(history[-1].fired(T0 + timedelta(minutes=1)))
            history.append(history[-1].rescheduled(T0 + timedelta(minutes=n)))
        histories.append(history)
    return histories


def _idle_histories() -> list[list[Timer]]:
    """Timers no claim may touch: not pending, or not due before 2100."""
    histories = []
    for n in range(3):
        histories.append([sample_timer(f"future-{n}", deadline=FAR_FUTURE)])
        cancelled, fired = sample_timer(f"cancelled-{n}"), sample_timer(f"fired-{n}")
        histories.append([cancelled, cancelled.cancelled()])
        histories.append([fired, fired.fired(T0)])
    return histories


def _due_timers() -> list[Timer]:
    return [history[-1] for history in _due_histories()]


def _idle_timers() -> list[Timer]:
    return [history[-1] for history in _idle_histories()]


def _seed(store: SqlStore) -> None:
    for history in [*_due_histories(), *_idle_histories()]:
        for snapshot in history:
            store.commit(TENANT, ChangeSet(timers=(snapshot,)))


def _all_fired(store: SqlStore, ids: list[str]) -> bool:
    return all(store.get_timer(TENANT, timer_id).state is TimerState.FIRED for timer_id in ids)


def _worker(target: str, worker: int, start: Any, results: Any) -> None:
    """Claim and fire until every due timer has fired; report what happened."""
    engine = _engine(target)
    store = SqlStore(engine)
    name = f"worker-{worker}"
    rng = random.Random(worker)
    due_ids = [timer.id for timer in _due_timers()]
    claims: list[tuple[str, int, str, str]] = []  # (id, version, at, lease until)
    fired: list[tuple[str, int]] = []
    fenced = stalls = 0
    try:
        start.wait(timeout=60)  # every process starts claiming at once
        give_up = time.monotonic() + GIVE_UP_AFTER
        while time.monotonic() < give_up:
            batch = store.claim_timers(
                TENANT, datetime.now(UTC), worker=name, lease=LEASE, limit=BATCH
            )
            if not batch:
                if _all_fired(store, due_ids):
                    break
                time.sleep(0.01)  # leased elsewhere: wait for a fire or an expiry
                continue
            for timer in batch:
                assert timer.lease_owner == name
                assert timer.lease_until is not None
                claims.append((timer.id, timer.version, (timer.lease_until - LEASE).isoformat(),
                               timer.lease_until.isoformat()))
                if rng.random() < STALL_CHANCE:
                    stalls += 1
                    time.sleep(STALL.total_seconds())  # paused past the lease
                at = datetime.now(UTC)
                fire = timer.fire()
                event = TimerFired(
                    timer_id=fire.timer_id, kind=fire.kind, subject_id=fire.subject_id,
                    cycle=fire.cycle, deadline=fire.deadline, at=at, by=name,
                )
                try:
                    store.commit(TENANT, ChangeSet(timers=(timer.fired(at),), events=(event,)))
                except ConflictError:
                    fenced += 1
                    continue
                fired.append(fire.key)
    finally:
        engine.dispose()
        results.put({"claims": claims, "fired": fired, "fenced": fenced, "stalls": stalls})


def _run_race(target: str, store: SqlStore) -> None:
    _seed(store)
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
    reports = [results.get(timeout=GIVE_UP_AFTER + 60) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0, "a worker crashed (an error other than ConflictError)"

    due = {timer.id: timer for timer in _due_timers()}
    claims: dict[str, list[tuple[int, datetime, datetime]]] = defaultdict(list)
    for report in reports:
        for timer_id, version, at, until in report["claims"]:
            claims[timer_id].append(
                (version, datetime.fromisoformat(at), datetime.fromisoformat(until))
            )
    fired = Counter(key for report in reports for key in report["fired"])
    fenced = sum(report["fenced"] for report in reports)
    print(
        f"{store.dialect}: {sum(len(c) for c in claims.values())} claims, "
        f"{sum(fired.values())} fires, {fenced} fenced, "
        f"{sum(r['stalls'] for r in reports)} stalls"
    )

    # Every due timer fired exactly once, in the cycle it was due in.
    assert fired == Counter({(timer.id, timer.cycle): 1 for timer in due.values()})
    stored = store.read_events(TENANT, after=before, limit=10_000)
    assert [e.position for e in stored] == list(range(before + 1, before + 1 + len(stored)))
    fires = Counter((e.event.timer_id, e.event.cycle) for e in stored
                    if isinstance(e.event, TimerFired))
    assert fires == fired, "the outbox must hold one TimerFired per (timer, cycle)"
    assert len(stored) == len(due)

    for timer_id, seeded in due.items():
        final = store.get_timer(TENANT, timer_id)
        assert final.state is TimerState.FIRED
        assert final.cycle == seeded.cycle
        # Each claim wrote one version, and the winning fire one more.
        history = sorted(claims[timer_id])
        assert final.version == seeded.version + len(history) + 1
        assert [v for v, _at, _until in history] == list(
            range(seeded.version + 1, seeded.version + 1 + len(history))
        ), "two claims wrote the same version"
        for (_v, _at, until), (_next_v, next_at, _next_until) in pairwise(history):
            assert next_at >= until, "a timer was claimed while another worker's lease ran"

    for idle in _idle_timers():
        assert idle.id not in claims
        assert store.get_timer(TENANT, idle.id) == idle


def test_processes_claiming_timers_on_sqlite_fire_each_once(tmp_path: Path) -> None:
    path = tmp_path / "timers.db"
    engine = sqlite_engine(path)
    store = SqlStore(engine)
    store.create_schema()
    try:
        _run_race(str(path), store)
    finally:
        engine.dispose()


def test_processes_claiming_timers_on_postgres_fire_each_once(postgres_store: SqlStore) -> None:
    url = postgres_store.bind.engine.url.render_as_string(hide_password=False)
    _run_race(url, postgres_store)
