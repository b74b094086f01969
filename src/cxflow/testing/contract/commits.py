"""``ChangeWriter``: atomicity and optimistic concurrency of ``commit``."""

from __future__ import annotations

import pytest

from cxflow.errors import ConflictError, CxflowError, NotFound
from cxflow.storage.protocols import (
    ChangeSet,
    ChangeWriter,
    Store,
)
from cxflow.tasks import commands
from cxflow.tasks.query import TaskQuery
from cxflow.testing.contract._base import (
    MINUTE,
    _flow_saved,
    _StoreFactory,
)
from cxflow.testing.fixtures import (
    T0,
    sample_flow,
    sample_task,
)

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
