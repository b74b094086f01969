"""Reactors: what follows, in the same commit, from what a unit of work staged.

A reactor is a callable ``(unit) -> None`` (``cxflow.app.unit.Reactor``). The
writer runs its reactors once per attempt, after the operation's own command
staged its snapshots and events and before the one commit, in this fixed
order:

1. ``sla``: the SLA clocks of every staged task and conversation follow the
   change from their stored snapshot (one clock model, one set of
   ``sla.*`` events for both);
2. ``timers``: the timers of those clocks, and of the tenant's time
   triggers, move to their new deadlines;
3. ``autoclose``: each staged conversation's auto-close timer moves to the
   deadline of the rule that applies to it now;
4. ``overdue``: each staged task's overdue timer follows its due date;
5. ``assignment`` (under a ``cxflow.Engine`` only): conversations opened for
   routing are queued, closed ones free their agent's slot, agent replies
   answer the assignment, hand assignments transfer.

Each sees what the ones before it staged. Assignment runs last: the changes
it makes to conversations (their assignee) move no clock and no timer. The
rules engine will be one more reactor.
"""

from __future__ import annotations

from collections.abc import Callable

from cxflow.app.reactors.autoclose import AutoClose
from cxflow.app.reactors.overdue import Overdue
from cxflow.app.reactors.sla import FlowOf, PolicyOf, SlaClocks
from cxflow.app.reactors.timers import TimerPlanning
from cxflow.app.unit import Reactor
from cxflow.conversations.settings import ConversationSettings

__all__ = ["timekeeping"]


def timekeeping(
    *,
    task_sla: PolicyOf | None = None,
    flow: FlowOf | None = None,
    conversations: Callable[[str], ConversationSettings] | None = None,
) -> tuple[Reactor, ...]:
    """Reactors 1 to 4 in their order, reading the tenants' policies through
    ``task_sla`` and ``conversations`` (left out: that kind has none)."""
    if conversations is None:
        return (SlaClocks(tasks=task_sla, flow=flow), TimerPlanning(), Overdue())
    settings = conversations
    return (
        SlaClocks(tasks=task_sla, conversations=lambda tenant: settings(tenant).sla, flow=flow),
        TimerPlanning(triggers=lambda tenant: settings(tenant).triggers),
        AutoClose(lambda tenant: settings(tenant).autoclose),
        Overdue(),
    )
