"""The in-memory reference adapter passes the storage contract suite, exactly as
a user's adapter would."""

from __future__ import annotations

from cxflow import TaskService
from cxflow.storage import MemoryStore
from cxflow.testing import (
    T0,
    FullStoreContract,
    RecordingSink,
    TestClock,
    sample_flow,
    sample_task_history,
)


class TestMemoryStore(FullStoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


# -- the public testing helpers used with the reference adapter ----------------------------


def test_recording_sink_receives_committed_events_in_outbox_order() -> None:
    store = MemoryStore()
    sink = RecordingSink()
    service = TaskService(store, clock=TestClock(T0), sink=sink)
    service.create_flow("acme", sample_flow(), by="ana")
    service.create_task("acme", flow_id="support", title="Hello", by="ana", task_id="t1")
    assert [tenant for tenant, _ in sink.published] == ["acme"] * 3
    assert sink.events("acme") == [e.event for e in store.read_events("acme")]
    assert sink.events("globex") == []
    sink.clear()
    assert sink.published == []


def test_sample_task_history_is_consecutive_versions_of_one_task() -> None:
    history = sample_task_history()
    assert [task.version for task, _ in history] == list(range(1, len(history) + 1))
    assert all(events for _, events in history)
    assert {task.id for task, _ in history} == {"task-1"}
