"""The in-memory store: the reference adapter.

Keeps every record as a JSON-ready dict made by ``cxflow.serialization``,
so callers never share live objects with the store (the same isolation a SQL
adapter gives). Thread-safe: one lock serialises commits and reads.
Everything is lost when the process exits; use it for tests, demos and
single-process hosts that persist elsewhere.
"""

from __future__ import annotations

import threading
from typing import Any

from cxflow.errors import ConflictError, NotFound, ValidationError
from cxflow.events import Event
from cxflow.flows.model import Flow
from cxflow.serialization import event_from_dict, event_to_dict, from_dict, to_dict
from cxflow.storage.protocols import ChangeSet, StoredEvent, require_tenant
from cxflow.tasks.model import Task
from cxflow.tasks.query import Page, TaskQuery

__all__ = ["MemoryStore"]


class _Tenant:
    __slots__ = ("events", "flows", "tasks")

    def __init__(self) -> None:
        self.flows: dict[str, list[dict[str, Any]]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []


_EMPTY = _Tenant()
"""Shared read-only view returned for tenants with no records."""


class MemoryStore:
    """Implements ``cxflow.storage.Store`` in process memory."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tenants: dict[str, _Tenant] = {}

    def _tenant(self, tenant: object) -> _Tenant:
        """The tenant's records; an empty view for unknown tenants (reads never
        create entries, so arbitrary tenant ids cannot grow memory)."""
        return self._tenants.get(require_tenant(tenant), _EMPTY)

    def _tenant_for_write(self, tenant: str) -> _Tenant:
        return self._tenants.setdefault(tenant, _Tenant())

    # -- flows ---------------------------------------------------------------------

    def get_flow(self, tenant: str, flow_id: str, version: int | None = None) -> Flow:
        with self._lock:
            versions = self._tenant(tenant).flows.get(flow_id)
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
        return from_dict(Flow, data)

    def list_flows(self, tenant: str) -> list[Flow]:
        with self._lock:
            flows = self._tenant(tenant).flows
            latest = [flows[flow_id][-1] for flow_id in sorted(flows)]
        return [from_dict(Flow, data) for data in latest]

    def list_flow_versions(self, tenant: str, flow_id: str) -> list[Flow]:
        with self._lock:
            versions = list(self._tenant(tenant).flows.get(flow_id, ()))
        if not versions:
            raise NotFound("flow", flow_id)
        return [from_dict(Flow, data) for data in versions]

    # -- tasks ---------------------------------------------------------------------

    def get_task(self, tenant: str, task_id: str) -> Task:
        with self._lock:
            data = self._tenant(tenant).tasks.get(task_id)
        if data is None:
            raise NotFound("task", task_id)
        return from_dict(Task, data)

    def query_tasks(self, tenant: str, query: TaskQuery) -> Page:
        if not isinstance(query, TaskQuery):
            raise ValidationError("query", "expected a TaskQuery")
        with self._lock:
            rows = list(self._tenant(tenant).tasks.values())
        return query.apply(from_dict(Task, data) for data in rows)

    # -- outbox --------------------------------------------------------------------

    def read_events(self, tenant: str, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise ValidationError("after", "must be an integer >= 0")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValidationError("limit", "must be an integer >= 1")
        with self._lock:
            rows = self._tenant(tenant).events[after : after + limit]
        return [
            StoredEvent(position=after + i + 1, event=event_from_dict(data))
            for i, data in enumerate(rows)
        ]

    # -- writes --------------------------------------------------------------------

    def commit(self, tenant: str, changes: ChangeSet) -> None:
        tenant = require_tenant(tenant)
        if not isinstance(changes, ChangeSet):
            raise ValidationError("changes", "expected a ChangeSet")
        # Serialise outside the lock; any bad value fails here, before a write.
        flows = [(f.id, f.version, to_dict(f)) for f in changes.flows]
        tasks = [(t.id, t.version, to_dict(t)) for t in changes.tasks]
        events = [event_to_dict(_event(e)) for e in changes.events]
        with self._lock:
            state = self._tenant_for_write(tenant)
            self._check_flows(state, flows)
            self._check_tasks(state, tasks)
            for flow_id, _version, data in flows:
                state.flows.setdefault(flow_id, []).append(data)
            for task_id, _version, data in tasks:
                state.tasks[task_id] = data
            state.events.extend(events)

    @staticmethod
    def _check_flows(state: _Tenant, flows: list[tuple[str, int, dict[str, Any]]]) -> None:
        expected: dict[str, int] = {}
        for flow_id, version, _ in flows:
            current = expected.get(flow_id, len(state.flows.get(flow_id, ())))
            if version != current + 1:
                raise ConflictError(
                    f"flow {flow_id!r}: cannot write v{version} over stored v{current}"
                )
            expected[flow_id] = version

    @staticmethod
    def _check_tasks(state: _Tenant, tasks: list[tuple[str, int, dict[str, Any]]]) -> None:
        expected: dict[str, int] = {}
        for task_id, version, _ in tasks:
            if task_id in expected:
                current = expected[task_id]
            else:
                stored = state.tasks.get(task_id)
                current = 0 if stored is None else stored["version"]
            if version != current + 1:
                raise ConflictError(
                    f"task {task_id!r}: cannot write v{version} over stored v{current}"
                )
            expected[task_id] = version


def _event(value: object) -> Event:
    if not isinstance(value, Event):
        raise ValidationError("events", f"expected an Event, got {type(value).__name__}")
    return value
