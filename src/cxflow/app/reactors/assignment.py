"""The assignment reactor: keeps routing in step with conversations.

Whatever path changed a conversation (a host call, an auto-close timer, later
a rule), the same commit brings assignment along:

- a conversation opened or reopened with routing (``UnitOfWork.routes``) is
  queued;
- a conversation that closed finishes its routing: the agent's slot frees
  and the queue drains into it;
- a counted (human, not automatic) agent reply answers the assignment, so
  the no-answer timer is cancelled;
- an assignee set or cleared by hand transfers or requeues it.

Conversations that are not routed are left alone. Changes of the assignee
made by assignment itself (its decisions) are not reactions: the reactor runs
once per unit, before assignment stages its own changes.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from cxflow.app.assignment import AssignmentService
from cxflow.app.unit import UnitOfWork
from cxflow.conversations.model import Conversation

__all__ = ["AssignmentDelta", "AssignmentSync", "delta"]


@attrs.frozen
class AssignmentDelta:
    """What one conversation change means for assignment."""

    closed: bool = False
    answered: bool = False
    handoff: bool = False
    """The assignee was changed by hand (the new one is the conversation's)."""


def delta(before: Conversation, after: Conversation) -> AssignmentDelta:
    """The assignment meaning of ``before`` becoming ``after`` (pure)."""
    if before.open and not after.open:
        return AssignmentDelta(closed=True)
    if not after.open:
        return AssignmentDelta()
    return AssignmentDelta(
        answered=after.last_agent_reply_at is not None
        and after.last_agent_reply_at != before.last_agent_reply_at,
        handoff=after.assignee != before.assignee,
    )


class AssignmentSync:
    """The reactor (see the module docstring). ``enabled(tenant)``: whether the
    tenant's engine settings route conversations; others are skipped."""

    needs_commit = True
    """It changes the in-memory scheduler and holds its lock until the unit
    ends: never run on a unit that is not committed (``Writer.react``)."""

    def __init__(self, assignment: AssignmentService, enabled: Callable[[str], bool]) -> None:
        self._assignment = assignment
        self._enabled = enabled

    def __call__(self, unit: UnitOfWork) -> None:
        if unit.routing_staged:
            return
        conversations = unit.staged_conversations
        if (not conversations and not unit.routes) or not self._enabled(unit.tenant):
            return
        closed: list[str] = []
        answered: list[str] = []
        handoffs: list[tuple[str, str | None]] = []
        for after in conversations:
            before = unit.stored_conversation(after.id)
            if before is None:
                continue  # new: routed through unit.routes if asked
            change = delta(before, after)
            if change.closed:
                closed.append(after.id)
            if change.answered:
                answered.append(after.id)
            if change.handoff:
                handoffs.append((after.id, after.assignee))
        if unit.routes or closed or answered or handoffs:
            self._assignment.stage_conversation_changes(
                unit,
                routes=unit.routes.values(),
                closed=closed,
                answered=answered,
                handoffs=handoffs,
            )
