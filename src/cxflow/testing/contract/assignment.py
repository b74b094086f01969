"""``AssignmentStore``: agents, routing records and the routing version:
finished routings, the fence, atomicity with tasks and events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Protocol

import pytest

from cxflow.assignment.model import Agent, Presence, Routing
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.storage.protocols import (
    AssignmentStore,
    ChangeSet,
    FullStore,
    Store,
)
from cxflow.tasks.model import Priority
from cxflow.testing.contract._base import (
    BAD_TENANT_IDS,
    BAD_TENANTS,
    HOUR,
    MINUTE,
    _flow_saved,
    _next,
    _refuse_assignment,
)
from cxflow.testing.contract.records import RecordRules
from cxflow.testing.fixtures import (
    T0,
    sample_task,
)

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


class AssignmentStoreContract(RecordRules):
    """``AssignmentStore``: agents, routing records (finished ones deleted) and the
    tenant's routing version, with their version rules, copies, atomicity and
    tenants. ``make_store`` must return a store with this tier and the tiers of
    ``Store`` (tasks and events check atomicity)."""

    record_kinds: ClassVar[tuple[str, ...]] = ("agent", "routing")

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

    # -- version rules ---------------------------------------------------------------

    def test_conflicting_agent_aborts_other_agent_and_events(
        self, store: _AssignmentTestStore
    ) -> None:
        self.commit(store, agents=(_agent("old"),))
        with pytest.raises(ConflictError):
            self.commit(store, agents=(_agent("new"), _agent("old")), events=(_flow_saved(1),))
        assert store.list_agents(self.tenant) == [_agent("old")]
        assert store.read_events(self.tenant) == []

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
