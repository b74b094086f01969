"""The engine's cache of committed task and conversation snapshots (and of
flow versions, which never change).

A unit of work on a store that names its database (``RecordScope``) reads
the task or conversation it changes from here when it can, and from the
store otherwise. The cache may be behind the database (another process
wrote since), and that is safe because nothing is decided on a cached
snapshot without the store checking it:

- a unit that writes the record writes it over the cached version, so the
  store's version check refuses the commit when the snapshot was stale, and
  the unit runs again on fresh reads;
- a unit that fails, or commits without writing a record it read from the
  cache, runs again on fresh reads before anything is committed or raised.

So a current process changes a task or a conversation with no read at all,
and a process that is behind pays one failed attempt. Snapshots enter the
cache when a unit reads them from the store and when a commit that wrote
them is durable.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TypeVar

from cxflow._records import open_copy
from cxflow.conversations.model import Conversation
from cxflow.flows.model import Flow
from cxflow.tasks.model import Task

__all__ = ["MAX_RECORDS", "RecordCache", "Snapshot"]

Snapshot = Task | Conversation
"""What the cache keeps: records the write paths read before changing them."""

_S = TypeVar("_S", Task, Conversation)

MAX_RECORDS = 10_000
"""Snapshots kept per engine; the least recently used go first."""


class RecordCache:
    """Committed snapshots by (database, tenant, kind, id). Process lifetime:
    one per ``cxflow.Engine``, shared by its sessions; thread-safe. Hands out
    and keeps copies, so no caller can change what another reads."""

    def __init__(self, max_records: int = MAX_RECORDS) -> None:
        # Keys: (scope, tenant, kind, id); a flow version's id is (flow id, version).
        self._records: OrderedDict[tuple[object, str, type, object], Snapshot | Flow] = (
            OrderedDict()
        )
        self._max = max_records
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._records)

    def get(self, scope: object, tenant: str, kind: type[_S], record_id: str) -> _S | None:
        """A copy of the snapshot of ``record_id``, or ``None``."""
        key = (scope, tenant, kind, record_id)
        with self._lock:
            found = self._records.get(key)
            if found is None:
                return None
            self._records.move_to_end(key)
        assert isinstance(found, kind)
        return open_copy(found)

    def put(self, scope: object, tenant: str, record: Snapshot) -> None:
        """Keep a copy of ``record`` unless a later version is kept already."""
        key = (scope, tenant, type(record), record.id)
        kept = open_copy(record)
        with self._lock:
            found = self._records.get(key)
            if isinstance(found, Task | Conversation) and found.version > record.version:
                return
            self._records[key] = kept
            self._records.move_to_end(key)
            while len(self._records) > self._max:
                self._records.popitem(last=False)

    def flow(self, scope: object, tenant: str, flow_id: str, version: int) -> Flow | None:
        """The stored flow version, if kept (flow versions never change)."""
        key = (scope, tenant, Flow, (flow_id, version))
        with self._lock:
            found = self._records.get(key)
            if found is not None:
                self._records.move_to_end(key)
        assert found is None or isinstance(found, Flow)
        return found

    def put_flow(self, scope: object, tenant: str, flow: Flow) -> None:
        """Keep the stored flow version ``flow`` (frozen: kept as it is)."""
        key = (scope, tenant, Flow, (flow.id, flow.version))
        with self._lock:
            self._records[key] = flow
            while len(self._records) > self._max:
                self._records.popitem(last=False)

    def drop(self, scope: object, tenant: str, kind: type, record_id: str) -> None:
        """Forget the snapshot of ``record_id`` (it proved stale)."""
        with self._lock:
            self._records.pop((scope, tenant, kind, record_id), None)
