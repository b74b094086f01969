"""``TimerWorker.tick``: one timer's trouble never strands its claimed batch
(issue 10). A vanished subject makes its timer obsolete (cancelled, the batch
goes on); any other error releases the timers not yet fired, then propagates."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from cxflow import (
    Agent,
    AssignmentSettings,
    Engine,
    MemoryStore,
    NotFound,
    Presence,
    StorageError,
    TenantSettings,
    TestClock,
)
from cxflow.app.assignment import no_answer_timer_id
from cxflow.app.engine import Session
from cxflow.assignment.model import Routing
from cxflow.storage.protocols import ChangeSet
from cxflow.timers.model import Timer, TimerState

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=1)
NO_ANSWER = TenantSettings(assignment=AssignmentSettings(no_answer_after=timedelta(minutes=2)))


class ClosesWhileHandled(MemoryStore):
    """A memory store on which another process closes a conversation right
    after the worker's handler has read its routing record: the race of
    issue 10 (the handler acts on a routing that is gone by the time the
    scheduler looks for it)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_read: dict[str, Callable[[], object]] = {}

    def get_routing(self, tenant: str, conversation_id: str) -> Routing:
        routing = super().get_routing(tenant, conversation_id)
        action = self.on_read.pop(conversation_id, None)
        if action is not None:
            action()
        return routing


def _routed(store: MemoryStore, clock: TestClock, conversations: int = 3) -> Session:
    """A session with ``conversations`` chats, each assigned to an agent of
    its own and unanswered past ``no_answer_after``: one due no-answer timer each."""
    session = Engine(settings=NO_ANSWER, clock=clock, worker_id="wa").session(store)
    for n in range(conversations):
        session.assignment.save_agent(
            TENANT, Agent(id=f"agent-{n}", presence=Presence.ONLINE), by="lead"
        )
    for n in range(conversations):
        session.conversations.open_conversation(
            TENANT, customer_id=f"u{n}", channel="chat", by="widget", conversation_id=f"c{n}"
        )
    clock.advance(minutes=3)
    return session


def _leased(store: MemoryStore, worker: str = "wa") -> list[str]:
    """Ids of the tenant's pending timers leased to ``worker``."""
    return sorted(
        timer.id
        for n in range(10)
        for timer in _timers(store, f"c{n}")
        if timer.pending and timer.lease_owner == worker
    )


def _timers(store: MemoryStore, conversation_id: str) -> list[Timer]:
    try:
        return [store.get_timer(TENANT, no_answer_timer_id(conversation_id))]
    except NotFound:
        return []


def test_a_conversation_closed_while_its_timer_is_handled_leaves_the_batch_firing() -> None:
    clock = TestClock(START)
    store = ClosesWhileHandled()
    worker = _routed(store, clock)
    other = Engine(settings=NO_ANSWER, clock=clock, worker_id="wb").session(store)
    store.on_read["c0"] = lambda: other.conversations.close(TENANT, "c0", by="agent-0")

    fired = worker.tick(TENANT)

    # The close finished c0's routing and cancelled its timer; the fire, decided
    # on the worker's scheduler from before the close, lost the race on the
    # routing version, and its retry found nothing to send back.
    assert [fire.subject_id for fire in fired] == ["c1", "c2"]
    assert _leased(store) == []
    assert store.get_timer(TENANT, no_answer_timer_id("c0")).state is TimerState.CANCELLED


def _host_timers(store: MemoryStore, count: int) -> None:
    """``count`` due timers of the host's kind ``ping``, in deadline order."""
    store.commit(
        TENANT,
        ChangeSet(
            timers=tuple(
                Timer(
                    id=f"ping-{n}", kind="ping", subject_id=f"s{n}",
                    deadline=START + n * timedelta(seconds=1),
                )
                for n in range(count)
            )
        ),
    )


def _pinging(
    store: MemoryStore, clock: TestClock, fails: Callable[[Timer], None]
) -> Session:
    """A session whose host handler for ``ping`` calls ``fails(timer)`` first."""

    def handler(tenant: str, timer: Timer, at: datetime) -> ChangeSet:
        fails(timer)
        return ChangeSet()

    engine = Engine(clock=clock, worker_id="wa", lease=LEASE, timer_handlers={"ping": handler})
    return engine.session(store)


def _ping_states(store: MemoryStore, count: int) -> list[tuple[str, str | None]]:
    return [
        (timer.state.value, timer.lease_owner)
        for timer in (store.get_timer(TENANT, f"ping-{n}") for n in range(count))
    ]


def test_a_handler_finding_its_subject_gone_cancels_the_timer_and_the_batch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = TestClock(START + timedelta(minutes=1))
    store = MemoryStore()
    _host_timers(store, 3)

    def fails(timer: Timer) -> None:
        if timer.subject_id == "s1":
            raise NotFound("widget", timer.subject_id)

    with caplog.at_level(logging.WARNING, logger="cxflow.timers"):
        fired = _pinging(store, clock, fails).tick(TENANT)

    assert [fire.timer_id for fire in fired] == ["ping-0", "ping-2"]
    assert _ping_states(store, 3) == [("fired", None), ("cancelled", None), ("fired", None)]
    assert "widget 's1' not found" in caplog.text


class Boom(Exception):
    pass


def test_any_other_handler_error_releases_the_rest_of_the_batch_and_propagates() -> None:
    clock = TestClock(START + timedelta(minutes=1))
    store = MemoryStore()
    _host_timers(store, 4)

    def fails(timer: Timer) -> None:
        if timer.id == "ping-1":
            raise Boom()

    with pytest.raises(Boom):
        _pinging(store, clock, fails).tick(TENANT)

    # ping-0 fired; ping-1 keeps its lease (retried once the lease ends, not in
    # a loop); ping-2 and ping-3 are free for any worker right now.
    assert _ping_states(store, 4) == [
        ("fired", None), ("pending", "wa"), ("pending", None), ("pending", None)
    ]
    released = store.get_timer(TENANT, "ping-2")
    assert (released.cycle, released.deadline) == (1, START + timedelta(seconds=2))
    claims = store.claim_timers(TENANT, clock.now(), worker="wb", lease=LEASE)
    assert [timer.id for timer in claims] == ["ping-2", "ping-3"]


def test_a_released_timer_another_worker_took_over_stays_with_it() -> None:
    """The batch's release conflicts on a timer whose lease ran out and that
    another worker claimed meanwhile: the others are still released."""
    clock = TestClock(START + timedelta(minutes=1))
    store = MemoryStore()
    _host_timers(store, 4)

    def fails(timer: Timer) -> None:
        if timer.id == "ping-1":
            clock.advance(minutes=2)  # the batch's leases run out; wb claims two
            taken = store.claim_timers(TENANT, clock.now(), worker="wb", lease=LEASE, limit=2)
            assert [t.id for t in taken] == ["ping-1", "ping-2"]
            raise Boom()

    with pytest.raises(Boom):
        _pinging(store, clock, fails).tick(TENANT)

    assert _ping_states(store, 4) == [
        ("fired", None), ("pending", "wb"), ("pending", "wb"), ("pending", None)
    ]


class ReleaseFails(MemoryStore):
    """A store whose commits fail once ``broken`` is set."""

    broken = False

    def commit(self, tenant: str, changes: ChangeSet) -> None:
        if self.broken:
            raise StorageError("the database went away")
        super().commit(tenant, changes)


def test_a_release_that_fails_is_logged_and_the_first_error_propagates(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = TestClock(START + timedelta(minutes=1))
    store = ReleaseFails()
    _host_timers(store, 3)

    def fails(timer: Timer) -> None:
        store.broken = True
        raise Boom()

    with caplog.at_level(logging.ERROR, logger="cxflow.timers"), pytest.raises(Boom):
        _pinging(store, clock, fails).tick(TENANT)

    assert "could not release 2 claimed timers" in caplog.text
    assert _ping_states(store, 3) == [("pending", "wa")] * 3  # due again when leases end
