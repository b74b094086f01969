"""TimerQueue: deadline order, one fire per cycle, cycle rules, bounded heap.

Unit tests pin each rule; a hypothesis state machine drives random
schedule/move/cancel/fire sequences against a plain dict reference model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pendulum
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cxflow.errors import ValidationError
from cxflow.timers.queue import QueuedFire, TimerQueue

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PLUS_NINE = timezone(timedelta(hours=9))


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ids(fires: list[QueuedFire]) -> list[str]:
    return [fire.timer_id for fire in fires]


# -- cycles ---------------------------------------------------------------------------


def test_a_new_timer_starts_at_cycle_one() -> None:
    queue = TimerQueue()
    assert queue.schedule("a", at(5)) == 1
    assert queue.cycle_of("a") == 1


def test_moving_a_pending_timer_keeps_its_cycle_and_takes_the_new_deadline() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(5))
    assert queue.schedule("a", at(9)) == 1
    assert queue.deadline_of("a") == at(9)
    assert len(queue) == 1


def test_scheduling_a_fired_timer_starts_the_next_cycle() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(5))
    queue.fire_due(at(5))
    assert queue.schedule("a", at(9)) == 2


def test_scheduling_a_cancelled_timer_starts_the_next_cycle() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(5))
    queue.cancel("a")
    assert queue.schedule("a", at(9)) == 2
    assert queue.fire_due(at(9))[0].key == ("a", 2)


def test_cycle_of_reports_the_last_cycle_after_a_fire_and_none_when_unknown() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(5))
    queue.fire_due(at(5))
    assert queue.cycle_of("a") == 1
    assert queue.cycle_of("unknown") is None


# -- firing ---------------------------------------------------------------------------


def test_fire_due_fires_in_deadline_order() -> None:
    queue = TimerQueue()
    for timer_id, minutes in [("c", 3), ("a", 1), ("b", 2)]:
        queue.schedule(timer_id, at(minutes))
    assert ids(queue.fire_due(at(10))) == ["a", "b", "c"]


def test_ties_fire_in_scheduling_order() -> None:
    queue = TimerQueue()
    for timer_id in ["x", "m", "a"]:
        queue.schedule(timer_id, at(1))
    assert ids(queue.fire_due(at(1))) == ["x", "m", "a"]


def test_a_moved_timer_goes_after_the_timers_already_at_its_new_instant() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    queue.schedule("b", at(1))
    queue.schedule("a", at(1))
    assert ids(queue.fire_due(at(1))) == ["b", "a"]


def test_fire_due_fires_deadlines_equal_to_at_and_keeps_later_ones() -> None:
    queue = TimerQueue()
    queue.schedule("now", at(1))
    queue.schedule("later", at(1) + timedelta(microseconds=1))
    assert ids(queue.fire_due(at(1))) == ["now"]
    assert "later" in queue
    assert "now" not in queue


def test_firing_the_same_instant_twice_fires_nothing_the_second_time() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    assert len(queue.fire_due(at(1))) == 1
    assert queue.fire_due(at(1)) == []


def test_a_cancelled_timer_never_fires() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    queue.schedule("b", at(1))
    queue.cancel("a")
    assert ids(queue.fire_due(at(5))) == ["b"]


def test_a_moved_timer_fires_once_at_its_new_deadline() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    queue.schedule("a", at(3))
    assert queue.fire_due(at(2)) == []
    assert queue.fire_due(at(3)) == [QueuedFire("a", 1, at(3))]
    assert queue.fire_due(at(9)) == []


def test_fire_due_with_a_limit_fires_the_earliest_and_keeps_the_rest() -> None:
    queue = TimerQueue()
    for minutes in range(5):
        queue.schedule(f"t{minutes}", at(minutes))
    assert ids(queue.fire_due(at(10), limit=2)) == ["t0", "t1"]
    assert len(queue) == 3
    assert ids(queue.fire_due(at(10))) == ["t2", "t3", "t4"]


def test_fire_due_with_limit_zero_fires_nothing() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    assert queue.fire_due(at(1), limit=0) == []
    assert "a" in queue


def test_fire_due_refuses_a_negative_limit() -> None:
    with pytest.raises(ValidationError) as info:
        TimerQueue().fire_due(at(1), limit=-1)
    assert info.value.field == "limit"


def test_a_fire_carries_id_cycle_deadline_and_its_dedupe_key() -> None:
    queue = TimerQueue()
    deadline = at(1) + timedelta(microseconds=7)
    queue.schedule("a", deadline)
    [fire] = queue.fire_due(at(2))
    assert (fire.timer_id, fire.cycle, fire.deadline) == ("a", 1, deadline)
    assert fire.deadline.tzinfo is UTC
    assert fire.key == ("a", 1)


# -- cancel ---------------------------------------------------------------------------


def test_cancel_returns_true_for_a_pending_timer() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    assert queue.cancel("a") is True
    assert "a" not in queue
    assert len(queue) == 0


def test_cancel_returns_false_for_an_unknown_cancelled_or_fired_timer() -> None:
    queue = TimerQueue()
    queue.schedule("cancelled", at(1))
    queue.cancel("cancelled")
    queue.schedule("fired", at(1))
    queue.fire_due(at(1))
    assert [queue.cancel(i) for i in ("unknown", "cancelled", "fired")] == [False] * 3


# -- queries --------------------------------------------------------------------------


def test_next_deadline_is_none_when_nothing_is_pending() -> None:
    assert TimerQueue().next_deadline() is None


def test_next_deadline_skips_cancelled_and_moved_timers() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    queue.schedule("b", at(2))
    queue.schedule("c", at(3))
    queue.cancel("a")
    queue.schedule("b", at(4))
    assert queue.next_deadline() == at(3)


def test_deadline_of_is_none_unless_pending() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    queue.fire_due(at(1))
    assert queue.deadline_of("a") is None
    assert queue.deadline_of("unknown") is None


def test_contains_is_false_for_non_str() -> None:
    assert 3 not in TimerQueue()


# -- instants -------------------------------------------------------------------------


def test_schedule_refuses_a_naive_deadline_and_changes_nothing() -> None:
    queue = TimerQueue()
    with pytest.raises(ValidationError) as info:
        queue.schedule("a", datetime(2024, 5, 1, 9, 0))
    assert info.value.field == "deadline"
    assert "a" not in queue
    assert queue.cycle_of("a") is None


def test_moving_to_a_naive_deadline_keeps_the_old_one() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    with pytest.raises(ValidationError):
        queue.schedule("a", datetime(2024, 5, 1, 9, 0))
    assert queue.deadline_of("a") == at(1)


def test_fire_due_refuses_a_naive_instant() -> None:
    with pytest.raises(ValidationError) as info:
        TimerQueue().fire_due(datetime(2024, 5, 1, 9, 0))
    assert info.value.field == "at"


def test_schedule_refuses_a_deadline_that_is_not_a_datetime() -> None:
    with pytest.raises(ValidationError):
        TimerQueue().schedule("a", "2024-05-01T09:00:00+00:00")  # type: ignore[arg-type]


@pytest.mark.parametrize("timer_id", ["", 7, None])
def test_schedule_refuses_an_empty_or_non_str_id(timer_id: object) -> None:
    with pytest.raises(ValidationError) as info:
        TimerQueue().schedule(timer_id, at(1))  # type: ignore[arg-type]
    assert info.value.field == "timer_id"


def test_deadlines_in_other_zones_compare_as_instants_and_come_back_in_utc() -> None:
    queue = TimerQueue()
    queue.schedule("tokyo", datetime(2024, 5, 1, 18, 30, tzinfo=PLUS_NINE))  # 09:30 UTC
    queue.schedule("utc", at(10))  # 09:10 UTC
    assert ids(queue.fire_due(at(60))) == ["utc", "tokyo"]
    queue.schedule("tokyo", datetime(2024, 5, 1, 18, 30, tzinfo=PLUS_NINE))
    deadline = queue.deadline_of("tokyo")
    assert deadline == at(30)
    assert deadline is not None
    assert deadline.tzinfo is UTC


def test_pendulum_datetimes_are_accepted() -> None:
    queue = TimerQueue()
    queue.schedule("a", pendulum.datetime(2024, 5, 1, 11, 0, tz="Europe/Paris"))  # 09:00 UTC
    assert ids(queue.fire_due(pendulum.datetime(2024, 5, 1, 9, 0, tz="UTC"))) == ["a"]


def test_extreme_instants_keep_their_order() -> None:
    queue = TimerQueue()
    queue.schedule("max", datetime.max.replace(tzinfo=UTC))
    queue.schedule("min", datetime.min.replace(tzinfo=UTC))
    queue.schedule("1960", datetime(1960, 1, 1, tzinfo=UTC))
    assert queue.next_deadline() == datetime.min.replace(tzinfo=UTC)
    assert ids(queue.fire_due(datetime.max.replace(tzinfo=UTC))) == ["min", "1960", "max"]


# -- forget ---------------------------------------------------------------------------


def test_forget_drops_a_fired_timer_so_it_starts_at_cycle_one_again() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    queue.fire_due(at(1))
    assert queue.forget("a") is True
    assert queue.cycle_of("a") is None
    assert queue.schedule("a", at(2)) == 1


def test_forget_returns_false_for_an_unknown_id() -> None:
    assert TimerQueue().forget("a") is False


def test_forget_refuses_a_pending_timer() -> None:
    queue = TimerQueue()
    queue.schedule("a", at(1))
    with pytest.raises(ValidationError):
        queue.forget("a")
    assert "a" in queue


# -- bounded heap and internal renumbering ---------------------------------------------


def test_cancelling_most_timers_compacts_the_heap() -> None:
    queue = TimerQueue()
    for i in range(1_000):
        queue.schedule(f"t{i}", at(i))
    for i in range(900):
        queue.cancel(f"t{i}")
    assert len(queue._heap) <= 2 * len(queue) + 1
    assert ids(queue.fire_due(at(2_000))) == [f"t{i}" for i in range(900, 1_000)]


def test_moving_one_timer_many_times_keeps_the_heap_small() -> None:
    queue = TimerQueue()
    queue.schedule("other", at(0))
    for i in range(10_000):
        queue.schedule("a", at(i % 50))
    assert len(queue._heap) <= 200
    assert queue.fire_due(at(100)) == [QueuedFire("other", 1, at(0)), QueuedFire("a", 1, at(49))]


def test_renumbering_the_sequence_keeps_deadline_and_tie_order() -> None:
    queue = TimerQueue()
    queue._seq_limit = 4  # renumber often (normally once per 2**35 schedules)
    order = ["d", "c", "b", "a"]
    for timer_id in order:
        queue.schedule(timer_id, at(1))
        queue.schedule(f"early-{timer_id}", at(0))
    queue.cancel("early-c")
    queue.schedule("b", at(1))  # moved: now after "a"
    assert ids(queue.fire_due(at(1))) == ["early-d", "early-b", "early-a", "d", "c", "a", "b"]


# -- state machine against a reference model -------------------------------------------


@dataclass
class Ref:
    """The reference model's view of one timer."""

    deadline: datetime
    cycle: int
    pending: bool
    seq: int


ID_POOL = st.sampled_from(["a", "b", "c", "d", "e", "f"])
OFFSETS = st.integers(min_value=-5 * 60_000_000, max_value=60 * 60_000_000).map(
    lambda us: timedelta(microseconds=us)
)
ZONES = st.sampled_from([UTC, PLUS_NINE, timezone(timedelta(hours=-5, minutes=-30))])


class TimerQueueMachine(RuleBasedStateMachine):
    """Random schedule/move/cancel/fire sequences, compared with a dict of ``Ref``."""

    def __init__(self) -> None:
        super().__init__()
        self.queue = TimerQueue()
        self.ref: dict[str, Ref] = {}
        self.now = T0
        self.seq = 0
        self.fired: set[tuple[str, int]] = set()

    @initialize(seq_limit=st.sampled_from([3, 16, 1 << 35]))
    def set_sequence_limit(self, seq_limit: int) -> None:
        self.queue._seq_limit = seq_limit

    def _schedule_ref(self, timer_id: str, deadline: datetime) -> int:
        old = self.ref.get(timer_id)
        cycle = 1 if old is None else (old.cycle if old.pending else old.cycle + 1)
        self.ref[timer_id] = Ref(deadline, cycle, pending=True, seq=self.seq)
        self.seq += 1
        return cycle

    @rule(timer_id=ID_POOL, offset=OFFSETS, zone=ZONES)
    def schedule(self, timer_id: str, offset: timedelta, zone: timezone) -> None:
        deadline = self.now + offset
        assert self.queue.schedule(timer_id, deadline.astimezone(zone)) == self._schedule_ref(
            timer_id, deadline
        )

    @rule(timer_id=ID_POOL, offsets=st.lists(OFFSETS, min_size=60, max_size=80))
    def churn(self, timer_id: str, offsets: list[timedelta]) -> None:
        """Move (or start) one timer many times: enough stale keys to compact."""
        for offset in offsets:
            deadline = self.now + offset
            assert self.queue.schedule(timer_id, deadline) == self._schedule_ref(timer_id, deadline)

    @rule(timer_id=ID_POOL)
    def cancel(self, timer_id: str) -> None:
        old = self.ref.get(timer_id)
        was_pending = old is not None and old.pending
        assert self.queue.cancel(timer_id) is was_pending
        if old is not None:
            old.pending = False

    @rule(
        step=st.integers(min_value=0, max_value=30 * 60_000_000),
        limit=st.none() | st.integers(min_value=0, max_value=4),
    )
    def fire_due(self, step: int, limit: int | None) -> None:
        self.now += timedelta(microseconds=step)
        due = sorted(
            (
                (ref.deadline, ref.seq, timer_id)
                for timer_id, ref in self.ref.items()
                if ref.pending and ref.deadline <= self.now
            )
        )
        if limit is not None:
            due = due[:limit]
        expected = [QueuedFire(t, self.ref[t].cycle, deadline) for deadline, _seq, t in due]
        fires = self.queue.fire_due(self.now, limit)
        assert fires == expected
        for fire in fires:
            assert fire.key not in self.fired
            self.fired.add(fire.key)
            self.ref[fire.timer_id].pending = False
        if limit is None:
            assert all(not ref.pending or ref.deadline > self.now for ref in self.ref.values())

    @precondition(lambda self: bool(self.ref))
    @rule(data=st.data())
    def forget(self, data: st.DataObject) -> None:
        timer_id = data.draw(st.sampled_from(sorted(self.ref)))
        if self.ref[timer_id].pending:
            with pytest.raises(ValidationError):
                self.queue.forget(timer_id)
        else:
            assert self.queue.forget(timer_id) is True
            del self.ref[timer_id]
            # a forgotten id starts at cycle 1 again: its old keys may recur
            self.fired = {key for key in self.fired if key[0] != timer_id}

    @invariant()
    def views_agree(self) -> None:
        pending = {t: ref for t, ref in self.ref.items() if ref.pending}
        assert len(self.queue) == len(pending)
        for timer_id in ["a", "b", "c", "d", "e", "f"]:
            ref = self.ref.get(timer_id)
            assert (timer_id in self.queue) is (timer_id in pending)
            assert self.queue.cycle_of(timer_id) == (None if ref is None else ref.cycle)
            assert self.queue.deadline_of(timer_id) == (
                ref.deadline if ref is not None and ref.pending else None
            )
        earliest = min((ref.deadline for ref in pending.values()), default=None)
        assert self.queue.next_deadline() == earliest

    @invariant()
    def heap_stays_bounded(self) -> None:
        assert len(self.queue._heap) <= max(2 * len(self.queue) + 1, 64 + len(self.queue))


TimerQueueMachine.TestCase.settings = settings(  # examples: the profile's (conftest.py)
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_timer_queue_matches_the_reference_model = TimerQueueMachine.TestCase
