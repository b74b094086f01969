"""Scheduler properties: a hypothesis state machine drives the fast incremental
``Scheduler`` and a plain reference model side by side.

The reference is the definition in the scheduler's module docstring, written
as simply as possible: after every operation, repeatedly take the first
waiting conversation (queue order) that some free eligible agent can take and
give it to the best such agent by the strategy (agents who declined it only
when nobody else can), until none is left. It scans everything every time.

Besides matching the reference, every step checks invariants computed from the
scheduler's own output only: no automatic assignment to an agent at capacity,
no conversation held twice or lost, no free eligible agent idle while a
conversation it could take waits, and every automatic decision took the first
waiting conversation anyone could take.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cxflow.assignment import (
    Agent,
    AgentState,
    Decision,
    LeastLoad,
    Need,
    Presence,
    QueuePolicy,
    RoundRobin,
    Routing,
    Scheduler,
    SkillBased,
    Strategy,
)
from cxflow.assignment.scheduler import queue_key
from cxflow.clock import epoch_us
from cxflow.errors import ConflictError, CxflowError, NotFound, ValidationError
from cxflow.priority import Priority

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
AGENT_IDS = ("a0", "a1", "a2", "a3", "a4")
CHANNELS = ("chat", "email")
SKILLS = ("billing", "tech", "sales", "legal")
GROUPS = ("g1", "g2")
PLANS = (None, "enterprise", "large", "smb", "startup")


# -- a custom strategy without index_key: the scheduler scans for it -------------------


@attrs.frozen
class MostSkilled:
    """Rank-only: the agent with the most skills, then the fewest conversations,
    then the oldest turn."""

    name: str = "most-skilled"

    def rank(self, agent: AgentState, need: Need) -> tuple[Any, ...]:
        return (-len(agent.agent.skills), agent.load, agent.turn)

    def describe(self, rank: tuple[Any, ...]) -> str:
        return f"{-rank[0]} skills, load {rank[1]}"


# -- the reference model ---------------------------------------------------------------


@dataclass
class RefConv:
    routing: Routing
    key: int
    need: Need
    agent: str | None = None
    declined: tuple[str, ...] = ()
    overflow: bool = False


@dataclass
class RefAgent:
    agent: Agent
    turn: int
    idle_us: int
    load: int = 0
    channel_load: dict[str, int] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)

    def view(self) -> AgentState:
        """The agent as a strategy sees it."""
        state = AgentState(self.agent, turn=self.turn, idle_us=self.idle_us)
        state.load = self.load
        state.channel_load = dict(self.channel_load)
        state.held = set(self.held)
        return state


def profile(agent: Agent) -> Agent:
    """``agent`` without the fields the scheduler keeps (``turn``, ``idle_since``)."""
    return attrs.evolve(agent, turn=0, idle_since=None)


def qualified(agent: Agent, need: Need) -> bool:
    """Skills, group and channel allow ``agent`` to hold a conversation of ``need``."""
    return (
        all(skill in agent.skills for skill in need.skills)
        and (need.group is None or need.group in agent.groups)
        and agent.channel_capacity.get(need.channel, 1) != 0
    )


def full(agent: Agent, load: int, channel_load: Mapping[str, int], channel: str) -> bool:
    """At capacity overall or on ``channel``."""
    limit = agent.channel_capacity.get(channel)
    return load >= agent.capacity or (
        limit is not None and channel_load.get(channel, 0) >= limit
    )


def free_eligible(agent: Agent, load: int, channel_load: Mapping[str, int], need: Need) -> bool:
    """Online, not full, qualified: could take a conversation of ``need`` now."""
    return (
        agent.presence is Presence.ONLINE
        and not full(agent, load, channel_load, need.channel)
        and qualified(agent, need)
    )


class Reference:
    """The scheduler's semantics, by brute force."""

    def __init__(
        self,
        strategy: Strategy,
        group_strategies: Mapping[str, Strategy],
        policy: QueuePolicy,
    ) -> None:
        self.strategy = strategy
        self.group_strategies = dict(group_strategies)
        self.policy = policy
        self.agents: dict[str, RefAgent] = {}
        self.convs: dict[str, RefConv] = {}
        self.counter = 0
        self.overflow_total = 0

    # reading

    def waiting(self) -> list[str]:
        items = sorted((c.key, cid) for cid, c in self.convs.items() if c.agent is None)
        return [cid for _, cid in items]

    def strategy_for(self, need: Need) -> Strategy:
        if need.group is not None and need.group in self.group_strategies:
            return self.group_strategies[need.group]
        return self.strategy

    def can_take(self, agent: RefAgent, conv: RefConv) -> bool:
        return free_eligible(agent.agent, agent.load, agent.channel_load, conv.need)

    def best(self, conv: RefConv) -> RefAgent | None:
        able = [a for a in self.agents.values() if self.can_take(a, conv)]
        fresh = [a for a in able if a.agent.id not in conv.declined]
        pool = fresh or able
        if not pool:
            return None
        strategy = self.strategy_for(conv.need)
        ranked = sorted(((*strategy.rank(a.view(), conv.need), a.agent.id), a) for a in pool)
        return ranked[0][1]

    # state changes

    def take(self, agent: RefAgent, cid: str, at_us: int) -> None:
        conv = self.convs[cid]
        assert conv.agent is None
        conv.agent = agent.agent.id
        agent.load += 1
        channel = conv.need.channel
        agent.channel_load[channel] = agent.channel_load.get(channel, 0) + 1
        agent.held.add(cid)
        self.counter += 1
        agent.turn = self.counter
        agent.idle_us = max(agent.idle_us, at_us)

    def release(self, cid: str) -> RefAgent:
        conv = self.convs[cid]
        assert conv.agent is not None
        agent = self.agents[conv.agent]
        agent.load -= 1
        agent.channel_load[conv.need.channel] -= 1
        agent.held.discard(cid)
        conv.agent = None
        conv.overflow = False
        return agent

    def decline(self, cid: str, agent_id: str) -> None:
        conv = self.convs[cid]
        if agent_id not in conv.declined:
            conv.declined = (*conv.declined, agent_id)

    def come_online(self, agent: RefAgent, at_us: int) -> None:
        agent.turn = max(agent.turn, self.counter)
        agent.idle_us = max(agent.idle_us, at_us)

    def settle(self, at_us: int) -> list[Decision]:
        decisions = []
        while True:
            for cid in self.waiting():
                winner = self.best(self.convs[cid])
                if winner is not None:
                    self.take(winner, cid, at_us)
                    decisions.append(Decision(cid, winner.agent.id, "auto"))
                    break
            else:
                return decisions

    # operations (validate first, then change: an error leaves the state alone)

    def put_agent(self, agent: Agent, at: datetime) -> list[Decision]:
        at_us = epoch_us(at)
        decisions: list[Decision] = []
        state = self.agents.get(agent.id)
        if state is None:
            idle = epoch_us(agent.idle_since) if agent.idle_since else 0
            state = self.agents[agent.id] = RefAgent(agent, agent.turn, idle)
            if agent.presence is Presence.ONLINE:
                self.come_online(state, at_us)
            self.counter = max(self.counter, agent.turn)
        else:
            previous = state.agent.presence
            state.agent = agent
            if agent.presence is Presence.OFFLINE and previous is not Presence.OFFLINE:
                for cid in sorted(state.held, key=lambda c: (self.convs[c].key, c)):
                    self.release(cid)
                    self.decline(cid, agent.id)
                    decisions.append(Decision(cid, None, "agent_offline", agent.id))
            if agent.presence is Presence.ONLINE and previous is not Presence.ONLINE:
                self.come_online(state, at_us)
        return decisions + self.settle(at_us)

    def set_presence(self, agent_id: str, presence: Presence, at: datetime) -> list[Decision]:
        if agent_id not in self.agents:
            raise NotFound("agent", agent_id)
        return self.put_agent(attrs.evolve(self.agents[agent_id].agent, presence=presence), at)

    def arrive(self, routing: Routing, at: datetime) -> list[Decision]:
        if routing.conversation_id in self.convs:
            raise ConflictError("duplicate")
        need = Need(routing.channel, routing.group, routing.skills)
        self.convs[routing.conversation_id] = RefConv(
            routing, queue_key(self.policy, routing), need, declined=routing.declined
        )
        return self.settle(epoch_us(at))

    def _known(self, cid: str) -> RefConv:
        if cid not in self.convs:
            raise NotFound("routing", cid)
        return self.convs[cid]

    def close(self, cid: str, at: datetime) -> list[Decision]:
        conv = self._known(cid)
        if conv.agent is not None:
            self.release(cid)
        del self.convs[cid]
        return self.settle(epoch_us(at))

    def requeue(self, cid: str, at: datetime) -> list[Decision]:
        conv = self._known(cid)
        if conv.agent is None:
            raise ValidationError("conversation_id", "already waiting")
        agent = self.release(cid)
        return [Decision(cid, None, "unassigned", agent.agent.id), *self.settle(epoch_us(at))]

    def no_answer(self, cid: str, agent_id: str, at: datetime) -> list[Decision]:
        conv = self._known(cid)
        if conv.agent != agent_id:
            return []
        self.release(cid)
        self.decline(cid, agent_id)
        return [Decision(cid, None, "no_answer", agent_id), *self.settle(epoch_us(at))]

    def assign(self, cid: str, agent_id: str, at: datetime, overflow: bool) -> list[Decision]:
        conv = self._known(cid)
        if agent_id not in self.agents:
            raise NotFound("agent", agent_id)
        target = self.agents[agent_id]
        if conv.agent == agent_id:
            raise ValidationError("agent_id", "already holds it")
        if target.agent.presence is Presence.OFFLINE or not qualified(target.agent, conv.need):
            raise ValidationError("agent_id", "cannot take it")
        over = full(target.agent, target.load, target.channel_load, conv.need.channel)
        if over and not overflow:
            raise ValidationError("agent_id", "full")
        previous = conv.agent
        if previous is not None:
            self.release(cid)
        at_us = epoch_us(at)
        self.take(target, cid, at_us)
        conv.overflow = over
        self.overflow_total += over
        decision = Decision(
            cid, agent_id, "manual" if previous is None else "transfer", previous, over
        )
        return [decision, *self.settle(at_us)]


# -- the state machine -----------------------------------------------------------------

presences = st.sampled_from(
    [Presence.ONLINE, Presence.ONLINE, Presence.ONLINE, Presence.AWAY, Presence.OFFLINE]
)
skill_maps = st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=2, max_size=4)
channel_caps = st.one_of(
    st.just({}), st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 3), max_size=2)
)
group_sets = st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True) | st.just([])
needed_skills = st.lists(st.sampled_from(SKILLS[:3]), max_size=2, unique=True)
conversation_groups = st.sampled_from((None, None, *GROUPS))
agents = st.builds(
    Agent,
    id=st.sampled_from(AGENT_IDS),
    presence=presences,
    capacity=st.integers(0, 3) | st.integers(1, 3),
    channel_capacity=channel_caps,
    skills=skill_maps,
    groups=group_sets,
    # a stored record brings its own turn and idle instant (used for new agents only)
    turn=st.integers(0, 3),
    idle_since=st.none() | st.integers(0, 3600).map(lambda s: T0 + timedelta(seconds=s)),
)
picks = st.integers(0, 1 << 16)


def pick(items: list[str], index: int) -> str | None:
    return items[index % len(items)] if items else None


class SchedulerMachine(RuleBasedStateMachine):
    """Random operations on a ``Scheduler`` and the ``Reference`` side by side."""

    make_strategy: ClassVar[Callable[[], Strategy]] = LeastLoad
    make_group_strategies: ClassVar[Callable[[], dict[str, Strategy]]] = dict
    policy: ClassVar[QueuePolicy] = QueuePolicy()

    def __init__(self) -> None:
        super().__init__()
        self.strategy = type(self).make_strategy()
        self.group_strategies = type(self).make_group_strategies()
        self.scheduler = Scheduler(
            strategy=self.strategy,
            group_strategies=self.group_strategies,
            policy=self.policy,
        )
        self.ref = Reference(self.strategy, self.group_strategies, self.policy)
        self.now = T0
        self.next_id = 0
        self.keys: dict[str, int] = {}
        self.needs: dict[str, Need] = {}
        self.alive: set[str] = set()
        self.closed: set[str] = set()

    # driving both sides

    def both(
        self, live: Callable[[], list[Decision]], ref: Callable[[], list[Decision]]
    ) -> list[Decision]:
        """Run one operation on both; same error type, or the same decisions."""
        try:
            expected = ref()
        except CxflowError as exc:
            try:
                got = live()
            except type(exc):
                return []
            raise AssertionError(f"expected {type(exc).__name__}, got {got}") from None
        before = self.snapshot()
        decisions = live()
        assert decisions == expected
        self.check_decisions(before, decisions)
        return decisions

    def snapshot(self) -> dict[str, tuple[int, dict[str, int]]]:
        """Each agent's load and channel loads (before an operation)."""
        return {
            state.id: (state.load, dict(state.channel_load)) for state in self.scheduler.agents()
        }

    def check_decisions(
        self, before: dict[str, tuple[int, dict[str, int]]], decisions: list[Decision]
    ) -> None:
        """Checks from the scheduler's output alone: replay the automatic decisions
        from the state just before them."""
        autos = [d for d in decisions if d.reason == "auto"]
        assert all(d.reason == "auto" for d in decisions[len(decisions) - len(autos):])
        for d in decisions:
            if d.reason in ("manual", "transfer"):
                load, channel_load = before[d.agent_id]
                agent = self.scheduler.agent_state(d.agent_id).agent
                channel = self.needs[d.conversation_id].channel
                assert d.overflow == full(agent, load, channel_load, channel)
        # the state before the automatic decisions: undo them from the final state
        loads = {s.id: s.load for s in self.scheduler.agents()}
        channel_loads = {s.id: dict(s.channel_load) for s in self.scheduler.agents()}
        waiting = set(self.scheduler.waiting())
        for d in reversed(autos):
            assert d.agent_id is not None
            loads[d.agent_id] -= 1
            channel_loads[d.agent_id][self.needs[d.conversation_id].channel] -= 1
            waiting.add(d.conversation_id)
        profiles = {s.id: s.agent for s in self.scheduler.agents()}
        for d in autos:
            assert d.agent_id is not None
            cid = d.conversation_id
            need = self.needs[cid]
            agent = profiles[d.agent_id]
            # never an automatic assignment to an agent at (or over) capacity
            assert free_eligible(agent, loads[agent.id], channel_loads[agent.id], need)
            able = [
                other
                for other in profiles.values()
                if free_eligible(other, loads[other.id], channel_loads[other.id], need)
            ]
            declined = self.scheduler.declined(cid)
            if agent.id in declined:  # a declined agent only when nobody else can
                assert all(other.id in declined for other in able)
            # queue order: nothing ahead of it could be taken by anyone free
            for other_cid in waiting:
                if (self.keys[other_cid], other_cid) < (self.keys[cid], cid):
                    for other in profiles.values():
                        assert not free_eligible(
                            other, loads[other.id], channel_loads[other.id], self.needs[other_cid]
                        ), f"{cid} went to {agent.id} while {other_cid} waited ahead"
            waiting.discard(cid)
            loads[agent.id] += 1
            channel_loads[agent.id][need.channel] = channel_loads[agent.id].get(need.channel, 0) + 1

    def alive_ids(self, held: bool = False) -> list[str]:
        """Open conversations (only the assigned ones with ``held``)."""
        if held:
            return sorted(cid for cid in self.alive if self.ref.convs[cid].agent is not None)
        return sorted(self.alive)

    # rules

    @initialize(initial=st.lists(agents, min_size=2, max_size=5, unique_by=lambda a: a.id))
    def start(self, initial: list[Agent]) -> None:
        for agent in initial:
            self.both(
                lambda a=agent: self.scheduler.put_agent(a, at=self.now),
                lambda a=agent: self.ref.put_agent(a, self.now),
            )

    @rule(seconds=st.integers(-60, 900))
    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    @rule(agent=agents)
    def put_agent(self, agent: Agent) -> None:
        self.both(
            lambda: self.scheduler.put_agent(agent, at=self.now),
            lambda: self.ref.put_agent(agent, self.now),
        )

    @rule(agent_id=st.sampled_from(AGENT_IDS), presence=presences)
    def set_presence(self, agent_id: str, presence: Presence) -> None:
        self.both(
            lambda: self.scheduler.set_presence(agent_id, presence, at=self.now),
            lambda: self.ref.set_presence(agent_id, presence, self.now),
        )

    @rule(agent_id=st.sampled_from(AGENT_IDS), capacity=st.integers(0, 3))
    def change_capacity(self, agent_id: str, capacity: int) -> None:
        if agent_id not in self.ref.agents:
            return
        agent = attrs.evolve(self.ref.agents[agent_id].agent, capacity=capacity)
        self.put_agent(agent)

    @rule(agent_id=st.sampled_from(AGENT_IDS), skills=skill_maps, groups=group_sets)
    def change_skills(self, agent_id: str, skills: dict[str, int], groups: list[str]) -> None:
        if agent_id not in self.ref.agents:
            return
        agent = attrs.evolve(self.ref.agents[agent_id].agent, skills=skills, groups=groups)
        self.put_agent(agent)

    @rule(
        channel=st.sampled_from(CHANNELS),
        plan=st.sampled_from(PLANS),
        vip=st.booleans(),
        priority=st.sampled_from(list(Priority)),
        skills=needed_skills,
        group=conversation_groups,
        waited=st.integers(0, 3600),
        declined=st.lists(st.sampled_from(AGENT_IDS), max_size=2, unique=True),
        reuse=st.none() | picks,
    )
    def arrive(
        self,
        channel: str,
        plan: str | None,
        vip: bool,
        priority: Priority,
        skills: list[str],
        group: str | None,
        waited: int,
        declined: list[str],
        reuse: int | None,
    ) -> None:
        """A new conversation (sometimes reusing the id of a closed one, sometimes
        already declined by some agents, as a restored record may be)."""
        cid = None if reuse is None else pick(sorted(self.closed), reuse)
        if cid is None:
            cid = f"c{self.next_id:03d}"
            self.next_id += 1
        self.closed.discard(cid)
        routing = Routing(
            conversation_id=cid,
            channel=channel,
            arrived_at=self.now - timedelta(seconds=waited),
            plan=plan,
            vip=vip,
            priority=priority,
            skills=skills,
            group=group,
            declined=declined,
        )
        self.arrive_routing(routing)

    def arrive_routing(self, routing: Routing) -> None:
        cid = routing.conversation_id
        self.keys[cid] = queue_key(self.policy, routing)
        self.needs[cid] = Need(routing.channel, routing.group, routing.skills)
        self.alive.add(cid)
        self.both(
            lambda: self.scheduler.arrive(routing, at=self.now),
            lambda: self.ref.arrive(routing, self.now),
        )

    @precondition(lambda self: len(self.alive) < 40)
    @rule(count=st.integers(1, 80), skill=st.sampled_from(SKILLS[:2]), spacing=st.integers(0, 60))
    def arrive_burst(self, count: int, skill: str, spacing: int) -> None:
        """Many conversations of one need: a long heap (compaction, stale entries)."""
        for _ in range(count):
            cid = f"c{self.next_id:03d}"
            self.next_id += 1
            arrived = self.now - timedelta(seconds=spacing * (self.next_id % 7))
            self.arrive_routing(
                Routing(conversation_id=cid, channel="email", arrived_at=arrived, skills=[skill])
            )

    @rule(data=st.data())
    def close_many(self, data: st.DataObject) -> None:
        """Close a random share of the open conversations, one by one."""
        alive = self.alive_ids()
        if not alive:
            return
        chosen = data.draw(st.lists(st.sampled_from(alive), unique=True, max_size=len(alive)))
        for cid in chosen:
            self.close_one(cid)

    @rule(index=picks)
    def arrive_again(self, index: int) -> None:
        cid = pick(self.alive_ids(), index)
        if cid is None:
            return
        routing = attrs.evolve(self.ref.convs[cid].routing, agent=None, assigned_at=None)
        self.both(
            lambda: self.scheduler.arrive(routing, at=self.now),
            lambda: self.ref.arrive(routing, self.now),
        )

    @rule(index=picks, unknown=st.booleans())
    def close(self, index: int, unknown: bool) -> None:
        cid = "nope" if unknown else pick(self.alive_ids(), index)
        if cid is None:
            return
        self.close_one(cid)

    def close_one(self, cid: str) -> None:
        self.both(
            lambda: self.scheduler.close(cid, at=self.now),
            lambda: self.ref.close(cid, self.now),
        )
        if cid in self.alive:
            self.alive.discard(cid)
            self.closed.add(cid)

    @rule(index=picks, held=st.booleans())
    def requeue(self, index: int, held: bool) -> None:
        cid = pick(self.alive_ids(held), index)
        if cid is None:
            return
        self.both(
            lambda: self.scheduler.requeue(cid, at=self.now),
            lambda: self.ref.requeue(cid, self.now),
        )

    @rule(index=picks, holder=st.booleans(), agent_id=st.sampled_from(AGENT_IDS))
    def no_answer(self, index: int, holder: bool, agent_id: str) -> None:
        cid = pick(self.alive_ids(holder), index)
        if cid is None:
            return
        if holder:
            agent_id = self.ref.convs[cid].agent or agent_id
        self.both(
            lambda: self.scheduler.no_answer(cid, agent_id, at=self.now),
            lambda: self.ref.no_answer(cid, agent_id, self.now),
        )

    @rule(
        index=picks, agent_id=st.sampled_from(AGENT_IDS), overflow=st.booleans(), held=st.booleans()
    )
    def assign(self, index: int, agent_id: str, overflow: bool, held: bool) -> None:
        """A manual assignment (``held``: a transfer)."""
        cid = pick(self.alive_ids(held), index)
        if cid is None:
            return
        self.both(
            lambda: self.scheduler.assign(cid, agent_id, at=self.now, overflow=overflow),
            lambda: self.ref.assign(cid, agent_id, self.now, overflow),
        )

    @rule()
    def restore(self) -> None:
        """Rebuild the scheduler from records mid-run; the run goes on with it."""
        live = self.scheduler
        restored = Scheduler.restore(
            [live.agent_record(agent_id) for agent_id in self.ref.agents],
            self.routing_records(),
            strategy=self.strategy,
            group_strategies=self.group_strategies,
            policy=self.policy,
        )
        restored.overflow_total = live.overflow_total
        self.scheduler = restored

    def routing_records(self) -> Iterable[Routing]:
        for cid in self.alive_ids():
            conv = self.ref.convs[cid]
            yield attrs.evolve(
                conv.routing,
                agent=conv.agent,
                assigned_at=None if conv.agent is None else self.now,
                overflow=conv.overflow,
                declined=conv.declined,
            )

    # invariants

    @invariant()
    def same_state_as_the_reference(self) -> None:
        scheduler, ref = self.scheduler, self.ref
        assert scheduler.waiting() == ref.waiting()
        assert scheduler.waiting_count == len(ref.waiting())
        assert scheduler.overflow_total == ref.overflow_total
        assert set(ref.convs) == self.alive
        for cid, conv in ref.convs.items():
            assert scheduler.holder(cid) == conv.agent, cid
            assert scheduler.declined(cid) == conv.declined, cid
            assert scheduler.overflow(cid) == conv.overflow, cid
        assert [s.id for s in scheduler.agents()] == list(ref.agents)
        for state in scheduler.agents():
            expected = ref.agents[state.id]
            assert profile(state.agent) == profile(expected.agent)
            assert state.load == expected.load, state.id
            assert {k: n for k, n in state.channel_load.items() if n} == {
                k: n for k, n in expected.channel_load.items() if n
            }
            assert state.held == expected.held, state.id
            assert (state.turn, state.idle_us) == (expected.turn, expected.idle_us), state.id

    @invariant()
    def nothing_held_twice_or_lost(self) -> None:
        held: dict[str, str] = {}
        for state in self.scheduler.agents():
            assert state.load == len(state.held)
            for channel, count in state.channel_load.items():
                assert count == sum(1 for c in state.held if self.needs[c].channel == channel)
            for cid in state.held:
                assert cid not in held, f"{cid} held by {held.get(cid)} and {state.id}"
                held[cid] = state.id
                assert self.scheduler.holder(cid) == state.id
        waiting = self.scheduler.waiting()
        assert len(waiting) == len(set(waiting))
        assert not set(waiting) & set(held)
        assert set(waiting) | set(held) == self.alive

    @invariant()
    def explain_agrees(self) -> None:
        """``explain`` of a few conversations (it is O(agents + queue)): holder,
        place in the queue, and eligible agents as the reference sees them."""
        waiting = self.ref.waiting()
        alive = self.alive_ids()
        for cid in alive[len(alive) // 2:][:3]:
            conv = self.ref.convs[cid]
            explanation = self.scheduler.explain(cid)
            assert explanation.holder == conv.agent
            assert explanation.need == conv.need
            assert explanation.state == ("waiting" if conv.agent is None else "assigned")
            expected = {
                a.agent.id
                for a in self.ref.agents.values()
                if a.agent.id == conv.agent
                or free_eligible(a.agent, a.load, a.channel_load, conv.need)
            }
            eligible = [c for c in explanation.candidates if c.eligible]
            assert {c.agent_id for c in eligible} == expected
            assert all(c.reasons for c in explanation.candidates if not c.eligible)
            assert len(explanation.candidates) == len(self.ref.agents)
            if conv.agent is None:
                assert explanation.ahead == waiting.index(cid)
                assert explanation.winner is None
            else:
                assert explanation.winner == eligible[0].agent_id
                assert [c.declined for c in eligible] == sorted(c.declined for c in eligible)

    @invariant()
    def no_free_agent_idles_while_it_could_work(self) -> None:
        for cid in self.scheduler.waiting():
            for state in self.scheduler.agents():
                assert not free_eligible(
                    state.agent, state.load, state.channel_load, self.needs[cid]
                ), f"{state.id} is free for waiting {cid}"


_SETTINGS = settings(  # examples: the hypothesis profile's (see conftest.py)
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def _machine(
    name: str,
    strategy: Callable[[], Strategy],
    groups: Callable[[], dict[str, Strategy]] = dict,
    policy: QueuePolicy | None = None,
) -> Any:
    machine = type(
        name,
        (SchedulerMachine,),
        {
            "make_strategy": staticmethod(strategy),
            "make_group_strategies": staticmethod(groups),
            "policy": policy if policy is not None else QueuePolicy(),
        },
    )
    machine.TestCase.settings = _SETTINGS
    return machine.TestCase


TestRoundRobin = _machine("RoundRobinMachine", RoundRobin)
TestLeastLoad = _machine("LeastLoadMachine", LeastLoad, policy=QueuePolicy(aging=None))
TestSkillBased = _machine("SkillBasedMachine", SkillBased)
TestSkillBasedSpread = _machine(
    "SkillBasedSpreadMachine", lambda: SkillBased(spread=True), policy=QueuePolicy(aging=None)
)
TestGroupStrategies = _machine(
    "GroupStrategiesMachine",
    LeastLoad,
    lambda: {"g1": RoundRobin(), "g2": SkillBased(spread=True)},
)
TestScanStrategies = _machine(
    "ScanStrategiesMachine",
    MostSkilled,
    lambda: {"g1": SkillBased(), "g2": MostSkilled()},
    policy=QueuePolicy(aging=timedelta(seconds=90)),
)


# -- round-robin spreads the work evenly -----------------------------------------------


@settings(deadline=None)
@given(agent_count=st.integers(2, 6), arrivals=st.integers(0, 60), data=st.data())
def test_round_robin_spreads_equal_agents_within_one(
    agent_count: int, arrivals: int, data: st.DataObject
) -> None:
    scheduler = Scheduler(strategy=RoundRobin())
    for n in range(agent_count):
        agent = Agent(id=f"a{n}", presence=Presence.ONLINE, capacity=1000)
        scheduler.put_agent(agent, at=T0 + timedelta(seconds=data.draw(st.integers(0, 5))))
    for n in range(arrivals):
        at = T0 + timedelta(seconds=10 + n)
        routing = Routing(conversation_id=f"c{n}", channel="chat", arrived_at=at)
        assert [d.reason for d in scheduler.arrive(routing, at=at)] == ["auto"]
        counts = [state.load for state in scheduler.agents()]
        assert max(counts) - min(counts) <= 1
