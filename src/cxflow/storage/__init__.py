"""Storage protocols and the adapters shipped with cxflow."""

from cxflow.storage.memory import MemoryStore
from cxflow.storage.protocols import (
    ChangeSet,
    ChangeWriter,
    ConversationStore,
    CursorStore,
    EventOutbox,
    FlowStore,
    FullStore,
    Store,
    StoredEvent,
    TaskStore,
    TimerStore,
    require_tenant,
)

__all__ = [
    "ChangeSet",
    "ChangeWriter",
    "ConversationStore",
    "CursorStore",
    "EventOutbox",
    "FullStore",
    "FlowStore",
    "MemoryStore",
    "Store",
    "StoredEvent",
    "TaskStore",
    "TimerStore",
    "require_tenant",
]
