"""Assignment: route waiting conversations to agents.

- ``model``: ``Agent``, ``Presence``, ``Routing`` (one conversation's routing
  record) and ``QueuePolicy`` (queue order with aging);
- ``strategies``: ``RoundRobin``, ``LeastLoad``, ``SkillBased`` and the
  ``Strategy`` protocol for your own;
- ``scheduler``: ``Scheduler``, the in-memory engine (the heap), its
  ``Decision`` and ``Explanation``;
- ``settings``: ``AssignmentSettings``, a tenant's routing configuration.

This package is the pure core. ``AssignmentService``, which keeps every
tenant's scheduler durable in a store, is in the application layer
(``cxflow.app.assignment``; also exported by ``cxflow``).
"""

from cxflow.assignment.model import (
    MAX_CAPACITY,
    MAX_PROFICIENCY,
    Agent,
    Presence,
    QueuePolicy,
    Routing,
)
from cxflow.assignment.scheduler import Candidate, Decision, Explanation, Scheduler, queue_key
from cxflow.assignment.settings import AssignmentSettings
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

__all__ = [
    "ANY",
    "MAX_CAPACITY",
    "MAX_PROFICIENCY",
    "Agent",
    "AgentState",
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
    "queue_key",
]
