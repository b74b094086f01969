"""The pure task commands of ``cxflow.tasks.commands``.

One behaviour per test. Every instant is a fixed aware datetime; no clock is read.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from cxflow.errors import MoveRefused, NotFound, ValidationError
from cxflow.events import (
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
from cxflow.flows import Flow, Material, Status, StatusKind, TodoTemplate, Transition
from cxflow.tasks import Priority, Task
from cxflow.tasks import commands as c

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
T2 = T0 + timedelta(hours=2)
T3 = T0 + timedelta(hours=3)

NS = StatusKind.NOT_STARTED
IP = StatusKind.IN_PROGRESS
WAIT = StatusKind.WAITING
OK = StatusKind.COMPLETED_SUCCESS
FAIL = StatusKind.COMPLETED_FAILURE

POLICY = Material(name="policy", uri="https://example.com/policy.pdf", media_type="application/pdf")
GUIDE = Material(name="guide", uri="https://example.com/guide.png", media_type="image/png")
LABEL = Material(name="label", uri="https://example.com/label.pdf", media_type="application/pdf")


def st(key: str, kind: StatusKind = IP, **kwargs: Any) -> Status:
    return Status(key=key, label=key.title(), kind=kind, **kwargs)


def make_flow(**kwargs: Any) -> Flow:
    """new -> doing (required to-do, material) -> waiting -> done/failed; ``off`` disabled."""
    kwargs.setdefault("id", "f")
    kwargs.setdefault("name", "Flow")
    kwargs.setdefault("materials", (POLICY,))
    kwargs.setdefault(
        "statuses",
        (
            st("new", NS, todos=[TodoTemplate(text="Greet the customer")]),
            st(
                "doing",
                IP,
                todos=[TodoTemplate(text="Check the order", required=True)],
                materials=[GUIDE],
            ),
            st("waiting", WAIT, materials=[LABEL]),
            st("done", OK, todos=[TodoTemplate(text="Send survey")]),
            st("failed", FAIL),
            st("off", IP, enabled=False),
        ),
    )
    return Flow(**kwargs)


FLOW = make_flow()


def new_task(flow: Flow = FLOW, **kwargs: Any) -> Task:
    kwargs.setdefault("task_id", "task-1")
    kwargs.setdefault("title", "Refund order 42")
    kwargs.setdefault("by", "alice")
    kwargs.setdefault("at", T0)
    task, _events = c.create_task(flow=flow, **kwargs)
    return task


def moved(task: Task, target: str, flow: Flow = FLOW, at: datetime = T1, by: str = "bob") -> Task:
    result, _events = c.move_task(task, flow, target, by=by, at=at)
    return result


def check_all(task: Task, at: datetime = T1) -> Task:
    for todo in task.todos:
        task, _ = c.check_todo(task, todo.id, by="bob", at=at)
    return task


# -- create_task ---------------------------------------------------------------


def test_create_task_starts_in_the_flows_initial_status() -> None:
    assert new_task().status == "new"


def test_create_task_starts_in_the_named_status() -> None:
    assert new_task(status="waiting").status == "waiting"


def test_create_task_uses_the_flow_id_and_version() -> None:
    flow = make_flow(version=3)
    task = new_task(flow)
    assert (task.flow_id, task.flow_version, task.version) == ("f", 3, 1)


def test_create_task_adds_the_todos_of_its_start_status() -> None:
    task = new_task()
    assert [(t.text, t.required, t.status, t.added_by) for t in task.todos] == [
        ("Greet the customer", False, "new", "alice")
    ]


def test_create_task_copies_the_required_flag_of_todo_templates() -> None:
    task = new_task(status="doing")
    assert [(t.text, t.required) for t in task.todos] == [("Check the order", True)]


def test_create_task_todos_start_unchecked() -> None:
    assert all(not todo.done for todo in new_task().todos)


def test_create_task_emits_created_then_one_todo_added_per_todo() -> None:
    _task, events = c.create_task(flow=FLOW, task_id="x", title="T", by="alice", at=T0)
    assert [type(e) for e in events] == [TaskCreated, TodoAdded]


def test_create_task_event_carries_status_priority_and_due_date() -> None:
    _task, events = c.create_task(
        flow=FLOW, task_id="x", title="T", by="alice", at=T0,
        priority=Priority.HIGH, due_at=T2, assignee="bob", conversation_id="conv-1",
    )
    created = events[0]
    assert isinstance(created, TaskCreated)
    assert (created.status, created.priority, created.due_at, created.assignee,
            created.conversation_id, created.task_id, created.by, created.at) == (
        "new", Priority.HIGH, T2, "bob", "conv-1", "x", "alice", T0,
    )


def test_create_task_records_creation_as_first_history_entry() -> None:
    task = new_task()
    assert len(task.history) == 1
    entry = task.history[0]
    assert (entry.source, entry.target, entry.by, entry.at) == (None, "new", "alice", T0)


def test_create_task_in_a_completed_status_sets_completed_at() -> None:
    assert new_task(status="done").completed_at == T0


def test_create_task_in_an_open_status_has_no_completed_at() -> None:
    assert new_task().completed_at is None


def test_create_task_dedupes_watchers_keeping_first_order() -> None:
    task = new_task(watchers=["carol", "dave", "carol", "erin", "dave"])
    assert task.watchers == ("carol", "dave", "erin")


def test_create_task_refuses_a_naive_at() -> None:
    with pytest.raises(ValidationError) as info:
        new_task(at=datetime(2024, 5, 1, 9, 0))
    assert info.value.field == "at"


def test_create_task_refuses_a_naive_due_date() -> None:
    with pytest.raises(ValidationError) as info:
        new_task(due_at=datetime(2024, 5, 2, 9, 0))
    assert info.value.field == "due_at"


def test_create_task_stores_due_date_in_utc() -> None:
    plus_nine = timezone(timedelta(hours=9))
    task = new_task(due_at=datetime(2024, 5, 2, 18, 0, tzinfo=plus_nine))
    assert task.due_at == datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
    assert task.due_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("title", ["", "   "])
def test_create_task_refuses_an_empty_title(title: str) -> None:
    with pytest.raises(ValidationError) as info:
        new_task(title=title)
    assert info.value.field == "title"


def test_create_task_refuses_an_empty_actor() -> None:
    with pytest.raises(ValidationError) as info:
        new_task(by="")
    assert info.value.field == "by"


def test_create_task_refuses_an_empty_watcher() -> None:
    with pytest.raises(ValidationError):
        new_task(watchers=["carol", " "])


def test_create_task_takes_a_priority_by_value_and_refuses_an_unknown_one() -> None:
    assert new_task(priority="high").priority is Priority.HIGH
    with pytest.raises(ValidationError) as info:
        new_task(priority="urgent")
    assert info.value.field == "priority"


def test_create_task_in_a_disabled_status_is_a_refused_move() -> None:
    with pytest.raises(MoveRefused):
        new_task(status="off")


def test_create_task_in_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValidationError):
        new_task(status="nope")


# -- move_task -----------------------------------------------------------------


def test_move_changes_the_status() -> None:
    assert moved(new_task(), "waiting").status == "waiting"


def test_move_appends_a_history_entry_with_from_to_by_and_at() -> None:
    task, _ = c.move_task(new_task(), FLOW, "waiting", by="bob", at=T1, reason="asked for info")
    entry = task.history[-1]
    assert (entry.source, entry.target, entry.by, entry.at, entry.reason, entry.flow_version) == (
        "new", "waiting", "bob", T1, "asked for info", 1,
    )
    assert len(task.history) == 2


def test_move_emits_task_moved_with_status_kinds() -> None:
    _task, events = c.move_task(new_task(), FLOW, "waiting", by="bob", at=T1)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, TaskMoved)
    assert (event.source, event.target, event.source_kind, event.target_kind) == (
        "new", "waiting", "not_started", "waiting",
    )
    assert (event.by, event.at, event.task_id) == ("bob", T1, "task-1")


def test_move_adds_the_todos_of_the_target_status() -> None:
    task = moved(new_task(), "doing")
    assert [t.text for t in task.todos] == ["Greet the customer", "Check the order"]
    assert task.todos[-1].status == "doing"


def test_move_emits_todo_added_for_each_new_todo() -> None:
    _task, events = c.move_task(new_task(), FLOW, "doing", by="bob", at=T1)
    assert [type(e) for e in events] == [TaskMoved, TodoAdded]
    assert isinstance(events[1], TodoAdded)
    assert events[1].required is True


def test_move_back_into_a_visited_status_does_not_add_its_todos_again() -> None:
    task = moved(new_task(), "doing")
    task = moved(task, "waiting", at=T2)
    task = moved(task, "doing", at=T3)
    assert [t.text for t in task.todos].count("Check the order") == 1


def test_move_back_into_the_start_status_does_not_add_its_todos_again() -> None:
    task = moved(moved(new_task(), "waiting"), "new", at=T2)
    assert [t.text for t in task.todos] == ["Greet the customer"]


def test_todo_ids_stay_unique_across_statuses_and_ad_hoc_todos() -> None:
    task, _ = c.add_todo(new_task(), "Call back", by="bob", at=T1)
    task = moved(task, "doing", at=T2)
    ids = [t.id for t in task.todos]
    assert len(ids) == len(set(ids)) == 3


def test_move_into_a_completed_status_sets_completed_at() -> None:
    assert moved(new_task(), "done", at=T2).completed_at == T2


def test_move_out_of_a_completed_status_clears_completed_at() -> None:
    task = moved(new_task(), "done", at=T1)
    assert moved(task, "waiting", at=T2).completed_at is None


def test_move_into_failure_status_also_completes() -> None:
    assert moved(new_task(), "failed", at=T2).completed


def test_move_into_completed_status_is_refused_while_required_todos_are_open() -> None:
    task = moved(new_task(), "doing")
    with pytest.raises(MoveRefused):
        c.move_task(task, FLOW, "done", by="bob", at=T2)


def test_completion_refusal_names_the_number_of_open_required_todos() -> None:
    task = moved(new_task(), "doing")
    with pytest.raises(MoveRefused, match="1 open required"):
        c.move_task(task, FLOW, "failed", by="bob", at=T2)


def test_move_into_completed_status_is_allowed_once_required_todos_are_checked() -> None:
    task = check_all(moved(new_task(), "doing"))
    assert moved(task, "done", at=T2).status == "done"


def test_open_optional_todos_do_not_block_completion() -> None:
    task = new_task()
    assert task.todos
    assert not task.todos[0].required
    assert moved(task, "done").status == "done"


def test_open_required_todos_do_not_block_moves_to_open_statuses() -> None:
    task = moved(new_task(), "doing")
    assert moved(task, "waiting", at=T2).status == "waiting"


def test_flow_may_allow_completion_with_open_required_todos() -> None:
    flow = make_flow(allow_open_required_todos=True)
    task = moved(new_task(flow), "doing", flow=flow)
    assert moved(task, "done", flow=flow, at=T2).status == "done"


def test_ad_hoc_required_todo_blocks_completion() -> None:
    task, _ = c.add_todo(new_task(), "Get approval", by="bob", at=T1, required=True)
    with pytest.raises(MoveRefused):
        c.move_task(task, FLOW, "done", by="bob", at=T2)


def test_move_increments_the_version() -> None:
    task = new_task()
    assert moved(task, "waiting").version == task.version + 1


def test_move_sets_updated_at_and_keeps_created_at() -> None:
    task = moved(new_task(), "waiting", at=T2)
    assert (task.created_at, task.updated_at) == (T0, T2)


def test_move_to_a_disabled_status_is_refused() -> None:
    with pytest.raises(MoveRefused, match="disabled"):
        c.move_task(new_task(), FLOW, "off", by="bob", at=T1)


def test_move_to_an_unknown_status_is_refused() -> None:
    with pytest.raises(MoveRefused):
        c.move_task(new_task(), FLOW, "nope", by="bob", at=T1)


def test_move_to_the_current_status_is_refused() -> None:
    with pytest.raises(MoveRefused):
        c.move_task(new_task(), FLOW, "new", by="bob", at=T1)


def test_move_outside_the_flows_restricted_transitions_is_refused() -> None:
    flow = make_flow(
        transitions=[
            Transition(source="new", target="doing"),
            Transition(source="doing", target="done"),
        ]
    )
    task = new_task(flow)
    with pytest.raises(MoveRefused):
        c.move_task(task, flow, "done", by="bob", at=T1)


def test_move_along_a_restricted_transition_is_allowed() -> None:
    flow = make_flow(transitions=[Transition(source="new", target="done")])
    assert moved(new_task(flow), "done", flow=flow).status == "done"


def test_move_of_a_deleted_task_is_refused() -> None:
    task, _ = c.delete_task(new_task(), by="bob", at=T1)
    with pytest.raises(ValidationError) as info:
        c.move_task(task, FLOW, "waiting", by="bob", at=T2)
    assert info.value.field == "task"


def test_move_with_another_version_of_the_flow_is_refused() -> None:
    task = new_task()
    with pytest.raises(ValidationError) as info:
        c.move_task(task, FLOW.revise(name="Flow v2"), "waiting", by="bob", at=T1)
    assert info.value.field == "flow"


def test_move_with_another_flow_is_refused() -> None:
    task = new_task()
    with pytest.raises(ValidationError) as info:
        c.move_task(task, make_flow(id="other"), "waiting", by="bob", at=T1)
    assert info.value.field == "flow"


def test_move_refuses_a_naive_instant() -> None:
    with pytest.raises(ValidationError) as info:
        c.move_task(new_task(), FLOW, "waiting", by="bob", at=datetime(2024, 5, 1, 10))
    assert info.value.field == "at"


def test_move_refuses_an_empty_actor() -> None:
    with pytest.raises(ValidationError) as info:
        c.move_task(new_task(), FLOW, "waiting", by=" ", at=T1)
    assert info.value.field == "by"


def test_move_never_mutates_the_input_task() -> None:
    task = new_task()
    before = copy.deepcopy(task)
    moved(task, "doing")
    assert task == before


def test_refused_move_never_mutates_the_input_task() -> None:
    task = moved(new_task(), "doing")
    before = copy.deepcopy(task)
    with pytest.raises(MoveRefused):
        c.move_task(task, FLOW, "done", by="bob", at=T2)
    assert task == before


# -- update_task ---------------------------------------------------------------


def test_update_changes_the_field() -> None:
    task, _ = c.update_task(new_task(), by="bob", at=T1, title="Refund order 43")
    assert task.title == "Refund order 43"


def test_update_event_lists_field_old_and_new_value() -> None:
    _task, events = c.update_task(new_task(), by="bob", at=T1, title="New", assignee="carol")
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, TaskUpdated)
    assert set(event.changes) == {("title", "Refund order 42", "New"), ("assignee", None, "carol")}
    assert (event.by, event.at) == ("bob", T1)


def test_update_event_describes_priority_by_its_value() -> None:
    _task, events = c.update_task(new_task(), by="bob", at=T1, priority=Priority.HIGH)
    assert isinstance(events[0], TaskUpdated)
    assert events[0].changes == (("priority", "normal", "high"),)


def test_update_event_describes_due_date_as_iso_text() -> None:
    _task, events = c.update_task(new_task(), by="bob", at=T1, due_at=T3)
    assert isinstance(events[0], TaskUpdated)
    assert events[0].changes == (("due_at", None, T3.isoformat()),)


def test_update_increments_the_version_and_sets_updated_at() -> None:
    task = new_task()
    updated, _ = c.update_task(task, by="bob", at=T1, description="More detail")
    assert (updated.version, updated.updated_at) == (task.version + 1, T1)


def test_update_without_arguments_returns_the_same_task_and_no_events() -> None:
    task = new_task()
    result, events = c.update_task(task, by="bob", at=T1)
    assert result is task
    assert events == []


def test_update_to_the_current_values_returns_the_same_task_and_no_events() -> None:
    task = new_task(priority=Priority.LOW, due_at=T2)
    result, events = c.update_task(
        task, by="bob", at=T1, title=task.title, priority=Priority.LOW, due_at=T2
    )
    assert result is task
    assert events == []


def test_update_to_the_same_due_instant_in_another_offset_is_a_no_op() -> None:
    task = new_task(due_at=T2)
    plus_two = T2.astimezone(timezone(timedelta(hours=2)))
    result, events = c.update_task(task, by="bob", at=T1, due_at=plus_two)
    assert (result, events) == (task, [])


def test_update_can_clear_the_assignee() -> None:
    task, _ = c.update_task(new_task(assignee="bob"), by="bob", at=T1, assignee=None)
    assert task.assignee is None


def test_update_of_the_due_date_clears_the_overdue_marker() -> None:
    task, _ = c.raise_overdue(new_task(due_at=T1), at=T2)
    assert task.overdue_marked_at == T2
    task, _ = c.update_task(task, by="bob", at=T3, due_at=T3 + timedelta(days=1))
    assert task.overdue_marked_at is None


def test_update_of_another_field_keeps_the_overdue_marker() -> None:
    task, _ = c.raise_overdue(new_task(due_at=T1), at=T2)
    task, _ = c.update_task(task, by="bob", at=T3, title="Still late")
    assert task.overdue_marked_at == T2


def test_update_with_a_priority_that_is_unknown_raises_and_changes_nothing() -> None:
    task = new_task()
    before = copy.deepcopy(task)
    with pytest.raises(ValidationError) as info:
        c.update_task(task, by="bob", at=T1, title="Changed", priority="urgent")
    assert info.value.field == "priority"
    assert task == before


def test_update_with_an_empty_title_raises() -> None:
    with pytest.raises(ValidationError) as info:
        c.update_task(new_task(), by="bob", at=T1, title="")
    assert info.value.field == "title"


def test_update_with_a_naive_due_date_raises() -> None:
    with pytest.raises(ValidationError) as info:
        c.update_task(new_task(), by="bob", at=T1, due_at=datetime(2024, 6, 1))
    assert info.value.field == "due_at"


def test_update_of_a_deleted_task_is_refused() -> None:
    task, _ = c.delete_task(new_task(), by="bob", at=T1)
    with pytest.raises(ValidationError):
        c.update_task(task, by="bob", at=T2, title="Changed")


def test_update_never_mutates_the_input_task() -> None:
    task = new_task()
    before = copy.deepcopy(task)
    c.update_task(task, by="bob", at=T1, title="Changed", priority=Priority.HIGH)
    assert task == before


# -- comments ------------------------------------------------------------------


def test_comment_records_author_body_and_time() -> None:
    task, _ = c.add_comment(new_task(), "Customer called again", by="bob", at=T1)
    comment = task.comments[-1]
    assert (comment.author, comment.body, comment.at) == ("bob", "Customer called again", T1)


def test_comment_emits_task_commented_with_the_comment_id() -> None:
    task, events = c.add_comment(new_task(), "Hi", by="bob", at=T1)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, TaskCommented)
    assert (event.comment_id, event.body) == (task.comments[0].id, "Hi")


def test_comment_ids_are_unique() -> None:
    task, _ = c.add_comment(new_task(), "one", by="bob", at=T1)
    task, _ = c.add_comment(task, "two", by="carol", at=T2)
    assert len({comment.id for comment in task.comments}) == 2


def test_empty_comment_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        c.add_comment(new_task(), "  ", by="bob", at=T1)
    assert info.value.field == "body"


def test_comment_on_a_deleted_task_is_refused() -> None:
    task, _ = c.delete_task(new_task(), by="bob", at=T1)
    with pytest.raises(ValidationError):
        c.add_comment(task, "hello", by="bob", at=T2)


# -- watchers ------------------------------------------------------------------


def test_add_watcher_appends_and_emits_watcher_added() -> None:
    task, events = c.add_watcher(new_task(), "carol", by="bob", at=T1)
    assert task.watchers == ("carol",)
    assert [(type(e), e.watcher) for e in events] == [(WatcherAdded, "carol")]  # type: ignore[attr-defined]


def test_add_existing_watcher_returns_the_same_task_and_no_events() -> None:
    task = new_task(watchers=["carol"])
    result, events = c.add_watcher(task, "carol", by="bob", at=T1)
    assert (result, events) == (task, [])
    assert result is task


def test_remove_watcher_removes_and_emits_watcher_removed() -> None:
    task, events = c.remove_watcher(new_task(watchers=["carol", "dave"]), "carol", by="b", at=T1)
    assert task.watchers == ("dave",)
    assert [type(e) for e in events] == [WatcherRemoved]


def test_remove_absent_watcher_returns_the_same_task_and_no_events() -> None:
    task = new_task()
    result, events = c.remove_watcher(task, "carol", by="bob", at=T1)
    assert result is task
    assert events == []


def test_empty_watcher_is_refused() -> None:
    with pytest.raises(ValidationError):
        c.add_watcher(new_task(), "", by="bob", at=T1)


# -- to-dos --------------------------------------------------------------------


def test_add_todo_appends_an_ad_hoc_todo() -> None:
    task, events = c.add_todo(new_task(), "Call back", by="bob", at=T1, required=True)
    todo = task.todos[-1]
    assert (todo.text, todo.required, todo.status, todo.added_by, todo.done) == (
        "Call back", True, None, "bob", False,
    )
    assert [type(e) for e in events] == [TodoAdded]


def test_add_todo_with_empty_text_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        c.add_todo(new_task(), " ", by="bob", at=T1)
    assert info.value.field == "text"


def test_check_todo_records_who_and_when() -> None:
    task = new_task()
    todo_id = task.todos[0].id
    task, _ = c.check_todo(task, todo_id, by="carol", at=T2)
    assert (task.todos[0].checked_by, task.todos[0].checked_at, task.todos[0].done) == (
        "carol", T2, True,
    )


def test_check_todo_emits_todo_checked() -> None:
    task = new_task()
    _task, events = c.check_todo(task, task.todos[0].id, by="carol", at=T2)
    assert [(type(e), e.todo_id) for e in events] == [  # type: ignore[attr-defined]
        (TodoChecked, task.todos[0].id)
    ]


def test_check_todo_twice_keeps_the_first_check_and_emits_nothing() -> None:
    task = new_task()
    todo_id = task.todos[0].id
    task, _ = c.check_todo(task, todo_id, by="carol", at=T1)
    again, events = c.check_todo(task, todo_id, by="dave", at=T2)
    assert again is task
    assert events == []


def test_uncheck_todo_clears_who_and_when() -> None:
    task = new_task()
    todo_id = task.todos[0].id
    task, _ = c.check_todo(task, todo_id, by="carol", at=T1)
    task, events = c.uncheck_todo(task, todo_id, by="carol", at=T2)
    assert (task.todos[0].checked_by, task.todos[0].checked_at) == (None, None)
    assert [type(e) for e in events] == [TodoUnchecked]


def test_uncheck_open_todo_returns_the_same_task_and_no_events() -> None:
    task = new_task()
    result, events = c.uncheck_todo(task, task.todos[0].id, by="carol", at=T1)
    assert result is task
    assert events == []


def test_check_unknown_todo_is_not_found() -> None:
    with pytest.raises(NotFound) as info:
        c.check_todo(new_task(), "t99", by="carol", at=T1)
    assert isinstance(info.value, LookupError)
    assert info.value.id == "t99"


def test_uncheck_unknown_todo_is_not_found() -> None:
    with pytest.raises(NotFound):
        c.uncheck_todo(new_task(), "t99", by="carol", at=T1)


def test_check_todo_never_mutates_the_input_task() -> None:
    task = new_task()
    before = copy.deepcopy(task)
    c.check_todo(task, task.todos[0].id, by="carol", at=T1)
    assert task == before


# -- attachments ---------------------------------------------------------------


def test_add_attachment_appends_it_and_emits_the_material() -> None:
    task, events = c.add_attachment(new_task(), GUIDE, by="bob", at=T1)
    assert task.attachments == (GUIDE,)
    assert len(events) == 1
    assert isinstance(events[0], TaskAttachmentAdded)
    assert events[0].attachment == GUIDE


def test_add_attachment_that_is_not_a_material_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        c.add_attachment(new_task(), {"name": "x"}, by="bob", at=T1)  # type: ignore[arg-type]
    assert info.value.field == "attachment"


# -- request_material ----------------------------------------------------------


def test_request_flow_material_emits_send_intent_into_the_conversation() -> None:
    task = new_task(conversation_id="conv-1")
    _result, events = c.request_material(task, FLOW, "policy", by="bob", at=T1)
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, MaterialSendRequested)
    assert (event.conversation_id, event.material, event.by, event.at) == (
        "conv-1", POLICY, "bob", T1,
    )


def test_request_material_leaves_the_task_unchanged() -> None:
    task = new_task(conversation_id="conv-1")
    result, _ = c.request_material(task, FLOW, "policy", by="bob", at=T1)
    assert result is task


def test_request_material_of_the_current_status() -> None:
    task = moved(new_task(conversation_id="conv-1"), "doing")
    _result, events = c.request_material(task, FLOW, "guide", by="bob", at=T2)
    assert isinstance(events[0], MaterialSendRequested)
    assert events[0].material == GUIDE


def test_request_material_of_another_status_is_not_found() -> None:
    task = new_task(conversation_id="conv-1")
    with pytest.raises(NotFound) as info:
        c.request_material(task, FLOW, "label", by="bob", at=T1)
    assert info.value.id == "label"


def test_request_unknown_material_is_not_found() -> None:
    task = new_task(conversation_id="conv-1")
    with pytest.raises(NotFound):
        c.request_material(task, FLOW, "nope", by="bob", at=T1)


def test_request_material_without_a_conversation_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        c.request_material(new_task(), FLOW, "policy", by="bob", at=T1)
    assert info.value.field == "conversation_id"


def test_request_material_for_a_deleted_task_is_refused() -> None:
    task, _ = c.delete_task(new_task(conversation_id="conv-1"), by="bob", at=T1)
    with pytest.raises(ValidationError):
        c.request_material(task, FLOW, "policy", by="bob", at=T2)


# -- delete / restore ----------------------------------------------------------


def test_delete_marks_the_task_deleted_by_whom_and_when() -> None:
    task, events = c.delete_task(new_task(), by="bob", at=T1)
    assert (task.deleted, task.deleted_at, task.deleted_by) == (True, T1, "bob")
    assert [type(e) for e in events] == [TaskDeleted]


def test_delete_twice_returns_the_same_task_and_no_events() -> None:
    task, _ = c.delete_task(new_task(), by="bob", at=T1)
    again, events = c.delete_task(task, by="carol", at=T2)
    assert again is task
    assert events == []


def test_restore_clears_the_deletion() -> None:
    task, _ = c.delete_task(new_task(), by="bob", at=T1)
    task, events = c.restore_task(task, FLOW, by="carol", at=T2)
    assert (task.deleted, task.deleted_at, task.deleted_by) == (False, None, None)
    assert [type(e) for e in events] == [TaskRestored]


def test_restore_of_a_live_task_returns_the_same_task_and_no_events() -> None:
    task = new_task()
    result, events = c.restore_task(task, FLOW, by="carol", at=T1)
    assert result is task
    assert events == []


def test_restore_of_a_live_task_ignores_the_status_asked_for() -> None:
    task = new_task()
    result, events = c.restore_task(task, FLOW, by="carol", at=T1, status="waiting")
    assert (result, events) == (task, [])


def test_restored_task_can_move_again() -> None:
    task, _ = c.delete_task(new_task(), by="bob", at=T1)
    task, _ = c.restore_task(task, FLOW, by="bob", at=T2)
    assert moved(task, "waiting", at=T3).status == "waiting"


def _switched_off(flow: Flow, key: str) -> Flow:
    return flow.revise(
        statuses=[attrs.evolve(s, enabled=False) if s.key == key else s for s in flow.statuses]
    )


def _deleted_in(status: str) -> Task:
    task, _ = c.delete_task(new_task(status=status), by="bob", at=T1)
    return task


def test_restore_carries_the_task_onto_the_latest_version() -> None:
    v2 = FLOW.revise(name="Flow v2")
    task, events = c.restore_task(_deleted_in("waiting"), v2, by="carol", at=T2)
    assert (task.deleted, task.status, task.flow_version) == (False, "waiting", 2)
    assert isinstance(events[0], TaskRestored)
    assert events[0].flow_version == 2


def test_restore_into_a_status_disabled_since_is_refused() -> None:
    task = _deleted_in("waiting")
    with pytest.raises(ValidationError, match="disabled") as info:
        c.restore_task(task, _switched_off(FLOW, "waiting"), by="carol", at=T2)
    assert info.value.field == "status"


def test_restore_into_a_status_removed_since_is_refused() -> None:
    task = _deleted_in("waiting")
    v2 = FLOW.revise(statuses=[s for s in FLOW.statuses if s.key != "waiting"])
    with pytest.raises(ValidationError, match="removed") as info:
        c.restore_task(task, v2, by="carol", at=T2)
    assert info.value.field == "status"


def test_restore_naming_the_disabled_status_itself_is_refused() -> None:
    task = _deleted_in("waiting")
    with pytest.raises(ValidationError) as info:
        c.restore_task(task, _switched_off(FLOW, "waiting"), by="carol", at=T2, status="waiting")
    assert info.value.field == "status"


def test_restore_into_a_named_status_when_its_own_is_gone() -> None:
    task = _deleted_in("waiting")
    v2 = _switched_off(FLOW, "waiting")
    result, events = c.restore_task(task, v2, by="carol", at=T2, status="doing")
    entry = result.history[-1]
    assert (result.deleted, result.status, result.flow_version) == (False, "doing", 2)
    assert result.version == task.version + 1
    assert (entry.source, entry.target, entry.by, entry.flow_version) == (
        "waiting", "doing", "carol", 2,
    )
    assert entry.reason is not None
    assert "restored" in entry.reason
    assert [type(e) for e in events] == [TaskRestored, TaskMoved, TodoAdded]
    assert [t.text for t in result.todos if t.status == "doing"] == ["Check the order"]


def test_restore_into_a_named_status_ignores_restrictions_when_its_own_is_gone() -> None:
    task = _deleted_in("waiting")
    v2 = _switched_off(FLOW, "waiting").revise(
        transitions=[Transition(source="new", target="done")]
    )
    result, _ = c.restore_task(task, v2, by="carol", at=T2, status="failed")
    assert (result.status, result.completed_at) == ("failed", T2)


def test_restore_into_another_status_follows_the_move_rules_while_its_own_is_enabled() -> None:
    task = _deleted_in("new")
    v2 = FLOW.revise(
        transitions=[Transition(source="new", target="doing"),
                     Transition(source="doing", target="done")]
    )
    with pytest.raises(MoveRefused):
        c.restore_task(task, v2, by="carol", at=T2, status="done")
    result, events = c.restore_task(task, v2, by="carol", at=T2, status="doing")
    assert (result.deleted, result.status) == (False, "doing")
    assert [type(e) for e in events][:2] == [TaskRestored, TaskMoved]


def test_restore_naming_its_own_status_just_restores() -> None:
    task = _deleted_in("waiting")
    result, events = c.restore_task(task, FLOW, by="carol", at=T2, status="waiting")
    assert (result.status, result.history) == ("waiting", task.history)
    assert [type(e) for e in events] == [TaskRestored]


def test_restore_into_a_disabled_status_is_refused() -> None:
    task = _deleted_in("new")
    with pytest.raises(ValidationError) as info:
        c.restore_task(task, FLOW, by="carol", at=T2, status="off")
    assert info.value.field == "status"


def test_restore_into_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        c.restore_task(_deleted_in("new"), FLOW, by="carol", at=T2, status="nowhere")
    assert info.value.field == "status"


def test_restore_onto_an_older_version_or_another_flow_is_refused() -> None:
    task, _ = c.delete_task(new_task(make_flow(version=2)), by="bob", at=T1)
    for flow in (make_flow(version=1), make_flow(id="other", version=3)):
        with pytest.raises(ValidationError) as info:
            c.restore_task(task, flow, by="carol", at=T2)
        assert info.value.field == "flow"


# -- raise_overdue -------------------------------------------------------------


def test_overdue_is_raised_once_the_due_date_has_passed() -> None:
    task, events = c.raise_overdue(new_task(due_at=T1), at=T2)
    assert task.overdue_marked_at == T2
    assert len(events) == 1
    assert isinstance(events[0], TaskOverdue)
    assert events[0].due_at == T1


def test_overdue_is_raised_only_once() -> None:
    task, _ = c.raise_overdue(new_task(due_at=T1), at=T2)
    again, events = c.raise_overdue(task, at=T3)
    assert again is task
    assert events == []


def test_overdue_is_not_raised_before_the_due_date() -> None:
    task = new_task(due_at=T2)
    result, events = c.raise_overdue(task, at=T1)
    assert (result, events) == (task, [])


def test_overdue_is_not_raised_at_the_due_instant_itself() -> None:
    task = new_task(due_at=T2)
    _result, events = c.raise_overdue(task, at=T2)
    assert events == []


def test_overdue_is_not_raised_without_a_due_date() -> None:
    _result, events = c.raise_overdue(new_task(), at=T3)
    assert events == []


def test_overdue_is_not_raised_for_a_completed_task() -> None:
    task = moved(new_task(due_at=T1), "done", at=T0 + timedelta(minutes=30))
    _result, events = c.raise_overdue(task, at=T2)
    assert events == []


def test_overdue_is_not_raised_for_a_deleted_task() -> None:
    task, _ = c.delete_task(new_task(due_at=T1), by="bob", at=T0 + timedelta(minutes=30))
    _result, events = c.raise_overdue(task, at=T2)
    assert events == []


def test_overdue_is_raised_again_after_the_due_date_changes() -> None:
    task, _ = c.raise_overdue(new_task(due_at=T1), at=T2)
    task, _ = c.update_task(task, by="bob", at=T2, due_at=T3)
    task, events = c.raise_overdue(task, at=T3 + timedelta(minutes=1))
    assert [type(e) for e in events] == [TaskOverdue]
    assert task.overdue_marked_at == T3 + timedelta(minutes=1)


def test_overdue_refuses_a_naive_instant() -> None:
    with pytest.raises(ValidationError):
        c.raise_overdue(new_task(due_at=T1), at=datetime(2024, 6, 1))


# -- relocate_task -------------------------------------------------------------


def test_relocate_keeping_the_status_moves_the_task_to_the_new_version() -> None:
    task = new_task()
    v2 = FLOW.revise(name="Flow v2")
    result, events = c.relocate_task(task, v2, None, by="admin", at=T1)
    assert (result.flow_version, result.status, result.version) == (2, "new", task.version + 1)
    assert result.history == task.history
    assert events == []


def test_relocate_to_a_target_moves_the_task_with_a_flow_edit_reason() -> None:
    task = new_task(status="waiting")
    v2 = FLOW.revise(
        statuses=[s if s.key != "waiting" else st("waiting", WAIT, enabled=False)
                  for s in FLOW.statuses]
    )
    result, events = c.relocate_task(task, v2, "doing", by="admin", at=T1)
    entry = result.history[-1]
    assert (result.status, result.flow_version) == ("doing", 2)
    assert (entry.source, entry.target, entry.by, entry.flow_version) == (
        "waiting", "doing", "admin", 2,
    )
    assert entry.reason is not None
    assert "v2" in entry.reason
    assert isinstance(events[0], TaskMoved)


def test_relocate_ignores_move_restrictions_of_the_new_version() -> None:
    task = new_task()
    v2 = FLOW.revise(transitions=[Transition(source="new", target="done")])
    result, _ = c.relocate_task(task, v2, "waiting", by="admin", at=T1)
    assert result.status == "waiting"


def test_relocate_to_a_disabled_status_is_refused() -> None:
    with pytest.raises(MoveRefused):
        c.relocate_task(new_task(), FLOW.revise(name="v2"), "off", by="admin", at=T1)


def test_relocate_keeping_a_status_disabled_in_the_new_version_is_refused() -> None:
    task = new_task(status="waiting")
    v2 = FLOW.revise(
        statuses=[s if s.key != "waiting" else st("waiting", WAIT, enabled=False)
                  for s in FLOW.statuses]
    )
    with pytest.raises(MoveRefused):
        c.relocate_task(task, v2, None, by="admin", at=T1)


def test_relocate_onto_a_version_that_is_not_newer_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        c.relocate_task(new_task(), FLOW, None, by="admin", at=T1)
    assert info.value.field == "flow"
