"""The in-memory reference adapter passes the storage contract suite, exactly as
a user's adapter would."""

from __future__ import annotations

import pytest

from cxflow import ChangeSet, TaskService, ValidationError
from cxflow.storage import MemoryStore
from cxflow.testing import (
    T0,
    EveryTierContract,
    RecordingSink,
    TestClock,
    sample_flow,
    sample_task_history,
)


class TestMemoryStore(EveryTierContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


def test_no_contract_test_is_shadowed_in_the_every_tier_composition() -> None:
    """Two tier classes defining one test name would run only one of them."""
    from cxflow.testing import contract

    seen: dict[str, str] = {}
    for cls in reversed(contract.EveryTierContract.__mro__):
        for name in vars(cls):
            if name.startswith("test_"):
                assert name not in seen, f"{cls.__name__}.{name} shadows {seen[name]}.{name}"
                seen[name] = cls.__name__


@pytest.mark.parametrize("bad", [None, "", 5])
def test_memory_store_refuses_a_finished_routing_that_is_not_an_id(bad: object) -> None:
    store = MemoryStore()
    with pytest.raises(ValidationError) as info:
        store.commit("acme", ChangeSet(finished_routings=(bad,), routing_version=1))
    assert info.value.field == "finished_routings"
    assert store.routing_version("acme") == 0


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
