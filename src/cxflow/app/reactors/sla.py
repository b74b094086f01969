"""The SLA reactor: one clock model and one set of events for tasks and
conversations.

After a unit's commands staged their snapshots, ``SlaClocks`` brings every
staged task's and conversation's SLA clocks in line with the change from the
stored snapshot (``cxflow.timers.sla``: ``sync_clocks`` for conversations,
``sync_task_clock`` for tasks) and stages one ``SlaEvent`` per clock change.
``fire`` is what the SLA timers do when they fire: the warning, then the
breach (with the warning, marked ``late``, when no tick ran in between).

The timers that wake those clocks are planned by the next reactor
(``cxflow.app.reactors.timers``); their ids and kinds are named here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from cxflow._records import open_copy
from cxflow.app.unit import UnitOfWork
from cxflow.clock import duration_us
from cxflow.conversations.model import Conversation
from cxflow.events import (
    SlaActivated,
    SlaBreached,
    SlaEvent,
    SlaFulfilled,
    SlaPaused,
    SlaResumed,
    SlaStopped,
    SlaWarning,
)
from cxflow.flows.machine import compile_flow
from cxflow.flows.model import Flow
from cxflow.tasks.model import Task
from cxflow.timers import sla as clocks
from cxflow.timers.model import subject_timer_id
from cxflow.timers.sla import SlaChange, SlaClock, SlaMetric, SlaPolicy

__all__ = [
    "SLA_TIMER_KIND",
    "TASK_SLA_TIMER_KIND",
    "SlaClocks",
    "clock_event",
    "fire",
    "sla_timer_id",
    "task_sla_timer_id",
]

SLA_TIMER_KIND = "sla"
"""The ``Timer.kind`` of conversation SLA timers (one per running clock)."""
TASK_SLA_TIMER_KIND = "task.sla"
"""The ``Timer.kind`` of task SLA timers (warning, then breach)."""

CONVERSATION = "conversation"
TASK = "task"

_EVENTS: Mapping[str, type[SlaEvent]] = {
    "activated": SlaActivated,
    "paused": SlaPaused,
    "resumed": SlaResumed,
    "fulfilled": SlaFulfilled,
    "stopped": SlaStopped,
    "warned": SlaWarning,
    "breached": SlaBreached,
}

PolicyOf = Callable[[str], SlaPolicy | None]
"""``tenant -> the SLA policy in force`` (``None``: no SLA)."""
FlowOf = Callable[[str, str, int], Flow]
"""``(tenant, flow id, version) -> that stored flow version``."""


def sla_timer_id(metric: SlaMetric, conversation_id: str) -> str:
    """The timer id of one SLA clock of a conversation."""
    return subject_timer_id(f"{SLA_TIMER_KIND}:{metric.value}", conversation_id)


def task_sla_timer_id(task_id: str) -> str:
    """The id of a task's SLA timer."""
    return subject_timer_id(TASK_SLA_TIMER_KIND, task_id)


def clock_event(
    change: str,
    clock: SlaClock,
    *,
    subject: str,
    subject_id: str,
    at: datetime,
    escalation: tuple[str, ...] = (),
    late: bool = False,
) -> SlaEvent:
    """The event of ``change`` (``activated``, ``paused``, ``resumed``,
    ``fulfilled``, ``stopped``, ``warned``, ``breached``) of ``clock``."""
    fields: dict[str, Any] = {}
    if change == "breached":
        fields["escalation"] = escalation
    elif change == "warned":
        fields["late"] = late
    return _EVENTS[change](
        subject=subject,
        subject_id=subject_id,
        metric=clock.metric.value,
        target_us=duration_us(clock.target),
        consumed_us=duration_us(clock.consumed),
        due_at=clock.due_at,
        at=at,
        by="cxflow",
        **fields,
    )


def fire(
    policy: SlaPolicy,
    sla: tuple[SlaClock, ...],
    metric: SlaMetric,
    at: datetime,
    *,
    subject: str,
    subject_id: str,
) -> tuple[tuple[SlaClock, ...], list[SlaEvent]] | None:
    """What the SLA timer of ``metric`` does at ``at``: the clocks with that one
    checked, and its warning or breach; ``None`` when there is nothing to do
    (no such clock, or it is neither due to warn nor to breach)."""
    for index, clock in enumerate(sla):
        if clock.metric is not metric:
            continue
        checked, what = clocks.check_clock(policy, clock, at)
        if what is None:
            return None
        escalation = policy.escalation if what == "breached" else ()
        events = [
            clock_event(
                what, checked, subject=subject, subject_id=subject_id, at=at,
                escalation=escalation,
            )
        ]
        if clocks.missed_warning(clock, what):
            warned = clock_event(
                "warned", checked, subject=subject, subject_id=subject_id, at=at, late=True
            )
            events.insert(0, warned)
        return (*sla[:index], checked, *sla[index + 1 :]), events
    return None


class SlaClocks:
    """The reactor (see the module docstring).

    ``tasks`` and ``conversations`` give the tenant's SLA policy for each
    (``None`` for the reactor: that kind has no SLA here); ``flow`` finds the
    flow version a task runs on (a task's clock follows its status kind)
    when this unit does not write that version itself.
    """

    def __init__(
        self,
        *,
        tasks: PolicyOf | None = None,
        conversations: PolicyOf | None = None,
        flow: FlowOf | None = None,
    ) -> None:
        self._tasks = tasks
        self._conversations = conversations
        self._flow = flow

    def __call__(self, unit: UnitOfWork) -> None:
        if self._tasks is not None and unit.staged_tasks:
            policy = self._tasks(unit.tenant)
            if policy is not None:
                for task in unit.staged_tasks:
                    self._sync_task(unit, policy, task)
        if self._conversations is not None and unit.staged_conversations:
            policy = self._conversations(unit.tenant)
            if policy is not None:
                for conversation in unit.staged_conversations:
                    self._sync_conversation(unit, policy, conversation)

    def _sync_conversation(
        self, unit: UnitOfWork, policy: SlaPolicy, after: Conversation
    ) -> None:
        before = unit.stored_conversation(after.id)
        synced, changes = clocks.sync_clocks(policy, before, after, unit.at)
        if changes:
            unit.put_conversation(open_copy(after, sla=synced))
            _emit(unit, CONVERSATION, after.id, changes)

    def _sync_task(self, unit: UnitOfWork, policy: SlaPolicy, after: Task) -> None:
        before = unit.stored_task(after.id)
        before_kind = None
        if before is not None:
            before_kind = self._kinds(unit, before).get(before.status, "unknown")
        synced, changes = clocks.sync_task_clock(
            policy,
            after.sla,
            priority=after.priority,
            before_kind=before_kind,
            after_kind=self._kinds(unit, after).get(after.status, "unknown"),
            after_deleted=after.deleted,
            at=unit.at,
        )
        if changes:
            unit.put_task(open_copy(after, sla=synced))
            _emit(unit, TASK, after.id, changes)

    def _kinds(self, unit: UnitOfWork, task: Task) -> Mapping[str, str]:
        flow = unit.staged_flow(task.flow_id, task.flow_version)
        if flow is None:
            if self._flow is None:
                raise TypeError("SlaClocks needs flow= to follow task SLA clocks")
            flow = self._flow(unit.tenant, task.flow_id, task.flow_version)
        return compile_flow(flow).kind_values


def _emit(unit: UnitOfWork, subject: str, subject_id: str, changes: list[SlaChange]) -> None:
    """Stage the event of each clock change of one subject."""
    unit.emit(
        clock_event(c.change, c.clock, subject=subject, subject_id=subject_id, at=unit.at)
        for c in changes
    )
