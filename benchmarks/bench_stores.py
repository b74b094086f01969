"""Tasks created and moved per second through each store, in one run.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_stores.py            # memory + SQLite (+ PostgreSQL)
    python benchmarks/bench_stores.py --quick    # smoke run, writes nothing

PostgreSQL is included when ``CXFLOW_BENCH_POSTGRES_URL`` points at a
**throwaway** database: the benchmark drops and recreates cxflow's tables
there. ``eval "$(scripts/pg-test-server.sh start)"`` starts a throwaway
server on loopback; then
``CXFLOW_BENCH_POSTGRES_URL=$CXFLOW_TEST_POSTGRES_URL python benchmarks/bench_stores.py``.
That server runs with fsync off, which flatters write rates compared to a
durable production server. Results go to
``benchmarks/results/stores.json`` and ``stores.md``, included in
``docs/benchmarks.md``.

Every figure goes through ``TaskService`` — load, pure command, serialise,
versioned write and outbox append in one transaction — from one process,
one call at a time, so it is the per-request cost a host sees, not the
throughput of many concurrent workers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import benchkit
from bench_flow_moves import CYCLE, make_flow
from benchkit import machine_info

from cxflow import MemoryStore, Store, TaskService, TestClock

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "bench"


@contextmanager
def memory_store() -> Iterator[Store]:
    yield MemoryStore()


@contextmanager
def sqlite_store() -> Iterator[Store]:
    from cxflow.storage.sql import SqlStore, sqlite_engine

    with tempfile.TemporaryDirectory() as folder:
        engine = sqlite_engine(Path(folder) / "bench.db")
        store = SqlStore(engine)
        store.create_schema()
        try:
            yield store
        finally:
            engine.dispose()


@contextmanager
def postgres_store(url: str) -> Iterator[Store]:
    import sqlalchemy as sa

    from cxflow.storage.sql import SqlStore

    engine = sa.create_engine(url)
    store = SqlStore(engine)
    store.drop_schema()
    store.create_schema()
    try:
        yield store
    finally:
        store.drop_schema()
        engine.dispose()


def measure_store(make: Callable[[], Any], tasks: int, moves: int) -> dict[str, float]:
    """Create ``tasks`` tasks, then move each ``moves`` times; return the rates."""
    with make() as store:
        service = TaskService(store, TestClock(AT))
        flow = service.create_flow(TENANT, make_flow(), by="bench")
        start = time.perf_counter()
        for i in range(tasks):
            service.create_task(TENANT, flow_id=flow.id, title=f"Task {i}", by="b", task_id=f"t{i}")
        created = time.perf_counter() - start
        start = time.perf_counter()
        for step in range(moves):
            target = CYCLE[step % len(CYCLE)]
            for i in range(tasks):
                service.move_task(TENANT, f"t{i}", target, by="agent")
        moved = time.perf_counter() - start
    return {
        "creates_per_second": round(tasks / created),
        "moves_per_second": round(tasks * moves / moved),
        "ms_per_create": round(created / tasks * 1000, 3),
        "ms_per_move": round(moved / (tasks * moves) * 1000, 3),
    }


def measure(quick: bool) -> dict[str, Any]:
    tasks, moves = (20, 2) if quick else (2_000, 3)
    stores: dict[str, Callable[[], Any]] = {"memory": memory_store, "sqlite_file": sqlite_store}
    url = os.environ.get("CXFLOW_BENCH_POSTGRES_URL")
    if url:
        stores["postgresql"] = lambda: postgres_store(url)
    results = {name: measure_store(make, tasks, moves) for name, make in stores.items()}
    return {
        "benchmark": "stores",
        "machine": machine_info(),
        "workload": {"tasks": tasks, "moves_per_task": moves, "quick": quick},
        "stores": results,
        "postgresql": "measured" if url else "skipped: CXFLOW_BENCH_POSTGRES_URL not set",
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    w = result["workload"]
    lines = [
        f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
        f"{m['implementation']} {m['python']}; one process, one call at a time, "
        f"{w['tasks']:,} tasks moved {w['moves_per_task']} times each.",
        "",
        "| store | creates/s | moves/s | ms per create | ms per move |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in result["stores"].items():
        lines.append(
            f"| {name} | {r['creates_per_second']:,} | {r['moves_per_second']:,} "
            f"| {r['ms_per_create']} | {r['ms_per_move']} |"
        )
    if result["postgresql"] != "measured":
        lines += ["", f"PostgreSQL {result['postgresql']}."]
    else:
        lines += [
            "",
            "PostgreSQL ran on loopback with fsync off (the throwaway test server); "
            "a durable server pays its commit flush on every write.",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return benchkit.main(argv, name="stores", doc=__doc__ or "", measure=measure, render=render)


if __name__ == "__main__":
    raise SystemExit(main())
