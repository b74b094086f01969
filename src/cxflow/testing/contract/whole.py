"""The contracts of whole stores: ``StoreContract``, ``FullStoreContract``
and ``EveryTierContract``, with the commits that mix every kind of record."""

from __future__ import annotations

import pytest

from cxflow.conversations.model import (
    ConversationState,
)
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.errors import ConflictError, NotFound
from cxflow.storage.protocols import (
    AssignmentStore,
    FullStore,
)
from cxflow.tasks.query import TaskQuery
from cxflow.testing.contract._base import (
    HOUR,
    _flow_saved,
    _next,
)
from cxflow.testing.contract.assignment import (
    AssignmentStoreContract,
    _agent,
    _assigned,
    _EveryTierStore,
    _routing,
)
from cxflow.testing.contract.commits import ChangeWriterContract
from cxflow.testing.contract.conversations import ConversationStoreContract
from cxflow.testing.contract.flows import FlowStoreContract
from cxflow.testing.contract.outbox import EventOutboxContract
from cxflow.testing.contract.tasks import TaskQueryContract, TaskStoreContract
from cxflow.testing.contract.tenants import TenantIsolationContract
from cxflow.testing.contract.timers import LEASE, TimerStoreContract
from cxflow.testing.fixtures import (
    T0,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_timer,
)

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
