"""Assignment: route waiting conversations to agents.

- ``model``: ``Agent``, ``Presence``, ``Routing`` (one conversation's routing
  record) and ``QueuePolicy`` (queue order with aging);
"""

from cxflow.assignment.model import MAX_CAPACITY, MAX_PROFICIENCY, Agent, Presence, QueuePolicy, Routing

__all__ = ["MAX_CAPACITY", "MAX_PROFICIENCY", "Agent", "Presence", "QueuePolicy", "Routing"]
