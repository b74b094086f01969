"""ConversationService and TimerWorker end to end on the in-memory store:
auto-close, SLA with business hours, time triggers, overdue tasks, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cxflow import (
    AuthorKind,
    AutoClosePolicy,
    BusinessCalendar,
    ConversationQuery,
    ConversationService,
    ConversationSettings,
    ConversationState,
    CustomerQuery,
    ElapsedSince,
    MemoryStore,
    Priority,
    SlaPolicy,
    SlaRule,
    SlaTargets,
    TaskService,
    TestClock,
    TimerWorker,
    TimeTrigger,
    TriggerAction,
    TriggerActionKind,
    default_flow,
)
from cxflow.events import (
    CloseMessageRequested,
    ConversationClosed,
    SlaActivated,
    SlaBreached,
    SlaPaused,
    SlaResumed,
    SlaWarning,
    SurveyRequested,
    TaskOverdue,
    TimerFired,
    TimeTriggerFired,
)
from cxflow.testing import RecordingSink

TENANT = "acme"
FRIDAY_1630_NY = datetime(2026, 3, 6, 21, 30, tzinfo=UTC)  # 16:30 in New York (EST)
M = timedelta(minutes=1)
H = timedelta(hours=1)


def build(settings: ConversationSettings, start: datetime = FRIDAY_1630_NY) -> tuple[
    ConversationService, TimerWorker, TestClock, MemoryStore, RecordingSink
]:
    store = MemoryStore()
    clock = TestClock(start)
    sink = RecordingSink()
    ids = iter(f"c{n}" for n in range(1, 100))
    service = ConversationService(store, clock, sink, settings, new_id=lambda: next(ids))
    worker = TimerWorker(store, clock, sink, worker_id="w1", handlers=service.timer_handlers())
    return service, worker, clock, store, sink


def events_of(sink: RecordingSink, kind: type) -> list:
    return [event for _tenant, event in sink.published if isinstance(event, kind)]


# -- auto-close ------------------------------------------------------------------------

AUTOCLOSE = ConversationSettings(
    autoclose=AutoClosePolicy(
        agent_silence=timedelta(minutes=30),
        customer_silence=timedelta(hours=1),
        survey_enabled=True,
    )
)


def test_the_agent_silence_rule_closes_at_its_deadline_and_not_before() -> None:
    service, worker, clock, _store, sink = build(AUTOCLOSE)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="kakao", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    clock.advance(minutes=29, seconds=59)
    assert worker.tick(TENANT) == []
    clock.advance(seconds=1)
    fires = worker.tick(TENANT)
    assert [f.timer_id for f in fires] == [f"autoclose:{conv.id}"]
    closed = service.get_conversation(TENANT, conv.id)
    assert closed.state is ConversationState.CLOSED
    [close] = events_of(sink, ConversationClosed)
    assert close.rule == "agent_silence"
    assert close.no_agent_reply is True
    [message] = events_of(sink, CloseMessageRequested)
    assert message.deliver is False
    assert len(events_of(sink, SurveyRequested)) == 1


def test_an_automatic_greeting_does_not_stop_the_agent_silence_timer() -> None:
    service, worker, clock, _store, _sink = build(AUTOCLOSE)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    service.record_message(TENANT, conv.id, AuthorKind.AGENT, automatic=True)
    service.record_message(TENANT, conv.id, AuthorKind.BOT)
    clock.advance(minutes=30)
    assert len(worker.tick(TENANT)) == 1


def test_an_agent_reply_moves_the_timer_to_the_customer_silence_rule() -> None:
    service, worker, clock, _store, sink = build(AUTOCLOSE)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    clock.advance(minutes=10)
    service.record_message(TENANT, conv.id, AuthorKind.AGENT, author_id="mina")
    clock.advance(minutes=50)
    assert worker.tick(TENANT) == []  # the old 30-minute deadline has passed: moved
    clock.advance(minutes=10)
    assert len(worker.tick(TENANT)) == 1
    [close] = events_of(sink, ConversationClosed)
    assert close.rule == "customer_silence"
    assert close.no_agent_reply is False
    [message] = events_of(sink, CloseMessageRequested)
    assert message.deliver is True


def test_a_timer_fires_once_even_when_ticked_again() -> None:
    service, worker, clock, store, sink = build(AUTOCLOSE)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    clock.advance(hours=2)
    assert len(worker.tick(TENANT)) == 1
    assert worker.tick(TENANT) == []
    second = TimerWorker(store, clock, sink, worker_id="w2", handlers=service.timer_handlers())
    assert second.tick(TENANT) == []
    assert len(events_of(sink, TimerFired)) == 1


def test_closing_by_hand_cancels_the_auto_close_timer() -> None:
    service, worker, clock, store, _sink = build(AUTOCLOSE)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    service.close(TENANT, conv.id, by="mina")
    clock.advance(hours=2)
    assert worker.tick(TENANT) == []
    assert not store.get_timer(TENANT, f"autoclose:{conv.id}").pending


# -- SLA with business hours -----------------------------------------------------------

NEW_YORK = BusinessCalendar.weekdays("America/New_York", [("09:00", "17:00")])
SLA = ConversationSettings(
    sla=SlaPolicy(
        id="standard",
        rules=[SlaRule(targets=SlaTargets(first_response=H, resolution=8 * H))],
        warn_before=15 * M,
        calendar=NEW_YORK,
        escalation=("page-team-lead",),
    )
)
MONDAY_0930_NY = datetime(2026, 3, 9, 13, 30, tzinfo=UTC)  # EDT begins on 2026-03-08


def test_opening_activates_clocks_with_business_hours_deadlines() -> None:
    service, _worker, _clock, _store, sink = build(SLA)
    service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    first = next(e for e in events_of(sink, SlaActivated) if e.metric == "first_response")
    assert first.due_at == MONDAY_0930_NY  # Friday 16:30 + 1 business hour, across DST


def test_the_sla_warns_then_breaches_exactly_and_escalates() -> None:
    service, worker, clock, _store, sink = build(SLA)
    service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    clock.set(MONDAY_0930_NY - 15 * M - timedelta(microseconds=1))
    assert worker.tick(TENANT) == []
    clock.set(MONDAY_0930_NY - 15 * M)
    worker.tick(TENANT)
    assert [e.metric for e in events_of(sink, SlaWarning)] == ["first_response"]
    clock.set(MONDAY_0930_NY)
    worker.tick(TENANT)
    [breach] = events_of(sink, SlaBreached)
    assert breach.metric == "first_response"
    assert breach.escalation == ("page-team-lead",)
    clock.advance(hours=1)
    worker.tick(TENANT)
    assert len(events_of(sink, SlaBreached)) == 1


def test_an_agent_reply_in_time_fulfils_and_nothing_breaches() -> None:
    service, worker, clock, _store, sink = build(SLA)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    clock.set(MONDAY_0930_NY - 20 * M)
    service.record_message(TENANT, conv.id, AuthorKind.AGENT, author_id="mina")
    clock.set(MONDAY_0930_NY + H)
    worker.tick(TENANT)
    assert events_of(sink, SlaBreached) == []


def test_waiting_pauses_the_sla_and_the_breach_moves_by_the_pause() -> None:
    service, worker, clock, _store, sink = build(SLA)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    clock.set(MONDAY_0930_NY - 30 * M)  # Monday 09:00: 30 business minutes used
    service.set_waiting(TENANT, conv.id, True, by="mina")
    assert {e.metric for e in events_of(sink, SlaPaused)} == {"first_response", "resolution"}
    clock.set(MONDAY_0930_NY + 2 * H)  # Monday 11:30
    assert worker.tick(TENANT) == []
    service.set_waiting(TENANT, conv.id, False, by="mina")
    resumed = next(e for e in events_of(sink, SlaResumed) if e.metric == "first_response")
    assert resumed.due_at == MONDAY_0930_NY + 2 * H + 30 * M


# -- time triggers -----------------------------------------------------------------------

TRIGGERS = ConversationSettings(
    triggers=[
        TimeTrigger(
            id="customer-waiting-12h",
            since=ElapsedSince.CUSTOMER_WAITING,
            after=12 * H,
            action=TriggerAction(kind=TriggerActionKind.NOTIFY, target="team-leads"),
        )
    ]
)


def test_a_time_trigger_fires_once_per_situation() -> None:
    service, worker, clock, _store, sink = build(TRIGGERS)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    clock.advance(hours=12)
    worker.tick(TENANT)
    clock.advance(hours=12)
    worker.tick(TENANT)
    assert [e.target for e in events_of(sink, TimeTriggerFired)] == ["team-leads"]
    service.record_message(TENANT, conv.id, AuthorKind.AGENT, author_id="mina")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    clock.advance(hours=12)
    worker.tick(TENANT)
    assert len(events_of(sink, TimeTriggerFired)) == 2


def test_an_answered_customer_does_not_trigger() -> None:
    service, worker, clock, _store, sink = build(TRIGGERS)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    clock.advance(hours=11)
    service.record_message(TENANT, conv.id, AuthorKind.AGENT, author_id="mina")
    clock.advance(hours=5)
    worker.tick(TENANT)
    assert events_of(sink, TimeTriggerFired) == []


# -- tags --------------------------------------------------------------------------------


def test_room_tags_stay_in_their_room_and_customer_tags_follow_the_customer() -> None:
    service, _worker, clock, _store, _sink = build(ConversationSettings())
    first = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.add_room_tag(TENANT, first.id, "refund", by="mina")
    service.add_customer_tag(TENANT, "kim", "vip", by="mina")
    clock.advance(days=1)
    second = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    assert service.get_conversation(TENANT, second.id).room_tags == ()
    assert service.get_customer(TENANT, "kim").tags == ("vip",)
    refunds = service.query_conversations(TENANT, ConversationQuery(room_tag="refund"))
    assert [c.id for c in refunds] == [first.id]
    assert [c.id for c in service.query_customers(TENANT, CustomerQuery(tag="vip"))] == ["kim"]


def test_a_customer_plan_is_snapshot_into_new_conversations() -> None:
    service, _worker, _clock, _store, _sink = build(ConversationSettings())
    service.set_customer_plan(TENANT, "acme-corp", "enterprise", by="sales")
    conv = service.open_conversation(
        TENANT, customer_id="acme-corp", channel="email", by="x", priority=Priority.HIGH
    )
    assert conv.plan == "enterprise"


# -- overdue tasks through timers, and leases ------------------------------------------------


def test_a_task_becomes_overdue_by_timer_just_after_its_due_date() -> None:
    store = MemoryStore()
    clock = TestClock(FRIDAY_1630_NY)
    sink = RecordingSink()
    tasks = TaskService(store, clock, sink)
    worker = TimerWorker(store, clock, sink, worker_id="w", handlers=tasks.timer_handlers())
    tasks.create_flow(TENANT, default_flow("order_issue"), by="admin")
    task = tasks.create_task(
        TENANT, flow_id="order_issue", title="Refund", by="mina", due_at=FRIDAY_1630_NY + H
    )
    clock.advance(hours=1)
    assert worker.tick(TENANT) == []  # exactly at the due date: not yet passed
    clock.advance(timedelta(microseconds=1))
    assert len(worker.tick(TENANT)) == 1
    assert tasks.get_task(TENANT, task.id).overdue_marked_at == clock.now()
    assert len(events_of(sink, TaskOverdue)) == 1


def test_moving_the_due_date_moves_the_overdue_timer() -> None:
    store = MemoryStore()
    clock = TestClock(FRIDAY_1630_NY)
    tasks = TaskService(store, clock)
    worker = TimerWorker(store, clock, worker_id="w", handlers=tasks.timer_handlers())
    tasks.create_flow(TENANT, default_flow("order_issue"), by="admin")
    task = tasks.create_task(TENANT, flow_id="order_issue", title="x", by="a",
                             due_at=FRIDAY_1630_NY + H)
    tasks.update_task(TENANT, task.id, by="a", due_at=FRIDAY_1630_NY + 3 * H)
    clock.advance(hours=2)
    assert worker.tick(TENANT) == []
    clock.advance(hours=2)
    assert len(worker.tick(TENANT)) == 1


def test_a_worker_that_outlived_its_lease_cannot_fire_the_timer_again() -> None:
    service, _worker, clock, store, sink = build(AUTOCLOSE)
    conv = service.open_conversation(TENANT, customer_id="kim", channel="web", by="kim")
    service.record_message(TENANT, conv.id, AuthorKind.CUSTOMER)
    clock.advance(hours=1)
    [stale] = store.claim_timers(TENANT, clock.now(), worker="paused", lease=M)
    clock.advance(minutes=2)  # the paused worker's lease expired
    fresh = TimerWorker(store, clock, sink, worker_id="fresh", handlers=service.timer_handlers())
    assert len(fresh.tick(TENANT)) == 1
    from cxflow import ChangeSet, ConflictError

    with pytest.raises(ConflictError):
        store.commit(TENANT, ChangeSet(timers=(stale.fired(clock.now()),)))
    assert len(events_of(sink, ConversationClosed)) == 1


# -- task SLA: the resolution clock pauses in waiting statuses ------------------------------

TASK_SLA = SlaPolicy(
    id="tasks",
    rules=[SlaRule(targets=SlaTargets(resolution=4 * H))],
    warn_before=30 * M,
    escalation=("notify-owner",),
)


def task_setup() -> tuple[TaskService, TimerWorker, TestClock, RecordingSink]:
    store = MemoryStore()
    clock = TestClock(FRIDAY_1630_NY)
    sink = RecordingSink()
    tasks = TaskService(store, clock, sink, sla=TASK_SLA)
    worker = TimerWorker(store, clock, sink, worker_id="w", handlers=tasks.timer_handlers())
    tasks.create_flow(TENANT, default_flow("order_issue"), by="admin")
    return tasks, worker, clock, sink


def sla_changes(sink: RecordingSink) -> list[str]:
    """The task SLA events published, by type (``sla.`` left off)."""
    from cxflow.events import SlaEvent

    return [
        e.type.removeprefix("sla.") for e in events_of(sink, SlaEvent) if e.subject == "task"
    ]


def test_a_task_sla_starts_at_creation_and_breaches_with_escalation() -> None:
    tasks, worker, clock, sink = task_setup()
    tasks.create_task(TENANT, flow_id="order_issue", title="Refund", by="mina")
    assert sla_changes(sink) == ["activated"]
    clock.advance(hours=3, minutes=30)
    worker.tick(TENANT)
    clock.advance(minutes=30)
    worker.tick(TENANT)
    assert sla_changes(sink) == ["activated", "warning", "breached"]
    from cxflow.events import SlaBreached

    breach = events_of(sink, SlaBreached)[-1]
    assert (breach.subject, breach.metric, breach.escalation) == (
        "task", "resolution", ("notify-owner",)
    )


def test_a_task_sla_pauses_while_the_task_waits_and_resumes_with_the_rest() -> None:
    tasks, worker, clock, sink = task_setup()
    task = tasks.create_task(TENANT, flow_id="order_issue", title="Refund", by="mina")
    clock.advance(hours=1)
    tasks.move_task(TENANT, task.id, "waiting_customer", by="mina")
    clock.advance(hours=10)
    assert worker.tick(TENANT) == []
    tasks.move_task(TENANT, task.id, "investigating", by="mina")
    assert sla_changes(sink) == ["activated", "paused", "resumed"]
    resumed = tasks.get_task(TENANT, task.id).sla[0]
    assert resumed.due_at == clock.now() + 3 * H


def test_completing_fulfils_the_task_sla_and_no_breach_follows() -> None:
    tasks, worker, clock, sink = task_setup()
    task = tasks.create_task(TENANT, flow_id="order_issue", title="Refund", by="mina")
    for todo in task.todos:
        tasks.check_todo(TENANT, task.id, todo.id, by="mina")
    tasks.move_task(TENANT, task.id, "cancelled", by="mina")
    clock.advance(hours=8)
    worker.tick(TENANT)
    assert sla_changes(sink) == ["activated", "fulfilled"]


def test_reopening_a_completed_task_resumes_its_sla() -> None:
    tasks, _worker, clock, sink = task_setup()
    task = tasks.create_task(TENANT, flow_id="order_issue", title="Refund", by="mina")
    for todo in task.todos:
        tasks.check_todo(TENANT, task.id, todo.id, by="mina")
    clock.advance(hours=1)
    tasks.move_task(TENANT, task.id, "cancelled", by="mina")
    clock.advance(hours=5)
    tasks.move_task(TENANT, task.id, "investigating", by="mina")
    assert sla_changes(sink) == ["activated", "fulfilled", "resumed"]
    assert tasks.get_task(TENANT, task.id).sla[0].due_at == clock.now() + 3 * H


def test_a_flow_edit_that_relocates_a_task_into_completion_fulfils_its_sla() -> None:
    tasks, worker, clock, sink = task_setup()
    task = tasks.create_task(TENANT, flow_id="order_issue", title="Refund", by="mina")
    tasks.move_task(TENANT, task.id, "fixing", by="mina")
    flow = tasks.get_flow(TENANT, "order_issue")
    edited = flow.revise(statuses=[s for s in flow.statuses if s.key != "fixing"])
    tasks.edit_flow(TENANT, edited, by="admin", relocate={"fixing": "resolved"})
    assert sla_changes(sink) == ["activated", "fulfilled"]
    clock.advance(hours=8)
    worker.tick(TENANT)
    assert sla_changes(sink) == ["activated", "fulfilled"]
