"""The host's path through one engine, on the memory store, a SQLite file and
PostgreSQL: written the way a helpdesk backend wires cxflow.

A conversation opens and is routed; the agent replies (the no-answer timer is
cancelled); the customer goes silent; auto-close fires; the agent's slot
frees; the next waiting conversation goes to that agent; every event is in
the outbox once.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cxflow import (
    Agent,
    AssignmentSettings,
    AuthorKind,
    AutoClosePolicy,
    ConversationSettings,
    ConversationState,
    Engine,
    MemoryStore,
    NotFound,
    Presence,
    RetryPolicy,
    TenantSettings,
    TestClock,
)
from cxflow.app.assignment import no_answer_timer_id
from cxflow.conversations.autoclose import autoclose_timer_id
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.timers.model import TimerState

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)

SETTINGS = TenantSettings(
    conversations=ConversationSettings(
        autoclose=AutoClosePolicy(customer_silence=timedelta(minutes=30))
    ),
    assignment=AssignmentSettings(no_answer_after=timedelta(minutes=2)),
)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """A factory of stores on one fresh database (each call: a new store object
    on the same data, as each request of a host would make)."""
    if request.param == "memory":
        memory = MemoryStore()
        yield lambda: memory
    elif request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "host.db")
        SqlStore(engine).create_schema()
        yield lambda: SqlStore(engine)
        engine.dispose()
    else:
        emptied = request.getfixturevalue("fresh_postgres_store")()
        yield lambda: SqlStore(emptied.bind)


class Recorder:
    """An event sink that keeps what was published."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def publish(self, tenant: str, events: Any) -> None:
        self.events.extend(events)


def outbox(store: Any) -> list[Any]:
    found, after = [], 0
    while batch := store.read_events(TENANT, after=after, limit=500):
        found += [stored.event for stored in batch]
        after = batch[-1].position
    return found


def test_a_support_morning_through_one_engine(new_store: Callable[[], Any]) -> None:
    clock = TestClock(START)
    sink = Recorder()
    engine = Engine(settings=SETTINGS, clock=clock, sink=sink, worker_id="worker-1")

    # 09:00 mina comes online with room for one conversation.
    engine.session(new_store()).assignment.save_agent(
        TENANT, Agent(id="mina", capacity=1, presence=Presence.ONLINE), by="mina"
    )

    # 09:01 a customer writes in: opened and routed in one call, one commit.
    clock.advance(minutes=1)
    session = engine.session(new_store())
    c1 = session.conversations.open_conversation(
        TENANT, customer_id="cust-1", channel="chat", by="widget", conversation_id="c1"
    )
    session.conversations.record_message(TENANT, "c1", AuthorKind.CUSTOMER)
    assert c1.assignee == "mina"
    assert session.assignment.get_routing(TENANT, "c1").agent == "mina"
    no_answer = session.store.get_timer(TENANT, no_answer_timer_id("c1"))
    assert no_answer.state is TimerState.PENDING

    # 09:02 a second customer: mina is full, so c2 waits.
    clock.advance(minutes=1)
    session = engine.session(new_store())
    c2 = session.conversations.open_conversation(
        TENANT, customer_id="cust-2", channel="chat", by="widget", conversation_id="c2"
    )
    assert c2.assignee is None
    assert session.assignment.get_routing(TENANT, "c2").agent is None

    # 09:02:30 mina replies to c1 through record_message alone: that answers it.
    clock.advance(seconds=30)
    session = engine.session(new_store())
    session.conversations.record_message(TENANT, "c1", AuthorKind.AGENT, author_id="mina")
    assert session.assignment.get_routing(TENANT, "c1").answered
    assert session.store.get_timer(TENANT, no_answer_timer_id("c1")).state is (
        TimerState.CANCELLED
    )

    # 09:04 the no-answer deadline passes: nothing is taken from mina.
    clock.advance(minutes=1, seconds=30)
    assert engine.session(new_store()).tick(TENANT) == []
    assert engine.session(new_store()).assignment.get_routing(TENANT, "c1").agent == "mina"

    # 09:33 the customer stayed silent for 30 minutes: auto-close fires, the
    # slot frees and the queue drains into it, all in the fire's commit.
    clock.advance(minutes=29)
    session = engine.session(new_store())
    fires = session.tick(TENANT)
    assert [fire.timer_id for fire in fires] == [autoclose_timer_id("c1")]
    assert session.conversations.get_conversation(TENANT, "c1").state is (
        ConversationState.CLOSED
    )
    with pytest.raises(NotFound):
        session.assignment.get_routing(TENANT, "c1")
    assert session.assignment.get_routing(TENANT, "c2").agent == "mina"
    assert session.conversations.get_conversation(TENANT, "c2").assignee == "mina"
    assert session.assignment.get_agent(TENANT, "mina").capacity == 1

    # Every event is in the outbox once, in the order the sink saw them.
    events = outbox(new_store())
    assert events == sink.events
    counts = collections.Counter(event.type for event in events)
    assert counts["conversation.opened"] == 2
    assert counts["assignment.queued"] == 2
    assert counts["assignment.assigned"] == 2
    assert counts["assignment.finished"] == 1
    assert counts["conversation.closed"] == 1
    assert counts["conversation.assigned"] == 2
    keys = [(event.type, getattr(event, "conversation_id", None), event.at) for event in events]
    assert len(keys) == len(set(keys))


def test_a_hand_close_frees_the_slot_for_the_next_conversation(
    new_store: Callable[[], Any],
) -> None:
    clock = TestClock(START)
    engine = Engine(settings=SETTINGS, clock=clock)
    session = engine.session(new_store())
    session.assignment.save_agent(
        TENANT, Agent(id="joon", capacity=1, presence=Presence.ONLINE), by="joon"
    )
    for cid in ("c1", "c2"):
        session.conversations.open_conversation(
            TENANT, customer_id=f"cust-{cid}", channel="chat", by="widget", conversation_id=cid
        )
    clock.advance(minutes=1)
    session = engine.session(new_store())
    session.conversations.close(TENANT, "c1", by="joon")
    assert session.assignment.get_routing(TENANT, "c2").agent == "joon"
    assert session.conversations.get_conversation(TENANT, "c2").assignee == "joon"


def test_a_hand_assignment_transfers_within_the_scheduler(
    new_store: Callable[[], Any],
) -> None:
    clock = TestClock(START)
    engine = Engine(settings=SETTINGS, clock=clock)
    session = engine.session(new_store())
    for name in ("mina", "joon"):
        session.assignment.save_agent(
            TENANT, Agent(id=name, capacity=1, presence=Presence.ONLINE), by=name
        )
    opened = session.conversations.open_conversation(
        TENANT, customer_id="cust-1", channel="chat", by="widget", conversation_id="c1"
    )
    other = "joon" if opened.assignee == "mina" else "mina"
    session.conversations.assign(TENANT, "c1", other, by="lead")
    assert session.assignment.get_routing(TENANT, "c1").agent == other
    assert session.assignment.scheduler(TENANT).held_by(other) == {"c1"}
    # The agent who gave it up has room again.
    session.conversations.open_conversation(
        TENANT, customer_id="cust-2", channel="chat", by="widget", conversation_id="c2"
    )
    assert session.assignment.get_routing(TENANT, "c2").agent == opened.assignee


def test_two_engines_on_one_database_stay_in_step(new_store: Callable[[], Any]) -> None:
    """Two host processes (two engines) on one database: each sees the other's
    commits (its scheduler rebuilds when behind), and capacity holds."""
    clock = TestClock(START)
    first = Engine(settings=SETTINGS, clock=clock, retry=RetryPolicy(sleep=lambda _s: None))
    second = Engine(settings=SETTINGS, clock=clock, retry=RetryPolicy(sleep=lambda _s: None))
    first.session(new_store()).assignment.save_agent(
        TENANT, Agent(id="mina", capacity=1, presence=Presence.ONLINE), by="mina"
    )
    first.session(new_store()).conversations.open_conversation(
        TENANT, customer_id="a", channel="chat", by="widget", conversation_id="c1"
    )
    opened = second.session(new_store()).conversations.open_conversation(
        TENANT, customer_id="b", channel="chat", by="widget", conversation_id="c2"
    )
    assert opened.assignee is None  # the second engine knew mina was full
    first.session(new_store()).conversations.close(TENANT, "c1", by="mina")
    assert second.session(new_store()).assignment.get_routing(TENANT, "c2").agent == "mina"
