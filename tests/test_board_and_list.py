"""List and board views: TaskQuery validation, matching, ordering, paging, boards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from cxflow import ValidationError
from cxflow.flows import Flow, Status, StatusKind
from cxflow.tasks import Page, Priority, Task, TaskQuery, TaskSort, build_board
from cxflow.tasks.query import MAX_PAGE_SIZE

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

FLOW = Flow(
    id="f",
    name="Flow",
    statuses=[
        Status(key="new", label="New", kind=StatusKind.NOT_STARTED),
        Status(key="doing", label="Doing", kind=StatusKind.IN_PROGRESS),
        Status(key="parked", label="Parked", kind=StatusKind.WAITING, enabled=False),
        Status(key="done", label="Done", kind=StatusKind.COMPLETED_SUCCESS),
    ],
)


def task(task_id: str, **kwargs: Any) -> Task:
    """A task snapshot built directly (queries only read fields)."""
    kwargs.setdefault("title", task_id)
    kwargs.setdefault("flow_id", "f")
    kwargs.setdefault("flow_version", 1)
    kwargs.setdefault("status", "new")
    kwargs.setdefault("created_at", T0)
    kwargs.setdefault("updated_at", kwargs["created_at"])
    kwargs.setdefault("created_by", "alice")
    return Task(id=task_id, **kwargs)


def ids(tasks: Any) -> list[str]:
    return [t.id for t in tasks]


def ordered(query: TaskQuery, tasks: list[Task]) -> list[str]:
    return ids(query.apply(tasks).items)


# -- TaskQuery validation --------------------------------------------------------


def test_query_defaults_hide_deleted_and_sort_by_priority() -> None:
    query = TaskQuery()
    assert (query.deleted, query.sort, query.descending, query.offset, query.limit) == (
        False, TaskSort.PRIORITY, False, 0, 50,
    )


@pytest.mark.parametrize("overdue", [True, False])
def test_overdue_filter_without_an_instant_is_refused(overdue: bool) -> None:
    with pytest.raises(ValidationError) as info:
        TaskQuery(overdue=overdue)
    assert info.value.field == "at"


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        TaskQuery(overdue=True, at=datetime(2024, 5, 1))
    assert info.value.field == "at"


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1, "10", 2.0, True])
def test_bad_limit_is_refused(limit: Any) -> None:
    with pytest.raises(ValidationError) as info:
        TaskQuery(limit=limit)
    assert info.value.field == "limit"


@pytest.mark.parametrize("limit", [1, MAX_PAGE_SIZE])
def test_limit_bounds_are_accepted(limit: int) -> None:
    assert TaskQuery(limit=limit).limit == limit


@pytest.mark.parametrize("offset", [-1, "0", 1.0, True])
def test_bad_offset_is_refused(offset: Any) -> None:
    with pytest.raises(ValidationError) as info:
        TaskQuery(offset=offset)
    assert info.value.field == "offset"


def test_priority_filter_takes_a_value_and_refuses_an_unknown_one() -> None:
    assert TaskQuery(priority="high").priority is Priority.HIGH  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        TaskQuery(priority="urgent")  # type: ignore[arg-type]
    assert info.value.field == "priority"


def test_sort_takes_a_value_and_refuses_an_unknown_one() -> None:
    assert TaskQuery(sort="title").sort is TaskSort.TITLE  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as info:
        TaskQuery(sort="size")  # type: ignore[arg-type]
    assert info.value.field == "sort"


def test_statuses_given_as_a_list_become_a_tuple() -> None:
    assert TaskQuery(statuses=["new", "doing"]).statuses == ("new", "doing")


# -- matches ---------------------------------------------------------------------

DELETED = task("gone", deleted_at=T0, deleted_by="bob")
LIVE = task("live")


def test_default_query_hides_deleted_tasks() -> None:
    assert (TaskQuery().matches(LIVE), TaskQuery().matches(DELETED)) == (True, False)


def test_deleted_true_matches_only_deleted_tasks() -> None:
    query = TaskQuery(deleted=True)
    assert (query.matches(LIVE), query.matches(DELETED)) == (False, True)


def test_deleted_none_matches_both() -> None:
    query = TaskQuery(deleted=None)
    assert (query.matches(LIVE), query.matches(DELETED)) == (True, True)


def test_flow_filter() -> None:
    query = TaskQuery(flow_id="f")
    assert (query.matches(LIVE), query.matches(task("x", flow_id="g"))) == (True, False)


def test_status_filter_matches_any_listed_status() -> None:
    query = TaskQuery(statuses=["doing", "done"])
    assert [query.matches(task("x", status=s)) for s in ("new", "doing", "done")] == [
        False, True, True,
    ]


def test_empty_status_filter_matches_nothing() -> None:
    assert not TaskQuery(statuses=()).matches(LIVE)


def test_assignee_filter() -> None:
    query = TaskQuery(assignee="bob")
    assert (query.matches(task("a", assignee="bob")), query.matches(task("b"))) == (True, False)


def test_priority_filter() -> None:
    query = TaskQuery(priority=Priority.HIGH)
    assert (query.matches(task("a", priority=Priority.HIGH)), query.matches(LIVE)) == (
        True, False,
    )


def test_conversation_filter() -> None:
    query = TaskQuery(conversation_id="c-1")
    assert (query.matches(task("a", conversation_id="c-1")), query.matches(LIVE)) == (True, False)


def test_overdue_filter_matches_open_tasks_past_their_due_date() -> None:
    query = TaskQuery(overdue=True, at=T0 + DAY)
    assert query.matches(task("late", due_at=T0 + HOUR))


def test_overdue_filter_skips_tasks_due_later_or_exactly_now_or_never() -> None:
    query = TaskQuery(overdue=True, at=T0 + DAY)
    candidates = [task("later", due_at=T0 + 2 * DAY), task("now", due_at=T0 + DAY), task("none")]
    assert [query.matches(t) for t in candidates] == [False, False, False]


def test_overdue_filter_skips_completed_tasks() -> None:
    done = task("done", status="done", due_at=T0 + HOUR, completed_at=T0 + 2 * HOUR)
    assert not TaskQuery(overdue=True, at=T0 + DAY).matches(done)


def test_not_overdue_filter_matches_the_rest() -> None:
    query = TaskQuery(overdue=False, at=T0 + DAY)
    assert (query.matches(task("late", due_at=T0 + HOUR)), query.matches(task("none"))) == (
        False, True,
    )


def test_filters_combine_with_and() -> None:
    query = TaskQuery(assignee="bob", priority=Priority.HIGH)
    candidates = [
        task("both", assignee="bob", priority=Priority.HIGH),
        task("assignee", assignee="bob"),
        task("priority", priority=Priority.HIGH),
    ]
    assert [query.matches(t) for t in candidates] == [True, False, False]


# -- sort order ------------------------------------------------------------------


def test_priority_sort_puts_high_first() -> None:
    tasks = [task("low", priority=Priority.LOW), task("normal"),
             task("high", priority=Priority.HIGH)]
    assert ordered(TaskQuery(), tasks) == ["high", "normal", "low"]


def test_priority_sort_orders_by_due_date_within_a_priority_with_none_last() -> None:
    tasks = [task("none"), task("late", due_at=T0 + 2 * DAY), task("soon", due_at=T0 + DAY)]
    assert ordered(TaskQuery(), tasks) == ["soon", "late", "none"]


def test_priority_beats_due_date() -> None:
    tasks = [task("normal-soon", due_at=T0 + HOUR),
             task("high-none", priority=Priority.HIGH)]
    assert ordered(TaskQuery(), tasks) == ["high-none", "normal-soon"]


def test_priority_sort_falls_back_to_creation_then_id() -> None:
    tasks = [task("b", created_at=T0 + HOUR), task("c"), task("a")]
    assert ordered(TaskQuery(), tasks) == ["a", "c", "b"]


def test_due_sort_puts_earliest_first_and_none_last() -> None:
    tasks = [
        task("none"),
        task("high-late", priority=Priority.HIGH, due_at=T0 + 2 * DAY),
        task("low-soon", priority=Priority.LOW, due_at=T0 + DAY),
    ]
    assert ordered(TaskQuery(sort=TaskSort.DUE_AT), tasks) == ["low-soon", "high-late", "none"]


def test_no_due_date_sorts_after_a_due_date_far_in_the_future() -> None:
    tasks = [task("none", created_at=T0 - DAY), task("far", due_at=T0 + 3650 * DAY)]
    assert ordered(TaskQuery(sort=TaskSort.DUE_AT), tasks) == ["far", "none"]


def test_created_sort_is_oldest_first() -> None:
    tasks = [task("new", created_at=T0 + HOUR), task("old", created_at=T0)]
    assert ordered(TaskQuery(sort=TaskSort.CREATED_AT), tasks) == ["old", "new"]


def test_updated_sort_is_least_recently_updated_first() -> None:
    tasks = [task("fresh", updated_at=T0 + DAY), task("stale", updated_at=T0 + HOUR)]
    assert ordered(TaskQuery(sort=TaskSort.UPDATED_AT), tasks) == ["stale", "fresh"]


def test_title_sort_ignores_case() -> None:
    tasks = [task("1", title="banana"), task("2", title="Apple"), task("3", title="cherry")]
    assert ordered(TaskQuery(sort=TaskSort.TITLE), tasks) == ["2", "1", "3"]


@pytest.mark.parametrize("sort", list(TaskSort))
def test_ties_are_broken_by_id(sort: TaskSort) -> None:
    tasks = [task("c", title="same"), task("a", title="same"), task("b", title="same")]
    assert ordered(TaskQuery(sort=sort), tasks) == ["a", "b", "c"]


def test_descending_reverses_the_order() -> None:
    tasks = [task("new", created_at=T0 + HOUR), task("old", created_at=T0)]
    assert ordered(TaskQuery(sort=TaskSort.CREATED_AT, descending=True), tasks) == ["new", "old"]


def test_sort_key_defines_the_order_apply_uses() -> None:
    tasks = [task(str(n), priority=list(Priority)[n % 3], due_at=T0 + n % 4 * DAY)
             for n in range(12)]
    query = TaskQuery(limit=100)
    assert ordered(query, tasks) == ids(sorted(tasks, key=query.sort_key))


# -- paging ----------------------------------------------------------------------

TEN = [task(f"t{n:02d}") for n in range(10)]


def test_apply_returns_a_page_with_the_total_of_all_matches() -> None:
    page = TaskQuery(limit=3).apply(TEN)
    assert (ids(page.items), page.total, page.offset, page.limit) == (
        ["t00", "t01", "t02"], 10, 0, 3,
    )


def test_apply_skips_offset_matches() -> None:
    assert ids(TaskQuery(offset=8, limit=3).apply(TEN).items) == ["t08", "t09"]


def test_offset_past_the_end_gives_an_empty_page() -> None:
    page = TaskQuery(offset=20).apply(TEN)
    assert (page.items, page.total, page.has_more) == ((), 10, False)


def test_total_counts_only_matches() -> None:
    assert TaskQuery(limit=1).apply([*TEN, DELETED]).total == 10


def test_pages_cover_every_match_exactly_once() -> None:
    seen: list[str] = []
    query = TaskQuery(limit=3)
    while True:
        page = query.apply(TEN)
        seen.extend(ids(page.items))
        if not page.has_more:
            break
        query = attrs.evolve(query, offset=query.offset + len(page.items))
    assert seen == ids(TEN)


@pytest.mark.parametrize(
    ("offset", "count", "total", "has_more"),
    [(0, 3, 10, True), (7, 3, 10, False), (0, 0, 0, False), (5, 4, 10, True), (10, 0, 10, False)],
)
def test_page_has_more_when_matches_remain_after_it(
    offset: int, count: int, total: int, has_more: bool
) -> None:
    page = Page(items=tuple(TEN[:count]), total=total, offset=offset, limit=3)
    assert page.has_more is has_more


# -- boards ----------------------------------------------------------------------


def test_board_has_a_column_per_enabled_status_in_flow_order() -> None:
    board = build_board(FLOW, [])
    assert [col.status.key for col in board.columns] == ["new", "doing", "done"]


def test_board_keeps_empty_columns() -> None:
    board = build_board(FLOW, [task("a")])
    assert [len(col.tasks) for col in board.columns] == [1, 0, 0]


def test_board_groups_tasks_by_status() -> None:
    board = build_board(FLOW, [task("a"), task("b", status="doing"), task("c", status="done")])
    assert [ids(col.tasks) for col in board.columns] == [["a"], ["b"], ["c"]]


def test_board_leaves_out_tasks_in_a_disabled_status() -> None:
    board = build_board(FLOW, [task("a"), task("p", status="parked")])
    assert [t.id for col in board.columns for t in col.tasks] == ["a"]


def test_board_leaves_out_tasks_in_a_status_the_flow_does_not_have() -> None:
    board = build_board(FLOW, [task("a"), task("old", status="removed")])
    assert [t.id for col in board.columns for t in col.tasks] == ["a"]


def test_board_leaves_out_deleted_tasks() -> None:
    board = build_board(FLOW, [LIVE, DELETED])
    assert [t.id for col in board.columns for t in col.tasks] == ["live"]


def test_board_leaves_out_tasks_of_other_flows() -> None:
    board = build_board(FLOW, [task("a"), task("b", flow_id="g")])
    assert [t.id for col in board.columns for t in col.tasks] == ["a"]


def test_board_column_orders_by_priority_then_due_date_with_none_last() -> None:
    tasks = [
        task("low-soon", priority=Priority.LOW, due_at=T0 + DAY),
        task("normal-none"),
        task("normal-late", due_at=T0 + 3 * DAY),
        task("high-none", priority=Priority.HIGH),
        task("normal-soon", due_at=T0 + DAY),
        task("high-late", priority=Priority.HIGH, due_at=T0 + 2 * DAY),
    ]
    assert ids(build_board(FLOW, tasks).column("new").tasks) == [
        "high-late", "high-none", "normal-soon", "normal-late", "normal-none", "low-soon",
    ]


def test_board_column_looks_up_by_status_key() -> None:
    assert build_board(FLOW, []).column("doing").status.key == "doing"


@pytest.mark.parametrize("key", ["parked", "nope"])
def test_board_column_of_a_status_not_on_the_board_is_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        build_board(FLOW, []).column(key)


def test_board_accepts_any_iterable_of_tasks() -> None:
    board = build_board(FLOW, (t for t in [task("a"), task("b")]))
    assert ids(board.column("new").tasks) == ["a", "b"]
