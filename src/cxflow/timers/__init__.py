"""Timers: durable timers with leases, the in-process timer queue, business-hours
calendars, SLA clocks and time triggers.

``TimerWorker`` (the ``tick`` entry point) is exported from ``cxflow``; this
package holds the pure core, so storage adapters can import it without cycles.
"""

from cxflow.timers.calendar import BusinessCalendar
from cxflow.timers.model import Timer, TimerFire, TimerState, plan_timer
from cxflow.timers.queue import QueuedFire, TimerQueue
from cxflow.timers.sla import (
    SlaClock,
    SlaClockState,
    SlaMetric,
    SlaPolicy,
    SlaRule,
    SlaTargets,
)
from cxflow.timers.triggers import ElapsedSince, TimeTrigger, TriggerAction, TriggerActionKind

__all__ = [
    "BusinessCalendar",
    "ElapsedSince",
    "QueuedFire",
    "SlaClock",
    "SlaClockState",
    "SlaMetric",
    "SlaPolicy",
    "SlaRule",
    "SlaTargets",
    "TimeTrigger",
    "Timer",
    "TimerFire",
    "TimerQueue",
    "TimerState",
    "TriggerAction",
    "TriggerActionKind",
    "plan_timer",
]
