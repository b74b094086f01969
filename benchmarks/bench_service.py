"""The service paths a host calls, measured against the pure core in the same run
(issue 9, "Speed"): engine overhead, SQL round trips, and throughput.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_service.py            # writes results/service.{json,md}
    python benchmarks/bench_service.py --quick    # smoke run, writes nothing
    # with PostgreSQL: a throwaway database, its cxflow tables are dropped and recreated
    export CXFLOW_BENCH_POSTGRES_URL=postgresql+psycopg://user@127.0.0.1:5432/cxflow_bench
    python benchmarks/bench_service.py

Everything goes through the one write path a host uses: a ``cxflow.Engine``
built once, sessions opened on a store. All figures come from one run on one
machine; compare the ratios.

1. **Commit cost against what is stored** (memory store): ``bench_commit.py``
   is run as part of this run and its figure reported here (1,000 against
   100,000 stored routings; target at most 1.2x).
2. **Engine against the pure core** (memory store, one warm session). One
   tenant of 1,000 agents (5 skills each out of 50, capacity 1-5, the
   *target* population of ``bench_assignment.py``) is filled through the
   engine until every slot is taken and 10,000 conversations wait; a second
   tenant gets the very same routings through ``session.assignment.route``.
   The baseline is a ``cxflow.assignment.Scheduler`` restored from the first
   tenant's stored records, so it starts from exactly the same state. Then, in
   alternating rounds (the order of the three sides rotates), each side takes
   the same ``k`` closes (conversations held at the start of the round; each
   frees a slot and the queue drains one conversation into it) and the same
   ``k`` arrivals (all slots taken: they queue), so the backlog stays put:

   - pure: ``Scheduler.close`` / ``Scheduler.arrive`` (the ``Routing`` records
     built beforehand, untimed);
   - conversations: ``session.conversations.close`` /
     ``session.conversations.open_conversation`` on a tenant whose
     ``TenantSettings`` set ``assignment=AssignmentSettings()`` (opens and
     routes in one commit; the engine builds the ``Routing`` itself);
   - assignment: ``session.assignment.close`` / ``session.assignment.route``
     (the ``Routing`` records built beforehand, untimed).

   After the rounds, both tenants' schedulers must hold exactly the pure
   scheduler's state (checked). Task moves: ``session.tasks.move_task``
   against ``cxflow.tasks.commands.move_task`` on the same tasks and flow
   version, one move of every task per round, both sides at the same history
   length in each round; the stored tasks must equal the pure snapshots
   (checked). A third side writes the same moves by hand against a second
   ``MemoryStore`` (``get_task``, the command, ``commit`` of its task and
   events: no unit of work, reactors or timers), the best simple
   alternative and the floor of what the store itself costs. Times are CPU
   time of this process (``time.process_time``), so time lost to other
   processes on a shared machine is not counted. The ratio
   of a path is the service's best round over the pure side's best round
   (noise only ever adds time, so the best round is the least disturbed);
   the median over rounds of (service time / pure time) in the same round is
   reported next to it. Garbage collection stays on; after seeding,
   ``gc.collect()`` and ``gc.freeze()`` (as ``bench_assignment.py`` does).
3. **SQL statements and round trips** per call, on a SQLite file and on
   PostgreSQL, once the process is current (the tenant's scheduler built,
   caches warm): counted with SQLAlchemy events (``before_cursor_execute``,
   ``begin``/``commit``/``rollback``, pool ``checkout``/``reset``). A round
   trip is one statement, or one ``BEGIN``, ``COMMIT`` or ``ROLLBACK`` that
   reaches the database (psycopg sends ``BEGIN`` itself before a
   transaction's first statement; an end of a transaction that never began
   at the driver costs nothing). On PostgreSQL the count is checked against
   the wire: the ``ReadyForQuery`` messages in psycopg's libpq trace. Three
   ways a host can call: one warm session on an engine-bound ``SqlStore``;
   a new session per call (a web request); the call inside the host's own
   transaction (``SqlStore(connection)``, host ``BEGIN``/``COMMIT`` counted).
   ``tests/sql/test_sql_round_trips.py`` holds the warm-session counts as
   bounds that must not regress.
4. **Throughput** from one process through the engine, one call at a time,
   a new session per call (as a request handler does), wall-clock time, on a
   SQLite file (``cxflow.storage.sql.sqlite_engine``) and on loopback
   PostgreSQL: routings/s (``open_conversation`` with routing, and
   ``assignment.route``), closes/s and task moves/s, at the same size as 2
   (the records written by the memory run are copied in at version 1); the
   target is judged on the best round, the median round is shown next to it.
   SQLite runs twice: as ``sqlite_engine`` makes the file (WAL with
   ``synchronous=NORMAL``: the log is synced at checkpoints, as little as the
   PostgreSQL test server with ``fsync=off`` syncs) and with
   ``synchronous=FULL`` (a sync on every commit). As in 2, what exists once
   the store is seeded and the schedulers are rebuilt is frozen out of the
   garbage collector (``gc.collect()``, ``gc.freeze()``) for the rounds and
   the psycopg baseline alike: this process also holds the memory run's
   seeded world, which a host does not, and a full collection scanning it
   would land in whichever round it happens to fall.

A profile (``cProfile``) of each memory-store service path closes the run:
the functions with the most own time, and a few named cumulative costs
(overlapping). cProfile inflates code that makes many small calls, so read
the shares as indicative.
"""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

sys.path.insert(0, str(Path(__file__).parent))
import bench_commit
import benchkit
from bench_assignment import PLANS, Population
from bench_flow_moves import CYCLE, make_flow
from benchkit import machine_info

from cxflow import (
    AssignmentSettings,
    AuthorKind,
    ChangeSet,
    Engine,
    MemoryStore,
    Presence,
    Routing,
    Scheduler,
    TenantSettings,
    TestClock,
)
from cxflow.app.unit import UnitOfWork
from cxflow.assignment import Agent
from cxflow.events import Event
from cxflow.tasks.commands import move_task

NAME = "service"
SEED = 20260105
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CONV = "conv"
"""The tenant driven through ``session.conversations`` (opens route, closes free)."""
ROUTE = "route"
"""The tenant driven through ``session.assignment`` (no conversation records)."""
TASKS = "tasks"
TRIPS = "trips"
"""The small tenant the SQL round trips are counted on."""
CUSTOMERS_PER_PLAN = 100
ASSIGNMENT = AssignmentSettings()
SETTINGS = TenantSettings(assignment=ASSIGNMENT)

TARGET_COMMIT_RATIO = bench_commit.TARGET_RATIO
TARGET_MOVE_RATIO = 3.0
TARGET_ASSIGNMENT_RATIO = 5.0
TARGET_ROUND_TRIPS = 3
TARGET_RATE = 1_000
TARGET_ENVELOPE_RATIO = 1.10


class Sizes:
    """How big each part is: the full run, or the ``--quick`` smoke run."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        if quick:
            self.agents, self.waiting = 20, 200
            self.batch, self.rounds = 10, 3
            # Task rounds: a multiple of 2 * len(CYCLE), so every target is
            # moved to as often with envelopes as without.
            self.tasks, self.task_rounds = 30, 2 * len(CYCLE)
            self.session_builds = 50
            self.profile_ops = 10
            self.sql_batch, self.sql_rounds, self.sql_tasks = 4, 2, 4
            self.warm_cycles = 1
        else:
            self.agents, self.waiting = 1_000, 10_000
            self.batch, self.rounds = 200, 30
            self.tasks, self.task_rounds = 2_000, 2 * len(CYCLE)
            self.session_builds = 2_000
            self.profile_ops = 400
            self.sql_batch, self.sql_rounds, self.sql_tasks = 50, 6, 50
            self.warm_cycles = 8  # past psycopg's prepare threshold (5) for every statement

    def as_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "agents": self.agents,
            "waiting": self.waiting,
            "ops_per_round": self.batch,
            "rounds": self.rounds,
            "tasks": self.tasks,
            "task_rounds": self.task_rounds,
            "sql_ops_per_round": self.sql_batch,
            "sql_rounds": self.sql_rounds,
            "sql_tasks_per_round": self.sql_tasks,
            "round_trip_warm_cycles": self.warm_cycles,
        }


def _customer(plan: str, number: int) -> str:
    return f"cust-{plan}-{number % CUSTOMERS_PER_PLAN:03d}"


def _task_id(number: int) -> str:
    return f"task-{number:05d}"


def _open_kwargs(routing: Routing) -> dict[str, Any]:
    """``open_conversation`` arguments whose routing equals ``routing`` (the
    customer's plan is the routing's plan)."""
    assert routing.plan is not None
    return {
        "customer_id": _customer(routing.plan, int(routing.conversation_id[5:])),
        "channel": routing.channel,
        "by": "bench",
        "conversation_id": routing.conversation_id,
        "skills": routing.skills,
        "vip": routing.vip,
    }


def _scheduler_state(scheduler: Scheduler, agent_ids: list[str]) -> tuple[Any, ...]:
    return (
        tuple(scheduler.waiting()),
        tuple(tuple(sorted(scheduler.held_by(agent_id))) for agent_id in agent_ids),
    )


def pick_closes(
    scheduler: Scheduler, population: Population, rnd: random.Random, count: int
) -> list[str]:
    """``count`` distinct conversations held now: an agent drawn in proportion to
    capacity closes the oldest conversation it holds (not already chosen)."""
    chosen: dict[str, None] = {}
    agents, slots = population.agents, population.slots
    held_now = sum(len(scheduler.held_by(agent.id)) for agent in agents)
    if count > held_now:
        raise ValueError(f"cannot close {count} conversations: {held_now} are held")
    while len(chosen) < count:
        held = scheduler.held_by(agents[slots[rnd.randrange(len(slots))]].id)
        free = sorted(cid for cid in held if cid not in chosen)
        if free:
            chosen[free[0]] = None
    return list(chosen)


class World:
    """The memory store, the engine and the seeded tenants (see the module docstring)."""

    def __init__(self, sizes: Sizes) -> None:
        self.sizes = sizes
        self.clock = TestClock(T0)
        self.engine = Engine(settings=SETTINGS, clock=self.clock, worker_id="bench")
        self.store = MemoryStore()
        self.session = self.engine.session(self.store)
        self.population = Population(sizes.agents, profile="target")
        self.agent_ids = [agent.id for agent in self.population.agents]
        self.rnd = random.Random(f"{SEED}/service/{sizes.agents}/{sizes.waiting}")
        self.number = 0
        self.conversation_ids: list[str] = []
        self.task_step = 0
        session = self.session
        for plan in PLANS:
            for number in range(CUSTOMERS_PER_PLAN):
                session.conversations.set_customer_plan(
                    CONV, _customer(plan, number), plan, by="bench"
                )
        for agent in self.population.agents:
            for tenant in (CONV, ROUTE):
                session.assignment.save_agent(tenant, agent, by="bench")
        for _ in range(self.population.capacity + sizes.waiting):
            routing = self.next_routing(self.clock.advance(milliseconds=1))
            session.conversations.open_conversation(CONV, **_open_kwargs(routing))
            session.assignment.route(ROUTE, routing, by="bench")
        self.flow = session.tasks.create_flow(TASKS, make_flow(), by="bench")
        self.task_ids = [_task_id(i) for i in range(sizes.tasks)]
        for i, task_id in enumerate(self.task_ids):
            session.tasks.create_task(
                TASKS, flow_id=self.flow.id, title=f"Task {i}", by="bench", task_id=task_id
            )

    def next_routing(self, at: datetime, *, in_memory: bool = True) -> Routing:
        """The next arrival; ``in_memory``: it is opened on the memory store (kept
        in ``conversation_ids``, which the SQL stores copy)."""
        routing = self.population.routing(self.rnd, self.number, at)
        self.number += 1
        if in_memory:
            self.conversation_ids.append(routing.conversation_id)
        return routing

    def scheduler(self, tenant: str) -> Scheduler:
        return self.session.assignment.scheduler(tenant)

    def pure_scheduler(self) -> Scheduler:
        """A scheduler restored from the conversation tenant's stored records."""
        return Scheduler.restore(
            self.store.list_agents(CONV),
            self.store.list_routings(CONV),
            strategy=ASSIGNMENT.strategy,
            group_strategies=ASSIGNMENT.group_strategies,
            policy=ASSIGNMENT.policy,
        )


# -- 2. the engine against the pure core (memory store) --------------------------------


def _summary(times: list[float], ops: int) -> dict[str, float]:
    """Best and median microseconds per operation over rounds of ``ops``."""
    return {
        "us_best": round(min(times) / ops * 1e6, 2),
        "us_median": round(statistics.median(times) / ops * 1e6, 2),
    }


def _ratios(service: list[float], pure: list[float]) -> dict[str, float]:
    """Service time over pure time: of the best rounds (the target's figure: the
    least disturbed round of each side), and the median over rounds of the
    ratio within one round."""
    return {
        "best": round(min(service) / min(pure), 2),
        "median_round": round(
            statistics.median(s / p for s, p in zip(service, pure, strict=True)), 2
        ),
    }


def measure_assignment_paths(world: World) -> dict[str, Any]:
    sizes = world.sizes
    session = world.session
    pure = world.pure_scheduler()
    agents = world.agent_ids
    start_state = _scheduler_state(pure, agents)
    same_start = all(
        _scheduler_state(world.scheduler(tenant), agents) == start_state for tenant in (CONV, ROUTE)
    )
    clock = time.process_time
    times: dict[str, list[float]] = {
        key: []
        for key in (
            "pure_close",
            "pure_arrive",
            "conv_close",
            "conv_open",
            "route_close",
            "route_route",
        )
    }
    gc.collect()
    gc.freeze()
    for round_number in range(sizes.rounds):
        now = world.clock.advance(seconds=1)
        closes = pick_closes(pure, world.population, world.rnd, sizes.batch)
        arrivals = [world.next_routing(now) for _ in range(sizes.batch)]
        opens = [_open_kwargs(routing) for routing in arrivals]

        def run_pure(
            now: datetime = now, closes: list[str] = closes, arrivals: list[Routing] = arrivals
        ) -> None:
            close, arrive = pure.close, pure.arrive
            start = clock()
            for cid in closes:
                close(cid, at=now)
            middle = clock()
            for routing in arrivals:
                arrive(routing, at=now)
            end = clock()
            times["pure_close"].append(middle - start)
            times["pure_arrive"].append(end - middle)

        def run_conversations(
            closes: list[str] = closes, opens: list[dict[str, Any]] = opens
        ) -> None:
            close = session.conversations.close
            open_conversation = session.conversations.open_conversation
            start = clock()
            for cid in closes:
                close(CONV, cid, by="bench")
            middle = clock()
            for kwargs in opens:
                open_conversation(CONV, **kwargs)
            end = clock()
            times["conv_close"].append(middle - start)
            times["conv_open"].append(end - middle)

        def run_assignment(closes: list[str] = closes, arrivals: list[Routing] = arrivals) -> None:
            close, route = session.assignment.close, session.assignment.route
            start = clock()
            for cid in closes:
                close(ROUTE, cid, by="bench")
            middle = clock()
            for routing in arrivals:
                route(ROUTE, routing, by="bench")
            end = clock()
            times["route_close"].append(middle - start)
            times["route_route"].append(end - middle)

        sides: list[Callable[[], None]] = [run_pure, run_conversations, run_assignment]
        shift = round_number % len(sides)
        for side in sides[shift:] + sides[:shift]:
            side()
    gc.unfreeze()
    end_state = _scheduler_state(pure, agents)
    same_end = all(
        _scheduler_state(world.scheduler(tenant), agents) == end_state for tenant in (CONV, ROUTE)
    )

    def ratio(service: str, core: str) -> dict[str, float]:
        return _ratios(times[service], times[core])

    per_op = {key: _summary(values, sizes.batch) for key, values in times.items()}
    return {
        "per_op": per_op,
        "ratios": {
            "open_conversation_vs_arrive": ratio("conv_open", "pure_arrive"),
            "assignment_route_vs_arrive": ratio("route_route", "pure_arrive"),
            "conversations_close_vs_close": ratio("conv_close", "pure_close"),
            "assignment_close_vs_close": ratio("route_close", "pure_close"),
        },
        "waiting": pure.waiting_count,
        "same_state_at_start": same_start,
        "same_decisions": same_end,
    }


def measure_task_moves(world: World) -> dict[str, Any]:
    sizes = world.sizes
    session = world.session
    ids = world.task_ids
    flow = session.tasks.get_flow(TASKS, world.flow.id)
    snapshots = [session.tasks.get_task(TASKS, task_id) for task_id in ids]
    clock = time.process_time
    pure_times: list[float] = []
    service_times: list[float] = []
    hand_times: list[float] = []
    # The best simple alternative: the same moves written by hand against a
    # store's protocol (read, command, commit), with no unit of work, reactors
    # or timers.
    by_hand = MemoryStore()
    by_hand.commit(TASKS, ChangeSet(tasks=[attrs.evolve(task, version=1) for task in snapshots]))
    # The envelope's cost: every other round, the same engine moves with the
    # unit's stamping of envelopes switched off (same store, same tasks).
    bare_times: list[float] = []
    pure_with_service: list[float] = []
    """The pure side's times of the rounds the engine moved with envelopes."""
    gc.collect()
    gc.freeze()
    for round_number in range(sizes.task_rounds):
        now = world.clock.advance(seconds=1)
        target = CYCLE[world.task_step % len(CYCLE)]
        world.task_step += 1

        def run_pure(target: str = target, now: datetime = now) -> None:
            start = clock()
            for i, task in enumerate(snapshots):
                snapshots[i] = move_task(task, flow, target, by="agent", at=now)[0]
            pure_times.append(clock() - start)

        # Every target of the cycle is moved to once each way (the targets cost
        # differently): with, without, ... then without, with, ...
        bare = (round_number + round_number // len(CYCLE)) % 2 == 1

        def run_service(target: str = target, bare: bool = bare) -> None:
            move = session.tasks.move_task
            enveloped = UnitOfWork._enveloped
            if bare:
                UnitOfWork._enveloped = _no_envelopes  # type: ignore[method-assign]
            try:
                start = clock()
                for task_id in ids:
                    move(TASKS, task_id, target, by="agent")
                (bare_times if bare else service_times).append(clock() - start)
            finally:
                UnitOfWork._enveloped = enveloped  # type: ignore[method-assign]

        def run_by_hand(target: str = target, now: datetime = now) -> None:
            get, commit = by_hand.get_task, by_hand.commit
            start = clock()
            for task_id in ids:
                updated, events = move_task(
                    get(TASKS, task_id), flow, target, by="agent", at=now
                )
                commit(TASKS, ChangeSet(tasks=(updated,), events=events))
            hand_times.append(clock() - start)

        sides: list[Callable[[], None]] = [run_pure, run_service, run_by_hand]
        shift = round_number % len(sides)
        for side in sides[shift:] + sides[:shift]:
            side()
        if not bare:
            pure_with_service.append(pure_times[-1])
    gc.unfreeze()
    same = all(
        session.tasks.get_task(TASKS, task_id) == snapshot
        for task_id, snapshot in zip(ids, snapshots, strict=True)
    )
    return {
        "per_op": {
            "pure_move": _summary(pure_times, len(ids)),
            "service_move": _summary(service_times, len(ids)),
            "by_hand_move": _summary(hand_times, len(ids)),
            "service_move_without_envelopes": _summary(bare_times, len(ids)),
        },
        "ratio_envelopes_vs_none": _ratios(service_times, bare_times),
        "ratio_service_vs_pure": _ratios(service_times, pure_with_service),
        "ratio_by_hand_vs_pure": _ratios(hand_times, pure_times),
        "history_length_at_end": len(snapshots[0].history),
        "same_tasks": same,
    }


def _no_envelopes(_unit: UnitOfWork, events: Sequence[Event]) -> tuple[Event, ...]:
    """``UnitOfWork._enveloped`` without the envelopes (the bare side above)."""
    return tuple(events)


def measure_session_cost(world: World) -> float:
    """Microseconds to open one session (a host opens one per request)."""
    build, store = world.engine.session, world.store
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(world.sizes.session_builds):
            build(store)
        best = min(best, time.process_time() - start)
    return round(best / world.sizes.session_builds * 1e6, 2)


# -- the profile ------------------------------------------------------------------------

_NAMED_COSTS: dict[str, list[tuple[str, Callable[[str], bool]]]] = {
    "Scheduler (the pure core)": [
        ("cxflow/assignment/scheduler.py", lambda name: name in {"arrive", "close"})
    ],
    "MemoryStore.commit": [("cxflow/storage/memory.py", lambda name: name == "commit")],
    "store reads": [
        (
            "cxflow/storage/memory.py",
            lambda name: name.startswith(("get_", "list_")) or name == "routing_version",
        )
    ],
    "serialisation (to_dict/from_dict)": [
        ("cxflow/serialization.py", lambda name: name in {"to_dict", "from_dict", "event_to_dict"})
    ],
    "attrs.evolve": [("attr/_make.py", lambda name: name == "evolve")],
    "record __init__ (validators, converters)": [
        ("<attrs generated", lambda name: name == "__init__")
    ],
    "Protocol isinstance checks": [("typing.py", lambda name: name == "__instancecheck__")],
}


def _label(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    generated = re.fullmatch(r"<(attrs|cattrs) generated (\w+) [\w.]*?(\w+)>", filename)
    if generated:
        library, what, record = generated.groups()
        return (
            f"{record}.{name} ({library}-generated)"
            if library == "attrs"
            else (f"{record} {what} (cattrs-generated)")
        )
    if filename == "~":
        return name  # a built-in
    filename = re.sub(r"^.*(/src/|site-packages/|/lib/python3\.\d+/)", "", filename)
    return f"{filename}:{line}({name})"


def _matches(filename: str, prefix: str) -> bool:
    return filename.startswith(prefix) if prefix.startswith("<") else filename.endswith(prefix)


_LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (layer, what a function's file name starts with "<..." or contains); first match wins
    ("validation", ("<attrs generated", "cxflow/_validate.py")),
    ("serialisation", ("<cattrs generated", "/cattrs/", "cxflow/serialization.py")),
    ("attrs.evolve", ("/attr/",)),
    ("store", ("cxflow/storage/",)),
    (
        "scheduler core",
        (
            "cxflow/assignment/scheduler.py",
            "cxflow/assignment/strategies.py",
            "/sortedcontainers/",
            "heapq.py",
        ),
    ),
    ("Protocol/ABC isinstance", ("typing.py", "abc.py", "<frozen abc>")),
    ("engine and services", ("cxflow/app/",)),
    ("commands and records", ("cxflow/",)),
)
"""Layers of own time (exclusive, summing to 100%): a built-in's time (``isinstance``,
``any``, ``datetime.isoformat``...) counts in the layer of the function that called it.

- validation: the attrs-generated ``__init__`` of every record (converters and
  validators run there) and ``cxflow._validate``;
- serialisation: ``to_dict``/``from_dict`` and cattrs;
- attrs.evolve: attrs' own machinery (``attrs.evolve`` before it calls ``__init__``);
- store: ``MemoryStore`` itself; scheduler core: ``Scheduler`` and its indexes;
- Protocol/ABC isinstance: ``isinstance`` against runtime-checkable protocols and ABCs;
- engine and services: ``cxflow.app`` (unit of work, services, reactors);
- commands and records: the rest of cxflow (pure commands, events, models)."""


def _layer(filename: str) -> str:
    for layer, markers in _LAYERS:
        for marker in markers:
            if filename.startswith(marker) if marker.startswith("<") else marker in filename:
                return layer
    return "other"


def _layers(stats: dict[tuple[str, int, str], tuple[Any, ...]], total: float) -> dict[str, float]:
    own: dict[str, float] = dict.fromkeys([layer for layer, _ in _LAYERS] + ["other"], 0.0)
    for (filename, _line, _name), entry in stats.items():
        if filename != "~":
            own[_layer(filename)] += entry[2]
            continue
        callers: dict[tuple[str, int, str], tuple[Any, ...]] = entry[4]
        for caller, (_cc, _nc, tottime, _cumtime) in callers.items():
            own["other" if caller[0] == "~" else _layer(caller[0])] += tottime
    return {layer: round(100 * seconds / total, 1) for layer, seconds in own.items()}


def profile(run: Callable[[], None], ops: int) -> dict[str, Any]:
    """Run ``run`` (``ops`` operations) under cProfile; summarise where the time went."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values())
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:10]
    named = {}
    for label, patterns in _NAMED_COSTS.items():
        cumulative = sum(
            entry[3]
            for key, entry in stats.items()
            for prefix, wanted in patterns
            if _matches(key[0], prefix) and wanted(key[2])
        )
        named[label] = round(100 * cumulative / total, 1)
    return {
        "ops": ops,
        "us_per_op_profiled": round(total / ops * 1e6, 1),
        "top_own_time_pct": [
            {"function": _label(key), "pct": round(100 * entry[2] / total, 1)} for key, entry in top
        ],
        "cumulative_pct": named,
        "layers_own_time_pct": _layers(stats, total),
    }


def measure_profiles(world: World) -> dict[str, Any]:
    session = world.session
    ops = world.sizes.profile_ops
    now = world.clock.advance(seconds=1)
    conv_closes = pick_closes(world.scheduler(CONV), world.population, world.rnd, ops)
    route_closes = pick_closes(world.scheduler(ROUTE), world.population, world.rnd, ops)
    arrivals = [world.next_routing(now) for _ in range(ops)]
    opens = [_open_kwargs(routing) for routing in arrivals]
    target = CYCLE[world.task_step % len(CYCLE)]
    world.task_step += 1
    task_ids = world.task_ids

    def conv_close() -> None:
        for cid in conv_closes:
            session.conversations.close(CONV, cid, by="bench")

    def conv_open() -> None:
        for kwargs in opens:
            session.conversations.open_conversation(CONV, **kwargs)

    def route_close() -> None:
        for cid in route_closes:
            session.assignment.close(ROUTE, cid, by="bench")

    def route_route() -> None:
        for routing in arrivals:
            session.assignment.route(ROUTE, routing, by="bench")

    def moves() -> None:
        for task_id in task_ids:
            session.tasks.move_task(TASKS, task_id, target, by="agent")

    return {
        "conversations.open_conversation (routes; queues)": profile(conv_open, ops),
        "conversations.close (frees a slot; one decision)": profile(conv_close, ops),
        "assignment.route (queues)": profile(route_route, ops),
        "assignment.close (frees a slot; one decision)": profile(route_close, ops),
        "tasks.move_task": profile(moves, len(task_ids)),
    }


# -- 3. SQL statements and round trips ----------------------------------------------------

STORE_LABELS = {
    "sqlite_file": "SQLite file",
    "sqlite_file_full": "SQLite file, synchronous=FULL",
    "postgresql": "PostgreSQL",
}

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")
_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


class SqlCounter:
    """Counts what an SQLAlchemy engine sends to its database (see the module docstring)."""

    def __init__(self, engine: Any) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.counts: dict[str, int] = {}
        self.reset()
        self._listeners: list[tuple[Any, str, Callable[..., None]]] = [
            (engine, "before_cursor_execute", self._statement),
            (engine, "begin", self._begin),
            (engine, "commit", self._end("commits")),
            (engine, "rollback", self._end("rollbacks")),
            (engine.pool, "checkout", self._checkout),
            (engine.pool, "reset", self._reset),
        ]
        for target, name, listener in self._listeners:
            sa.event.listen(target, name, listener)

    def close(self) -> None:
        for target, name, listener in self._listeners:
            self._sa.event.remove(target, name, listener)

    def reset(self) -> None:
        self.sent: list[str] = []
        """The first words of every statement sent, in order."""
        self.counts = dict.fromkeys(
            (
                "statements",
                "sql_statements",
                "transactions",
                "commits",
                "rollbacks",
                "pool_checkouts",
                "pool_resets",
                "driver_begins",
                "driver_ends",
            ),
            0,
        )

    @property
    def round_trips(self) -> int:
        c = self.counts
        return c["statements"] + c["driver_begins"] + c["driver_ends"]

    def _in_transaction(self, dbapi_connection: Any) -> bool:
        if self.postgres:  # libpq's PQTRANS_IDLE is 0 (psycopg 3 and psycopg2)
            return int(dbapi_connection.info.transaction_status) != 0
        return bool(dbapi_connection.in_transaction)

    def _statement(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        self.counts["statements"] += 1
        self.sent.append(" ".join(statement.split()[:3]))
        if not statement.lstrip().upper().startswith(_CONTROL):
            self.counts["sql_statements"] += 1
        dbapi_connection = conn.connection.dbapi_connection
        if (
            self.postgres
            and not dbapi_connection.autocommit
            and not self._in_transaction(dbapi_connection)
        ):
            self.counts["driver_begins"] += 1  # psycopg sends BEGIN first (none in autocommit)

    def _begin(self, conn: Any) -> None:
        self.counts["transactions"] += 1

    def _end(self, key: str) -> Callable[..., None]:
        def on_end(conn: Any, *_: Any) -> None:
            self.counts[key] += 1
            if self._in_transaction(conn.connection.dbapi_connection):
                self.counts["driver_ends"] += 1

        return on_end

    def _checkout(self, *_: Any) -> None:
        self.counts["pool_checkouts"] += 1

    def _reset(self, dbapi_connection: Any, *_: Any) -> None:
        self.counts["pool_resets"] += 1
        if self._in_transaction(dbapi_connection):
            self.counts["driver_ends"] += 1  # a ROLLBACK the pool sends itself


class WireTrace:
    """Round trips on the wire: the ``ReadyForQuery`` messages in psycopg's libpq
    trace of every pooled connection (PostgreSQL with psycopg 3 only)."""

    def __init__(self, engine: Any) -> None:
        import sqlalchemy as sa

        self.connections: list[Any] = []
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._offset = 0
        sa.event.listen(engine.pool, "connect", lambda dbapi, _record: self._add(dbapi))

    def _add(self, dbapi_connection: Any) -> None:
        if hasattr(dbapi_connection, "pgconn"):
            self.connections.append(dbapi_connection)

    def start(self) -> None:
        from psycopg import pq

        for connection in self.connections:
            connection.pgconn.trace(self._file.fileno())
            connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def stop(self) -> tuple[int, int, int]:
        """Stop tracing; return the round trips since ``start``, the statements
        psycopg prepared (its automatic prepared statements: a ``Parse`` of a
        named statement, sent with a ``Sync`` of its own) and its own
        ``DEALLOCATE`` commands (it drops its prepared statements after every
        ``ROLLBACK``)."""
        for connection in self.connections:
            connection.pgconn.untrace()  # flushes
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        text = os.pread(fd, size - self._offset, self._offset).decode("utf-8", "replace")
        self._offset = size
        lines = text.splitlines()
        sent = [line for line in lines if line.startswith("F")]
        return (
            sum(1 for line in lines if "\tReadyForQuery" in line),
            sum(1 for line in sent if '\tParse\t "_pg3_' in line),
            sum(1 for line in sent if '\tQuery\t "DEALLOCATE' in line),
        )

    def close(self) -> None:
        self._file.close()


TRIP_OPS = (
    "task move",
    "open_conversation, routed to a free agent",
    "open_conversation, routed, queues",
    "record_message (customer)",
    "record_message (agent reply: answers the assignment)",
    "assignment.route (queues)",
    "conversations.close (frees the agent; one decision)",
)


def trip_cycle(
    number: int, clock: TestClock, call: Callable[[Callable[[Any], Any]], None]
) -> Iterator[tuple[str, Callable[[], None]]]:
    """The counted operations of one cycle on the ``TRIPS`` tenant (one agent of
    capacity 1, nothing waiting at the start and at the end), each as
    ``(name, run)``; ``call(fn)`` runs ``fn(session)`` the way the host does.
    The cycle's clean-up runs uncounted after the last operation. The clock
    moves a second before every call, so ``b`` is queued strictly ahead of
    ``r`` and the close of ``a`` always hands ``b`` (a conversation record) to
    the agent."""
    a, b, r = f"trip-{number}-a", f"trip-{number}-b", f"trip-{number}-r"
    target = CYCLE[number % len(CYCLE)]

    def tick_and_call(fn: Callable[[Any], Any]) -> None:
        clock.advance(seconds=1)
        call(fn)

    def op(fn: Callable[[Any], Any]) -> Callable[[], None]:
        return lambda: tick_and_call(fn)

    yield TRIP_OPS[0], op(lambda s: s.tasks.move_task(TRIPS, "trip-task", target, by="ana"))
    yield (
        TRIP_OPS[1],
        op(
            lambda s: s.conversations.open_conversation(
                TRIPS, customer_id="trip-customer", channel="chat", by="bench", conversation_id=a
            )
        ),
    )
    yield (
        TRIP_OPS[2],
        op(
            lambda s: s.conversations.open_conversation(
                TRIPS, customer_id="trip-customer", channel="chat", by="bench", conversation_id=b
            )
        ),
    )
    yield TRIP_OPS[3], op(lambda s: s.conversations.record_message(TRIPS, a, AuthorKind.CUSTOMER))
    yield (
        TRIP_OPS[4],
        op(lambda s: s.conversations.record_message(TRIPS, a, AuthorKind.AGENT, author_id="ana")),
    )
    yield (
        TRIP_OPS[5],
        op(
            lambda s: s.assignment.route(
                TRIPS,
                Routing(conversation_id=r, channel="chat", arrived_at=clock.now()),
                by="bench",
            )
        ),
    )
    yield TRIP_OPS[6], op(lambda s: s.conversations.close(TRIPS, a, by="ana"))
    tick_and_call(lambda s: s.conversations.close(TRIPS, b, by="ana"))  # clean-up: r to ana
    tick_and_call(lambda s: s.assignment.close(TRIPS, r, by="ana"))


def count_round_trips(
    sa_engine: Any, engine: Engine, clock: TestClock, sizes: Sizes, wire: WireTrace | None
) -> dict[str, Any]:
    """Per operation and way of calling: round trips, statements, transactions."""
    from cxflow.storage.sql import SqlStore

    setup = engine.session(SqlStore(sa_engine))
    setup.assignment.save_agent(
        TRIPS, Agent(id="ana", presence=Presence.ONLINE, capacity=1), by="bench"
    )
    flow = setup.tasks.create_flow(TRIPS, make_flow(), by="bench")
    setup.tasks.create_task(TRIPS, flow_id=flow.id, title="Trip", by="bench", task_id="trip-task")
    warm = engine.session(SqlStore(sa_engine))

    def in_warm_session(fn: Callable[[Any], Any]) -> None:
        fn(warm)

    def in_new_session(fn: Callable[[Any], Any]) -> None:
        fn(engine.session(SqlStore(sa_engine)))

    def in_host_transaction(fn: Callable[[Any], Any]) -> None:
        with sa_engine.begin() as connection:
            fn(engine.session(SqlStore(connection)))

    modes = {
        "warm_session": in_warm_session,
        "session_per_call": in_new_session,
        "host_transaction": in_host_transaction,
    }
    counter = SqlCounter(sa_engine)
    number = 0
    found: dict[str, Any] = {}
    try:
        for mode, call in modes.items():
            for _ in range(sizes.warm_cycles):
                number += 1
                for _name, run in trip_cycle(number, clock, call):
                    run()
            number += 1
            rows: dict[str, Any] = {}
            for name, run in trip_cycle(number, clock, call):
                counter.reset()
                if wire is not None:
                    wire.start()
                run()
                wire_trips, prepares, deallocates = (
                    wire.stop() if wire is not None else (None, None, None)
                )
                rows[name] = {
                    "round_trips": counter.round_trips,
                    **counter.counts,
                    "wire_round_trips": wire_trips,
                    "wire_prepares": prepares,
                    "wire_deallocates": deallocates,
                    "sent": list(counter.sent),
                }
            found[mode] = rows
    finally:
        counter.close()
    return found


# -- 4. throughput on SQL --------------------------------------------------------------


def copy_world(world: World, store: Any) -> None:
    """Write the memory world's records to ``store``, each at version 1."""

    def batches(records: list[Any], size: int = 1_000) -> Iterator[tuple[Any, ...]]:
        for start in range(0, len(records), size):
            yield tuple(attrs.evolve(r, version=1) for r in records[start : start + size])

    source = world.store
    conversations = [source.get_conversation(CONV, cid) for cid in world.conversation_ids]
    customers = [
        source.get_customer(CONV, _customer(plan, n))
        for plan in PLANS
        for n in range(CUSTOMERS_PER_PLAN)
    ]
    for tenant in (CONV, ROUTE):
        agents = tuple(attrs.evolve(agent, version=1) for agent in source.list_agents(tenant))
        store.commit(tenant, ChangeSet(agents=agents, routing_version=1))
        for chunk in batches(source.list_routings(tenant)):
            store.commit(tenant, ChangeSet(routings=chunk))
    for chunk in batches(customers):
        store.commit(CONV, ChangeSet(customers=chunk))
    for chunk in batches(conversations):
        store.commit(CONV, ChangeSet(conversations=chunk))
    store.commit(TASKS, ChangeSet(flows=(source.get_flow(TASKS, world.flow.id),)))
    for chunk in batches([source.get_task(TASKS, task_id) for task_id in world.task_ids]):
        store.commit(TASKS, ChangeSet(tasks=chunk))


def _rate(times: list[float], ops: int) -> dict[str, float]:
    """Calls per second: of the best round (the target's figure) and the median one."""
    return {
        "per_s_best": round(ops / min(times), 1),
        "per_s_median": round(ops / statistics.median(times), 1),
        "ms_median": round(statistics.median(times) / ops * 1e3, 3),
    }


def measure_sql_store(
    kind: str, sa_engine: Any, world: World, wire: WireTrace | None, *, count: bool = True
) -> dict[str, Any]:
    """Throughput on ``sa_engine`` (and, with ``count``, the round trips)."""
    from cxflow.storage.sql import SqlStore

    sizes = world.sizes
    store = SqlStore(sa_engine)
    store.drop_schema()
    store.create_schema()
    start = time.perf_counter()
    copy_world(world, store)
    copied_s = time.perf_counter() - start
    engine = Engine(settings=SETTINGS, clock=world.clock, worker_id=f"bench-{kind}")

    def session() -> Any:
        return engine.session(SqlStore(sa_engine))

    start = time.perf_counter()
    conv_scheduler = session().assignment.scheduler(CONV)
    rebuild_s = time.perf_counter() - start
    route_scheduler = session().assignment.scheduler(ROUTE)
    waiting_at_start = conv_scheduler.waiting_count
    gc.collect()
    gc.freeze()
    try:
        result = _sql_rounds(kind, sa_engine, world, session, conv_scheduler, route_scheduler)
    finally:
        gc.unfreeze()
    result = {
        "copied_records_s": round(copied_s, 2),
        "scheduler_rebuild_s": round(rebuild_s, 3),
        "waiting": waiting_at_start,
        **result,
    }
    if sa_engine.dialect.name == "sqlite":
        with sa_engine.connect() as conn:
            result["synchronous"] = _SYNCHRONOUS.get(
                conn.exec_driver_sql("PRAGMA synchronous").scalar(), "?"
            )
    if count:
        result["round_trips"] = count_round_trips(sa_engine, engine, world.clock, sizes, wire)
    store.drop_schema()
    return result


def _sql_rounds(
    kind: str,
    sa_engine: Any,
    world: World,
    session: Callable[[], Any],
    conv_scheduler: Any,
    route_scheduler: Any,
) -> dict[str, Any]:
    """The timed rounds of ``measure_sql_store`` (and the psycopg baseline)."""
    sizes = world.sizes
    clock = time.perf_counter
    times: dict[str, list[float]] = {
        key: [] for key in ("conv_close", "conv_open", "route_close", "route_route", "move")
    }
    rnd = random.Random(f"{SEED}/sql/{kind}")
    for round_number in range(sizes.sql_rounds):
        now = world.clock.advance(seconds=1)
        conv_closes = pick_closes(conv_scheduler, world.population, rnd, sizes.sql_batch)
        route_closes = pick_closes(route_scheduler, world.population, rnd, sizes.sql_batch)
        arrivals = [world.next_routing(now, in_memory=False) for _ in range(sizes.sql_batch)]
        target = CYCLE[(world.task_step + round_number) % len(CYCLE)]
        task_ids = world.task_ids[: sizes.sql_tasks]
        start = clock()
        for cid in conv_closes:
            session().conversations.close(CONV, cid, by="bench")
        times["conv_close"].append(clock() - start)
        start = clock()
        for routing in arrivals:
            session().conversations.open_conversation(CONV, **_open_kwargs(routing))
        times["conv_open"].append(clock() - start)
        start = clock()
        for cid in route_closes:
            session().assignment.close(ROUTE, cid, by="bench")
        times["route_close"].append(clock() - start)
        start = clock()
        for routing in arrivals:
            session().assignment.route(ROUTE, routing, by="bench")
        times["route_route"].append(clock() - start)
        start = clock()
        for task_id in task_ids:
            session().tasks.move_task(TASKS, task_id, target, by="agent")
        times["move"].append(clock() - start)
    result: dict[str, Any] = {
        "rates": {
            "open_conversation_routed": _rate(times["conv_open"], sizes.sql_batch),
            "assignment_route": _rate(times["route_route"], sizes.sql_batch),
            "conversations_close": _rate(times["conv_close"], sizes.sql_batch),
            "assignment_close": _rate(times["route_close"], sizes.sql_batch),
            "task_move": _rate(times["move"], sizes.sql_tasks),
        },
    }
    if sa_engine.dialect.name == "postgresql":
        result["rates"]["raw_driver_move"] = raw_driver_moves(sa_engine, world)
    return result


def raw_driver_moves(sa_engine: Any, world: World) -> dict[str, float]:
    """The baseline of task moves/s on PostgreSQL: what a host could write by hand
    with psycopg and no cxflow, on one held connection: per move, one
    transaction that reads the task row, updates it over its version and
    appends an outbox row (positions from the tenant's outbox head), with the
    record JSON written back as read (no domain rules, no serialisation)."""
    sizes = world.sizes
    task_ids = world.task_ids[: sizes.sql_tasks]
    raw = sa_engine.raw_connection()
    try:
        conn = raw.driver_connection
        times: list[float] = []
        for round_number in range(sizes.sql_rounds):
            status = CYCLE[(world.task_step + round_number) % len(CYCLE)]
            start = time.perf_counter()
            for task_id in task_ids:
                with conn.transaction():
                    version, data = conn.execute(
                        "SELECT version, data FROM cxflow_tasks WHERE tenant = %s AND task_id = %s",
                        (TASKS, task_id),
                    ).fetchone()
                    done = conn.execute(
                        "UPDATE cxflow_tasks SET status = %s, version = %s, data = %s "
                        "WHERE tenant = %s AND task_id = %s AND version = %s",
                        (status, version + 1, data, TASKS, task_id, version),
                    )
                    assert done.rowcount == 1
                    (position,) = conn.execute(
                        "INSERT INTO cxflow_outbox_heads (tenant, last_position) VALUES (%s, 1) "
                        "ON CONFLICT (tenant) DO UPDATE SET last_position = "
                        "cxflow_outbox_heads.last_position + 1 RETURNING last_position",
                        (TASKS,),
                    ).fetchone()
                    conn.execute(
                        "INSERT INTO cxflow_events (tenant, position, type, data) "
                        "VALUES (%s, %s, %s, %s)",
                        (TASKS, position, "task.moved", "{}"),
                    )
            times.append(time.perf_counter() - start)
    finally:
        raw.close()
    return _rate(times, len(task_ids))


@contextmanager
def sqlite_file(synchronous: str | None = None) -> Iterator[tuple[Any, WireTrace | None]]:
    """A SQLite file as ``sqlite_engine`` makes it (WAL, ``synchronous=NORMAL``),
    or with ``sqlite_engine``'s ``synchronous`` set to ``synchronous``."""
    from cxflow.storage.sql import sqlite_engine

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        engine = sqlite_engine(path, synchronous=synchronous or "NORMAL")
        try:
            yield engine, None
        finally:
            engine.dispose()


@contextmanager
def postgres(url: str) -> Iterator[tuple[Any, WireTrace | None]]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    wire = WireTrace(engine)  # before the first connection, so every one is traced
    try:
        yield engine, wire
    finally:
        engine.dispose()
        wire.close()


def postgres_settings(url: str) -> dict[str, str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: str(conn.exec_driver_sql(f"SHOW {name}").scalar())
                for name in ("server_version", "fsync", "synchronous_commit")
            }
    finally:
        engine.dispose()


# -- the run ---------------------------------------------------------------------------


def _source() -> dict[str, Any]:
    """The commit of the cxflow measured (the repository it is imported from),
    and whether its ``src/`` differed from that commit."""
    import cxflow

    root = Path(cxflow.__file__).resolve().parent.parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD") or "unknown",
        "src_modified": bool(git("status", "--porcelain", "--", "src")),
    }


def _target(measured: float | None, target: float, *, at_most: bool = True) -> dict[str, Any]:
    met = None if measured is None else measured <= target if at_most else measured >= target
    return {"measured": measured, "target": target, "at_most": at_most, "met": met}


def targets(result: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    commit = result["commit"]
    found["commit: 1e5 vs 1e3 stored routings (memory)"] = _target(
        commit["ratio_large_vs_small"], TARGET_COMMIT_RATIO
    )
    memory = result["memory"]
    found["task move: engine vs move_task (memory)"] = _target(
        memory["tasks"]["ratio_service_vs_pure"]["best"], TARGET_MOVE_RATIO
    )
    found["task move: with envelopes vs without (memory)"] = _target(
        memory["tasks"]["ratio_envelopes_vs_none"]["best"], TARGET_ENVELOPE_RATIO
    )
    ratios = memory["assignment"]["ratios"]
    for key, label in (
        ("open_conversation_vs_arrive", "route: open_conversation vs Scheduler.arrive (memory)"),
        ("assignment_route_vs_arrive", "route: assignment.route vs Scheduler.arrive (memory)"),
        ("conversations_close_vs_close", "close: conversations.close vs Scheduler.close (memory)"),
        ("assignment_close_vs_close", "close: assignment.close vs Scheduler.close (memory)"),
    ):
        found[label] = _target(ratios[key]["best"], TARGET_ASSIGNMENT_RATIO)
    # The round-trip target is the server's: on SQLite a "round trip" is a call
    # into the library in this process (its counts are in the table below).
    for store, store_label in (("postgresql", "PostgreSQL"),):
        sql = result["sql"].get(store)
        for op in TRIP_OPS:
            warm = None if sql is None else sql["round_trips"]["warm_session"]
            measured = None if warm is None else warm[op]["round_trips"]
            found[f"round trips: {op} ({store_label}, warm session)"] = _target(
                measured, TARGET_ROUND_TRIPS
            )
    pg = result["sql"].get("postgresql")
    for key, label in (
        ("open_conversation_routed", "routings/s (open_conversation)"),
        ("assignment_route", "routings/s (assignment.route)"),
        ("task_move", "task moves/s"),
    ):
        pg_rate = None if pg is None else pg["rates"][key]["per_s_best"]
        found[f"{label}, PostgreSQL"] = _target(pg_rate, TARGET_RATE, at_most=False)
        for store in ("sqlite_file", "sqlite_file_full"):
            lite = result["sql"].get(store)
            lite_rate = None if lite is None else lite["rates"][key]["per_s_best"]
            found[f"{label}, {STORE_LABELS[store]} (at least PostgreSQL's)"] = _target(
                lite_rate, pg_rate if pg_rate is not None else TARGET_RATE, at_most=False
            )
    return found


def measure(quick: bool) -> dict[str, Any]:
    sizes = Sizes(quick)
    load_at_start = round(os.getloadavg()[0], 2)
    commit = bench_commit.measure(quick)
    commit.pop("machine", None)
    commit.pop("benchmark", None)
    start = time.perf_counter()
    world = World(sizes)
    seeded_s = time.perf_counter() - start
    assignment = measure_assignment_paths(world)
    tasks = measure_task_moves(world)
    session_us = measure_session_cost(world)
    profiles = measure_profiles(world)
    sql: dict[str, Any] = {}
    with sqlite_file() as (engine, wire):
        sql["sqlite_file"] = measure_sql_store("sqlite", engine, world, wire)
    with sqlite_file("FULL") as (engine, wire):
        sql["sqlite_file_full"] = measure_sql_store(
            "sqlite-full", engine, world, wire, count=False
        )
    url = os.environ.get("CXFLOW_BENCH_POSTGRES_URL")
    server: dict[str, str] = {}
    if url:
        server = postgres_settings(url)
        with postgres(url) as (engine, wire):
            sql["postgresql"] = measure_sql_store("postgresql", engine, world, wire)
    result: dict[str, Any] = {
        "benchmark": NAME,
        "machine": {
            **machine_info(),
            **_source(),
            "load_average_1min": {"start": load_at_start, "end": round(os.getloadavg()[0], 2)},
        },
        "workload": {**sizes.as_dict(), "seeded_memory_s": round(seeded_s, 1)},
        "commit": commit,
        "memory": {"assignment": assignment, "tasks": tasks, "session_open_us": session_us},
        "profile": profiles,
        "sql": sql,
        "postgresql": "measured" if url else "skipped: CXFLOW_BENCH_POSTGRES_URL not set",
        "postgresql_server": server,
    }
    result["targets"] = targets(result)
    return result


# -- the table ---------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, float):
        return (
            f"{value:,.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else (f"{value:,.0f}")
        )
    return f"{value:,}"


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    w = result["workload"]
    lines = [
        f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
        f"{m['implementation']} {m['python']}, cxflow at {m['commit']}"
        + (" (src/ modified)" if m["src_modified"] else "")
        + f"; {w['agents']:,} agents, {w['waiting']:,} waiting; all figures from one run "
        f"(1-minute load average {m['load_average_1min']['start']} at the start, "
        f"{m['load_average_1min']['end']} at the end).",
        "",
        "**Targets** (issue 9):",
        "",
        "| figure | measured | target | met |",
        "|---|---:|---:|---|",
    ]
    for label, t in result["targets"].items():
        sign = "<=" if t["at_most"] else ">="
        verdict = "-" if t["met"] is None else "yes" if t["met"] else "**no**"
        lines.append(
            f"| {label} | {_fmt(t['measured'])} | {sign} {_fmt(t['target'])} | {verdict} |"
        )

    a = result["memory"]["assignment"]
    per_op = a["per_op"]
    ratios = a["ratios"]
    tasks = result["memory"]["tasks"]
    lines += [
        "",
        f"**Memory store, one warm session** (CPU µs per call, best / median of "
        f"{w['rounds']} rounds of {w['ops_per_round']:,} closes and {w['ops_per_round']:,} "
        f"arrivals; ratio of the best rounds, and in parentheses the median over rounds of "
        f"service / pure in the same round; the tasks: {w['task_rounds']} rounds of one move "
        f"of each task):",
        "",
        "| call | pure core µs | service µs | ratio |",
        "|---|---:|---:|---:|",
    ]

    def row(label: str, pure: str, service: str, ratio: dict[str, float]) -> str:
        p, s = per_op[pure], per_op[service]
        return (
            f"| {label} | {p['us_best']} / {p['us_median']} | {s['us_best']} / {s['us_median']} "
            f"| {ratio['best']}x ({ratio['median_round']}x) |"
        )

    lines += [
        row(
            "`open_conversation` (routes; queues) vs `Scheduler.arrive`",
            "pure_arrive",
            "conv_open",
            ratios["open_conversation_vs_arrive"],
        ),
        row(
            "`assignment.route` (queues) vs `Scheduler.arrive`",
            "pure_arrive",
            "route_route",
            ratios["assignment_route_vs_arrive"],
        ),
        row(
            "`conversations.close` (one decision) vs `Scheduler.close`",
            "pure_close",
            "conv_close",
            ratios["conversations_close_vs_close"],
        ),
        row(
            "`assignment.close` (one decision) vs `Scheduler.close`",
            "pure_close",
            "route_close",
            ratios["assignment_close_vs_close"],
        ),
    ]
    t_pure, t_service = tasks["per_op"]["pure_move"], tasks["per_op"]["service_move"]
    t_hand = tasks["per_op"]["by_hand_move"]
    t_bare = tasks["per_op"]["service_move_without_envelopes"]
    lines += [
        f"| `tasks.move_task` vs `commands.move_task` ({w['tasks']:,} tasks) "
        f"| {t_pure['us_best']} / {t_pure['us_median']} "
        f"| {t_service['us_best']} / {t_service['us_median']} "
        f"| {tasks['ratio_service_vs_pure']['best']}x "
        f"({tasks['ratio_service_vs_pure']['median_round']}x) |",
        f"| by hand on a `MemoryStore` (`get_task`, the command, `commit`) vs "
        f"`commands.move_task` | {t_pure['us_best']} / {t_pure['us_median']} "
        f"| {t_hand['us_best']} / {t_hand['us_median']} "
        f"| {tasks['ratio_by_hand_vs_pure']['best']}x "
        f"({tasks['ratio_by_hand_vs_pure']['median_round']}x) |",
        f"| `tasks.move_task` with event envelopes vs without "
        f"| {t_bare['us_best']} / {t_bare['us_median']} "
        f"| {t_service['us_best']} / {t_service['us_median']} "
        f"| {tasks['ratio_envelopes_vs_none']['best']}x "
        f"({tasks['ratio_envelopes_vs_none']['median_round']}x) |",
        "",
        f"Both assignment tenants ended in exactly the pure scheduler's state: "
        f"{'yes' if a['same_decisions'] and a['same_state_at_start'] else '**NO**'}; "
        f"stored tasks equal the pure snapshots: {'yes' if tasks['same_tasks'] else '**NO**'}. "
        f"Opening a session costs {result['memory']['session_open_us']} µs "
        "(a host opening one per request adds it to every call).",
    ]

    sql = result["sql"]
    counted = [name for name in ("sqlite_file", "postgresql") if name in sql]
    modes = (
        ("warm_session", "warm session"),
        ("session_per_call", "session per call"),
        ("host_transaction", "in the host's transaction"),
    )
    lines += [
        "",
        "**SQL round trips per call** once the process is current, SQL statements in "
        "parentheses (" + " = ".join(STORE_LABELS[s] for s in counted) + " unless shown; "
        "PostgreSQL's wire count from the libpq trace follows a slash where it differs):",
        "",
        "| call | " + " | ".join(label for _, label in modes) + " |",
        "|---|" + "---:|" * len(modes),
    ]
    for op in TRIP_OPS:
        cells = []
        for mode, _ in modes:
            found = {store: sql[store]["round_trips"][mode][op] for store in counted}
            texts = {
                store: f"{c['round_trips']} ({c['sql_statements']})" for store, c in found.items()
            }
            if len(set(texts.values())) == 1:
                cell = next(iter(texts.values()))
            else:
                cell = ", ".join(f"{STORE_LABELS[store]} {text}" for store, text in texts.items())
            pg = found.get("postgresql")
            if pg is not None and pg["wire_round_trips"] not in (None, pg["round_trips"]):
                cell += f" / {pg['wire_round_trips']}"
            cells.append(cell)
        lines.append(f"| {op} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Reads run in autocommit on both databases: one round trip each (on PostgreSQL "
        "SQLAlchemy's count may still include a `BEGIN` or `ROLLBACK` it never sends, so "
        "the wire count after the slash is the real one). On PostgreSQL a commit is one "
        "statement in autocommit (`cxflow.storage.sql.one_statement`), and a unit of work "
        "holds one pooled connection for its reads and its commit; on SQLite a commit is "
        "`BEGIN IMMEDIATE`, one statement per table and `COMMIT`, each a call into the "
        "library in this process, not a trip over a network. The statements of each call "
        "are listed in the JSON file (`sent`). The wire count also includes psycopg's own "
        "automatic prepared statements (`wire_prepares`, `wire_deallocates` in the JSON): "
        "a statement run for "
        "the fifth time on a connection is prepared first.",
    ]

    stores = [s for s in ("sqlite_file", "sqlite_file_full", "postgresql") if s in sql]
    rate_rows = (
        ("open_conversation_routed", "routings/s: `open_conversation` (routes; queues)"),
        ("assignment_route", "routings/s: `assignment.route` (queues)"),
        ("conversations_close", "closes/s: `conversations.close` (one decision)"),
        ("assignment_close", "closes/s: `assignment.close` (one decision)"),
        ("task_move", "task moves/s: `tasks.move_task`"),
        ("raw_driver_move", "baseline: task moves/s by hand with psycopg (read, update, outbox)"),
    )
    lines += [
        "",
        f"**Throughput** through the engine from one process, one call at a time, a new "
        f"session per call (wall clock; calls/s of the best / the median of {w['sql_rounds']} "
        f"rounds of {w['sql_ops_per_round']} calls, {w['sql_tasks_per_round']} moves):",
        "",
        "| path | " + " | ".join(STORE_LABELS[s] for s in stores) + " |",
        "|---|" + "---:|" * len(stores),
    ]
    for key, label in rate_rows:
        cells = [
            f"{sql[s]['rates'][key]['per_s_best']:,.0f} / "
            f"{sql[s]['rates'][key]['per_s_median']:,.0f}"
            if key in sql[s]["rates"]
            else "-"
            for s in stores
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append(
        "| first call of a cold process: scheduler rebuilt from the store (s) | "
        + " | ".join(f"{sql[s]['scheduler_rebuild_s']}" for s in stores)
        + " |"
    )
    server = result["postgresql_server"]
    if "sqlite_file" in sql and "sqlite_file_full" in sql:
        lines += [
            "",
            "SQLite: a file in WAL mode made by `sqlite_engine`, which sets "
            f"synchronous={sql['sqlite_file'].get('synchronous', '?')} (the log is synced at "
            "checkpoints, not at every commit); the synchronous=FULL column (measured "
            f"{sql['sqlite_file_full'].get('synchronous', '?')}) syncs on every commit, "
            "durable across power loss.",
        ]
    if result["postgresql"] != "measured":
        lines += ["", f"PostgreSQL {result['postgresql']}."]
    else:
        lines += [
            "",
            f"PostgreSQL {server.get('server_version', '?')} on loopback, fsync "
            f"{server.get('fsync', '?')}, synchronous_commit "
            f"{server.get('synchronous_commit', '?')} (a throwaway server: a durable one pays "
            "its commit flush on every write).",
        ]

    lines += [
        "",
        "**Where the time goes** (memory store, one warm session, cProfile): the share of "
        "each layer in the own time of the call (summing to 100%; a built-in such as "
        "`isinstance` counts in its caller's layer), then the functions with the most "
        "own time:",
        "",
    ]
    layers = [layer for layer, _ in _LAYERS] + ["other"]
    lines += [
        "| path | µs/call profiled | " + " | ".join(layers) + " |",
        "|---|---:|" + "---:|" * len(layers),
    ]
    for path, p in result["profile"].items():
        shares = p["layers_own_time_pct"]
        lines.append(
            f"| {path} | {p['us_per_op_profiled']} | "
            + " | ".join(f"{shares[layer]}%" for layer in layers)
            + " |"
        )
    lines += [""]
    for path, p in result["profile"].items():
        top = ", ".join(f"{t['function']} {t['pct']}%" for t in p["top_own_time_pct"][:5])
        lines.append(f"- {path}: {top}")
    lines += [
        "",
        "Layers: validation = the attrs `__init__` of every record (converters, validators) "
        "and `cxflow._validate`; serialisation = `to_dict`/`from_dict` and cattrs; "
        "attrs.evolve = attrs' own machinery; store = `MemoryStore`; scheduler core = "
        "`Scheduler` and its indexes; engine and services = `cxflow.app`; commands and "
        "records = the rest of cxflow. cProfile inflates code that makes many small calls "
        "(compare its µs/call with the unprofiled figures above).",
    ]
    c = result["commit"]
    small, large = c["sizes"]
    lines += [
        "",
        f"**Commit cost** (`bench_commit.py`, same run): {c['us_per_commit'][str(small)]} µs at "
        f"{small:,} stored routings, {c['us_per_commit'][str(large)]} µs at {large:,}: "
        f"{c['ratio_large_vs_small']}x.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return benchkit.main(argv, name=NAME, doc=__doc__ or "", measure=measure, render=render)


if __name__ == "__main__":
    raise SystemExit(main())
