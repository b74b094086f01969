"""Assignment: route waiting conversations to agents.

- ``model``: ``Agent``, ``Presence``, ``Routing`` (one conversation's routing
  record) and ``QueuePolicy`` (queue order with aging);
- ``strategies``: ``RoundRobin``, ``LeastLoad``, ``SkillBased`` and the
  ``Strategy`` protocol for your own;
- ``scheduler``: ``Scheduler``, the in-memory engine (the heap), its
  ``Decision`` and ``Explanation``;
- ``service``: ``AssignmentService``, which keeps every tenant's scheduler
  durable in a store, with ``AssignmentSettings`` per tenant.

The package imports only the pure core; the service names are loaded on first
use, so storage adapters and the application layer import it without cycles.
"""

from typing import TYPE_CHECKING, Any

from cxflow.assignment.model import (
    MAX_CAPACITY,
    MAX_PROFICIENCY,
    Agent,
    Presence,
    QueuePolicy,
    Routing,
)
from cxflow.assignment.scheduler import Candidate, Decision, Explanation, Scheduler, queue_key
from cxflow.assignment.strategies import (
    ANY,
    AgentState,
    IndexedStrategy,
    LeastLoad,
    Need,
    RoundRobin,
    SkillBased,
    Strategy,
    Tag,
)

if TYPE_CHECKING:
    from cxflow.assignment.service import (
        NO_ANSWER_TIMER_KIND,
        AssignmentBackend,
        AssignmentService,
        AssignmentSettings,
        no_answer_timer_id,
    )

_SERVICE_NAMES = frozenset(
    {
        "NO_ANSWER_TIMER_KIND",
        "AssignmentBackend",
        "AssignmentService",
        "AssignmentSettings",
        "no_answer_timer_id",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SERVICE_NAMES:
        from cxflow.assignment import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ANY",
    "MAX_CAPACITY",
    "MAX_PROFICIENCY",
    "NO_ANSWER_TIMER_KIND",
    "Agent",
    "AgentState",
    "AssignmentBackend",
    "AssignmentService",
    "AssignmentSettings",
    "Candidate",
    "Decision",
    "Explanation",
    "IndexedStrategy",
    "LeastLoad",
    "Need",
    "Presence",
    "QueuePolicy",
    "RoundRobin",
    "Routing",
    "Scheduler",
    "SkillBased",
    "Strategy",
    "Tag",
    "no_answer_timer_id",
    "queue_key",
]
