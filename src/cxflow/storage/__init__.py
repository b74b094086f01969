"""Storage protocols and the adapters shipped with cxflow."""

from cxflow.storage.memory import MemoryStore
from cxflow.storage.protocols import (
    ChangeSet,
    ChangeWriter,
    EventOutbox,
    FlowStore,
    Store,
    StoredEvent,
    TaskStore,
    require_tenant,
)

__all__ = [
    "ChangeSet",
    "ChangeWriter",
    "EventOutbox",
    "FlowStore",
    "MemoryStore",
    "Store",
    "StoredEvent",
    "TaskStore",
    "require_tenant",
]
