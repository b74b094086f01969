"""The cost of one in-memory commit, at 1,000 and at 100,000 stored routings.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_commit.py            # writes results/commit.{json,md}
    python benchmarks/bench_commit.py --quick    # smoke run, writes nothing

Each measured commit is what a routing decision writes: a new waiting
routing record, the next version of a stored one (assigned), the finish of
another stored one, the tenant's routing version and one event. The number
of stored routings stays the same from commit to commit (one added, one
finished).

Both stores are built in the same run and measured in alternating rounds of
200 commits, so drift on a shared machine hits both; each figure is the best
round, in CPU time of this process. The target: a commit at 100,000 stored
routings costs at most 1.2 times one at 1,000, because ``MemoryStore.commit``
does no work proportional to what is stored
(``tests/test_memory_store.py`` checks that without a clock).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).parent))
import benchkit
from benchkit import machine_info

from cxflow import ChangeSet, MemoryStore
from cxflow.assignment.model import Routing
from cxflow.events import ConversationAssigned

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TENANT = "bench"
TARGET_RATIO = 1.2
SEED_BATCH = 1_000


def _routing(number: int) -> Routing:
    return Routing(
        conversation_id=f"c{number:07d}",
        channel="chat",
        arrived_at=AT + timedelta(seconds=number),
        skills=("billing", "english"),
    )


class Workload:
    """A store holding ``size`` routings and the commits that keep it at ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.store = MemoryStore()
        self.next_new = size  # the number of the next routing to add
        self.oldest = 0  # the oldest stored routing: finished next
        self.version = 0
        for start in range(0, size, SEED_BATCH):
            self.version += 1
            batch = tuple(_routing(n) for n in range(start, min(size, start + SEED_BATCH)))
            self.store.commit(TENANT, ChangeSet(routings=batch, routing_version=self.version))

    def changes(self, count: int) -> list[ChangeSet]:
        """The next ``count`` commits, built ahead so only ``commit`` is timed."""
        sets = []
        for _ in range(count):
            self.version += 1
            assigned = attrs.evolve(
                _routing(self.oldest + 1), agent="ana", assigned_at=AT, version=2
            )
            sets.append(
                ChangeSet(
                    routings=(_routing(self.next_new), assigned),
                    finished_routings=(f"c{self.oldest:07d}",),
                    routing_version=self.version,
                    events=(
                        ConversationAssigned(
                            conversation_id=assigned.conversation_id,
                            at=AT,
                            by="bench",
                            customer_id="cu-1",
                            assignee="ana",
                        ),
                    ),
                )
            )
            # The assigned routing is the one finished by the next commit.
            self.next_new += 1
            self.oldest += 1
        return sets

    def run(self, sets: list[ChangeSet]) -> float:
        """Commit ``sets``; return the CPU seconds it took (this process only, so
        time lost to other processes on a shared machine is not counted)."""
        commit = self.store.commit
        start = time.process_time()
        for changes in sets:
            commit(TENANT, changes)
        return time.process_time() - start


def measure(quick: bool) -> dict[str, Any]:
    small_size, large_size, commits, rounds = (
        (100, 2_000, 20, 2) if quick else (1_000, 100_000, 200, 60)
    )
    workloads = {size: Workload(size) for size in (small_size, large_size)}
    best = {size: float("inf") for size in workloads}
    for round_number in range(rounds):
        order = list(workloads.items())
        if round_number % 2:
            order.reverse()  # neither size always runs first
        for size, workload in order:
            sets = workload.changes(commits)
            best[size] = min(best[size], workload.run(sets) / commits)
    for size, workload in workloads.items():
        stored = len(workload.store.list_routings(TENANT))
        assert stored == size, f"the workload drifted: {stored} routings stored, not {size}"
    ratio = best[large_size] / best[small_size]
    return {
        "benchmark": "commit",
        "machine": machine_info(),
        "workload": {
            "commit": "1 new routing, 1 routing v2, 1 finished routing, routing version, 1 event",
            "commits_per_round": commits,
            "rounds": rounds,
            "quick": quick,
        },
        "us_per_commit": {str(size): round(best[size] * 1e6, 2) for size in workloads},
        "sizes": [small_size, large_size],
        "ratio_large_vs_small": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "met": ratio <= TARGET_RATIO,
    }


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    w = result["workload"]
    small, large = result["sizes"]
    us = result["us_per_commit"]
    verdict = "met" if result["met"] else "NOT met"
    return "\n".join(
        [
            f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
            f"{m['implementation']} {m['python']}; `MemoryStore.commit` of {w['commit']}; "
            f"best of {w['rounds']} rounds of {w['commits_per_round']:,} commits.",
            "",
            "| stored routings | µs per commit |",
            "|---:|---:|",
            f"| {small:,} | {us[str(small)]} |",
            f"| {large:,} | {us[str(large)]} |",
            "",
            f"{large:,} vs {small:,} stored: {result['ratio_large_vs_small']}x "
            f"(target at most {result['target_ratio']}x: {verdict}).",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    return benchkit.main(argv, name="commit", doc=__doc__ or "", measure=measure, render=render)


if __name__ == "__main__":
    raise SystemExit(main())
