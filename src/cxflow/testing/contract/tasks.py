"""``TaskStore``: task snapshots and copies, and every filter, sort order and
page of ``TaskQuery``."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from cxflow.errors import ConflictError
from cxflow.events import Event
from cxflow.flows.model import Flow
from cxflow.storage.protocols import (
    Store,
    TaskStore,
)
from cxflow.tasks import commands
from cxflow.tasks.model import Priority, Task
from cxflow.tasks.query import Page, TaskQuery, TaskSort
from cxflow.testing.contract._base import (
    HOUR,
    MINUTE,
    _StoreFactory,
)
from cxflow.testing.contract.records import RecordRules
from cxflow.testing.fixtures import (
    T0,
    sample_flow,
    sample_task,
    sample_task_history,
)

# -- tasks ------------------------------------------------------------------------------


class TaskStoreContract(RecordRules):
    """``TaskStore`` reads and the version rules of task writes."""

    record_kinds: ClassVar[tuple[str, ...]] = ("task",)

    def test_store_satisfies_task_store_protocol(self, store: Store) -> None:
        assert isinstance(store, TaskStore)

    def test_committed_task_reads_back_equal(self, store: Store) -> None:
        for task, _events in sample_task_history():
            self.commit(store, tasks=(task,))
            assert store.get_task(self.tenant, "task-1") == task

    def test_returned_task_datetimes_are_aware_utc(self, store: Store) -> None:
        for task, _events in sample_task_history():
            self.commit(store, tasks=(task,))
        got = store.get_task(self.tenant, "task-1")
        instants = [got.created_at, got.updated_at, got.due_at, got.overdue_marked_at]
        instants += [c.at for c in got.comments] + [h.at for h in got.history]
        for instant in instants:
            assert instant is not None
            assert instant.utcoffset() == timedelta(0)

    def test_get_task_returns_latest_snapshot(self, store: Store) -> None:
        v1 = sample_task()
        v2, _ = commands.add_comment(v1, "hello", by="ana", at=T0 + MINUTE)
        self.commit(store, tasks=(v1,))
        self.commit(store, tasks=(v2,))
        assert store.get_task(self.tenant, v1.id) == v2

    def test_get_task_returns_soft_deleted_task(self, store: Store) -> None:
        v1 = sample_task()
        v2, _ = commands.delete_task(v1, by="ana", at=T0 + MINUTE)
        self.commit(store, tasks=(v1,))
        self.commit(store, tasks=(v2,))
        got = store.get_task(self.tenant, v1.id)
        assert got.deleted
        assert got == v2

    def test_changing_task_of_query_page_does_not_change_stored_task(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),))
        (returned,) = store.query_tasks(self.tenant, TaskQuery()).items
        returned.assignee = "intruder"
        assert store.get_task(self.tenant, "task-1") == sample_task()
        assert store.query_tasks(self.tenant, TaskQuery()).items == (sample_task(),)

    def test_stale_task_write_conflicts(self, store: Store) -> None:
        v1 = sample_task()
        self.commit(store, tasks=(v1,))
        winner, _ = commands.add_comment(v1, "first", by="ana", at=T0 + MINUTE)
        loser, _ = commands.update_task(v1, by="bo", at=T0 + MINUTE, title="Second writer")
        self.commit(store, tasks=(winner,))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(loser,))
        assert store.get_task(self.tenant, "task-1") == winner

# -- queries ----------------------------------------------------------------------------


def _query_dataset() -> tuple[list[Flow], list[Task], dict[str, Task]]:
    """Flows, snapshots to commit in order, and the latest snapshot of every task.

    id   flow     status   priority  due   assignee  conv  title               created  updated
    t01  support  new      high      +48h  ana       c1    Refund request      +0h      +9h
    t02  support  doing    normal    +24h  bo        c2    broken zipper       +1h      +1h
    t03  support  waiting  low       -     -         c1    Where is my parcel  +2h      +2h
    t04  support  done     high      +1h   ana       -     Address change      +3h      +3h
    t05  sales    new      normal    +5h   ana       -     bulk order          +4h      +4h
    t06  sales    doing    high      -     bo        c3    Partnership         +5h      +5h
    t07  support  new      normal    -     -         -     Spam (deleted)      +6h      +6h30
    t08  support  doing    low       +3h   cy (upd)  -     alpha               +7h      +10h
    t09  support  new      normal    +24h  -         -     Same title          +8h      +8h
    t10  support  new      normal    +24h  -         -     same title          +8h      +8h

    Times are hours after ``T0``; t04 is completed; t07 is soft-deleted.
    """
    support = sample_flow("support")
    sales = sample_flow("sales")
    high, normal, low = Priority.HIGH, Priority.NORMAL, Priority.LOW

    def new(
        task_id: str, flow: Flow, status: str, priority: Priority, due: int | None,
        assignee: str | None, conv: str | None, title: str, created: int,
    ) -> Task:
        return sample_task(
            flow, task_id, at=T0 + created * HOUR, title=title, status=status,
            priority=priority, due_at=None if due is None else T0 + due * HOUR,
            assignee=assignee, conversation_id=conv,
        )

    snapshots = [
        new("t01", support, "new", high, 48, "ana", "c1", "Refund request", 0),
        new("t02", support, "doing", normal, 24, "bo", "c2", "broken zipper", 1),
        new("t03", support, "waiting", low, None, None, "c1", "Where is my parcel", 2),
        new("t04", support, "done", high, 1, "ana", None, "Address change", 3),
        new("t05", sales, "new", normal, 5, "ana", None, "bulk order", 4),
        new("t06", sales, "doing", high, None, "bo", "c3", "Partnership", 5),
        new("t07", support, "new", normal, None, None, None, "Spam", 6),
        new("t08", support, "doing", low, 3, None, None, "alpha", 7),
        new("t09", support, "new", normal, 24, None, None, "Same title", 8),
        new("t10", support, "new", normal, 24, None, None, "same title", 8),
    ]
    latest = {task.id: task for task in snapshots}

    def change(result: tuple[Task, list[Event]]) -> None:
        snapshots.append(result[0])
        latest[result[0].id] = result[0]

    change(commands.delete_task(latest["t07"], by="ana", at=T0 + 6 * HOUR + 30 * MINUTE))
    change(commands.add_comment(latest["t01"], "On it", by="ana", at=T0 + 9 * HOUR))
    change(commands.update_task(latest["t08"], by="ana", at=T0 + 10 * HOUR, assignee="cy"))
    return [support, sales], snapshots, latest


LIVE_IDS = ["t01", "t02", "t03", "t04", "t05", "t06", "t08", "t09", "t10"]

# Hand-written expected orders of the nine live tasks (see _query_dataset).
SORTED_LIVE_IDS: dict[TaskSort, list[str]] = {
    # priority rank, then due date (none last), then created, then id
    TaskSort.PRIORITY: ["t04", "t01", "t06", "t05", "t02", "t09", "t10", "t08", "t03"],
    # due date; tasks without one last (by created); ties by id
    TaskSort.DUE_AT: ["t04", "t08", "t05", "t02", "t09", "t10", "t01", "t03", "t06"],
    TaskSort.CREATED_AT: ["t01", "t02", "t03", "t04", "t05", "t06", "t08", "t09", "t10"],
    TaskSort.UPDATED_AT: ["t02", "t03", "t04", "t05", "t06", "t09", "t10", "t01", "t08"],
    # case-insensitive title, ties ("Same title" / "same title") by id
    TaskSort.TITLE: ["t04", "t08", "t02", "t05", "t06", "t01", "t09", "t10", "t03"],
}

# ``descending=True``: the reverse, except that tasks without a due date (t03,
# t06) stay after the dated ones (within their priority for PRIORITY).
DESCENDING_LIVE_IDS: dict[TaskSort, list[str]] = {
    # low, normal, high; latest due date first, then none; newest, then id
    TaskSort.PRIORITY: ["t08", "t03", "t10", "t09", "t02", "t05", "t01", "t04", "t06"],
    # latest due date first, ties newest then id; no due date last, newest first
    TaskSort.DUE_AT: ["t01", "t10", "t09", "t02", "t05", "t08", "t04", "t06", "t03"],
    TaskSort.CREATED_AT: SORTED_LIVE_IDS[TaskSort.CREATED_AT][::-1],
    TaskSort.UPDATED_AT: SORTED_LIVE_IDS[TaskSort.UPDATED_AT][::-1],
    TaskSort.TITLE: SORTED_LIVE_IDS[TaskSort.TITLE][::-1],
}

_AT_DAY_PLUS_1H = T0 + 25 * HOUR
_AT_DAY = T0 + 24 * HOUR

# (test id, query, expected ids in order)
FILTER_CASES: list[tuple[str, TaskQuery, list[str]]] = [
    ("default-hides-deleted", TaskQuery(), SORTED_LIVE_IDS[TaskSort.PRIORITY]),
    ("deleted-only", TaskQuery(deleted=True), ["t07"]),
    (
        "deleted-and-live",
        TaskQuery(deleted=None, sort=TaskSort.CREATED_AT),
        ["t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08", "t09", "t10"],
    ),
    ("flow-id", TaskQuery(flow_id="sales"), ["t06", "t05"]),
    ("unknown-flow-id", TaskQuery(flow_id="nope"), []),
    ("one-status", TaskQuery(statuses=("new",)), ["t01", "t05", "t09", "t10"]),
    ("two-statuses", TaskQuery(statuses=("doing", "waiting")), ["t06", "t02", "t08", "t03"]),
    ("no-statuses", TaskQuery(statuses=()), []),
    ("assignee", TaskQuery(assignee="ana"), ["t04", "t01", "t05"]),
    ("assignee-of-latest-snapshot", TaskQuery(assignee="cy"), ["t08"]),
    ("priority-high", TaskQuery(priority=Priority.HIGH), ["t04", "t01", "t06"]),
    ("priority-low", TaskQuery(priority=Priority.LOW), ["t08", "t03"]),
    ("conversation", TaskQuery(conversation_id="c1"), ["t01", "t03"]),
    (
        "overdue",
        TaskQuery(overdue=True, at=_AT_DAY_PLUS_1H),
        ["t05", "t02", "t09", "t10", "t08"],
    ),
    ("not-overdue", TaskQuery(overdue=False, at=_AT_DAY_PLUS_1H), ["t04", "t01", "t06", "t03"]),
    ("overdue-excludes-due-exactly-at", TaskQuery(overdue=True, at=_AT_DAY), ["t05", "t08"]),
    ("overdue-excludes-completed", TaskQuery(overdue=True, at=T0 + 2 * HOUR), []),
    (
        "combined",
        TaskQuery(flow_id="support", statuses=("new", "done"), assignee="ana"),
        ["t04", "t01"],
    ),
    (
        "combined-with-sort",
        TaskQuery(flow_id="support", priority=Priority.NORMAL, sort=TaskSort.TITLE,
                  descending=True),
        ["t10", "t09", "t02"],
    ),
]


class TaskQueryContract(_StoreFactory):
    """``query_tasks``: the semantics of
    ``TaskQuery`` (filters, sort orders, pages)."""

    @pytest.fixture
    def tasks(self, store: Store) -> dict[str, Task]:
        """Commit the query dataset (one snapshot per commit); return the latest
        snapshot of every task by id."""
        flows, snapshots, latest = _query_dataset()
        self.commit(store, flows=tuple(flows))
        for snapshot in snapshots:
            self.commit(store, tasks=(snapshot,))
        return latest

    def query_ids(self, store: Store, query: TaskQuery) -> list[str]:
        """The ids of the page ``query`` returns."""
        return [task.id for task in store.query_tasks(self.tenant, query).items]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [case[1:] for case in FILTER_CASES],
        ids=[case[0] for case in FILTER_CASES],
    )
    def test_filter_returns_expected_tasks_in_order(
        self, store: Store, tasks: dict[str, Task], query: TaskQuery, expected: list[str]
    ) -> None:
        assert self.query_ids(store, query) == expected

    @pytest.mark.parametrize(
        ("query", "expected"),
        [case[1:] for case in FILTER_CASES],
        ids=[case[0] for case in FILTER_CASES],
    )
    def test_filter_matches_reference_semantics(
        self, store: Store, tasks: dict[str, Task], query: TaskQuery, expected: list[str]
    ) -> None:
        assert store.query_tasks(self.tenant, query) == query.apply(tasks.values())

    @pytest.mark.parametrize("sort", list(TaskSort), ids=[s.value for s in TaskSort])
    def test_sort_order_ascending(
        self, store: Store, tasks: dict[str, Task], sort: TaskSort
    ) -> None:
        query = TaskQuery(sort=sort)
        assert self.query_ids(store, query) == SORTED_LIVE_IDS[sort]
        assert store.query_tasks(self.tenant, query) == query.apply(tasks.values())

    @pytest.mark.parametrize("sort", list(TaskSort), ids=[s.value for s in TaskSort])
    def test_sort_order_descending(
        self, store: Store, tasks: dict[str, Task], sort: TaskSort
    ) -> None:
        query = TaskQuery(sort=sort, descending=True)
        assert self.query_ids(store, query) == DESCENDING_LIVE_IDS[sort]
        assert store.query_tasks(self.tenant, query) == query.apply(tasks.values())

    @pytest.mark.parametrize("sort", [TaskSort.PRIORITY, TaskSort.DUE_AT], ids=lambda s: s.value)
    def test_descending_keeps_tasks_without_a_due_date_last(
        self, store: Store, sort: TaskSort
    ) -> None:
        """Regression: descending once put the tasks without a due date first."""
        flow = sample_flow()
        self.commit(store, flows=(flow,))
        for task_id, due, created in [("dated-soon", 24, 0), ("undated-old", None, 1),
                                      ("dated-late", 48, 2), ("undated-new", None, 3)]:
            task = sample_task(flow, task_id, at=T0 + created * HOUR,
                               due_at=None if due is None else T0 + due * HOUR)
            self.commit(store, tasks=(task,))
        assert self.query_ids(store, TaskQuery(sort=sort)) == [
            "dated-soon", "dated-late", "undated-old", "undated-new"
        ]
        assert self.query_ids(store, TaskQuery(sort=sort, descending=True)) == [
            "dated-late", "dated-soon", "undated-new", "undated-old"
        ]

    def test_query_returns_full_latest_snapshots(
        self, store: Store, tasks: dict[str, Task]
    ) -> None:
        page = store.query_tasks(self.tenant, TaskQuery(deleted=None))
        assert {task.id: task for task in page.items} == tasks

    def test_total_counts_every_match_not_just_the_page(
        self, store: Store, tasks: dict[str, Task]
    ) -> None:
        page = store.query_tasks(self.tenant, TaskQuery(limit=2))
        assert len(page.items) == 2
        assert page.total == len(LIVE_IDS)

    def test_page_echoes_offset_and_limit(self, store: Store, tasks: dict[str, Task]) -> None:
        page = store.query_tasks(self.tenant, TaskQuery(offset=3, limit=4))
        assert (page.offset, page.limit) == (3, 4)

    def test_pages_cover_every_match_once_in_order(
        self, store: Store, tasks: dict[str, Task]
    ) -> None:
        pages: list[Page] = [
            store.query_tasks(self.tenant, TaskQuery(offset=offset, limit=4))
            for offset in (0, 4, 8)
        ]
        assert [[t.id for t in p.items] for p in pages] == [
            ["t04", "t01", "t06", "t05"],
            ["t02", "t09", "t10", "t08"],
            ["t03"],
        ]
        assert [p.has_more for p in pages] == [True, True, False]
        assert [p.total for p in pages] == [9, 9, 9]

    def test_page_ending_exactly_at_last_match_has_no_more(
        self, store: Store, tasks: dict[str, Task]
    ) -> None:
        page = store.query_tasks(self.tenant, TaskQuery(offset=5, limit=4))
        assert len(page.items) == 4
        assert not page.has_more

    @pytest.mark.parametrize("offset", [9, 50])
    def test_offset_past_the_end_returns_no_items_but_the_total(
        self, store: Store, tasks: dict[str, Task], offset: int
    ) -> None:
        page = store.query_tasks(self.tenant, TaskQuery(offset=offset, limit=5))
        assert page.items == ()
        assert page.total == 9
        assert not page.has_more

    def test_query_of_empty_store_returns_empty_page(self, store: Store) -> None:
        page = store.query_tasks(self.tenant, TaskQuery())
        assert page == Page(items=(), total=0, offset=0, limit=50)

    def test_query_sees_task_changes_after_commit(
        self, store: Store, tasks: dict[str, Task]
    ) -> None:
        moved, _ = commands.update_task(tasks["t02"], by="ana", at=T0 + 11 * HOUR,
                                        priority=Priority.HIGH, assignee="cy")
        self.commit(store, tasks=(moved,))
        assert self.query_ids(store, TaskQuery(assignee="cy")) == ["t02", "t08"]
        assert self.query_ids(store, TaskQuery(assignee="bo")) == ["t06"]

    def test_many_random_queries_match_reference_semantics(
        self, store: Store, tasks: dict[str, Task]
    ) -> None:
        rng = random.Random(20240101)
        for query in _random_queries(rng, 200):
            got = store.query_tasks(self.tenant, query)
            assert got == query.apply(tasks.values()), query


def _random_queries(rng: random.Random, count: int) -> Iterator[TaskQuery]:
    def pick(options: list[Any]) -> Any:
        return options[rng.randrange(len(options))]

    instants = [T0, T0 + 3 * HOUR, _AT_DAY, _AT_DAY_PLUS_1H, T0 + 72 * HOUR]
    for _ in range(count):
        overdue = pick([None, None, True, False])
        yield TaskQuery(
            flow_id=pick([None, None, "support", "sales", "nope"]),
            statuses=pick([None, None, (), ("new",), ("doing", "waiting"), ("done", "new")]),
            assignee=pick([None, None, "ana", "bo", "cy", "zed"]),
            priority=pick([None, None, *Priority]),
            conversation_id=pick([None, None, "c1", "c2", "c3"]),
            overdue=overdue,
            at=None if overdue is None else pick(instants),
            deleted=pick([False, False, True, None]),
            sort=pick(list(TaskSort)),
            descending=pick([False, True]),
            offset=pick([0, 0, 1, 3, 8]),
            limit=pick([1, 2, 5, 50]),
        )
