"""Time triggers: "when <elapsed-time condition> on an open conversation, then
<notify or escalate>", as data.

A :class:`TimeTrigger` names the instant the time counts from (``since``),
how long (``after``), optional filters, and the action. The service keeps one
timer per (trigger, conversation) at ``anchor + after``; it fires once per
situation: a new anchor (say, the customer writes again after a reply) starts
a new cycle. Nothing is evaluated as code.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any, cast

import attrs

from cxflow import _validate as v
from cxflow.priority import Priority, to_optional_priority
from cxflow.timers.model import subject_timer_id

__all__ = ["ElapsedSince", "TimeTrigger", "TriggerAction", "TriggerActionKind", "trigger_timer_id"]


class ElapsedSince(enum.Enum):
    """The instant a trigger's elapsed time counts from."""

    CUSTOMER_WAITING = "customer_waiting"
    """The customer's last message, while the customer spoke last (waiting for an answer)."""
    AGENT_WAITING = "agent_waiting"
    """The agent's last reply, while an agent spoke last (waiting for the customer)."""
    OPENED = "opened"
    """The conversation's opening, while it is open."""
    UNANSWERED = "unanswered"
    """The opening, while no agent has replied at all."""


class TriggerActionKind(enum.Enum):
    """What a trigger does; the host (or the rule engine) carries it out."""

    NOTIFY = "notify"
    ESCALATE = "escalate"


def _to_action_kind(value: TriggerActionKind | str) -> TriggerActionKind:
    """Converter: a kind or its value; anything else is left for the validator."""
    result: Any = v.to_enum(TriggerActionKind)(value)
    return result  # type: ignore[no-any-return]


@attrs.frozen(kw_only=True)
class TriggerAction:
    """The action of a trigger: a kind, a target (team, person, channel) and a note."""

    kind: TriggerActionKind = attrs.field(
        converter=_to_action_kind, validator=v.enum_of(TriggerActionKind)
    )
    """A ``TriggerActionKind`` or its value (``"notify"``)."""
    target: str = attrs.field(validator=v.name)
    note: str = attrs.field(default="", validator=v.free_text(v.MAX_TEXT, blank=True))


def _to_since(value: ElapsedSince | str) -> ElapsedSince:
    """Converter: an ``ElapsedSince`` or its value; anything else is left for the validator."""
    result: Any = v.to_enum(ElapsedSince)(value)
    return result  # type: ignore[no-any-return]


@attrs.frozen(kw_only=True)
class TimeTrigger:
    """When ``since`` has lasted ``after`` (positive, at most ``MAX_DURATION``)
    on an open conversation matching the filters (``None``: any), perform
    ``action`` once. Enums (``since``, ``priority``) take a member or its
    value: ``priority="high"`` is ``Priority.HIGH``."""

    id: str = attrs.field(validator=v.key)
    since: ElapsedSince = attrs.field(converter=_to_since, validator=v.enum_of(ElapsedSince))
    after: timedelta = attrs.field(validator=v.duration())
    action: TriggerAction = attrs.field(validator=v.instance_of(TriggerAction))
    channel: str | None = attrs.field(default=None, validator=v.optional_id)
    priority: Priority | None = attrs.field(
        default=None, converter=to_optional_priority, validator=v.optional_enum_of(Priority)
    )
    plan: str | None = attrs.field(default=None, validator=v.optional_name)

    def anchor(self, conversation: Any) -> datetime | None:
        """The instant the elapsed time counts from, or ``None`` when the
        condition cannot hold now (closed, filtered out, other speaker)."""
        if not conversation.open:
            return None
        if self.channel is not None and conversation.channel != self.channel:
            return None
        if self.priority is not None and conversation.priority is not self.priority:
            return None
        if self.plan is not None and conversation.plan != self.plan:
            return None
        speaker = getattr(conversation.last_speaker, "value", None)
        match self.since:
            case ElapsedSince.CUSTOMER_WAITING:
                instant = conversation.last_customer_message_at if speaker == "customer" else None
            case ElapsedSince.AGENT_WAITING:
                instant = conversation.last_agent_reply_at if speaker == "agent" else None
            case ElapsedSince.OPENED:
                instant = conversation.opened_at
            case ElapsedSince.UNANSWERED:
                instant = None if conversation.agent_ever_replied else conversation.opened_at
        return cast("datetime | None", instant)

    def deadline(self, conversation: Any) -> datetime | None:
        """When the trigger fires for ``conversation`` as it is, or ``None``."""
        anchor = self.anchor(conversation)
        return None if anchor is None else anchor + self.after


def trigger_timer_id(trigger_id: str, conversation_id: str) -> str:
    """The timer id of ``trigger_id`` on one conversation:
    ``"trigger:<trigger id>:<conversation id>"``, or, when that is longer than
    ``MAX_ID`` characters, ``"trigger:<trigger id>:#<sha256 of the
    conversation id>"`` (still one stable, valid id per pair)."""
    return subject_timer_id(f"trigger:{trigger_id}", conversation_id)
