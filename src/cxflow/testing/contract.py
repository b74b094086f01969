"""The storage adapter contract suite (requires pytest).

Base classes of small, one-behaviour tests that every adapter of
``cxflow.storage.protocols`` passes by subclassing, as the in-memory
reference adapter does::

    from cxflow.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self):
            return MyStore(...)

The classes are deliberately not named ``Test*``, so pytest collects them only
through your subclass. Each tier has its own class, and ``StoreContract``
combines them all:

- ``FlowStoreContract``: flow versions, latest/specific reads, ordering;
- ``TaskStoreContract``: task snapshots, copies, version rules;
- ``TaskQueryContract``: every filter, sort order and page of ``TaskQuery``,
  checked against hand-written expectations and ``TaskQuery.apply``;
- ``EventOutboxContract``: positions, order, ``after``/``limit``;
- ``ChangeWriterContract``: atomicity and optimistic concurrency of ``commit``;
- ``TenantIsolationContract``: tenant required on every method, tenants
  invisible to each other.

Every class seeds its data through ``ChangeWriter.commit``, so the adapter
must implement that tier as well as the one under test.

What a subclass provides:

- ``make_store`` (required): a **new, empty** store on every call (a fresh
  database, schema or key prefix per test);
- ``dispose_store`` (optional): release what ``make_store`` took (close
  connections, drop the schema);
- ``tenant`` / ``other_tenant`` (optional): the two tenant ids the tests use.

All data is built with the pure commands of ``cxflow.tasks.commands`` at
fixed instants: no clock reads, no sleeps.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

from cxflow.errors import ConflictError, CxflowError, NotFound, ValidationError
from cxflow.events import Event, FlowSaved
from cxflow.flows.model import Flow, Transition
from cxflow.storage.protocols import (
    ChangeSet,
    ChangeWriter,
    EventOutbox,
    FlowStore,
    Store,
    StoredEvent,
    TaskStore,
)
from cxflow.tasks import commands
from cxflow.tasks.model import Priority, Task
from cxflow.tasks.query import Page, TaskQuery, TaskSort
from cxflow.testing.fixtures import T0, sample_flow, sample_task, sample_task_history

__all__ = [
    "ChangeWriterContract",
    "EventOutboxContract",
    "FlowStoreContract",
    "StoreContract",
    "TaskQueryContract",
    "TaskStoreContract",
    "TenantIsolationContract",
]

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)

BAD_TENANTS: list[object] = [None, "", "   ", 5]
BAD_TENANT_IDS = ["none", "empty", "blank", "int"]


def _flow_saved(number: int) -> FlowSaved:
    """A distinct event per ``number`` (its instant and flow id differ)."""
    return FlowSaved(
        flow_id=f"flow-{number}",
        version=1,
        at=T0 + number * MINUTE,
        by="tester",
    )


class _StoreFactory(abc.ABC):
    """The store factory and helpers every contract class shares."""

    tenant: str = "acme"
    """The tenant most tests write to."""
    other_tenant: str = "globex"
    """A second tenant, for isolation tests."""

    @abc.abstractmethod
    def make_store(self) -> Store:
        """Return a new, empty store of the adapter under test."""

    def dispose_store(self, store: Store) -> None:  # noqa: B027 - optional hook
        """Release what ``make_store`` acquired (default: nothing)."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A fresh store for one test."""
        store = self.make_store()
        try:
            yield store
        finally:
            self.dispose_store(store)

    def commit(
        self,
        store: Store,
        *,
        flows: tuple[Flow, ...] = (),
        tasks: tuple[Task, ...] = (),
        events: tuple[Event, ...] = (),
        tenant: str | None = None,
    ) -> None:
        """Commit one change set for ``tenant`` (default ``tenant``)."""
        store.commit(
            self.tenant if tenant is None else tenant,
            ChangeSet(flows=flows, tasks=tasks, events=events),
        )

    def all_events(self, store: Store, tenant: str | None = None) -> list[StoredEvent]:
        """Every event in the outbox of ``tenant`` (paging through it)."""
        found: list[StoredEvent] = []
        after = 0
        while batch := store.read_events(self.tenant if tenant is None else tenant, after, 100):
            found.extend(batch)
            assert batch[-1].position > after, "read_events(after=n) returned position <= n"
            after = batch[-1].position
        return found


# -- flows ------------------------------------------------------------------------------


class FlowStoreContract(_StoreFactory):
    """``FlowStore``: flow versions."""

    def test_store_satisfies_flow_store_protocol(self, store: Store) -> None:
        assert isinstance(store, FlowStore)

    def test_committed_flow_reads_back_equal(self, store: Store) -> None:
        flow = sample_flow().revise(
            transitions=(
                Transition(source="new", target="doing"),
                Transition(source="doing", target="done"),
                Transition(source="doing", target="failed"),
            ),
            initial="new",
            allow_open_required_todos=True,
            description="Unicode \u00e9\u00df\u4e2d \U0001f4e6",
        )
        flow = attrs.evolve(flow, version=1)
        self.commit(store, flows=(flow,))
        assert store.get_flow(self.tenant, flow.id) == flow

    def test_get_flow_defaults_to_latest_version(self, store: Store) -> None:
        v1 = sample_flow()
        v2 = v1.revise(name="Second")
        v3 = v2.revise(name="Third")
        for flow in (v1, v2, v3):
            self.commit(store, flows=(flow,))
        assert store.get_flow(self.tenant, "support") == v3

    def test_get_flow_returns_requested_version(self, store: Store) -> None:
        v1 = sample_flow()
        v2 = v1.revise(name="Second")
        v3 = v2.revise(name="Third")
        for flow in (v1, v2, v3):
            self.commit(store, flows=(flow,))
        assert store.get_flow(self.tenant, "support", 1) == v1
        assert store.get_flow(self.tenant, "support", 2) == v2
        assert store.get_flow(self.tenant, "support", 3) == v3

    def test_get_unknown_flow_raises_not_found(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow("other"),))
        with pytest.raises(NotFound) as info:
            store.get_flow(self.tenant, "support")
        assert info.value.kind == "flow"
        assert info.value.id == "support"

    def test_not_found_for_flow_is_a_lookup_error(self, store: Store) -> None:
        with pytest.raises(LookupError):
            store.get_flow(self.tenant, "support")

    def test_get_unknown_flow_version_raises_not_found(self, store: Store) -> None:
        flow = sample_flow()
        self.commit(store, flows=(flow, flow.revise(name="Second")))
        with pytest.raises(NotFound) as info:
            store.get_flow(self.tenant, "support", 3)
        assert info.value.kind == "flow"
        assert "support" in info.value.id

    def test_list_flows_of_new_tenant_is_empty(self, store: Store) -> None:
        assert store.list_flows(self.tenant) == []

    def test_list_flows_returns_latest_version_of_each_flow(self, store: Store) -> None:
        support = sample_flow("support")
        sales = sample_flow("sales")
        self.commit(store, flows=(support, sales))
        support_v2 = support.revise(name="Support v2")
        self.commit(store, flows=(support_v2,))
        assert store.list_flows(self.tenant) == [sales, support_v2]

    def test_list_flows_is_ordered_by_id(self, store: Store) -> None:
        ids = ["m", "b", "z", "a", "k"]
        for flow_id in ids:
            self.commit(store, flows=(sample_flow(flow_id),))
        assert [f.id for f in store.list_flows(self.tenant)] == sorted(ids)

    def test_list_flow_versions_returns_every_version_oldest_first(self, store: Store) -> None:
        v1 = sample_flow()
        v2 = v1.revise(name="Second")
        v3 = v2.revise(name="Third")
        self.commit(store, flows=(v1,))
        self.commit(store, flows=(v2, v3))
        self.commit(store, flows=(sample_flow("other"),))
        assert store.list_flow_versions(self.tenant, "support") == [v1, v2, v3]

    def test_list_flow_versions_of_unknown_flow_raises_not_found(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow("other"),))
        with pytest.raises(NotFound) as info:
            store.list_flow_versions(self.tenant, "support")
        assert info.value.kind == "flow"
        assert info.value.id == "support"

    def test_writing_flow_v1_twice_conflicts(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow(),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(name="Duplicate"),))

    def test_conflicting_flow_write_keeps_stored_flow(self, store: Store) -> None:
        original = sample_flow()
        self.commit(store, flows=(original,))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(name="Duplicate"),))
        assert store.get_flow(self.tenant, "support") == original
        assert store.list_flow_versions(self.tenant, "support") == [original]

    def test_writing_new_flow_at_v2_conflicts(self, store: Store) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow().revise(name="Second"),))
        with pytest.raises(NotFound):
            store.get_flow(self.tenant, "support")

    def test_skipping_a_flow_version_conflicts(self, store: Store) -> None:
        v1 = sample_flow()
        self.commit(store, flows=(v1,))
        v3 = v1.revise().revise(name="Third")
        with pytest.raises(ConflictError):
            self.commit(store, flows=(v3,))
        assert store.get_flow(self.tenant, "support") == v1

    def test_stale_flow_write_conflicts(self, store: Store) -> None:
        v1 = sample_flow()
        self.commit(store, flows=(v1,))
        self.commit(store, flows=(v1.revise(name="Writer A"),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(v1.revise(name="Writer B"),))
        assert store.get_flow(self.tenant, "support").name == "Writer A"

    def test_consecutive_flow_versions_in_one_commit_are_written(self, store: Store) -> None:
        v1 = sample_flow()
        v2 = v1.revise(name="Second")
        self.commit(store, flows=(v1, v2))
        assert store.list_flow_versions(self.tenant, "support") == [v1, v2]

    def test_changing_returned_flow_does_not_change_stored_flow(self, store: Store) -> None:
        flow = sample_flow()
        self.commit(store, flows=(flow,))
        returned = store.get_flow(self.tenant, "support")
        object.__setattr__(returned, "name", "Changed in place")
        assert store.get_flow(self.tenant, "support") == flow

    def test_changing_committed_flow_does_not_change_stored_flow(self, store: Store) -> None:
        flow = sample_flow()
        self.commit(store, flows=(flow,))
        object.__setattr__(flow, "name", "Changed in place")
        assert store.get_flow(self.tenant, "support") == sample_flow()

    def test_changing_returned_flow_list_does_not_change_store(self, store: Store) -> None:
        flow = sample_flow()
        self.commit(store, flows=(flow,))
        store.list_flows(self.tenant).clear()
        store.list_flow_versions(self.tenant, "support").clear()
        assert store.list_flows(self.tenant) == [flow]
        assert store.list_flow_versions(self.tenant, "support") == [flow]


# -- tasks ------------------------------------------------------------------------------


class TaskStoreContract(_StoreFactory):
    """``TaskStore`` reads and the version rules of task writes."""

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

    def test_get_unknown_task_raises_not_found(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(task_id="other"),))
        with pytest.raises(NotFound) as info:
            store.get_task(self.tenant, "task-1")
        assert info.value.kind == "task"
        assert info.value.id == "task-1"

    def test_not_found_for_task_is_a_lookup_error(self, store: Store) -> None:
        with pytest.raises(LookupError):
            store.get_task(self.tenant, "task-1")

    def test_get_task_returns_soft_deleted_task(self, store: Store) -> None:
        v1 = sample_task()
        v2, _ = commands.delete_task(v1, by="ana", at=T0 + MINUTE)
        self.commit(store, tasks=(v1,))
        self.commit(store, tasks=(v2,))
        got = store.get_task(self.tenant, v1.id)
        assert got.deleted
        assert got == v2

    def test_changing_committed_task_does_not_change_stored_task(self, store: Store) -> None:
        task = sample_task()
        self.commit(store, tasks=(task,))
        task.title = "Changed in place"
        task.watchers = ("intruder",)
        assert store.get_task(self.tenant, "task-1") == sample_task()

    def test_changing_returned_task_does_not_change_stored_task(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),))
        returned = store.get_task(self.tenant, "task-1")
        returned.title = "Changed in place"
        object.__setattr__(returned, "version", 99)
        assert store.get_task(self.tenant, "task-1") == sample_task()

    def test_changing_task_of_query_page_does_not_change_stored_task(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),))
        (returned,) = store.query_tasks(self.tenant, TaskQuery()).items
        returned.assignee = "intruder"
        assert store.get_task(self.tenant, "task-1") == sample_task()
        assert store.query_tasks(self.tenant, TaskQuery()).items == (sample_task(),)

    def test_writing_task_v1_for_existing_id_conflicts(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(title="Duplicate"),))
        assert store.get_task(self.tenant, "task-1") == sample_task()

    def test_writing_new_task_at_v2_conflicts(self, store: Store) -> None:
        v2, _ = commands.add_comment(sample_task(), "hello", by="ana", at=T0 + MINUTE)
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(v2,))
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")

    def test_skipping_a_task_version_conflicts(self, store: Store) -> None:
        v1 = sample_task()
        v2, _ = commands.add_comment(v1, "one", by="ana", at=T0 + MINUTE)
        v3, _ = commands.add_comment(v2, "two", by="ana", at=T0 + 2 * MINUTE)
        self.commit(store, tasks=(v1,))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(v3,))
        assert store.get_task(self.tenant, "task-1") == v1

    def test_stale_task_write_conflicts(self, store: Store) -> None:
        v1 = sample_task()
        self.commit(store, tasks=(v1,))
        winner, _ = commands.add_comment(v1, "first", by="ana", at=T0 + MINUTE)
        loser, _ = commands.update_task(v1, by="bo", at=T0 + MINUTE, title="Second writer")
        self.commit(store, tasks=(winner,))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(loser,))
        assert store.get_task(self.tenant, "task-1") == winner

    def test_rewriting_current_task_version_conflicts(self, store: Store) -> None:
        v1 = sample_task()
        v2, _ = commands.add_comment(v1, "one", by="ana", at=T0 + MINUTE)
        self.commit(store, tasks=(v1,))
        self.commit(store, tasks=(v2,))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(v2,))

    def test_consecutive_task_versions_in_one_commit_are_written(self, store: Store) -> None:
        v1 = sample_task()
        v2, _ = commands.add_comment(v1, "one", by="ana", at=T0 + MINUTE)
        self.commit(store, tasks=(v1, v2))
        assert store.get_task(self.tenant, "task-1") == v2

    def test_same_task_v1_twice_in_one_commit_conflicts(self, store: Store) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(), sample_task(title="Twin")))
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")


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
        assert self.query_ids(store, query) == SORTED_LIVE_IDS[sort][::-1]
        assert store.query_tasks(self.tenant, query) == query.apply(tasks.values())

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


# -- outbox -----------------------------------------------------------------------------


class EventOutboxContract(_StoreFactory):
    """``EventOutbox``: positions, order, paging."""

    def test_store_satisfies_event_outbox_protocol(self, store: Store) -> None:
        assert isinstance(store, EventOutbox)

    def test_outbox_of_new_tenant_is_empty(self, store: Store) -> None:
        assert store.read_events(self.tenant) == []

    def test_first_event_has_position_1(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1),))
        assert [e.position for e in store.read_events(self.tenant)] == [1]

    def test_positions_are_contiguous_across_commits(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1), _flow_saved(2)))
        self.commit(store, events=(_flow_saved(3),))
        self.commit(store, events=(_flow_saved(4), _flow_saved(5), _flow_saved(6)))
        assert [e.position for e in store.read_events(self.tenant)] == [1, 2, 3, 4, 5, 6]

    def test_events_are_in_commit_order(self, store: Store) -> None:
        # Instants deliberately out of order: the outbox keeps commit order.
        first = (_flow_saved(5), _flow_saved(1))
        second = (_flow_saved(3), _flow_saved(9), _flow_saved(2))
        self.commit(store, events=first)
        self.commit(store, events=second)
        assert [e.event for e in store.read_events(self.tenant)] == [*first, *second]

    def test_committed_events_read_back_equal(self, store: Store) -> None:
        # One event of every shape the commands emit, plus a flow edit with relocations.
        events: list[Event] = [
            FlowSaved(flow_id="support", version=2, relocated=(("old", "new"),), at=T0, by="ana")
        ]
        events += [event for _task, task_events in sample_task_history() for event in task_events]
        self.commit(store, events=tuple(events))
        stored = [e.event for e in self.all_events(store)]
        assert stored == events
        assert [type(e) for e in stored] == [type(e) for e in events]

    def test_events_of_a_task_commit_are_appended(self, store: Store) -> None:
        task, events = commands.create_task(
            flow=sample_flow(), task_id="task-1", title="Hello", by="ana", at=T0
        )
        self.commit(store, tasks=(task,), events=tuple(events))
        assert [e.event for e in store.read_events(self.tenant)] == events

    def test_read_after_skips_earlier_positions(self, store: Store) -> None:
        events = tuple(_flow_saved(n) for n in range(1, 6))
        self.commit(store, events=events)
        got = store.read_events(self.tenant, after=2)
        assert [e.position for e in got] == [3, 4, 5]
        assert [e.event for e in got] == list(events[2:])

    def test_read_limit_caps_the_batch(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 6)))
        got = store.read_events(self.tenant, after=1, limit=2)
        assert [e.position for e in got] == [2, 3]

    def test_read_after_last_position_is_empty(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 4)))
        assert store.read_events(self.tenant, after=3) == []
        assert store.read_events(self.tenant, after=50) == []

    def test_default_limit_is_100(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 131)))
        got = store.read_events(self.tenant)
        assert [e.position for e in got] == list(range(1, 101))

    def test_paging_with_after_reads_every_event_once(self, store: Store) -> None:
        events = tuple(_flow_saved(n) for n in range(1, 12))
        self.commit(store, events=events[:4])
        self.commit(store, events=events[4:])
        seen: list[StoredEvent] = []
        after = 0
        while batch := store.read_events(self.tenant, after=after, limit=3):
            seen.extend(batch)
            assert batch[-1].position > after, "read_events(after=n) returned position <= n"
            after = batch[-1].position
        assert [e.position for e in seen] == list(range(1, 12))
        assert [e.event for e in seen] == list(events)

    def test_read_is_repeatable(self, store: Store) -> None:
        self.commit(store, events=tuple(_flow_saved(n) for n in range(1, 4)))
        assert store.read_events(self.tenant) == store.read_events(self.tenant)

    def test_changing_returned_event_does_not_change_stored_event(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1),))
        (stored,) = store.read_events(self.tenant)
        object.__setattr__(stored.event, "by", "intruder")
        assert store.read_events(self.tenant)[0].event == _flow_saved(1)

    def test_changing_committed_event_does_not_change_stored_event(self, store: Store) -> None:
        event = _flow_saved(1)
        self.commit(store, events=(event,))
        object.__setattr__(event, "by", "intruder")
        assert store.read_events(self.tenant)[0].event == _flow_saved(1)

    @pytest.mark.parametrize("after", [-1, -10, "1", 1.5, None])
    def test_invalid_after_raises_validation_error(self, store: Store, after: Any) -> None:
        with pytest.raises(ValidationError) as info:
            store.read_events(self.tenant, after=after)
        assert info.value.field == "after"

    @pytest.mark.parametrize("limit", [0, -1, "10", 2.5, None])
    def test_invalid_limit_raises_validation_error(self, store: Store, limit: Any) -> None:
        with pytest.raises(ValidationError) as info:
            store.read_events(self.tenant, limit=limit)
        assert info.value.field == "limit"


# -- commits ----------------------------------------------------------------------------


class ChangeWriterContract(_StoreFactory):
    """``commit``: all or nothing."""

    def test_store_satisfies_change_writer_protocol(self, store: Store) -> None:
        assert isinstance(store, ChangeWriter)

    def test_store_satisfies_store_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)

    def test_commit_writes_flows_tasks_and_events_together(self, store: Store) -> None:
        flow = sample_flow()
        task, events = commands.create_task(
            flow=flow, task_id="task-1", title="Hello", by="ana", at=T0
        )
        self.commit(store, flows=(flow,), tasks=(task,), events=tuple(events))
        assert store.get_flow(self.tenant, flow.id) == flow
        assert store.get_task(self.tenant, task.id) == task
        assert [e.event for e in store.read_events(self.tenant)] == events

    def test_empty_commit_is_a_no_op(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow(),), events=(_flow_saved(1),))
        store.commit(self.tenant, ChangeSet())
        assert store.list_flows(self.tenant) == [sample_flow()]
        assert [e.position for e in store.read_events(self.tenant)] == [1]

    def test_empty_commit_to_new_tenant_writes_nothing(self, store: Store) -> None:
        store.commit(self.tenant, ChangeSet())
        assert store.list_flows(self.tenant) == []
        assert store.query_tasks(self.tenant, TaskQuery(deleted=None)).total == 0
        assert store.read_events(self.tenant) == []

    def test_events_only_commit_appends_events(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1), _flow_saved(2)))
        assert [e.event for e in store.read_events(self.tenant)] == [
            _flow_saved(1), _flow_saved(2)
        ]

    def test_conflicting_task_aborts_new_task_of_same_commit(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(task_id="old"),))
        good = sample_task(task_id="new")
        stale = sample_task(task_id="old", title="Duplicate")
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(good, stale))
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "new")

    def test_conflicting_task_listed_first_aborts_later_task(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(task_id="old"),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(task_id="old"), sample_task(task_id="new")))
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "new")

    def test_conflicting_task_aborts_task_update_of_same_commit(self, store: Store) -> None:
        a1, b1 = sample_task(task_id="a"), sample_task(task_id="b")
        self.commit(store, tasks=(a1, b1))
        a2, _ = commands.add_comment(a1, "hi", by="ana", at=T0 + MINUTE)
        b3, _ = commands.add_comment(
            commands.add_comment(b1, "one", by="ana", at=T0 + MINUTE)[0],
            "two", by="ana", at=T0 + 2 * MINUTE,
        )
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(a2, b3))
        assert store.get_task(self.tenant, "a") == a1
        assert store.get_task(self.tenant, "b") == b1

    def test_conflicting_task_aborts_flow_of_same_commit(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(),), tasks=(sample_task(),))
        assert store.list_flows(self.tenant) == []

    def test_conflicting_flow_aborts_tasks_of_same_commit(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow(),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(),), tasks=(sample_task(),))
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")

    def test_conflicting_flow_aborts_other_flow_of_same_commit(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow("b"),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow("a"), sample_flow("b")))
        assert [f.id for f in store.list_flows(self.tenant)] == ["b"]

    def test_failed_commit_appends_no_events(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),), events=(_flow_saved(1),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), events=(_flow_saved(2), _flow_saved(3)))
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_failed_commit_leaves_no_gap_in_positions(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),), events=(_flow_saved(1),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), events=(_flow_saved(2),))
        self.commit(store, events=(_flow_saved(3),))
        got = store.read_events(self.tenant)
        assert [(e.position, e.event) for e in got] == [(1, _flow_saved(1)), (2, _flow_saved(3))]

    def test_store_accepts_writes_after_a_conflict(self, store: Store) -> None:
        v1 = sample_task()
        self.commit(store, tasks=(v1,))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(v1,))
        v2, _ = commands.add_comment(v1, "hi", by="ana", at=T0 + MINUTE)
        self.commit(store, tasks=(v2,))
        assert store.get_task(self.tenant, "task-1") == v2

    def test_conflict_error_is_a_cxflow_error(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),))
        with pytest.raises(CxflowError):
            self.commit(store, tasks=(sample_task(),))


# -- tenants ----------------------------------------------------------------------------


def _tenant_calls() -> list[tuple[str, Callable[[Store, Any], object]]]:
    return [
        ("get_flow", lambda s, t: s.get_flow(t, "support")),
        ("get_flow_version", lambda s, t: s.get_flow(t, "support", 1)),
        ("list_flows", lambda s, t: s.list_flows(t)),
        ("list_flow_versions", lambda s, t: s.list_flow_versions(t, "support")),
        ("get_task", lambda s, t: s.get_task(t, "task-1")),
        ("query_tasks", lambda s, t: s.query_tasks(t, TaskQuery())),
        ("read_events", lambda s, t: s.read_events(t)),
        ("commit", lambda s, t: s.commit(t, ChangeSet(tasks=(sample_task(task_id="x"),)))),
        ("commit_empty", lambda s, t: s.commit(t, ChangeSet())),
    ]


TENANT_CALLS = _tenant_calls()


class TenantIsolationContract(_StoreFactory):
    """Every method requires a tenant; tenants never see each other's records."""

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    @pytest.mark.parametrize(
        "call", [c[1] for c in TENANT_CALLS], ids=[c[0] for c in TENANT_CALLS]
    )
    def test_method_without_valid_tenant_raises_validation_error(
        self, store: Store, call: Callable[[Store, Any], object], bad_tenant: object
    ) -> None:
        # Seed records that a missing tenant check might reach instead of failing.
        flow = sample_flow()
        self.commit(store, flows=(flow,), tasks=(sample_task(flow),), events=(_flow_saved(1),))
        with pytest.raises(ValidationError) as info:
            call(store, bad_tenant)
        assert info.value.field == "tenant"

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_commit_rejected_for_bad_tenant_leaves_no_records(
        self, store: Store, bad_tenant: object
    ) -> None:
        changes = ChangeSet(
            flows=(sample_flow(),), tasks=(sample_task(),), events=(_flow_saved(1),)
        )
        with pytest.raises(ValidationError):
            store.commit(bad_tenant, changes)  # type: ignore[arg-type]
        for tenant in (self.tenant, str(bad_tenant), str(bad_tenant).strip()):
            if tenant.strip():
                assert store.list_flows(tenant) == []
                assert store.query_tasks(tenant, TaskQuery(deleted=None)).total == 0
                assert store.read_events(tenant) == []

    def test_flow_of_other_tenant_is_not_found(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.get_flow(self.tenant, "support")
        with pytest.raises(NotFound):
            store.get_flow(self.tenant, "support", 1)

    def test_flow_versions_of_other_tenant_are_not_found(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.list_flow_versions(self.tenant, "support")

    def test_list_flows_leaves_out_other_tenant(self, store: Store) -> None:
        self.commit(store, flows=(sample_flow("mine"),))
        self.commit(store, flows=(sample_flow("theirs"),), tenant=self.other_tenant)
        assert [f.id for f in store.list_flows(self.tenant)] == ["mine"]
        assert [f.id for f in store.list_flows(self.other_tenant)] == ["theirs"]

    def test_task_of_other_tenant_is_not_found(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")

    def test_query_returns_no_task_of_other_tenant(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(task_id="mine"),))
        deleted, _ = commands.delete_task(sample_task(task_id="gone"), by="x", at=T0 + MINUTE)
        self.commit(
            store,
            tasks=(sample_task(task_id="theirs"), sample_task(task_id="gone"), deleted),
            tenant=self.other_tenant,
        )
        page = store.query_tasks(self.tenant, TaskQuery(deleted=None))
        assert [t.id for t in page.items] == ["mine"]
        assert page.total == 1

    def test_outbox_is_per_tenant(self, store: Store) -> None:
        self.commit(store, events=(_flow_saved(1), _flow_saved(2)), tenant=self.other_tenant)
        self.commit(store, events=(_flow_saved(3),))
        self.commit(store, events=(_flow_saved(4),), tenant=self.other_tenant)
        mine = store.read_events(self.tenant)
        theirs = store.read_events(self.other_tenant)
        assert [(e.position, e.event) for e in mine] == [(1, _flow_saved(3))]
        assert [(e.position, e.event) for e in theirs] == [
            (1, _flow_saved(1)), (2, _flow_saved(2)), (3, _flow_saved(4))
        ]

    def test_same_task_id_in_two_tenants_is_independent(self, store: Store) -> None:
        mine = sample_task(title="Mine")
        theirs = sample_task(title="Theirs")
        self.commit(store, tasks=(mine,))
        self.commit(store, tasks=(theirs,), tenant=self.other_tenant)
        mine_v2, _ = commands.add_comment(mine, "hi", by="ana", at=T0 + MINUTE)
        self.commit(store, tasks=(mine_v2,))
        assert store.get_task(self.tenant, "task-1") == mine_v2
        assert store.get_task(self.other_tenant, "task-1") == theirs

    def test_same_flow_id_in_two_tenants_is_independent(self, store: Store) -> None:
        mine = sample_flow(name="Mine")
        theirs = sample_flow(name="Theirs")
        self.commit(store, flows=(mine, mine.revise(name="Mine v2")))
        self.commit(store, flows=(theirs,), tenant=self.other_tenant)
        assert store.get_flow(self.tenant, "support").version == 2
        assert store.get_flow(self.other_tenant, "support") == theirs
        assert store.list_flow_versions(self.other_tenant, "support") == [theirs]

    def test_conflict_in_one_tenant_leaves_other_tenant_untouched(self, store: Store) -> None:
        self.commit(store, tasks=(sample_task(),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), events=(_flow_saved(1),))
        self.commit(store, tasks=(sample_task(),), tenant=self.other_tenant)
        assert store.read_events(self.other_tenant) == []


# -- everything -------------------------------------------------------------------------


class StoreContract(
    FlowStoreContract,
    TaskStoreContract,
    TaskQueryContract,
    EventOutboxContract,
    ChangeWriterContract,
    TenantIsolationContract,
):
    """The whole contract of ``Store``: subclass it and
    implement ``make_store``."""
