"""How fast a consumer follows the log: events read and applied per second.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_consumers.py            # writes results/consumers.{json,md}
    python benchmarks/bench_consumers.py --quick    # smoke run, writes nothing

    # PostgreSQL too (a throwaway database: cxflow's tables are dropped and recreated)
    export CXFLOW_BENCH_POSTGRES_URL=postgresql+psycopg://user@127.0.0.1:5432/cxflow_bench

The log is a support day of task events written through the engine on a
memory store (tasks created with their to-dos, then moved round the flow),
each event with its envelope; the SQL stores get a copy of it. A
``cxflow.Consumer`` with a small projection as its handler (events counted
per type and per subject kind, the last position kept) reads the whole log
from position 0, committing its cursor after every batch, at several batch
sizes. Each figure is the best of a few runs, each a new consumer name (a
new cursor), in wall-clock time (the SQL stores' time is partly the
database's); the median is given too.

Targets (issue 11): at least 100,000 events/s from the memory store, and at
least 20,000 events/s from SQLite and PostgreSQL with batches of 1,000.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import benchkit
from bench_flow_moves import CYCLE, make_flow
from benchkit import machine_info

from cxflow import ChangeSet, Consumer, Engine, MemoryStore, TestClock
from cxflow.app.consumers import Batch
from cxflow.events import Event

NAME = "consumers"
TENANT = "acme"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
TARGET_MEMORY = 100_000
TARGET_SQL = 20_000
SQL_BATCH = 1_000


class Projection:
    """The handler: counts per event type and subject kind, and the last position."""

    def __init__(self) -> None:
        self.types: Counter[str] = Counter()
        self.subjects: Counter[str] = Counter()
        self.last = 0

    def __call__(self, batch: Batch) -> None:
        types, subjects = self.types, self.subjects
        for stored in batch.events:
            event = stored.event
            types[event.type] += 1
            envelope = event.envelope
            subjects[envelope.subject_kind if envelope is not None else "?"] += 1
        self.last = batch.events[-1].position


def build_log(events: int) -> list[Event]:
    """At least ``events`` events of a support day, through the engine."""
    clock = TestClock(T0)
    store = MemoryStore()
    tasks = Engine(clock=clock).session(store).tasks
    flow = tasks.create_flow(TENANT, make_flow(), by="bench")
    written = 0
    number = 0
    while written < events:
        task_id = f"t{number:06d}"
        tasks.create_task(TENANT, flow_id=flow.id, title=f"Task {number}", by="bench",
                          task_id=task_id)
        for target in CYCLE[:3]:
            clock.advance(seconds=7)
            tasks.move_task(TENANT, task_id, target, by="agent")
        number += 1
        if number % 200 == 0:
            written = len(store.read_events(TENANT, after=written, limit=10**9)) + written
    return [stored.event for stored in store.read_events(TENANT, limit=10**9)][:events]


def copy_log(log: list[Event], store: Any) -> None:
    for start in range(0, len(log), 1_000):
        store.commit(TENANT, ChangeSet(events=tuple(log[start : start + 1_000])))


def consume(store: Any, name: str, batch_size: int, expected: int) -> float:
    """Read the whole log with a new consumer; return events per second."""
    projection = Projection()
    consumer = Consumer(store, name, projection, batch_size=batch_size, clock=TestClock(T0))
    start = time.perf_counter()
    handled = consumer.run(TENANT)
    elapsed = time.perf_counter() - start
    assert handled == expected == projection.last == sum(projection.types.values())
    return handled / elapsed


def rates(store: Any, label: str, batch_size: int, expected: int, repeats: int) -> dict[str, Any]:
    found = [consume(store, f"{label}-{batch_size}-{n}", batch_size, expected)
             for n in range(repeats)]
    return {
        "batch_size": batch_size,
        "events_per_second": round(max(found)),
        "events_per_second_median": round(statistics.median(found)),
        "runs": repeats,
    }


@contextmanager
def sqlite_store() -> Iterator[Any]:
    from cxflow.storage.sql import SqlStore, sqlite_engine

    with tempfile.TemporaryDirectory() as folder:
        engine = sqlite_engine(Path(folder) / "bench.db")
        try:
            store = SqlStore(engine)
            store.create_schema()
            yield store
        finally:
            engine.dispose()


@contextmanager
def postgres_store(url: str) -> Iterator[Any]:
    import sqlalchemy as sa

    from cxflow.storage.sql import SqlStore
    from cxflow.storage.sql.schema import metadata

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            metadata.drop_all(conn)
        store = SqlStore(engine)
        store.create_schema()
        yield store
    finally:
        engine.dispose()


def measure(quick: bool) -> dict[str, Any]:
    memory_events, sql_events, repeats = (2_000, 1_000, 2) if quick else (200_000, 50_000, 3)
    memory_batches = (100, 1_000) if quick else (100, 1_000, 5_000)
    log = build_log(memory_events)
    memory = MemoryStore()
    copy_log(log, memory)
    result: dict[str, Any] = {
        "benchmark": NAME,
        "machine": machine_info(),
        "workload": {
            "memory_events": memory_events,
            "sql_events": sql_events,
            "event_types": dict(Counter(event.type for event in log)),
            "quick": quick,
        },
        "memory": [rates(memory, "memory", size, memory_events, repeats)
                   for size in memory_batches],
        "sql": {},
    }
    with sqlite_store() as store:
        copy_log(log[:sql_events], store)
        result["sql"]["sqlite_file"] = rates(store, "sqlite", SQL_BATCH, sql_events, repeats)
    url = os.environ.get("CXFLOW_BENCH_POSTGRES_URL")
    if url:
        with postgres_store(url) as store:
            copy_log(log[:sql_events], store)
            result["sql"]["postgresql"] = rates(store, "pg", SQL_BATCH, sql_events, repeats)
    best_memory = max(row["events_per_second"] for row in result["memory"])
    result["targets"] = {
        "memory": {"measured": best_memory, "target": TARGET_MEMORY,
                   "met": best_memory >= TARGET_MEMORY},
        **{
            store: {"measured": row["events_per_second"], "target": TARGET_SQL,
                    "met": row["events_per_second"] >= TARGET_SQL}
            for store, row in result["sql"].items()
        },
    }
    return result


def render(result: dict[str, Any]) -> str:
    m, w = result["machine"], result["workload"]
    lines = [
        f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
        f"{m['implementation']} {m['python']}: a `Consumer` reading the whole log from "
        f"position 0 into a counting projection, committing its cursor after each batch; "
        f"best (median) of {result['memory'][0]['runs']} runs, wall clock. "
        f"{w['memory_events']:,} events on the memory store, {w['sql_events']:,} on the "
        "SQL stores.",
        "",
        "| store | batch size | events/s | target | met |",
        "|---|---:|---:|---:|---|",
    ]
    targets = result["targets"]
    for row in result["memory"]:
        lines.append(
            f"| memory | {row['batch_size']:,} | {row['events_per_second']:,} "
            f"({row['events_per_second_median']:,}) | ≥ {TARGET_MEMORY:,} | "
            f"{'yes' if row['events_per_second'] >= TARGET_MEMORY else 'no'} |"
        )
    labels = {"sqlite_file": "SQLite file (WAL, synchronous=NORMAL)", "postgresql": "PostgreSQL"}
    for store, row in result["sql"].items():
        lines.append(
            f"| {labels[store]} | {row['batch_size']:,} | {row['events_per_second']:,} "
            f"({row['events_per_second_median']:,}) | ≥ {TARGET_SQL:,} | "
            f"{'yes' if targets[store]['met'] else 'no'} |"
        )
    if "postgresql" not in result["sql"]:
        lines += ["", "PostgreSQL: not measured (CXFLOW_BENCH_POSTGRES_URL not set)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return benchkit.main(argv, name=NAME, doc=__doc__ or "", measure=measure, render=render)


if __name__ == "__main__":
    raise SystemExit(main())
