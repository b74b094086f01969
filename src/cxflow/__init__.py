"""cxflow: an embeddable engine for helpdesk and chat-support backends.

The public API is re-exported here; see the reference in the docs.
"""

from cxflow.clock import Clock, SystemClock, TestClock
from cxflow.errors import (
    ConflictError,
    CxflowError,
    MoveRefused,
    NotFound,
    StorageError,
    ValidationError,
)
from cxflow.events import Event
from cxflow.flows import (
    DEFAULT_TEMPLATES,
    Flow,
    FlowExperiment,
    FlowVariant,
    Material,
    Status,
    StatusKind,
    TodoTemplate,
    Transition,
    compile_flow,
    default_flow,
)
from cxflow.service import EventSink, TaskService
from cxflow.storage import ChangeSet, MemoryStore, Store, StoredEvent
from cxflow.tasks import (
    Board,
    BoardColumn,
    Comment,
    Page,
    Priority,
    StatusChange,
    Task,
    TaskQuery,
    TaskSort,
    Todo,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "DEFAULT_TEMPLATES",
    "Board",
    "BoardColumn",
    "ChangeSet",
    "Clock",
    "Comment",
    "ConflictError",
    "CxflowError",
    "Event",
    "EventSink",
    "Flow",
    "FlowExperiment",
    "FlowVariant",
    "Material",
    "MemoryStore",
    "MoveRefused",
    "NotFound",
    "Page",
    "Priority",
    "Status",
    "StatusChange",
    "StatusKind",
    "StorageError",
    "Store",
    "StoredEvent",
    "SystemClock",
    "Task",
    "TaskQuery",
    "TaskService",
    "TaskSort",
    "TestClock",
    "Todo",
    "TodoTemplate",
    "Transition",
    "ValidationError",
    "__version__",
    "compile_flow",
    "default_flow",
]
