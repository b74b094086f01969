"""Engine invariants: a hypothesis state machine drives one engine the way
hosts do (agents come and go, conversations open, get replies, close by hand
or by auto-close, get handed over, time passes and timers fire) and checks,
after every step, that tasks of the four services never disagree:

- every conversation opened with routing has a routing record while it is
  open, and its ``Conversation.assignee`` is the routing's agent;
- a closed conversation has no routing record (its slot was freed);
- no agent holds more conversations than its capacity (one whose capacity
  was lowered below what it held keeps those, and takes no new ones);
- the scheduler in memory matches the store (a scheduler rebuilt from the
  store holds the same conversations);
- no free online agent idles while a conversation it could take waits;
- the outbox holds each committed event once, in the order the sink saw;
- every conversation's auto-close and SLA timers are pending exactly when
  its state wants them, at the deadline it wants (the reactors kept them in
  line whatever path changed it: a host call, a fire, assignment).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from cxflow import (
    Agent,
    AssignmentSettings,
    AuthorKind,
    AutoClosePolicy,
    BusinessCalendar,
    ConversationSettings,
    ConversationState,
    CxflowError,
    Engine,
    MemoryStore,
    NotFound,
    Presence,
    RetryPolicy,
    SlaPolicy,
    SlaRule,
    SlaTargets,
    TenantSettings,
    TestClock,
)
from cxflow.app.reactors.sla import sla_timer_id
from cxflow.conversations import autoclose

TENANT = "acme"
T0 = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
AGENTS = ("mina", "joon", "sora")
SETTINGS = TenantSettings(
    conversations=ConversationSettings(
        autoclose=AutoClosePolicy(
            agent_silence=timedelta(minutes=30), customer_silence=timedelta(minutes=20)
        ),
        sla=SlaPolicy(
            id="chat",
            calendar=BusinessCalendar.always("UTC"),
            rules=[
                SlaRule(
                    targets=SlaTargets(
                        first_response=timedelta(minutes=10),
                        next_response=timedelta(minutes=15),
                        resolution=timedelta(hours=1),
                    )
                )
            ],
            warn_before=timedelta(minutes=2),
        ),
    ),
    assignment=AssignmentSettings(no_answer_after=timedelta(minutes=5)),
)


class Sink:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, tenant: str, events: Any) -> None:
        self.events.extend(events)


class EngineMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.clock = TestClock(T0)
        self.store = MemoryStore()
        self.sink = Sink()
        self.engine = Engine(
            settings=SETTINGS,
            clock=self.clock,
            sink=self.sink,
            retry=RetryPolicy(sleep=lambda _s: None),
            worker_id="w",
        )
        self.opened: list[str] = []
        self.routed: set[str] = set()
        self.kept: dict[str, int] = {}
        """Agents whose capacity was lowered below what they held: how many."""

    @property
    def session(self) -> Any:
        return self.engine.session(self.store)

    def _open_ids(self) -> list[str]:
        return [
            cid for cid in self.opened
            if self.store.get_conversation(TENANT, cid).state is ConversationState.OPEN
        ]

    # -- what hosts do --------------------------------------------------------------

    @rule(
        name=st.sampled_from(AGENTS),
        capacity=st.integers(0, 2),
        presence=st.sampled_from(list(Presence)),
    )
    def save_agent(self, name: str, capacity: int, presence: Presence) -> None:
        held = sum(1 for r in self.store.list_routings(TENANT) if r.agent == name)
        if held > capacity:
            self.kept[name] = held
        self.session.assignment.save_agent(
            TENANT, Agent(id=name, capacity=capacity, presence=presence), by=name
        )

    @rule(route=st.booleans())
    def open_conversation(self, route: bool) -> None:
        cid = f"c{len(self.opened)}"
        self.session.conversations.open_conversation(
            TENANT, customer_id=f"u{cid}", channel="chat", by="widget",
            conversation_id=cid, route=route,
        )
        self.opened.append(cid)
        if route:
            self.routed.add(cid)
        self.session.conversations.record_message(TENANT, cid, AuthorKind.CUSTOMER)

    @precondition(lambda self: bool(self.opened))
    @rule(data=st.data(), kind=st.sampled_from([AuthorKind.CUSTOMER, AuthorKind.AGENT]))
    def message(self, data: st.DataObject, kind: AuthorKind) -> None:
        live = self._open_ids()
        if not live:
            return
        cid = data.draw(st.sampled_from(live))
        conversation = self.store.get_conversation(TENANT, cid)
        author = conversation.assignee if kind is AuthorKind.AGENT else None
        self.session.conversations.record_message(TENANT, cid, kind, author_id=author)

    @precondition(lambda self: bool(self.opened))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        live = self._open_ids()
        if live:
            self.session.conversations.close(TENANT, data.draw(st.sampled_from(live)), by="lead")

    @precondition(lambda self: bool(self.opened))
    @rule(data=st.data(), agent=st.sampled_from((*AGENTS, None)))
    def hand_over(self, data: st.DataObject, agent: str | None) -> None:
        live = self._open_ids()
        if not live:
            return
        cid = data.draw(st.sampled_from(live))
        before = self.store.read_events(TENANT, after=0, limit=1_000_000)
        try:
            self.session.conversations.assign(TENANT, cid, agent, by="lead")
        except CxflowError:  # refused (agent unknown, offline, full or ineligible)
            assert self.store.read_events(TENANT, after=0, limit=1_000_000) == before

    @rule(minutes=st.sampled_from([1, 4, 6, 15, 25, 40]))
    def time_passes(self, minutes: int) -> None:
        self.clock.advance(minutes=minutes)
        self.session.tick(TENANT, limit=1000)

    # -- what must always hold ----------------------------------------------------

    @invariant()
    def records_agree(self) -> None:
        if not hasattr(self, "store"):
            return
        routings = {r.conversation_id: r for r in self.store.list_routings(TENANT)}
        for cid in self.opened:
            conversation = self.store.get_conversation(TENANT, cid)
            routing = routings.get(cid)
            if conversation.state is ConversationState.CLOSED:
                assert routing is None, f"{cid} closed but still routed"
            elif cid in self.routed:
                assert routing is not None, f"{cid} opened for routing but not routed"
                assert conversation.assignee == routing.agent, cid
            else:
                assert routing is None, f"{cid} opened without routing but routed"
        held: dict[str, int] = {}
        for routing in routings.values():
            if routing.agent is not None and not routing.overflow:
                held[routing.agent] = held.get(routing.agent, 0) + 1
        for agent_id in AGENTS:
            count = held.get(agent_id, 0)
            allowed = max(self.store_capacity(agent_id), self.kept.get(agent_id, 0))
            assert count <= allowed, agent_id
            if agent_id in self.kept:  # what was kept can only shrink
                self.kept[agent_id] = count

    def store_capacity(self, agent_id: str) -> int:
        try:
            return self.store.get_agent(TENANT, agent_id).capacity
        except NotFound:
            return 0

    @invariant()
    def scheduler_matches_the_store(self) -> None:
        if not hasattr(self, "store"):
            return
        live = self.session.assignment.scheduler(TENANT)
        rebuilt = SETTINGS.assignment.new_scheduler(  # type: ignore[union-attr]
            self.store.list_agents(TENANT), self.store.list_routings(TENANT)
        )
        for state in rebuilt.agents():
            assert live.held_by(state.id) == rebuilt.held_by(state.id), state.id
        assert live.waiting() == rebuilt.waiting()

    @invariant()
    def no_free_agent_idles_beside_the_queue(self) -> None:
        if not hasattr(self, "store"):
            return
        scheduler = self.session.assignment.scheduler(TENANT)
        if not scheduler.waiting():
            return
        for state in scheduler.agents():
            if state.agent.presence is Presence.ONLINE:
                assert len(scheduler.held_by(state.id)) >= state.agent.capacity, state.id

    @invariant()
    def timers_follow_the_conversations(self) -> None:
        if not hasattr(self, "store"):
            return
        policy = SETTINGS.conversations.autoclose
        assert policy is not None

        def pending_at(timer_id: str) -> datetime | None:
            try:
                timer = self.store.get_timer(TENANT, timer_id)
            except NotFound:
                return None
            return timer.deadline if timer.pending else None

        for cid in self.opened:
            conversation = self.store.get_conversation(TENANT, cid)
            due = autoclose.due(policy, conversation)
            assert pending_at(autoclose.autoclose_timer_id(cid)) == (
                None if due is None else due.deadline
            ), cid
            for clock in conversation.sla:
                wanted = clock.next_instant
                assert pending_at(sla_timer_id(clock.metric, cid)) == wanted, (cid, clock)

    @invariant()
    def outbox_is_what_was_published(self) -> None:
        if not hasattr(self, "store"):
            return
        stored: list[Any] = []
        after = 0
        while batch := self.store.read_events(TENANT, after=after, limit=1000):
            stored += [item.event for item in batch]
            after = batch[-1].position
        assert stored == self.sink.events

    def teardown(self) -> None:
        if not hasattr(self, "store"):
            return
        for cid in self.opened:
            try:
                self.store.get_routing(TENANT, cid)
            except NotFound:
                continue
            assert self.store.get_conversation(TENANT, cid).state is ConversationState.OPEN


EngineMachine.TestCase.settings = settings(
    stateful_step_count=20,
    suppress_health_check=[HealthCheck.too_slow],
    deadline=None,
)
test_engine_keeps_its_services_in_step = EngineMachine.TestCase
