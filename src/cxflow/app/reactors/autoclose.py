"""The auto-close reactor: every conversation a unit writes has its auto-close
timer at the deadline of the policy's first rule that applies to it now
(``cxflow.conversations.autoclose.due``), or none (closed, answered, no rule
applies), in the same commit. The timer's fire closes the conversation by
that rule (``ConversationService``), and the reactors after it finish its
routing."""

from __future__ import annotations

from collections.abc import Callable

from cxflow.app.reactors.timers import moves_no_timer
from cxflow.app.unit import UnitOfWork
from cxflow.conversations import autoclose
from cxflow.conversations.autoclose import AutoClosePolicy

__all__ = ["AutoClose"]

PolicyOf = Callable[[str], AutoClosePolicy | None]
"""``tenant -> its auto-close policy`` (``None``: none)."""


class AutoClose:
    """The reactor (see the module docstring)."""

    def __init__(self, policy: PolicyOf) -> None:
        self._policy = policy

    def __call__(self, unit: UnitOfWork) -> None:
        conversations = unit.staged_conversations
        if not conversations:
            return
        policy = self._policy(unit.tenant)
        if policy is None:
            return
        for conversation in conversations:
            if moves_no_timer(unit.stored_conversation(conversation.id), conversation):
                continue
            due = autoclose.due(policy, conversation)
            unit.plan_timer(
                autoclose.autoclose_timer_id(conversation.id),
                kind=autoclose.AUTOCLOSE_TIMER_KIND,
                subject_id=conversation.id,
                deadline=None if due is None else due.deadline,
            )
