"""TaskService over the in-memory store, with a test clock and a recording sink.

Fixtures ``service``, ``store``, ``clock`` and ``sink`` come from conftest.py; the
service's ``new_id`` yields ``task-1``, ``task-2``, ...
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from cxflow import (
    ConflictError,
    Flow,
    FlowExperiment,
    FlowVariant,
    Material,
    MemoryStore,
    MoveRefused,
    NotFound,
    Priority,
    Status,
    StatusKind,
    Task,
    TaskQuery,
    TaskService,
    TaskSort,
    TestClock,
    TodoTemplate,
    ValidationError,
)
from cxflow.events import (
    Event,
    FlowSaved,
    MaterialSendRequested,
    TaskCreated,
    TaskMoved,
    TaskOverdue,
    TaskRestored,
    TodoAdded,
)

TENANT = "acme"
OTHER = "globex"
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

NS = StatusKind.NOT_STARTED
IP = StatusKind.IN_PROGRESS
WAIT = StatusKind.WAITING
OK = StatusKind.COMPLETED_SUCCESS
FAIL = StatusKind.COMPLETED_FAILURE

POLICY = Material(name="policy", uri="https://example.com/policy.pdf", media_type="application/pdf")


def st(key: str, kind: StatusKind = IP, **kwargs: Any) -> Status:
    return Status(key=key, label=key.title(), kind=kind, **kwargs)


def make_flow(flow_id: str = "f", **kwargs: Any) -> Flow:
    kwargs.setdefault("name", "Flow")
    kwargs.setdefault("materials", (POLICY,))
    kwargs.setdefault(
        "statuses",
        (
            st("new", NS, todos=[TodoTemplate(text="Greet")]),
            st("doing", IP),
            st("waiting", WAIT),
            st("done", OK),
            st("failed", FAIL),
        ),
    )
    return Flow(id=flow_id, **kwargs)


def without(flow: Flow, key: str) -> Flow:
    """The next version of ``flow`` with status ``key`` removed."""
    return flow.revise(statuses=[s for s in flow.statuses if s.key != key])


def disabling(flow: Flow, key: str) -> Flow:
    """The next version of ``flow`` with status ``key`` switched off."""
    return flow.revise(
        statuses=[
            Status(key=s.key, label=s.label, kind=s.kind, enabled=False) if s.key == key else s
            for s in flow.statuses
        ]
    )


def outbox(store: MemoryStore, tenant: str = TENANT) -> list[Event]:
    return [stored.event for stored in store.read_events(tenant, limit=10_000)]


def outbox_size(store: MemoryStore, tenant: str = TENANT) -> int:
    return len(store.read_events(tenant, limit=10_000))


@pytest.fixture
def flow(service: TaskService) -> Flow:
    return service.create_flow(TENANT, make_flow(), by="admin")


# -- flows ---------------------------------------------------------------------


def test_create_flow_stores_version_one(service: TaskService, flow: Flow) -> None:
    assert service.get_flow(TENANT, "f") == flow
    assert flow.version == 1


def test_create_flow_emits_flow_saved_to_outbox_and_sink(
    service: TaskService, store: MemoryStore, sink: Any, flow: Flow
) -> None:
    expected = FlowSaved(flow_id="f", version=1, at=T0, by="admin")
    assert outbox(store) == [expected]
    assert sink.batches == [(TENANT, (expected,))]


def test_create_flow_at_a_later_version_is_refused(service: TaskService) -> None:
    with pytest.raises(ValidationError) as info:
        service.create_flow(TENANT, make_flow(version=2), by="admin")
    assert info.value.field == "version"


def test_create_flow_with_an_existing_id_is_a_conflict(
    service: TaskService, flow: Flow
) -> None:
    with pytest.raises(ConflictError):
        service.create_flow(TENANT, make_flow(name="Again"), by="admin")


def test_list_flows_returns_the_latest_version_of_each(service: TaskService, flow: Flow) -> None:
    service.create_flow(TENANT, make_flow("g"), by="admin")
    service.edit_flow(TENANT, flow.revise(name="Renamed"), by="admin")
    assert [(f.id, f.version) for f in service.list_flows(TENANT)] == [("f", 2), ("g", 1)]


# -- create / get --------------------------------------------------------------


def test_create_task_stores_it(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    assert service.get_task(TENANT, task.id) == task


def test_create_task_uses_the_clock_and_the_id_factory(
    service: TaskService, clock: TestClock, flow: Flow
) -> None:
    clock.advance(minutes=5)
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    assert (task.id, task.created_at) == ("task-1", T0 + timedelta(minutes=5))


def test_create_task_with_an_explicit_id(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice", task_id="R-1")
    assert task.id == "R-1"


def test_create_task_with_an_existing_id_is_a_conflict_and_writes_nothing(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    first = service.create_task(TENANT, flow_id="f", title="One", by="alice", task_id="R-1")
    size = outbox_size(store)
    with pytest.raises(ConflictError):
        service.create_task(TENANT, flow_id="f", title="Two", by="alice", task_id="R-1")
    assert service.get_task(TENANT, "R-1") == first
    assert outbox_size(store) == size


def test_create_task_events_reach_outbox_and_sink_in_the_same_order(
    service: TaskService, store: MemoryStore, sink: Any, flow: Flow
) -> None:
    service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    assert [type(e) for e in outbox(store)] == [FlowSaved, TaskCreated, TodoAdded]
    assert outbox(store) == sink.events


def test_outbox_positions_count_from_one_without_gaps(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    assert [s.position for s in store.read_events(TENANT)] == [1, 2, 3]


def test_create_task_on_an_unknown_flow_is_not_found(service: TaskService) -> None:
    with pytest.raises(NotFound) as info:
        service.create_task(TENANT, flow_id="nope", title="Refund", by="alice")
    assert isinstance(info.value, LookupError)
    assert info.value.id == "nope"


def test_create_task_on_another_tenants_flow_is_not_found(
    service: TaskService, flow: Flow
) -> None:
    with pytest.raises(NotFound):
        service.create_task(OTHER, flow_id="f", title="Refund", by="alice")


def test_get_unknown_task_is_not_found(service: TaskService, flow: Flow) -> None:
    with pytest.raises(NotFound) as info:
        service.get_task(TENANT, "missing")
    assert isinstance(info.value, LookupError)
    assert info.value.id == "missing"


def test_another_tenants_task_is_not_found(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    with pytest.raises(NotFound):
        service.get_task(OTHER, task.id)


def test_moving_another_tenants_task_is_not_found_and_writes_nothing(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    with pytest.raises(NotFound):
        service.move_task(OTHER, task.id, "doing", by="mallory")
    assert service.get_task(TENANT, task.id) == task
    assert outbox_size(store, OTHER) == 0


@pytest.mark.parametrize("tenant", ["", "   "])
@pytest.mark.parametrize(
    "call",
    [
        lambda s, t: s.create_flow(t, make_flow("g"), by="admin"),
        lambda s, t: s.create_task(t, flow_id="f", title="x", by="alice"),
        lambda s, t: s.get_task(t, "task-1"),
        lambda s, t: s.move_task(t, "task-1", "doing", by="alice"),
        lambda s, t: s.list_tasks(t),
        lambda s, t: s.board(t, "f"),
        lambda s, t: s.raise_overdue(t),
    ],
    ids=["create_flow", "create_task", "get_task", "move_task", "list_tasks", "board",
         "raise_overdue"],
)
def test_empty_tenant_is_refused(service: TaskService, flow: Flow, tenant: str, call: Any) -> None:
    with pytest.raises(ValidationError) as info:
        call(service, tenant)
    assert info.value.field == "tenant"


def test_clock_returning_a_naive_instant_is_refused(store: MemoryStore) -> None:
    class NaiveClock:
        def now(self) -> datetime:
            return datetime(2024, 5, 1, 9, 0)

    service = TaskService(store, NaiveClock())
    with pytest.raises(ValidationError):
        service.create_flow(TENANT, make_flow(), by="admin")
    assert store.list_flows(TENANT) == []


# -- moves and changes ---------------------------------------------------------


def test_move_stores_the_new_status_and_version(
    service: TaskService, clock: TestClock, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    clock.advance(hours=1)
    moved = service.move_task(TENANT, task.id, "doing", by="bob", reason="picked up")
    stored = service.get_task(TENANT, task.id)
    assert stored == moved
    assert (stored.status, stored.version) == ("doing", 2)
    entry = stored.history[-1]
    assert (entry.source, entry.target, entry.by, entry.at, entry.reason) == (
        "new", "doing", "bob", T0 + timedelta(hours=1), "picked up",
    )


def test_move_events_follow_creation_events_in_outbox_and_sink(
    service: TaskService, store: MemoryStore, sink: Any, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "doing", by="bob")
    service.move_task(TENANT, task.id, "done", by="bob")
    events = outbox(store)
    assert [type(e) for e in events] == [FlowSaved, TaskCreated, TodoAdded, TaskMoved, TaskMoved]
    assert [(e.source, e.target) for e in events if isinstance(e, TaskMoved)] == [
        ("new", "doing"), ("doing", "done"),
    ]
    assert sink.events == events


def test_sink_receives_each_commit_as_one_batch_for_its_tenant(
    service: TaskService, sink: Any, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "doing", by="bob")
    assert [(tenant, [type(e) for e in batch]) for tenant, batch in sink.batches] == [
        (TENANT, [FlowSaved]),
        (TENANT, [TaskCreated, TodoAdded]),
        (TENANT, [TaskMoved]),
    ]


def test_move_with_the_current_expected_version_succeeds(
    service: TaskService, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    moved = service.move_task(TENANT, task.id, "doing", by="bob", expected_version=task.version)
    assert moved.status == "doing"


def test_move_with_a_stale_expected_version_is_a_conflict_and_writes_nothing(
    service: TaskService, store: MemoryStore, sink: Any, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    current = service.move_task(TENANT, task.id, "doing", by="bob")
    size, published = outbox_size(store), len(sink.events)
    with pytest.raises(ConflictError):
        service.move_task(TENANT, task.id, "waiting", by="carol", expected_version=task.version)
    assert service.get_task(TENANT, task.id) == current
    assert (outbox_size(store), len(sink.events)) == (size, published)


def test_stale_expected_version_on_update_is_a_conflict(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.update_task(TENANT, task.id, by="bob", title="Refund 2")
    with pytest.raises(ConflictError):
        service.update_task(TENANT, task.id, by="carol", title="Refund 3",
                            expected_version=task.version)


def test_refused_move_writes_nothing(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    size = outbox_size(store)
    with pytest.raises(MoveRefused):
        service.move_task(TENANT, task.id, "nope", by="bob")
    assert service.get_task(TENANT, task.id) == task
    assert outbox_size(store) == size


def test_move_of_an_unknown_task_is_not_found(service: TaskService, flow: Flow) -> None:
    with pytest.raises(NotFound):
        service.move_task(TENANT, "missing", "doing", by="bob")


def test_no_op_change_writes_nothing(
    service: TaskService, store: MemoryStore, sink: Any, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice", watchers=["carol"])
    size, published = outbox_size(store), len(sink.events)
    result = service.add_watcher(TENANT, task.id, "carol", by="bob")
    assert result == task
    assert service.get_task(TENANT, task.id).version == task.version
    assert (outbox_size(store), len(sink.events)) == (size, published)


def test_update_task_refuses_an_unknown_field(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    with pytest.raises(ValidationError) as info:
        service.update_task(TENANT, task.id, by="bob", status="done")
    assert info.value.field == "status"


def test_invalid_update_writes_nothing(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    size = outbox_size(store)
    with pytest.raises(ValidationError):
        service.update_task(TENANT, task.id, by="bob", title="Ok", priority="urgent")
    assert service.get_task(TENANT, task.id) == task
    assert outbox_size(store) == size


def test_check_todo_is_stored_with_who_and_when(
    service: TaskService, clock: TestClock, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    clock.advance(minutes=3)
    service.check_todo(TENANT, task.id, task.todos[0].id, by="bob")
    todo = service.get_task(TENANT, task.id).todos[0]
    assert (todo.checked_by, todo.checked_at) == ("bob", T0 + timedelta(minutes=3))


def test_check_unknown_todo_is_not_found(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    with pytest.raises(NotFound):
        service.check_todo(TENANT, task.id, "t99", by="bob")


def test_sink_failure_propagates_after_the_commit(store: MemoryStore, clock: TestClock) -> None:
    class BrokenSink:
        def publish(self, tenant: str, events: Any) -> None:
            raise RuntimeError("sink down")

    service = TaskService(store, clock, BrokenSink())
    with pytest.raises(RuntimeError):
        service.create_flow(TENANT, make_flow(), by="admin")
    assert store.get_flow(TENANT, "f").version == 1
    assert [type(e) for e in outbox(store)] == [FlowSaved]


def test_service_works_without_a_sink(store: MemoryStore, clock: TestClock) -> None:
    service = TaskService(store, clock)
    service.create_flow(TENANT, make_flow(), by="admin")
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    assert service.move_task(TENANT, task.id, "doing", by="bob").status == "doing"


# -- delete / restore ----------------------------------------------------------


def test_deleted_task_is_still_readable(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.delete_task(TENANT, task.id, by="bob")
    assert service.get_task(TENANT, task.id).deleted


def test_restore_makes_a_deleted_task_live_again(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.delete_task(TENANT, task.id, by="bob")
    assert not service.restore_task(TENANT, task.id, by="bob").deleted


# -- edit_flow -----------------------------------------------------------------


def test_edit_flow_stores_the_new_version_and_keeps_the_old(
    service: TaskService, flow: Flow
) -> None:
    v2 = flow.revise(name="Renamed")
    service.edit_flow(TENANT, v2, by="admin")
    assert service.get_flow(TENANT, "f") == v2
    assert service.get_flow(TENANT, "f", 1) == flow


def test_edit_flow_emits_flow_saved(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    service.edit_flow(TENANT, flow.revise(name="Renamed"), by="admin")
    assert outbox(store)[-1] == FlowSaved(flow_id="f", version=2, at=T0, by="admin")


def test_edit_flow_carries_live_tasks_to_the_new_version(
    service: TaskService, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.edit_flow(TENANT, flow.revise(name="Renamed"), by="admin")
    carried = service.get_task(TENANT, task.id)
    assert (carried.flow_version, carried.status, carried.version) == (2, "new", task.version + 1)


def test_carried_task_moves_under_the_new_version(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    v2 = flow.revise(statuses=[*flow.statuses, st("escalated", IP)])
    service.edit_flow(TENANT, v2, by="admin")
    assert service.move_task(TENANT, task.id, "escalated", by="bob").status == "escalated"


def test_new_tasks_start_on_the_latest_version(service: TaskService, flow: Flow) -> None:
    service.edit_flow(TENANT, flow.revise(name="Renamed"), by="admin")
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    assert task.flow_version == 2


@pytest.mark.parametrize("edit", [without, disabling], ids=["remove", "disable"])
def test_edit_stranding_live_tasks_is_refused_with_field_relocate(
    service: TaskService, flow: Flow, edit: Any
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "waiting", by="bob")
    with pytest.raises(ValidationError) as info:
        service.edit_flow(TENANT, edit(flow, "waiting"), by="admin")
    assert info.value.field == "relocate"
    assert "waiting" in info.value.reason


@pytest.mark.parametrize("edit", [without, disabling], ids=["remove", "disable"])
def test_refused_edit_writes_nothing(
    service: TaskService, store: MemoryStore, sink: Any, flow: Flow, edit: Any
) -> None:
    stays = service.create_task(TENANT, flow_id="f", title="Stays", by="alice")
    stuck = service.create_task(TENANT, flow_id="f", title="Stuck", by="alice")
    stuck = service.move_task(TENANT, stuck.id, "waiting", by="bob")
    size, published = outbox_size(store), len(sink.events)
    with pytest.raises(ValidationError):
        service.edit_flow(TENANT, edit(flow, "waiting"), by="admin")
    assert service.get_flow(TENANT, "f") == flow
    assert service.get_task(TENANT, stays.id) == stays
    assert service.get_task(TENANT, stuck.id) == stuck
    assert (outbox_size(store), len(sink.events)) == (size, published)


def test_edit_removing_an_empty_status_needs_no_relocation(
    service: TaskService, flow: Flow
) -> None:
    service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    assert service.edit_flow(TENANT, without(flow, "waiting"), by="admin").version == 2


@pytest.mark.parametrize("edit", [without, disabling], ids=["remove", "disable"])
def test_edit_with_relocate_moves_stranded_tasks(
    service: TaskService, flow: Flow, edit: Any
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "waiting", by="bob")
    service.edit_flow(TENANT, edit(flow, "waiting"), by="admin", relocate={"waiting": "doing"})
    moved = service.get_task(TENANT, task.id)
    assert (moved.status, moved.flow_version) == ("doing", 2)
    entry = moved.history[-1]
    assert (entry.source, entry.target, entry.by, entry.flow_version) == (
        "waiting", "doing", "admin", 2,
    )
    assert entry.reason


def test_edit_with_relocate_records_moves_and_the_mapping(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "waiting", by="bob")
    service.edit_flow(TENANT, without(flow, "waiting"), by="admin", relocate={"waiting": "doing"})
    saved, moved = outbox(store)[-2:]
    assert isinstance(saved, FlowSaved)
    assert (saved.version, saved.relocated) == (2, (("waiting", "doing"),))
    assert isinstance(moved, TaskMoved)
    assert (moved.task_id, moved.source, moved.target, moved.flow_version) == (
        task.id, "waiting", "doing", 2,
    )


def test_edit_relocating_to_a_status_missing_from_the_edit_is_refused(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "waiting", by="bob")
    size = outbox_size(store)
    with pytest.raises(ValidationError) as info:
        service.edit_flow(TENANT, without(flow, "waiting"), by="admin",
                          relocate={"waiting": "waiting"})
    assert "relocate" in info.value.field
    assert service.get_flow(TENANT, "f") == flow
    assert outbox_size(store) == size


def test_edit_leaves_deleted_tasks_on_their_old_version(
    service: TaskService, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "waiting", by="bob")
    deleted = service.delete_task(TENANT, task.id, by="bob")
    service.edit_flow(TENANT, without(flow, "waiting"), by="admin")
    assert service.get_task(TENANT, task.id) == deleted
    assert deleted.flow_version == 1


def test_deleted_task_can_be_restored_after_an_edit(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, "waiting", by="bob")
    service.delete_task(TENANT, task.id, by="bob")
    service.edit_flow(TENANT, without(flow, "waiting"), by="admin")
    restored = service.restore_task(TENANT, task.id, by="bob", status="doing")
    assert (restored.deleted, restored.status, restored.flow_version) == (False, "doing", 2)
    assert isinstance(outbox(store)[-2], TaskRestored)


def test_edit_at_a_stale_version_is_a_conflict(service: TaskService, flow: Flow) -> None:
    service.edit_flow(TENANT, flow.revise(name="v2"), by="admin")
    with pytest.raises(ConflictError):
        service.edit_flow(TENANT, flow.revise(name="also v2"), by="other-admin")
    assert service.get_flow(TENANT, "f").name == "v2"


def test_edit_skipping_a_version_is_a_conflict(service: TaskService, flow: Flow) -> None:
    with pytest.raises(ConflictError):
        service.edit_flow(TENANT, flow.revise(name="v2").revise(name="v3"), by="admin")


def test_edit_of_an_unknown_flow_is_not_found(service: TaskService) -> None:
    with pytest.raises(NotFound):
        service.edit_flow(TENANT, make_flow("ghost").revise(name="v2"), by="admin")


# -- experiments ---------------------------------------------------------------


@pytest.fixture
def experiment(service: TaskService) -> FlowExperiment:
    service.create_flow(TENANT, make_flow("flow-a"), by="admin")
    service.create_flow(TENANT, make_flow("flow-b"), by="admin")
    return FlowExperiment(
        task_type="refund",
        variants=[FlowVariant(flow_id="flow-a"), FlowVariant(flow_id="flow-b")],
    )


def test_experiment_task_runs_on_the_variant_chosen_for_its_id(
    service: TaskService, experiment: FlowExperiment
) -> None:
    task = service.create_task_in_experiment(TENANT, experiment, title="Refund", by="alice",
                                             task_id="R-1")
    assert task.flow_id == experiment.choose("R-1")


def test_experiment_variant_is_the_same_for_the_same_id_everywhere(
    store: MemoryStore, clock: TestClock, experiment: FlowExperiment
) -> None:
    other_store = MemoryStore()
    other = TaskService(other_store, clock)
    for flow_id in ("flow-a", "flow-b"):
        other.create_flow(TENANT, make_flow(flow_id), by="admin")
    first = TaskService(store, clock)
    ids = [f"R-{n}" for n in range(20)]
    here = [first.create_task_in_experiment(TENANT, experiment, title="x", by="a", task_id=i)
            for i in ids]
    there = [other.create_task_in_experiment(TENANT, experiment, title="x", by="a", task_id=i)
             for i in ids]
    assert [t.flow_id for t in here] == [t.flow_id for t in there]
    assert {t.flow_id for t in here} == {"flow-a", "flow-b"}


def test_experiment_task_records_its_task_type(
    service: TaskService, store: MemoryStore, experiment: FlowExperiment
) -> None:
    task = service.create_task_in_experiment(TENANT, experiment, title="Refund", by="alice")
    assert task.task_type == "refund"
    created = [e for e in outbox(store) if isinstance(e, TaskCreated)]
    assert [(e.task_id, e.task_type) for e in created] == [(task.id, "refund")]


def test_experiment_passes_other_fields_through(
    service: TaskService, experiment: FlowExperiment
) -> None:
    task = service.create_task_in_experiment(
        TENANT, experiment, title="Refund", by="alice", priority=Priority.HIGH, assignee="bob"
    )
    assert (task.priority, task.assignee) == (Priority.HIGH, "bob")


# -- overdue -------------------------------------------------------------------


def test_raise_overdue_marks_tasks_past_their_due_date(
    service: TaskService, clock: TestClock, flow: Flow
) -> None:
    late = service.create_task(TENANT, flow_id="f", title="Late", by="a",
                               due_at=T0 + timedelta(hours=1))
    service.create_task(TENANT, flow_id="f", title="Early", by="a",
                        due_at=T0 + timedelta(days=1))
    clock.advance(hours=2)
    marked = service.raise_overdue(TENANT)
    assert [t.id for t in marked] == [late.id]
    assert service.get_task(TENANT, late.id).overdue_marked_at == T0 + timedelta(hours=2)


def test_raise_overdue_twice_marks_once(
    service: TaskService, store: MemoryStore, clock: TestClock, flow: Flow
) -> None:
    service.create_task(TENANT, flow_id="f", title="Late", by="a", due_at=T0 + timedelta(hours=1))
    clock.advance(hours=2)
    service.raise_overdue(TENANT)
    clock.advance(hours=1)
    assert service.raise_overdue(TENANT) == []
    assert [type(e) for e in outbox(store)].count(TaskOverdue) == 1


def test_raise_overdue_skips_completed_and_deleted_tasks(
    service: TaskService, clock: TestClock, flow: Flow
) -> None:
    due = T0 + timedelta(hours=1)
    done = service.create_task(TENANT, flow_id="f", title="Done", by="a", due_at=due)
    service.move_task(TENANT, done.id, "done", by="a")
    gone = service.create_task(TENANT, flow_id="f", title="Gone", by="a", due_at=due)
    service.delete_task(TENANT, gone.id, by="a")
    clock.advance(hours=2)
    assert service.raise_overdue(TENANT) == []


def test_raise_overdue_again_after_the_due_date_changes(
    service: TaskService, clock: TestClock, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Late", by="a",
                               due_at=T0 + timedelta(hours=1))
    clock.advance(hours=2)
    service.raise_overdue(TENANT)
    service.update_task(TENANT, task.id, by="a", due_at=T0 + timedelta(hours=3))
    clock.advance(hours=2)
    assert [t.id for t in service.raise_overdue(TENANT)] == [task.id]


# -- materials -----------------------------------------------------------------


def test_send_material_emits_the_intent_and_leaves_the_task_unchanged(
    service: TaskService, store: MemoryStore, sink: Any, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="a", conversation_id="c-1")
    result = service.send_material(TENANT, task.id, "policy", by="bob")
    event = outbox(store)[-1]
    assert isinstance(event, MaterialSendRequested)
    assert (event.conversation_id, event.material, event.task_id) == ("c-1", POLICY, task.id)
    assert sink.events[-1] == event
    assert result == task
    assert service.get_task(TENANT, task.id).version == task.version


def test_send_unknown_material_is_not_found(service: TaskService, flow: Flow) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="a", conversation_id="c-1")
    with pytest.raises(NotFound):
        service.send_material(TENANT, task.id, "nope", by="bob")


def test_send_material_without_a_conversation_writes_nothing(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="a")
    size = outbox_size(store)
    with pytest.raises(ValidationError):
        service.send_material(TENANT, task.id, "policy", by="bob")
    assert outbox_size(store) == size


# -- board ---------------------------------------------------------------------


def _create(service: TaskService, title: str, **kwargs: Any) -> Task:
    kwargs.setdefault("flow_id", "f")
    return service.create_task(TENANT, title=title, by="alice", task_id=title, **kwargs)


def test_board_has_one_column_per_enabled_status_in_flow_order(
    service: TaskService, flow: Flow
) -> None:
    service.edit_flow(TENANT, disabling(flow, "waiting"), by="admin")
    board = service.board(TENANT, "f")
    assert [col.status.key for col in board.columns] == ["new", "doing", "done", "failed"]


def test_board_groups_tasks_by_status(service: TaskService, flow: Flow) -> None:
    _create(service, "a")
    b = _create(service, "b")
    service.move_task(TENANT, b.id, "doing", by="bob")
    board = service.board(TENANT, "f")
    assert [t.id for t in board.column("new").tasks] == ["a"]
    assert [t.id for t in board.column("doing").tasks] == ["b"]


def test_board_orders_by_priority_then_due_date_with_no_due_date_last(
    service: TaskService, flow: Flow
) -> None:
    day = timedelta(days=1)
    _create(service, "low-soon", priority=Priority.LOW, due_at=T0 + day)
    _create(service, "normal-none", priority=Priority.NORMAL)
    _create(service, "normal-late", priority=Priority.NORMAL, due_at=T0 + 3 * day)
    _create(service, "high-none", priority=Priority.HIGH)
    _create(service, "normal-soon", priority=Priority.NORMAL, due_at=T0 + day)
    _create(service, "high-late", priority=Priority.HIGH, due_at=T0 + 2 * day)
    column = service.board(TENANT, "f").column("new")
    assert [t.id for t in column.tasks] == [
        "high-late", "high-none", "normal-soon", "normal-late", "normal-none", "low-soon",
    ]


def test_board_excludes_deleted_tasks(service: TaskService, flow: Flow) -> None:
    _create(service, "a")
    gone = _create(service, "b")
    service.delete_task(TENANT, gone.id, by="bob")
    assert [t.id for t in service.board(TENANT, "f").column("new").tasks] == ["a"]


def test_board_excludes_other_flows(service: TaskService, flow: Flow) -> None:
    service.create_flow(TENANT, make_flow("g"), by="admin")
    _create(service, "a")
    _create(service, "other", flow_id="g")
    board = service.board(TENANT, "f")
    assert [t.id for col in board.columns for t in col.tasks] == ["a"]


def test_board_of_an_unknown_flow_is_not_found(service: TaskService) -> None:
    with pytest.raises(NotFound):
        service.board(TENANT, "nope")


# -- list view -----------------------------------------------------------------


def test_list_tasks_hides_deleted_tasks_by_default(service: TaskService, flow: Flow) -> None:
    _create(service, "a")
    gone = _create(service, "b")
    service.delete_task(TENANT, gone.id, by="bob")
    assert [t.id for t in service.list_tasks(TENANT).items] == ["a"]


def test_list_tasks_filters_by_assignee_and_status(service: TaskService, flow: Flow) -> None:
    _create(service, "a", assignee="bob")
    _create(service, "b", assignee="carol")
    c = _create(service, "c", assignee="bob")
    service.move_task(TENANT, c.id, "doing", by="bob")
    page = service.list_tasks(TENANT, TaskQuery(assignee="bob", statuses=["doing"]))
    assert [t.id for t in page.items] == ["c"]


def test_list_tasks_sorts_by_title(service: TaskService, flow: Flow) -> None:
    for title in ("b", "C", "a"):
        _create(service, title)
    page = service.list_tasks(TENANT, TaskQuery(sort=TaskSort.TITLE))
    assert [t.title for t in page.items] == ["a", "b", "C"]


def test_list_tasks_paginates_with_total_and_has_more(service: TaskService, flow: Flow) -> None:
    for title in ("a", "b", "c", "d", "e"):
        _create(service, title)
    query = TaskQuery(sort=TaskSort.TITLE, limit=2)
    pages = [service.list_tasks(TENANT, attrs.evolve(query, offset=o)) for o in (0, 2, 4)]
    assert [[t.id for t in p.items] for p in pages] == [["a", "b"], ["c", "d"], ["e"]]
    assert [p.total for p in pages] == [5, 5, 5]
    assert [p.has_more for p in pages] == [True, True, False]


def test_list_tasks_only_sees_its_tenant(service: TaskService, flow: Flow) -> None:
    _create(service, "a")
    assert service.list_tasks(OTHER).total == 0


# -- actors and experiment fields ------------------------------------------------


def test_create_flow_refuses_an_empty_actor(service: TaskService, store: MemoryStore) -> None:
    with pytest.raises(ValidationError) as info:
        service.create_flow(TENANT, make_flow(), by="")
    assert info.value.field == "by"
    assert store.list_flows(TENANT) == []


def test_edit_flow_refuses_an_empty_actor(service: TaskService, store: MemoryStore) -> None:
    flow = service.create_flow(TENANT, make_flow(), by="admin")
    with pytest.raises(ValidationError) as info:
        service.edit_flow(TENANT, flow.revise(name="Renamed"), by=" ")
    assert info.value.field == "by"
    assert store.get_flow(TENANT, flow.id).version == 1


def test_experiment_refuses_a_task_type_override(
    service: TaskService, experiment: FlowExperiment
) -> None:
    with pytest.raises(ValidationError):
        service.create_task_in_experiment(TENANT, experiment, title="x", by="a",
                                          task_type="other")


# -- restore onto the latest flow version ---------------------------------------


def _deleted_in(service: TaskService, status: str) -> Task:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    service.move_task(TENANT, task.id, status, by="bob")
    return service.delete_task(TENANT, task.id, by="bob")


def test_restore_after_an_edit_keeps_an_enabled_status_on_the_latest_version(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = _deleted_in(service, "waiting")
    service.edit_flow(TENANT, flow.revise(name="v2"), by="admin")
    restored = service.restore_task(TENANT, task.id, by="carol")
    assert (restored.deleted, restored.status, restored.flow_version) == (False, "waiting", 2)
    assert [t.id for t in service.board(TENANT, "f").column("waiting").tasks] == [task.id]
    assert outbox(store)[-1] == TaskRestored(
        task_id=task.id, flow_id="f", flow_version=2, at=T0, by="carol"
    )


def test_restore_onto_a_status_disabled_since_is_refused_and_writes_nothing(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = _deleted_in(service, "waiting")
    service.edit_flow(TENANT, disabling(flow, "waiting"), by="admin")
    written = outbox_size(store)
    with pytest.raises(ValidationError) as info:
        service.restore_task(TENANT, task.id, by="carol")
    assert info.value.field == "status"
    assert service.get_task(TENANT, task.id) == task
    assert outbox_size(store) == written


def test_restore_into_a_named_status_puts_the_task_back_on_the_board(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = _deleted_in(service, "waiting")
    service.edit_flow(TENANT, disabling(flow, "waiting"), by="admin")
    restored = service.restore_task(TENANT, task.id, by="carol", status="doing")
    assert (restored.deleted, restored.status, restored.flow_version) == (False, "doing", 2)
    assert restored.version == task.version + 1
    assert [t.id for t in service.board(TENANT, "f").column("doing").tasks] == [task.id]
    assert [type(e) for e in outbox(store)[-2:]] == [TaskRestored, TaskMoved]


def test_restore_into_a_disabled_status_is_refused(
    service: TaskService, flow: Flow
) -> None:
    task = _deleted_in(service, "waiting")
    service.edit_flow(TENANT, disabling(flow, "waiting"), by="admin")
    with pytest.raises(ValidationError) as info:
        service.restore_task(TENANT, task.id, by="carol", status="waiting")
    assert info.value.field == "status"
    assert service.get_task(TENANT, task.id) == task


def test_restore_of_a_live_task_is_a_no_op_whatever_the_status(
    service: TaskService, store: MemoryStore, flow: Flow
) -> None:
    task = service.create_task(TENANT, flow_id="f", title="Refund", by="alice")
    written = outbox_size(store)
    assert service.restore_task(TENANT, task.id, by="carol", status="done") == task
    assert outbox_size(store) == written
