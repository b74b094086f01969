"""The timer planning reactor: every SLA clock and time trigger of what a unit
writes has its timer at the right deadline, in the same commit.

For each staged conversation: one timer per SLA clock it has (at the clock's
next instant: its warning, then its breach; none once it ended or pauses),
and one per time trigger of the tenant (at the trigger's deadline for the
conversation as it now is, or none). For each staged task with an SLA clock
(now or before): its SLA timer. A timer already at its deadline is left
alone; a fired one is planned afresh only for a new deadline
(``cxflow.timers.model.plan_timer``). Stores that keep no timers are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cxflow.app.reactors.sla import (
    SLA_TIMER_KIND,
    TASK_SLA_TIMER_KIND,
    sla_timer_id,
    task_sla_timer_id,
)
from cxflow.app.unit import UnitOfWork
from cxflow.conversations.model import Conversation
from cxflow.timers.triggers import TimeTrigger, trigger_timer_id

__all__ = ["TRIGGER_TIMER_KIND", "TimerPlanning", "moves_no_timer"]

TRIGGER_TIMER_KIND = "trigger"
"""The ``Timer.kind`` of time-trigger timers (one per trigger and conversation)."""

TriggersOf = Callable[[str], Sequence[TimeTrigger]]
"""``tenant -> its time triggers``."""


_UNTIMED = frozenset({"assignee", "updated_at", "version"})
"""Conversation fields no timer depends on."""


def moves_no_timer(before: Conversation | None, after: Conversation) -> bool:
    """Whether ``after`` differs from ``before`` in nothing a conversation's
    timers depend on (e.g. assignment changed only its assignee), so planning
    can skip it without reading its timers."""
    if before is None:
        return False
    stored = before.__dict__
    return all(
        value == stored[name] for name, value in after.__dict__.items() if name not in _UNTIMED
    )


class TimerPlanning:
    """The reactor (see the module docstring). ``triggers``: the tenant's time
    triggers (``None``: none)."""

    def __init__(self, *, triggers: TriggersOf | None = None) -> None:
        self._triggers = triggers

    def __call__(self, unit: UnitOfWork) -> None:
        for task in unit.staged_tasks:
            if not task.sla:
                before = unit.stored_task(task.id)
                if before is None or not before.sla:
                    continue  # no clock now or before: no timer can exist
            unit.plan_timer(
                task_sla_timer_id(task.id),
                kind=TASK_SLA_TIMER_KIND,
                subject_id=task.id,
                deadline=task.sla[0].next_instant if task.sla else None,
            )
        conversations = unit.staged_conversations
        if not conversations:
            return
        triggers = self._triggers(unit.tenant) if self._triggers is not None else ()
        for conversation in conversations:
            if moves_no_timer(unit.stored_conversation(conversation.id), conversation):
                continue
            # A clock, once started, stays on the conversation: a metric without
            # one never had a timer, so there is nothing to read or cancel for it.
            for clock in conversation.sla:
                unit.plan_timer(
                    sla_timer_id(clock.metric, conversation.id),
                    kind=SLA_TIMER_KIND,
                    subject_id=conversation.id,
                    deadline=clock.next_instant,
                )
            for trigger in triggers:
                unit.plan_timer(
                    trigger_timer_id(trigger.id, conversation.id),
                    kind=TRIGGER_TIMER_KIND,
                    subject_id=conversation.id,
                    deadline=trigger.deadline(conversation),
                )
