"""Task moves: cxflow's transition path against one python-statemachine per task.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_flow_moves.py            # full run, writes results
    python benchmarks/bench_flow_moves.py --quick    # smoke run, writes nothing

All figures come from one run on one machine, so compare the ratios, not
absolute times across machines. Results go to
``benchmarks/results/flow_moves.json`` and ``flow_moves.md`` (included in the
docs page ``docs/benchmarks.md``).

What is measured (the same 8-status flow and move sequence for every path):

- ``cxflow move``: :func:`cxflow.tasks.commands.move_task` — the whole pure
  command: transition check, new task snapshot at version+1, history entry and
  the ``TaskMoved`` event;
- ``cxflow check``: :meth:`CompiledFlow.check_move` alone — the table lookup;
- ``statemachine per task``: what a helpdesk does when it keeps one
  python-statemachine instance per task: build the instance in the task's
  current state and send the move event;
- ``TaskService.move_task (memory)``: the service path over the in-memory
  store, serialisation and outbox included (context for sizing, not part of
  the ratio).

Bytes per task: memory held per live task (tracemalloc over many tasks),
for a cxflow task snapshot against one machine instance per task.
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import benchkit
from benchkit import best_rate, machine_info

from cxflow import Flow, MemoryStore, Status, StatusKind, TaskService, TestClock
from cxflow.flows.machine import compile_flow
from cxflow.tasks import commands
from cxflow.tasks.model import Task

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
KEYS = ("new", "triage", "doing", "review", "waiting", "qa", "done", "failed")
KINDS = (
    StatusKind.NOT_STARTED,
    StatusKind.IN_PROGRESS,
    StatusKind.IN_PROGRESS,
    StatusKind.IN_PROGRESS,
    StatusKind.WAITING,
    StatusKind.IN_PROGRESS,
    StatusKind.COMPLETED_SUCCESS,
    StatusKind.COMPLETED_FAILURE,
)
CYCLE = KEYS[1:7]  # triage -> ... -> done, then back to triage (reopen)


def make_flow() -> Flow:
    return Flow(
        id="bench",
        name="Benchmark flow",
        statuses=[
            Status(key=key, label=key.title(), kind=kind)
            for key, kind in zip(KEYS, KINDS, strict=True)
        ],
    )


def new_tasks(flow: Flow, count: int) -> list[Task]:
    return [
        commands.create_task(flow=flow, task_id=f"t{i}", title="Bench task", by="bench", at=AT)[0]
        for i in range(count)
    ]


def bench_cxflow_move(flow: Flow, tasks: int, rounds: int) -> Callable[[], int]:
    initial = new_tasks(flow, tasks)  # created once, outside the timing (snapshots are immutable)

    def run() -> int:
        snapshots = list(initial)
        for step in range(rounds):
            target = CYCLE[step % len(CYCLE)]
            for i, task in enumerate(snapshots):
                snapshots[i] = commands.move_task(task, flow, target, by="agent", at=AT)[0]
        return tasks * rounds

    return run


def bench_cxflow_check(flow: Flow, tasks: int, rounds: int) -> Callable[[], int]:
    compiled = compile_flow(flow)
    check = compiled.check_move

    def run() -> int:
        states = ["new"] * tasks
        for step in range(rounds):
            target = CYCLE[step % len(CYCLE)]
            for i, source in enumerate(states):
                check(source, target, 0)
                states[i] = target
        return tasks * rounds

    return run


def bench_machine_per_task(flow: Flow, tasks: int, rounds: int) -> Callable[[], int]:
    compiled = compile_flow(flow)
    machine_class = compiled.machine_class
    state_ids = {key: compiled.state_id(key) for key in KEYS}
    events = {key: compiled.event_name(key) for key in KEYS}

    def run() -> int:
        states = ["new"] * tasks
        for step in range(rounds):
            target = CYCLE[step % len(CYCLE)]
            for i, source in enumerate(states):
                machine = machine_class(start_value=state_ids[source])
                machine.send(events[target])
                states[i] = target
        return tasks * rounds

    return run


def service_rate(flow: Flow, tasks: int, rounds: int, repeats: int) -> float:
    """Best moves/s of ``TaskService.move_task`` on a fresh memory store per
    repeat, timing the moves only (not the setup)."""
    rates = []
    for _ in range(repeats):
        service = TaskService(MemoryStore(), TestClock(AT))
        service.create_flow("bench", flow, by="bench")
        ids = [
            service.create_task("bench", flow_id=flow.id, title="Bench", by="b", task_id=f"t{i}").id
            for i in range(tasks)
        ]
        start = time.perf_counter()
        for step in range(rounds):
            target = CYCLE[step % len(CYCLE)]
            for task_id in ids:
                service.move_task("bench", task_id, target, by="agent")
        rates.append(tasks * rounds / (time.perf_counter() - start))
    return max(rates)


def bytes_per(make: Callable[[int], list[Any]], count: int) -> float:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    held = make(count)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    total = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    del held
    return total / count


def measure(quick: bool) -> dict[str, Any]:
    flow = make_flow()
    tasks, rounds, repeats = (50, 6, 2) if quick else (2_000, 12, 5)
    machine_tasks, machine_rounds = (20, 3) if quick else (300, 6)
    compiled = compile_flow(flow)

    move_best, move_median = best_rate(bench_cxflow_move(flow, tasks, rounds), repeats)
    check_best, check_median = best_rate(bench_cxflow_check(flow, tasks, rounds), repeats)
    machine_best, machine_median = best_rate(
        bench_machine_per_task(flow, machine_tasks, machine_rounds), repeats
    )
    service_best = service_rate(flow, tasks // 4 or 1, rounds, repeats)

    def moved_tasks(count: int) -> list[Task]:
        snapshots = new_tasks(flow, count)
        for step in range(len(CYCLE)):
            target = CYCLE[step]
            snapshots = [
                commands.move_task(t, flow, target, by="agent", at=AT)[0] for t in snapshots
            ]
        return snapshots

    def machines(count: int) -> list[Any]:
        return [compiled.machine_class(start_value=compiled.state_id("done")) for _ in range(count)]

    sample = 200 if quick else 2_000
    task_bytes = bytes_per(moved_tasks, sample)
    machine_bytes = bytes_per(machines, sample // 4)

    return {
        "benchmark": "flow_moves",
        "machine": machine_info(),
        "workload": {
            "flow_statuses": len(KEYS),
            "tasks": tasks,
            "rounds": rounds,
            "machine_tasks": machine_tasks,
            "machine_rounds": machine_rounds,
            "repeats": repeats,
            "quick": quick,
        },
        "moves_per_second": {
            "cxflow_move": round(move_best),
            "cxflow_move_median": round(move_median),
            "cxflow_check": round(check_best),
            "cxflow_check_median": round(check_median),
            "statemachine_per_task": round(machine_best),
            "statemachine_per_task_median": round(machine_median),
            "service_move_memory_store": round(service_best),
        },
        "ratios": {
            "cxflow_move_vs_statemachine_per_task": round(move_best / machine_best, 1),
            "cxflow_move_vs_statemachine_per_task_median": round(
                move_median / machine_median, 1
            ),
            "cxflow_check_vs_statemachine_per_task": round(check_best / machine_best, 1),
        },
        "bytes_per_task": {
            "cxflow_task_after_6_moves": round(task_bytes),
            "statemachine_instance": round(machine_bytes),
        },
        "target": "cxflow move at least 100x faster than one machine per task",
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    rates = result["moves_per_second"]
    ratios = result["ratios"]
    size = result["bytes_per_task"]
    return "\n".join(
        [
            f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
            f"{m['implementation']} {m['python']}, {m['platform']}; one process, one run.",
            "",
            "| path | moves/s (best) | moves/s (median) | vs one machine per task |",
            "|---|---:|---:|---:|",
            f"| cxflow `move_task` (snapshot + history + event) | {rates['cxflow_move']:,} "
            f"| {rates['cxflow_move_median']:,} "
            f"| **{ratios['cxflow_move_vs_statemachine_per_task']}x** |",
            f"| cxflow `CompiledFlow.check_move` (table only) | {rates['cxflow_check']:,} "
            f"| {rates['cxflow_check_median']:,} "
            f"| {ratios['cxflow_check_vs_statemachine_per_task']}x |",
            f"| python-statemachine instance per task + `send` "
            f"| {rates['statemachine_per_task']:,} "
            f"| {rates['statemachine_per_task_median']:,} | 1x |",
            f"| `TaskService.move_task` on `MemoryStore` (load, serialise, outbox) "
            f"| {rates['service_move_memory_store']:,} | | |",
            "",
            "| memory per task | bytes |",
            "|---|---:|",
            f"| cxflow task snapshot (after 6 moves: history, events not kept) "
            f"| {size['cxflow_task_after_6_moves']:,} |",
            f"| python-statemachine instance | {size['statemachine_instance']:,} |",
            "",
            f"Target: {result['target']}.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    return benchkit.main(argv, name="flow_moves", doc=__doc__ or "", measure=measure, render=render)


if __name__ == "__main__":
    raise SystemExit(main())
