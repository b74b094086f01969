"""The in-memory store: the reference adapter.

Keeps every record as the snapshot that was committed, and never shares a
mutable object with its caller: frozen records are immutable and shared as
they are; ``Task`` and ``Conversation`` (attrs classes open to attribute
assignment) and ``Agent`` (whose skill and capacity maps are dicts) are copied
on the way in and on the way out. So a caller that changes what it committed
or read changes nothing stored: the same isolation a SQL adapter gives,
without a serialisation round trip on every read and write. Records are
validated when they are built, so whatever the store keeps can be read back
(and stored by the SQL adapters: the contract suite and the fuzz suite hold
every store to it). Thread-safe: one lock serialises commits, claims and reads.
Everything is lost when the process exits; use it for tests, demos and
single-process hosts that persist elsewhere.

Besides ``FullStore`` it implements ``AssignmentStore`` (agents, routing
records and the routing version of each tenant) and ``CursorStore`` (the
cursors of the log's consumers).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from cxflow._records import open_copy
from cxflow._validate import check_duration, check_id, check_instant, check_name, shown
from cxflow.assignment.model import Agent, Routing
from cxflow.conversations.model import Conversation, Customer
from cxflow.conversations.query import ConversationQuery, CustomerQuery
from cxflow.cursors import Cursor
from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import Event
from cxflow.flows.model import Flow
from cxflow.storage.kinds import BUILT_IN_PARTS, RecordKind, kind_named, kinds
from cxflow.storage.protocols import ChangeSet, StoredEvent, require_tenant
from cxflow.tasks.model import Task
from cxflow.tasks.query import Page, TaskQuery
from cxflow.timers.model import Timer

__all__ = [
    "MAX_CLAIM",
    "MemoryStore",
    "check_claim_arguments",
    "check_finished_routings",
    "check_records",
]

MAX_CLAIM = 1000
"""The most timers one ``claim_timers`` call may claim."""

_R = TypeVar("_R")

_Row = tuple[str, int, Any]
"""(id, version, record snapshot) of one record to write."""


def check_claim_arguments(at: object, worker: object, lease: object, limit: object) -> datetime:
    """Validate the arguments of ``TimerStore.claim_timers`` (after the tenant):
    ``worker`` a name, ``lease`` a duration (``cxflow._validate`` rules, so
    ``at + lease`` cannot overflow), ``limit`` from 1 to ``MAX_CLAIM``, ``at``
    an instant; return ``at`` as aware UTC. Raises ``ValidationError`` naming
    the argument. Shared by cxflow's adapters."""
    check_name(worker, "worker")
    check_duration(lease, "lease")
    if type(limit) is not int or not 1 <= limit <= MAX_CLAIM:
        raise ValidationError("limit", f"must be an integer from 1 to {MAX_CLAIM}")
    return check_instant(at, "at")


def check_finished_routings(values: Sequence[object]) -> list[str]:
    """The conversation ids of ``ChangeSet.finished_routings``; ``ValidationError``
    (field ``finished_routings``) for anything but non-empty text. Shared by
    cxflow's adapters."""
    ids: list[str] = []
    for value in values:
        if not isinstance(value, str) or not value:
            raise ValidationError(
                "finished_routings", f"expected conversation ids, got {shown(value)}"
            )
        ids.append(value)
    return ids


class _Tenant:
    __slots__ = (
        "agents",
        "conversations",
        "cursors",
        "customers",
        "due",
        "events",
        "extra",
        "flows",
        "routing_version",
        "routings",
        "tasks",
        "timers",
    )

    def __init__(self) -> None:
        self.flows: dict[str, list[Flow]] = {}
        self.tasks: dict[str, Task] = {}
        self.conversations: dict[str, Conversation] = {}
        self.customers: dict[str, Customer] = {}
        self.timers: dict[str, Timer] = {}
        self.due: dict[str, tuple[datetime, datetime | None]] = {}
        """Pending timers only: id -> (deadline, lease end), so claims need not
        deserialise every timer."""
        self.events: list[Event] = []
        self.agents: dict[str, Agent] = {}
        self.routings: dict[str, Routing] = {}
        """Routing records by conversation id (finished ones are removed)."""
        self.routing_version = 0
        self.cursors: dict[str, Cursor] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        """The records of kinds registered after the built-in ones, by part."""

    def records(self, kind: RecordKind, *, writing: bool = False) -> dict[str, Any]:
        """The stored records of ``kind`` by key. For a kind registered later
        that has none yet: an empty dict, kept in ``extra`` when ``writing``."""
        if kind.part in BUILT_IN_PARTS:
            found: dict[str, Any] = getattr(self, kind.part)
            return found
        if writing:
            return self.extra.setdefault(kind.part, {})
        return self.extra.get(kind.part, {})


_EMPTY = _Tenant()

_AGENT = kind_named("agent")
"""Agents are kept as the registry copies them (their dicts are their own)."""
"""Shared read-only view returned for tenants with no records."""


class MemoryStore:
    """Implements ``cxflow.storage.FullStore``,
    ``cxflow.storage.protocols.AssignmentStore`` and
    ``cxflow.storage.protocols.CursorStore`` (every tier) in process memory.

    ``commit`` costs O(size of the change set), whatever the tenant has stored:
    it looks records up by id and never goes over a stored collection."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, _Tenant] = {}

    def _tenant(self, tenant: object) -> _Tenant:
        """The tenant's records; an empty view for unknown tenants (reads never
        create entries, so arbitrary tenant ids cannot grow memory)."""
        return self._tenants.get(require_tenant(tenant), _EMPTY)

    def _tenant_for_write(self, tenant: str) -> _Tenant:
        state = self._tenants.get(tenant)
        if state is None:  # build a tenant's containers once, not on every commit
            state = self._tenants[tenant] = _Tenant()
        return state

    # -- flows ---------------------------------------------------------------------

    def get_flow(self, tenant: str, flow_id: str, version: int | None = None) -> Flow:
        with self._lock:
            versions = self._tenant(tenant).flows.get(check_id(flow_id, "flow_id"))
            if not versions:
                raise NotFound("flow", flow_id)
            if version is None:
                data = versions[-1]
            elif (
                isinstance(version, int)
                and not isinstance(version, bool)
                and 1 <= version <= len(versions)
            ):
                data = versions[version - 1]
            else:
                raise NotFound("flow", f"{flow_id}@v{version}")
        return data

    def list_flows(self, tenant: str) -> list[Flow]:
        with self._lock:
            flows = self._tenant(tenant).flows
            return [flows[flow_id][-1] for flow_id in sorted(flows)]

    def list_flow_versions(self, tenant: str, flow_id: str) -> list[Flow]:
        with self._lock:
            versions = list(self._tenant(tenant).flows.get(check_id(flow_id, "flow_id"), ()))
        if not versions:
            raise NotFound("flow", flow_id)
        return versions

    # -- tasks ---------------------------------------------------------------------

    def get_task(self, tenant: str, task_id: str) -> Task:
        with self._lock:
            data = self._tenant(tenant).tasks.get(check_id(task_id, "task_id"))
        if data is None:
            raise NotFound("task", task_id)
        return open_copy(data)

    def query_tasks(self, tenant: str, query: TaskQuery) -> Page:
        require_tenant(tenant)
        if not isinstance(query, TaskQuery):
            raise ValidationError("query", "expected a TaskQuery")
        with self._lock:
            rows = list(self._tenant(tenant).tasks.values())
        return query.apply(map(open_copy, rows))

    # -- conversations and customers -----------------------------------------------

    def get_conversation(self, tenant: str, conversation_id: str) -> Conversation:
        with self._lock:
            data = self._tenant(tenant).conversations.get(
                check_id(conversation_id, "conversation_id")
            )
        if data is None:
            raise NotFound("conversation", conversation_id)
        return open_copy(data)

    def query_conversations(self, tenant: str, query: ConversationQuery) -> list[Conversation]:
        require_tenant(tenant)
        if not isinstance(query, ConversationQuery):
            raise ValidationError("query", "expected a ConversationQuery")
        with self._lock:
            rows = list(self._tenant(tenant).conversations.values())
        return query.apply(map(open_copy, rows))

    def get_customer(self, tenant: str, customer_id: str) -> Customer:
        with self._lock:
            data = self._tenant(tenant).customers.get(check_id(customer_id, "customer_id"))
        if data is None:
            raise NotFound("customer", customer_id)
        return data

    def query_customers(self, tenant: str, query: CustomerQuery) -> list[Customer]:
        require_tenant(tenant)
        if not isinstance(query, CustomerQuery):
            raise ValidationError("query", "expected a CustomerQuery")
        with self._lock:
            rows = list(self._tenant(tenant).customers.values())
        return query.apply(rows)

    # -- timers --------------------------------------------------------------------

    def get_timer(self, tenant: str, timer_id: str) -> Timer:
        with self._lock:
            data = self._tenant(tenant).timers.get(check_id(timer_id, "timer_id"))
        if data is None:
            raise NotFound("timer", timer_id)
        return data

    def claim_timers(
        self, tenant: str, at: datetime, *, worker: str, lease: timedelta, limit: int = 100
    ) -> list[Timer]:
        tenant = require_tenant(tenant)
        at = check_claim_arguments(at, worker, lease, limit)
        with self._lock:
            state = self._tenants.get(tenant)
            if state is None:
                return []
            chosen = heapq.nsmallest(
                limit,
                (
                    (deadline, timer_id)
                    for timer_id, (deadline, lease_until) in state.due.items()
                    if deadline <= at and (lease_until is None or lease_until <= at)
                ),
            )
            # Build every claim before storing any: all or nothing.
            claimed = [
                state.timers[timer_id].claimed(worker, at, lease) for _deadline, timer_id in chosen
            ]
            for timer in claimed:
                state.timers[timer.id] = timer
                state.due[timer.id] = (timer.deadline, timer.lease_until)
        return claimed

    # -- assignment ----------------------------------------------------------------

    def get_agent(self, tenant: str, agent_id: str) -> Agent:
        with self._lock:
            data = self._tenant(tenant).agents.get(check_id(agent_id, "agent_id"))
        if data is None:
            raise NotFound("agent", agent_id)
        agent: Agent = _AGENT.kept(data)
        return agent

    def list_agents(self, tenant: str) -> list[Agent]:
        with self._lock:
            agents = self._tenant(tenant).agents
            rows = [agents[agent_id] for agent_id in sorted(agents)]
        return [_AGENT.kept(agent) for agent in rows]

    def get_routing(self, tenant: str, conversation_id: str) -> Routing:
        with self._lock:
            data = self._tenant(tenant).routings.get(
                check_id(conversation_id, "conversation_id")
            )
        if data is None:
            raise NotFound("routing", conversation_id)
        return data

    def list_routings(self, tenant: str) -> list[Routing]:
        with self._lock:
            routings = self._tenant(tenant).routings
            return [routings[key] for key in sorted(routings)]

    def routing_version(self, tenant: str) -> int:
        with self._lock:
            return self._tenant(tenant).routing_version

    # -- any registered kind ----------------------------------------------------------

    def get_record(self, tenant: str, kind: str, record_id: str) -> Any:
        with self._lock:
            records = self._tenant(tenant).records(found := kind_named(kind))
            record = records.get(check_id(record_id, "record_id"))
        if record is None:
            raise NotFound(found.name, record_id)
        return found.kept(record)

    def list_records(self, tenant: str, kind: str) -> list[Any]:
        with self._lock:
            records = self._tenant(tenant).records(found := kind_named(kind))
            rows = [records[key] for key in sorted(records)]
        return [found.kept(record) for record in rows]

    # -- cursors -------------------------------------------------------------------

    def get_cursor(self, tenant: str, name: str) -> Cursor:
        with self._lock:
            found = self._tenant(tenant).cursors.get(check_id(name, "name"))
        if found is None:
            raise NotFound("cursor", name)
        return found

    # -- outbox --------------------------------------------------------------------

    def read_events(self, tenant: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        require_tenant(tenant)
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValidationError("after", "must be an integer >= 0")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValidationError("limit", "must be an integer >= 1")
        with self._lock:
            rows = self._tenant(tenant).events[after : after + limit]
        return [StoredEvent(position=after + i + 1, event=event) for i, event in enumerate(rows)]

    # -- writes --------------------------------------------------------------------

    def commit(self, tenant: str, changes: ChangeSet) -> None:
        tenant = require_tenant(tenant)
        if not isinstance(changes, ChangeSet):
            raise ValidationError("changes", "expected a ChangeSet")
        if not changes:
            return
        # Check and copy outside the lock; any bad value fails here, before a write.
        flows = [(f.id, f.version, f) for f in check_records(changes.flows, Flow, "flows")]
        written: list[tuple[RecordKind, list[_Row]]] = []
        routings: list[_Row] = []
        for kind in kinds():
            values = changes.part(kind.part)
            if values:
                rows = [
                    (kind.key_of(r), kind.version_of(r), kind.kept(r))
                    for r in check_records(values, cast(type[Any], kind.record), kind.part)
                ]
                written.append((kind, rows))
                if kind.part == "routings":
                    routings = rows
        finished = (
            check_finished_routings(changes.finished_routings) if changes.finished_routings else []
        )
        events = check_records(changes.events, Event, "events")
        with self._lock:
            state = self._tenant_for_write(tenant)
            # Check everything first: a conflict anywhere writes nothing.
            if changes.routing_version is not None:
                _check_routing_version(state.routing_version, changes.routing_version)
            if flows:
                self._check_flows(state, flows)
            for kind, rows in written:
                _check_versions(kind.name, state.records(kind), rows)
            if finished:
                _check_finished(state.routings, routings, finished)
            for flow_id, _version, flow in flows:
                state.flows.setdefault(flow_id, []).append(flow)
            for kind, rows in written:
                records = state.records(kind, writing=True)
                for record_id, _version, record in rows:
                    records[record_id] = record
            for conversation_id in finished:
                del state.routings[conversation_id]
            if changes.routing_version is not None:
                state.routing_version = changes.routing_version
            for timer in changes.timers:  # the last snapshot of each timer wins
                if timer.pending:
                    state.due[timer.id] = (timer.deadline, timer.lease_until)
                else:
                    state.due.pop(timer.id, None)
            state.events.extend(events)

    @staticmethod
    def _check_flows(state: _Tenant, flows: list[_Row]) -> None:
        expected: dict[str, int] = {}
        for flow_id, version, _ in flows:
            current = expected.get(flow_id, len(state.flows.get(flow_id, ())))
            if version != current + 1:
                raise ConflictError(
                    f"flow {flow_id!r}: cannot write v{version} over stored v{current}"
                )
            expected[flow_id] = version


def _check_versions(kind: str, stored: Mapping[str, Any], rows: list[_Row]) -> None:
    """Each row's version must follow the stored one, or the previous row of the
    same id in this change set (version 1: the id must be new)."""
    expected: dict[str, int] = {}
    for record_id, version, _ in rows:
        if record_id in expected:
            current = expected[record_id]
        else:
            data = stored.get(record_id)
            current = 0 if data is None else data.version
        if version != current + 1:
            raise ConflictError(
                f"{kind} {record_id!r}: cannot write v{version} over stored v{current}"
            )
        expected[record_id] = version


def _check_routing_version(stored: int, version: int | None) -> None:
    """``version`` (when set) must follow the tenant's ``stored`` routing version."""
    if version is not None and version != stored + 1:
        raise ConflictError(f"routing version: cannot write v{version} over stored v{stored}")


def _check_finished(
    stored: Mapping[str, Routing], routings: list[_Row], finished: list[str]
) -> None:
    """Each finished conversation id must have a routing record once the set's
    ``routings`` are written (so finishing one id twice conflicts). Costs
    O(len(routings) + len(finished)), whatever is ``stored``."""
    written = {conversation_id for conversation_id, _, _ in routings}
    done: set[str] = set()
    for conversation_id in finished:
        if conversation_id in done or (
            conversation_id not in stored and conversation_id not in written
        ):
            raise ConflictError(f"routing {conversation_id!r}: cannot finish, none is stored")
        done.add(conversation_id)


def check_records(values: Sequence[object], kind: type[_R], field: str) -> Sequence[_R]:
    """``values`` if every one is a ``kind``; else ``ValidationError`` naming
    ``field`` (the ``ChangeSet`` part: ``"tasks"``). Adapters call it on each
    part of a change set before writing anything."""
    for value in values:
        if not isinstance(value, kind):
            raise ValidationError(
                field, f"expected {kind.__name__} records, got {type(value).__name__}"
            )
    return values  # type: ignore[return-value]  # each one checked above
