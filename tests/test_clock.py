"""Clocks: the test clock only moves forward; the system clock is aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo

import pytest

from cxflow import Clock, SystemClock, TestClock, ValidationError
from cxflow.clock import ensure_aware

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
PLUS_NINE = timezone(timedelta(hours=9))


# -- TestClock -----------------------------------------------------------------


def test_test_clock_starts_at_its_start() -> None:
    assert TestClock(T0).now() == T0


def test_test_clock_stays_frozen_until_told() -> None:
    clock = TestClock(T0)
    assert clock.now() == clock.now() == T0


def test_test_clock_refuses_a_naive_start() -> None:
    with pytest.raises(ValidationError) as info:
        TestClock(datetime(2024, 5, 1, 9, 0))
    assert info.value.field == "start"


def test_test_clock_refuses_a_start_that_is_not_a_datetime() -> None:
    with pytest.raises(ValidationError):
        TestClock("2024-05-01T09:00:00+00:00")  # type: ignore[arg-type]


def test_test_clock_reports_its_start_in_utc() -> None:
    now = TestClock(datetime(2024, 5, 1, 18, 0, tzinfo=PLUS_NINE)).now()
    assert now == T0
    assert now.utcoffset() == timedelta(0)


def test_advance_by_a_timedelta_moves_forward_and_returns_the_new_instant() -> None:
    clock = TestClock(T0)
    assert clock.advance(timedelta(minutes=5)) == T0 + timedelta(minutes=5)
    assert clock.now() == T0 + timedelta(minutes=5)


def test_advance_by_keywords_moves_forward() -> None:
    clock = TestClock(T0)
    clock.advance(hours=1, minutes=30)
    assert clock.now() == T0 + timedelta(hours=1, minutes=30)


def test_advance_steps_accumulate() -> None:
    clock = TestClock(T0)
    clock.advance(seconds=10)
    clock.advance(seconds=20)
    assert clock.now() == T0 + timedelta(seconds=30)


def test_advance_by_zero_keeps_the_instant() -> None:
    clock = TestClock(T0)
    assert clock.advance(timedelta(0)) == T0


def test_advance_backwards_is_refused_and_keeps_the_instant() -> None:
    clock = TestClock(T0)
    with pytest.raises(ValidationError):
        clock.advance(timedelta(seconds=-1))
    assert clock.now() == T0


def test_advance_backwards_by_keywords_is_refused() -> None:
    clock = TestClock(T0)
    with pytest.raises(ValidationError):
        clock.advance(minutes=-1)
    assert clock.now() == T0


def test_set_jumps_forward_and_returns_the_instant() -> None:
    clock = TestClock(T0)
    target = T0 + timedelta(days=3)
    assert clock.set(target) == target
    assert clock.now() == target


def test_set_to_the_current_instant_is_allowed() -> None:
    clock = TestClock(T0)
    assert clock.set(T0) == T0


def test_set_backwards_is_refused_and_keeps_the_instant() -> None:
    clock = TestClock(T0)
    with pytest.raises(ValidationError):
        clock.set(T0 - timedelta(microseconds=1))
    assert clock.now() == T0


def test_set_refuses_a_naive_instant() -> None:
    clock = TestClock(T0)
    with pytest.raises(ValidationError) as info:
        clock.set(datetime(2024, 6, 1))
    assert info.value.field == "instant"


def test_set_converts_an_offset_instant_to_utc() -> None:
    clock = TestClock(T0)
    clock.set(datetime(2024, 5, 2, 18, 0, tzinfo=PLUS_NINE))
    assert clock.now() == datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


def test_test_clock_is_a_clock() -> None:
    assert isinstance(TestClock(T0), Clock)


# -- ensure_aware ----------------------------------------------------------------


def test_ensure_aware_returns_utc_unchanged() -> None:
    assert ensure_aware(T0, "at") is T0


def test_ensure_aware_converts_an_offset_to_utc() -> None:
    result = ensure_aware(datetime(2024, 5, 1, 18, 0, tzinfo=PLUS_NINE), "at")
    assert result == T0
    assert result.tzinfo is UTC
    assert (result.hour, result.minute) == (9, 0)


def test_ensure_aware_converts_a_negative_offset_to_utc() -> None:
    minus_five_thirty = timezone(-timedelta(hours=5, minutes=30))
    result = ensure_aware(datetime(2024, 5, 1, 3, 30, tzinfo=minus_five_thirty), "at")
    assert (result, result.tzinfo) == (T0, UTC)


def test_ensure_aware_refuses_naive_and_names_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        ensure_aware(datetime(2024, 5, 1, 9, 0), "due_at")
    assert info.value.field == "due_at"


@pytest.mark.parametrize("value", ["2024-05-01T09:00:00+00:00", 1714554000, None])
def test_ensure_aware_refuses_values_that_are_not_datetimes(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        ensure_aware(value, "at")
    assert info.value.field == "at"


def test_ensure_aware_refuses_a_tzinfo_without_an_offset() -> None:
    class NoOffset(tzinfo):
        def utcoffset(self, dt: datetime | None) -> None:
            return None

        def dst(self, dt: datetime | None) -> None:
            return None

        def tzname(self, dt: datetime | None) -> None:
            return None

    with pytest.raises(ValidationError):
        ensure_aware(datetime(2024, 5, 1, tzinfo=NoOffset()), "at")


# -- SystemClock -----------------------------------------------------------------


def test_system_clock_returns_an_aware_utc_datetime() -> None:
    now = SystemClock().now()
    assert isinstance(now, datetime)
    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_system_clock_is_a_clock() -> None:
    assert isinstance(SystemClock(), Clock)
