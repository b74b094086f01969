"""Assignment: route waiting conversations to agents.

- ``model``: ``Agent``, ``Presence``, ``Routing`` (one conversation's routing
  record) and ``QueuePolicy`` (queue order with aging);
- ``strategies``: ``RoundRobin``, ``LeastLoad``, ``SkillBased`` and the
  ``Strategy`` protocol for your own;
- ``scheduler``: ``Scheduler``, the in-memory engine (the heap), its
  ``Decision`` and ``Explanation``;
- ``service``: ``AssignmentService``, which keeps every tenant's scheduler
  durable in a store, with ``AssignmentSettings`` per tenant.
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
from cxflow.assignment.service import (
    NO_ANSWER_TIMER_KIND,
    AssignmentBackend,
    AssignmentService,
    AssignmentSettings,
    no_answer_timer_id,
)
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
