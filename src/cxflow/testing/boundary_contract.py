"""The read-side boundary contract (requires pytest): every store refuses the
same bad arguments with the same ``ValidationError``.

Subclass it next to ``EveryTierContract``, with the same ``make_store``::

    from cxflow.testing.boundary_contract import ReadBoundaryContract

    class TestMyStoreBoundary(ReadBoundaryContract):
        def make_store(self):
            return MyStore(...)  # a new, empty store with every tier

What it holds every store to (issue 10):

- a read given an id that is not a valid id (``cxflow._validate.check_id``:
  not text, empty, surrounding spaces, control characters, lone
  surrogates, more than ``MAX_ID`` characters) raises ``ValidationError``
  whose ``field`` is the parameter's name (``task_id``, ``flow_id``, ...),
  never ``NotFound``, ``TypeError`` or a driver's error;
- a read given a tenant that is not a valid tenant
  (``cxflow._validate.check_tenant``) raises ``ValidationError`` on field
  ``tenant``;
- a query filter holding a value no stored record can hold (NUL, a lone
  surrogate) matches nothing: the store returns an empty result rather than
  an error from its driver;
- numbers beyond what a database column holds (an ``after`` or ``limit`` of
  ``10**30``, a flow version of ``2**31``) read as the memory store reads
  them: nothing after such a position, every event up to such a limit, no
  such version;
- ``claim_timers`` refuses an instant or lease it could not add up
  (``check_instant`` / ``check_duration``) with ``ValidationError`` and
  claims nothing.

Every refused call leaves the seeded records as they were.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from cxflow.assignment.model import Agent, Routing
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.errors import NotFound, ValidationError
from cxflow.events import FlowSaved
from cxflow.storage.protocols import AssignmentStore, ChangeSet, FullStore
from cxflow.tasks.query import TaskQuery
from cxflow.testing.fixtures import (
    T0,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_timer,
)

__all__ = ["BAD_IDS", "BAD_READ_TENANTS", "UNSTORABLE_TEXTS", "ReadBoundaryContract"]


class _BoundaryStore(FullStore, AssignmentStore, Protocol):
    """What the contract runs on: every tier."""


BAD_IDS: list[tuple[str, object]] = [
    ("none", None),
    ("int", 5),
    ("huge-int", 10**5000),
    ("list", ["task-1"]),
    ("empty", ""),
    ("spaced", " task-1"),
    ("nul", "task\x00-1"),
    ("newline", "task-1\n"),
    ("surrogate", "task-\ud800"),
    ("too-long", "t" * 201),
    ("megabyte", "t" * 1_000_000),
]
"""(test id, value) of ids every store refuses on every read."""

BAD_READ_TENANTS: list[tuple[str, object]] = [
    ("none", None),
    ("int", 5),
    ("huge-int", 10**5000),
    ("dict", {"tenant": "acme"}),
    ("blank", "  "),
    ("nul", "ac\x00me"),
    ("surrogate", "acme\udfff"),
    ("too-long", "a" * 201),
]
"""(test id, value) of tenants every store refuses on every read."""

UNSTORABLE_TEXTS: list[tuple[str, str]] = [
    ("nul", "ana\x00"),
    ("surrogate", "ana\ud800"),
]
"""(test id, text) that no shipped store can hold: as query filters they match nothing."""

_ReadCall = Callable[[_BoundaryStore, Any, Any], object]


def _id_reads() -> list[tuple[str, str, _ReadCall]]:
    """(method, id parameter, call(store, tenant, id)) of every read taking an id."""
    return [
        ("get_flow", "flow_id", lambda s, t, i: s.get_flow(t, i)),
        ("get_flow_version", "flow_id", lambda s, t, i: s.get_flow(t, i, 1)),
        ("list_flow_versions", "flow_id", lambda s, t, i: s.list_flow_versions(t, i)),
        ("get_task", "task_id", lambda s, t, i: s.get_task(t, i)),
        ("get_conversation", "conversation_id", lambda s, t, i: s.get_conversation(t, i)),
        ("get_customer", "customer_id", lambda s, t, i: s.get_customer(t, i)),
        ("get_timer", "timer_id", lambda s, t, i: s.get_timer(t, i)),
        ("get_agent", "agent_id", lambda s, t, i: s.get_agent(t, i)),
        ("get_routing", "conversation_id", lambda s, t, i: s.get_routing(t, i)),
    ]


def _tenant_reads() -> list[tuple[str, Callable[[_BoundaryStore, Any], object]]]:
    """(method, call(store, tenant)) of every read."""

    def with_id(call: _ReadCall) -> Callable[[_BoundaryStore, Any], object]:
        return lambda s, t: call(s, t, "x")

    reads = [(name, with_id(call)) for name, _field, call in _id_reads()]
    return [
        *reads,
        ("list_flows", lambda s, t: s.list_flows(t)),
        ("query_tasks", lambda s, t: s.query_tasks(t, TaskQuery())),
        ("read_events", lambda s, t: s.read_events(t)),
        ("query_conversations", lambda s, t: s.query_conversations(t, ConversationQuery())),
        ("query_customers", lambda s, t: s.query_customers(t, CustomerQuery())),
        ("list_agents", lambda s, t: s.list_agents(t)),
        ("list_routings", lambda s, t: s.list_routings(t)),
        ("routing_version", lambda s, t: s.routing_version(t)),
        (
            "claim_timers",
            lambda s, t: s.claim_timers(t, T0, worker="w", lease=timedelta(minutes=1)),
        ),
    ]


ID_READS = _id_reads()
TENANT_READS = _tenant_reads()


def _query_filters() -> list[tuple[str, Callable[[_BoundaryStore, str, str], list[Any]]]]:
    """(filter, call(store, tenant, value) -> what matched) of every text filter."""
    return [
        ("task.flow_id", lambda s, t, x: list(s.query_tasks(t, TaskQuery(flow_id=x)).items)),
        ("task.assignee", lambda s, t, x: list(s.query_tasks(t, TaskQuery(assignee=x)).items)),
        (
            "task.conversation_id",
            lambda s, t, x: list(s.query_tasks(t, TaskQuery(conversation_id=x)).items),
        ),
        ("task.statuses", lambda s, t, x: list(s.query_tasks(t, TaskQuery(statuses=(x,))).items)),
        (
            "conversation.customer_id",
            lambda s, t, x: s.query_conversations(t, ConversationQuery(customer_id=x)),
        ),
        (
            "conversation.channel",
            lambda s, t, x: s.query_conversations(t, ConversationQuery(channel=x)),
        ),
        (
            "conversation.assignee",
            lambda s, t, x: s.query_conversations(t, ConversationQuery(assignee=x)),
        ),
        (
            "conversation.room_tag",
            lambda s, t, x: s.query_conversations(t, ConversationQuery(room_tag=x)),
        ),
        ("customer.tag", lambda s, t, x: s.query_customers(t, CustomerQuery(tag=x))),
    ]


QUERY_FILTERS = _query_filters()


class ReadBoundaryContract(abc.ABC):
    """Reads refuse bad ids and tenants alike on every store (see the module
    docstring). ``make_store`` returns a new, empty store with every tier."""

    tenant: str = "acme"

    @abc.abstractmethod
    def make_store(self) -> _BoundaryStore:
        """Return a new, empty store of the adapter under test."""

    def dispose_store(self, store: _BoundaryStore) -> None:  # noqa: B027 - optional hook
        """Release what ``make_store`` acquired (default: nothing)."""

    @pytest.fixture
    def store(self) -> Iterator[_BoundaryStore]:
        """A fresh store holding one record of every kind and one event."""
        store = self.make_store()
        try:
            flow = sample_flow()
            store.commit(
                self.tenant,
                ChangeSet(
                    flows=(flow,),
                    tasks=(sample_task(flow),),
                    customers=(sample_customer(),),
                    conversations=(sample_conversation(),),
                    timers=(sample_timer(),),
                    agents=(Agent(id="ana"),),
                    routings=(Routing(conversation_id="conv-1", channel="web", arrived_at=T0),),
                    routing_version=1,
                    events=(FlowSaved(flow_id="support", version=1, at=T0, by="tester"),),
                ),
            )
            yield store
        finally:
            self.dispose_store(store)

    def _snapshot(self, store: _BoundaryStore) -> list[object]:
        """What the tenant's reads return (to show a refused call changed nothing)."""
        return [
            store.list_flows(self.tenant),
            store.query_tasks(self.tenant, TaskQuery(deleted=None)),
            store.query_conversations(self.tenant, ConversationQuery()),
            store.query_customers(self.tenant, CustomerQuery()),
            store.get_timer(self.tenant, "timer-1"),
            store.list_agents(self.tenant),
            store.list_routings(self.tenant),
            store.routing_version(self.tenant),
            store.read_events(self.tenant),
        ]

    @pytest.mark.parametrize("bad_id", [b[1] for b in BAD_IDS], ids=[b[0] for b in BAD_IDS])
    @pytest.mark.parametrize(
        ("field", "read"), [(r[1], r[2]) for r in ID_READS], ids=[r[0] for r in ID_READS]
    )
    def test_read_with_a_bad_id_raises_validation_error_naming_it(
        self, store: _BoundaryStore, field: str, read: _ReadCall, bad_id: object
    ) -> None:
        with pytest.raises(ValidationError) as info:
            read(store, self.tenant, bad_id)
        assert info.value.field == field

    @pytest.mark.parametrize(
        "bad_tenant", [b[1] for b in BAD_READ_TENANTS], ids=[b[0] for b in BAD_READ_TENANTS]
    )
    @pytest.mark.parametrize(
        "read", [r[1] for r in TENANT_READS], ids=[r[0] for r in TENANT_READS]
    )
    def test_read_with_a_bad_tenant_raises_validation_error(
        self,
        store: _BoundaryStore,
        read: Callable[[_BoundaryStore, Any], object],
        bad_tenant: object,
    ) -> None:
        with pytest.raises(ValidationError) as info:
            read(store, bad_tenant)
        assert info.value.field == "tenant"

    @pytest.mark.parametrize(
        "text", [u[1] for u in UNSTORABLE_TEXTS], ids=[u[0] for u in UNSTORABLE_TEXTS]
    )
    @pytest.mark.parametrize(
        "query", [q[1] for q in QUERY_FILTERS], ids=[q[0] for q in QUERY_FILTERS]
    )
    def test_a_filter_no_stored_record_can_hold_matches_nothing(
        self,
        store: _BoundaryStore,
        query: Callable[[_BoundaryStore, str, str], list[Any]],
        text: str,
    ) -> None:
        """(A query class that refuses the value with ``ValidationError`` up
        front also keeps the contract.)"""
        try:
            found = query(store, self.tenant, text)
        except ValidationError:
            return
        assert found == []

    def test_a_task_page_offset_beyond_any_database_integer_is_an_empty_page(
        self, store: _BoundaryStore
    ) -> None:
        """(A ``TaskQuery`` that refuses such an offset keeps the contract too.)"""
        try:
            query = TaskQuery(offset=10**30)
        except ValidationError:
            return
        page = store.query_tasks(self.tenant, query)
        assert (page.items, page.total) == ((), 1)

    @pytest.mark.parametrize("after", [2**63 - 1, 2**63, 10**30])
    def test_no_event_follows_a_position_beyond_any_database_integer(
        self, store: _BoundaryStore, after: int
    ) -> None:
        assert store.read_events(self.tenant, after=after) == []

    @pytest.mark.parametrize("limit", [2**63, 10**30])
    def test_a_limit_beyond_any_database_integer_reads_every_event(
        self, store: _BoundaryStore, limit: int
    ) -> None:
        assert [e.position for e in store.read_events(self.tenant, limit=limit)] == [1]

    @pytest.mark.parametrize("version", [2**31, 2**63, 10**30])
    def test_a_flow_version_beyond_any_database_integer_is_not_found(
        self, store: _BoundaryStore, version: int
    ) -> None:
        with pytest.raises(NotFound):
            store.get_flow(self.tenant, "support", version)

    @pytest.mark.parametrize(
        ("at", "lease", "field"),
        [
            (datetime.max.replace(tzinfo=UTC), timedelta(minutes=1), "at"),
            (T0, timedelta.max, "lease"),
            (T0, timedelta(days=10**6), "lease"),
        ],
        ids=["at-max", "lease-max", "lease-huge"],
    )
    def test_claim_refuses_an_instant_or_lease_out_of_range_and_claims_nothing(
        self, store: _BoundaryStore, at: datetime, lease: timedelta, field: str
    ) -> None:
        before = self._snapshot(store)
        with pytest.raises(ValidationError) as info:
            store.claim_timers(self.tenant, at, worker="w", lease=lease)
        assert info.value.field == field
        assert self._snapshot(store) == before

    @pytest.mark.parametrize("bad_id", [b[1] for b in BAD_IDS], ids=[b[0] for b in BAD_IDS])
    def test_a_refused_read_changes_nothing(
        self, store: _BoundaryStore, bad_id: object
    ) -> None:
        before = self._snapshot(store)
        for _name, _field, read in ID_READS:
            with pytest.raises(ValidationError):
                read(store, self.tenant, bad_id)
        assert self._snapshot(store) == before
