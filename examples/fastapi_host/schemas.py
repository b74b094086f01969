"""The HTTP API's request and response bodies (pydantic models).

Enums are cxflow's own (``Presence``, ``AuthorKind``, ``Priority``,
``ConversationState``): their values are the strings clients send.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from cxflow import AuthorKind, ConversationState, Presence, Priority

__all__ = [
    "AgentIn",
    "AgentOut",
    "CloseIn",
    "ConversationIn",
    "ConversationOut",
    "ErrorOut",
    "EventOut",
    "EventsOut",
    "MessageIn",
    "PresenceIn",
]


class AgentIn(BaseModel):
    """An agent's profile (PUT creates or replaces it)."""

    presence: Presence = Presence.OFFLINE
    capacity: int = 1
    skills: dict[str, int] = Field(default_factory=dict)
    """Skill name to proficiency, 1 to 5."""
    groups: list[str] = Field(default_factory=list)
    by: str | None = None
    """Who makes the change (default: the agent)."""
    expected_version: int | None = None
    """The version the editor read (0: the agent must be new); a different
    stored version is a 409 instead of overwriting someone else's change."""


class PresenceIn(BaseModel):
    presence: Presence
    by: str | None = None


class AgentOut(BaseModel):
    id: str
    presence: Presence
    capacity: int
    version: int
    holding: list[str]
    """The conversations the agent holds now."""


class ConversationIn(BaseModel):
    """A customer starts a conversation: the helpdesk opens a ticket."""

    subject: str = Field(min_length=1, max_length=500)
    customer_id: str = Field(min_length=1, max_length=200)
    channel: str = Field(default="chat", min_length=1, max_length=50)
    priority: Priority = Priority.NORMAL
    skills: list[str] = Field(default_factory=list)
    vip: bool = False
    first_message: str | None = None
    """The customer's opening message, recorded in the same transaction."""


class MessageIn(BaseModel):
    author: AuthorKind
    """``customer``, ``agent``, ``bot`` or ``system`` (only human agent replies
    count as answers)."""
    author_id: str | None = None
    body: str = Field(min_length=1)


class CloseIn(BaseModel):
    by: str = Field(min_length=1)
    reason: str | None = None


class ConversationOut(BaseModel):
    id: str
    subject: str
    customer_id: str
    channel: str
    created_at: datetime
    state: ConversationState
    assignee: str | None
    priority: Priority
    message_count: int
    closed_at: datetime | None
    close_reason: str | None
    version: int


class EventOut(BaseModel):
    position: int
    type: str
    event: dict[str, Any]


class EventsOut(BaseModel):
    events: list[EventOut]
    last_position: int
    """Pass it as ``after`` to read what follows."""


class ErrorOut(BaseModel):
    error: Literal["validation", "not_found", "conflict", "unavailable"]
    message: str
    field: str | None = None
    reason: str | None = None
    kind: str | None = None
    id: str | None = None
