"""Tenant isolation: a tenant required on every method, tenants invisible
to each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.storage.protocols import (
    ChangeSet,
    Store,
)
from cxflow.tasks import commands
from cxflow.tasks.query import TaskQuery
from cxflow.testing.contract._base import (
    BAD_TENANT_IDS,
    BAD_TENANTS,
    MINUTE,
    _flow_saved,
    _StoreFactory,
)
from cxflow.testing.fixtures import (
    T0,
    sample_flow,
    sample_task,
)

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
