"""The single write path: the unit of work, the writer's retry policy, and
timers of kinds a worker does not know."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from cxflow import (
    ConflictError,
    Material,
    MemoryStore,
    RetryPolicy,
    TaskService,
    TestClock,
    TimerWorker,
    ValidationError,
    default_flow,
)
from cxflow.app.unit import UnitOfWork, Writer
from cxflow.events import TimerFired
from cxflow.storage.protocols import ChangeSet
from cxflow.tasks import commands
from cxflow.timers.model import Timer, TimerState

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)


class Sleeps:
    """A ``sleep`` that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def setup() -> tuple[MemoryStore, TaskService, Sleeps]:
    store = MemoryStore()
    sleeps = Sleeps()
    writer = Writer(store, TestClock(START), retry=RetryPolicy(sleep=sleeps, random=lambda: 1.0))
    tasks = TaskService(store, writer=writer)
    tasks.create_flow(TENANT, default_flow("delivery_inquiry"), by="admin")
    return store, tasks, sleeps


# -- retry policy ---------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    sleeps = Sleeps()
    policy = RetryPolicy(base=0.01, cap=0.05, sleep=sleeps, random=lambda: 0.5)
    for attempt in range(1, 6):
        policy.backoff(attempt)
    assert sleeps.calls == pytest.approx([0.005, 0.01, 0.02, 0.025, 0.025])


def test_a_zero_jitter_draw_does_not_sleep() -> None:
    sleeps = Sleeps()
    RetryPolicy(sleep=sleeps, random=lambda: 0.0).backoff(3)
    assert sleeps.calls == []


@pytest.mark.parametrize(
    ("field", "value"), [("attempts", 0), ("attempts", True), ("base", -1), ("cap", "1")]
)
def test_a_bad_policy_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


# -- the writer -----------------------------------------------------------------


def test_a_lost_race_reruns_the_whole_unit() -> None:
    store, tasks, sleeps = setup()
    task = tasks.create_task(TENANT, flow_id="delivery_inquiry", title="Where?", by="mina")
    rival = TaskService(store, TestClock(START))
    seen: list[int] = []

    def build(unit: UnitOfWork) -> None:
        current = store.get_task(TENANT, task.id)
        seen.append(current.version)
        if len(seen) == 1:
            rival.add_comment(TENANT, task.id, "rival", by="joon")
        updated, events = commands.add_comment(current, "mine", by="mina", at=unit.at)
        unit.add(ChangeSet(tasks=(updated,), events=tuple(events)))

    tasks._writer.execute(TENANT, build)
    assert seen == [task.version, task.version + 1]
    assert len(sleeps.calls) == 1
    bodies = [comment.body for comment in store.get_task(TENANT, task.id).comments]
    assert bodies == ["rival", "mine"]


def test_a_stale_expected_version_is_the_callers_and_never_retried() -> None:
    store, tasks, sleeps = setup()
    task = tasks.create_task(TENANT, flow_id="delivery_inquiry", title="Where?", by="mina")
    tasks.add_comment(TENANT, task.id, "moved on", by="joon")
    with pytest.raises(ConflictError, match="caller expected"):
        tasks.move_task(TENANT, task.id, "tracking", by="mina", expected_version=task.version)
    assert sleeps.calls == []
    assert store.get_task(TENANT, task.id).status == task.status


def test_a_unit_that_keeps_losing_gives_up_after_the_policys_attempts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, tasks, sleeps = setup()
    task = tasks.create_task(TENANT, flow_id="delivery_inquiry", title="Where?", by="mina")
    rival = TaskService(store, TestClock(START))

    def always_races(unit: UnitOfWork) -> None:
        current = store.get_task(TENANT, task.id)
        rival.add_comment(TENANT, task.id, "rival", by="joon")
        updated, events = commands.add_comment(current, "mine", by="mina", at=unit.at)
        unit.add(ChangeSet(tasks=(updated,), events=tuple(events)))

    with caplog.at_level(logging.WARNING, logger="cxflow.engine"), pytest.raises(ConflictError):
        tasks._writer.execute(TENANT, always_races)
    assert len(sleeps.calls) == RetryPolicy().attempts - 1
    assert "gave up after 8 attempts" in caplog.text
    assert "mine" not in [c.body for c in store.get_task(TENANT, task.id).comments]


def test_callbacks_run_on_commit_or_abort_and_always_finish() -> None:
    _, tasks, _ = setup()
    calls: list[str] = []

    def ok(unit: UnitOfWork) -> None:
        unit.on_commit(lambda: calls.append("commit"))
        unit.on_abort(lambda: calls.append("abort"))
        unit.on_finish(lambda: calls.append("finish"))

    def fails(unit: UnitOfWork) -> None:
        ok(unit)
        raise ValidationError("x", "bad")

    tasks._writer.execute(TENANT, ok)
    with pytest.raises(ValidationError):
        tasks._writer.execute(TENANT, fails)
    assert calls == ["commit", "finish", "abort", "finish"]


def test_an_intent_that_changes_no_state_is_still_committed_and_published() -> None:
    """A command that returns the same snapshot plus events (an intent) must not
    lose the events."""
    store, tasks, _ = setup()
    published: list[str] = []

    class Sink:
        def publish(self, tenant: str, events: object) -> None:
            published.extend(event.type for event in events)  # type: ignore[attr-defined]

    tasks = TaskService(store, TestClock(START), Sink())
    flow = attrs.evolve(
        default_flow("order_issue"),
        materials=(Material(name="guide", uri="https://example.com/guide.pdf"),),
    )
    tasks.create_flow(TENANT, flow, by="admin")
    task = tasks.create_task(
        TENANT, flow_id=flow.id, title="Broken", by="mina", conversation_id="c1"
    )
    before = store.get_task(TENANT, task.id)
    tasks.send_material(TENANT, task.id, "guide", by="mina")
    assert store.get_task(TENANT, task.id) == before
    assert published[-1] == "task.material_send_requested"
    stored = [s.event.type for s in store.read_events(TENANT, limit=100)]
    assert stored[-1] == "task.material_send_requested"


# -- timers of unknown kinds ----------------------------------------------------


def test_a_timer_no_handler_knows_is_left_for_a_worker_that_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    clock = TestClock(START)
    timer = Timer(id="custom:1", kind="custom", subject_id="s1", deadline=START)
    store.commit(TENANT, ChangeSet(timers=(timer,)))
    lease = timedelta(seconds=30)
    unaware = TimerWorker(store, clock, worker_id="old", handlers={}, lease=lease)
    with caplog.at_level(logging.WARNING, logger="cxflow.timers"):
        assert unaware.tick(TENANT) == []
    assert "no handler for timer 'custom:1'" in caplog.text
    assert store.get_timer(TENANT, "custom:1").state is TimerState.PENDING
    assert not [e for e in store.read_events(TENANT) if isinstance(e.event, TimerFired)]

    seen: list[str] = []

    def handle(tenant: str, fired: Timer, at: datetime) -> ChangeSet:
        seen.append(fired.id)
        return ChangeSet()

    aware = TimerWorker(store, clock, worker_id="new", handlers={"custom": handle}, lease=lease)
    assert aware.tick(TENANT) == []  # still leased to the worker that could not fire it
    clock.advance(lease)
    assert [fire.timer_id for fire in aware.tick(TENANT)] == ["custom:1"]
    assert seen == ["custom:1"]
    assert store.get_timer(TENANT, "custom:1").state is TimerState.FIRED
