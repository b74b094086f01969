"""The task aggregate and its parts.

A ``Task`` is a snapshot: the command functions in
``cxflow.tasks.commands`` never change one in place, they return a new
snapshot at ``version + 1`` together with the events describing the change.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import attrs

from cxflow import _validate as v
from cxflow.flows.model import Material
from cxflow.priority import Priority, to_priority
from cxflow.timers.sla import SlaClock

__all__ = ["Comment", "Priority", "StatusChange", "Task", "Todo"]




@attrs.frozen(kw_only=True)
class Comment:
    """A note between agents on a task."""

    id: str = attrs.field(validator=v.identifier)
    author: str = attrs.field(validator=v.name)
    body: str = attrs.field(validator=v.free_text(v.MAX_TEXT))
    """At most ``MAX_TEXT`` characters (see ``docs/reference/boundary.md``)."""
    at: datetime = attrs.field(converter=v.to_utc, validator=v.aware)


@attrs.frozen(kw_only=True)
class Todo:
    """A checklist item of a task, from a status's template or added by an agent."""

    id: str = attrs.field(validator=v.identifier)
    text: str = attrs.field(validator=v.free_text(v.MAX_LABEL))
    required: bool = attrs.field(default=False, validator=v.boolean)
    status: str | None = attrs.field(default=None, validator=attrs.validators.optional(v.key))
    """Key of the status whose template created it; ``None`` for ad hoc to-dos."""
    added_by: str | None = attrs.field(default=None, validator=v.optional_name)
    checked_by: str | None = attrs.field(default=None, validator=v.optional_name)
    checked_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )

    @property
    def done(self) -> bool:
        """True once checked."""
        return self.checked_at is not None


@attrs.frozen(kw_only=True, slots=False)
class StatusChange:
    """One entry of a task's status history. ``source`` is ``None`` at creation.

    Built by the task commands from input they validated once (``by``,
    ``target``, ``reason``: the boundary rules), on every move, so it carries
    no validators and keeps a ``__dict__`` (faster to build frozen).
    """

    source: str | None
    target: str
    by: str
    at: datetime
    reason: str | None = None
    flow_version: int = 1


@attrs.define(kw_only=True, slots=False)
class Task:
    """A tracked piece of work moving through the statuses of one flow version.

    Every field is checked by the boundary rules (``docs/reference/boundary.md``):
    a ``Task`` that cannot be stored and read back cannot be constructed.
    Treat instances as read-only snapshots; change them through the command
    functions (or ``cxflow.TaskService``), which return a new snapshot at
    ``version + 1``. (The class keeps a ``__dict__`` rather than slots so a
    command copies a snapshot in one dict copy: the hot path of every move.)
    """

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    id: str = attrs.field(validator=v.identifier)
    title: str = attrs.field(validator=v.free_text(v.MAX_LABEL))
    flow_id: str = attrs.field(validator=v.identifier)
    flow_version: int = attrs.field(validator=v.positive_int)
    status: str = attrs.field(validator=v.key)
    created_at: datetime = attrs.field(converter=v.to_utc, validator=v.aware)
    updated_at: datetime = attrs.field(converter=v.to_utc, validator=v.aware)
    created_by: str = attrs.field(validator=v.name)
    description: str = attrs.field(default="", validator=v.free_text(v.MAX_TEXT, blank=True))
    conversation_id: str | None = attrs.field(default=None, validator=v.optional_id)
    assignee: str | None = attrs.field(default=None, validator=v.optional_name)
    priority: Priority = attrs.field(
        default=Priority.NORMAL, converter=to_priority, validator=v.enum_of(Priority)
    )
    """A ``Priority``, or its value (``"high"``)."""
    due_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    task_type: str | None = attrs.field(default=None, validator=v.optional_id)
    """The task type of a flow A/B experiment this task was assigned through."""
    watchers: tuple[str, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.names
    )
    comments: tuple[Comment, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(Comment)
    )
    todos: tuple[Todo, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(Todo)
    )
    attachments: tuple[Material, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(Material)
    )
    history: tuple[StatusChange, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(StatusChange)
    )
    completed_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    overdue_marked_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    """When the overdue marker was raised for the current due date (cleared when
    the due date changes), so the marker and its event are raised once."""
    deleted_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    deleted_by: str | None = attrs.field(default=None, validator=v.optional_name)
    sla: tuple[SlaClock, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(SlaClock)
    )
    """The task's resolution SLA clock, when ``TaskService`` has an SLA policy."""
    version: int = attrs.field(default=1, validator=v.positive_int)
    """Optimistic-concurrency version: 1 when created, +1 on every change."""

    @property
    def deleted(self) -> bool:
        """True while soft-deleted."""
        return self.deleted_at is not None

    @property
    def completed(self) -> bool:
        """True while the task sits in a completed status."""
        return self.completed_at is not None

    def is_overdue(self, at: datetime) -> bool:
        """True when the due date is before ``at`` and the task is not completed."""
        return self.due_at is not None and self.completed_at is None and self.due_at < at

    @property
    def open_required_todos(self) -> int:
        """How many required to-dos are unchecked."""
        return sum(1 for todo in self.todos if todo.required and todo.checked_at is None)
