"""Assignment scheduler (the heap): decisions per second, latency of one decision,
bytes per waiting conversation and per agent, and a naive scan of all agents.

Run from the repository root (after ``pip install -e '.[test]'``)::

    python benchmarks/bench_assignment.py            # full run (about 20 min), writes results
    python benchmarks/bench_assignment.py --quick    # smoke run, writes nothing

All figures come from one run on one machine and one core, so compare ratios,
not absolute times across machines. Results go to
``benchmarks/results/assignment.json``, ``assignment.md`` and the chart
``assignment.svg`` (copied to ``docs/assets/assignment.svg`` for the docs page).

Every workload is generated from one seed (``random.Random``), once, and
replayed identically for every strategy: the same agents, the same
conversations in the same order at the same instants, the same service times,
the same presence changes. Only the scheduler's decisions differ.

- **Population.** Agents hold skills out of 50, with a proficiency of 1-5 and
  a capacity of 1-5. The *target* profile gives every agent exactly 5 skills
  and no channel caps; the *mixed* profile gives 1-5 skills and caps chat at
  1..capacity for a fifth of the agents. A conversation (chat 70%, email 30%;
  plan enterprise 20%, large 30%, smb 50%; 5% VIP) needs no skill (10%), one
  skill (70%) or two (20%), taken from the skills of an agent drawn in
  proportion to capacity, so every conversation has agents who can take it.
- **Saturated steady state** (target profile): all agents online; arrivals
  fill every slot and then the backlog (1,000,000 waiting); then the timed
  loop: an agent (drawn in proportion to capacity) closes its oldest
  conversation, the queue drains into the freed slot (exactly one decision
  inside the timed ``close`` call), and one new conversation arrives (timed
  separately; it only queues) so the backlog stays constant.
- **Poisson arrivals** (mixed profile) at utilisation 0.5, 0.9 and 1.1 of the
  online slots: exponential inter-arrival and service times (mean 10 min);
  a conversation closes when its service ends. Starts from a memoryless
  steady state: utilisation times the slots arrive at the start, untimed.
  Before that, the first conversation of every need (channel and skill set)
  the day will see is routed and closed, creating its queue; that one-off
  cost is reported on its own ("first of a need"), not in the other figures.
- **Agent churn** (mixed profile, utilisation 0.9): 10% of agents start
  offline; every simulated minute 1% (or 10%) of all agents change presence,
  half going offline (their conversations go back to the queue and are
  rerouted) and half coming online (the queue drains into them).
- **Naive baseline**, in the same run: what many helpdesks do, one queue in
  order and a scan of all agents for every decision, started from the very
  state the least-load scheduler reached and fed the same closes and arrivals.
  It must make the same decisions (it is checked), only slower. The target's
  baseline scans all agents once per decision (for the free ones) and walks
  the queue against those; the *textbook* variant, shown for context, scans
  all agents for each waiting conversation it looks at.

Latency of one decision: each scheduler call is timed with
``time.perf_counter_ns`` (its ~0.1 us overhead included); percentiles are over
the calls that made exactly one decision (in saturation, every close).
Decisions per second: decisions over the time spent inside scheduler calls
(all of them, including calls that made no decision); in the saturated and
naive loops, of the median of 5 equal segments of the loop (the best is
reported too), so that a stall caused by another process on the machine
moves the percentiles but not the rate. Simulation bookkeeping and building
``Routing`` records happen outside the timed calls.

Garbage collection stays on during every timed loop; after building each
scheduler the benchmark calls ``gc.collect()`` and ``gc.freeze()`` (the long
lived state leaves the collector's view, as a host holding a large scheduler
should do). At the target size, the second half of the least-load loop runs
after ``gc.unfreeze()``, for comparison.

Memory (``tracemalloc``): bytes per waiting conversation is the growth of the
scheduler from 1,000,000 conversations queued (agents offline, every queue
already created), with the ``Routing`` records built beforehand and dropped
by the caller (not counted); "incl. ids" adds the conversation id strings the
scheduler keeps (``conv-0000001``, 12 characters). Bytes per agent is the
growth from putting 10,000 agents online and free (so in every free-agent
index), their ``Agent`` records and id strings included, minus the same
scheduler's queues without agents.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import math
import random
import resource
import shutil
import statistics
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import benchkit
from benchkit import machine_info
from sortedcontainers import SortedList

from cxflow.assignment import (
    Agent,
    LeastLoad,
    Presence,
    QueuePolicy,
    RoundRobin,
    Routing,
    Scheduler,
    SkillBased,
    Strategy,
    queue_key,
)
from cxflow.clock import epoch_us

NAME = "assignment"
SEED = 20260105
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
T0_US = epoch_us(T0)
SKILLS = tuple(f"skill-{i:02d}" for i in range(50))
CHANNELS = ("chat", "email")
PLANS = ("enterprise", "large", "smb")
PLAN_WEIGHTS = (0.2, 0.3, 0.5)
VIP_SHARE = 0.05
SERVICE_S = 600.0
"""Mean handling time of a conversation in the Poisson workloads (10 min)."""
OFFLINE_AT_START = 0.1
"""Share of agents offline when a churn workload starts."""

STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "round-robin": RoundRobin,
    "least-load": LeastLoad,
    "skill-based": SkillBased,
    "skill-based+spread": lambda: SkillBased(spread=True),
}
DEFAULT_STRATEGY = "least-load"
"""The scheduler's default; the targets are judged on it."""

TARGET_DECISIONS = 100_000
TARGET_P99_US = 20.0
TARGET_BYTES_PER_CONVERSATION = 300
TARGET_GROWTH = 1.25
TARGET_NAIVE_RATIO = 50.0


class Sizes:
    """How big each workload is: the full run, or the ``--quick`` smoke run."""

    def __init__(self, quick: bool) -> None:
        self.quick = quick
        if quick:
            self.agent_counts = (10, 100)
            self.target_agents = 100
            self.backlog = 3_000
            self.small_backlog = 300
            self.decisions = {10: 800, 100: 800}
            self.naive_decisions = {10: 200, 100: 200}
            self.poisson_arrivals = 1_500
            self.churn_arrivals = 1_500
            self.memory_conversations = 3_000
            self.memory_agents = 100
        else:
            self.agent_counts = (100, 1_000, 10_000, 100_000)
            self.target_agents = 10_000
            self.backlog = 1_000_000
            self.small_backlog = 100_000
            self.decisions = {100: 200_000, 1_000: 200_000, 10_000: 200_000, 100_000: 100_000}
            self.naive_decisions = {100: 20_000, 1_000: 5_000, 10_000: 2_000, 100_000: 300}
            self.poisson_arrivals = 150_000
            self.churn_arrivals = 100_000
            self.memory_conversations = 1_000_000
            self.memory_agents = 10_000
        self.utilisations = (0.5, 0.9, 1.1)
        self.chart_utilisation = 0.9
        self.churn_rates = (0.01, 0.10)

    def as_dict(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "agent_counts": list(self.agent_counts),
            "target_agents": self.target_agents,
            "backlog": self.backlog,
            "small_backlog": self.small_backlog,
            "saturated_decisions": {str(k): v for k, v in self.decisions.items()},
            "naive_decisions": {str(k): v for k, v in self.naive_decisions.items()},
            "poisson_arrivals": self.poisson_arrivals,
            "churn_arrivals": self.churn_arrivals,
            "utilisations": list(self.utilisations),
            "churn_rates_per_minute": list(self.churn_rates),
            "memory_conversations": self.memory_conversations,
            "memory_agents": self.memory_agents,
        }


# -- workloads ----------------------------------------------------------------------


class Population:
    """The agents of one run and the conversation mix drawn from their skills."""

    def __init__(self, count: int, *, profile: str) -> None:
        rnd = random.Random(f"{SEED}/agents/{profile}/{count}")
        self.count = count
        self.profile = profile
        self.agents: list[Agent] = []
        for i in range(count):
            skills = rnd.sample(SKILLS, 5 if profile == "target" else rnd.randint(1, 5))
            capacity = rnd.randint(1, 5)
            caps = {}
            if profile == "mixed" and rnd.random() < 0.2:
                caps = {"chat": rnd.randint(1, capacity)}
            self.agents.append(
                Agent(
                    id=f"agent-{i:06d}",
                    presence=Presence.ONLINE,
                    capacity=capacity,
                    channel_capacity=caps,
                    skills={skill: rnd.randint(1, 5) for skill in skills},
                )
            )
        self.capacity = sum(agent.capacity for agent in self.agents)
        self.slots = [i for i, agent in enumerate(self.agents) for _ in range(agent.capacity)]
        self._skills = [tuple(agent.skills) for agent in self.agents]

    def routing(self, rnd: random.Random, number: int, arrived_at: datetime) -> Routing:
        """Conversation ``number``: its needs come from an agent drawn by capacity."""
        draw = rnd.random()
        if draw < 0.1:
            skills: tuple[str, ...] = ()
        else:
            held = self._skills[self.slots[rnd.randrange(len(self.slots))]]
            skills = (
                (rnd.choice(held),) if draw < 0.8 or len(held) < 2 else tuple(rnd.sample(held, 2))
            )
        return Routing(
            conversation_id=f"conv-{number:07d}",
            channel=CHANNELS[0] if rnd.random() < 0.7 else CHANNELS[1],
            arrived_at=arrived_at,
            plan=rnd.choices(PLANS, PLAN_WEIGHTS)[0],
            vip=rnd.random() < VIP_SHARE,
            skills=skills,
        )


class SaturatedWorkload:
    """Arrivals that fill every slot and the backlog, then the timed loop's
    closing agents and its arrivals (one per close, to keep the backlog)."""

    def __init__(self, population: Population, backlog: int, decisions: int) -> None:
        rnd = random.Random(f"{SEED}/saturated/{population.count}/{backlog}")
        step = timedelta(milliseconds=1)
        filled = population.capacity + backlog
        self.fill = [population.routing(rnd, i, T0 + step * i) for i in range(filled)]
        self.extra = [
            population.routing(rnd, filled + k, T0 + step * (filled + k)) for k in range(decisions)
        ]
        agents, slots = population.agents, population.slots
        self.closers = [agents[slots[rnd.randrange(len(slots))]].id for _ in range(decisions)]


class PoissonWorkload:
    """A Poisson day: the start state, arrivals with their service times, and
    (with churn) the presence changes, all fixed before any strategy runs."""

    def __init__(
        self, population: Population, utilisation: float, arrivals: int, churn: float = 0.0
    ) -> None:
        rnd = random.Random(f"{SEED}/poisson/{population.count}/{utilisation}/{churn}")
        agents = population.agents
        offline: set[int] = set()
        if churn:
            offline = set(rnd.sample(range(len(agents)), int(len(agents) * OFFLINE_AT_START)))
        self.agents = [
            Agent(
                id=agent.id,
                presence=Presence.OFFLINE if i in offline else Presence.ONLINE,
                capacity=agent.capacity,
                channel_capacity=agent.channel_capacity,
                skills=agent.skills,
            )
            for i, agent in enumerate(agents)
        ]
        online_slots = sum(a.capacity for i, a in enumerate(agents) if i not in offline)
        rate = utilisation * online_slots / SERVICE_S  # arrivals per second
        self.utilisation = utilisation
        self.churn = churn
        self.prefill = [
            population.routing(rnd, i, T0 + timedelta(microseconds=i))
            for i in range(round(utilisation * online_slots))
        ]
        start = len(self.prefill)
        times: list[int] = []
        now = T0_US + start
        for _ in range(arrivals):
            now += max(1, round(rnd.expovariate(rate) * 1e6))
            times.append(now)
        self.arrivals = [
            population.routing(rnd, start + k, _instant(t)) for k, t in enumerate(times)
        ]
        self.arrival_us = times
        self.service_us = {
            routing.conversation_id: max(1, round(rnd.expovariate(1 / SERVICE_S) * 1e6))
            for routing in (*self.prefill, *self.arrivals)
        }
        self.changes: list[tuple[int, str, Presence]] = []
        if churn:
            online_ids = [a.id for i, a in enumerate(agents) if i not in offline]
            offline_ids = [a.id for i, a in enumerate(agents) if i in offline]
            half = max(1, round(len(agents) * churn / 2))
            minute = 60_000_000
            for at in range(T0_US + minute, times[-1], minute):
                leaving = _take_random(rnd, online_ids, half)
                coming = _take_random(rnd, offline_ids, half)
                online_ids += coming
                offline_ids += leaving
                for agent_id in leaving:
                    self.changes.append((at, agent_id, Presence.OFFLINE))
                for agent_id in coming:
                    self.changes.append((at, agent_id, Presence.ONLINE))


def _take_random(rnd: random.Random, items: list[str], count: int) -> list[str]:
    """Remove and return ``count`` items drawn at random (swap with the last)."""
    taken = []
    for _ in range(min(count, len(items))):
        i = rnd.randrange(len(items))
        items[i], items[-1] = items[-1], items[i]
        taken.append(items.pop())
    return taken


def _instant(us: int) -> datetime:
    return T0 + timedelta(microseconds=us - T0_US)


# -- the naive baseline ------------------------------------------------------------------


class NaiveAgent:
    __slots__ = ("capacity", "id", "idle_us", "load", "online", "skills")

    def __init__(self, agent_id: str, capacity: int, skills: Iterable[str]) -> None:
        self.id = agent_id
        self.online = True
        self.capacity = capacity
        self.load = 0
        self.skills = frozenset(skills)
        self.idle_us = 0


class NaiveScheduler:
    """What many helpdesks do: the agents in a list, the waiting conversations
    in one queue in order, and scans of all agents to decide; least load
    first, then longest idle, then agent id (cxflow's ``LeastLoad``).

    Two variants, making the same decisions:

    - ``textbook=False`` (the baseline of the target, generous to the naive
      side): one scan of all agents per event finds the free ones, then the
      queue is walked in order against those;
    - ``textbook=True``: the loop as usually written, one scan of all agents
      (online, room, skills) for each waiting conversation looked at, in
      queue order, until nobody is free.

    Channel caps, groups and declines are left out: the saturated workload
    has none."""

    def __init__(self, policy: QueuePolicy, *, textbook: bool = False) -> None:
        self.policy = policy
        self.textbook = textbook
        self.agents: list[NaiveAgent] = []
        self.queue: SortedList = SortedList()  # (queue key, conversation id)
        self.needs: dict[str, frozenset[str]] = {}  # waiting conversation -> skills
        self.holder: dict[str, NaiveAgent] = {}
        self.scans = 0

    def arrive(self, routing: Routing, at_us: int) -> list[tuple[str, str]]:
        cid = routing.conversation_id
        skills = frozenset(routing.skills)
        self.scans += 1
        best = self._best(self.agents if self.textbook else self._free(), skills)
        if best is None:
            self.queue.add((queue_key(self.policy, routing), cid))
            self.needs[cid] = skills
            return []
        self._take(best, cid, at_us)
        return [(cid, best.id)]

    def close(self, cid: str, at_us: int) -> list[tuple[str, str]]:
        agent = self.holder.pop(cid)
        agent.load -= 1
        if self.textbook:
            return self._dispatch_textbook(at_us)
        return self._dispatch(at_us)

    def _free(self) -> list[NaiveAgent]:
        """The scan of all agents."""
        return [a for a in self.agents if a.online and a.load < a.capacity]

    def _best(self, agents: list[NaiveAgent], skills: frozenset[str]) -> NaiveAgent | None:
        best = None
        best_rank: tuple[float, int, str] = (0.0, 0, "")
        for agent in agents:
            if agent.online and agent.load < agent.capacity and skills <= agent.skills:
                rank = (agent.load / agent.capacity, agent.idle_us, agent.id)
                if best is None or rank < best_rank:
                    best, best_rank = agent, rank
        return best

    def _take(self, agent: NaiveAgent, cid: str, at_us: int) -> None:
        agent.load += 1
        agent.idle_us = max(agent.idle_us, at_us)
        self.holder[cid] = agent

    def _dispatch(self, at_us: int) -> list[tuple[str, str]]:
        free = self._free()
        self.scans += 1
        decisions: list[tuple[str, str]] = []
        taken = []
        if free:
            for item in self.queue:
                cid = item[1]
                best = self._best(free, self.needs[cid])
                if best is None:
                    continue
                self._take(best, cid, at_us)
                decisions.append((cid, best.id))
                taken.append(item)
                free = [a for a in free if a.load < a.capacity]
                if not free:
                    break
        self._forget(taken)
        return decisions

    def _dispatch_textbook(self, at_us: int) -> list[tuple[str, str]]:
        free = sum(1 for a in self.agents if a.online and a.load < a.capacity)
        self.scans += 1
        decisions: list[tuple[str, str]] = []
        taken = []
        if free:
            for item in self.queue:
                cid = item[1]
                self.scans += 1
                best = self._best(self.agents, self.needs[cid])
                if best is None:
                    continue
                self._take(best, cid, at_us)
                decisions.append((cid, best.id))
                taken.append(item)
                if best.load >= best.capacity:
                    free -= 1
                    if not free:
                        break
        self._forget(taken)
        return decisions

    def _forget(self, taken: list[tuple[int, str]]) -> None:
        for item in taken:
            self.queue.remove(item)
            del self.needs[item[1]]


def naive_copies(
    scheduler: Scheduler, population: Population, fill: list[Routing], held: dict[str, deque[str]]
) -> list[NaiveScheduler]:
    """Both naive schedulers, each in exactly the state ``scheduler`` reached."""
    holders = {cid: agent_id for agent_id, cids in held.items() for cid in cids}
    policy = scheduler.policy
    waiting = [r for r in fill if r.conversation_id not in holders]
    ordered = sorted((queue_key(policy, r), r.conversation_id) for r in waiting)
    shared: dict[tuple[str, ...], frozenset[str]] = {}
    needs = {r.conversation_id: shared.setdefault(r.skills, frozenset(r.skills)) for r in waiting}
    copies = []
    for textbook in (False, True):
        naive = NaiveScheduler(scheduler.policy, textbook=textbook)
        by_id = {}
        for agent in population.agents:
            state = scheduler.agent_state(agent.id)
            copy = NaiveAgent(agent.id, agent.capacity, agent.skills)
            copy.load = state.load
            copy.idle_us = state.idle_us
            naive.agents.append(copy)
            by_id[agent.id] = copy
        naive.holder = {cid: by_id[agent_id] for cid, agent_id in holders.items()}
        naive.queue = SortedList(ordered)
        naive.needs = dict(needs)
        copies.append(naive)
    return copies


# -- measuring ------------------------------------------------------------------------


def percentiles(samples: list[int]) -> dict[str, float]:
    """p50, p99 and p99.9 (nearest rank) of nanosecond samples, in microseconds."""
    if not samples:
        return {"p50_us": 0.0, "p99_us": 0.0, "p999_us": 0.0, "max_us": 0.0}
    ordered = sorted(samples)
    count = len(ordered)

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q * count) - 1)] / 1000

    return {
        "p50_us": round(rank(0.50), 2),
        "p99_us": round(rank(0.99), 2),
        "p999_us": round(rank(0.999), 2),
        "max_us": round(ordered[-1] / 1000, 1),
    }


SEGMENTS = 5
"""Timed loops are cut into this many equal segments; rates are the median
segment's (and the best), so a stall from another process on the machine
moves the percentiles but not the rate."""


def segmented(calls: list[tuple[int, int]]) -> dict[str, Any]:
    """Decisions per second of the median and the best segment of ``calls``
    (each ``(ns, decisions)``), and the median segment's mean time per decision."""
    size = max(1, len(calls) // SEGMENTS)
    rates = []
    for first in range(0, size * SEGMENTS if len(calls) >= SEGMENTS else len(calls), size):
        chunk = calls[first : first + size]
        spent = sum(ns for ns, _ in chunk)
        made = sum(n for _, n in chunk)
        if spent and made:
            rates.append(made / (spent / 1e9))
    if not rates:
        return {"decisions_per_s": 0, "decisions_per_s_best": 0, "mean_us": 0.0}
    median = statistics.median(rates)
    return {
        "decisions_per_s": round(median),
        "decisions_per_s_best": round(max(rates)),
        "mean_us": round(1e6 / median, 3),
    }


def _settle_gc() -> None:
    gc.collect()
    gc.freeze()


def saturated_run(
    population: Population,
    work: SaturatedWorkload,
    strategy: str,
    backlog: int,
    decisions: int,
    *,
    naive_decisions: int = 0,
    unfrozen_loop: bool = False,
) -> dict[str, Any]:
    """Build the saturated state, then time ``decisions`` close+arrive rounds."""
    scheduler = Scheduler(strategy=STRATEGIES[strategy]())
    for agent in population.agents:
        scheduler.put_agent(agent, at=T0)
    held: dict[str, deque[str]] = {agent.id: deque() for agent in population.agents}
    fill = work.fill[: population.capacity + backlog]
    arrive, close = scheduler.arrive, scheduler.close
    clock = time.perf_counter_ns
    assign_ns = assigned = queue_ns = 0
    for routing in fill:
        start = clock()
        made = arrive(routing, at=routing.arrived_at)
        spent = clock() - start
        if made:
            assign_ns += spent
            for decision in made:
                held[decision.agent_id].append(decision.conversation_id)
                assigned += 1
        else:
            queue_ns += spent
    if scheduler.waiting_count != backlog or assigned != population.capacity:
        raise AssertionError(f"saturation not reached: {scheduler.waiting_count} waiting")
    naives = naive_copies(scheduler, population, fill, held) if naive_decisions else []
    naive_held = [{k: deque(v) for k, v in held.items()} for _ in naives]
    _settle_gc()

    def loop(first: int, count: int, record: list[tuple[str, str]] | None) -> dict[str, Any]:
        close_ns: list[int] = []
        arrive_ns: list[int] = []
        calls: list[tuple[int, int]] = []
        made_total = empty = 0
        for k in range(first, first + count):
            cid = held[work.closers[k]].popleft()
            routing = work.extra[k]
            at = routing.arrived_at
            start = clock()
            made = close(cid, at=at)
            spent = clock() - start
            calls.append((spent, len(made)))
            if len(made) == 1:
                close_ns.append(spent)
            elif not made:
                empty += 1
            for decision in made:
                held[decision.agent_id].append(decision.conversation_id)
                if record is not None:
                    record.append((decision.conversation_id, decision.agent_id))
            made_total += len(made)
            start = clock()
            made = arrive(routing, at=at)
            arrive_ns.append(clock() - start)
            if made:
                raise AssertionError("an arrival found a free agent in saturation")
        return {
            "decisions": made_total,
            "closes_without_decision": empty,
            **segmented(calls),
            **percentiles(close_ns),
            "arrivals_per_s": round(len(arrive_ns) / (sum(arrive_ns) / 1e9)),
            "arrival": percentiles(arrive_ns),
        }

    record: list[tuple[str, str]] | None = [] if naives else None
    first_half = decisions // 2 if unfrozen_loop else decisions
    row: dict[str, Any] = {
        "strategy": strategy,
        "agents": population.count,
        "backlog": backlog,
        "build_assign_per_s": round(assigned / (assign_ns / 1e9)),
        "build_enqueue_per_s": round(backlog / (queue_ns / 1e9)),
        **loop(0, first_half, record),
    }
    gc.unfreeze()
    if unfrozen_loop:
        row["without_gc_freeze"] = loop(first_half, decisions - first_half, None)
    if naives and record is not None:
        generous, textbook = naives
        row["naive"] = naive_run(generous, naive_held[0], work, record, naive_decisions)
        del generous
        gc.collect()
        row["naive_textbook"] = naive_run(
            textbook, naive_held[1], work, record, max(1, naive_decisions // 4)
        )
    del scheduler
    gc.collect()
    return row


def naive_run(
    naive: NaiveScheduler,
    held: dict[str, deque[str]],
    work: SaturatedWorkload,
    expected: list[tuple[str, str]],
    decisions: int,
) -> dict[str, Any]:
    """Replay the first closes and arrivals of the timed loop on the naive scheduler."""
    clock = time.perf_counter_ns
    close_ns: list[int] = []
    arrive_ns: list[int] = []
    calls: list[tuple[int, int]] = []
    made_all: list[tuple[str, str]] = []
    for k in range(decisions):
        cid = held[work.closers[k]].popleft()
        routing = work.extra[k]
        at_us = epoch_us(routing.arrived_at)
        start = clock()
        made = naive.close(cid, at_us)
        spent = clock() - start
        calls.append((spent, len(made)))
        if len(made) == 1:
            close_ns.append(spent)
        for made_cid, agent_id in made:
            held[agent_id].append(made_cid)
        made_all += made
        start = clock()
        naive.arrive(routing, at_us)
        arrive_ns.append(clock() - start)
    return {
        "decisions": len(made_all),
        **segmented(calls),
        **percentiles(close_ns),
        "scans_per_decision": round(naive.scans / max(1, len(made_all)), 2),
        "arrivals_per_s": round(len(arrive_ns) / (sum(arrive_ns) / 1e9)),
        "same_decisions": made_all == expected[: len(made_all)],
    }


def poisson_run(work: PoissonWorkload, count: int, strategy: str) -> dict[str, Any]:
    """Replay a Poisson day; every scheduler call after the start state is timed."""
    scheduler = Scheduler(strategy=STRATEGIES[strategy]())
    for agent in work.agents:
        scheduler.put_agent(agent, at=T0)
    new_needs = _needs_warmup(scheduler, [*work.prefill, *work.arrivals])
    service = work.service_us
    closes: list[tuple[int, int, str, int]] = []
    tokens: dict[str, int] = {}
    sequence = 0

    def follow(made: list[Any], now_us: int) -> None:
        nonlocal sequence
        for decision in made:
            cid = decision.conversation_id
            token = tokens[cid] = tokens.get(cid, 0) + 1
            if decision.agent_id is not None:
                sequence += 1
                heapq.heappush(closes, (now_us + service[cid], sequence, cid, token))

    for routing in work.prefill:
        follow(scheduler.arrive(routing, at=routing.arrived_at), T0_US)
    _settle_gc()

    clock = time.perf_counter_ns
    single: list[int] = []
    calls = {"arrive": [0, 0, 0], "close": [0, 0, 0], "presence": [0, 0, 0]}  # calls, ns, made
    arrive, close, set_presence = scheduler.arrive, scheduler.close, scheduler.set_presence
    changes = work.changes
    change_i = 0
    for routing, arrival_us in zip(work.arrivals, work.arrival_us, strict=True):
        while True:
            next_close = closes[0][0] if closes else arrival_us + 1
            next_change = changes[change_i][0] if change_i < len(changes) else arrival_us + 1
            if next_change <= next_close and next_change <= arrival_us:
                at_us, agent_id, presence = changes[change_i]
                change_i += 1
                at = _instant(at_us)
                start = clock()
                made = set_presence(agent_id, presence, at=at)
                spent = clock() - start
                kind = "presence"
            elif next_close <= arrival_us:
                at_us, _, cid, token = heapq.heappop(closes)
                if tokens.get(cid) != token:
                    continue  # requeued since: this close is stale
                at = _instant(at_us)
                start = clock()
                made = close(cid, at=at)
                spent = clock() - start
                del tokens[cid]
                kind = "close"
            else:
                break
            _count(calls[kind], spent, made, single)
            follow(made, at_us)
        at = routing.arrived_at
        start = clock()
        made = arrive(routing, at=at)
        spent = clock() - start
        _count(calls["arrive"], spent, made, single)
        follow(made, arrival_us)
    waiting = scheduler.waiting_count
    gc.unfreeze()
    del scheduler
    gc.collect()
    total_ns = sum(c[1] for c in calls.values())
    assignments = sum(c[2] for c in calls.values())
    presence = calls["presence"]
    return {
        "strategy": strategy,
        "agents": count,
        "utilisation": work.utilisation,
        "churn_per_minute": work.churn,
        "arrivals": calls["arrive"][0],
        "closes": calls["close"][0],
        "presence_changes": presence[0],
        "decisions": assignments,
        "decisions_per_s": round(assignments / (total_ns / 1e9)) if total_ns else 0,
        "calls_per_s": round(sum(c[0] for c in calls.values()) / (total_ns / 1e9)),
        "single_decision_calls": len(single),
        **percentiles(single),
        "presence_call_mean_us": round(presence[1] / presence[0] / 1000, 1) if presence[0] else 0,
        "decisions_per_presence_call": round(presence[2] / presence[0], 2) if presence[0] else 0,
        "waiting_at_end": waiting,
        "new_needs": len(new_needs),
        "new_need": percentiles(new_needs),
    }


def _count(slot: list[int], spent: int, made: list[Any], single: list[int]) -> None:
    assignments = sum(1 for decision in made if decision.agent_id is not None)
    slot[0] += 1
    slot[1] += spent
    slot[2] += assignments
    if assignments == 1 and len(made) == 1:
        single.append(spent)


def _needs_warmup(scheduler: Scheduler, routings: list[Routing]) -> list[int]:
    """Create every queue the routings need (one conversation each, then
    closed); return the time of each of those first arrivals (ns)."""
    seen: dict[tuple[str, frozenset[str]], Routing] = {}
    for routing in routings:
        seen.setdefault((routing.channel, frozenset(routing.skills)), routing)
    clock = time.perf_counter_ns
    spent = []
    for number, routing in enumerate(seen.values()):
        cid = f"warm-{number}"
        first = Routing(
            conversation_id=cid, channel=routing.channel, arrived_at=T0, skills=routing.skills
        )
        start = clock()
        scheduler.arrive(first, at=T0)
        spent.append(clock() - start)
        scheduler.close(cid, at=T0)
    return spent


def bytes_per_conversation(population: Population, routings: list[Routing]) -> dict[str, Any]:
    """Traced growth of a scheduler from queuing ``routings`` (agents offline)."""
    scheduler = Scheduler()
    for agent in population.agents:
        scheduler.put_agent(Agent(id=agent.id, capacity=agent.capacity, skills=agent.skills), at=T0)
    _needs_warmup(scheduler, routings)
    ids = sum(sys.getsizeof(routing.conversation_id) for routing in routings)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for routing in routings:
        scheduler.arrive(routing, at=routing.arrived_at)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if scheduler.waiting_count != len(routings):
        raise AssertionError("every conversation should wait")
    count = len(routings)
    structure = current - base
    del scheduler
    gc.collect()
    return {
        "conversations": count,
        "structure_only": round(structure / count, 1),
        "incl_ids": round((structure + ids) / count, 1),
        "peak_structure_only": round((peak - base) / count, 1),
        "traced_mib": round(structure / 2**20, 1),
    }


def bytes_per_agent(population: Population, routings: list[Routing]) -> dict[str, Any]:
    """Traced bytes per online free agent, per strategy (see the module docstring)."""

    def traced(strategy: str, with_agents: bool) -> int:
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        scheduler = Scheduler(strategy=STRATEGIES[strategy]())
        if with_agents:
            for agent in population.agents:
                scheduler.put_agent(
                    Agent(
                        id=str(agent.id.encode().decode()),  # a fresh string, held by the record
                        presence=Presence.ONLINE,
                        capacity=agent.capacity,
                        skills=dict(agent.skills),
                    ),
                    at=T0,
                )
        _needs_warmup(scheduler, routings)
        current = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del scheduler
        return current - base

    result: dict[str, Any] = {"agents": population.count}
    for strategy in STRATEGIES:
        grown = traced(strategy, True) - traced(strategy, False)
        result[strategy] = round(grown / population.count, 1)
    return result


# -- the whole run ----------------------------------------------------------------------


def _log(quick: bool, message: str) -> None:
    if not quick:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(quick: bool) -> dict[str, Any]:
    sizes = Sizes(quick)
    started = time.perf_counter()
    saturated: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    for count in sizes.agent_counts:
        population = Population(count, profile="target")
        decisions = sizes.decisions[count]
        _log(quick, f"saturated: generating {count:,} agents, backlog {sizes.backlog:,}")
        work = SaturatedWorkload(population, sizes.backlog, decisions)
        for strategy in STRATEGIES:
            _log(quick, f"saturated: {count:,} agents, {strategy}")
            is_default = strategy == DEFAULT_STRATEGY
            saturated.append(
                saturated_run(
                    population,
                    work,
                    strategy,
                    sizes.backlog,
                    decisions,
                    naive_decisions=sizes.naive_decisions[count] if is_default else 0,
                    unfrozen_loop=is_default and count == sizes.target_agents,
                )
            )
        if count in (sizes.target_agents, sizes.target_agents // 10):
            _log(quick, f"saturated: {count:,} agents, backlog {sizes.small_backlog:,}")
            saturated.append(
                saturated_run(population, work, DEFAULT_STRATEGY, sizes.small_backlog, decisions)
            )
        if count == sizes.target_agents:
            _log(quick, "memory")
            waiting = work.fill[population.capacity :][: sizes.memory_conversations]
            memory["per_waiting_conversation"] = bytes_per_conversation(population, waiting)
            memory["per_agent"] = bytes_per_agent(population, work.fill)
        del work
        gc.collect()

    poisson: list[dict[str, Any]] = []
    for count in sizes.agent_counts:
        population = Population(count, profile="mixed")
        rates = sizes.utilisations if count == sizes.target_agents else (sizes.chart_utilisation,)
        for utilisation in rates:
            work_p = PoissonWorkload(population, utilisation, sizes.poisson_arrivals)
            for strategy in STRATEGIES:
                _log(quick, f"poisson: {count:,} agents, utilisation {utilisation}, {strategy}")
                poisson.append(poisson_run(work_p, count, strategy))
        if count == sizes.target_agents:
            for churn in sizes.churn_rates:
                work_p = PoissonWorkload(population, 0.9, sizes.churn_arrivals, churn)
                for strategy in STRATEGIES:
                    _log(quick, f"churn: {count:,} agents, {churn:.0%}/min, {strategy}")
                    poisson.append(poisson_run(work_p, count, strategy))

    result = {
        "benchmark": NAME,
        "machine": machine_info(),
        "seed": SEED,
        "parameters": {
            **sizes.as_dict(),
            "skills": len(SKILLS),
            "skills_per_agent": {"target profile": 5, "mixed profile": "1-5"},
            "capacity_per_agent": "1-5",
            "channels": list(CHANNELS),
            "service_mean_s": SERVICE_S,
            "default_strategy": DEFAULT_STRATEGY,
            "gc": "gc.collect() + gc.freeze() after each build; collection on in timed loops",
        },
        "saturated": saturated,
        "poisson": [row for row in poisson if not row["churn_per_minute"]],
        "churn": [row for row in poisson if row["churn_per_minute"]],
        "memory": memory,
    }
    result["growth"] = growth(result, sizes)
    result["naive"] = [
        {
            "agents": row["agents"],
            "cxflow_decisions_per_s": row["decisions_per_s"],
            "naive_decisions_per_s": row["naive"]["decisions_per_s"],
            "ratio": round(row["naive"]["mean_us"] / row["mean_us"], 1),
            "naive_p99_us": row["naive"]["p99_us"],
            "naive_decisions": row["naive"]["decisions"],
            "textbook_decisions_per_s": row["naive_textbook"]["decisions_per_s"],
            "textbook_ratio": round(row["naive_textbook"]["mean_us"] / row["mean_us"], 1),
            "textbook_scans_per_decision": row["naive_textbook"]["scans_per_decision"],
            "textbook_decisions": row["naive_textbook"]["decisions"],
            "same_decisions": row["naive"]["same_decisions"]
            and row["naive_textbook"]["same_decisions"],
        }
        for row in saturated
        if "naive" in row
    ]
    result["targets"] = targets(result, sizes)
    result["process_peak_rss_mib"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    result["duration_s"] = round(time.perf_counter() - started, 1)
    return result


def _row(result: dict[str, Any], agents: int, backlog: int, strategy: str) -> dict[str, Any]:
    for row in result["saturated"]:
        if (row["agents"], row["backlog"], row["strategy"]) == (agents, backlog, strategy):
            return row
    raise KeyError((agents, backlog, strategy))


def growth(result: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    """Mean time per decision, ratio per 10x agents, 10x backlog and both."""
    counts = sizes.agent_counts
    backlog, small = sizes.backlog, sizes.small_backlog
    agents: dict[str, dict[str, float]] = {}
    for strategy in STRATEGIES:
        agents[strategy] = {
            f"{low}->{high}": round(
                _row(result, high, backlog, strategy)["mean_us"]
                / _row(result, low, backlog, strategy)["mean_us"],
                3,
            )
            for low, high in itertools.pairwise(counts)
        }
    target, lower = sizes.target_agents, sizes.target_agents // 10
    at_target = _row(result, target, backlog, DEFAULT_STRATEGY)["mean_us"]
    return {
        "per_10x_agents": agents,
        "per_10x_backlog": round(
            at_target / _row(result, target, small, DEFAULT_STRATEGY)["mean_us"], 3
        ),
        "per_10x_agents_and_backlog": round(
            at_target / _row(result, lower, small, DEFAULT_STRATEGY)["mean_us"], 3
        ),
        "basis": "mean time per decision in the saturated loop",
    }


def targets(result: dict[str, Any], sizes: Sizes) -> dict[str, Any]:
    row = _row(result, sizes.target_agents, sizes.backlog, DEFAULT_STRATEGY)
    naive = next(n for n in result["naive"] if n["agents"] == sizes.target_agents)
    growth_steps = result["growth"]["per_10x_agents"][DEFAULT_STRATEGY]
    target = sizes.target_agents
    relevant = {
        step: ratio
        for step, ratio in growth_steps.items()
        if step.endswith(f"->{target}") or step.startswith(f"{target}->")
    } or growth_steps
    worst_growth = max(relevant.values())
    size = result["memory"]["per_waiting_conversation"]["incl_ids"]
    where = (
        f"saturated, {sizes.target_agents:,} agents x 5 skills, {sizes.backlog:,} waiting, "
        f"{DEFAULT_STRATEGY}"
    )
    return {
        "decisions_per_s": {
            "target": f">= {TARGET_DECISIONS:,}",
            "measured": row["decisions_per_s"],
            "met": row["decisions_per_s"] >= TARGET_DECISIONS,
            "where": where,
        },
        "p99_us": {
            "target": f"<= {TARGET_P99_US}",
            "measured": row["p99_us"],
            "met": row["p99_us"] <= TARGET_P99_US,
            "where": where,
        },
        "bytes_per_waiting_conversation": {
            "target": f"<= {TARGET_BYTES_PER_CONVERSATION}",
            "measured": size,
            "met": size <= TARGET_BYTES_PER_CONVERSATION,
            "where": "incl. the conversation id strings the scheduler keeps",
        },
        "growth_per_10x_agents": {
            "target": f"<= {TARGET_GROWTH}",
            "measured": worst_growth,
            "met": worst_growth <= TARGET_GROWTH,
            "where": "worst of "
            + ", ".join(f"{k}: {v}" for k, v in relevant.items())
            + f" (mean time per decision, {DEFAULT_STRATEGY}, {sizes.backlog:,} waiting)",
        },
        "vs_naive_scan": {
            "target": f">= {TARGET_NAIVE_RATIO:g}x",
            "measured": naive["ratio"],
            "met": naive["ratio"] >= TARGET_NAIVE_RATIO and naive["same_decisions"],
            "where": f"mean time per decision at {sizes.target_agents:,} agents; "
            f"same decisions: {naive['same_decisions']}",
        },
    }


# -- rendering ---------------------------------------------------------------------------


def _us(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    p = result["parameters"]
    targets_ = result["targets"]
    lines = [
        f"Measured on {m['cpu'] or 'unknown CPU'} ({m['cpus']} CPUs), "
        f"{m['implementation']} {m['python']}, {m['platform']}; one process, one core; "
        f"seed {result['seed']}; whole run {result['duration_s']:,} s.",
        "",
        "| target | measured | met |",
        "|---|---:|---|",
    ]
    labels = {
        "decisions_per_s": "decisions/s",
        "p99_us": "p99 of one decision (us)",
        "bytes_per_waiting_conversation": "bytes per waiting conversation",
        "growth_per_10x_agents": "cost growth per 10x agents",
        "vs_naive_scan": "faster than the naive scan",
    }
    for key, label in labels.items():
        t = targets_[key]
        measured = t["measured"]
        shown = f"{measured:,}"
        if key in ("vs_naive_scan", "growth_per_10x_agents"):
            shown += "x"
        lines.append(
            f"| {label} {t['target']} | {shown} | {'met' if t['met'] else '**not met**'} |"
        )
    lines += [
        "",
        f"Targets are judged at {p['target_agents']:,} agents with 5 skills each and "
        f"{p['backlog']:,} waiting, on the default strategy ({p['default_strategy']}).",
        "",
        f"**Saturated steady state** (every slot taken, {p['backlog']:,} waiting unless "
        "stated; each close frees a slot and makes one decision; latency of one `close`; "
        f"decisions/s of the median of {SEGMENTS} equal segments of the loop, and of the "
        "best):",
        "",
        "| agents | waiting | strategy | decisions/s | best segment | p50 us | p99 us "
        "| p99.9 us | arrivals/s (queued) | build: assigned/s | build: queued/s |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["saturated"]:
        lines.append(
            f"| {row['agents']:,} | {row['backlog']:,} | {row['strategy']} "
            f"| {row['decisions_per_s']:,} | {row['decisions_per_s_best']:,} "
            f"| {_us(row['p50_us'])} | {_us(row['p99_us'])} "
            f"| {_us(row['p999_us'])} | {row['arrivals_per_s']:,} "
            f"| {row['build_assign_per_s']:,} | {row['build_enqueue_per_s']:,} |"
        )
    unfrozen = [row for row in result["saturated"] if "without_gc_freeze" in row]
    for row in unfrozen:
        u = row["without_gc_freeze"]
        lines += [
            "",
            f"Without `gc.freeze()` ({row['agents']:,} agents, {row['backlog']:,} waiting, "
            f"{row['strategy']}, the next {u['decisions']:,} decisions): "
            f"{u['decisions_per_s']:,} decisions/s, p50 {_us(u['p50_us'])} us, "
            f"p99 {_us(u['p99_us'])} us, p99.9 {_us(u['p999_us'])} us, "
            f"max {_us(u['max_us'])} us.",
        ]
    g = result["growth"]
    counts = p["agent_counts"]
    steps = [f"{low}->{high}" for low, high in itertools.pairwise(counts)]
    lines += [
        "",
        "**Growth of the cost of one decision** (mean time per decision, saturated, "
        f"{p['backlog']:,} waiting) per 10x agents:",
        "",
        "| strategy | " + " | ".join(f"{s.replace('->', ' -> ')} agents" for s in steps) + " |",
        "|---|" + "---:|" * len(steps),
    ]
    for strategy, ratios in g["per_10x_agents"].items():
        lines.append(f"| {strategy} | " + " | ".join(f"{ratios[s]}x" for s in steps) + " |")
    lines += [
        "",
        f"Per 10x backlog ({p['small_backlog']:,} -> {p['backlog']:,} waiting, "
        f"{p['target_agents']:,} agents): {g['per_10x_backlog']}x; per 10x agents and "
        f"backlog together ({p['target_agents'] // 10:,} agents with {p['small_backlog']:,} "
        f"waiting -> {p['target_agents']:,} with {p['backlog']:,}): "
        f"{g['per_10x_agents_and_backlog']}x.",
        "",
        "**Against a naive scan of all agents per decision** (saturated, "
        f"{p['backlog']:,} waiting, least-load, replaying the same closes and arrivals from "
        "the same state). *One scan per decision* (the target's baseline) scans all agents "
        "once per event for the free ones, then walks the queue in order against them; "
        "*textbook* scans all agents (online, room, skills) for each waiting conversation "
        "it looks at, in queue order:",
        "",
        "| agents | cxflow decisions/s | one scan per decision: decisions/s | p99 us "
        "| cxflow faster by | textbook: decisions/s | scans per decision | cxflow faster by "
        "| same decisions |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in result["naive"]:
        lines.append(
            f"| {row['agents']:,} | {row['cxflow_decisions_per_s']:,} "
            f"| {row['naive_decisions_per_s']:,} | {_us(row['naive_p99_us'])} "
            f"| {row['ratio']:,}x | {row['textbook_decisions_per_s']:,} "
            f"| {row['textbook_scans_per_decision']} | {row['textbook_ratio']:,}x "
            f"| {'yes' if row['same_decisions'] else '**no**'} "
            f"({row['naive_decisions']:,} and {row['textbook_decisions']:,}) |"
        )
    lines += [
        "",
        "**Poisson arrivals** (mixed profile: 1-5 skills per agent, a fifth of agents "
        f"with a chat cap; mean handling {p['service_mean_s'] / 60:g} min; "
        f"{p['poisson_arrivals']:,} arrivals timed; latency over the calls that made "
        "exactly one decision; decisions/s over the time of every call):",
        "",
        "| agents | utilisation | strategy | decisions/s | calls/s | p50 us | p99 us "
        "| p99.9 us | waiting at end | needs | first of a need: p50 us |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["poisson"]:
        lines.append(
            f"| {row['agents']:,} | {row['utilisation']} | {row['strategy']} "
            f"| {row['decisions_per_s']:,} | {row['calls_per_s']:,} | {_us(row['p50_us'])} "
            f"| {_us(row['p99_us'])} | {_us(row['p999_us'])} | {row['waiting_at_end']:,} "
            f"| {row['new_needs']:,} | {_us(row['new_need']['p50_us'])} |"
        )
    lines += [
        "",
        "Before the clock starts, the first conversation of every need (channel and set "
        "of skills) the day will see is routed and closed, which creates its queue and files "
        "it with the agents eligible for it (the *first of a need* column: that one-off cost "
        "is left out of the other figures, as in a tenant whose needs are all known).",
    ]
    lines += [
        "",
        "**Agent churn** (mixed profile, utilisation 0.9 of the online slots, "
        f"{p['churn_arrivals']:,} arrivals; every simulated minute that share of all agents "
        "changes presence, half going offline and half coming online):",
        "",
        "| agents | churn/min | strategy | decisions/s | p50 us | p99 us | p99.9 us "
        "| presence changes | us per change | decisions per change |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["churn"]:
        lines.append(
            f"| {row['agents']:,} | {row['churn_per_minute']:.0%} | {row['strategy']} "
            f"| {row['decisions_per_s']:,} | {_us(row['p50_us'])} | {_us(row['p99_us'])} "
            f"| {_us(row['p999_us'])} | {row['presence_changes']:,} "
            f"| {_us(row['presence_call_mean_us'])} | {row['decisions_per_presence_call']} |"
        )
    conv = result["memory"]["per_waiting_conversation"]
    agent = result["memory"]["per_agent"]
    lines += [
        "",
        f"**Memory** (tracemalloc): {conv['conversations']:,} waiting conversations take "
        f"{conv['incl_ids']:,} bytes each with their id strings ({conv['structure_only']:,} "
        f"without; peak while queuing {conv['peak_structure_only']:,}); an online free agent "
        f"takes {agent[DEFAULT_STRATEGY]:,} bytes with its `Agent` record ({agent['agents']:,} "
        "agents; "
        + ", ".join(f"{s} {agent[s]:,}" for s in STRATEGIES)
        + f"). Process peak RSS {result['process_peak_rss_mib']:,} MiB (workloads included).",
        "",
        "Garbage collection: after each build, `gc.collect()` and `gc.freeze()`; the "
        "collector stays on during the timed loops.",
    ]
    return "\n".join(lines)


# -- the chart ---------------------------------------------------------------------------

COLOURS = {
    "round-robin": "#1f77b4",
    "least-load": "#d62728",
    "skill-based": "#2ca02c",
    "skill-based+spread": "#9467bd",
}


def chart(result: dict[str, Any]) -> str:
    """Two panels (decisions/s and p99 against agents, log x), one line per
    strategy: solid saturated, dashed Poisson at the chart utilisation."""
    p = result["parameters"]
    backlog = p["backlog"]
    rho = 0.9
    series: list[tuple[str, bool, list[tuple[int, dict[str, Any]]]]] = []
    for strategy in STRATEGIES:
        sat = [
            (r["agents"], r)
            for r in result["saturated"]
            if r["strategy"] == strategy and r["backlog"] == backlog
        ]
        poi = [
            (r["agents"], r)
            for r in result["poisson"]
            if r["strategy"] == strategy and r["utilisation"] == rho
        ]
        series.append((strategy, False, sorted(sat, key=lambda x: x[0])))
        series.append((strategy, True, sorted(poi, key=lambda x: x[0])))
    counts = sorted({n for _, _, points in series for n, _ in points})
    width, height = 950, 440
    panel_w, panel_h = 340, 250
    left = (80, 530)
    top = 50
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    lo, hi = math.log10(counts[0]), math.log10(counts[-1])

    def x_of(panel: int, agents: int) -> float:
        span = hi - lo or 1
        return left[panel] + (math.log10(agents) - lo) / span * panel_w

    panels = [
        (
            "decisions per second (thousands)",
            lambda r: r["decisions_per_s"] / 1000,
            TARGET_DECISIONS / 1000,
            False,
        ),
        ("p99 of one decision (us, log scale)", lambda r: r["p99_us"], TARGET_P99_US, True),
    ]
    for panel, (title, value, target, log_y) in enumerate(panels):
        values = [value(r) for _, _, points in series for _, r in points]
        peak = max(target, *values)
        if log_y:
            low = 10 ** math.floor(math.log10(max(0.01, min(target, *values))))
            high = 10 ** math.ceil(math.log10(peak))
            ticks = [
                m * 10**e
                for e in range(round(math.log10(low)), round(math.log10(high)) + 1)
                for m in (1, 2, 5)
                if low <= m * 10**e <= high
            ]

            def y_of(v: float, low: float = low, high: float = high) -> float:
                span = math.log10(high) - math.log10(low)
                return top + panel_h - (math.log10(max(v, low)) - math.log10(low)) / span * panel_h

        else:
            step = _nice_step(peak / 5)
            y_max = step * math.ceil(peak * 1.05 / step)
            ticks = [step * i for i in range(round(y_max / step) + 1)]

            def y_of(v: float, y_max: float = y_max) -> float:
                return top + panel_h - v / y_max * panel_h

        x0 = left[panel]
        out.append(
            f'<text x="{x0 + panel_w / 2}" y="{top - 18}" text-anchor="middle" '
            f'font-weight="bold">{title}</text>'
        )
        for tick in ticks:
            y = y_of(tick)
            out.append(
                f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" stroke="#ddd"/>'
            )
            out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
        for n in counts:
            x = x_of(panel, n)
            out.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + panel_h}" stroke="#eee"/>'
            )
            out.append(
                f'<text x="{x:.1f}" y="{top + panel_h + 16}" text-anchor="middle">{n:,}</text>'
            )
        y = y_of(target)
        out.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + panel_w}" y2="{y:.1f}" stroke="#777" '
            'stroke-width="1.5" stroke-dasharray="2,3"/>'
        )
        out.append(
            f'<text x="{x0 + panel_w + 4}" y="{y + 4:.1f}" fill="#555">target {target:g}</text>'
        )
        out.append(
            f'<rect x="{x0}" y="{top}" width="{panel_w}" height="{panel_h}" fill="none" '
            'stroke="#333"/>'
        )
        out.append(
            f'<text x="{x0 + panel_w / 2}" y="{top + panel_h + 36}" text-anchor="middle">'
            "agents (log scale)</text>"
        )
        for strategy, dashed, points in series:
            if not points:
                continue
            path = " ".join(f"{x_of(panel, n):.1f},{y_of(value(r)):.1f}" for n, r in points)
            dash = ' stroke-dasharray="6,4"' if dashed else ""
            colour = COLOURS[strategy]
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
            )
            for n, r in points:
                out.append(
                    f'<circle cx="{x_of(panel, n):.1f}" cy="{y_of(value(r)):.1f}" r="3" '
                    f'fill="{colour}"/>'
                )
    legend_y = top + panel_h + 62
    for i, strategy in enumerate(STRATEGIES):
        x = 80 + i * 200
        out.append(
            f'<line x1="{x}" y1="{legend_y}" x2="{x + 24}" y2="{legend_y}" '
            f'stroke="{COLOURS[strategy]}" stroke-width="3"/>'
        )
        out.append(f'<text x="{x + 30}" y="{legend_y + 4}">{strategy}</text>')
    out.append(
        f'<text x="80" y="{legend_y + 28}">solid: saturated steady state, {backlog:,} waiting, '
        "5 skills per agent; dotted grey: the target</text>"
    )
    out.append(
        f'<text x="80" y="{legend_y + 46}">dashed: Poisson arrivals at utilisation {rho}, '
        "1-5 skills per agent</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def main(argv: list[str] | None = None) -> int:
    kept: dict[str, Any] = {}

    def measure_and_keep(quick: bool) -> dict[str, Any]:
        kept["result"] = result = measure(quick)
        return result

    code = benchkit.main(
        argv, name=NAME, doc=__doc__ or "", measure=measure_and_keep, render=render
    )
    result = kept.get("result")
    if code == 0 and result is not None and not result["parameters"]["quick"]:
        args = list(sys.argv[1:] if argv is None else argv)
        out = Path(args[args.index("--out") + 1]) if "--out" in args else benchkit.RESULTS
        svg = out / f"{NAME}.svg"
        svg.write_text(chart(result))
        print(f"wrote {svg}")
        if out.resolve() == benchkit.RESULTS.resolve():
            docs = Path(__file__).resolve().parent.parent / "docs" / "assets" / f"{NAME}.svg"
            docs.parent.mkdir(exist_ok=True)
            shutil.copyfile(svg, docs)
            print(f"wrote {docs}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
