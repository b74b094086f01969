"""The storage adapter contract suite (requires pytest).

Base classes of small, one-behaviour tests that every adapter of
``cxflow.storage.protocols`` passes by subclassing, as the in-memory
reference adapter does::

    from cxflow.testing import FullStoreContract

    class TestMyStore(FullStoreContract):
        def make_store(self):
            return MyStore(...)

The classes are deliberately not named ``Test*``, so pytest collects them only
through your subclass. Each tier has its own class; ``StoreContract``
combines those of ``Store`` (what ``cxflow.TaskService`` needs),
``FullStoreContract`` every tier of ``FullStore``, and ``EveryTierContract``
adds ``AssignmentStore``:

- ``FlowStoreContract``: flow versions, latest/specific reads, ordering;
- ``TaskStoreContract``: task snapshots, copies, version rules;
- ``TaskQueryContract``: every filter, sort order and page of ``TaskQuery``,
  checked against hand-written expectations and ``TaskQuery.apply``;
- ``EventOutboxContract``: positions, order, ``after``/``limit``;
- ``ChangeWriterContract``: atomicity and optimistic concurrency of ``commit``;
- ``TenantIsolationContract``: tenant required on every method, tenants
  invisible to each other;
- ``ConversationStoreContract``: conversations and customers: snapshots,
  copies, version rules, atomicity, ``ConversationQuery`` / ``CustomerQuery``
  semantics (room and customer tags included), tenants;
- ``TimerStoreContract``: timers: snapshots, version rules, and
  ``claim_timers`` (order, limit, leases, fencing, validation, tenants);
- ``FullStoreContract``: all of the above, plus atomicity of commits that
  mix every kind of record;
- ``AssignmentStoreContract``: agents, routing records and the routing
  version: snapshots, copies, version rules, finished routings, the routing
  version fence, atomicity with tasks and events, tenants (needs the tiers of
  ``Store`` too);
- ``EveryTierContract``: ``FullStoreContract`` and ``AssignmentStoreContract``,
  plus commits that mix assignment records with every other kind.

Every class seeds its data through ``ChangeWriter.commit``, so the adapter
must implement that tier as well as the one under test.

What a subclass provides:

- ``make_store`` (required): a **new, empty** store on every call (a fresh
  database, schema or key prefix per test);
- ``dispose_store`` (optional): release what ``make_store`` took (close
  connections, drop the schema);
- ``tenant`` / ``other_tenant`` (optional): the two tenant ids the tests use.

All data is built with the pure commands of ``cxflow.tasks.commands`` and
the models' own transitions at fixed instants: no clock reads, no sleeps.
"""

from __future__ import annotations

import abc
import random
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import attrs
import pytest

from cxflow.assignment.model import Agent, Presence, Routing
from cxflow.conversations.model import (
    AuthorKind,
    Conversation,
    ConversationState,
    Customer,
)
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.errors import ConflictError, CxflowError, NotFound, ValidationError
from cxflow.events import Envelope, Event, FlowSaved
from cxflow.flows.model import Flow, Transition
from cxflow.storage.protocols import (
    AssignmentStore,
    ChangeSet,
    ChangeWriter,
    ConversationStore,
    EventOutbox,
    FlowStore,
    FullStore,
    Store,
    StoredEvent,
    TaskStore,
    TimerStore,
)
from cxflow.tasks import commands
from cxflow.tasks.model import Priority, Task
from cxflow.tasks.query import Page, TaskQuery, TaskSort
from cxflow.testing.fixtures import (
    T0,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_task_history,
    sample_timer,
)
from cxflow.timers.model import Timer, TimerState

__all__ = [
    "AssignmentStoreContract",
    "ChangeWriterContract",
    "ConversationStoreContract",
    "EventOutboxContract",
    "EveryTierContract",
    "FlowStoreContract",
    "FullStoreContract",
    "StoreContract",
    "TaskQueryContract",
    "TaskStoreContract",
    "TenantIsolationContract",
    "TimerStoreContract",
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


def _refuse_assignment(record: object, name: str, value: object) -> None:
    """Frozen records are immutable: a store may share them with its callers
    (changing one with ``object.__setattr__`` is outside the contract)."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(record, name, value)


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
        conversations: tuple[Conversation, ...] = (),
        customers: tuple[Customer, ...] = (),
        timers: tuple[Timer, ...] = (),
        agents: tuple[Agent, ...] = (),
        routings: tuple[Routing, ...] = (),
        finished_routings: tuple[str, ...] = (),
        routing_version: int | None = None,
        events: tuple[Event, ...] = (),
        tenant: str | None = None,
    ) -> None:
        """Commit one change set for ``tenant`` (default ``tenant``)."""
        store.commit(
            self.tenant if tenant is None else tenant,
            ChangeSet(
                flows=flows,
                tasks=tasks,
                conversations=conversations,
                customers=customers,
                timers=timers,
                agents=agents,
                routings=routings,
                finished_routings=finished_routings,
                routing_version=routing_version,
                events=events,
            ),
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
        _refuse_assignment(returned, "name", "Changed in place")
        assert store.get_flow(self.tenant, "support") == flow

    def test_changing_committed_flow_does_not_change_stored_flow(self, store: Store) -> None:
        flow = sample_flow()
        self.commit(store, flows=(flow,))
        _refuse_assignment(flow, "name", "Changed in place")
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

    def test_an_events_envelope_reads_back_equal(self, store: Store) -> None:
        envelope = Envelope(
            id="c0ffee.1", subject_kind="flow", subject_id="support", subject_version=2,
            causation_id="c0ffee", correlation_id="request-7",
        )
        event = attrs.evolve(_flow_saved(1), envelope=envelope)
        self.commit(store, events=(event, _flow_saved(2)))
        first, second = (e.event for e in store.read_events(self.tenant))
        assert first.envelope == envelope
        assert second.envelope is None  # committed around the engine: none given

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
        _refuse_assignment(stored.event, "by", "intruder")
        assert store.read_events(self.tenant)[0].event == _flow_saved(1)

    def test_changing_committed_event_does_not_change_stored_event(self, store: Store) -> None:
        event = _flow_saved(1)
        self.commit(store, events=(event,))
        _refuse_assignment(event, "by", "intruder")
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


# -- conversations and customers --------------------------------------------------------


def _next(record: Any, **changes: Any) -> Any:
    """The next version of a conversation or customer with ``changes``."""
    return attrs.evolve(record, version=record.version + 1, **changes)


ODD_TAGS: list[str] = [
    " spaced ",
    "\u00fcn\u00ef\u00a9\u00f8d\u00e9 \U0001f680",
    "x" * 200,
    "\ud55c\uad6d\uc5b4 \ud0dc\uadf8",
    '"quoted"',
    "%",
    "_",
    "it's",
]
"""Tags are names (any non-blank text up to 200 characters without control
characters): each must be stored and matched exactly (no wildcards, no
trimming, no case folding)."""


def _conversation_dataset() -> tuple[list[Conversation], dict[str, Conversation]]:
    """Conversation snapshots to commit in order, and the latest snapshot by id.

    id   customer  channel   state   assignee  room tags         opened
    c01  cu-a      web       open    ana       vip, billing      +0h
    c02  cu-b      telegram  open    bo        billing           +1h
    c03  cu-a      web       closed  ana       -                 +2h
    C11  cu-c      email     open    -         -                 +3h
    c04  cu-c      email     open    -         vip               +3h
    c05  cu-b      web       open    ana       refund, vip       +3h
    c06  cu-a      telegram  closed  bo        billing, vip      +5h
    c07  cu-c      web       open    -         VIP               +6h
    c08  cu-b      web       open    cy (v2)   spam (v2; v1 vip) +7h
    c09  cu-a      web       closed  - (v2)    billing           +8h
    c10  cu-c      email     open    ana       billing, billing  -1h

    Times are hours after ``T0``. c08 was assigned to ana and tagged vip at v1;
    c09 was open at v1. Ordered by (opened, id) in code-point order:
    c10, c01, c02, c03, C11, c04, c05, c06, c07, c08, c09.
    """
    closed, open_ = ConversationState.CLOSED, ConversationState.OPEN

    def new(
        conv_id: str, customer: str, channel: str, state: ConversationState,
        assignee: str | None, tags: tuple[str, ...], opened: int,
    ) -> Conversation:
        return sample_conversation(
            conv_id, at=T0 + opened * HOUR, customer_id=customer, channel=channel,
            state=state, assignee=assignee, room_tags=tags,
            closed_at=T0 + (opened + 1) * HOUR if state is closed else None,
        )

    snapshots = [
        new("c01", "cu-a", "web", open_, "ana", ("vip", "billing"), 0),
        new("c02", "cu-b", "telegram", open_, "bo", ("billing",), 1),
        new("c03", "cu-a", "web", closed, "ana", (), 2),
        new("C11", "cu-c", "email", open_, None, (), 3),
        new("c04", "cu-c", "email", open_, None, ("vip",), 3),
        new("c05", "cu-b", "web", open_, "ana", ("refund", "vip"), 3),
        new("c06", "cu-a", "telegram", closed, "bo", ("billing", "vip"), 5),
        new("c07", "cu-c", "web", open_, None, ("VIP",), 6),
        new("c08", "cu-b", "web", open_, "ana", ("vip",), 7),
        new("c09", "cu-a", "web", open_, "bo", ("billing",), 8),
        new("c10", "cu-c", "email", open_, "ana", ("billing", "billing"), -1),
    ]
    latest = {conv.id: conv for conv in snapshots}
    for changed in (
        _next(latest["c08"], assignee="cy", room_tags=("spam",), updated_at=T0 + 9 * HOUR),
        _next(latest["c09"], assignee=None, state=closed, closed_at=T0 + 9 * HOUR,
              close_reason="solved", updated_at=T0 + 9 * HOUR),
    ):
        snapshots.append(changed)
        latest[changed.id] = changed
    return snapshots, latest


ALL_CONVERSATION_IDS = ["c10", "c01", "c02", "c03", "C11", "c04", "c05", "c06", "c07", "c08",
                        "c09"]

_OPEN, _CLOSED = ConversationState.OPEN, ConversationState.CLOSED

# (test id, query, expected ids in order)
CONVERSATION_CASES: list[tuple[str, ConversationQuery, list[str]]] = [
    ("all", ConversationQuery(), ALL_CONVERSATION_IDS),
    ("customer", ConversationQuery(customer_id="cu-a"), ["c01", "c03", "c06", "c09"]),
    ("unknown-customer", ConversationQuery(customer_id="cu-z"), []),
    ("open", ConversationQuery(state=_OPEN),
     ["c10", "c01", "c02", "C11", "c04", "c05", "c07", "c08"]),
    ("closed-of-latest-snapshot", ConversationQuery(state=_CLOSED), ["c03", "c06", "c09"]),
    ("channel", ConversationQuery(channel="telegram"), ["c02", "c06"]),
    ("assignee", ConversationQuery(assignee="ana"), ["c10", "c01", "c03", "c05"]),
    ("assignee-of-latest-snapshot", ConversationQuery(assignee="cy"), ["c08"]),
    ("room-tag", ConversationQuery(room_tag="vip"), ["c01", "c04", "c05", "c06"]),
    ("room-tag-is-case-sensitive", ConversationQuery(room_tag="VIP"), ["c07"]),
    ("room-tag-listed-twice", ConversationQuery(room_tag="billing"),
     ["c10", "c01", "c02", "c06", "c09"]),
    ("room-tag-of-latest-snapshot", ConversationQuery(room_tag="spam"), ["c08"]),
    ("unknown-room-tag", ConversationQuery(room_tag="nope"), []),
    ("open-with-room-tag", ConversationQuery(state=_OPEN, room_tag="vip"),
     ["c01", "c04", "c05"]),
    ("customer-channel-state", ConversationQuery(customer_id="cu-a", channel="web",
                                                 state=_CLOSED), ["c03", "c09"]),
    ("assignee-with-room-tag", ConversationQuery(assignee="ana", room_tag="billing"),
     ["c10", "c01"]),
    ("limit", ConversationQuery(limit=3), ["c10", "c01", "c02"]),
    ("limit-splits-opened-tie", ConversationQuery(limit=5), ["c10", "c01", "c02", "c03", "C11"]),
    ("limit-with-room-tag", ConversationQuery(room_tag="vip", limit=2), ["c01", "c04"]),
    ("limit-one", ConversationQuery(state=_CLOSED, limit=1), ["c03"]),
]


def _customer_dataset() -> tuple[list[Customer], dict[str, Customer]]:
    """Customer snapshots to commit in order, and the latest snapshot by id.

    id    plan        tags
    cu-a  enterprise  vip, de
    cu-b  -           -
    cu-c  -           churn (v2; v1 vip)
    cu-d  -           VIP
    cu-e  basic       de, de
    Zed   -           new
    """
    snapshots = [
        sample_customer("cu-a", plan="enterprise", tags=("vip", "de")),
        sample_customer("cu-b"),
        sample_customer("cu-c", tags=("vip",)),
        sample_customer("cu-d", tags=("VIP",)),
        sample_customer("cu-e", plan="basic", tags=("de", "de")),
        sample_customer("Zed", tags=("new",)),
    ]
    latest = {customer.id: customer for customer in snapshots}
    changed = _next(latest["cu-c"], tags=("churn",))
    snapshots.append(changed)
    latest[changed.id] = changed
    return snapshots, latest


# Code-point order: "Zed" sorts before "cu-a".
CUSTOMER_CASES: list[tuple[str, CustomerQuery, list[str]]] = [
    ("all", CustomerQuery(), ["Zed", "cu-a", "cu-b", "cu-c", "cu-d", "cu-e"]),
    ("tag", CustomerQuery(tag="vip"), ["cu-a"]),
    ("tag-is-case-sensitive", CustomerQuery(tag="VIP"), ["cu-d"]),
    ("tag-listed-twice", CustomerQuery(tag="de"), ["cu-a", "cu-e"]),
    ("tag-of-latest-snapshot", CustomerQuery(tag="churn"), ["cu-c"]),
    ("unknown-tag", CustomerQuery(tag="nope"), []),
    ("limit", CustomerQuery(limit=2), ["Zed", "cu-a"]),
    ("limit-with-tag", CustomerQuery(tag="de", limit=1), ["cu-a"]),
]


def _conversation_tenant_calls() -> list[tuple[str, Callable[[FullStore, Any], object]]]:
    return [
        ("get_conversation", lambda s, t: s.get_conversation(t, "conv-1")),
        ("query_conversations", lambda s, t: s.query_conversations(t, ConversationQuery())),
        ("query_conversations_by_tag",
         lambda s, t: s.query_conversations(t, ConversationQuery(room_tag="vip"))),
        ("get_customer", lambda s, t: s.get_customer(t, "cust-1")),
        ("query_customers", lambda s, t: s.query_customers(t, CustomerQuery())),
        ("query_customers_by_tag", lambda s, t: s.query_customers(t, CustomerQuery(tag="vip"))),
        ("commit_conversation",
         lambda s, t: s.commit(t, ChangeSet(conversations=(sample_conversation("x"),)))),
        ("commit_customer", lambda s, t: s.commit(t, ChangeSet(customers=(sample_customer("x"),)))),
    ]


CONVERSATION_TENANT_CALLS = _conversation_tenant_calls()


class ConversationStoreContract(_StoreFactory):
    """``ConversationStore``: conversations and customers, their version rules,
    queries and tenants. ``make_store`` must return a store with this tier and
    ``ChangeWriter``."""

    # -- reads and copies ------------------------------------------------------------

    def test_store_satisfies_conversation_store_protocol(self, store: FullStore) -> None:
        assert isinstance(store, ConversationStore)

    def test_committed_conversation_reads_back_equal(self, store: FullStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        conv = sample_conversation(
            "conv-1",
            at=(T0 + timedelta(microseconds=123456)).astimezone(plus_two),
            plan="enterprise",
            priority=Priority.HIGH,
            assignee="ana",
            waiting=True,
            room_tags=("vip", "\u017c\u00f3\u0142\u0107 \U0001f69a"),
            last_speaker=AuthorKind.AGENT,
            last_customer_message_at=T0 + MINUTE,
            last_agent_reply_at=T0 + 2 * MINUTE,
            first_agent_reply_at=T0 + 2 * MINUTE,
            message_count=7,
            reopen_count=2,
        )
        self.commit(store, conversations=(conv,))
        assert store.get_conversation(self.tenant, "conv-1") == conv

    def test_committed_closed_conversation_reads_back_equal(self, store: FullStore) -> None:
        conv = sample_conversation(
            state=ConversationState.CLOSED, closed_at=T0 + HOUR, close_reason="auto",
            last_speaker=AuthorKind.CUSTOMER,
        )
        self.commit(store, conversations=(conv,))
        assert store.get_conversation(self.tenant, "conv-1") == conv

    def test_returned_conversation_datetimes_are_aware_utc(self, store: FullStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        conv = sample_conversation(
            at=T0.astimezone(plus_two), last_customer_message_at=T0.astimezone(plus_two),
            closed_at=T0.astimezone(plus_two), state=ConversationState.CLOSED,
        )
        self.commit(store, conversations=(conv,))
        got = store.get_conversation(self.tenant, "conv-1")
        for instant in (got.opened_at, got.updated_at, got.last_customer_message_at,
                        got.closed_at):
            assert instant is not None
            assert instant.utcoffset() == timedelta(0)

    def test_get_conversation_returns_latest_snapshot(self, store: FullStore) -> None:
        v1 = sample_conversation()
        v2 = _next(v1, room_tags=("vip",), message_count=1)
        self.commit(store, conversations=(v1,))
        self.commit(store, conversations=(v2,))
        assert store.get_conversation(self.tenant, "conv-1") == v2

    def test_get_unknown_conversation_raises_not_found(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation("other"),))
        with pytest.raises(NotFound) as info:
            store.get_conversation(self.tenant, "conv-1")
        assert info.value.kind == "conversation"
        assert info.value.id == "conv-1"

    def test_not_found_for_conversation_is_a_lookup_error(self, store: FullStore) -> None:
        with pytest.raises(LookupError):
            store.get_conversation(self.tenant, "conv-1")

    def test_changing_committed_conversation_does_not_change_stored(
        self, store: FullStore
    ) -> None:
        conv = sample_conversation(room_tags=("vip",))
        self.commit(store, conversations=(conv,))
        conv.assignee = "intruder"
        conv.room_tags = ("changed",)
        assert store.get_conversation(self.tenant, "conv-1") == sample_conversation(
            room_tags=("vip",)
        )

    def test_changing_returned_conversation_does_not_change_stored(
        self, store: FullStore
    ) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        returned = store.get_conversation(self.tenant, "conv-1")
        returned.assignee = "intruder"
        returned.version = 99
        assert store.get_conversation(self.tenant, "conv-1") == sample_conversation()

    def test_changing_queried_conversation_does_not_change_stored(
        self, store: FullStore
    ) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        (returned,) = store.query_conversations(self.tenant, ConversationQuery())
        returned.assignee = "intruder"
        assert store.query_conversations(self.tenant, ConversationQuery()) == [
            sample_conversation()
        ]

    def test_committed_customer_reads_back_equal(self, store: FullStore) -> None:
        customer = sample_customer(plan="enterprise", tags=("vip", "\u00df\u4e2d"))
        self.commit(store, customers=(customer,))
        assert store.get_customer(self.tenant, "cust-1") == customer

    def test_get_customer_returns_latest_snapshot(self, store: FullStore) -> None:
        v1 = sample_customer()
        v2 = _next(v1, plan="basic", tags=("vip",))
        self.commit(store, customers=(v1,))
        self.commit(store, customers=(v2,))
        assert store.get_customer(self.tenant, "cust-1") == v2

    def test_get_unknown_customer_raises_not_found(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer("other"),))
        with pytest.raises(NotFound) as info:
            store.get_customer(self.tenant, "cust-1")
        assert info.value.kind == "customer"
        assert info.value.id == "cust-1"

    def test_not_found_for_customer_is_a_lookup_error(self, store: FullStore) -> None:
        with pytest.raises(LookupError):
            store.get_customer(self.tenant, "cust-1")

    def test_changing_returned_customer_does_not_change_stored(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer(tags=("vip",)),))
        returned = store.get_customer(self.tenant, "cust-1")
        _refuse_assignment(returned, "tags", ("intruder",))
        (queried,) = store.query_customers(self.tenant, CustomerQuery())
        _refuse_assignment(queried, "plan", "intruder")
        assert store.get_customer(self.tenant, "cust-1") == sample_customer(tags=("vip",))

    def test_changing_committed_customer_does_not_change_stored(self, store: FullStore) -> None:
        customer = sample_customer(tags=("vip",))
        self.commit(store, customers=(customer,))
        _refuse_assignment(customer, "tags", ("intruder",))
        assert store.get_customer(self.tenant, "cust-1") == sample_customer(tags=("vip",))

    # -- version rules ---------------------------------------------------------------

    def test_writing_conversation_v1_for_existing_id_conflicts(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(sample_conversation(channel="email"),))
        assert store.get_conversation(self.tenant, "conv-1") == sample_conversation()

    def test_writing_new_conversation_at_v2_conflicts(self, store: FullStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(sample_conversation()),))
        with pytest.raises(NotFound):
            store.get_conversation(self.tenant, "conv-1")

    def test_skipping_a_conversation_version_conflicts(self, store: FullStore) -> None:
        v1 = sample_conversation()
        self.commit(store, conversations=(v1,))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(_next(v1), message_count=2),))
        assert store.get_conversation(self.tenant, "conv-1") == v1

    def test_stale_conversation_write_conflicts(self, store: FullStore) -> None:
        v1 = sample_conversation()
        self.commit(store, conversations=(v1,))
        winner = _next(v1, assignee="ana")
        self.commit(store, conversations=(winner,))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(v1, assignee="bo"),))
        assert store.get_conversation(self.tenant, "conv-1") == winner

    def test_stale_conversation_write_keeps_stored_room_tags(self, store: FullStore) -> None:
        v1 = sample_conversation(room_tags=("vip",))
        self.commit(store, conversations=(v1,))
        self.commit(store, conversations=(_next(v1, message_count=1),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(v1, room_tags=("spam",)),))
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag="spam")) == []
        assert [c.id for c in store.query_conversations(
            self.tenant, ConversationQuery(room_tag="vip")
        )] == ["conv-1"]

    def test_consecutive_conversation_versions_in_one_commit_are_written(
        self, store: FullStore
    ) -> None:
        v1 = sample_conversation(room_tags=("vip",))
        v2 = _next(v1, room_tags=("spam",))
        self.commit(store, conversations=(v1, v2))
        assert store.get_conversation(self.tenant, "conv-1") == v2
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag="vip")) == []

    def test_same_conversation_v1_twice_in_one_commit_conflicts(self, store: FullStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(sample_conversation(),
                                              sample_conversation(channel="email")))
        with pytest.raises(NotFound):
            store.get_conversation(self.tenant, "conv-1")

    def test_writing_customer_v1_for_existing_id_conflicts(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer(),))
        with pytest.raises(ConflictError):
            self.commit(store, customers=(sample_customer(plan="basic"),))
        assert store.get_customer(self.tenant, "cust-1") == sample_customer()

    def test_writing_new_customer_at_v2_conflicts(self, store: FullStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, customers=(sample_customer(version=2),))
        with pytest.raises(NotFound):
            store.get_customer(self.tenant, "cust-1")

    def test_skipping_a_customer_version_conflicts(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer(),))
        with pytest.raises(ConflictError):
            self.commit(store, customers=(sample_customer(version=3, tags=("vip",)),))
        assert store.get_customer(self.tenant, "cust-1") == sample_customer()

    def test_stale_customer_write_conflicts(self, store: FullStore) -> None:
        v1 = sample_customer()
        winner = _next(v1, tags=("vip",))
        self.commit(store, customers=(v1,))
        self.commit(store, customers=(winner,))
        with pytest.raises(ConflictError):
            self.commit(store, customers=(_next(v1, tags=("churn",)),))
        assert store.get_customer(self.tenant, "cust-1") == winner
        assert store.query_customers(self.tenant, CustomerQuery(tag="churn")) == []

    def test_consecutive_customer_versions_in_one_commit_are_written(
        self, store: FullStore
    ) -> None:
        v1 = sample_customer(tags=("vip",))
        v2 = _next(v1, tags=("churn",))
        self.commit(store, customers=(v1, v2))
        assert store.get_customer(self.tenant, "cust-1") == v2

    def test_same_customer_v1_twice_in_one_commit_conflicts(self, store: FullStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, customers=(sample_customer(), sample_customer(plan="basic")))
        with pytest.raises(NotFound):
            store.get_customer(self.tenant, "cust-1")

    # -- atomicity -------------------------------------------------------------------

    def test_commit_writes_conversation_customer_and_events_together(
        self, store: FullStore
    ) -> None:
        conv, customer = sample_conversation(), sample_customer()
        self.commit(store, conversations=(conv,), customers=(customer,),
                    events=(_flow_saved(1),))
        assert store.get_conversation(self.tenant, conv.id) == conv
        assert store.get_customer(self.tenant, customer.id) == customer
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_conflicting_conversation_aborts_other_conversation(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation("old"),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(sample_conversation("new"),
                                              sample_conversation("old")))
        with pytest.raises(NotFound):
            store.get_conversation(self.tenant, "new")

    def test_conflicting_conversation_aborts_customer_and_events(
        self, store: FullStore
    ) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(sample_conversation(),),
                        customers=(sample_customer(),), events=(_flow_saved(1),))
        with pytest.raises(NotFound):
            store.get_customer(self.tenant, "cust-1")
        assert store.read_events(self.tenant) == []

    def test_conflicting_customer_aborts_conversation_update(self, store: FullStore) -> None:
        conv = sample_conversation(room_tags=("vip",))
        self.commit(store, conversations=(conv,), customers=(sample_customer(),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(_next(conv, room_tags=("spam",)),),
                        customers=(sample_customer(plan="basic"),))
        assert store.get_conversation(self.tenant, "conv-1") == conv
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag="spam")) == []

    def test_conflicting_customer_aborts_other_customer_tags(self, store: FullStore) -> None:
        a, b = sample_customer("a", tags=("vip",)), sample_customer("b")
        self.commit(store, customers=(a, b))
        with pytest.raises(ConflictError):
            self.commit(store, customers=(_next(a, tags=("churn",)), sample_customer("b")))
        assert store.query_customers(self.tenant, CustomerQuery(tag="churn")) == []
        assert store.query_customers(self.tenant, CustomerQuery(tag="vip")) == [a]

    # -- conversation queries --------------------------------------------------------

    @pytest.fixture
    def conversations(self, store: FullStore) -> dict[str, Conversation]:
        """Commit the conversation dataset (one snapshot per commit); return the
        latest snapshot of every conversation by id."""
        snapshots, latest = _conversation_dataset()
        for snapshot in snapshots:
            self.commit(store, conversations=(snapshot,))
        return latest

    def conversation_ids(self, store: FullStore, query: ConversationQuery) -> list[str]:
        """The ids of the conversations ``query`` returns, in order."""
        return [c.id for c in store.query_conversations(self.tenant, query)]

    @pytest.mark.parametrize(
        ("query", "expected"),
        [case[1:] for case in CONVERSATION_CASES],
        ids=[case[0] for case in CONVERSATION_CASES],
    )
    def test_conversation_query_returns_expected_ids_in_order(
        self, store: FullStore, conversations: dict[str, Conversation],
        query: ConversationQuery, expected: list[str],
    ) -> None:
        assert self.conversation_ids(store, query) == expected

    @pytest.mark.parametrize(
        "query", [case[1] for case in CONVERSATION_CASES],
        ids=[case[0] for case in CONVERSATION_CASES],
    )
    def test_conversation_query_matches_reference_semantics(
        self, store: FullStore, conversations: dict[str, Conversation], query: ConversationQuery
    ) -> None:
        got = store.query_conversations(self.tenant, query)
        assert got == query.apply(conversations.values())

    def test_conversation_query_returns_full_latest_snapshots(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        got = store.query_conversations(self.tenant, ConversationQuery())
        assert {c.id: c for c in got} == conversations

    def test_conversation_query_of_empty_store_is_empty(self, store: FullStore) -> None:
        assert store.query_conversations(self.tenant, ConversationQuery()) == []
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag="vip")) == []

    def test_conversation_query_sees_changes_after_commit(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        changed = _next(conversations["c04"], room_tags=("spam", "refund"), assignee="cy")
        self.commit(store, conversations=(changed,))
        assert self.conversation_ids(store, ConversationQuery(room_tag="vip")) == [
            "c01", "c05", "c06"
        ]
        assert self.conversation_ids(store, ConversationQuery(room_tag="refund")) == [
            "c04", "c05"
        ]
        assert self.conversation_ids(store, ConversationQuery(assignee="cy")) == ["c04", "c08"]

    def test_conversation_with_removed_room_tags_matches_no_tag(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        self.commit(store, conversations=(_next(conversations["c01"], room_tags=()),))
        assert "c01" not in self.conversation_ids(store, ConversationQuery(room_tag="vip"))
        assert "c01" not in self.conversation_ids(store, ConversationQuery(room_tag="billing"))

    @pytest.mark.parametrize("tag", ODD_TAGS, ids=[f"tag{i}" for i in range(len(ODD_TAGS))])
    def test_odd_room_tag_is_stored_and_matched_exactly(
        self, store: FullStore, tag: str
    ) -> None:
        conv = sample_conversation("odd", room_tags=(tag, "plain"))
        self.commit(store, conversations=(conv, sample_conversation("other",
                                                                   room_tags=("plain",))))
        assert store.get_conversation(self.tenant, "odd") == conv
        assert store.query_conversations(self.tenant, ConversationQuery(room_tag=tag)) == [conv]
        for near in {tag + "x", tag[:-1], tag.upper() if tag.upper() != tag else "X" + tag}:
            if near not in conv.room_tags:
                assert store.query_conversations(
                    self.tenant, ConversationQuery(room_tag=near)
                ) == [], near

    def test_many_random_conversation_queries_match_reference_semantics(
        self, store: FullStore, conversations: dict[str, Conversation]
    ) -> None:
        rng = random.Random(20240102)

        def pick(options: list[Any]) -> Any:
            return options[rng.randrange(len(options))]

        for _ in range(150):
            query = ConversationQuery(
                customer_id=pick([None, None, "cu-a", "cu-b", "cu-c", "cu-z"]),
                state=pick([None, None, *ConversationState]),
                channel=pick([None, None, "web", "email", "telegram"]),
                assignee=pick([None, None, "ana", "bo", "cy"]),
                room_tag=pick([None, None, "vip", "VIP", "billing", "spam", "refund"]),
                limit=pick([1, 2, 5, 100]),
            )
            got = store.query_conversations(self.tenant, query)
            assert got == query.apply(conversations.values()), query

    # -- customer queries ------------------------------------------------------------

    @pytest.fixture
    def customers(self, store: FullStore) -> dict[str, Customer]:
        """Commit the customer dataset (one snapshot per commit); return the latest
        snapshot of every customer by id."""
        snapshots, latest = _customer_dataset()
        for snapshot in snapshots:
            self.commit(store, customers=(snapshot,))
        return latest

    @pytest.mark.parametrize(
        ("query", "expected"),
        [case[1:] for case in CUSTOMER_CASES],
        ids=[case[0] for case in CUSTOMER_CASES],
    )
    def test_customer_query_returns_expected_ids_in_order(
        self, store: FullStore, customers: dict[str, Customer],
        query: CustomerQuery, expected: list[str],
    ) -> None:
        assert [c.id for c in store.query_customers(self.tenant, query)] == expected

    @pytest.mark.parametrize(
        "query", [case[1] for case in CUSTOMER_CASES], ids=[case[0] for case in CUSTOMER_CASES]
    )
    def test_customer_query_matches_reference_semantics(
        self, store: FullStore, customers: dict[str, Customer], query: CustomerQuery
    ) -> None:
        assert store.query_customers(self.tenant, query) == query.apply(customers.values())

    def test_customer_query_returns_full_latest_snapshots(
        self, store: FullStore, customers: dict[str, Customer]
    ) -> None:
        got = store.query_customers(self.tenant, CustomerQuery())
        assert {c.id: c for c in got} == customers

    def test_customer_query_of_empty_store_is_empty(self, store: FullStore) -> None:
        assert store.query_customers(self.tenant, CustomerQuery()) == []
        assert store.query_customers(self.tenant, CustomerQuery(tag="vip")) == []

    def test_customer_query_sees_tag_changes_after_commit(
        self, store: FullStore, customers: dict[str, Customer]
    ) -> None:
        self.commit(store, customers=(_next(customers["cu-a"], tags=("churn",)),))
        assert [c.id for c in store.query_customers(self.tenant, CustomerQuery(tag="vip"))] == []
        assert [c.id for c in store.query_customers(
            self.tenant, CustomerQuery(tag="churn")
        )] == ["cu-a", "cu-c"]

    @pytest.mark.parametrize("tag", ODD_TAGS, ids=[f"tag{i}" for i in range(len(ODD_TAGS))])
    def test_odd_customer_tag_is_stored_and_matched_exactly(
        self, store: FullStore, tag: str
    ) -> None:
        customer = sample_customer("odd", tags=(tag,))
        self.commit(store, customers=(customer, sample_customer("other", tags=("plain",))))
        assert store.get_customer(self.tenant, "odd") == customer
        assert store.query_customers(self.tenant, CustomerQuery(tag=tag)) == [customer]
        assert store.query_customers(self.tenant, CustomerQuery(tag=tag + "x")) == []

    # -- tenants ---------------------------------------------------------------------

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    @pytest.mark.parametrize(
        "call", [c[1] for c in CONVERSATION_TENANT_CALLS],
        ids=[c[0] for c in CONVERSATION_TENANT_CALLS],
    )
    def test_conversation_method_without_valid_tenant_raises_validation_error(
        self, store: FullStore, call: Callable[[FullStore, Any], object], bad_tenant: object
    ) -> None:
        # Seed records that a missing tenant check might reach instead of failing.
        self.commit(store, conversations=(sample_conversation(room_tags=("vip",)),),
                    customers=(sample_customer(tags=("vip",)),))
        with pytest.raises(ValidationError) as info:
            call(store, bad_tenant)
        assert info.value.field == "tenant"

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_commit_rejected_for_bad_tenant_leaves_no_conversation(
        self, store: FullStore, bad_tenant: object
    ) -> None:
        changes = ChangeSet(conversations=(sample_conversation(),), customers=(sample_customer(),))
        with pytest.raises(ValidationError):
            store.commit(bad_tenant, changes)  # type: ignore[arg-type]
        for tenant in (self.tenant, str(bad_tenant), str(bad_tenant).strip()):
            if tenant.strip():
                assert store.query_conversations(tenant, ConversationQuery()) == []
                assert store.query_customers(tenant, CustomerQuery()) == []

    def test_conversation_of_other_tenant_is_not_found(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.get_conversation(self.tenant, "conv-1")

    def test_customer_of_other_tenant_is_not_found(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.get_customer(self.tenant, "cust-1")

    def test_conversation_query_leaves_out_other_tenant(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation("mine", room_tags=("vip",)),))
        self.commit(store, conversations=(sample_conversation("theirs", room_tags=("vip",)),),
                    tenant=self.other_tenant)
        for query in (ConversationQuery(), ConversationQuery(room_tag="vip")):
            assert self.conversation_ids(store, query) == ["mine"]

    def test_room_tags_of_same_id_in_other_tenant_do_not_match(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation(room_tags=("mine",)),))
        self.commit(store, conversations=(sample_conversation(room_tags=("theirs",)),),
                    tenant=self.other_tenant)
        assert self.conversation_ids(store, ConversationQuery(room_tag="theirs")) == []
        assert self.conversation_ids(store, ConversationQuery(room_tag="mine")) == ["conv-1"]

    def test_customer_query_leaves_out_other_tenant(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer("mine", tags=("vip",)),))
        self.commit(store, customers=(sample_customer("theirs", tags=("vip",)),
                                      sample_customer("mine", tags=("churn",))),
                    tenant=self.other_tenant)
        for query in (CustomerQuery(), CustomerQuery(tag="vip")):
            assert [c.id for c in store.query_customers(self.tenant, query)] == ["mine"]
        assert store.query_customers(self.tenant, CustomerQuery(tag="churn")) == []

    def test_same_conversation_id_in_two_tenants_is_independent(self, store: FullStore) -> None:
        mine = sample_conversation(channel="web")
        theirs = sample_conversation(channel="email")
        self.commit(store, conversations=(mine,))
        self.commit(store, conversations=(theirs,), tenant=self.other_tenant)
        mine_v2 = _next(mine, assignee="ana")
        self.commit(store, conversations=(mine_v2,))
        assert store.get_conversation(self.tenant, "conv-1") == mine_v2
        assert store.get_conversation(self.other_tenant, "conv-1") == theirs

    def test_same_customer_id_in_two_tenants_is_independent(self, store: FullStore) -> None:
        mine, theirs = sample_customer(tags=("a",)), sample_customer(tags=("b",))
        self.commit(store, customers=(mine,))
        self.commit(store, customers=(theirs,), tenant=self.other_tenant)
        mine_v2 = _next(mine, tags=("c",))
        self.commit(store, customers=(mine_v2,))
        assert store.get_customer(self.tenant, "cust-1") == mine_v2
        assert store.get_customer(self.other_tenant, "cust-1") == theirs
        assert store.query_customers(self.other_tenant, CustomerQuery(tag="b")) == [theirs]


# -- timers -----------------------------------------------------------------------------

LEASE = timedelta(seconds=30)
_MICRO = timedelta(microseconds=1)

BAD_WORKERS: list[object] = [None, "", "   ", 5]
BAD_LEASES: list[object] = [timedelta(0), -LEASE, 30, None]
BAD_CLAIM_LIMITS: list[object] = [0, -1, 1001, True, "5", 2.5, None]
BAD_INSTANTS: list[object] = [datetime(2024, 1, 1, 9, 0), "2024-01-01T09:00:00+00:00", None]


def _timer_tenant_calls() -> list[tuple[str, Callable[[FullStore, Any], object]]]:
    return [
        ("get_timer", lambda s, t: s.get_timer(t, "timer-1")),
        ("claim_timers", lambda s, t: s.claim_timers(t, T0 + HOUR, worker="w", lease=LEASE)),
        ("commit_timer", lambda s, t: s.commit(t, ChangeSet(timers=(sample_timer("x"),)))),
    ]


TIMER_TENANT_CALLS = _timer_tenant_calls()


class TimerStoreContract(_StoreFactory):
    """``TimerStore``: timers, their version rules, and claims with leases and
    fencing. ``make_store`` must return a store with this tier and
    ``ChangeWriter``."""

    def claim(
        self, store: FullStore, at: datetime, worker: str = "w1", *,
        lease: timedelta = LEASE, limit: int = 100, tenant: str | None = None,
    ) -> list[Timer]:
        """``claim_timers`` for ``tenant`` (default ``tenant``)."""
        return store.claim_timers(
            self.tenant if tenant is None else tenant, at, worker=worker, lease=lease,
            limit=limit,
        )

    def claim_ids(self, store: FullStore, at: datetime, worker: str = "w1", **kw: Any) -> list[str]:
        """The ids ``claim`` returns, in order."""
        return [timer.id for timer in self.claim(store, at, worker, **kw)]

    # -- reads and copies ------------------------------------------------------------

    def test_store_satisfies_timer_store_protocol(self, store: FullStore) -> None:
        assert isinstance(store, TimerStore)

    def test_committed_timer_reads_back_equal(self, store: FullStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        timer = sample_timer(
            kind="sla.breach", subject_id="conv-9",
            deadline=(T0 + timedelta(microseconds=654321)).astimezone(plus_two),
            cycle=3, lease_owner="worker \u00e9", lease_until=T0 + HOUR,
        )
        self.commit(store, timers=(timer,))
        assert store.get_timer(self.tenant, "timer-1") == timer

    def test_committed_fired_timer_reads_back_equal(self, store: FullStore) -> None:
        timer = sample_timer(state=TimerState.FIRED, fired_at=T0 + MINUTE, cycle=2)
        self.commit(store, timers=(timer,))
        assert store.get_timer(self.tenant, "timer-1") == timer

    def test_returned_timer_datetimes_are_aware_utc(self, store: FullStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        timer = sample_timer(deadline=T0.astimezone(plus_two),
                             lease_until=T0.astimezone(plus_two), lease_owner="w",
                             fired_at=T0.astimezone(plus_two))
        self.commit(store, timers=(timer,))
        got = store.get_timer(self.tenant, "timer-1")
        for instant in (got.deadline, got.lease_until, got.fired_at):
            assert instant is not None
            assert instant.utcoffset() == timedelta(0)

    def test_get_timer_returns_latest_snapshot(self, store: FullStore) -> None:
        v1 = sample_timer()
        v2 = v1.rescheduled(T0 + HOUR)
        self.commit(store, timers=(v1,))
        self.commit(store, timers=(v2,))
        assert store.get_timer(self.tenant, "timer-1") == v2

    def test_get_unknown_timer_raises_not_found(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer("other"),))
        with pytest.raises(NotFound) as info:
            store.get_timer(self.tenant, "timer-1")
        assert info.value.kind == "timer"
        assert info.value.id == "timer-1"

    def test_not_found_for_timer_is_a_lookup_error(self, store: FullStore) -> None:
        with pytest.raises(LookupError):
            store.get_timer(self.tenant, "timer-1")

    def test_changing_returned_timer_does_not_change_stored(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        returned = store.get_timer(self.tenant, "timer-1")
        _refuse_assignment(returned, "deadline", T0 + HOUR)
        (claimed,) = self.claim(store, T0)
        _refuse_assignment(claimed, "lease_owner", "intruder")
        assert store.get_timer(self.tenant, "timer-1") == sample_timer().claimed("w1", T0, LEASE)

    def test_changing_committed_timer_does_not_change_stored(self, store: FullStore) -> None:
        timer = sample_timer()
        self.commit(store, timers=(timer,))
        _refuse_assignment(timer, "deadline", T0 + HOUR)
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    # -- version rules ---------------------------------------------------------------

    def test_writing_timer_v1_for_existing_id_conflicts(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer(deadline=T0 + HOUR),))
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    def test_writing_new_timer_at_v2_conflicts(self, store: FullStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer().rescheduled(T0 + HOUR),))
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")

    def test_skipping_a_timer_version_conflicts(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1,))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(v1.rescheduled(T0 + HOUR).rescheduled(T0 + 2 * HOUR),))
        assert store.get_timer(self.tenant, "timer-1") == v1

    def test_stale_timer_write_conflicts(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1,))
        winner = v1.cancelled()
        self.commit(store, timers=(winner,))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(v1.rescheduled(T0 + HOUR),))
        assert store.get_timer(self.tenant, "timer-1") == winner

    def test_consecutive_timer_versions_in_one_commit_are_written(
        self, store: FullStore
    ) -> None:
        v1 = sample_timer()
        v2 = v1.rescheduled(T0 + HOUR)
        self.commit(store, timers=(v1, v2))
        assert store.get_timer(self.tenant, "timer-1") == v2
        assert self.claim(store, T0 + HOUR - _MICRO) == []

    def test_same_timer_v1_twice_in_one_commit_conflicts(self, store: FullStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer(), sample_timer(deadline=T0 + HOUR)))
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")

    def test_conflicting_timer_aborts_other_timer_and_events(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer("old"),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer("new"), sample_timer("old")),
                        events=(_flow_saved(1),))
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "new")
        assert self.claim(store, T0 + HOUR) == [sample_timer("old").claimed("w1", T0 + HOUR,
                                                                            LEASE)]
        assert store.read_events(self.tenant) == []

    def test_conflicting_timer_aborts_reschedule_of_other_timer(self, store: FullStore) -> None:
        a, b = sample_timer("a"), sample_timer("b")
        self.commit(store, timers=(a, b))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(a.rescheduled(T0 + HOUR), sample_timer("b")))
        assert store.get_timer(self.tenant, "a") == a
        assert self.claim_ids(store, T0) == ["a", "b"]

    # -- claims ----------------------------------------------------------------------

    def test_claim_of_empty_store_returns_nothing(self, store: FullStore) -> None:
        assert self.claim(store, T0) == []

    def test_claim_returns_due_timer_as_claimed(self, store: FullStore) -> None:
        timer = sample_timer()
        self.commit(store, timers=(timer,))
        assert self.claim(store, T0 + MINUTE, "w1") == [timer.claimed("w1", T0 + MINUTE, LEASE)]

    def test_claim_writes_the_next_version_with_the_lease(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        self.claim(store, T0 + MINUTE, "w1")
        stored = store.get_timer(self.tenant, "timer-1")
        assert stored.version == 2
        assert (stored.lease_owner, stored.lease_until) == ("w1", T0 + MINUTE + LEASE)
        assert stored.state is TimerState.PENDING
        assert stored == sample_timer().claimed("w1", T0 + MINUTE, LEASE)

    def test_claim_returns_lease_end_in_utc_for_offset_instant(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        at = (T0 + MINUTE).astimezone(timezone(timedelta(hours=-5)))
        (claimed,) = self.claim(store, at)
        assert claimed.lease_until == T0 + MINUTE + LEASE
        assert claimed.lease_until is not None
        assert claimed.lease_until.utcoffset() == timedelta(0)
        assert store.get_timer(self.tenant, "timer-1") == claimed

    def test_claim_orders_by_deadline(self, store: FullStore) -> None:
        deadlines = {"a": 5, "b": 1, "c": 4, "d": 2, "e": 3}
        self.commit(store, timers=tuple(
            sample_timer(i, deadline=T0 + m * MINUTE) for i, m in deadlines.items()
        ))
        assert self.claim_ids(store, T0 + HOUR) == ["b", "d", "e", "c", "a"]

    def test_claim_breaks_deadline_ties_by_id(self, store: FullStore) -> None:
        ids = ["t-b", "T-z", "t-a", "t-c"]
        self.commit(store, timers=tuple(sample_timer(i) for i in ids))
        # Code-point order: upper case sorts before lower case.
        assert self.claim_ids(store, T0) == ["T-z", "t-a", "t-b", "t-c"]

    def test_claim_takes_at_most_limit_earliest_first(self, store: FullStore) -> None:
        self.commit(store, timers=tuple(
            sample_timer(f"t{n}", deadline=T0 + (9 - n) * MINUTE) for n in range(10)
        ))
        assert self.claim_ids(store, T0 + HOUR, limit=3) == ["t9", "t8", "t7"]

    def test_claim_leaves_timers_beyond_limit_untouched(self, store: FullStore) -> None:
        timers = tuple(sample_timer(f"t{n}", deadline=T0 + n * MINUTE) for n in range(4))
        self.commit(store, timers=timers)
        self.claim(store, T0 + HOUR, limit=2)
        assert store.get_timer(self.tenant, "t2") == timers[2]
        assert store.get_timer(self.tenant, "t3") == timers[3]

    def test_next_claim_takes_the_remaining_timers(self, store: FullStore) -> None:
        self.commit(store, timers=tuple(
            sample_timer(f"t{n}", deadline=T0 + n * MINUTE) for n in range(5)
        ))
        assert self.claim_ids(store, T0 + HOUR, "w1", limit=2) == ["t0", "t1"]
        assert self.claim_ids(store, T0 + HOUR, "w2", limit=2) == ["t2", "t3"]
        assert self.claim_ids(store, T0 + HOUR, "w3", limit=2) == ["t4"]
        assert self.claim_ids(store, T0 + HOUR, "w4", limit=2) == []

    def test_claim_limit_counts_only_claimable_timers(self, store: FullStore) -> None:
        cancelled, fired = sample_timer("a"), sample_timer("b", deadline=T0 + MINUTE)
        leased = sample_timer("c", deadline=T0 + 2 * MINUTE)
        self.commit(store, timers=(cancelled, fired, leased,
                                   sample_timer("d", deadline=T0 + 3 * MINUTE)))
        self.commit(store, timers=(cancelled.cancelled(), fired.fired(T0 + MINUTE)))
        self.claim(store, T0 + 2 * MINUTE, "w0", lease=HOUR)
        assert self.claim_ids(store, T0 + 10 * MINUTE, limit=1) == ["d"]

    def test_claim_accepts_the_largest_limit(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        assert self.claim_ids(store, T0, limit=1000) == ["timer-1"]

    def test_default_claim_limit_is_100(self, store: FullStore) -> None:
        self.commit(store, timers=tuple(sample_timer(f"t{n:03}") for n in range(101)))
        got = store.claim_timers(self.tenant, T0, worker="w1", lease=LEASE)
        assert len(got) == 100
        assert self.claim_ids(store, T0, "w2") == ["t100"]

    def test_claim_skips_timer_not_yet_due(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer("now"), sample_timer("later",
                                                                     deadline=T0 + HOUR)))
        assert self.claim_ids(store, T0 + HOUR - _MICRO) == ["now"]
        assert store.get_timer(self.tenant, "later") == sample_timer("later",
                                                                   deadline=T0 + HOUR)

    def test_timer_is_due_exactly_at_its_deadline(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(deadline=T0 + _MICRO),))
        assert self.claim(store, T0) == []
        assert self.claim_ids(store, T0 + _MICRO) == ["timer-1"]

    def test_claim_with_nothing_due_changes_nothing(self, store: FullStore) -> None:
        timers = (sample_timer("a", deadline=T0 + HOUR), sample_timer("b").cancelled())
        self.commit(store, timers=(timers[0], sample_timer("b")))
        self.commit(store, timers=(timers[1],))
        assert self.claim(store, T0) == []
        assert [store.get_timer(self.tenant, t.id) for t in timers] == list(timers)

    def test_claim_skips_cancelled_timer(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1, v1.cancelled()))
        assert self.claim(store, T0 + HOUR) == []

    def test_claim_skips_fired_timer(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1, v1.fired(T0)))
        assert self.claim(store, T0 + HOUR) == []

    def test_leased_timer_is_not_claimed_before_the_lease_ends(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        self.claim(store, T0, "w1")
        assert self.claim(store, T0 + LEASE - _MICRO, "w2") == []
        assert self.claim(store, T0 + LEASE - _MICRO, "w1") == []
        assert store.get_timer(self.tenant, "timer-1").lease_owner == "w1"

    def test_lease_ends_exactly_at_lease_until(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (first,) = self.claim(store, T0, "w1")
        assert self.claim(store, T0 + LEASE, "w2") == [first.claimed("w2", T0 + LEASE, LEASE)]

    def test_expired_lease_is_claimed_by_the_next_worker(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        self.claim(store, T0, "w1")
        (second,) = self.claim(store, T0 + 2 * LEASE, "w2")
        assert (second.version, second.lease_owner) == (3, "w2")
        assert second.lease_until == T0 + 3 * LEASE
        assert store.get_timer(self.tenant, "timer-1") == second

    def test_claim_takes_only_the_expired_lease_among_leased_timers(
        self, store: FullStore
    ) -> None:
        self.commit(store, timers=(sample_timer("a"), sample_timer("b")))
        self.claim(store, T0, "w1", limit=1, lease=MINUTE)
        self.claim(store, T0, "w2", limit=1, lease=HOUR)
        assert self.claim_ids(store, T0 + 2 * MINUTE, "w3") == ["a"]

    def test_fire_by_the_lease_holder_commits(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0, "w1")
        fired = claimed.fired(T0 + MINUTE)
        self.commit(store, timers=(fired,), events=(_flow_saved(1),))
        assert store.get_timer(self.tenant, "timer-1") == fired
        assert fired.version == 3
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_fire_by_an_earlier_holder_after_reclaim_conflicts(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        self.claim(store, T0 + LEASE, "w2")
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE + MINUTE),))

    def test_fenced_fire_writes_nothing(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        (current,) = self.claim(store, T0 + LEASE, "w2")
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE),), events=(_flow_saved(1),))
        assert store.get_timer(self.tenant, "timer-1") == current
        assert store.read_events(self.tenant) == []

    def test_new_holder_fires_after_the_fenced_one_failed(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        (current,) = self.claim(store, T0 + LEASE, "w2")
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE),))
        self.commit(store, timers=(current.fired(T0 + LEASE),), events=(_flow_saved(1),))
        assert store.get_timer(self.tenant, "timer-1").state is TimerState.FIRED
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_earlier_holder_cannot_fire_after_the_new_holder_fired(
        self, store: FullStore
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        (stale,) = self.claim(store, T0, "w1")
        (current,) = self.claim(store, T0 + LEASE, "w2")
        self.commit(store, timers=(current.fired(T0 + LEASE),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(stale.fired(T0 + LEASE),))

    def test_fired_timer_is_never_claimed_again(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0)
        self.commit(store, timers=(claimed.fired(T0),))
        assert self.claim(store, T0 + 10 * LEASE, "w2") == []

    def test_cancelled_claimed_timer_is_never_claimed_again(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0)
        self.commit(store, timers=(claimed.cancelled(),))
        assert self.claim(store, T0 + 10 * LEASE, "w2") == []

    def test_rescheduled_fired_timer_is_claimed_in_its_next_cycle(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0)
        fired = claimed.fired(T0)
        again = fired.rescheduled(T0 + HOUR)
        self.commit(store, timers=(fired,))
        self.commit(store, timers=(again,))
        assert self.claim(store, T0 + HOUR - _MICRO) == []
        (next_cycle,) = self.claim(store, T0 + HOUR, "w2")
        assert (next_cycle.cycle, next_cycle.version, next_cycle.lease_owner) == (2, 5, "w2")

    def test_rescheduling_a_claimed_timer_drops_its_lease(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        (claimed,) = self.claim(store, T0, lease=HOUR)
        self.commit(store, timers=(claimed.rescheduled(T0 + MINUTE),))
        assert self.claim_ids(store, T0 + MINUTE, "w2") == ["timer-1"]

    def test_claim_sees_a_deadline_moved_earlier(self, store: FullStore) -> None:
        v1 = sample_timer(deadline=T0 + HOUR)
        self.commit(store, timers=(v1,))
        self.commit(store, timers=(v1.rescheduled(T0),))
        assert self.claim_ids(store, T0) == ["timer-1"]

    def test_claim_sees_a_deadline_moved_later(self, store: FullStore) -> None:
        v1 = sample_timer()
        self.commit(store, timers=(v1,))
        self.commit(store, timers=(v1.rescheduled(T0 + HOUR),))
        assert self.claim(store, T0) == []

    # -- claim validation --------------------------------------------------------------

    @pytest.mark.parametrize("worker", BAD_WORKERS, ids=["none", "empty", "blank", "int"])
    def test_claim_without_valid_worker_raises_validation_error(
        self, store: FullStore, worker: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            store.claim_timers(self.tenant, T0, worker=worker, lease=LEASE)
        assert info.value.field == "worker"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize("lease", BAD_LEASES, ids=["zero", "negative", "int", "none"])
    def test_claim_without_positive_lease_raises_validation_error(
        self, store: FullStore, lease: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            store.claim_timers(self.tenant, T0, worker="w1", lease=lease)
        assert info.value.field == "lease"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize(
        "limit", BAD_CLAIM_LIMITS, ids=["zero", "negative", "1001", "bool", "str", "float", "none"]
    )
    def test_claim_with_invalid_limit_raises_validation_error(
        self, store: FullStore, limit: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            store.claim_timers(self.tenant, T0, worker="w1", lease=LEASE, limit=limit)
        assert info.value.field == "limit"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize("at", BAD_INSTANTS, ids=["naive", "str", "none"])
    def test_claim_at_naive_or_non_datetime_raises_validation_error(
        self, store: FullStore, at: Any
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError):
            store.claim_timers(self.tenant, at, worker="w1", lease=LEASE)
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    # -- tenants ---------------------------------------------------------------------

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    @pytest.mark.parametrize(
        "call", [c[1] for c in TIMER_TENANT_CALLS], ids=[c[0] for c in TIMER_TENANT_CALLS]
    )
    def test_timer_method_without_valid_tenant_raises_validation_error(
        self, store: FullStore, call: Callable[[FullStore, Any], object], bad_tenant: object
    ) -> None:
        # Seed a due timer that a missing tenant check might claim instead of failing.
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ValidationError) as info:
            call(store, bad_tenant)
        assert info.value.field == "tenant"
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_commit_rejected_for_bad_tenant_leaves_no_timer(
        self, store: FullStore, bad_tenant: object
    ) -> None:
        with pytest.raises(ValidationError):
            store.commit(bad_tenant, ChangeSet(timers=(sample_timer(),)))  # type: ignore[arg-type]
        for tenant in (self.tenant, str(bad_tenant), str(bad_tenant).strip()):
            if tenant.strip():
                with pytest.raises(NotFound):
                    store.get_timer(tenant, "timer-1")
                assert self.claim(store, T0 + HOUR, tenant=tenant) == []

    def test_timer_of_other_tenant_is_not_found(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")

    def test_claim_leaves_other_tenant_timers_alone(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer("mine"),))
        self.commit(store, timers=(sample_timer("theirs"),), tenant=self.other_tenant)
        assert self.claim_ids(store, T0 + HOUR) == ["mine"]
        assert store.get_timer(self.other_tenant, "theirs") == sample_timer("theirs")

    def test_claim_in_tenant_without_timers_returns_nothing(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),), tenant=self.other_tenant)
        assert self.claim(store, T0 + HOUR) == []

    def test_same_timer_id_in_two_tenants_is_independent(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        self.commit(store, timers=(sample_timer(deadline=T0 + HOUR),), tenant=self.other_tenant)
        (mine,) = self.claim(store, T0)
        assert store.get_timer(self.other_tenant, "timer-1") == sample_timer(deadline=T0 + HOUR)
        (theirs,) = self.claim(store, T0 + HOUR, "w2", tenant=self.other_tenant)
        assert store.get_timer(self.tenant, "timer-1") == mine
        assert theirs.version == 2

    def test_timer_conflict_in_one_tenant_leaves_other_tenant_untouched(
        self, store: FullStore
    ) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer(),), events=(_flow_saved(1),))
        self.commit(store, timers=(sample_timer(),), tenant=self.other_tenant)
        assert store.read_events(self.other_tenant) == []


# -- assignment -------------------------------------------------------------------------


class _AssignmentTestStore(Store, AssignmentStore, Protocol):
    """What ``AssignmentStoreContract`` runs on: ``Store`` and ``AssignmentStore``."""


class _EveryTierStore(FullStore, AssignmentStore, Protocol):
    """What ``EveryTierContract`` runs on: ``FullStore`` and ``AssignmentStore``."""


def _agent(agent_id: str = "ana", **fields: Any) -> Agent:
    """An agent (version 1 unless told); ``fields`` set any other attribute."""
    return Agent(id=agent_id, **fields)


def _routing(
    conversation_id: str = "conv-1", *, channel: str = "web", arrived_at: datetime = T0,
    **fields: Any,
) -> Routing:
    """A waiting routing record (version 1 unless told) that arrived at ``arrived_at``;
    ``fields`` set any other attribute."""
    return Routing(
        conversation_id=conversation_id, channel=channel, arrived_at=arrived_at, **fields
    )


def _assigned(routing: Routing, agent: str = "ana", at: datetime = T0 + MINUTE) -> Routing:
    """The next version of ``routing``, assigned to ``agent`` at ``at``."""
    assigned: Routing = _next(routing, agent=agent, assigned_at=at)
    return assigned


ORDER_IDS = ["b", "A", "a-2", "\u00e9", "B", "a", "Z", "10", "9"]
"""Ids listed in code-point order (``sorted``), whatever the database collation."""


def _assignment_tenant_calls() -> list[tuple[str, Callable[[_AssignmentTestStore, Any], object]]]:
    return [
        ("get_agent", lambda s, t: s.get_agent(t, "ana")),
        ("list_agents", lambda s, t: s.list_agents(t)),
        ("get_routing", lambda s, t: s.get_routing(t, "conv-1")),
        ("list_routings", lambda s, t: s.list_routings(t)),
        ("routing_version", lambda s, t: s.routing_version(t)),
        ("commit_agent", lambda s, t: s.commit(t, ChangeSet(agents=(_agent("x"),)))),
        ("commit_routing", lambda s, t: s.commit(t, ChangeSet(routings=(_routing("x"),)))),
        ("commit_finished", lambda s, t: s.commit(t, ChangeSet(finished_routings=("conv-1",)))),
        ("commit_routing_version", lambda s, t: s.commit(t, ChangeSet(routing_version=2))),
    ]


ASSIGNMENT_TENANT_CALLS = _assignment_tenant_calls()


class AssignmentStoreContract(_StoreFactory):
    """``AssignmentStore``: agents, routing records (finished ones deleted) and the
    tenant's routing version, with their version rules, copies, atomicity and
    tenants. ``make_store`` must return a store with this tier and the tiers of
    ``Store`` (tasks and events check atomicity)."""

    def assert_assignment_unchanged(
        self, store: _AssignmentTestStore, agents: list[Agent], routings: list[Routing],
        version: int, tenant: str | None = None,
    ) -> None:
        """The assignment records of ``tenant`` (default ``tenant``) are exactly these."""
        tenant = self.tenant if tenant is None else tenant
        assert store.list_agents(tenant) == agents
        assert store.list_routings(tenant) == routings
        assert store.routing_version(tenant) == version

    # -- reads and copies ------------------------------------------------------------

    def test_store_satisfies_assignment_store_protocol(self, store: _AssignmentTestStore) -> None:
        assert isinstance(store, AssignmentStore)

    def test_committed_agent_reads_back_equal(self, store: _AssignmentTestStore) -> None:
        plus_two = timezone(timedelta(hours=2))
        agent = _agent(
            "agent \u00e9", presence=Presence.AWAY, capacity=7,
            channel_capacity={"web": 3, "voice": 0},
            skills={"billing": 5, "\u017c\u00f3\u0142\u0107": 1}, groups=("tier-2", "emea"),
            idle_since=(T0 + timedelta(microseconds=654321)).astimezone(plus_two),
            turn=42,
        )
        self.commit(store, agents=(agent,))
        got = store.get_agent(self.tenant, "agent \u00e9")
        assert got == agent
        assert got.groups == ("tier-2", "emea")

    def test_committed_default_agent_reads_back_equal(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=(_agent(),))
        assert store.get_agent(self.tenant, "ana") == _agent()

    def test_committed_assigned_routing_reads_back_equal(
        self, store: _AssignmentTestStore
    ) -> None:
        plus_two = timezone(timedelta(hours=2))
        routing = _routing(
            "conv \u00e9", channel="voice",
            arrived_at=(T0 + timedelta(microseconds=123456)).astimezone(plus_two),
            plan="enterprise", vip=True, priority=Priority.HIGH, skills=("billing", "de"),
            group="tier-2", agent="ana", assigned_at=(T0 + MINUTE).astimezone(plus_two),
            overflow=True, answered=True, declined=("bo", "cy"),
        )
        self.commit(store, routings=(routing,))
        got = store.get_routing(self.tenant, "conv \u00e9")
        assert got == routing
        assert (got.skills, got.declined) == (("billing", "de"), ("bo", "cy"))

    def test_committed_waiting_routing_reads_back_equal(
        self, store: _AssignmentTestStore
    ) -> None:
        routing = _routing(priority=Priority.LOW, declined=("bo",))
        self.commit(store, routings=(routing,))
        assert store.get_routing(self.tenant, "conv-1") == routing

    def test_returned_assignment_datetimes_are_aware_utc(
        self, store: _AssignmentTestStore
    ) -> None:
        plus_two = timezone(timedelta(hours=2))
        self.commit(
            store, agents=(_agent(idle_since=T0.astimezone(plus_two)),),
            routings=(_routing(arrived_at=T0.astimezone(plus_two), agent="ana",
                               assigned_at=T0.astimezone(plus_two)),),
        )
        agent = store.get_agent(self.tenant, "ana")
        routing = store.get_routing(self.tenant, "conv-1")
        for instant in (agent.idle_since, routing.arrived_at, routing.assigned_at):
            assert instant is not None
            assert instant.utcoffset() == timedelta(0)

    def test_get_agent_returns_latest_snapshot(self, store: _AssignmentTestStore) -> None:
        v1 = _agent()
        v2 = _next(v1, presence=Presence.ONLINE, idle_since=T0)
        self.commit(store, agents=(v1,))
        self.commit(store, agents=(v2,))
        assert store.get_agent(self.tenant, "ana") == v2

    def test_get_routing_returns_latest_snapshot(self, store: _AssignmentTestStore) -> None:
        v1 = _routing()
        self.commit(store, routings=(v1,))
        self.commit(store, routings=(_assigned(v1),))
        assert store.get_routing(self.tenant, "conv-1") == _assigned(v1)

    def test_get_unknown_agent_raises_not_found(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=(_agent("bo"),))
        with pytest.raises(NotFound) as info:
            store.get_agent(self.tenant, "ana")
        assert (info.value.kind, info.value.id) == ("agent", "ana")

    def test_get_unknown_routing_raises_not_found(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routings=(_routing("conv-2"),))
        with pytest.raises(NotFound) as info:
            store.get_routing(self.tenant, "conv-1")
        assert (info.value.kind, info.value.id) == ("routing", "conv-1")

    def test_not_found_for_agent_and_routing_is_a_lookup_error(
        self, store: _AssignmentTestStore
    ) -> None:
        with pytest.raises(LookupError):
            store.get_agent(self.tenant, "ana")
        with pytest.raises(LookupError):
            store.get_routing(self.tenant, "conv-1")

    def test_assignment_of_new_tenant_is_empty(self, store: _AssignmentTestStore) -> None:
        self.assert_assignment_unchanged(store, [], [], 0)

    def test_list_agents_is_ordered_by_id(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=tuple(_agent(agent_id) for agent_id in ORDER_IDS))
        assert [a.id for a in store.list_agents(self.tenant)] == sorted(ORDER_IDS)

    def test_list_agents_returns_latest_snapshots(self, store: _AssignmentTestStore) -> None:
        ana, bo = _agent("ana"), _agent("bo")
        self.commit(store, agents=(bo, ana))
        bo_v2 = _next(bo, capacity=3)
        self.commit(store, agents=(bo_v2,))
        assert store.list_agents(self.tenant) == [ana, bo_v2]

    def test_list_routings_is_ordered_by_conversation_id(
        self, store: _AssignmentTestStore
    ) -> None:
        # Arrival order is the reverse of id order: the list is by id, not arrival.
        routings = [_routing(cid, arrived_at=T0 - i * MINUTE)
                    for i, cid in enumerate(sorted(ORDER_IDS))]
        self.commit(store, routings=tuple(reversed(routings)))
        assert [r.conversation_id for r in store.list_routings(self.tenant)] == sorted(ORDER_IDS)

    def test_list_routings_holds_waiting_and_assigned_records(
        self, store: _AssignmentTestStore
    ) -> None:
        waiting, assigned = _routing("conv-1"), _routing("conv-2")
        self.commit(store, routings=(waiting, assigned))
        self.commit(store, routings=(_assigned(assigned),))
        assert store.list_routings(self.tenant) == [waiting, _assigned(assigned)]

    def test_changing_returned_agent_does_not_change_stored(
        self, store: _AssignmentTestStore
    ) -> None:
        agent = _agent(skills={"billing": 3}, channel_capacity={"web": 2}, groups=("emea",))
        self.commit(store, agents=(agent,))
        got = store.get_agent(self.tenant, "ana")
        got.skills["billing"] = 1
        got.channel_capacity["voice"] = 5
        _refuse_assignment(got, "groups", ("apac",))
        (listed,) = store.list_agents(self.tenant)
        listed.skills.clear()
        assert store.get_agent(self.tenant, "ana") == agent
        assert store.list_agents(self.tenant) == [agent]

    def test_changing_committed_agent_does_not_change_stored(
        self, store: _AssignmentTestStore
    ) -> None:
        agent = _agent(skills={"billing": 3})
        self.commit(store, agents=(agent,))
        agent.skills["billing"] = 1
        assert store.get_agent(self.tenant, "ana") == _agent(skills={"billing": 3})

    def test_changing_returned_routing_does_not_change_stored(
        self, store: _AssignmentTestStore
    ) -> None:
        routing = _routing(declined=("bo",))
        self.commit(store, routings=(routing,))
        got = store.get_routing(self.tenant, "conv-1")
        _refuse_assignment(got, "declined", ("cy",))
        (listed,) = store.list_routings(self.tenant)
        _refuse_assignment(listed, "skills", ("x",))
        assert store.get_routing(self.tenant, "conv-1") == routing
        assert store.list_routings(self.tenant) == [routing]

    def test_changing_committed_routing_does_not_change_stored(
        self, store: _AssignmentTestStore
    ) -> None:
        routing = _routing()
        self.commit(store, routings=(routing,))
        _refuse_assignment(routing, "declined", ("cy",))
        assert store.get_routing(self.tenant, "conv-1") == _routing()

    # -- version rules ---------------------------------------------------------------

    def test_writing_agent_v1_for_existing_id_conflicts(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=(_agent(),))
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(capacity=5),))
        assert store.get_agent(self.tenant, "ana") == _agent()

    def test_writing_new_agent_at_v2_conflicts(self, store: _AssignmentTestStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(version=2),))
        with pytest.raises(NotFound):
            store.get_agent(self.tenant, "ana")

    def test_skipping_an_agent_version_conflicts(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=(_agent(),))
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(version=3),))
        assert store.get_agent(self.tenant, "ana") == _agent()

    def test_stale_agent_write_conflicts(self, store: _AssignmentTestStore) -> None:
        v1 = _agent()
        winner = _next(v1, presence=Presence.ONLINE)
        self.commit(store, agents=(v1,))
        self.commit(store, agents=(winner,))
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_next(v1, capacity=4),))
        assert store.get_agent(self.tenant, "ana") == winner

    def test_consecutive_agent_versions_in_one_commit_are_written(
        self, store: _AssignmentTestStore
    ) -> None:
        v1 = _agent()
        v2 = _next(v1, presence=Presence.ONLINE)
        self.commit(store, agents=(v1, v2))
        assert store.get_agent(self.tenant, "ana") == v2

    def test_same_agent_v1_twice_in_one_commit_conflicts(
        self, store: _AssignmentTestStore
    ) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(), _agent(capacity=2)))
        assert store.list_agents(self.tenant) == []

    def test_conflicting_agent_aborts_other_agent_and_events(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, agents=(_agent("old"),))
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent("new"), _agent("old")), events=(_flow_saved(1),))
        assert store.list_agents(self.tenant) == [_agent("old")]
        assert store.read_events(self.tenant) == []

    def test_writing_routing_v1_for_existing_id_conflicts(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, routings=(_routing(),))
        with pytest.raises(ConflictError):
            self.commit(store, routings=(_routing(vip=True),))
        assert store.get_routing(self.tenant, "conv-1") == _routing()

    def test_writing_new_routing_at_v2_conflicts(self, store: _AssignmentTestStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, routings=(_assigned(_routing()),))
        with pytest.raises(NotFound):
            store.get_routing(self.tenant, "conv-1")

    def test_skipping_a_routing_record_version_conflicts(
        self, store: _AssignmentTestStore
    ) -> None:
        v1 = _routing()
        self.commit(store, routings=(v1,))
        with pytest.raises(ConflictError):
            self.commit(store, routings=(_next(_assigned(v1), answered=True),))
        assert store.get_routing(self.tenant, "conv-1") == v1

    def test_stale_routing_write_conflicts(self, store: _AssignmentTestStore) -> None:
        v1 = _routing()
        self.commit(store, routings=(v1,))
        self.commit(store, routings=(_assigned(v1, "ana"),))
        with pytest.raises(ConflictError):
            self.commit(store, routings=(_assigned(v1, "bo"),))
        assert store.get_routing(self.tenant, "conv-1") == _assigned(v1, "ana")

    def test_consecutive_routing_versions_in_one_commit_are_written(
        self, store: _AssignmentTestStore
    ) -> None:
        v1 = _routing()
        self.commit(store, routings=(v1, _assigned(v1)))
        assert store.get_routing(self.tenant, "conv-1") == _assigned(v1)

    def test_same_routing_v1_twice_in_one_commit_conflicts(
        self, store: _AssignmentTestStore
    ) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, routings=(_routing(), _routing(vip=True)))
        assert store.list_routings(self.tenant) == []

    def test_conflicting_routing_aborts_agent_and_events(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, routings=(_routing(),))
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(),), routings=(_routing("conv-2"), _routing()),
                        events=(_flow_saved(1),))
        self.assert_assignment_unchanged(store, [], [_routing()], 0)
        assert store.read_events(self.tenant) == []

    # -- finished routings -----------------------------------------------------------

    def test_finished_routing_is_deleted(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routings=(_routing("conv-1"), _routing("conv-2")))
        self.commit(store, finished_routings=("conv-1",))
        with pytest.raises(NotFound) as info:
            store.get_routing(self.tenant, "conv-1")
        assert info.value.kind == "routing"
        assert store.list_routings(self.tenant) == [_routing("conv-2")]

    def test_routing_written_and_finished_in_one_commit_is_gone(
        self, store: _AssignmentTestStore
    ) -> None:
        v1 = _routing()
        self.commit(store, routings=(v1,))
        self.commit(store, routings=(_assigned(v1), _routing("conv-2")),
                    finished_routings=("conv-1", "conv-2"))
        assert store.list_routings(self.tenant) == []

    def test_finished_routing_can_be_routed_again_at_v1(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, routings=(_routing(),))
        self.commit(store, finished_routings=("conv-1",))
        again = _routing(arrived_at=T0 + HOUR)
        self.commit(store, routings=(again,))
        assert store.get_routing(self.tenant, "conv-1") == again

    def test_writing_next_version_of_finished_routing_conflicts(
        self, store: _AssignmentTestStore
    ) -> None:
        v1 = _routing()
        self.commit(store, routings=(v1,))
        self.commit(store, finished_routings=("conv-1",))
        with pytest.raises(ConflictError):
            self.commit(store, routings=(_assigned(v1),))
        assert store.list_routings(self.tenant) == []

    def test_finishing_unknown_routing_conflicts_and_writes_nothing(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, routings=(_routing("conv-1"),))
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(),), routings=(_routing("conv-2"),),
                        finished_routings=("conv-1", "conv-9"), routing_version=1,
                        events=(_flow_saved(1),))
        self.assert_assignment_unchanged(store, [], [_routing("conv-1")], 0)
        assert store.read_events(self.tenant) == []

    def test_finishing_a_finished_routing_conflicts(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routings=(_routing(),))
        self.commit(store, finished_routings=("conv-1",))
        with pytest.raises(ConflictError):
            self.commit(store, finished_routings=("conv-1",), events=(_flow_saved(1),))
        assert store.read_events(self.tenant) == []

    def test_finishing_one_routing_twice_in_one_commit_conflicts(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, routings=(_routing(),))
        with pytest.raises(ConflictError):
            self.commit(store, finished_routings=("conv-1", "conv-1"))
        assert store.list_routings(self.tenant) == [_routing()]

    def test_finishing_many_routings_in_one_commit(self, store: _AssignmentTestStore) -> None:
        ids = [f"conv-{n:04}" for n in range(1201)]
        self.commit(store, routings=tuple(_routing(cid) for cid in ids))
        self.commit(store, finished_routings=tuple(ids[1:]))
        assert store.list_routings(self.tenant) == [_routing(ids[0])]

    def test_finishing_many_routings_with_one_unknown_deletes_none(
        self, store: _AssignmentTestStore
    ) -> None:
        ids = [f"conv-{n:04}" for n in range(1200)]
        self.commit(store, routings=tuple(_routing(cid) for cid in ids))
        with pytest.raises(ConflictError):
            self.commit(store, finished_routings=(*ids, "conv-9999"))
        assert [r.conversation_id for r in store.list_routings(self.tenant)] == ids

    # -- the routing version ---------------------------------------------------------

    def test_first_routing_version_is_1_over_0(self, store: _AssignmentTestStore) -> None:
        assert store.routing_version(self.tenant) == 0
        self.commit(store, routing_version=1)
        assert store.routing_version(self.tenant) == 1

    def test_routing_version_advances_by_one_per_commit(
        self, store: _AssignmentTestStore
    ) -> None:
        for version in (1, 2, 3):
            self.commit(store, routing_version=version)
        assert store.routing_version(self.tenant) == 3

    def test_commit_without_routing_version_keeps_it(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routing_version=1)
        self.commit(store, agents=(_agent(),), routings=(_routing(),))
        assert store.routing_version(self.tenant) == 1

    def test_stale_routing_version_conflicts(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routing_version=1)
        self.commit(store, routing_version=2)
        with pytest.raises(ConflictError):
            self.commit(store, routing_version=2)
        with pytest.raises(ConflictError):
            self.commit(store, routing_version=1)
        assert store.routing_version(self.tenant) == 2

    def test_skipping_a_routing_version_conflicts(self, store: _AssignmentTestStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, routing_version=2)
        assert store.routing_version(self.tenant) == 0
        self.commit(store, routing_version=1)
        with pytest.raises(ConflictError):
            self.commit(store, routing_version=3)
        assert store.routing_version(self.tenant) == 1

    def test_stale_routing_version_writes_nothing(self, store: _AssignmentTestStore) -> None:
        v1 = _routing()
        self.commit(store, routings=(v1, _routing("conv-2")), routing_version=1)
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(),), routings=(_assigned(v1),),
                        finished_routings=("conv-2",), routing_version=1,
                        events=(_flow_saved(1),))
        self.assert_assignment_unchanged(store, [], [v1, _routing("conv-2")], 1)
        assert store.read_events(self.tenant) == []

    def test_conflicting_agent_keeps_routing_version(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=(_agent(),), routing_version=1)
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent(),), routing_version=2)
        assert store.routing_version(self.tenant) == 1

    def test_decisions_over_one_routing_version_commit_once(
        self, store: _AssignmentTestStore
    ) -> None:
        """Two schedulers read version 1 and decide differently: only the first commits."""
        v1 = _routing()
        self.commit(store, agents=(_agent("ana"), _agent("bo")), routings=(v1,),
                    routing_version=1)
        self.commit(store, routings=(_assigned(v1, "ana"),), routing_version=2)
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_next(_agent("bo"), turn=1),), routing_version=2)
        assert store.get_agent(self.tenant, "bo") == _agent("bo")
        assert store.get_routing(self.tenant, "conv-1") == _assigned(v1, "ana")

    # -- atomicity with other tiers ----------------------------------------------------

    def test_commit_writes_task_assignment_and_events_together(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, tasks=(sample_task(),), agents=(_agent(),), routings=(_routing(),),
                    routing_version=1, events=(_flow_saved(1),))
        assert store.get_task(self.tenant, "task-1") == sample_task()
        self.assert_assignment_unchanged(store, [_agent()], [_routing()], 1)
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_conflicting_routing_aborts_task_of_same_commit(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, routings=(_routing(),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), routings=(_routing(),),
                        events=(_flow_saved(1),))
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")
        assert store.read_events(self.tenant) == []

    def test_conflicting_task_aborts_assignment_records(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, tasks=(sample_task(),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), agents=(_agent(),),
                        routings=(_routing(),), routing_version=1)
        self.assert_assignment_unchanged(store, [], [], 0)

    def test_stale_routing_version_aborts_task(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routing_version=1)
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), routing_version=1)
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")

    def test_unknown_finished_routing_aborts_task(self, store: _AssignmentTestStore) -> None:
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), finished_routings=("conv-1",))
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")

    # -- tenants ---------------------------------------------------------------------

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    @pytest.mark.parametrize(
        "call", [c[1] for c in ASSIGNMENT_TENANT_CALLS],
        ids=[c[0] for c in ASSIGNMENT_TENANT_CALLS],
    )
    def test_assignment_method_without_valid_tenant_raises_validation_error(
        self, store: _AssignmentTestStore, call: Callable[[_AssignmentTestStore, Any], object],
        bad_tenant: object,
    ) -> None:
        # Seed records that a missing tenant check might reach instead of failing.
        self.commit(store, agents=(_agent(),), routings=(_routing(),), routing_version=1)
        with pytest.raises(ValidationError) as info:
            call(store, bad_tenant)
        assert info.value.field == "tenant"
        self.assert_assignment_unchanged(store, [_agent()], [_routing()], 1)

    @pytest.mark.parametrize("bad_tenant", BAD_TENANTS, ids=BAD_TENANT_IDS)
    def test_commit_rejected_for_bad_tenant_leaves_no_assignment_record(
        self, store: _AssignmentTestStore, bad_tenant: object
    ) -> None:
        changes = ChangeSet(agents=(_agent(),), routings=(_routing(),), routing_version=1)
        with pytest.raises(ValidationError):
            store.commit(bad_tenant, changes)  # type: ignore[arg-type]
        for tenant in (self.tenant, str(bad_tenant), str(bad_tenant).strip()):
            if tenant.strip():
                self.assert_assignment_unchanged(store, [], [], 0, tenant)

    def test_agent_of_other_tenant_is_not_found(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=(_agent(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.get_agent(self.tenant, "ana")
        assert store.list_agents(self.tenant) == []

    def test_routing_of_other_tenant_is_not_found(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routings=(_routing(),), tenant=self.other_tenant)
        with pytest.raises(NotFound):
            store.get_routing(self.tenant, "conv-1")
        assert store.list_routings(self.tenant) == []

    def test_lists_leave_out_other_tenant(self, store: _AssignmentTestStore) -> None:
        self.commit(store, agents=(_agent("mine"),), routings=(_routing("mine"),))
        self.commit(store, agents=(_agent("theirs"),), routings=(_routing("theirs"),),
                    tenant=self.other_tenant)
        self.assert_assignment_unchanged(store, [_agent("mine")], [_routing("mine")], 0)
        self.assert_assignment_unchanged(
            store, [_agent("theirs")], [_routing("theirs")], 0, self.other_tenant
        )

    def test_routing_version_is_per_tenant(self, store: _AssignmentTestStore) -> None:
        self.commit(store, routing_version=1)
        self.commit(store, routing_version=2)
        assert store.routing_version(self.other_tenant) == 0
        self.commit(store, routing_version=1, tenant=self.other_tenant)
        assert store.routing_version(self.tenant) == 2
        assert store.routing_version(self.other_tenant) == 1

    def test_finishing_routing_of_other_tenant_conflicts(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, routings=(_routing(),), tenant=self.other_tenant)
        with pytest.raises(ConflictError):
            self.commit(store, finished_routings=("conv-1",))
        assert store.list_routings(self.other_tenant) == [_routing()]

    def test_same_assignment_ids_in_two_tenants_are_independent(
        self, store: _AssignmentTestStore
    ) -> None:
        mine_agent, mine_routing = _agent(capacity=2), _routing()
        theirs_agent, theirs_routing = _agent(capacity=9), _routing(channel="voice")
        self.commit(store, agents=(mine_agent,), routings=(mine_routing,))
        self.commit(store, agents=(theirs_agent,), routings=(theirs_routing,),
                    tenant=self.other_tenant)
        self.commit(store, agents=(_next(mine_agent, turn=1),), routings=(_assigned(mine_routing),))
        self.commit(store, finished_routings=("conv-1",))
        assert store.get_agent(self.tenant, "ana") == _next(mine_agent, turn=1)
        self.assert_assignment_unchanged(
            store, [theirs_agent], [theirs_routing], 0, self.other_tenant
        )


# -- everything -------------------------------------------------------------------------


class FullStoreContract(StoreContract, ConversationStoreContract, TimerStoreContract):
    """The whole contract of ``FullStore`` (every tier), plus commits that mix
    every kind of record: subclass it and implement ``make_store``."""

    def test_store_satisfies_full_store_protocol(self, store: FullStore) -> None:
        assert isinstance(store, FullStore)

    def test_commit_writes_every_kind_of_record_together(self, store: FullStore) -> None:
        flow = sample_flow()
        task = sample_task(flow)
        conv, customer, timer = sample_conversation(), sample_customer(), sample_timer()
        self.commit(store, flows=(flow,), tasks=(task,), conversations=(conv,),
                    customers=(customer,), timers=(timer,), events=(_flow_saved(1),))
        assert store.get_flow(self.tenant, flow.id) == flow
        assert store.get_task(self.tenant, task.id) == task
        assert store.get_conversation(self.tenant, conv.id) == conv
        assert store.get_customer(self.tenant, customer.id) == customer
        assert store.get_timer(self.tenant, timer.id) == timer
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_conflicting_timer_aborts_every_other_record(self, store: FullStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(),), tasks=(sample_task(),),
                        conversations=(sample_conversation(),), customers=(sample_customer(),),
                        timers=(sample_timer(),), events=(_flow_saved(1),))
        self.assert_only_the_timer_is_stored(store)

    def test_conflicting_conversation_aborts_timer_and_task(self, store: FullStore) -> None:
        self.commit(store, conversations=(sample_conversation(),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), conversations=(sample_conversation(),),
                        timers=(sample_timer(),), events=(_flow_saved(1),))
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")
        with pytest.raises(NotFound):
            store.get_task(self.tenant, "task-1")
        assert store.read_events(self.tenant) == []

    def test_conflicting_customer_aborts_timer_and_conversation(self, store: FullStore) -> None:
        self.commit(store, customers=(sample_customer(),))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(sample_conversation(),),
                        customers=(sample_customer(),), timers=(sample_timer(),))
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")
        with pytest.raises(NotFound):
            store.get_conversation(self.tenant, "conv-1")

    def test_conflicting_task_aborts_conversation_customer_and_timer(
        self, store: FullStore
    ) -> None:
        self.commit(store, tasks=(sample_task(),))
        with pytest.raises(ConflictError):
            self.commit(store, tasks=(sample_task(),), conversations=(sample_conversation(),),
                        customers=(sample_customer(),), timers=(sample_timer(),))
        with pytest.raises(NotFound):
            store.get_conversation(self.tenant, "conv-1")
        with pytest.raises(NotFound):
            store.get_customer(self.tenant, "cust-1")
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")

    def test_conflicting_flow_aborts_timer(self, store: FullStore) -> None:
        self.commit(store, flows=(sample_flow(),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(),), timers=(sample_timer(),))
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")

    def test_fenced_fire_leaves_its_effects_unwritten(self, store: FullStore) -> None:
        """An auto-close fire by a worker whose lease was taken over writes
        neither the timer, nor the conversation it closes, nor its events."""
        conv = sample_conversation()
        self.commit(store, conversations=(conv,), timers=(sample_timer(subject_id=conv.id),))
        (stale,) = self.claim(store, T0, "w1")
        self.claim(store, T0 + LEASE, "w2")
        closed = _next(conv, state=ConversationState.CLOSED, closed_at=T0 + LEASE,
                       close_reason="autoclose")
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(closed,), timers=(stale.fired(T0 + LEASE),),
                        events=(_flow_saved(1),))
        assert store.get_conversation(self.tenant, conv.id) == conv
        assert store.read_events(self.tenant) == []

    def assert_only_the_timer_is_stored(self, store: FullStore) -> None:
        """After a refused commit: nothing but ``sample_timer()`` is stored."""
        assert store.get_timer(self.tenant, "timer-1") == sample_timer()
        assert store.list_flows(self.tenant) == []
        assert store.query_tasks(self.tenant, TaskQuery(deleted=None)).total == 0
        assert store.query_conversations(self.tenant, ConversationQuery()) == []
        assert store.query_customers(self.tenant, CustomerQuery()) == []
        assert store.read_events(self.tenant) == []


class EveryTierContract(FullStoreContract, AssignmentStoreContract):
    """``FullStoreContract`` and ``AssignmentStoreContract``, plus commits that mix
    assignment records with every other kind: subclass it and implement
    ``make_store`` for an adapter with every tier cxflow defines."""

    def test_store_satisfies_full_and_assignment_store_protocols(
        self, store: _EveryTierStore
    ) -> None:
        assert isinstance(store, FullStore)
        assert isinstance(store, AssignmentStore)

    def test_commit_writes_every_tier_together(self, store: _EveryTierStore) -> None:
        conv, timer = sample_conversation(), sample_timer()
        self.commit(store, flows=(sample_flow(),), tasks=(sample_task(),), conversations=(conv,),
                    customers=(sample_customer(),), timers=(timer,), agents=(_agent(),),
                    routings=(_routing(conv.id),), routing_version=1, events=(_flow_saved(1),))
        assert store.get_conversation(self.tenant, conv.id) == conv
        assert store.get_timer(self.tenant, timer.id) == timer
        assert store.get_task(self.tenant, "task-1") == sample_task()
        self.assert_assignment_unchanged(store, [_agent()], [_routing(conv.id)], 1)
        assert [e.event for e in store.read_events(self.tenant)] == [_flow_saved(1)]

    def test_conflicting_routing_aborts_every_other_record(self, store: _EveryTierStore) -> None:
        self.commit(store, routings=(_routing(),))
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(),), tasks=(sample_task(),),
                        conversations=(sample_conversation(),), customers=(sample_customer(),),
                        timers=(sample_timer(),), agents=(_agent(),), routings=(_routing(),),
                        routing_version=1, events=(_flow_saved(1),))
        self.assert_only_the_routing_is_stored(store)

    def test_stale_routing_version_aborts_every_other_record(
        self, store: _EveryTierStore
    ) -> None:
        self.commit(store, routings=(_routing(),), routing_version=1)
        with pytest.raises(ConflictError):
            self.commit(store, flows=(sample_flow(),), tasks=(sample_task(),),
                        conversations=(sample_conversation(),), customers=(sample_customer(),),
                        timers=(sample_timer(),), agents=(_agent(),),
                        routings=(_assigned(_routing()),), routing_version=1,
                        events=(_flow_saved(1),))
        self.assert_only_the_routing_is_stored(store, routing_version=1)

    def test_conflicting_timer_aborts_assignment_records(self, store: _EveryTierStore) -> None:
        self.commit(store, timers=(sample_timer(),))
        with pytest.raises(ConflictError):
            self.commit(store, timers=(sample_timer(),), agents=(_agent(),),
                        routings=(_routing(),), routing_version=1)
        self.assert_assignment_unchanged(store, [], [], 0)

    def test_conflicting_conversation_keeps_routing_unfinished(
        self, store: _EveryTierStore
    ) -> None:
        """Closing a conversation and finishing its routing land together or not at all."""
        conv = sample_conversation()
        self.commit(store, conversations=(conv,), routings=(_routing(conv.id),))
        closed = _next(conv, state=ConversationState.CLOSED, closed_at=T0 + HOUR,
                       close_reason="resolved")
        self.commit(store, conversations=(closed,))
        with pytest.raises(ConflictError):
            self.commit(store, conversations=(closed,), finished_routings=(conv.id,),
                        routing_version=1)
        assert store.list_routings(self.tenant) == [_routing(conv.id)]
        assert store.routing_version(self.tenant) == 0

    def assert_only_the_routing_is_stored(
        self, store: _EveryTierStore, routing_version: int = 0
    ) -> None:
        """After a refused commit: nothing but ``_routing()`` (and the routing
        version) is stored."""
        self.assert_assignment_unchanged(store, [], [_routing()], routing_version)
        assert store.list_flows(self.tenant) == []
        assert store.query_tasks(self.tenant, TaskQuery(deleted=None)).total == 0
        assert store.query_conversations(self.tenant, ConversationQuery()) == []
        assert store.query_customers(self.tenant, CustomerQuery()) == []
        with pytest.raises(NotFound):
            store.get_timer(self.tenant, "timer-1")
        assert store.read_events(self.tenant) == []
