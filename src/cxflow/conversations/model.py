"""Conversations and customers: what cxflow keeps of the host's chats and tickets.

The host owns the messages; cxflow is told of each one (who wrote it, whether
it was automatic, when) and keeps only the bookkeeping that timers, SLAs and
statistics need. Like tasks, a :class:`Conversation` is a snapshot changed by
pure commands (:mod:`cxflow.conversations.commands`) that return the next
version and events.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar

import attrs

from cxflow import _validate as v
from cxflow.priority import Priority, to_priority
from cxflow.timers.sla import SlaClock

__all__ = ["AuthorKind", "Conversation", "ConversationState", "Customer"]


class AuthorKind(enum.Enum):
    """Who wrote a message."""

    CUSTOMER = "customer"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class ConversationState(enum.Enum):
    """Open or closed."""

    OPEN = "open"
    CLOSED = "closed"


@attrs.frozen(kw_only=True)
class Customer:
    """A person writing in, by a stable identifier (e.g. a messenger account id).

    Customer tags follow the customer into every later conversation.
    """

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    id: str = attrs.field(validator=v.identifier)
    plan: str | None = attrs.field(default=None, validator=v.optional_name)
    """Plan tier, e.g. ``"enterprise"``; SLA policies and assignment read it."""
    tags: tuple[str, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.names
    )
    version: int = attrs.field(default=1, validator=v.positive_int)


@attrs.define(kw_only=True, slots=False)
class Conversation:
    """A chat room, ticket or e-mail thread (snapshot; see the module docstring).

    ``last_speaker`` and the ``last_*_at`` instants count only messages that
    matter to timers: customer messages and *human, non-automatic* agent
    replies. Bot, system and automatic messages (greetings, auto-replies) never
    count as an agent reply.
    """

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    id: str = attrs.field(validator=v.identifier)
    channel: str = attrs.field(validator=v.identifier)
    customer_id: str = attrs.field(validator=v.identifier)
    opened_at: datetime = attrs.field(converter=v.to_utc, validator=v.aware)
    updated_at: datetime = attrs.field(converter=v.to_utc, validator=v.aware)
    plan: str | None = attrs.field(default=None, validator=v.optional_name)
    """The customer's plan tier when the conversation opened."""
    priority: Priority = attrs.field(
        default=Priority.NORMAL, converter=to_priority, validator=v.enum_of(Priority)
    )
    """A ``Priority``, or its value (``"high"``)."""
    assignee: str | None = attrs.field(default=None, validator=v.optional_name)
    state: ConversationState = attrs.field(
        default=ConversationState.OPEN, validator=v.enum_of(ConversationState)
    )
    waiting: bool = attrs.field(default=False, validator=v.boolean)
    """Waiting on the customer or a third party: SLA clocks pause."""
    room_tags: tuple[str, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.names
    )
    last_speaker: AuthorKind | None = attrs.field(
        default=None, validator=v.optional_enum_of(AuthorKind)
    )
    last_customer_message_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    last_agent_reply_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    first_agent_reply_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    message_count: int = attrs.field(default=0, validator=v.int_between(0))
    closed_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    close_reason: str | None = attrs.field(default=None, validator=v.optional_free_text())
    reopen_count: int = attrs.field(default=0, validator=v.int_between(0))
    sla: tuple[SlaClock, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(SlaClock)
    )
    """The SLA clocks of this conversation (see ``cxflow.timers.sla``)."""
    version: int = attrs.field(default=1, validator=v.positive_int)

    @property
    def open(self) -> bool:
        """True while open."""
        return self.state is ConversationState.OPEN

    @property
    def agent_ever_replied(self) -> bool:
        """True once a human agent sent a non-automatic reply."""
        return self.first_agent_reply_at is not None
