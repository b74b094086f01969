"""Domain events: frozen records of what changed, the only output hosts consume.

Every change made through cxflow emits one or more events. They are appended
to the store's outbox in the same atomic write as the change and published to
the service's event sink. Each class has a stable ``type`` string used as the
tag when serialised (see ``cxflow.serialization``).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import attrs

from cxflow.flows.model import Material
from cxflow.tasks.model import Priority

__all__ = [
    "EVENT_TYPES",
    "Event",
    "FlowSaved",
    "MaterialSendRequested",
    "TaskAttachmentAdded",
    "TaskCommented",
    "TaskCreated",
    "TaskDeleted",
    "TaskEvent",
    "TaskMoved",
    "TaskOverdue",
    "TaskRestored",
    "TaskUpdated",
    "TodoAdded",
    "TodoChecked",
    "TodoUnchecked",
    "WatcherAdded",
    "WatcherRemoved",
]


@attrs.frozen(kw_only=True, slots=False)
class Event:
    """Base of all events: when it happened (aware UTC) and who did it.

    Events are built by cxflow from validated input, so they carry no
    validators, and keep a ``__dict__`` instead of slots (a frozen attrs class
    with a dict builds about a third faster): one is created on every change.
    """

    type: ClassVar[str] = "event"
    at: datetime
    by: str


@attrs.frozen(kw_only=True, slots=False)
class FlowSaved(Event):
    """A flow was created (version 1) or edited (a new version)."""

    type: ClassVar[str] = "flow.saved"
    flow_id: str
    version: int
    relocated: tuple[tuple[str, str], ...] = ()
    """(old status, new status) pairs used to move live tasks off removed statuses."""


@attrs.frozen(kw_only=True, slots=False)
class TaskEvent(Event):
    """Base of events about one task."""

    task_id: str
    flow_id: str
    flow_version: int


@attrs.frozen(kw_only=True, slots=False)
class TaskCreated(TaskEvent):
    type: ClassVar[str] = "task.created"
    status: str
    priority: Priority
    assignee: str | None = None
    conversation_id: str | None = None
    due_at: datetime | None = None
    task_type: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class TaskMoved(TaskEvent):
    """A task changed status; the kinds (``StatusKind`` values) let
    statistics tell completions from other moves without loading the flow."""

    type: ClassVar[str] = "task.moved"
    source: str
    target: str
    source_kind: str
    target_kind: str
    reason: str | None = None


@attrs.frozen(kw_only=True, slots=False)
class TaskUpdated(TaskEvent):
    """Fields of a task changed: ``changes`` holds (field, old, new) as text."""

    type: ClassVar[str] = "task.updated"
    changes: tuple[tuple[str, str | None, str | None], ...]


@attrs.frozen(kw_only=True, slots=False)
class TaskCommented(TaskEvent):
    type: ClassVar[str] = "task.commented"
    comment_id: str
    body: str


@attrs.frozen(kw_only=True, slots=False)
class WatcherAdded(TaskEvent):
    type: ClassVar[str] = "task.watcher_added"
    watcher: str


@attrs.frozen(kw_only=True, slots=False)
class WatcherRemoved(TaskEvent):
    type: ClassVar[str] = "task.watcher_removed"
    watcher: str


@attrs.frozen(kw_only=True, slots=False)
class TodoAdded(TaskEvent):
    type: ClassVar[str] = "task.todo_added"
    todo_id: str
    text: str
    required: bool


@attrs.frozen(kw_only=True, slots=False)
class TodoChecked(TaskEvent):
    type: ClassVar[str] = "task.todo_checked"
    todo_id: str


@attrs.frozen(kw_only=True, slots=False)
class TodoUnchecked(TaskEvent):
    type: ClassVar[str] = "task.todo_unchecked"
    todo_id: str


@attrs.frozen(kw_only=True, slots=False)
class TaskAttachmentAdded(TaskEvent):
    type: ClassVar[str] = "task.attachment_added"
    attachment: Material


@attrs.frozen(kw_only=True, slots=False)
class MaterialSendRequested(TaskEvent):
    """Intent: send a flow/status material into the task's conversation.
    cxflow only records the intent; the host delivers it."""

    type: ClassVar[str] = "task.material_send_requested"
    conversation_id: str
    material: Material


@attrs.frozen(kw_only=True, slots=False)
class TaskDeleted(TaskEvent):
    type: ClassVar[str] = "task.deleted"


@attrs.frozen(kw_only=True, slots=False)
class TaskRestored(TaskEvent):
    type: ClassVar[str] = "task.restored"


@attrs.frozen(kw_only=True, slots=False)
class TaskOverdue(TaskEvent):
    """The overdue ("delayed") marker was raised: the due date passed before completion."""

    type: ClassVar[str] = "task.overdue"
    due_at: datetime


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        FlowSaved,
        TaskCreated,
        TaskMoved,
        TaskUpdated,
        TaskCommented,
        WatcherAdded,
        WatcherRemoved,
        TodoAdded,
        TodoChecked,
        TodoUnchecked,
        TaskAttachmentAdded,
        MaterialSendRequested,
        TaskDeleted,
        TaskRestored,
        TaskOverdue,
    )
}
"""Tag -> event class: the explicit map the serializer uses (never an import by name)."""
