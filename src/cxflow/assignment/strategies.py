"""Assignment strategies: how the scheduler picks one agent among the eligible.

The scheduler decides *who may* take a conversation (online, free capacity on
the conversation's channel, every required skill, member of its group); a
strategy decides *who should*, by ranking the eligible agents. The lowest rank
wins; equal ranks go to the smaller agent id, so decisions are deterministic
and replayable.

A custom strategy implements ``Strategy``: a ``name`` and ``rank``. The
scheduler then scans the free eligible agents for each conversation, which is
fine for hundreds of free agents. A strategy that also implements
``IndexedStrategy`` (``index_key`` and ``lead``) lets the scheduler keep its
free agents in sorted indexes and find the winner without scanning; the
built-in strategies do.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs

from cxflow import _validate as v
from cxflow.assignment.model import Agent
from cxflow.clock import from_epoch_us

__all__ = [
    "ANY",
    "AgentState",
    "IndexedStrategy",
    "LeastLoad",
    "Need",
    "RoundRobin",
    "SkillBased",
    "Strategy",
    "Tag",
]

Tag = tuple[str, ...]
"""An index tag: ``("skill", name)``, ``("group", name)`` or ``ANY``."""

ANY: Tag = ("any",)
"""The tag every agent has: the index of all free agents."""


@attrs.frozen
class Need:
    """What a conversation needs of its agent: its channel, its group (or
    ``None``), and its required skills, the first being the primary one."""

    channel: str
    group: str | None
    skills: tuple[str, ...]

    @property
    def primary(self) -> str | None:
        """The primary skill (the first required one), or ``None``."""
        return self.skills[0] if self.skills else None

    @property
    def tags(self) -> tuple[Tag, ...]:
        """The index tags an eligible agent has (at least ``ANY``)."""
        tags: list[Tag] = [("skill", skill) for skill in self.skills]
        if self.group is not None:
            tags.append(("group", self.group))
        return (*tags, ANY)


class AgentState:
    """The scheduler's live view of one agent, as strategies see it (read only).

    - ``agent``: the ``Agent`` record (profile: capacity, skills, groups);
    - ``load``: conversations held now; ``channel_load``: held per channel;
    - ``turn``: the round-robin position taken at the last assignment;
    - ``idle_us``: epoch microseconds of the last assignment (or of coming online).
    """

    __slots__ = (
        "agent",
        "channel_load",
        "free",
        "held",
        "id",
        "idle_us",
        "index_entries",
        "last_taken",
        "load",
        "queues",
        "turn",
    )

    def __init__(self, agent: Agent, *, turn: int, idle_us: int) -> None:
        self.agent = agent
        self.last_taken: tuple[str, int, int] | None = None
        """(conversation id, turn before, idle before) of the last assignment,
        so ``explain`` can rank that decision as it was taken."""
        self.id: str = agent.id
        self.load = 0
        self.channel_load: dict[str, int] = {}
        self.held: set[str] = set()
        self.turn = turn
        self.idle_us = idle_us
        self.free = False
        self.index_entries: list[tuple[Any, Any]] = []
        self.queues: list[Any] = []  # the scheduler's eligible queues

    @property
    def ratio(self) -> float:
        """Load relative to capacity (1.0 when the capacity is 0)."""
        capacity = self.agent.capacity
        return self.load / capacity if capacity else 1.0

    def proficiency(self, skill: str | None) -> int:
        """The agent's proficiency in ``skill`` (0 when ``None`` or not held)."""
        return 0 if skill is None else self.agent.skills.get(skill, 0)

    def __repr__(self) -> str:
        return f"AgentState({self.id!r}, load={self.load}, turn={self.turn})"


@runtime_checkable
class Strategy(Protocol):
    """Ranks eligible agents for a conversation; the lowest rank wins."""

    @property
    def name(self) -> str:
        """Shown in ``assignment.assigned`` events and in explanations."""
        ...

    def rank(self, agent: AgentState, need: Need) -> tuple[Any, ...]:
        """The rank of an eligible ``agent`` for a conversation with ``need``.

        Called only for eligible agents. Must depend only on ``agent`` and
        ``need`` (no clock, no randomness), so a decision can be replayed and
        explained. The scheduler breaks ties by agent id.
        """
        ...

    def describe(self, rank: tuple[Any, ...]) -> str:
        """Words for a rank, used by ``explain`` (e.g. ``"load 1/3"``)."""
        ...


@runtime_checkable
class IndexedStrategy(Strategy, Protocol):
    """A strategy whose rank can be kept in sorted indexes of free agents.

    The contract: for every eligible ``agent`` and ``need``,
    ``rank(agent, need) == index_key(agent, lead(need))``, where ``lead`` picks
    one of ``need.tags`` (or ``None``: any tag gives the same key, and the
    scheduler picks the index with the fewest agents).
    """

    def index_key(self, agent: AgentState, tag: Tag) -> tuple[Any, ...]:
        """The agent's key in the index of ``tag``."""
        ...

    def lead(self, need: Need) -> Tag | None:
        """The index whose order decides for ``need``, or ``None`` when all agree."""
        ...


@attrs.frozen
class RoundRobin:
    """Rotate over eligible free agents: the one whose last assignment is the
    oldest goes next.

    Each assignment gives the agent the next turn of a counter. An agent
    coming online takes the current turn, so time spent offline never moves
    them ahead of colleagues who kept working.
    """

    name: str = attrs.field(default="round-robin", validator=v.name)

    def rank(self, agent: AgentState, need: Need) -> tuple[Any, ...]:
        return (agent.turn,)

    def index_key(self, agent: AgentState, tag: Tag) -> tuple[Any, ...]:
        return (agent.turn,)

    def lead(self, need: Need) -> Tag | None:
        return None

    def describe(self, rank: tuple[Any, ...]) -> str:
        return f"last turn {rank[0]}"


@attrs.frozen
class LeastLoad:
    """The agent with the lowest load relative to capacity, then the one idle
    the longest (oldest last assignment)."""

    name: str = attrs.field(default="least-load", validator=v.name)

    def rank(self, agent: AgentState, need: Need) -> tuple[Any, ...]:
        return (agent.ratio, agent.idle_us)

    def index_key(self, agent: AgentState, tag: Tag) -> tuple[Any, ...]:
        return (agent.ratio, agent.idle_us)

    def lead(self, need: Need) -> Tag | None:
        return None

    def describe(self, rank: tuple[Any, ...]) -> str:
        return f"load ratio {rank[0]:.3g}, idle since {_instant(rank[1])}"


@attrs.frozen
class SkillBased:
    """The agent with the highest proficiency in the conversation's primary
    skill, then the lowest load ratio, then the longest idle.

    ``spread=True`` is the policy that gives hard conversations to juniors
    too: load ratio comes first and proficiency only breaks ties, so experts
    are preferred only among equally loaded agents. Every agent still needs
    every required skill. Conversations without skills rank on load alone.
    """

    spread: bool = attrs.field(default=False, validator=v.boolean)
    name: str = attrs.field(default=attrs.Factory(
        lambda self: "skill-based+spread" if self.spread else "skill-based", takes_self=True
    ), validator=v.name)

    def rank(self, agent: AgentState, need: Need) -> tuple[Any, ...]:
        return self._key(agent, need.primary)

    def index_key(self, agent: AgentState, tag: Tag) -> tuple[Any, ...]:
        return self._key(agent, tag[1] if tag[0] == "skill" else None)

    def lead(self, need: Need) -> Tag | None:
        primary = need.primary
        return None if primary is None else ("skill", primary)

    def _key(self, agent: AgentState, skill: str | None) -> tuple[Any, ...]:
        level = -agent.proficiency(skill)
        if self.spread:
            return (agent.ratio, level, agent.idle_us)
        return (level, agent.ratio, agent.idle_us)

    def describe(self, rank: tuple[Any, ...]) -> str:
        if self.spread:
            return (
                f"load ratio {rank[0]:.3g}, proficiency {-rank[1]}, "
                f"idle since {_instant(rank[2])}"
            )
        return f"proficiency {-rank[0]}, load ratio {rank[1]:.3g}, idle since {_instant(rank[2])}"


def _instant(us: int) -> str:
    """An idle-since instant for people: ISO 8601 UTC, or "never" for 0."""
    return from_epoch_us(us).isoformat(timespec="seconds") if us else "never"
