"""Conversation and customer commands: pure functions from (snapshot, input) to
(new snapshot, events).

Like :mod:`cxflow.tasks.commands`: nothing here reads a clock, touches storage
or mutates its arguments. A change returns a new snapshot at ``version + 1``
with the events that describe it; a call that changes nothing (adding a room
tag twice, closing a closed conversation) returns the same snapshot and no
events. Bad input raises ``ValidationError`` before anything changes.

Message bookkeeping (:func:`record_message`)
--------------------------------------------

cxflow does not keep messages, only what timers, SLAs and statistics need:

- Every message adds one to ``message_count``.
- A message is **counted** when it is the customer's or a human agent's and
  not automatic. Bot and system messages, and every ``automatic=True``
  message (greetings, auto-replies, a customer-side automatic message alike),
  are never counted: they never count as an agent reply and never change
  ``last_speaker`` or the ``last_*`` instants.
- A counted customer message sets ``last_customer_message_at``; a counted
  agent message sets ``last_agent_reply_at`` and ``first_agent_reply_at``
  (the earliest agent reply).
- ``last_speaker`` is the author of the latest counted message since the
  conversation was (re)opened (``None`` before any). Messages may arrive out of
  order: one older than the latest counted message is accepted (and counted
  in ``message_count``) but never moves ``last_speaker`` or a ``last_*``
  instant backwards; one at the same instant as the latest wins (it was
  recorded later). An out-of-order agent reply earlier than
  ``first_agent_reply_at`` does move that instant earlier (it is the truth).
- ``updated_at`` never moves backwards either.
- A closed conversation refuses counted messages (``ValidationError``: reopen
  it or open a new conversation); uncounted ones (e.g. the close message or the
  survey the host sends after an auto-close) are accepted and only counted in
  ``message_count``.

Reopening resets ``last_speaker`` to ``None``: auto-close timers restart from
the next counted message, so a reopened room is not closed again at once for
silence that happened before it was closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow._validate import actor, check_enum, check_free_text, check_instant, check_name
from cxflow.conversations.model import (
    AuthorKind,
    Conversation,
    ConversationState,
    Customer,
)
from cxflow.errors import ValidationError
from cxflow.events import (
    ConversationAssigned,
    ConversationClosed,
    ConversationMessageRecorded,
    ConversationOpened,
    ConversationPriorityChanged,
    ConversationReopened,
    ConversationWaitingChanged,
    CustomerPlanChanged,
    CustomerTagAdded,
    CustomerTagRemoved,
    Event,
    RoomTagAdded,
    RoomTagRemoved,
)
from cxflow.tasks.model import Priority

__all__ = [
    "add_customer_tag",
    "add_room_tag",
    "assign",
    "close",
    "open_conversation",
    "record_message",
    "remove_customer_tag",
    "remove_room_tag",
    "reopen",
    "set_customer_plan",
    "set_priority",
    "set_waiting",
]

Result = tuple[Conversation, list[Event]]
CustomerResult = tuple[Customer, list[Event]]


def _evolve(conversation: Conversation, at: datetime, **changes: Any) -> Conversation:
    """Copy with ``changes``, the next version and ``updated_at`` moved to ``at``
    (never backwards). Inputs are validated by the callers."""
    new = object.__new__(Conversation)
    state = new.__dict__
    state.update(conversation.__dict__)
    state.update(changes)
    if at > conversation.updated_at:
        state["updated_at"] = at
    state["version"] = conversation.version + 1
    return new


def _base(conversation: Conversation, at: datetime, by: str) -> dict[str, Any]:
    return {
        "at": at,
        "by": by,
        "conversation_id": conversation.id,
        "customer_id": conversation.customer_id,
    }


def _optional_text(value: object, field: str) -> str | None:
    """``None`` or free text (a reason: see ``check_free_text``)."""
    return None if value is None else check_free_text(value, field)


def _optional_name(value: object, field: str) -> str | None:
    """``None`` or a name (an author id, a plan: see ``check_name``)."""
    return None if value is None else check_name(value, field)


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field, f"expected true or false, got {v.shown(value)}")
    return value


def _conversation(value: object) -> Conversation:
    if not isinstance(value, Conversation):
        raise ValidationError(
            "conversation", f"expected a Conversation, got {type(value).__name__}"
        )
    return value


def _customer(value: object) -> Customer:
    if not isinstance(value, Customer):
        raise ValidationError("customer", f"expected a Customer, got {type(value).__name__}")
    return value


def _tags(values: Iterable[str], field: str) -> tuple[str, ...]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError(field, f"expected a list of tags, got {type(values).__name__}")
    return tuple(dict.fromkeys(v.check_name(tag, field) for tag in values))


# -- opening and messages ---------------------------------------------------------------


def open_conversation(
    *,
    conversation_id: str,
    channel: str,
    customer: Customer,
    at: datetime,
    by: str,
    priority: Priority = Priority.NORMAL,
    assignee: str | None = None,
    room_tags: Iterable[str] = (),
) -> Result:
    """A new open conversation of ``customer`` on ``channel`` at version 1.

    ``plan`` is a snapshot of the customer's plan at ``at``; ``room_tags`` are
    de-duplicated, keeping their order.
    """
    at = check_instant(at, "at")
    by = actor(by)
    customer = _customer(customer)
    priority = check_enum(priority, Priority, "priority")
    conversation = Conversation(
        id=conversation_id,
        channel=channel,
        customer_id=customer.id,
        opened_at=at,
        updated_at=at,
        plan=customer.plan,
        priority=priority,
        assignee=(None if assignee is None else v.check_name(assignee, "assignee")),
        room_tags=_tags(room_tags, "room_tags"),
    )
    opened = ConversationOpened(
        channel=conversation.channel,
        plan=conversation.plan,
        priority=conversation.priority,
        assignee=conversation.assignee,
        room_tags=conversation.room_tags,
        **_base(conversation, at, by),
    )
    return conversation, [opened]


def record_message(
    conversation: Conversation,
    author_kind: AuthorKind,
    *,
    at: datetime,
    automatic: bool = False,
    author_id: str | None = None,
) -> Result:
    """Record that a message was written at ``at`` (the message's own instant).

    See the module docstring for what is counted and for out-of-order messages.
    The event's ``by`` is ``author_id``, or the author kind's value (e.g.
    ``"customer"``) when no id is given.
    """
    author_kind = check_enum(author_kind, AuthorKind, "author_kind")
    at = check_instant(at, "at")
    _conversation(conversation)
    _bool(automatic, "automatic")
    author_id = _optional_name(author_id, "author_id")
    from_customer = author_kind is AuthorKind.CUSTOMER and not automatic
    agent_reply = author_kind is AuthorKind.AGENT and not automatic
    counted = from_customer or agent_reply
    if counted and conversation.state is not ConversationState.OPEN:
        raise ValidationError(
            "conversation",
            f"conversation {conversation.id!r} is closed; reopen it (or open a new "
            "conversation) before recording customer or agent messages",
        )
    changes: dict[str, Any] = {"message_count": conversation.message_count + 1}
    first_reply = False
    if counted:
        last_customer = conversation.last_customer_message_at
        last_agent = conversation.last_agent_reply_at
        latest = max((t for t in (last_customer, last_agent) if t is not None), default=None)
        if latest is None or at >= latest:
            changes["last_speaker"] = author_kind
        if from_customer:
            if last_customer is None or at > last_customer:
                changes["last_customer_message_at"] = at
        else:
            if last_agent is None or at > last_agent:
                changes["last_agent_reply_at"] = at
            first = conversation.first_agent_reply_at
            if first is None or at < first:
                changes["first_agent_reply_at"] = at
                first_reply = True
    updated = _evolve(conversation, at, **changes)
    event = ConversationMessageRecorded(
        author_kind=author_kind.value,
        automatic=automatic,
        author_id=author_id,
        counted=counted,
        agent_reply=agent_reply,
        first_agent_reply=first_reply,
        **_base(conversation, at, author_id if author_id is not None else author_kind.value),
    )
    return updated, [event]


# -- plain fields ---------------------------------------------------------------------


def assign(conversation: Conversation, assignee: str | None, *, at: datetime, by: str) -> Result:
    """Assign to ``assignee`` (``None`` unassigns); no-op when unchanged."""
    at = check_instant(at, "at")
    by = actor(by)
    _conversation(conversation)
    assignee = (None if assignee is None else v.check_name(assignee, "assignee"))
    if assignee == conversation.assignee:
        return conversation, []
    updated = _evolve(conversation, at, assignee=assignee)
    event = ConversationAssigned(
        assignee=assignee, previous=conversation.assignee, **_base(conversation, at, by)
    )
    return updated, [event]


def set_waiting(conversation: Conversation, waiting: bool, *, at: datetime, by: str) -> Result:
    """Mark the conversation waiting (on the customer or a third party: SLA clocks
    pause) or not; no-op when unchanged. Auto-close does not look at it."""
    at = check_instant(at, "at")
    by = actor(by)
    _conversation(conversation)
    if _bool(waiting, "waiting") == conversation.waiting:
        return conversation, []
    updated = _evolve(conversation, at, waiting=waiting)
    return updated, [ConversationWaitingChanged(waiting=waiting, **_base(conversation, at, by))]


def set_priority(
    conversation: Conversation, priority: Priority, *, at: datetime, by: str
) -> Result:
    """Change the priority; no-op when unchanged."""
    at = check_instant(at, "at")
    by = actor(by)
    _conversation(conversation)
    priority = check_enum(priority, Priority, "priority")
    if priority is conversation.priority:
        return conversation, []
    updated = _evolve(conversation, at, priority=priority)
    event = ConversationPriorityChanged(
        priority=priority, previous=conversation.priority, **_base(conversation, at, by)
    )
    return updated, [event]


def add_room_tag(conversation: Conversation, tag: str, *, at: datetime, by: str) -> Result:
    """Add a room tag (it stays with this conversation only); no-op if present."""
    at = check_instant(at, "at")
    by = actor(by)
    _conversation(conversation)
    tag = v.check_name(tag, "tag")
    if tag in conversation.room_tags:
        return conversation, []
    updated = _evolve(conversation, at, room_tags=(*conversation.room_tags, tag))
    return updated, [RoomTagAdded(tag=tag, **_base(conversation, at, by))]


def remove_room_tag(conversation: Conversation, tag: str, *, at: datetime, by: str) -> Result:
    """Remove a room tag; no-op if absent."""
    at = check_instant(at, "at")
    by = actor(by)
    _conversation(conversation)
    tag = v.check_name(tag, "tag")
    if tag not in conversation.room_tags:
        return conversation, []
    updated = _evolve(
        conversation, at, room_tags=tuple(t for t in conversation.room_tags if t != tag)
    )
    return updated, [RoomTagRemoved(tag=tag, **_base(conversation, at, by))]


# -- closing and reopening -------------------------------------------------------------


def _close(
    conversation: Conversation,
    *,
    at: datetime,
    by: str,
    reason: str | None,
    rule: str | None = None,
    no_agent_reply: bool = False,
) -> Result:
    """The close shared by :func:`close` and ``autoclose.close_by_rule``
    (inputs already validated)."""
    if conversation.state is ConversationState.CLOSED:
        return conversation, []
    updated = _evolve(
        conversation, at, state=ConversationState.CLOSED, closed_at=at, close_reason=reason
    )
    event = ConversationClosed(
        reason=reason,
        rule=rule,
        agent_replied=conversation.agent_ever_replied,
        no_agent_reply=no_agent_reply,
        **_base(conversation, at, by),
    )
    return updated, [event]


def close(
    conversation: Conversation, *, at: datetime, by: str, reason: str | None = None
) -> Result:
    """Close by hand; no-op when already closed.

    Emits only ``ConversationClosed`` (``rule=None``): close-message and survey
    intents belong to the auto-close policy (``autoclose.close_by_rule``).
    """
    at = check_instant(at, "at")
    by = actor(by)
    _conversation(conversation)
    return _close(conversation, at=at, by=by, reason=_optional_text(reason, "reason"))


def reopen(
    conversation: Conversation, *, at: datetime, by: str, reason: str | None = None
) -> Result:
    """Reopen a closed conversation; no-op when open.

    Clears ``closed_at`` and ``close_reason``, adds one to ``reopen_count`` and
    resets ``last_speaker`` (auto-close restarts from the next counted message).
    Room tags, assignee and the message instants are kept.
    """
    at = check_instant(at, "at")
    by = actor(by)
    _conversation(conversation)
    reason = _optional_text(reason, "reason")
    if conversation.state is ConversationState.OPEN:
        return conversation, []
    count = conversation.reopen_count + 1
    updated = _evolve(
        conversation,
        at,
        state=ConversationState.OPEN,
        closed_at=None,
        close_reason=None,
        last_speaker=None,
        reopen_count=count,
    )
    event = ConversationReopened(reason=reason, reopen_count=count, **_base(conversation, at, by))
    return updated, [event]


# -- customers -------------------------------------------------------------------------


def add_customer_tag(customer: Customer, tag: str, *, at: datetime, by: str) -> CustomerResult:
    """Add a customer tag (it follows the customer into later conversations);
    no-op if present."""
    at = check_instant(at, "at")
    by = actor(by)
    _customer(customer)
    tag = v.check_name(tag, "tag")
    if tag in customer.tags:
        return customer, []
    updated = attrs.evolve(customer, tags=(*customer.tags, tag), version=customer.version + 1)
    return updated, [CustomerTagAdded(tag=tag, customer_id=customer.id, at=at, by=by)]


def remove_customer_tag(customer: Customer, tag: str, *, at: datetime, by: str) -> CustomerResult:
    """Remove a customer tag; no-op if absent."""
    at = check_instant(at, "at")
    by = actor(by)
    _customer(customer)
    tag = v.check_name(tag, "tag")
    if tag not in customer.tags:
        return customer, []
    updated = attrs.evolve(
        customer, tags=tuple(t for t in customer.tags if t != tag), version=customer.version + 1
    )
    return updated, [CustomerTagRemoved(tag=tag, customer_id=customer.id, at=at, by=by)]


def set_customer_plan(
    customer: Customer, plan: str | None, *, at: datetime, by: str
) -> CustomerResult:
    """Change the customer's plan tier (``None``: no plan); no-op when unchanged.

    Open conversations keep the plan they snapshotted when they opened.
    """
    at = check_instant(at, "at")
    by = actor(by)
    _customer(customer)
    plan = _optional_name(plan, "plan")
    if plan == customer.plan:
        return customer, []
    updated = attrs.evolve(customer, plan=plan, version=customer.version + 1)
    event = CustomerPlanChanged(
        plan=plan, previous=customer.plan, customer_id=customer.id, at=at, by=by
    )
    return updated, [event]
