"""The in-memory reference adapter passes the storage contract suite, exactly as
a user's adapter would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, NoReturn

import attrs
import pytest

from cxflow import ChangeSet, ConflictError, TaskService, ValidationError
from cxflow.assignment.model import Agent, Routing
from cxflow.events import FlowSaved
from cxflow.storage import MemoryStore
from cxflow.tasks import commands
from cxflow.testing import (
    T0,
    ConsumerContract,
    CursorStoreContract,
    EveryTierContract,
    RecordingSink,
    RecordKindContract,
    TestClock,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_task_history,
    sample_timer,
)


class TestMemoryStore(EveryTierContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()


class TestMemoryStoreRecordKinds(RecordKindContract):
    """Every registered kind (the tests' ``note`` included) through ``RecordStore``."""

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


# -- commit cost: no work proportional to what is stored ----------------------------------


def _scanned(*_args: object) -> NoReturn:
    raise AssertionError("commit went over every stored record")


class _NoScanDict(dict[str, Any]):
    """A dict whose keyed operations work (O(1) each) but which refuses every
    whole-collection operation: iterating, listing, copying, merging."""

    __iter__ = keys = values = items = copy = __reduce__ = __or__ = __ror__ = _scanned


class _NoScanList(list[Any]):
    """The outbox: appending works, going over the stored events does not."""

    __iter__ = __reversed__ = copy = __reduce__ = __contains__ = _scanned
    index = count = _scanned


_DICTS = ("flows", "tasks", "conversations", "customers", "timers", "due", "agents", "routings")


@contextmanager
def _no_scans(store: MemoryStore, tenant: str) -> Iterator[None]:
    """Make every stored collection of ``tenant`` (and the tenant table) refuse
    whole-collection operations while the block runs, then put plain ones back.

    White-box by design: with every container able only to do keyed O(1)
    operations, a commit that succeeds cannot have cost O(stored records)."""
    tenants = store._tenants
    state = tenants[tenant]
    plain = {name: getattr(state, name) for name in _DICTS}
    events = state.events
    store._tenants = _NoScanDict(tenants)
    for name, records in plain.items():
        setattr(state, name, _NoScanDict(records))
    state.events = _NoScanList(events)
    try:
        yield
    finally:
        store._tenants = dict(dict.items(store._tenants))
        for name in _DICTS:
            setattr(state, name, dict(dict.items(getattr(state, name))))
        state.events = list(list.__iter__(state.events))


def _seeded_store() -> MemoryStore:
    """A store holding one record of every kind for tenant ``acme``."""
    store = MemoryStore()
    flow = sample_flow()
    store.commit(
        "acme",
        ChangeSet(
            flows=(flow,),
            tasks=(sample_task(flow, "task-1"),),
            conversations=(sample_conversation("conv-1"),),
            customers=(sample_customer("cust-1"),),
            timers=(sample_timer("timer-1"),),
            agents=(Agent(id="ana"),),
            routings=(
                Routing(conversation_id="conv-1", channel="web", arrived_at=T0),
                Routing(conversation_id="conv-2", channel="web", arrived_at=T0),
            ),
            routing_version=1,
            events=(FlowSaved(flow_id=flow.id, version=1, at=T0, by="ana"),),
        ),
    )
    return store


def test_commit_does_no_whole_collection_work_over_stored_records() -> None:
    store = _seeded_store()
    flow = store.get_flow("acme", "support")
    task = store.get_task("acme", "task-1")
    conversation = store.get_conversation("acme", "conv-1")
    customer = store.get_customer("acme", "cust-1")
    timer = store.get_timer("acme", "timer-1")
    agent = store.get_agent("acme", "ana")
    routing = store.get_routing("acme", "conv-1")
    changed, events = commands.update_task(
        task, by="ana", at=T0 + timedelta(hours=1), title="Changed"
    )
    every_kind = ChangeSet(
        flows=(attrs.evolve(flow, version=2),),
        tasks=(changed, sample_task(flow, "task-2")),
        conversations=(attrs.evolve(conversation, version=2), sample_conversation("conv-3")),
        customers=(attrs.evolve(customer, version=2), sample_customer("cust-2")),
        timers=(timer.claimed("w", T0, timedelta(minutes=1)), sample_timer("timer-2")),
        agents=(attrs.evolve(agent, version=2, capacity=2), Agent(id="bo")),
        routings=(
            attrs.evolve(routing, version=2, agent="ana", assigned_at=T0),
            Routing(conversation_id="conv-3", channel="web", arrived_at=T0),
        ),
        finished_routings=("conv-2", "conv-3"),  # one stored, one written by this set
        routing_version=2,
        events=tuple(events),
    )
    with _no_scans(store, "acme"):
        store.commit("acme", every_kind)
        with pytest.raises(ConflictError):  # finished above
            store.commit("acme", ChangeSet(finished_routings=("conv-2",)))
        with pytest.raises(ConflictError):  # never stored
            store.commit("acme", ChangeSet(finished_routings=("conv-9",)))
        with pytest.raises(ConflictError):  # finished twice in one set
            store.commit("acme", ChangeSet(finished_routings=("conv-1", "conv-1")))
        with pytest.raises(ConflictError):  # a stale version
            store.commit("acme", ChangeSet(tasks=(changed,)))
    assert [r.conversation_id for r in store.list_routings("acme")] == ["conv-1"]
    assert store.get_routing("acme", "conv-1").agent == "ana"
    assert store.routing_version("acme") == 2
    assert store.get_task("acme", "task-1").title == "Changed"
    assert store.get_timer("acme", "timer-1").lease_owner == "w"
    assert store.get_flow("acme", "support").version == 2
    assert len(store.read_events("acme")) == 1 + len(events)


def test_the_no_scan_guard_catches_a_scan() -> None:
    """The guard of the test above is not vacuous: going over a stored
    collection inside it fails."""
    store = _seeded_store()
    with _no_scans(store, "acme"), pytest.raises(AssertionError, match="every stored"):
        store.list_routings("acme")
    assert len(store.list_routings("acme")) == 2  # plain containers are back


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


class TestMemoryStoreCursors(ConsumerContract, CursorStoreContract):
    def make_store(self) -> MemoryStore:
        return MemoryStore()
