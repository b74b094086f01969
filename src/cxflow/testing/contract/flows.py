"""``FlowStore``: flow versions, latest and specific reads, ordering."""

from __future__ import annotations

import attrs
import pytest

from cxflow.errors import ConflictError, NotFound
from cxflow.flows.model import Transition
from cxflow.storage.protocols import (
    FlowStore,
    Store,
)
from cxflow.testing.contract._base import (
    _refuse_assignment,
    _StoreFactory,
)
from cxflow.testing.fixtures import (
    sample_flow,
)

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
