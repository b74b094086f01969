"""Each reactor on its own: a unit of work on a memory store, staged as a
service would stage it, then the one reactor; what it staged is checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from cxflow import (
    AutoClosePolicy,
    BusinessCalendar,
    Engine,
    MemoryStore,
    SlaPolicy,
    SlaRule,
    SlaTargets,
    TenantSettings,
    TestClock,
    TimerWorker,
    default_flow,
)
from cxflow.app.reactors import assignment as assignment_reactor
from cxflow.app.reactors.assignment import AssignmentSync
from cxflow.app.reactors.autoclose import AutoClose
from cxflow.app.reactors.overdue import OVERDUE_TIMER_KIND, Overdue, overdue_timer_id
from cxflow.app.reactors.sla import (
    SLA_TIMER_KIND,
    TASK_SLA_TIMER_KIND,
    SlaClocks,
    sla_timer_id,
    task_sla_timer_id,
)
from cxflow.app.reactors.timers import TRIGGER_TIMER_KIND, TimerPlanning
from cxflow.app.tasks import TaskService
from cxflow.app.unit import UnitOfWork
from cxflow.conversations import autoclose
from cxflow.conversations import commands as conversation_commands
from cxflow.conversations.model import AuthorKind, Conversation, Customer
from cxflow.events import SlaActivated, SlaEvent, SlaPaused
from cxflow.flows.model import Flow
from cxflow.storage.protocols import ChangeSet
from cxflow.tasks import commands as task_commands
from cxflow.tasks.model import Task
from cxflow.timers.model import Timer, TimerState
from cxflow.timers.sla import SlaClockState, SlaMetric
from cxflow.timers.triggers import ElapsedSince, TimeTrigger, TriggerAction, trigger_timer_id

TENANT = "acme"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ALWAYS = BusinessCalendar.always("UTC")
CONVERSATION_SLA = SlaPolicy(
    id="chat",
    calendar=ALWAYS,
    rules=[SlaRule(targets=SlaTargets(first_response=timedelta(hours=1)))],
    warn_before=timedelta(minutes=10),
)
TASK_SLA = SlaPolicy(
    id="tasks", calendar=ALWAYS, rules=[SlaRule(targets=SlaTargets(resolution=timedelta(hours=4)))]
)
FLOW = default_flow("order_issue")


def unit(store: MemoryStore, at: datetime = T0, *, timers: bool = True) -> UnitOfWork:
    return UnitOfWork(TENANT, at, store, timers=store if timers else None)


def opened(conversation_id: str = "c-1") -> Conversation:
    conversation, _ = conversation_commands.open_conversation(
        conversation_id=conversation_id, channel="web", customer=Customer(id="kim"), at=T0,
        by="kim",
    )
    return conversation


def stored(store: MemoryStore, conversation: Conversation) -> Conversation:
    store.commit(TENANT, ChangeSet(conversations=(conversation,)))
    return conversation


def created(due_at: datetime | None = None) -> Task:
    task, _ = task_commands.create_task(
        flow=FLOW, task_id="t-1", title="Refund", by="mina", at=T0, due_at=due_at
    )
    return task


def staged_timer(work: UnitOfWork, timer_id: str) -> Timer | None:
    return next((t for t in work.change_set().timers if t.id == timer_id), None)


def no_flow(tenant: str, flow_id: str, version: int) -> Flow:
    raise AssertionError("the staged flow should have been used")


# -- SLA clocks -------------------------------------------------------------------------


def test_sla_clocks_start_on_a_new_conversation_with_conversation_events() -> None:
    work = unit(MemoryStore())
    work.stage_conversation(opened(), before=None)
    SlaClocks(conversations=lambda tenant: CONVERSATION_SLA)(work)
    conversation = work.staged_conversations[0]
    assert [clock.metric for clock in conversation.sla] == [SlaMetric.FIRST_RESPONSE]
    events = [e for e in work.change_set().events if isinstance(e, SlaEvent)]
    assert [(type(e), e.subject, e.subject_id, e.metric) for e in events] == [
        (SlaActivated, "conversation", "c-1", "first_response")
    ]
    assert events[0].due_at == T0 + timedelta(hours=1)


def test_sla_clocks_follow_the_change_from_the_stored_snapshot() -> None:
    store = MemoryStore()
    work = unit(store)
    work.stage_conversation(opened(), before=None)
    SlaClocks(conversations=lambda tenant: CONVERSATION_SLA)(work)
    first = work.staged_conversations[0]
    store.commit(TENANT, ChangeSet(conversations=(first,)))

    later = unit(store, T0 + timedelta(minutes=5))
    replied, _ = conversation_commands.record_message(
        first, AuthorKind.AGENT, at=later.at, author_id="mina"
    )
    later.stage_conversation(replied, before=first)
    SlaClocks(conversations=lambda tenant: CONVERSATION_SLA)(later)
    assert [e.type for e in later.change_set().events] == ["sla.fulfilled"]


def test_sla_clocks_start_a_task_clock_with_the_same_events() -> None:
    work = unit(MemoryStore())
    work.add(ChangeSet(flows=(FLOW,)))  # a flow staged by the unit is the one used
    work.stage_task(created(), before=None)
    SlaClocks(tasks=lambda tenant: TASK_SLA, flow=no_flow)(work)
    [event] = work.change_set().events
    assert (type(event), event.subject, event.subject_id, event.metric) == (
        SlaActivated, "task", "t-1", "resolution"
    )
    assert work.staged_tasks[0].sla[0].due_at == T0 + timedelta(hours=4)


def test_a_task_clock_pauses_when_the_task_waits() -> None:
    store = MemoryStore()
    store.commit(TENANT, ChangeSet(flows=(FLOW,)))
    work = unit(store)
    work.stage_task(created(), before=None)
    flow_of = lambda tenant, flow_id, version: store.get_flow(tenant, flow_id, version)  # noqa: E731
    SlaClocks(tasks=lambda tenant: TASK_SLA, flow=flow_of)(work)
    task = work.staged_tasks[0]
    store.commit(TENANT, ChangeSet(tasks=(task,)))

    later = unit(store, T0 + timedelta(hours=1))
    moved, _ = task_commands.move_task(task, FLOW, "waiting_customer", by="mina", at=later.at)
    later.stage_task(moved, before=task)
    SlaClocks(tasks=lambda tenant: TASK_SLA, flow=flow_of)(later)
    assert [type(e) for e in later.change_set().events if isinstance(e, SlaEvent)] == [SlaPaused]


def test_sla_clocks_without_a_policy_stage_nothing() -> None:
    work = unit(MemoryStore())
    work.stage_conversation(opened(), before=None)
    sole = work.change_set()
    SlaClocks(conversations=lambda tenant: None, tasks=lambda tenant: None)(work)
    assert work.change_set() == sole  # untouched


# -- timer planning ----------------------------------------------------------------------


def test_timer_planning_puts_each_conversation_clock_on_its_next_instant() -> None:
    work = unit(MemoryStore())
    work.stage_conversation(opened(), before=None)
    SlaClocks(conversations=lambda tenant: CONVERSATION_SLA)(work)
    TimerPlanning()(work)
    timer = staged_timer(work, sla_timer_id(SlaMetric.FIRST_RESPONSE, "c-1"))
    assert timer is not None
    assert (timer.kind, timer.subject_id, timer.deadline) == (
        SLA_TIMER_KIND, "c-1", T0 + timedelta(minutes=50)  # the warning first
    )


def test_timer_planning_puts_a_trigger_on_its_deadline_and_cancels_it_when_it_cannot_hold() -> None:
    trigger = TimeTrigger(
        id="slow", since=ElapsedSince.CUSTOMER_WAITING, after=timedelta(hours=2),
        action=TriggerAction(kind="notify", target="leads"),
    )
    store = MemoryStore()
    first = stored(store, opened())
    conversation, _ = conversation_commands.record_message(
        first, AuthorKind.CUSTOMER, at=T0, author_id="kim"
    )
    work = unit(store)
    work.stage_conversation(conversation, before=first)
    TimerPlanning(triggers=lambda tenant: (trigger,))(work)
    timer = staged_timer(work, trigger_timer_id("slow", "c-1"))
    assert timer is not None
    assert (timer.kind, timer.deadline) == (TRIGGER_TIMER_KIND, T0 + timedelta(hours=2))
    store.commit(TENANT, work.change_set())

    later = unit(store, T0 + timedelta(minutes=3))
    closed, _ = conversation_commands.close(conversation, at=later.at, by="mina")
    later.stage_conversation(closed, before=conversation)
    TimerPlanning(triggers=lambda tenant: (trigger,))(later)
    cancelled = staged_timer(later, trigger_timer_id("slow", "c-1"))
    assert cancelled is not None
    assert cancelled.state is TimerState.CANCELLED


def test_timer_planning_plans_a_task_clock_and_continues_from_a_staged_fire() -> None:
    store = MemoryStore()
    store.commit(TENANT, ChangeSet(flows=(FLOW,)))
    flow_of = lambda tenant, flow_id, version: store.get_flow(tenant, flow_id, version)  # noqa: E731
    work = unit(store)
    work.stage_task(created(), before=None)
    SlaClocks(tasks=lambda tenant: TASK_SLA, flow=flow_of)(work)
    TimerPlanning()(work)
    timer = staged_timer(work, task_sla_timer_id("t-1"))
    assert timer is not None
    assert (timer.kind, timer.deadline) == (TASK_SLA_TIMER_KIND, T0 + timedelta(hours=4))

    # A fire staged on the unit is the version planning continues from.
    fired = work.change_set().timers[0].fired(T0)
    again = unit(store)
    again.add(ChangeSet(timers=(fired,)))
    again.stage_task(work.staged_tasks[0], before=None)
    TimerPlanning()(again)
    assert [t.version for t in again.change_set().timers] == [fired.version]  # same deadline


def test_timer_planning_reads_nothing_when_the_store_keeps_no_timers() -> None:
    work = unit(MemoryStore(), timers=False)
    work.stage_conversation(opened(), before=None)
    SlaClocks(conversations=lambda tenant: CONVERSATION_SLA)(work)
    TimerPlanning()(work)
    assert work.change_set().timers == ()


# -- auto-close ------------------------------------------------------------------------


def test_autoclose_plans_the_rule_that_applies_and_cancels_it_on_close() -> None:
    policy = AutoClosePolicy(customer_silence=timedelta(hours=1))
    store = MemoryStore()
    first = stored(store, opened())
    work = unit(store, T0 + timedelta(minutes=1))
    replied, _ = conversation_commands.record_message(
        first, AuthorKind.AGENT, at=work.at, author_id="mina"
    )
    work.stage_conversation(replied, before=first)
    AutoClose(lambda tenant: policy)(work)
    timer = staged_timer(work, autoclose.autoclose_timer_id("c-1"))
    assert timer is not None
    assert (timer.kind, timer.deadline) == (
        autoclose.AUTOCLOSE_TIMER_KIND, T0 + timedelta(hours=1, minutes=1)
    )
    store.commit(TENANT, work.change_set())

    later = unit(store, T0 + timedelta(minutes=2))
    closed, _ = conversation_commands.close(replied, at=later.at, by="mina")
    later.stage_conversation(closed, before=replied)
    AutoClose(lambda tenant: policy)(later)
    cancelled = staged_timer(later, autoclose.autoclose_timer_id("c-1"))
    assert cancelled is not None
    assert cancelled.state is TimerState.CANCELLED


def test_autoclose_without_a_policy_stages_nothing() -> None:
    work = unit(MemoryStore())
    work.stage_conversation(opened(), before=None)
    AutoClose(lambda tenant: None)(work)
    assert work.change_set().timers == ()


# -- task overdue ----------------------------------------------------------------------


class NoTimerReads(MemoryStore):
    def get_timer(self, tenant: str, timer_id: str) -> Timer:
        raise AssertionError(f"read timer {timer_id!r}")


def test_overdue_plans_just_after_the_due_date_and_cancels_once_deleted() -> None:
    due = T0 + timedelta(days=1)
    store = MemoryStore()
    store.commit(TENANT, ChangeSet(flows=(FLOW,)))
    work = unit(store)
    work.stage_task(created(due), before=None)
    Overdue()(work)
    timer = staged_timer(work, overdue_timer_id("t-1"))
    assert timer is not None
    assert (timer.kind, timer.deadline) == (OVERDUE_TIMER_KIND, due + timedelta(microseconds=1))
    store.commit(TENANT, work.change_set())

    task = store.get_task(TENANT, "t-1")
    later = unit(store, T0 + timedelta(hours=1))
    deleted, _ = task_commands.delete_task(task, by="mina", at=later.at)
    later.stage_task(deleted, before=task)
    Overdue()(later)
    cancelled = staged_timer(later, overdue_timer_id("t-1"))
    assert cancelled is not None
    assert cancelled.state is TimerState.CANCELLED


def test_overdue_reads_no_timer_for_a_task_that_never_had_a_due_date() -> None:
    work = unit(NoTimerReads())
    work.stage_task(created(), before=None)
    Overdue()(work)
    assert work.change_set().timers == ()


# -- assignment ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: conversation_commands.close(c, at=T0, by="mina")[0],
         assignment_reactor.AssignmentDelta(closed=True)),
        (lambda c: conversation_commands.record_message(
            c, AuthorKind.AGENT, at=T0, author_id="mina")[0],
         assignment_reactor.AssignmentDelta(answered=True)),
        (lambda c: conversation_commands.record_message(
            c, AuthorKind.AGENT, at=T0, author_id="mina", automatic=True)[0],
         assignment_reactor.AssignmentDelta()),
        (lambda c: conversation_commands.assign(c, "mina", at=T0, by="lead")[0],
         assignment_reactor.AssignmentDelta(handoff=True)),
    ],
    ids=["closed", "agent reply", "automatic reply", "hand assignment"],
)
def test_assignment_delta_names_what_a_change_means_for_routing(
    change: Callable[[Conversation], Conversation],
    expected: assignment_reactor.AssignmentDelta,
) -> None:
    before = opened()
    assert assignment_reactor.delta(before, change(before)) == expected


# -- the order -------------------------------------------------------------------------


def test_a_session_runs_the_reactors_in_the_documented_order() -> None:
    session = Engine(settings=TenantSettings(task_sla=TASK_SLA)).session(MemoryStore())
    assert [type(reactor) for reactor in session.writer.reactors] == [
        SlaClocks, TimerPlanning, AutoClose, Overdue, AssignmentSync
    ]


def test_a_hand_built_worker_gets_the_services_reactors_through_their_handlers() -> None:
    store = MemoryStore()
    clock = TestClock(T0)
    tasks = TaskService(store, clock, sla=TASK_SLA)
    worker = TimerWorker(store, clock, worker_id="w", handlers=tasks.timer_handlers())
    tasks.create_flow(TENANT, FLOW, by="admin")
    task = tasks.create_task(TENANT, flow_id=FLOW.id, title="Refund", by="mina")
    clock.advance(hours=5)
    worker.tick(TENANT)
    stored_task = store.get_task(TENANT, task.id)
    assert stored_task.sla[0].state is SlaClockState.BREACHED
    timer = store.get_timer(TENANT, task_sla_timer_id(task.id))
    assert timer.state is TimerState.FIRED  # fired once: nothing left to plan after a breach


def test_returned_changes_leave_out_reactors_that_need_the_commit() -> None:
    """``Writer.react`` (the classic handler shape) stages nothing through a
    reactor that acts beyond the unit, such as assignment."""
    from cxflow.app.unit import Writer

    ran: list[str] = []

    def stages(work: UnitOfWork) -> None:
        ran.append("stages")

    class Beyond:
        needs_commit = True

        def __call__(self, work: UnitOfWork) -> None:
            ran.append("beyond")

    store = MemoryStore()
    writer = Writer(store, TestClock(T0), reactors=(stages, Beyond()))
    writer.react(TENANT, T0, lambda work: None)
    assert ran == ["stages"]


def test_an_assignee_change_alone_reads_and_plans_no_timer() -> None:
    """Assignment's own conversation changes (the assignee) move no timer, so
    planning reads none of them (each would be a round trip on SQL)."""
    store = NoTimerReads()
    first = stored(store, opened())
    assigned, _ = conversation_commands.assign(first, "mina", at=T0, by="cxflow")
    work = unit(store)
    work.stage_conversation(assigned, before=first)
    policy = AutoClosePolicy(customer_silence=timedelta(hours=1))
    trigger = TimeTrigger(
        id="slow", since=ElapsedSince.CUSTOMER_WAITING, after=timedelta(hours=2),
        action=TriggerAction(kind="notify", target="leads"),
    )
    TimerPlanning(triggers=lambda tenant: (trigger,))(work)
    AutoClose(lambda tenant: policy)(work)
    assert work.change_set().timers == ()
