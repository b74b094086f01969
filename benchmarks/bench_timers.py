"""Timer queue: schedules, cancels, moves and fires per second, and bytes per timer.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_timers.py            # full run, writes results
    python benchmarks/bench_timers.py --quick    # smoke run, writes nothing

All figures come from one run on one machine and one core. Results go to
``benchmarks/results/timers.json`` and ``timers.md``.

Workload (``cxflow.timers.queue.TimerQueue``, the in-process queue):

1. schedule 1,000,000 timers (ids ``conv-0``, ``conv-1``, ...) with deadlines
   spread at random over 7 days;
2. cancel 30% of them, picked at random;
3. move 10% of the rest to a new random deadline (the SLA-reset pattern);
4. advance time a minute at a time and fire everything due
   (``fire_due`` once per minute, about 70 fires a call), until all fired.

Ids and deadline datetimes are built before the clock starts, as a host
already holds them. Rates are the best of a few repeats (the median is
reported too); each repeat starts from an empty queue, with the garbage
collector on.

Memory is measured with ``tracemalloc`` after steps 1 and 2 (700,000 timers
pending, 300,000 cancelled and still remembered): once with the id strings
created inside the measurement and held only by the queue ("incl. ids"),
once with ids the caller already holds ("structure only"). Both are divided
by the **pending** count; the 250-byte target applies to the structure only.
"""

from __future__ import annotations

import gc
import random
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import benchkit
from benchkit import machine_info

from cxflow.timers.queue import TimerQueue

T0 = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)
SPREAD = timedelta(days=7)
STEP = timedelta(minutes=1)
CANCELLED = 0.3
MOVED = 0.1
TARGET_FIRES = 200_000
TARGET_SCHEDULES = 200_000
TARGET_BYTES = 250


class Workload:
    """Ids, deadlines and the random choices of one run, built once."""

    def __init__(self, timers: int, seed: int = 20260105) -> None:
        rnd = random.Random(seed)
        span = int(SPREAD / timedelta(microseconds=1))
        self.timers = timers
        self.ids = [f"conv-{i}" for i in range(timers)]
        self.deadlines = [T0 + timedelta(microseconds=rnd.randrange(span)) for _ in range(timers)]
        self.cancelled = rnd.sample(range(timers), int(timers * CANCELLED))
        gone = set(self.cancelled)
        survivors = [i for i in range(timers) if i not in gone]
        self.moved = rnd.sample(survivors, int(len(survivors) * MOVED))
        self.new_deadlines = [T0 + timedelta(microseconds=rnd.randrange(span)) for _ in self.moved]
        minutes = int(SPREAD / STEP) + 1
        self.instants = [T0 + STEP * step for step in range(1, minutes + 1)]
        self.pending = timers - len(self.cancelled)


def timed_run(work: Workload) -> dict[str, float]:
    """One pass of the workload on a fresh queue; operations per second per phase."""
    queue = TimerQueue()
    ids, deadlines = work.ids, work.deadlines
    schedule = queue.schedule

    start = time.perf_counter()
    for timer_id, deadline in zip(ids, deadlines, strict=True):
        schedule(timer_id, deadline)
    schedules = work.timers / (time.perf_counter() - start)

    cancel_ids = [ids[i] for i in work.cancelled]
    start = time.perf_counter()
    for timer_id in cancel_ids:
        queue.cancel(timer_id)
    cancels = len(cancel_ids) / (time.perf_counter() - start)

    move_ids = [ids[i] for i in work.moved]
    start = time.perf_counter()
    for timer_id, deadline in zip(move_ids, work.new_deadlines, strict=True):
        schedule(timer_id, deadline)
    moves = len(move_ids) / (time.perf_counter() - start)

    fired = 0
    fire_due = queue.fire_due
    start = time.perf_counter()
    for instant in work.instants:
        fired += len(fire_due(instant))
    fires = fired / (time.perf_counter() - start)
    if fired != work.pending or len(queue):
        raise AssertionError(f"fired {fired} of {work.pending} pending timers")
    return {"schedules": schedules, "cancels": cancels, "moves": moves, "fires": fires}


def held_bytes(work: Workload, ids_inside: bool) -> tuple[int, int]:
    """Bytes traced after scheduling every timer and cancelling 30%, and the
    traced peak during it (both relative to the start, the queue still alive)."""
    ids = None if ids_inside else work.ids
    cancelled = work.cancelled
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    queue = TimerQueue()
    for i, deadline in enumerate(work.deadlines):
        queue.schedule(f"conv-{i}" if ids is None else ids[i], deadline)
    for i in cancelled:
        queue.cancel(f"conv-{i}" if ids is None else ids[i])
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if len(queue) != work.pending:
        raise AssertionError("unexpected pending count")
    del queue
    return current - base, peak - base


def measure(quick: bool) -> dict[str, Any]:
    timers, repeats = (2_000, 1) if quick else (1_000_000, 3)
    work = Workload(timers)
    runs = [timed_run(work) for _ in range(repeats)]
    rates: dict[str, int] = {}
    for phase in ("schedules", "cancels", "moves", "fires"):
        values = [run[phase] for run in runs]
        rates[phase] = round(max(values))
        rates[f"{phase}_median"] = round(statistics.median(values))

    with_ids, with_ids_peak = held_bytes(work, ids_inside=True)
    structure, structure_peak = held_bytes(work, ids_inside=False)
    pending = work.pending
    size = {
        "incl_ids": round(with_ids / pending, 1),
        "structure_only": round(structure / pending, 1),
        "structure_only_per_scheduled": round(structure / timers, 1),
        "peak_incl_ids": round(with_ids_peak / pending, 1),
        "peak_structure_only": round(structure_peak / pending, 1),
    }
    # ru_maxrss is in KiB on Linux: the whole process, workload lists and tracemalloc included
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    return {
        "benchmark": "timers",
        "machine": machine_info(),
        "workload": {
            "timers": timers,
            "spread_days": SPREAD.days,
            "cancelled_fraction": CANCELLED,
            "cancelled": len(work.cancelled),
            "moved_fraction_of_rest": MOVED,
            "moved": len(work.moved),
            "pending_when_measured": pending,
            "fire_due_calls": len(work.instants),
            "fire_due_step_seconds": int(STEP.total_seconds()),
            "repeats": repeats,
            "quick": quick,
        },
        "ops_per_second": rates,
        "bytes_per_pending_timer": size,
        "memory": {
            "traced_structure_mib": round(structure / 2**20, 1),
            "traced_incl_ids_mib": round(with_ids / 2**20, 1),
            "traced_peak_incl_ids_mib": round(with_ids_peak / 2**20, 1),
            "process_peak_rss_mib": round(peak_rss_mib, 1),
        },
        "targets": {
            "fires_per_second": {"target": TARGET_FIRES, "met": rates["fires"] >= TARGET_FIRES},
            "schedules_per_second": {
                "target": TARGET_SCHEDULES,
                "met": rates["schedules"] >= TARGET_SCHEDULES,
            },
            "bytes_per_pending_timer_structure_only": {
                "target": TARGET_BYTES,
                "met": size["structure_only"] <= TARGET_BYTES,
            },
        },
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    w = result["workload"]
    rates = result["ops_per_second"]
    size = result["bytes_per_pending_timer"]
    memory = result["memory"]
    targets = result["targets"]

    def met(name: str) -> str:
        return "met" if targets[name]["met"] else "**not met**"

    return "\n".join(
        [
            f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
            f"{m['implementation']} {m['python']}, {m['platform']}; one process, one core.",
            "",
            f"Workload: {w['timers']:,} timers over {w['spread_days']} days; "
            f"{w['cancelled']:,} cancelled ({w['cancelled_fraction']:.0%}), "
            f"{w['moved']:,} of the rest moved, the rest fired by {w['fire_due_calls']:,} "
            f"`fire_due` calls (one per {w['fire_due_step_seconds']} s of deadlines); "
            f"best of {w['repeats']}.",
            "",
            "| operation | per second (best) | per second (median) | target |",
            "|---|---:|---:|---|",
            f"| `schedule` (new timer) | {rates['schedules']:,} | {rates['schedules_median']:,} "
            f"| >= {TARGET_SCHEDULES:,}: {met('schedules_per_second')} |",
            f"| `cancel` | {rates['cancels']:,} | {rates['cancels_median']:,} | |",
            f"| `schedule` (move a pending timer) | {rates['moves']:,} "
            f"| {rates['moves_median']:,} | |",
            f"| fires (via `fire_due`) | {rates['fires']:,} | {rates['fires_median']:,} "
            f"| >= {TARGET_FIRES:,}: {met('fires_per_second')} |",
            "",
            f"| memory ({w['pending_when_measured']:,} pending, {w['cancelled']:,} cancelled) "
            "| bytes per pending timer | target |",
            "|---|---:|---|",
            f"| queue structure (ids held by the caller) | {size['structure_only']:,} "
            f"| <= {TARGET_BYTES}: {met('bytes_per_pending_timer_structure_only')} |",
            f"| queue incl. its id strings | {size['incl_ids']:,} | |",
            f"| traced peak while building, incl. id strings | {size['peak_incl_ids']:,} | |",
            "",
            f"Traced: structure {memory['traced_structure_mib']:,} MiB, incl. ids "
            f"{memory['traced_incl_ids_mib']:,} MiB (peak {memory['traced_peak_incl_ids_mib']:,}"
            f" MiB); process peak RSS {memory['process_peak_rss_mib']:,} MiB (benchmark "
            "inputs and tracemalloc included).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    return benchkit.main(argv, name="timers", doc=__doc__ or "", measure=measure, render=render)


if __name__ == "__main__":
    raise SystemExit(main())
