"""Task commands: pure functions from (task snapshot, input) to (new snapshot, events).

No function here reads a clock, touches storage or mutates its arguments: the
instant ``at`` and the actor ``by`` are passed in, and a change returns a new
``Task`` at ``version + 1`` with the events that
describe it. A call that changes nothing (adding a watcher twice, checking a
checked to-do) returns the same snapshot and no events.

Errors: ``ValidationError`` for bad input (anything the boundary rules of
``docs/reference/boundary.md`` refuse: naive or out-of-range instants, empty,
oversized or unstorable text, wrong types; a deleted task), ``MoveRefused``
for moves the flow does not allow, ``NotFound`` for unknown to-dos and
materials. Every argument is checked once, here, before anything is built, so
nothing a command returns holds a value a store cannot keep and read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from cxflow._validate import (
    MAX_INSTANT,
    MAX_TEXT,
    MIN_INSTANT,
    actor,
    check_enum,
    check_free_text,
    check_id,
    check_instant,
    check_name,
    check_names,
)
from cxflow.errors import MoveRefused, NotFound, ValidationError
from cxflow.events import (
    Event,
    MaterialSendRequested,
    TaskAttachmentAdded,
    TaskCommented,
    TaskCreated,
    TaskDeleted,
    TaskMoved,
    TaskOverdue,
    TaskRestored,
    TaskUpdated,
    TodoAdded,
    TodoChecked,
    TodoUnchecked,
    WatcherAdded,
    WatcherRemoved,
)
from cxflow.flows.machine import CompiledFlow, compile_flow
from cxflow.flows.model import Flow, Material
from cxflow.tasks.model import Comment, Priority, StatusChange, Task, Todo

__all__ = [
    "UNSET",
    "add_attachment",
    "add_comment",
    "add_todo",
    "add_watcher",
    "check_todo",
    "create_task",
    "delete_task",
    "evolve_task",
    "move_task",
    "raise_overdue",
    "relocate_task",
    "remove_watcher",
    "request_material",
    "restore_task",
    "uncheck_todo",
    "update_task",
]

Result = tuple[Task, list[Event]]


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()
"""Marks an ``update_task`` argument as "leave unchanged"."""

def _evolve(task: Task, at: datetime, **changes: Any) -> Task:
    """Copy ``task`` with ``changes``, ``updated_at=at`` and the next version.

    Inputs are validated by the callers, so this skips attrs' validators: it is
    the hot path of every command.
    """
    new = object.__new__(Task)
    state = new.__dict__
    state.update(task.__dict__)
    state.update(changes)
    state["updated_at"] = at
    state["version"] = task.version + 1
    return new


def evolve_task(task: Task, at: datetime, **changes: Any) -> Task:
    """The next version of ``task`` with ``changes`` (already validated by the
    caller) and ``updated_at=at``; for service code that changes derived state
    such as SLA clocks."""
    return _evolve(task, at, **changes)


def _base(task: Task, at: datetime, by: str) -> dict[str, Any]:
    return {
        "at": at,
        "by": by,
        "task_id": task.id,
        "flow_id": task.flow_id,
        "flow_version": task.flow_version,
    }


def _flow(flow: object) -> Flow:
    if not isinstance(flow, Flow):
        raise ValidationError("flow", f"expected a Flow, got {type(flow).__name__}")
    return flow


def _status_key(value: object, field: str) -> str:
    """A status key argument: text (an unknown key is the flow's to refuse)."""
    if value.__class__ is not str:
        raise ValidationError(field, f"expected a status key, got {type(value).__name__}")
    assert isinstance(value, str)
    return value


def _live(task: Task) -> None:
    if task.deleted_at is not None:
        raise ValidationError("task", f"task {task.id!r} is deleted; restore it first")


def _check_flow(task: Task, flow: Flow) -> None:
    if flow.id != task.flow_id or flow.version != task.flow_version:
        raise ValidationError(
            "flow",
            f"task {task.id!r} runs on flow {task.flow_id!r} v{task.flow_version}, "
            f"got {flow.id!r} v{flow.version}",
        )


def _todos_for(flow: Flow, status: str, existing: tuple[Todo, ...], by: str) -> list[Todo]:
    """New to-dos from the templates of ``status``, once per status per task."""
    templates = compile_flow(flow).todo_templates.get(status)
    if not templates or any(todo.status == status for todo in existing):
        return []
    start = len(existing)
    return [
        Todo(id=f"t{start + i + 1}", text=t.text, required=t.required, status=status, added_by=by)
        for i, t in enumerate(templates)
    ]


def _todo_events(task: Task, todos: Iterable[Todo], at: datetime, by: str) -> list[Event]:
    base = _base(task, at, by)
    return [TodoAdded(todo_id=t.id, text=t.text, required=t.required, **base) for t in todos]


def create_task(
    *,
    flow: Flow,
    task_id: str,
    title: str,
    by: str,
    at: datetime,
    description: str = "",
    priority: Priority = Priority.NORMAL,
    due_at: datetime | None = None,
    assignee: str | None = None,
    conversation_id: str | None = None,
    watchers: Iterable[str] = (),
    status: str | None = None,
    task_type: str | None = None,
) -> Result:
    """A new task in ``status`` (default: the flow's initial status) with the
    to-dos of that status."""
    at = check_instant(at, "at")
    by = actor(by)
    flow = _flow(flow)
    start = flow.initial_status if status is None else flow.status(_status_key(status, "status"))
    if not start.enabled:
        raise MoveRefused("status", f"status {start.key!r} is disabled")
    todos = tuple(_todos_for(flow, start.key, (), by))
    task = Task(
        id=task_id,
        title=title,
        description=description,
        flow_id=flow.id,
        flow_version=flow.version,
        status=start.key,
        created_at=at,
        updated_at=at,
        created_by=by,
        conversation_id=conversation_id,
        assignee=assignee,
        priority=priority,
        due_at=due_at,
        task_type=task_type,
        watchers=tuple(dict.fromkeys(check_names(watchers, "watchers"))),
        todos=todos,
        history=(StatusChange(source=None, target=start.key, by=by, at=at,
                              flow_version=flow.version),),
        completed_at=at if start.kind.is_completed else None,
    )
    created = TaskCreated(
        status=start.key,
        priority=task.priority,
        assignee=task.assignee,
        conversation_id=task.conversation_id,
        due_at=task.due_at,
        task_type=task_type,
        **_base(task, at, by),
    )
    return task, [created, *_todo_events(task, todos, at, by)]


def move_task(
    task: Task, flow: Flow, target: str, *, by: str, at: datetime, reason: str | None = None
) -> Result:
    """Move ``task`` to status ``target`` if its flow version allows it.

    Entering a status adds that status's to-do templates (once per status);
    entering a completed status sets ``completed_at``, leaving one clears it.
    """
    # The hot path: cheap checks first, the full validators only when they fail.
    if getattr(at, "tzinfo", None) is not UTC or not MIN_INSTANT <= at <= MAX_INSTANT:
        at = check_instant(at, "at")
    by = actor(by)
    if target.__class__ is not str:
        _status_key(target, "target")
    if reason is not None:
        check_free_text(reason, "reason")
    if flow.__class__ is not Flow:
        _flow(flow)
    if task.deleted_at is not None:
        _live(task)
    if flow.id != task.flow_id or flow.version != task.flow_version:
        _check_flow(task, flow)
    compiled = compile_flow(flow)
    compiled.check_move(task.status, target, task.open_required_todos if task.todos else 0)
    return _enter(task, compiled, target, by=by, at=at, reason=reason)


def _enter(
    task: Task, compiled: CompiledFlow, target: str, *, by: str, at: datetime, reason: str | None
) -> Result:
    version = compiled.flow.version
    new_todos = (
        _todos_for(compiled.flow, target, task.todos, by)
        if target in compiled.todo_templates
        else None
    )
    completed_at = (task.completed_at or at) if target in compiled.completed else None
    change = StatusChange(
        source=task.status, target=target, by=by, at=at, reason=reason, flow_version=version
    )
    moved = object.__new__(Task)  # _evolve, inlined: this is the hottest path
    state = moved.__dict__
    state.update(task.__dict__)
    state["status"] = target
    state["flow_version"] = version
    state["completed_at"] = completed_at
    state["history"] = (*task.history, change)
    if new_todos:
        state["todos"] = (*task.todos, *new_todos)
    state["updated_at"] = at
    state["version"] = task.version + 1
    event = TaskMoved(
        source=task.status,
        target=target,
        source_kind=compiled.kind_values.get(task.status, "unknown"),
        target_kind=compiled.kind_values[target],
        reason=reason,
        at=at,
        by=by,
        task_id=task.id,
        flow_id=task.flow_id,
        flow_version=version,
    )
    if not new_todos:
        return moved, [event]
    return moved, [event, *_todo_events(moved, new_todos, at, by)]


def relocate_task(
    task: Task, flow: Flow, target: str | None, *, by: str, at: datetime
) -> Result:
    """Carry ``task`` onto a new version ``flow`` of its flow (a flow edit).

    With ``target=None`` the task keeps its status, which must exist and be
    enabled in ``flow``; otherwise it moves to ``target`` (enabled in ``flow``)
    regardless of the move restrictions, recorded in history as a flow edit.
    """
    at = check_instant(at, "at")
    flow = _flow(flow)
    if target is not None:
        _status_key(target, "target")
    if flow.id != task.flow_id or flow.version <= task.flow_version:
        raise ValidationError("flow", f"{flow.id!r} v{flow.version} is not a newer version")
    if target is None or target == task.status:
        status = flow.status(task.status)
        if not status.enabled:
            raise MoveRefused("status", f"status {task.status!r} is disabled in v{flow.version}")
        return _evolve(task, at, flow_version=flow.version), []
    if not flow.status(target).enabled:
        raise MoveRefused("status", f"status {target!r} is disabled in v{flow.version}")
    return _enter(task, compile_flow(flow), target, by=actor(by), at=at,
                  reason=f"flow {flow.id} edited to v{flow.version}")


def update_task(
    task: Task,
    *,
    by: str,
    at: datetime,
    title: Any = UNSET,
    description: Any = UNSET,
    priority: Any = UNSET,
    due_at: Any = UNSET,
    assignee: Any = UNSET,
    conversation_id: Any = UNSET,
) -> Result:
    """Change plain fields; arguments left ``UNSET`` stay as they are.

    Changing the due date clears the overdue marker so it can be raised again.
    """
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    if priority is not UNSET:
        priority = check_enum(priority, Priority, "priority")
    wanted = {
        "title": title,
        "description": description,
        "priority": priority,
        "due_at": due_at,
        "assignee": assignee,
        "conversation_id": conversation_id,
    }
    changes = {k: val for k, val in wanted.items() if val is not UNSET and val != getattr(task, k)}
    if not changes:
        return task, []
    if "due_at" in changes:
        changes["overdue_marked_at"] = None
    # Validate through the constructor: bad values raise before anything changes.
    candidate = attrs.evolve(task, **changes)
    updated = _evolve(task, at, **{k: getattr(candidate, k) for k in changes})
    described = tuple(
        (k, _describe(getattr(task, k)), _describe(getattr(updated, k)))
        for k in wanted
        if k in changes
    )
    return updated, [TaskUpdated(changes=described, **_base(task, at, by))]


def _describe(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, Priority):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def add_comment(task: Task, body: str, *, by: str, at: datetime) -> Result:
    """Add a comment by ``by``."""
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    body = check_free_text(body, "body", max_len=MAX_TEXT)
    comment = Comment(id=f"c{len(task.comments) + 1}", author=by, body=body, at=at)
    updated = _evolve(task, at, comments=(*task.comments, comment))
    return updated, [TaskCommented(comment_id=comment.id, body=body, **_base(task, at, by))]


def add_watcher(task: Task, watcher: str, *, by: str, at: datetime) -> Result:
    """Add ``watcher`` (an agent following the task); no-op if already watching."""
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    watcher = check_name(watcher, "watcher")
    if watcher in task.watchers:
        return task, []
    updated = _evolve(task, at, watchers=(*task.watchers, watcher))
    return updated, [WatcherAdded(watcher=watcher, **_base(task, at, by))]


def remove_watcher(task: Task, watcher: str, *, by: str, at: datetime) -> Result:
    """Remove ``watcher``; no-op if not watching."""
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    watcher = check_name(watcher, "watcher")
    if watcher not in task.watchers:
        return task, []
    updated = _evolve(task, at, watchers=tuple(w for w in task.watchers if w != watcher))
    return updated, [WatcherRemoved(watcher=watcher, **_base(task, at, by))]


def add_todo(task: Task, text: str, *, by: str, at: datetime, required: bool = False) -> Result:
    """Add an ad hoc to-do."""
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    todo = Todo(id=f"t{len(task.todos) + 1}", text=text, required=required, added_by=by)
    updated = _evolve(task, at, todos=(*task.todos, todo))
    return updated, _todo_events(task, [todo], at, by)


def _set_todo(task: Task, todo_id: str, *, by: str, at: datetime, checked: bool) -> Result:
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    todo_id = check_id(todo_id, "todo_id")
    index = next((i for i, todo in enumerate(task.todos) if todo.id == todo_id), None)
    if index is None:
        raise NotFound("todo", todo_id)
    todo = task.todos[index]
    if todo.done == checked:
        return task, []
    changed = attrs.evolve(
        todo, checked_by=by if checked else None, checked_at=at if checked else None
    )
    todos = (*task.todos[:index], changed, *task.todos[index + 1 :])
    updated = _evolve(task, at, todos=todos)
    event_type = TodoChecked if checked else TodoUnchecked
    return updated, [event_type(todo_id=todo_id, **_base(task, at, by))]


def check_todo(task: Task, todo_id: str, *, by: str, at: datetime) -> Result:
    """Check a to-do, recording who and when; no-op if already checked."""
    return _set_todo(task, todo_id, by=by, at=at, checked=True)


def uncheck_todo(task: Task, todo_id: str, *, by: str, at: datetime) -> Result:
    """Uncheck a to-do; no-op if open."""
    return _set_todo(task, todo_id, by=by, at=at, checked=False)


def add_attachment(task: Task, attachment: Material, *, by: str, at: datetime) -> Result:
    """Attach a file reference to the task."""
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    if not isinstance(attachment, Material):
        raise ValidationError("attachment", "expected a Material")
    updated = _evolve(task, at, attachments=(*task.attachments, attachment))
    return updated, [TaskAttachmentAdded(attachment=attachment, **_base(task, at, by))]


def request_material(task: Task, flow: Flow, name: str, *, by: str, at: datetime) -> Result:
    """Emit the intent to send material ``name`` (of the flow or of the task's
    current status) into the task's conversation. The task itself is unchanged."""
    at = check_instant(at, "at")
    by = actor(by)
    _live(task)
    _check_flow(task, _flow(flow))
    name = check_free_text(name, "name")
    if task.conversation_id is None:
        raise ValidationError("conversation_id", "the task has no conversation to send into")
    for material in (*flow.status(task.status).materials, *flow.materials):
        if material.name == name:
            break
    else:
        raise NotFound("material", name)
    event = MaterialSendRequested(
        conversation_id=task.conversation_id, material=material, **_base(task, at, by)
    )
    return task, [event]


def delete_task(task: Task, *, by: str, at: datetime) -> Result:
    """Soft-delete; no-op if already deleted."""
    at = check_instant(at, "at")
    by = actor(by)
    if task.deleted_at is not None:
        return task, []
    updated = _evolve(task, at, deleted_at=at, deleted_by=by)
    return updated, [TaskDeleted(**_base(task, at, by))]


def restore_task(
    task: Task, flow: Flow, *, by: str, at: datetime, status: str | None = None
) -> Result:
    """Undo a soft delete, carrying the task onto ``flow``: the latest version
    of its flow, which the caller reads (the task's own version or a newer
    one; ``ValidationError`` field ``flow`` otherwise). No-op if not deleted,
    whatever ``status`` says.

    Without ``status`` the task keeps its status, which must still be enabled
    in ``flow``; if it was disabled or removed since, ``ValidationError``
    (field ``status``) asks for one. With ``status`` (an enabled status of
    ``flow``) the task is restored into it, recorded in history with its
    to-dos added: past the move restrictions when its own status is gone
    (like a flow edit's relocation), but only as a move ``flow`` allows
    (``MoveRefused`` otherwise) while its own status is still enabled.

    Events: ``TaskRestored`` (on ``flow``'s version), then the move's
    ``TaskMoved`` and ``TodoAdded`` when the status changes.
    """
    at = check_instant(at, "at")
    by = actor(by)
    if status is not None:
        _status_key(status, "status")
    if task.deleted_at is None:
        return task, []
    flow = _flow(flow)
    if flow.id != task.flow_id or flow.version < task.flow_version:
        raise ValidationError(
            "flow",
            f"task {task.id!r} runs on flow {task.flow_id!r} v{task.flow_version}; "
            f"restore it onto that flow's latest version, got {flow.id!r} v{flow.version}",
        )
    keeps = flow.has_status(task.status) and flow.status(task.status).enabled
    if status is None or status == task.status:
        if not keeps:
            gone = "disabled" if flow.has_status(task.status) else "removed"
            raise ValidationError(
                "status",
                f"status {task.status!r} of task {task.id!r} is {gone} in {flow.id!r} "
                f"v{flow.version}; name an enabled status to restore it into",
            )
        restored = _evolve(task, at, deleted_at=None, deleted_by=None, flow_version=flow.version)
        return restored, [TaskRestored(**_base(restored, at, by))]
    if not flow.status(status).enabled:
        raise ValidationError("status", f"status {status!r} is disabled in v{flow.version}")
    compiled = compile_flow(flow)
    if keeps:
        compiled.check_move(task.status, status, task.open_required_todos if task.todos else 0)
        reason = "restored"
    else:
        reason = f"restored onto flow {flow.id} v{flow.version}"
    restored, events = _enter(task, compiled, status, by=by, at=at, reason=reason)
    # _enter made a new snapshot at the next version: undelete that same one.
    restored.__dict__.update(deleted_at=None, deleted_by=None)
    return restored, [TaskRestored(**_base(restored, at, by)), *events]


def raise_overdue(task: Task, *, at: datetime, by: str = "cxflow") -> Result:
    """Raise the overdue marker once when the due date has passed at ``at``
    (live, not completed); otherwise a no-op."""
    at = check_instant(at, "at")
    by = actor(by)
    if task.deleted_at is not None or task.overdue_marked_at is not None:
        return task, []
    if not task.is_overdue(at):
        return task, []
    assert task.due_at is not None
    updated = _evolve(task, at, overdue_marked_at=at)
    return updated, [TaskOverdue(due_at=task.due_at, **_base(task, at, by))]
