"""The task overdue reactor: every task a unit writes has its overdue timer
just after its due date while it is live, not completed and not yet marked
overdue, and none otherwise, in the same commit. The timer's fire raises the
marker (``TaskService``): a task is overdue once its due date has passed."""

from __future__ import annotations

from datetime import timedelta

from cxflow.app.unit import UnitOfWork
from cxflow.timers.model import subject_timer_id

__all__ = ["OVERDUE_TIMER_KIND", "Overdue", "overdue_timer_id"]

OVERDUE_TIMER_KIND = "task.overdue"
"""The ``Timer.kind`` of the timers that raise a task's overdue marker."""
_JUST_AFTER = timedelta(microseconds=1)
"""Overdue means the due date has passed: the timer fires just after it."""


def overdue_timer_id(task_id: str) -> str:
    """The id of a task's overdue timer."""
    return subject_timer_id(OVERDUE_TIMER_KIND, task_id)


class Overdue:
    """The reactor (see the module docstring)."""

    def __call__(self, unit: UnitOfWork) -> None:
        for task in unit.staged_tasks:
            if task.due_at is None:
                before = unit.stored_task(task.id)
                if before is None or before.due_at is None:
                    continue  # no due date now or before: no timer can exist
            wanted = not task.deleted and not task.completed and task.overdue_marked_at is None
            unit.plan_timer(
                overdue_timer_id(task.id),
                kind=OVERDUE_TIMER_KIND,
                subject_id=task.id,
                deadline=task.due_at + _JUST_AFTER if wanted and task.due_at is not None else None,
            )
