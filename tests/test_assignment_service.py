"""AssignmentService: decisions are persisted, events published, the scheduler
rebuilt from the store, races fenced by the routing version, and unanswered
conversations taken back by the no-answer timer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from cxflow import (
    Agent,
    AssignmentService,
    AssignmentSettings,
    ConflictError,
    ConversationService,
    MemoryStore,
    NotFound,
    Presence,
    RoundRobin,
    Routing,
    SkillBased,
    TestClock,
    ValidationError,
)
from cxflow.app.assignment import NO_ANSWER_TIMER_KIND, no_answer_timer_id
from cxflow.app.worker import TimerWorker
from cxflow.events import (
    AgentAssigned,
    AgentChanged,
    AssignmentFinished,
    ConversationAssigned,
    ConversationQueued,
)
from cxflow.testing import RecordingSink

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TENANT = "acme"


@pytest.fixture
def clock() -> TestClock:
    return TestClock(T0)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def make_service(
    store: MemoryStore, clock: TestClock, **settings: object
) -> tuple[AssignmentService, RecordingSink]:
    sink = RecordingSink()
    service = AssignmentService(
        store, clock, sink, settings=AssignmentSettings(**settings)  # type: ignore[arg-type]
    )
    return service, sink


def agent(agent_id: str, **fields: object) -> Agent:
    fields.setdefault("presence", Presence.ONLINE)
    return Agent(id=agent_id, **fields)  # type: ignore[arg-type]


def routing(cid: str, at: datetime = T0, **fields: object) -> Routing:
    return Routing(conversation_id=cid, channel="chat", arrived_at=at, **fields)  # type: ignore[arg-type]


def events_of(sink: RecordingSink) -> list[object]:
    return list(sink.events())


def test_route_assigns_and_persists_the_decision(store: MemoryStore, clock: TestClock) -> None:
    service, sink = make_service(store, clock)
    service.save_agent(TENANT, agent("mina", capacity=2), by="admin")
    clock.advance(minutes=1)
    decisions = service.route(TENANT, routing("c1"), by="widget")
    assert [(d.conversation_id, d.agent_id, d.reason) for d in decisions] == [
        ("c1", "mina", "auto")
    ]
    stored = store.get_routing(TENANT, "c1")
    assert stored.agent == "mina"
    assert stored.assigned_at == T0 + timedelta(minutes=1)
    assert stored.version == 1
    assert store.get_agent(TENANT, "mina").turn == 1
    assert store.get_agent(TENANT, "mina").version == 2
    assert store.routing_version(TENANT) == 2
    kinds = [type(e) for e in events_of(sink)]
    assert kinds == [AgentChanged, ConversationQueued, AgentAssigned]
    assigned = events_of(sink)[-1]
    assert isinstance(assigned, AgentAssigned)
    assert assigned.strategy == "least-load"
    assert assigned.waited_us == 60_000_000
    assert assigned.by == "cxflow"


def test_events_reach_the_outbox_in_the_same_commit(store: MemoryStore, clock: TestClock) -> None:
    service, sink = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    assert [s.event for s in store.read_events(TENANT)] == events_of(sink)


def test_close_finishes_the_routing_and_drains_the_queue(
    store: MemoryStore, clock: TestClock
) -> None:
    service, sink = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    service.route(TENANT, routing("c2", T0 + timedelta(seconds=1)), by="widget")
    assert store.get_routing(TENANT, "c2").agent is None
    decisions = service.close(TENANT, "c1", by="mina")
    assert [(d.conversation_id, d.agent_id) for d in decisions] == [("c2", "mina")]
    with pytest.raises(NotFound):
        store.get_routing(TENANT, "c1")
    assert store.get_routing(TENANT, "c2").agent == "mina"
    finished = [e for e in events_of(sink) if isinstance(e, AssignmentFinished)]
    assert [(e.conversation_id, e.agent_id) for e in finished] == [("c1", "mina")]


def test_offline_agent_conversations_return_keeping_arrival(
    store: MemoryStore, clock: TestClock
) -> None:
    service, sink = make_service(store, clock)
    service.save_agent(TENANT, agent("mina", capacity=2), by="admin")
    service.save_agent(TENANT, agent("joon", presence=Presence.OFFLINE), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    clock.advance(minutes=5)
    decisions = service.set_presence(TENANT, "mina", Presence.OFFLINE, by="mina")
    assert [(d.conversation_id, d.agent_id, d.reason) for d in decisions] == [
        ("c1", None, "agent_offline")
    ]
    stored = store.get_routing(TENANT, "c1")
    assert stored.agent is None
    assert stored.arrived_at == T0
    assert stored.declined == ("mina",)
    queued = [e for e in events_of(sink) if isinstance(e, ConversationQueued)]
    assert queued[-1].reason == "agent_offline"
    assert queued[-1].previous_agent == "mina"
    decisions = service.set_presence(TENANT, "joon", Presence.ONLINE, by="joon")
    assert [(d.conversation_id, d.agent_id) for d in decisions] == [("c1", "joon")]


def test_manual_assign_beyond_capacity_needs_overflow(store: MemoryStore, clock: TestClock) -> None:
    service, sink = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    service.route(TENANT, routing("c2"), by="widget")
    with pytest.raises(ValidationError, match="overflow"):
        service.assign(TENANT, "c2", "mina", by="lead")
    assert store.get_routing(TENANT, "c2").agent is None
    decisions = service.assign(TENANT, "c2", "mina", by="lead", overflow=True)
    assert decisions[0].overflow
    stored = store.get_routing(TENANT, "c2")
    assert (stored.agent, stored.overflow) == ("mina", True)
    assigned = [e for e in events_of(sink) if isinstance(e, AgentAssigned)][-1]
    assert (assigned.reason, assigned.overflow, assigned.by) == ("manual", True, "lead")


def test_transfer_frees_the_previous_agent(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.save_agent(TENANT, agent("joon"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    holder = store.get_routing(TENANT, "c1").agent
    other = "joon" if holder == "mina" else "mina"
    service.route(TENANT, routing("c2", T0 + timedelta(seconds=1)), by="widget")
    service.route(TENANT, routing("c3", T0 + timedelta(seconds=2)), by="widget")
    decisions = service.assign(TENANT, "c1", other, by="lead", overflow=True)
    assert decisions[0].reason == "transfer"
    assert decisions[0].previous_agent == holder
    # the freed slot takes the oldest waiting conversation
    assert [(d.conversation_id, d.agent_id) for d in decisions[1:]] == [("c3", holder)]


def test_requeue_sends_back_without_declining(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    decisions = service.requeue(TENANT, "c1", by="lead")
    # mina is the only agent, free again: it comes straight back
    assert [(d.agent_id, d.reason) for d in decisions] == [(None, "unassigned"), ("mina", "auto")]
    assert store.get_routing(TENANT, "c1").declined == ()


def test_a_new_service_rebuilds_the_same_scheduler(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock, strategy=RoundRobin())
    for name in ("a", "b", "c"):
        service.save_agent(TENANT, agent(name, capacity=2), by="admin")
    for i in range(8):
        service.route(TENANT, routing(f"c{i}", T0 + timedelta(seconds=i)), by="widget")
    restarted, _ = make_service(store, clock, strategy=RoundRobin())
    live = service.scheduler(TENANT)
    rebuilt = restarted.scheduler(TENANT)
    assert rebuilt.waiting() == live.waiting()
    for name in ("a", "b", "c"):
        assert rebuilt.held_by(name) == live.held_by(name)
        assert rebuilt.agent_record(name).turn == live.agent_record(name).turn
    # both take the same next decision
    clock.advance(minutes=1)
    assert restarted.close(TENANT, "c0", by="a") == live.close("c0", at=clock.now())


def test_two_services_on_one_store_never_double_assign(
    store: MemoryStore, clock: TestClock
) -> None:
    first, _ = make_service(store, clock)
    second, _ = make_service(store, clock)
    first.save_agent(TENANT, agent("mina"), by="admin")
    second.route(TENANT, routing("c1"), by="widget")  # second rebuilds: it sees mina
    first.route(TENANT, routing("c2"), by="widget")  # first is behind: rebuilds, c2 waits
    assert store.get_routing(TENANT, "c1").agent == "mina"
    assert store.get_routing(TENANT, "c2").agent is None
    assert first.scheduler(TENANT).held_by("mina") == {"c1"}
    assert second.scheduler(TENANT).held_by("mina") == {"c1"}


def test_a_lost_race_is_rerun_on_fresh_state(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    racer, _ = make_service(store, clock)
    real_commit = store.commit
    raced = []

    def commit_after_a_racer(tenant: str, changes: object) -> None:
        if not raced:
            raced.append(True)
            racer.route(TENANT, routing("c0"), by="other-process")
        real_commit(tenant, changes)  # type: ignore[arg-type]

    store.commit = commit_after_a_racer  # type: ignore[method-assign]
    decisions = service.route(TENANT, routing("c1", T0 + timedelta(seconds=1)), by="widget")
    assert decisions == []  # mina took c0 in the other process; c1 waits
    assert store.get_routing(TENANT, "c0").agent == "mina"
    assert store.get_routing(TENANT, "c1").agent is None


def test_save_agent_checks_the_version_it_was_made_on(
    store: MemoryStore, clock: TestClock
) -> None:
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin", expected_version=0)
    with pytest.raises(ConflictError):
        service.save_agent(TENANT, agent("mina"), by="admin", expected_version=0)
    service.route(TENANT, routing("c1"), by="widget")  # the assignment moves mina to v2
    stored = store.get_agent(TENANT, "mina")
    assert stored.version == 2
    with pytest.raises(ConflictError):
        service.save_agent(TENANT, attrs.evolve(stored, capacity=3), by="admin", expected_version=1)
    decisions = service.save_agent(
        TENANT, attrs.evolve(stored, capacity=3), by="admin", expected_version=2
    )
    assert decisions == []
    assert store.get_agent(TENANT, "mina").capacity == 3
    assert store.get_agent(TENANT, "mina").turn == 1  # the scheduler's, kept


def test_bad_input_writes_nothing(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    before = store.routing_version(TENANT)
    with pytest.raises(NotFound):
        service.close(TENANT, "nope", by="x")
    with pytest.raises(NotFound):
        service.set_presence(TENANT, "ghost", Presence.ONLINE, by="x")
    with pytest.raises(ValidationError):
        service.route("", routing("c1"), by="x")
    with pytest.raises(ValidationError):
        service.route(TENANT, routing("c1"), by="")
    service.route(TENANT, routing("c1"), by="widget")
    with pytest.raises(ConflictError):
        service.route(TENANT, routing("c1"), by="widget")
    assert store.routing_version(TENANT) == before + 1


def test_tenants_are_isolated(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route("other", routing("c1"), by="widget")
    assert store.get_routing("other", "c1").agent is None  # acme's mina is not other's
    with pytest.raises(NotFound):
        service.assign("other", "c1", "mina", by="lead")


def test_group_strategy_is_named_in_the_event(store: MemoryStore, clock: TestClock) -> None:
    service, sink = make_service(store, clock, group_strategies={"vip": SkillBased()})
    service.save_agent(TENANT, agent("mina", groups=("vip",), skills={"billing": 2}), by="a")
    service.route(TENANT, routing("c1", group="vip", skills=("billing",)), by="widget")
    assigned = [e for e in events_of(sink) if isinstance(e, AgentAssigned)]
    assert assigned[0].strategy == "skill-based"


def test_explain_names_the_winner(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina", skills={"billing": 3}), by="admin")
    service.save_agent(TENANT, agent("joon"), by="admin")
    service.route(TENANT, routing("c1", skills=("billing",)), by="widget")
    explanation = service.explain(TENANT, "c1")
    assert explanation.holder == "mina"
    assert explanation.winner == "mina"
    ruled_out = {c.agent_id: c.reasons for c in explanation.candidates if not c.eligible}
    assert ruled_out == {"joon": ("missing skill billing",)}


# -- the no-answer timer ---------------------------------------------------------------


def test_no_answer_needs_a_timer_store() -> None:
    class RoutingOnly:
        def __init__(self) -> None:
            self._inner = MemoryStore()

        def __getattr__(self, name: str) -> object:
            if name in {"get_timer", "claim_timers"}:
                raise AttributeError(name)
            return getattr(self._inner, name)

    service = AssignmentService(
        RoutingOnly(),  # type: ignore[arg-type]
        TestClock(T0),
        settings=AssignmentSettings(no_answer_after=timedelta(minutes=2)),
    )
    with pytest.raises(ValidationError, match="TimerStore"):
        service.route(TENANT, routing("c1"), by="widget")


def test_unanswered_conversation_goes_to_someone_else(
    store: MemoryStore, clock: TestClock
) -> None:
    service, sink = make_service(store, clock, no_answer_after=timedelta(minutes=2))
    worker = TimerWorker(store, clock, worker_id="w1", handlers=service.timer_handlers())
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    timer = store.get_timer(TENANT, no_answer_timer_id("c1"))
    assert (timer.kind, timer.deadline) == (NO_ANSWER_TIMER_KIND, T0 + timedelta(minutes=2))
    service.save_agent(TENANT, agent("joon", presence=Presence.AWAY), by="admin")
    clock.advance(minutes=1)
    service.set_presence(TENANT, "joon", Presence.ONLINE, by="joon")
    clock.advance(minutes=1)
    worker.tick(TENANT)
    stored = store.get_routing(TENANT, "c1")
    assert (stored.agent, stored.declined, stored.arrived_at) == ("joon", ("mina",), T0)
    reasons = [
        (e.reason, getattr(e, "agent_id", None))
        for e in events_of(sink)
        if isinstance(e, ConversationQueued | AgentAssigned)
    ]
    assert reasons[-2:] == [("no_answer", None), ("auto", "joon")]
    # joon's own no-answer timer runs from his assignment
    assert store.get_timer(TENANT, no_answer_timer_id("c1")).deadline == clock.now() + timedelta(
        minutes=2
    )


def test_answered_conversation_stays(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock, no_answer_after=timedelta(minutes=2))
    worker = TimerWorker(store, clock, worker_id="w1", handlers=service.timer_handlers())
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.save_agent(TENANT, agent("joon"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    holder = store.get_routing(TENANT, "c1").agent
    clock.advance(minutes=1)
    answered = service.answered(TENANT, "c1", by=str(holder))
    assert answered.answered
    assert answered == store.get_routing(TENANT, "c1")  # the routing as committed
    clock.advance(minutes=5)
    worker.tick(TENANT)
    assert store.get_routing(TENANT, "c1").agent == holder


def test_the_only_agent_gets_an_unanswered_conversation_back(
    store: MemoryStore, clock: TestClock
) -> None:
    service, _ = make_service(store, clock, no_answer_after=timedelta(minutes=2))
    worker = TimerWorker(store, clock, worker_id="w1", handlers=service.timer_handlers())
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    clock.advance(minutes=2)
    worker.tick(TENANT)
    stored = store.get_routing(TENANT, "c1")
    assert (stored.agent, stored.declined) == ("mina", ("mina",))  # nobody else can take it
    assert stored.assigned_at == clock.now()


def test_a_fire_for_a_stale_assignment_does_nothing(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock, no_answer_after=timedelta(minutes=2))
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    timer = store.get_timer(TENANT, no_answer_timer_id("c1"))
    clock.advance(minutes=1)
    service.requeue(TENANT, "c1", by="lead")  # reassigned: a new assignment instant
    before = store.routing_version(TENANT)
    handler = service.timer_handlers()[NO_ANSWER_TIMER_KIND]
    changes = handler(TENANT, timer, clock.now() + timedelta(minutes=1))
    assert store.routing_version(TENANT) == before
    assert store.get_routing(TENANT, "c1").agent == "mina"
    # what is handed back only re-plans the timer for the current assignment
    assert not changes.routings
    assert not changes.events
    assert [t.deadline for t in changes.timers] == [clock.now() + timedelta(minutes=2)]


def test_closing_cancels_the_no_answer_timer(store: MemoryStore, clock: TestClock) -> None:
    service, _ = make_service(store, clock, no_answer_after=timedelta(minutes=2))
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    service.close(TENANT, "c1", by="mina")
    assert not store.get_timer(TENANT, no_answer_timer_id("c1")).pending


# -- keeping Conversation.assignee in step ------------------------------------------------


def test_sync_conversations_sets_the_assignee_in_the_same_commit(
    store: MemoryStore, clock: TestClock
) -> None:
    conversations = ConversationService(store, clock)
    conversations.open_conversation(TENANT, customer_id="cust-1", channel="chat", by="widget",
                                    conversation_id="c1")
    service, sink = make_service(store, clock, sync_conversations=True)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    service.route(TENANT, routing("c2"), by="widget")  # no conversation record: left alone
    assert store.get_conversation(TENANT, "c1").assignee == "mina"
    service.set_presence(TENANT, "mina", Presence.OFFLINE, by="mina")
    assert store.get_conversation(TENANT, "c1").assignee is None
    assigned = [e for e in events_of(sink) if isinstance(e, ConversationAssigned)]
    assert [(e.assignee, e.previous) for e in assigned] == [("mina", None), (None, "mina")]


def test_without_sync_conversations_the_conversation_is_untouched(
    store: MemoryStore, clock: TestClock
) -> None:
    conversations = ConversationService(store, clock)
    conversations.open_conversation(TENANT, customer_id="cust-1", channel="chat", by="widget",
                                    conversation_id="c1")
    service, _ = make_service(store, clock)
    service.save_agent(TENANT, agent("mina"), by="admin")
    service.route(TENANT, routing("c1"), by="widget")
    assert store.get_conversation(TENANT, "c1").assignee is None
