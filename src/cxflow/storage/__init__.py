"""Storage protocols and the adapters shipped with cxflow."""

from cxflow.storage.kinds import RecordKind, kind_named, kinds, register_kind
from cxflow.storage.memory import MemoryStore
from cxflow.storage.protocols import (
    ChangeSet,
    ChangeWriter,
    ConversationStore,
    CursorStore,
    EventOutbox,
    FlowStore,
    FullStore,
    RecordStore,
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
    "RecordKind",
    "RecordStore",
    "Store",
    "StoredEvent",
    "TaskStore",
    "TimerStore",
    "kind_named",
    "kinds",
    "register_kind",
    "require_tenant",
]
