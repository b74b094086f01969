"""The engine facade on the memory store: settings, sessions, routing on
open, the assignment reactor's rules, and the boundary of the calls it adds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cxflow import (
    Agent,
    AssignmentSettings,
    AuthorKind,
    AutoClosePolicy,
    BusinessCalendar,
    ConflictError,
    ConversationService,
    ConversationSettings,
    Engine,
    MemoryStore,
    Presence,
    SlaPolicy,
    SlaRule,
    SlaTargets,
    TenantSettings,
    TestClock,
    ValidationError,
)
from cxflow.app.reactors.assignment import AssignmentDelta, delta
from cxflow.conversations import commands
from cxflow.conversations.model import Customer
from cxflow.events import SlaActivated
from cxflow.storage.protocols import ChangeSet

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
ROUTED = TenantSettings(assignment=AssignmentSettings())


def session(settings: TenantSettings = ROUTED, clock: TestClock | None = None):  # type: ignore[no-untyped-def]
    engine = Engine(settings=settings, clock=clock or TestClock(START))
    return engine.session(MemoryStore())


# -- the reactor's reading of a change ------------------------------------------


def opened() -> commands.Result:
    return commands.open_conversation(
        conversation_id="c1", channel="chat", customer=Customer(id="u1"), at=START, by="widget"
    )


def test_closing_is_a_close_whatever_else_changed() -> None:
    before, _ = opened()
    after, _ = commands.close(before, at=START, by="mina")
    assert delta(before, after) == AssignmentDelta(closed=True)


def test_a_counted_agent_reply_answers_but_a_bot_or_automatic_one_does_not() -> None:
    before, _ = opened()
    replied, _ = commands.record_message(before, AuthorKind.AGENT, at=START, author_id="mina")
    assert delta(before, replied).answered
    for kind, automatic in ((AuthorKind.BOT, False), (AuthorKind.AGENT, True)):
        other, _ = commands.record_message(before, kind, at=START, automatic=automatic)
        assert not delta(before, other).answered


def test_a_customer_message_means_nothing_to_assignment() -> None:
    before, _ = opened()
    after, _ = commands.record_message(before, AuthorKind.CUSTOMER, at=START)
    assert delta(before, after) == AssignmentDelta()


def test_an_assignee_set_by_hand_is_a_handoff() -> None:
    before, _ = opened()
    after, _ = commands.assign(before, "joon", at=START, by="lead")
    assert delta(before, after) == AssignmentDelta(handoff=True)


# -- routing on open --------------------------------------------------------------


def test_a_tenant_without_assignment_settings_does_not_route() -> None:
    s = session(TenantSettings())
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    assert s.store.list_routings(TENANT) == []
    with pytest.raises(ValidationError) as caught:
        s.conversations.open_conversation(
            TENANT, customer_id="u1", channel="chat", by="w", route=True
        )
    assert caught.value.field == "route"


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "10"])
def test_an_engine_refuses_a_cache_size_that_is_not_a_positive_int(size: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Engine(cached_records=size)  # type: ignore[arg-type]
    assert caught.value.field == "cached_records"


def test_an_engine_keeps_as_many_snapshots_as_it_is_told() -> None:
    from cxflow.app.records import RecordCache
    from cxflow.testing import sample_task

    cache = Engine(cached_records=2).records
    assert isinstance(cache, RecordCache)
    for n in range(3):
        cache.put("db", TENANT, sample_task(task_id=f"t{n}"))
    assert len(cache) == 2


def test_a_hand_built_service_refuses_to_route() -> None:
    service = ConversationService(MemoryStore(), TestClock(START))
    with pytest.raises(ValidationError, match="engine"):
        service.open_conversation(TENANT, customer_id="u1", channel="chat", by="w", route=True)


def test_routing_takes_the_conversations_fields_and_the_callers_needs() -> None:
    s = session()
    s.conversations.set_customer_plan(TENANT, "u1", "enterprise", by="crm")
    s.conversations.open_conversation(
        TENANT, customer_id="u1", channel="email", by="w", conversation_id="c1",
        skills=("billing",), group="billing", vip=True,
    )
    routing = s.assignment.get_routing(TENANT, "c1")
    assert (routing.channel, routing.plan, routing.skills, routing.group, routing.vip) == (
        "email", "enterprise", ("billing",), "billing", True
    )
    assert routing.arrived_at == START


def test_an_open_with_an_assignee_is_not_routed() -> None:
    s = session()
    c = s.conversations.open_conversation(
        TENANT, customer_id="u1", channel="chat", by="w", assignee="mina"
    )
    assert c.assignee == "mina"
    assert s.store.list_routings(TENANT) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"skills": "billing"}, "skills"),
        ({"route": "yes"}, "route"),
        ({"route": True, "assignee": "mina"}, "assignee"),
    ],
)
def test_bad_routing_arguments_are_refused_with_nothing_written(
    fields: dict[str, object], field: str
) -> None:
    s = session()
    with pytest.raises(ValidationError) as caught:
        s.conversations.open_conversation(
            TENANT, customer_id="u1", channel="chat", by="w", **fields  # type: ignore[arg-type]
        )
    assert caught.value.field == field
    assert s.store.read_events(TENANT) == []


def test_opening_an_existing_id_is_a_conflict_at_once() -> None:
    s = session()
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    with pytest.raises(ConflictError, match="already exists"):
        s.conversations.open_conversation(TENANT, customer_id="u2", channel="chat", by="w",
                                          conversation_id="c1")


def test_a_conversation_that_is_not_routed_closes_without_touching_assignment() -> None:
    s = session()
    s.conversations.open_conversation(
        TENANT, customer_id="u1", channel="chat", by="w", conversation_id="c1", route=False
    )
    s.conversations.close(TENANT, "c1", by="mina")
    assert s.store.routing_version(TENANT) == 0


def test_an_agent_going_offline_sends_conversations_back_and_clears_assignees() -> None:
    s = session()
    s.assignment.save_agent(TENANT, Agent(id="mina", presence=Presence.ONLINE), by="mina")
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    assert s.conversations.get_conversation(TENANT, "c1").assignee == "mina"
    s.assignment.set_presence(TENANT, "mina", Presence.OFFLINE, by="mina")
    assert s.conversations.get_conversation(TENANT, "c1").assignee is None


def test_sessions_share_the_engines_schedulers() -> None:
    engine = Engine(settings=ROUTED, clock=TestClock(START))
    store = MemoryStore()
    first = engine.session(store)
    first.assignment.save_agent(TENANT, Agent(id="mina", presence=Presence.ONLINE), by="mina")
    assert engine.session(store).assignment.scheduler(TENANT) is first.assignment.scheduler(
        TENANT
    )


def test_settings_that_are_not_tenant_settings_are_refused() -> None:
    with pytest.raises(ValidationError):
        Engine(settings=ConversationSettings())  # type: ignore[arg-type]
    engine = Engine(settings=lambda tenant: ConversationSettings())  # type: ignore[arg-type,return-value]
    with pytest.raises(ValidationError):
        engine.session(MemoryStore()).conversations.open_conversation(
            TENANT, customer_id="u1", channel="chat", by="w"
        )


# -- messages -------------------------------------------------------------------


def test_a_message_from_the_future_is_refused() -> None:
    clock = TestClock(START)
    s = session(clock=clock)
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    with pytest.raises(ValidationError) as caught:
        s.conversations.record_message(
            TENANT, "c1", AuthorKind.CUSTOMER, at=START + timedelta(days=3)
        )
    assert caught.value.field == "at"
    # A little clock drift between host machines is fine.
    s.conversations.record_message(
        TENANT, "c1", AuthorKind.CUSTOMER, at=START + timedelta(seconds=10)
    )


def test_sla_durations_keep_every_microsecond() -> None:
    target = timedelta(hours=1, microseconds=249)
    policy = SlaPolicy(
        id="exact",
        calendar=BusinessCalendar.always("UTC"),
        rules=[SlaRule(targets=SlaTargets(first_response=target))],
    )
    settings = TenantSettings(conversations=ConversationSettings(sla=policy))
    s = session(settings)
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    s.conversations.record_message(TENANT, "c1", AuthorKind.CUSTOMER)
    activated = [e.event for e in s.store.read_events(TENANT) if isinstance(e.event, SlaActivated)]
    assert [event.target_us for event in activated] == [3_600_000_249]


# -- SLA warnings after downtime ------------------------------------------------


def waiting_with_sla(clock: TestClock):  # type: ignore[no-untyped-def]
    """A session whose tenant has a 1-hour first-response SLA warned 15
    minutes ahead, with conversation c1 waiting for its first reply."""
    policy = SlaPolicy(
        id="std",
        calendar=BusinessCalendar.always("UTC"),
        rules=[SlaRule(targets=SlaTargets(first_response=timedelta(hours=1)))],
        warn_before=timedelta(minutes=15),
    )
    s = session(TenantSettings(conversations=ConversationSettings(sla=policy)), clock)
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    s.conversations.record_message(TENANT, "c1", AuthorKind.CUSTOMER)
    return s


def test_a_tick_after_downtime_gives_the_missed_warning_late_then_the_breach() -> None:
    clock = TestClock(START)
    s = waiting_with_sla(clock)
    clock.advance(hours=3)  # the workers were down across the warning and the breach
    s.tick(TENANT)
    sla = [e.event for e in s.store.read_events(TENANT, limit=100) if e.event.type in
           ("sla.warning", "sla.breached")]
    assert [(event.type, getattr(event, "late", None)) for event in sla] == [
        ("sla.warning", True), ("sla.breached", None)
    ]
    clock.advance(hours=1)
    assert s.tick(TENANT) == []  # warned once, breached once


def test_a_warning_on_time_is_not_late_and_not_repeated_at_the_breach() -> None:
    clock = TestClock(START)
    s = waiting_with_sla(clock)
    clock.advance(minutes=50)
    s.tick(TENANT)
    clock.advance(minutes=20)
    s.tick(TENANT)
    sla = [e.event for e in s.store.read_events(TENANT, limit=100) if e.event.type in
           ("sla.warning", "sla.breached")]
    assert [(event.type, getattr(event, "late", None)) for event in sla] == [
        ("sla.warning", False), ("sla.breached", None)
    ]


def test_a_task_sla_warning_missed_by_downtime_comes_late_with_the_breach() -> None:
    from cxflow import default_flow

    clock = TestClock(START)
    policy = SlaPolicy(
        id="task",
        calendar=BusinessCalendar.always("UTC"),
        rules=[SlaRule(targets=SlaTargets(resolution=timedelta(hours=4)))],
        warn_before=timedelta(minutes=30),
    )
    s = session(TenantSettings(task_sla=policy), clock)
    s.tasks.create_flow(TENANT, default_flow("order_issue"), by="admin")
    s.tasks.create_task(TENANT, flow_id="order_issue", title="Refund", by="mina")
    clock.advance(hours=5)
    s.tick(TENANT)
    changes = [
        (e.event.type, getattr(e.event, "late", None), e.event.subject)
        for e in s.store.read_events(TENANT, limit=100)
        if e.event.type.startswith("sla.")
    ]
    assert changes == [
        ("sla.activated", None, "task"), ("sla.warning", True, "task"),
        ("sla.breached", None, "task"),
    ]


# -- a timer claim racing a caller's write --------------------------------------


class ClaimsFirst(MemoryStore):
    """A memory store on which a worker claims the due timers just before the
    next commit lands (once): the race between a claim and a caller's write."""

    def __init__(self, clock: TestClock) -> None:
        super().__init__()
        self.clock = clock
        self.armed = False
        self.claimed: list[str] = []

    def commit(self, tenant: str, changes: ChangeSet) -> None:
        if self.armed:
            self.armed = False
            self.claimed += [timer.kind for timer in self.claim_timers(
                tenant, self.clock.now(), worker="w2", lease=timedelta(minutes=1)
            )]
        super().commit(tenant, changes)


@pytest.mark.parametrize("call", ["close", "answered", "assign"])
def test_a_call_racing_a_workers_claim_of_its_timers_succeeds(call: str) -> None:
    """A worker claims the conversation's no-answer timer between the call's
    reads and its commit (issue 10: close, answered and assign failed with
    ConflictError): the call is retried on fresh reads and lands."""
    clock = TestClock(START)
    settings = TenantSettings(
        conversations=ConversationSettings(
            autoclose=AutoClosePolicy(customer_silence=timedelta(minutes=10))
        ),
        assignment=AssignmentSettings(no_answer_after=timedelta(minutes=2)),
    )
    store = ClaimsFirst(clock)
    s = Engine(settings=settings, clock=clock).session(store)
    s.assignment.save_agent(TENANT, Agent(id="mina", presence=Presence.ONLINE), by="mina")
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    s.assignment.save_agent(TENANT, Agent(id="joon", presence=Presence.ONLINE), by="joon")
    clock.advance(minutes=3)
    store.armed = True
    if call == "close":
        closed = s.conversations.close(TENANT, "c1", by="mina")
        assert closed.state.value == "closed"
        assert store.list_routings(TENANT) == []
    elif call == "answered":
        assert s.assignment.answered(TENANT, "c1", by="mina").answered
    else:
        s.assignment.assign(TENANT, "c1", "joon", by="lead")
        assert store.get_routing(TENANT, "c1").agent == "joon"
    assert store.claimed == ["assignment.no_answer"]


# -- reopening under an engine that routes ----------------------------------------


def _two_agents_one_slot_each() -> tuple[object, TestClock]:
    clock = TestClock(START)
    s = session(clock=clock)
    for agent in ("mina", "joon"):
        s.assignment.save_agent(
            TENANT, Agent(id=agent, presence=Presence.ONLINE, capacity=1), by=agent
        )
    return s, clock


def test_a_reopened_conversation_is_routed_again_and_holds_a_slot() -> None:
    s, clock = _two_agents_one_slot_each()
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1", skills=())
    first = s.conversations.get_conversation(TENANT, "c1").assignee
    s.conversations.close(TENANT, "c1", by=first)
    assert s.store.list_routings(TENANT) == []
    clock.advance(minutes=5)
    reopened = s.conversations.reopen(TENANT, "c1", by="u1", vip=True)
    routing = s.assignment.get_routing(TENANT, "c1")
    assert routing.agent == reopened.assignee is not None
    assert (routing.arrived_at, routing.vip) == (clock.now(), True)
    # It takes a slot: with both agents holding one, the next one waits.
    s.conversations.open_conversation(TENANT, customer_id="u2", channel="chat", by="w",
                                      conversation_id="c2")
    s.conversations.open_conversation(TENANT, customer_id="u3", channel="chat", by="w",
                                      conversation_id="c3")
    assert s.conversations.get_conversation(TENANT, "c3").assignee is None
    assert s.assignment.get_routing(TENANT, "c3").waiting


def test_a_reopened_conversation_with_no_free_agent_waits_and_loses_its_old_assignee() -> None:
    s, _clock = _two_agents_one_slot_each()
    for cid in ("c1", "c2"):
        s.conversations.open_conversation(TENANT, customer_id=cid, channel="chat", by="w",
                                          conversation_id=cid)
    held_by = s.conversations.get_conversation(TENANT, "c1").assignee
    s.conversations.close(TENANT, "c1", by="agent")
    s.conversations.open_conversation(TENANT, customer_id="u3", channel="chat", by="w",
                                      conversation_id="c3")  # takes the freed slot
    reopened = s.conversations.reopen(TENANT, "c1", by="u1")
    assert held_by is not None
    assert reopened.assignee is None
    assert s.assignment.get_routing(TENANT, "c1").waiting
    s.conversations.close(TENANT, "c3", by="agent")  # a slot frees: c1 is next
    assert s.conversations.get_conversation(TENANT, "c1").assignee is not None


def test_reopen_with_route_false_keeps_the_assignee_and_stays_unrouted() -> None:
    s, _clock = _two_agents_one_slot_each()
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    assignee = s.conversations.get_conversation(TENANT, "c1").assignee
    s.conversations.close(TENANT, "c1", by="agent")
    reopened = s.conversations.reopen(TENANT, "c1", by="u1", route=False)
    assert reopened.assignee == assignee
    assert s.store.list_routings(TENANT) == []


def test_reopening_an_open_conversation_routes_nothing_and_bad_arguments_are_refused() -> None:
    s, _clock = _two_agents_one_slot_each()
    s.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                      conversation_id="c1")
    version = s.store.routing_version(TENANT)
    s.conversations.reopen(TENANT, "c1", by="u1")
    assert s.store.routing_version(TENANT) == version
    s.conversations.close(TENANT, "c1", by="agent")
    events = s.store.read_events(TENANT, 0, 1000)
    for fields, field in (({"route": "yes"}, "route"), ({"skills": "billing"}, "skills")):
        with pytest.raises(ValidationError) as caught:
            s.conversations.reopen(TENANT, "c1", by="u1", **fields)  # type: ignore[arg-type]
        assert caught.value.field == field
    assert s.store.read_events(TENANT, 0, 1000) == events
    plain = session(TenantSettings())
    plain.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                          conversation_id="c1")
    plain.conversations.close(TENANT, "c1", by="agent")
    with pytest.raises(ValidationError) as caught:
        plain.conversations.reopen(TENANT, "c1", by="u1", route=True)
    assert caught.value.field == "route"


# -- a process whose cached scheduler is behind the store -----------------------------


def _two_processes():  # type: ignore[no-untyped-def]
    """Two engines (two host processes) on one store, each with a warm scheduler."""
    clock = TestClock(START)
    settings = TenantSettings(
        assignment=AssignmentSettings(no_answer_after=timedelta(minutes=5))
    )
    store = MemoryStore()
    one = Engine(settings=settings, clock=clock).session(store)
    two = Engine(settings=settings, clock=clock).session(store)
    one.assignment.save_agent(TENANT, Agent(id="mina", presence=Presence.ONLINE), by="mina")
    two.assignment.scheduler(TENANT)  # warm, at the same version
    return one, two, store


def test_a_reply_recorded_by_a_process_that_is_behind_still_answers() -> None:
    one, two, store = _two_processes()
    one.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                        conversation_id="c1")
    # Process two never saw c1 routed; the reply must still answer it.
    two.conversations.record_message(TENANT, "c1", AuthorKind.AGENT, author_id="mina")
    assert store.get_routing(TENANT, "c1").answered
    assert two.assignment.scheduler(TENANT).holder("c1") == "mina"


def test_a_decision_by_a_process_that_is_behind_is_made_on_the_stores_state() -> None:
    one, two, store = _two_processes()
    one.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                        conversation_id="c1")
    # mina's one slot is taken in the store; process two's scheduler thinks it free.
    two.conversations.open_conversation(TENANT, customer_id="u2", channel="chat", by="w",
                                        conversation_id="c2")
    assert store.get_routing(TENANT, "c2").waiting
    held = [r.conversation_id for r in store.list_routings(TENANT) if r.agent == "mina"]
    assert held == ["c1"]


def test_a_call_refused_by_a_scheduler_that_is_behind_is_tried_on_the_stores_state() -> None:
    one, two, _store = _two_processes()
    one.conversations.open_conversation(TENANT, customer_id="u1", channel="chat", by="w",
                                        conversation_id="c1")
    # Unknown to process two's cached scheduler: it checks the store before refusing.
    routing = two.assignment.answered(TENANT, "c1", by="mina")
    assert routing.answered
    one.conversations.open_conversation(TENANT, customer_id="u2", channel="chat", by="w",
                                        conversation_id="c2")
    with pytest.raises(ValidationError, match="waiting"):  # refused on the store's state too
        two.assignment.answered(TENANT, "c2", by="mina")
