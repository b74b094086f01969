"""The scheduler: one tenant's in-memory assignment engine (the heap).

Waiting conversations sit in one heap per distinct ``Need`` (channel, group,
required skills), all ordered by the same key (``QueuePolicy.order_key``).
Every agent keeps the list of heaps it is eligible for, so when an agent frees
a slot, its next conversation is the smallest top among those heaps: a few
dozen comparisons, whatever the number of agents or the backlog. Free agents
sit in sorted indexes (one per skill, group and ``ANY``, per strategy), so an
arriving conversation finds its agent by walking one index from the best end.

The semantics are those of the simple reference in the tests: *after every
operation, repeatedly take the first waiting conversation (in queue order)
that some free eligible agent can take, and give it to the best of those
agents by the strategy (agents who declined it only if no one else can);
until none is left.* The incremental algorithm reaches the same state:
before an operation no free agent can take any waiting conversation, so only
the agents and conversations the operation touched need looking at.

The scheduler is pure in-memory state: it never reads the clock (instants are
passed in) and does no I/O. ``cxflow.assignment.AssignmentService`` persists
its decisions; ``Scheduler.restore`` rebuilds one from stored records with the
same decisions ahead. Not thread-safe: use one per tenant per thread.
"""

from __future__ import annotations

import heapq
import operator
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime
from functools import partial
from hashlib import blake2b
from typing import Any, NamedTuple

import attrs
from sortedcontainers import SortedList

from cxflow.assignment.model import Agent, Presence, QueuePolicy, Routing
from cxflow.assignment.strategies import (
    ANY,
    AgentState,
    IndexedStrategy,
    LeastLoad,
    Need,
    Strategy,
    Tag,
)
from cxflow.clock import ensure_aware, epoch_us, from_epoch_us
from cxflow.errors import ConflictError, NotFound, ValidationError

__all__ = ["Candidate", "Decision", "Explanation", "Scheduler", "queue_key"]

_NO_TOP = 1 << 300
"""The top key of an empty queue: larger than every queue key."""
"""The top of an empty queue: larger than every key."""
_COMPACT_MIN = 64


def queue_key(policy: QueuePolicy, routing: Routing) -> int:
    """The scheduler's queue order: ``policy.order_key(routing)``, then a
    stable 64-bit hash of the conversation id (the same in every process),
    then the id itself. Waiting conversations are served in ascending
    ``(queue_key, conversation_id)``.

    Conversations tie on the order key only when they arrived in the same
    microsecond at the same level; the hash orders them so that every key in
    the queue is a plain, distinct integer, which the scheduler compares
    fastest. (Two tied conversations whose hashes also collide, a 1 in 2**64
    event, may be served in either order.)
    """
    digest = blake2b(routing.conversation_id.encode("utf-8", "surrogatepass"), digest_size=8)
    return policy.order_key(routing) * _TIE_SPAN + int.from_bytes(digest.digest(), "big")


_TIE_SPAN = 1 << 64


class Decision(NamedTuple):
    """One change of who holds a conversation.

    ``agent_id`` is the new holder, or ``None`` when the conversation went
    back to the queue. ``reason``: ``"auto"`` (the scheduler), ``"manual"``,
    ``"transfer"``; for a return to the queue ``"agent_offline"``,
    ``"no_answer"`` or ``"unassigned"``. ``previous_agent`` held it before.
    ``overflow`` is true for a manual assignment beyond capacity.

    ``cxflow.serialization.to_dict`` writes it as an object of these five
    fields and ``from_dict(Decision, data)`` reads it back (types checked
    there). Construction itself checks nothing: the scheduler builds one per
    decision on its hot path.
    """

    conversation_id: str
    agent_id: str | None
    reason: str
    previous_agent: str | None = None
    overflow: bool = False


class _Queue:
    """The waiting conversations of one skill set.

    ``heap`` is a binary heap of queue keys (plain, distinct integers: see
    ``queue_key``), ``entries`` maps each waiting conversation's key to it,
    and ``top_key`` is always the smallest key in ``entries`` (what the
    drain's ``min`` compares). A conversation that leaves other than by being
    popped leaves ``entries`` at once; its key stays in the heap until it
    surfaces or the heap is compacted (lazy deletion).
    """

    __slots__ = ("entries", "heap", "need", "top_key")

    def __init__(self, need: Need) -> None:
        self.need = need
        self.heap: list[int] = []
        self.entries: dict[int, _Conv] = {}
        self.top_key: int = _NO_TOP


class _Route:
    """What conversations of one need share: the ``Need`` (skills in their
    order, the first being primary) and the queue of its skill *set*."""

    __slots__ = ("need", "queue")

    def __init__(self, need: Need, queue: _Queue) -> None:
        self.need = need
        self.queue = queue


class _Conv:
    """One routed conversation: its id, queue key and route, and who holds it.
    Kept small: there is one per waiting conversation."""

    __slots__ = ("agent", "cid", "declined", "key", "route")

    def __init__(self, cid: str, key: int, route: _Route, declined: tuple[str, ...]) -> None:
        self.cid = cid
        self.key = key
        self.route = route
        self.agent: AgentState | None = None
        self.declined = declined


class _Family:
    """The free-agent indexes of one strategy."""

    __slots__ = ("indexes", "lead", "strategy")

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.lead = strategy.lead if isinstance(strategy, IndexedStrategy) else None
        self.indexes: dict[Tag, Any] = {}


@attrs.frozen
class Candidate:
    """One agent as ``explain`` sees it: eligible with a rank, or ruled out
    with the reasons."""

    agent_id: str
    eligible: bool
    reasons: tuple[str, ...] = ()
    rank: tuple[Any, ...] | None = None
    rank_text: str | None = None
    declined: bool = False


@attrs.frozen
class Explanation:
    """Why a conversation is where it is.

    ``candidates`` lists every agent: the eligible ones first, best rank
    first, then the ruled-out ones with their reasons. ``winner`` is the
    agent the strategy ranks first now (for an assigned conversation, with
    that conversation's own load taken off its holder, so the ranking is the
    one the decision saw if nothing else changed since). ``summary`` says it
    in one sentence.
    """

    conversation_id: str
    state: str
    holder: str | None
    strategy: str
    need: Need
    ahead: int
    winner: str | None
    candidates: tuple[Candidate, ...]
    summary: str


class Scheduler:
    """Routes one tenant's waiting conversations to its agents (see the module
    docstring). Every operation returns the ``Decision`` list it made, in order.

    ``strategy`` ranks agents for conversations without a group, and for
    groups missing from ``group_strategies``. ``policy`` orders the queue.
    """

    def __init__(
        self,
        *,
        strategy: Strategy | None = None,
        group_strategies: Mapping[str, Strategy] | None = None,
        policy: QueuePolicy | None = None,
    ) -> None:
        self.policy = policy if policy is not None else QueuePolicy()
        if not isinstance(self.policy, QueuePolicy):
            raise ValidationError("policy", "expected a QueuePolicy")
        self._default = _Family(_check_strategy(strategy if strategy is not None else LeastLoad()))
        self._groups: dict[str, _Family] = {
            group: _Family(_check_strategy(s)) for group, s in (group_strategies or {}).items()
        }
        self._agents: dict[str, AgentState] = {}
        self._convs: dict[str, _Conv] = {}
        self._routes: dict[tuple[str, str | None, tuple[str, ...]], _Route] = {}
        self._overflowing: set[str] = set()
        """Conversations held beyond capacity by a person's choice."""
        self._queues: dict[tuple[str, str | None, frozenset[str]], _Queue] = {}
        """One queue per channel, group and *set* of skills: conversations that
        differ only in which skill is primary wait in the same queue."""
        self._members: dict[Tag, dict[str, AgentState]] = {}
        """Every agent (any presence, any load) by tag: finds the agents
        eligible for a new queue without scanning them all."""
        self._turn = 0
        self.overflow_total = 0
        """Manual assignments made beyond capacity (declared overflow) so far."""

    # -- reading ------------------------------------------------------------------

    @property
    def waiting_count(self) -> int:
        """Conversations in the queue."""
        return sum(len(queue.entries) for queue in self._queues.values())

    def agent_state(self, agent_id: str) -> AgentState:
        """The live state of ``agent_id``; ``NotFound`` (kind ``"agent"``)."""
        try:
            return self._agents[agent_id]
        except KeyError:
            raise NotFound("agent", agent_id) from None

    def agents(self) -> Iterator[AgentState]:
        """Every agent's live state, in insertion order."""
        return iter(self._agents.values())

    def holder(self, conversation_id: str) -> str | None:
        """Who holds ``conversation_id`` (``None``: waiting); ``NotFound`` (kind
        ``"routing"``) when it is not routed."""
        agent = self._conv(conversation_id).agent
        return None if agent is None else agent.id

    def held_by(self, agent_id: str) -> frozenset[str]:
        """The conversations ``agent_id`` holds."""
        return frozenset(self.agent_state(agent_id).held)

    def waiting(self) -> list[str]:
        """Waiting conversation ids in queue order (O(n log n); for tools and tests)."""
        items = [
            (conv.key, cid)
            for cid, conv in self._convs.items()
            if conv.agent is None
        ]
        items.sort()
        return [cid for _, cid in items]

    def agent_record(self, agent_id: str) -> Agent:
        """The ``Agent`` record of ``agent_id`` with the scheduler's ``turn`` and
        ``idle_since`` (its ``version`` is the one last put)."""
        state = self.agent_state(agent_id)
        idle = from_epoch_us(state.idle_us) if state.idle_us else None
        if state.agent.turn == state.turn and state.agent.idle_since == idle:
            return state.agent
        return attrs.evolve(state.agent, turn=state.turn, idle_since=idle)

    def declined(self, conversation_id: str) -> tuple[str, ...]:
        """Agents who lost ``conversation_id`` earlier (see ``Routing.declined``)."""
        return self._conv(conversation_id).declined

    def overflow(self, conversation_id: str) -> bool:
        """True when ``conversation_id`` is held beyond capacity by a person's choice."""
        self._conv(conversation_id)
        return conversation_id in self._overflowing

    # -- agents -------------------------------------------------------------------

    def put_agent(self, agent: Agent, *, at: datetime) -> list[Decision]:
        """Add ``agent`` or apply its new profile and presence.

        Going offline sends the agent's conversations back to the queue (they
        keep their arrival; the agent is added to their ``declined``). Coming
        online takes the current round-robin turn. More capacity, new skills or
        groups let the agent take waiting conversations at once.
        """
        if not isinstance(agent, Agent):
            raise ValidationError("agent", "expected an Agent")
        at_us = epoch_us(ensure_aware(at, "at"))
        state = self._agents.get(agent.id)
        if state is None:
            idle = epoch_us(agent.idle_since) if agent.idle_since else 0
            state = AgentState(agent, turn=agent.turn, idle_us=idle)
            self._agents[agent.id] = state
            self._track(state)
            if agent.presence is Presence.ONLINE:
                self._come_online(state, at_us)
            self._turn = max(self._turn, agent.turn)
            return self._settle([state], [], at_us) if agent.presence is Presence.ONLINE else []
        previous = state.agent.presence
        profile_changed = (
            agent.skills != state.agent.skills
            or agent.groups != state.agent.groups
            or agent.channel_capacity != state.agent.channel_capacity
        )
        self._unindex(state)
        if profile_changed:
            self._untrack(state)
        state.agent = agent
        if profile_changed:
            self._track(state)
        decisions: list[Decision] = []
        pending: list[tuple[str, _Conv]] = []
        if agent.presence is Presence.OFFLINE and previous is not Presence.OFFLINE:
            decisions, pending = self._release_all(state, at_us)
        if agent.presence is Presence.ONLINE and previous is not Presence.ONLINE:
            self._come_online(state, at_us)
        decisions += self._settle([state], pending, at_us)
        return decisions

    def set_presence(self, agent_id: str, presence: Presence, *, at: datetime) -> list[Decision]:
        """Change only the presence of ``agent_id`` (see ``put_agent``)."""
        if not isinstance(presence, Presence):
            raise ValidationError("presence", "expected a Presence")
        state = self.agent_state(agent_id)
        return self.put_agent(attrs.evolve(state.agent, presence=presence), at=at)

    # -- conversations ------------------------------------------------------------

    def arrive(self, routing: Routing, *, at: datetime) -> list[Decision]:
        """Route a new conversation: give it to the best free eligible agent, or
        queue it. ``routing`` must be waiting (no agent) and not routed yet
        (``ConflictError``)."""
        if not isinstance(routing, Routing):
            raise ValidationError("routing", "expected a Routing")
        if routing.agent is not None:
            raise ValidationError("routing", "a new conversation must not have an agent yet")
        at_us = epoch_us(ensure_aware(at, "at"))
        if routing.conversation_id in self._convs:
            raise ConflictError(f"conversation {routing.conversation_id!r} is already routed")
        conv = self._new_conv(routing)
        return self._settle((), [(routing.conversation_id, conv)], at_us)

    def close(self, conversation_id: str, *, at: datetime) -> list[Decision]:
        """The conversation closed: it leaves routing; its agent's slot frees and
        the queue drains into it. ``NotFound`` (kind ``"routing"``)."""
        at_us = epoch_us(ensure_aware(at, "at"))
        try:
            conv = self._convs.pop(conversation_id)
        except (KeyError, TypeError):
            raise NotFound("routing", str(conversation_id)) from None
        agent = conv.agent
        if agent is None:
            self._drop_waiting(conv)
            return []
        self._release(agent, conversation_id, conv)
        if agent.agent.presence is not Presence.ONLINE:
            return []
        if agent.free or agent.agent.channel_capacity:
            self._unindex(agent)
            return self._settle([agent], [], at_us)
        return self._drain(agent, at_us)

    def requeue(
        self, conversation_id: str, *, at: datetime, reason: str = "unassigned"
    ) -> list[Decision]:
        """A person sends an assigned conversation back to the queue (it keeps
        its arrival). ``NotFound`` when not routed; ``ValidationError`` when it
        is already waiting."""
        return self._send_back(conversation_id, at, reason=reason, decline=False)

    def no_answer(
        self, conversation_id: str, agent_id: str, *, at: datetime
    ) -> list[Decision]:
        """``agent_id`` did not answer in time: the conversation goes back to the
        queue, offered to others first. Does nothing (returns ``[]``) when the
        conversation is no longer held by ``agent_id``."""
        ensure_aware(at, "at")
        conv = self._conv(conversation_id)
        if conv.agent is None or conv.agent.id != agent_id:
            return []
        return self._send_back(conversation_id, at, reason="no_answer", decline=True)

    def assign(
        self,
        conversation_id: str,
        agent_id: str,
        *,
        at: datetime,
        overflow: bool = False,
    ) -> list[Decision]:
        """A person assigns (a waiting conversation) or transfers (an assigned
        one) to ``agent_id``.

        The agent must not be offline and must be eligible (skills, group,
        channel). A full agent takes it only with ``overflow=True``, which is
        counted (``overflow_total``, ``Decision.overflow``). A transfer frees
        the previous agent's slot, and the queue drains into it.
        """
        at_us = epoch_us(ensure_aware(at, "at"))
        conv = self._conv(conversation_id)
        target = self.agent_state(agent_id)
        if not isinstance(overflow, bool):
            raise ValidationError("overflow", "expected true or false")
        if conv.agent is target:
            raise ValidationError("agent_id", f"{agent_id!r} already holds {conversation_id!r}")
        reasons = self._ruled_out(target, conv.route.need, ignore_capacity=True)
        if reasons:
            raise ValidationError("agent_id", f"{agent_id!r} cannot take it: {'; '.join(reasons)}")
        full = self._capacity_reasons(target, conv.route.need.channel)
        if full and not overflow:
            raise ValidationError(
                "agent_id", f"{agent_id!r} is {full[0]}; pass overflow=True to exceed it"
            )
        previous = conv.agent
        self._unindex(target)
        freed: list[AgentState] = [target]
        if previous is None:
            self._drop_waiting(conv)
        else:
            self._release(previous, conversation_id, conv)
            if previous.agent.presence is Presence.ONLINE:
                self._unindex(previous)
                freed.append(previous)
        self._take(target, conversation_id, conv, at_us)
        if full:
            self._overflowing.add(conversation_id)
            self.overflow_total += 1
        decision = Decision(
            conversation_id,
            target.id,
            "manual" if previous is None else "transfer",
            None if previous is None else previous.id,
            bool(full),
        )
        return [decision, *self._settle(freed, [], at_us)]

    # -- explanation --------------------------------------------------------------

    def explain(self, conversation_id: str) -> Explanation:
        """Which agents are eligible for ``conversation_id``, which are ruled out
        and why, and who ranks first (see ``Explanation``). O(agents + queue)."""
        conv = self._conv(conversation_id)
        need = conv.route.need
        family = self._family(need)
        holder = conv.agent
        restore = None
        if holder is not None:  # rank as the decision saw it: without this conversation
            holder.load -= 1
            holder.channel_load[need.channel] -= 1
            last = holder.last_taken
            if last is not None and last[0] == conversation_id:  # and before its turn
                restore = (holder.turn, holder.idle_us)
                holder.turn, holder.idle_us = last[1], last[2]
        try:
            candidates: list[Candidate] = []
            for state in self._agents.values():
                reasons = self._ruled_out(state, need)
                if reasons and state is not holder:
                    candidates.append(
                        Candidate(agent_id=state.id, eligible=False, reasons=tuple(reasons))
                    )
                    continue
                rank = family.strategy.rank(state, need)
                candidates.append(
                    Candidate(
                        agent_id=state.id,
                        eligible=True,
                        rank=rank,
                        rank_text=family.strategy.describe(rank),
                        declined=state.id in conv.declined,
                    )
                )
        finally:
            if holder is not None:
                holder.load += 1
                holder.channel_load[need.channel] += 1
                if restore is not None:
                    holder.turn, holder.idle_us = restore
        eligible = sorted(
            (c for c in candidates if c.eligible),
            key=lambda c: (c.declined, c.rank, c.agent_id),
        )
        ruled_out = sorted((c for c in candidates if not c.eligible), key=lambda c: c.agent_id)
        winner = eligible[0].agent_id if eligible else None
        place = (conv.key, conversation_id)
        ahead = sum(
            1
            for other_id, other in self._convs.items()
            if other.agent is None and (other.key, other_id) < place
        )
        name = family.strategy.name
        if holder is not None:
            if winner == holder.id:
                summary = f"{holder.id} holds it: {name} ranks it first ({eligible[0].rank_text})"
                if len(eligible) > 1:
                    summary += f"; next is {eligible[1].agent_id} ({eligible[1].rank_text})"
            else:
                summary = (
                    f"{holder.id} holds it (a person's choice, or the state changed since); "
                    f"{name} would now rank {winner or 'no agent'} first"
                )
        elif eligible:
            summary = (
                f"waiting with {ahead} ahead although {winner} is free "
                "(the next operation will assign it)"
            )
        else:
            blocked: dict[str, int] = {}
            for candidate in ruled_out:
                kind = candidate.reasons[0].split(" (")[0]
                blocked[kind] = blocked.get(kind, 0) + 1
            why = ", ".join(f"{count} {kind}" for kind, count in sorted(blocked.items()))
            summary = (
                f"waiting with {ahead} ahead: no free agent can take it ({why or 'no agents'})"
            )
        return Explanation(
            conversation_id=conversation_id,
            state="waiting" if holder is None else "assigned",
            holder=None if holder is None else holder.id,
            strategy=name,
            need=need,
            ahead=ahead,
            winner=winner,
            candidates=(*eligible, *ruled_out),
            summary=summary,
        )

    # -- restore ------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        agents: Iterable[Agent],
        routings: Iterable[Routing],
        *,
        strategy: Strategy | None = None,
        group_strategies: Mapping[str, Strategy] | None = None,
        policy: QueuePolicy | None = None,
    ) -> Scheduler:
        """Rebuild a scheduler from stored records, exactly as the live one was.

        Assigned routings are placed on their agents (whatever the capacity:
        they were placed by earlier decisions); waiting ones are queued. No new
        decision is taken: the stored state already had none left to take.
        Raises ``ValidationError`` when a routing names an unknown agent, or
        when an agent or a conversation appears twice.
        """
        scheduler = cls(strategy=strategy, group_strategies=group_strategies, policy=policy)
        for agent in agents:
            if not isinstance(agent, Agent):
                raise ValidationError("agents", "expected Agent records")
            if agent.id in scheduler._agents:
                raise ValidationError("agents", f"agent {agent.id!r} appears twice")
            idle = epoch_us(agent.idle_since) if agent.idle_since else 0
            state = AgentState(agent, turn=agent.turn, idle_us=idle)
            scheduler._agents[agent.id] = state
            scheduler._track(state)
            scheduler._turn = max(scheduler._turn, agent.turn)
        for routing in routings:
            if not isinstance(routing, Routing):
                raise ValidationError("routings", "expected Routing records")
            cid = routing.conversation_id
            if cid in scheduler._convs:
                raise ValidationError("routings", f"conversation {cid!r} appears twice")
            conv = scheduler._new_conv(routing)
            if routing.agent is None:
                scheduler._push(conv, cid)
                continue
            holder = scheduler._agents.get(routing.agent)
            if holder is None:
                raise ValidationError(
                    "routings", f"{cid!r} is held by unknown agent {routing.agent!r}"
                )
            scheduler._place(holder, cid, conv)
            if routing.overflow:
                scheduler._overflowing.add(cid)
        for state in scheduler._agents.values():
            if state.agent.presence is Presence.ONLINE and scheduler._has_room(state):
                scheduler._index(state)
        return scheduler

    # -- internals ------------------------------------------------------------------

    def _conv(self, conversation_id: str) -> _Conv:
        try:
            return self._convs[conversation_id]
        except (KeyError, TypeError):
            raise NotFound("routing", str(conversation_id)) from None

    def _family(self, need: Need) -> _Family:
        if need.group is not None:
            return self._groups.get(need.group, self._default)
        return self._default

    def _new_conv(self, routing: Routing) -> _Conv:
        need_key = (routing.channel, routing.group, routing.skills)
        route = self._routes.get(need_key)
        if route is None:
            skill_set = (routing.channel, routing.group, frozenset(routing.skills))
            queue = self._queues.get(skill_set)
            if queue is None:
                queue = self._queues[skill_set] = _Queue(
                    Need(routing.channel, routing.group, tuple(sorted(routing.skills)))
                )
                self._register(queue)
            route = self._routes[need_key] = _Route(Need(*need_key), queue)
        cid = routing.conversation_id
        conv = _Conv(cid, queue_key(self.policy, routing), route, routing.declined)
        self._convs[routing.conversation_id] = conv
        return conv

    def _push(self, conv: _Conv, cid: str) -> None:
        queue = conv.route.queue
        key = conv.key
        queue.entries[key] = conv
        heapq.heappush(queue.heap, key)
        if key < queue.top_key:
            queue.top_key = key

    def _drop_waiting(self, conv: _Conv) -> None:
        """``conv`` leaves the queue other than by being popped: its key goes
        stale in the heap (removed now if it is the top; compacted away later)."""
        queue = conv.route.queue
        del queue.entries[conv.key]
        if queue.top_key == conv.key:
            heapq.heappop(queue.heap)
            self._clean_top(queue)
        elif len(queue.heap) > _COMPACT_MIN and len(queue.heap) > 2 * len(queue.entries):
            self._compact(queue)

    def _clean_top(self, queue: _Queue) -> None:
        heap = queue.heap
        entries = queue.entries
        while heap:
            key = heap[0]
            if key in entries:
                queue.top_key = key
                return
            heapq.heappop(heap)
        queue.top_key = _NO_TOP

    def _compact(self, queue: _Queue) -> None:
        kept = list(queue.entries)
        heapq.heapify(kept)
        queue.heap = kept
        queue.top_key = kept[0] if kept else _NO_TOP

    def _pop_top(self, queue: _Queue) -> tuple[str, _Conv]:
        key = heapq.heappop(queue.heap)
        conv = queue.entries.pop(key)
        self._clean_top(queue)
        return conv.cid, conv

    def _has_room(self, state: AgentState, channel: str | None = None) -> bool:
        agent = state.agent
        if state.load >= agent.capacity:
            return False
        if channel is None:
            return True
        limit = agent.channel_capacity.get(channel)
        return limit is None or state.channel_load.get(channel, 0) < limit

    def _capacity_reasons(self, state: AgentState, channel: str) -> list[str]:
        agent = state.agent
        if state.load >= agent.capacity:
            return [f"at capacity ({state.load}/{agent.capacity})"]
        limit = agent.channel_capacity.get(channel)
        held = state.channel_load.get(channel, 0)
        if limit is not None and held >= limit:
            return [f"at capacity on {channel} ({held}/{limit})"]
        return []

    def _ruled_out(
        self, state: AgentState, need: Need, *, ignore_capacity: bool = False
    ) -> list[str]:
        """Why ``state`` cannot take a conversation with ``need`` now (empty: it can)."""
        agent = state.agent
        reasons = []
        if agent.presence is not Presence.ONLINE and not (
            ignore_capacity and agent.presence is Presence.AWAY
        ):
            reasons.append(agent.presence.value)
        missing = [skill for skill in need.skills if skill not in agent.skills]
        if missing:
            reasons.append("missing skill " + ", ".join(missing))
        if need.group is not None and need.group not in agent.groups:
            reasons.append(f"not in group {need.group}")
        if agent.channel_capacity.get(need.channel, 1) == 0:
            reasons.append(f"takes no {need.channel} conversations")
        elif not ignore_capacity:
            reasons += self._capacity_reasons(state, need.channel)
        return reasons

    def _eligible(self, state: AgentState, need: Need) -> bool:
        """Could ``state`` ever take ``need`` (skills, group; not presence or load)?"""
        agent = state.agent
        skills = agent.skills
        for skill in need.skills:
            if skill not in skills:
                return False
        if need.group is not None and need.group not in agent.groups:
            return False
        return agent.channel_capacity.get(need.channel, 1) != 0

    def _track(self, state: AgentState) -> None:
        """File ``state`` under its tags and list the queues it is eligible for
        (on arrival, or after a profile change)."""
        for tag in self._tags_of(state):
            self._members.setdefault(tag, {})[state.id] = state
        state.queues = [q for q in self._queues.values() if self._eligible(state, q.need)]

    def _untrack(self, state: AgentState) -> None:
        for tag in self._tags_of(state):
            members = self._members.get(tag)
            if members is not None:
                members.pop(state.id, None)

    def _register(self, queue: _Queue) -> None:
        """A new queue: add it to the queue list of every agent eligible for it:
        the agents in every member set of the need's tags (intersected in C),
        except those who take no conversations of its channel."""
        member_sets = []
        for tag in queue.need.tags:
            members = self._members.get(tag)
            if not members:
                return  # nobody has this skill or group yet
            member_sets.append(members)
        member_sets.sort(key=len)
        ids: AbstractSet[str] = member_sets[0].keys()
        for members in member_sets[1:]:
            ids = ids & members.keys()
        agents = self._agents
        channel = queue.need.channel
        for agent_id in ids:
            state = agents[agent_id]
            if state.agent.channel_capacity.get(channel, 1) != 0:
                state.queues.append(queue)

    def _best_queue(self, state: AgentState) -> _Queue | None:
        """The queue whose top this free agent should take next, or ``None``."""
        queues: list[_Queue] = state.queues
        if not queues:
            return None
        agent = state.agent
        if agent.channel_capacity:
            open_queues = [q for q in queues if self._has_room(state, q.need.channel)]
            if not open_queues:
                return None
            best = min(open_queues, key=_TOP)
        else:
            best = min(queues, key=_TOP)
        return None if best.top_key == _NO_TOP else best

    def _families_of(self, state: AgentState) -> list[_Family]:
        families = [self._default]
        for group in state.agent.groups:
            family = self._groups.get(group)
            if family is not None:
                families.append(family)
        return families

    def _tags_of(self, state: AgentState) -> list[Tag]:
        agent = state.agent
        tags: list[Tag] = [("skill", skill) for skill in agent.skills]
        tags += [("group", group) for group in agent.groups]
        tags.append(ANY)
        return tags

    def _index(self, state: AgentState) -> None:
        """Put a free online agent into its free-agent indexes."""
        entries = state.index_entries
        tags = self._tags_of(state)
        for family in self._families_of(state):
            indexes = family.indexes
            if family.lead is not None:
                index_key = family.strategy.index_key  # type: ignore[attr-defined]
                for tag in tags:
                    index = indexes.get(tag)
                    if index is None:
                        index = indexes[tag] = SortedList()
                    key = (*index_key(state, tag), state.id)
                    index.add(key)
                    entries.append((index, key))
            else:
                for tag in tags:
                    members = indexes.get(tag)
                    if members is None:
                        members = indexes[tag] = {}
                    members[state.id] = state
                    entries.append((members, state.id))
        state.free = True

    def _unindex(self, state: AgentState) -> None:
        if not state.free:
            return
        for index, key in state.index_entries:
            if isinstance(index, dict):
                del index[key]
            else:
                index.remove(key)
        state.index_entries = []
        state.free = False

    def _come_online(self, state: AgentState, at_us: int) -> None:
        state.turn = max(state.turn, self._turn)
        state.idle_us = max(state.idle_us, at_us)

    def _release(self, state: AgentState, cid: str, conv: _Conv) -> None:
        state.load -= 1
        state.channel_load[conv.route.need.channel] -= 1
        state.held.discard(cid)
        conv.agent = None
        if self._overflowing:
            self._overflowing.discard(cid)

    def _release_all(
        self, state: AgentState, at_us: int
    ) -> tuple[list[Decision], list[tuple[str, _Conv]]]:
        decisions = []
        pending = []
        convs = self._convs
        for cid in sorted(state.held, key=lambda c: (convs[c].key, c)):
            conv = convs[cid]
            self._release(state, cid, conv)
            if state.id not in conv.declined:
                conv.declined = (*conv.declined, state.id)
            decisions.append(Decision(cid, None, "agent_offline", state.id))
            pending.append((cid, conv))
        return decisions, pending

    def _send_back(self, cid: str, at: datetime, *, reason: str, decline: bool) -> list[Decision]:
        at_us = epoch_us(ensure_aware(at, "at"))
        conv = self._conv(cid)
        state = conv.agent
        if state is None:
            raise ValidationError("conversation_id", f"{cid!r} is already waiting")
        self._release(state, cid, conv)
        if decline and state.id not in conv.declined:
            conv.declined = (*conv.declined, state.id)
        freed = []
        if state.agent.presence is Presence.ONLINE:
            self._unindex(state)
            freed.append(state)
        return [Decision(cid, None, reason, state.id), *self._settle(freed, [(cid, conv)], at_us)]

    def _place(self, state: AgentState, cid: str, conv: _Conv) -> None:
        """``state`` holds ``conv``: the load bookkeeping, undone by ``_release``."""
        conv.agent = state
        state.load += 1
        channel = conv.route.need.channel
        state.channel_load[channel] = state.channel_load.get(channel, 0) + 1
        state.held.add(cid)

    def _take(self, state: AgentState, cid: str, conv: _Conv, at_us: int) -> None:
        """An assignment: ``_place`` plus the next round-robin turn and idle instant."""
        state.last_taken = (cid, state.turn, state.idle_us)
        self._place(state, cid, conv)
        self._turn += 1
        state.turn = self._turn
        if at_us > state.idle_us:
            state.idle_us = at_us

    def _drain(self, state: AgentState, at_us: int) -> list[Decision]:
        """``_settle([state], [], at_us)`` for the commonest case, without its
        generality: one online agent that was full (so not indexed), without
        channel caps, takes the best waiting conversations it can until full
        again. This is the whole decision of a saturated queue."""
        decisions: list[Decision] = []
        queues = state.queues
        capacity = state.agent.capacity
        while state.load < capacity and queues:
            best: _Queue = min(queues, key=_TOP)
            if best.top_key == _NO_TOP:
                break
            cid, conv = self._pop_top(best)
            self._take(state, cid, conv, at_us)
            decisions.append(_decision((cid, state.id, "auto", None, False)))
        if state.load < capacity:
            self._index(state)
        return decisions

    def _settle(
        self, freed: Iterable[AgentState], pending: list[tuple[str, _Conv]], at_us: int
    ) -> list[Decision]:
        """Take every decision the touched agents (``freed``, unindexed) and
        conversations (``pending``, not queued) allow, in queue order; then
        index the agents still free and queue the conversations still waiting."""
        free = [s for s in freed if s.agent.presence is Presence.ONLINE and self._has_room(s)]
        waiting = (
            sorted(((conv.key, cid, conv) for cid, conv in pending), key=_first_two)
            if pending
            else []
        )
        decisions: list[Decision] = []
        while True:
            best: _Queue | None = None
            for state in free:
                queue = self._best_queue(state)
                if queue is not None and (best is None or queue.top_key < best.top_key):
                    best = queue
            if waiting and (best is None or waiting[0][0] < best.top_key):
                _, cid, conv = waiting.pop(0)
                winner = self._choose(conv, cid, free, search_index=True)
                if winner is None:
                    self._push(conv, cid)
                    continue
            elif best is not None:
                cid, conv = self._pop_top(best)
                # One free agent: the queue came from its own eligible list.
                winner = (
                    free[0] if len(free) == 1 else self._choose(conv, cid, free, search_index=False)
                )
                assert winner is not None  # an agent in ``free`` can take it
            else:
                break
            self._take(winner, cid, conv, at_us)
            decisions.append(Decision(cid, winner.id, "auto"))
            if winner.free:  # came from an index: re-file under its new key
                self._unindex(winner)
                if self._has_room(winner):
                    free.append(winner)
            elif not self._has_room(winner):
                free.remove(winner)
        for state in free:
            self._index(state)
        return decisions

    def _choose(
        self, conv: _Conv, cid: str, free: list[AgentState], *, search_index: bool
    ) -> AgentState | None:
        """The best agent for ``conv`` among ``free`` (and, for a conversation
        that was not waiting, the indexed free agents): non-declined first."""
        need = conv.route.need
        family = self._family(need)
        declined = conv.declined
        best: AgentState | None = None
        best_rank: tuple[Any, ...] = ()
        fallback: AgentState | None = None
        fallback_rank: tuple[Any, ...] = ()
        rank = family.strategy.rank
        for state in free:
            if not self._eligible(state, need) or not self._has_room(state, need.channel):
                continue
            key = (*rank(state, need), state.id)
            if state.id in declined:
                if fallback is None or key < fallback_rank:
                    fallback, fallback_rank = state, key
            elif best is None or key < best_rank:
                best, best_rank = state, key
        if search_index:
            found, found_key, spare, spare_key = self._search_index(family, need, declined)
            if found is not None and (best is None or found_key < best_rank):
                best, best_rank = found, found_key
            if spare is not None and (fallback is None or spare_key < fallback_rank):
                fallback, fallback_rank = spare, spare_key
        return best if best is not None else fallback

    def _search_index(
        self, family: _Family, need: Need, declined: tuple[str, ...]
    ) -> tuple[AgentState | None, tuple[Any, ...], AgentState | None, tuple[Any, ...]]:
        """Walk the free-agent index for ``need``: the best eligible agent not in
        ``declined`` and the best declined one, with their rank keys."""
        indexes = family.indexes
        tags = need.tags
        lead = family.lead(need) if family.lead is not None else None
        if lead is None:
            index = None
            for tag in tags:
                candidate = indexes.get(tag)
                if not candidate:
                    return None, (), None, ()
                if index is None or len(candidate) < len(index):
                    index = candidate
        else:
            index = indexes.get(lead)
        if not index:
            return None, (), None, ()
        agents = self._agents
        channel = need.channel
        spare: AgentState | None = None
        spare_key: tuple[Any, ...] = ()
        if family.lead is not None:
            for key in index:
                state = agents[key[-1]]
                if not self._eligible(state, need) or not self._has_room(state, channel):
                    continue
                if state.id in declined:
                    if spare is None:
                        spare, spare_key = state, key
                    continue
                return state, key, spare, spare_key
            return None, (), spare, spare_key
        rank = family.strategy.rank
        best: AgentState | None = None
        best_key: tuple[Any, ...] = ()
        for state in index.values():
            if not self._eligible(state, need) or not self._has_room(state, channel):
                continue
            key = (*rank(state, need), state.id)
            if state.id in declined:
                if spare is None or key < spare_key:
                    spare, spare_key = state, key
            elif best is None or key < best_key:
                best, best_key = state, key
        return best, best_key, spare, spare_key


_decision = partial(tuple.__new__, Decision)
"""``Decision(...)`` from a full 5-tuple without the Python-level ``__new__``
of a named tuple (the hot path builds one per decision)."""

_TOP = operator.attrgetter("top_key")
"""The key of ``min`` over queues: a C-level getter, this is the hottest loop."""


def _first_two(item: tuple[int, str, _Conv]) -> tuple[int, str]:
    return item[0], item[1]


def _check_strategy(strategy: object) -> Strategy:
    if not isinstance(strategy, Strategy):
        raise ValidationError("strategy", "expected a Strategy (name, rank and describe)")
    return strategy
