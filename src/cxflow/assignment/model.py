"""Assignment records: agents, the routing record of each conversation, and the
queue policy that orders waiting conversations.

These are plain values. The scheduler (``cxflow.assignment.scheduler``) keeps
its fast in-memory indexes over them; the storage tier
(``cxflow.storage.protocols.AssignmentStore``) keeps them durable, so a
scheduler rebuilt from the store makes the same decisions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import attrs

from cxflow import _validate as v
from cxflow.clock import duration_us, epoch_us
from cxflow.errors import ValidationError
from cxflow.priority import Priority, to_priority

__all__ = [
    "MAX_CAPACITY",
    "MAX_PROFICIENCY",
    "Agent",
    "Presence",
    "QueuePolicy",
    "Routing",
]

MAX_CAPACITY = 1000
"""The largest capacity an agent (or one of its channels) may have."""
MAX_PROFICIENCY = 5
"""Proficiency levels run from 1 (junior) to 5 (expert)."""


class Presence(enum.Enum):
    """Whether an agent takes conversations.

    ``ONLINE`` agents get new conversations; ``AWAY`` agents keep theirs but get
    no new ones; ``OFFLINE`` agents hold nothing: their conversations go back
    to the queue.
    """

    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


def _channel_capacity(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            attribute.name, f"expected a mapping of channel to capacity, got {type(value).__name__}"
        )
    for channel, capacity in value.items():
        v.check_name(channel, f"{attribute.name} key")
        v.check_int(capacity, f"{attribute.name}[{channel}]", 0, MAX_CAPACITY)


def _skills(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(
            attribute.name,
            f"expected a mapping of skill to proficiency, got {type(value).__name__}",
        )
    for skill, level in value.items():
        v.check_name(skill, f"{attribute.name} key")
        v.check_int(level, f"{attribute.name}[{skill}]", 1, MAX_PROFICIENCY)


def _unique_names(value: Iterable[str]) -> tuple[str, ...]:
    """Converter: names in first-seen order without repeats (anything but an
    iterable, or an iterable holding unhashable items, is left for the
    validator to refuse by name)."""
    result: Any = v.to_tuple(value)
    if isinstance(result, tuple):
        try:
            return tuple(dict.fromkeys(result))
        except TypeError:  # an unhashable item: not a name, refused by the validator
            return result
    return result  # type: ignore[no-any-return]  # refused by the validator


def _to_presence(value: Presence | str) -> Presence:
    """Converter: a ``Presence`` or its value; anything else is left for the validator."""
    result: Any = v.to_enum(Presence)(value)
    return result  # type: ignore[no-any-return]


def _name_map(value: Mapping[str, int]) -> dict[str, int]:
    """Converter: a mapping of name to number becomes a plain ``dict`` copy
    (anything else is left for the validator to refuse by name)."""
    return dict(value) if isinstance(value, Mapping) else value


def _priority_map(value: Mapping[Priority | str, int]) -> dict[Priority, int]:
    """Converter: like ``_name_map``, keyed by ``Priority`` (or its value:
    ``{"high": -1}``)."""
    if not isinstance(value, Mapping):
        return value
    return {to_priority(key): shift for key, shift in value.items()}


@attrs.frozen(kw_only=True)
class Agent:
    """A support person as the scheduler sees them.

    ``capacity`` is the most conversations held at once; ``channel_capacity``
    optionally caps single channels further (a channel not listed is capped by
    ``capacity`` alone). ``skills`` maps a skill to a proficiency from 1 to 5.
    ``groups`` are the teams the agent serves (a conversation routed to a group
    goes only to its members).

    ``idle_since`` and ``turn`` are kept by the scheduler: the instant of the
    agent's last assignment (or of coming online, if later), and the
    round-robin position taken at that assignment.
    """

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    id: str = attrs.field(validator=v.identifier)
    presence: Presence = attrs.field(
        default=Presence.OFFLINE, converter=_to_presence, validator=v.enum_of(Presence)
    )
    """A ``Presence`` or its value (``"online"``)."""
    capacity: int = attrs.field(default=1, validator=v.int_between(0, MAX_CAPACITY))
    channel_capacity: dict[str, int] = attrs.field(
        factory=dict, converter=_name_map, validator=_channel_capacity
    )
    skills: dict[str, int] = attrs.field(factory=dict, converter=_name_map, validator=_skills)
    groups: tuple[str, ...] = attrs.field(default=(), converter=_unique_names, validator=v.names)
    idle_since: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    turn: int = attrs.field(default=0, validator=v.int_between(0))
    version: int = attrs.field(default=1, validator=v.positive_int)

    def capacity_for(self, channel: str) -> int:
        """The most conversations of ``channel`` this agent may hold."""
        return min(self.capacity, self.channel_capacity.get(channel, self.capacity))


@attrs.frozen(kw_only=True)
class Routing:
    """cxflow's routing record of one open conversation: waiting in the queue
    (``agent`` is ``None``) or assigned.

    ``arrived_at`` is when the conversation first asked for an agent; it is
    kept when the conversation goes back to the queue, so a reassigned
    conversation stays ahead of newer ones. ``skills`` must all be held by the
    agent; the first one is the *primary* skill that skill-based routing
    compares proficiency on. ``declined`` lists agents who lost this
    conversation (went offline, or did not answer in time): it is offered to
    them again only when nobody else can take it.

    ``overflow`` is true when a person assigned it beyond the agent's capacity.
    """

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    conversation_id: str = attrs.field(validator=v.identifier)
    channel: str = attrs.field(validator=v.identifier)
    arrived_at: datetime = attrs.field(converter=v.to_utc, validator=v.aware)
    plan: str | None = attrs.field(default=None, validator=v.optional_name)
    vip: bool = attrs.field(default=False, validator=v.boolean)
    priority: Priority = attrs.field(
        default=Priority.NORMAL, converter=to_priority, validator=v.enum_of(Priority)
    )
    skills: tuple[str, ...] = attrs.field(default=(), converter=_unique_names, validator=v.names)
    group: str | None = attrs.field(default=None, validator=v.optional_name)
    agent: str | None = attrs.field(default=None, validator=v.optional_name)
    assigned_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    overflow: bool = attrs.field(default=False, validator=v.boolean)
    answered: bool = attrs.field(default=False, validator=v.boolean)
    """True once the assignee replied (the no-answer timer then does nothing)."""
    declined: tuple[str, ...] = attrs.field(
        default=(), converter=_unique_names, validator=v.names
    )
    version: int = attrs.field(default=1, validator=v.positive_int)

    def __attrs_post_init__(self) -> None:
        if (self.agent is None) != (self.assigned_at is None):
            raise ValidationError("assigned_at", "is set exactly when agent is set")
        if self.agent is None and (self.overflow or self.answered):
            raise ValidationError("agent", "a waiting conversation has no overflow or answer")

    @property
    def waiting(self) -> bool:
        """True while in the queue."""
        return self.agent is None


_DEFAULT_PLAN_LEVELS = {"enterprise": 0, "large": 1, "smb": 2}
_DEFAULT_PRIORITY_SHIFTS = {Priority.HIGH: -1, Priority.NORMAL: 0, Priority.LOW: 1}
_LEVEL_LIMIT = 1000


def _plan_levels(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict):
        raise ValidationError(attribute.name, "expected a mapping of plan to level")
    for plan, level in value.items():
        v.check_name(plan, f"{attribute.name} key")
        v.check_int(level, attribute.name, -_LEVEL_LIMIT, _LEVEL_LIMIT)


_level = v.int_between(-_LEVEL_LIMIT, _LEVEL_LIMIT)


def _priority_shifts(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, dict) or set(value) != set(Priority):
        raise ValidationError(attribute.name, "expected a shift for each of high, normal and low")
    for shift in value.values():
        v.check_int(shift, attribute.name, -_LEVEL_LIMIT, _LEVEL_LIMIT)


def _aging(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, timedelta) or not timedelta(seconds=1) <= value <= timedelta(days=7):
        raise ValidationError(
            attribute.name,
            f"expected None or a duration from 1 second to 7 days, got {v.shown(value)}",
        )


_STRICT_STRIDE = 1 << 60


@attrs.frozen(kw_only=True)
class QueuePolicy:
    """How waiting conversations are ordered: by **level**, then arrival.

    A conversation's level is ``plan_levels[plan]`` (``unknown_plan_level``
    for a plan not listed or none), plus ``vip_shift`` for a VIP, plus
    ``priority_shifts[priority]``. Lower levels are served first.

    ``aging`` makes the order fair over time: one level is worth ``aging`` of
    waiting. With the default of 10 minutes, an SMB conversation (level 2)
    that has waited more than 20 minutes longer than an Enterprise one
    (level 0) is served first, so nothing waits forever behind a stream of
    higher tiers. ``aging=None`` orders strictly by level, then arrival.

    Because the ordering key of a conversation never changes while it waits,
    the queue needs no re-sorting as time passes.
    """

    plan_levels: dict[str, int] = attrs.field(
        factory=lambda: dict(_DEFAULT_PLAN_LEVELS), converter=_name_map, validator=_plan_levels
    )
    unknown_plan_level: int = attrs.field(default=3, validator=_level)
    vip_shift: int = attrs.field(default=-1, validator=_level)
    priority_shifts: dict[Priority, int] = attrs.field(
        factory=lambda: dict(_DEFAULT_PRIORITY_SHIFTS),
        converter=_priority_map,
        validator=_priority_shifts,
    )
    aging: timedelta | None = attrs.field(default=timedelta(minutes=10), validator=_aging)

    def level(self, routing: Routing) -> int:
        """The level of ``routing`` (lower is served first)."""
        level = self.plan_levels.get(routing.plan, self.unknown_plan_level) if routing.plan else (
            self.unknown_plan_level
        )
        if routing.vip:
            level += self.vip_shift
        return level + self.priority_shifts[routing.priority]

    def order_key(self, routing: Routing) -> int:
        """The queue key of ``routing``: smaller is served first.

        With aging: arrival in microseconds since the epoch plus level times
        ``aging``. Without: level first, arrival second.
        """
        arrival_us = epoch_us(routing.arrived_at)
        level = self.level(routing)
        if self.aging is None:
            return (level + 4 * _LEVEL_LIMIT) * _STRICT_STRIDE + arrival_us
        return arrival_us + level * duration_us(self.aging)

