"""Business-hours calendars: validation, exact add/elapsed, DST on real transitions,
and hypothesis properties (add and elapsed are inverse, add is monotonic)."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import attrs
import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxflow.errors import ValidationError
from cxflow.timers.calendar import BusinessCalendar

NEW_YORK = ZoneInfo("America/New_York")
SEOUL = ZoneInfo("Asia/Seoul")
HELSINKI = ZoneInfo("Europe/Helsinki")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
LUNCH_BREAK = [("09:00", "12:00"), ("13:00", "18:00")]
CHUSEOK = [date(2026, 9, 24), date(2026, 9, 25), date(2026, 9, 26)]

PROPERTY_SETTINGS = settings(  # 1.5x the hypothesis profile's examples (conftest.py)
    max_examples=settings.default.max_examples * 3 // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def local(
    zone: ZoneInfo,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=zone, fold=fold)


def nine_to_five() -> BusinessCalendar:
    return BusinessCalendar.weekdays("America/New_York", [("09:00", "17:00")])


def seoul() -> BusinessCalendar:
    return BusinessCalendar.weekdays("Asia/Seoul", LUNCH_BREAK, holidays=CHUSEOK)


def sundays(zone: str, *ranges: tuple[str, str]) -> BusinessCalendar:
    return BusinessCalendar(timezone=zone, hours={6: list(ranges)})


def hours_of(calendar: BusinessCalendar, day: date) -> timedelta:
    return sum((end - start for start, end in calendar.intervals(day)), timedelta(0))


# -- construction ----------------------------------------------------------------


def test_hours_are_stored_as_seven_days_of_sorted_text_ranges() -> None:
    calendar = BusinessCalendar(
        timezone="Asia/Seoul",
        hours={0: [("13:00", "18:00"), (time(9), time(12))], 5: [("10:00", "24:00")]},
    )
    assert calendar.hours[0] == (("09:00", "12:00"), ("13:00", "18:00"))
    assert calendar.hours[5] == (("10:00", "24:00"),)
    assert calendar.hours[1] == calendar.hours[6] == ()
    assert len(calendar.hours) == 7


def test_seconds_are_kept_in_the_text_form() -> None:
    calendar = sundays("UTC", ("09:00:30", "10:00"))
    assert calendar.hours[6] == (("09:00:30", "10:00"),)


def test_the_canonical_form_builds_an_equal_calendar() -> None:
    calendar = seoul()
    again = BusinessCalendar(
        timezone=calendar.timezone, hours=calendar.hours, holidays=calendar.holidays
    )
    assert again == calendar
    assert hash(again) == hash(calendar)


def test_weekdays_opens_monday_to_friday_only() -> None:
    calendar = BusinessCalendar.weekdays("Asia/Seoul", [("09:00", "18:00")])
    assert all(calendar.hours[day] == (("09:00", "18:00"),) for day in range(5))
    assert calendar.hours[5] == calendar.hours[6] == ()


def test_holidays_are_sorted_deduplicated_dates_and_accept_iso_text() -> None:
    calendar = BusinessCalendar.weekdays(
        "Asia/Seoul", LUNCH_BREAK, holidays=["2026-09-26", date(2026, 9, 24), "2026-09-24"]
    )
    assert calendar.holidays == (date(2026, 9, 24), date(2026, 9, 26))


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar.weekdays("Mars/Olympus_Mons", [("09:00", "17:00")])
    assert info.value.field == "timezone"


@pytest.mark.parametrize("zone", ["", "../etc/passwd", 9])
def test_a_malformed_time_zone_is_refused(zone: object) -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar.weekdays(zone, [("09:00", "17:00")])  # type: ignore[arg-type]
    assert info.value.field == "timezone"


def test_an_empty_range_is_refused_naming_the_weekday_and_range() -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar(timezone="UTC", hours={2: [("18:00", "09:00")]})
    assert info.value.field == "hours[2]"
    assert "Wednesday" in info.value.reason
    assert "18:00-09:00" in info.value.reason


def test_midnight_as_an_end_points_to_24_00() -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar(timezone="UTC", hours={0: [("22:00", "00:00")]})
    assert "24:00" in info.value.reason


def test_overlapping_ranges_are_refused_naming_the_weekday_and_both_ranges() -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar(timezone="UTC", hours={4: [("13:00", "18:00"), ("09:00", "13:30")]})
    assert info.value.field == "hours[4]"
    assert "Friday" in info.value.reason
    assert "13:00-18:00" in info.value.reason
    assert "09:00-13:30" in info.value.reason


def test_touching_ranges_are_allowed_and_count_as_one() -> None:
    calendar = sundays("UTC", ("09:00", "12:00"), ("12:00", "13:00"))
    assert calendar.intervals(date(2026, 1, 4)) == (
        (datetime(2026, 1, 4, 9, tzinfo=UTC), datetime(2026, 1, 4, 13, tzinfo=UTC)),
    )


def test_a_calendar_that_is_never_open_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar(timezone="UTC", hours={0: [], 1: ()})
    assert info.value.field == "hours"


@pytest.mark.parametrize(
    "ranges",
    [
        [("9:00", "17:00")],
        [("09:00", "25:00")],
        [("09:60", "17:00")],
        [("24:00", "24:00")],
        [("09:00+09:00", "17:00")],
        [(900, 1700)],
        [("09:00",)],
        ["09:00-17:00"],
        [(time(9, tzinfo=UTC), time(17))],
        "09:00-17:00",
    ],
)
def test_malformed_ranges_are_refused(ranges: object) -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar(timezone="UTC", hours={0: ranges})
    assert info.value.field == "hours[0]"


@pytest.mark.parametrize("hours", [{7: [("09:00", "17:00")]}, {True: []}, [[("09:00", "17:00")]]])
def test_weekdays_must_be_0_to_6_or_seven_days(hours: object) -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar(timezone="UTC", hours=hours)  # type: ignore[arg-type]
    assert info.value.field == "hours"


@pytest.mark.parametrize("holidays", [["2026-13-01"], [datetime(2026, 1, 1, tzinfo=UTC)], [1], "x"])
def test_malformed_holidays_are_refused(holidays: object) -> None:
    with pytest.raises(ValidationError) as info:
        BusinessCalendar.weekdays("UTC", [("09:00", "17:00")], holidays=holidays)  # type: ignore[arg-type]
    assert info.value.field == "holidays"


def test_a_calendar_pickles_and_copies() -> None:
    calendar = seoul()
    start = local(SEOUL, 2026, 9, 23, 17)
    expected = calendar.add(start, timedelta(hours=2))
    for other in (pickle.loads(pickle.dumps(calendar)), copy.deepcopy(calendar)):
        assert other == calendar
        assert other.add(start, timedelta(hours=2)) == expected


# -- add ---------------------------------------------------------------------------


def test_friday_afternoon_plus_one_hour_is_monday_morning() -> None:
    deadline = nine_to_five().add(local(NEW_YORK, 2026, 1, 9, 16, 30), timedelta(hours=1))
    assert deadline == local(NEW_YORK, 2026, 1, 12, 9, 30)


def test_add_returns_aware_utc() -> None:
    deadline = nine_to_five().add(local(NEW_YORK, 2026, 1, 9, 16, 30), timedelta(hours=1))
    assert deadline.tzinfo is UTC


def test_add_from_closed_time_starts_at_the_next_opening() -> None:
    deadline = nine_to_five().add(local(NEW_YORK, 2026, 1, 10, 12), timedelta(minutes=15))
    assert deadline == local(NEW_YORK, 2026, 1, 12, 9, 15)


def test_add_that_uses_up_a_range_ends_at_the_range_end() -> None:
    deadline = nine_to_five().add(local(NEW_YORK, 2026, 1, 9, 9), timedelta(hours=8))
    assert deadline == local(NEW_YORK, 2026, 1, 9, 17)


def test_zero_duration_is_the_first_open_instant_at_or_after_start() -> None:
    calendar = nine_to_five()
    assert calendar.add(local(NEW_YORK, 2026, 1, 9, 17), timedelta(0)) == local(
        NEW_YORK, 2026, 1, 12, 9
    )
    inside = local(NEW_YORK, 2026, 1, 9, 10, 15)
    assert calendar.add(inside, timedelta(0)) == inside


def test_add_skips_lunch_breaks_in_seoul() -> None:
    deadline = seoul().add(local(SEOUL, 2026, 9, 21, 11, 30), timedelta(hours=1))
    assert deadline == local(SEOUL, 2026, 9, 21, 13, 30)


def test_add_skips_chuseok_and_the_weekend() -> None:
    deadline = seoul().add(local(SEOUL, 2026, 9, 23, 17), timedelta(hours=2))
    assert deadline == local(SEOUL, 2026, 9, 28, 10)


def test_add_over_several_weeks_is_exact() -> None:
    calendar = nine_to_five()
    start = local(NEW_YORK, 2026, 1, 5, 9)  # a Monday
    assert calendar.add(start, timedelta(hours=8 * 5 * 3 + 1)) == local(NEW_YORK, 2026, 1, 26, 10)


def test_add_keeps_microseconds() -> None:
    start = local(NEW_YORK, 2026, 1, 9, 16, 59, 59) + timedelta(microseconds=999_999)
    deadline = nine_to_five().add(start, timedelta(microseconds=2))
    assert deadline == local(NEW_YORK, 2026, 1, 12, 9) + timedelta(microseconds=1)


def test_add_accepts_pendulum_datetimes_and_durations() -> None:
    start = pendulum.datetime(2026, 1, 9, 16, 30, tz="America/New_York")
    deadline = nine_to_five().add(start, pendulum.duration(hours=1))
    assert deadline == local(NEW_YORK, 2026, 1, 12, 9, 30)


def test_add_refuses_a_naive_start() -> None:
    with pytest.raises(ValidationError) as info:
        nine_to_five().add(datetime(2026, 1, 9, 16, 30), timedelta(hours=1))
    assert info.value.field == "start"


def test_add_refuses_a_negative_duration() -> None:
    with pytest.raises(ValidationError) as info:
        nine_to_five().add(local(NEW_YORK, 2026, 1, 9, 16), timedelta(seconds=-1))
    assert info.value.field == "duration"


def test_add_refuses_a_duration_that_is_not_a_timedelta() -> None:
    with pytest.raises(ValidationError) as info:
        nine_to_five().add(local(NEW_YORK, 2026, 1, 9, 16), 3600)  # type: ignore[arg-type]
    assert info.value.field == "duration"


def test_add_refuses_a_deadline_after_the_year_9999() -> None:
    with pytest.raises(ValidationError) as info:
        nine_to_five().add(local(NEW_YORK, 2026, 1, 9, 16), timedelta.max)
    assert info.value.field == "duration"


# -- elapsed, is_open, next_open -------------------------------------------------------


def test_elapsed_counts_only_open_time() -> None:
    calendar = seoul()
    assert calendar.elapsed(local(SEOUL, 2026, 9, 23, 9), local(SEOUL, 2026, 9, 28, 9)) == (
        timedelta(hours=8)
    )
    assert calendar.elapsed(local(SEOUL, 2026, 9, 21, 11), local(SEOUL, 2026, 9, 21, 14)) == (
        timedelta(hours=2)
    )


def test_elapsed_is_zero_when_end_is_not_after_start() -> None:
    calendar = nine_to_five()
    at = local(NEW_YORK, 2026, 1, 9, 10)
    assert calendar.elapsed(at, at) == timedelta(0)
    assert calendar.elapsed(at, at - timedelta(hours=1)) == timedelta(0)


def test_elapsed_refuses_naive_instants() -> None:
    calendar = nine_to_five()
    with pytest.raises(ValidationError) as info:
        calendar.elapsed(local(NEW_YORK, 2026, 1, 9, 10), datetime(2026, 1, 9, 12))
    assert info.value.field == "end"


def test_ranges_are_open_at_the_start_and_closed_at_the_end() -> None:
    calendar = seoul()
    assert calendar.is_open(local(SEOUL, 2026, 9, 21, 9))
    assert calendar.is_open(local(SEOUL, 2026, 9, 21, 11, 59, 59))
    assert not calendar.is_open(local(SEOUL, 2026, 9, 21, 12))
    assert not calendar.is_open(local(SEOUL, 2026, 9, 24, 10))  # Chuseok
    assert not calendar.is_open(local(SEOUL, 2026, 9, 27, 10))  # Sunday


def test_next_open_is_the_instant_itself_when_open() -> None:
    calendar = seoul()
    at = local(SEOUL, 2026, 9, 21, 10)
    assert calendar.next_open(at) == at
    assert calendar.next_open(local(SEOUL, 2026, 9, 21, 12, 30)) == local(SEOUL, 2026, 9, 21, 13)
    assert calendar.next_open(local(SEOUL, 2026, 9, 23, 18)) == local(SEOUL, 2026, 9, 28, 9)


def test_intervals_are_empty_on_holidays_and_closed_days() -> None:
    calendar = seoul()
    assert calendar.intervals(date(2026, 9, 24)) == ()
    assert calendar.intervals(date(2026, 9, 27)) == ()
    assert len(calendar.intervals(date(2026, 9, 23))) == 2


# -- DST: ranges are wall-clock time, business time is real time -------------------


def test_new_york_spring_forward_day_has_five_real_hours_from_midnight_to_six() -> None:
    assert hours_of(sundays("America/New_York", ("00:00", "06:00")), date(2026, 3, 8)) == (
        timedelta(hours=5)
    )


def test_new_york_fall_back_day_has_seven_real_hours_from_midnight_to_six() -> None:
    assert hours_of(sundays("America/New_York", ("00:00", "06:00")), date(2026, 11, 1)) == (
        timedelta(hours=7)
    )


def test_helsinki_fall_back_day_has_seven_real_hours_from_midnight_to_six() -> None:
    calendar = sundays("Europe/Helsinki", ("00:00", "06:00"))
    assert hours_of(calendar, date(2017, 10, 29)) == timedelta(hours=7)
    assert hours_of(calendar, date(2017, 3, 26)) == timedelta(hours=5)
    assert hours_of(calendar, date(2017, 10, 22)) == timedelta(hours=6)


def test_add_across_spring_forward_counts_real_time() -> None:
    calendar = sundays("America/New_York", ("00:00", "06:00"))
    deadline = calendar.add(local(NEW_YORK, 2026, 3, 8, 1, 30), timedelta(hours=1))
    assert deadline == local(NEW_YORK, 2026, 3, 8, 3, 30)  # EDT: one real hour later


def test_add_across_fall_back_counts_real_time() -> None:
    calendar = sundays("America/New_York", ("00:00", "06:00"))
    deadline = calendar.add(local(NEW_YORK, 2026, 11, 1, 0, 30), timedelta(hours=3))
    assert deadline == local(NEW_YORK, 2026, 11, 1, 2, 30)  # EST: the 01:00 hour ran twice
    assert calendar.add(local(NEW_YORK, 2026, 11, 1, 0), timedelta(hours=7)) == local(
        NEW_YORK, 2026, 11, 1, 6
    )


def test_a_range_inside_the_spring_gap_is_closed_that_day_only() -> None:
    calendar = sundays("America/New_York", ("02:00", "02:30"))
    assert calendar.intervals(date(2026, 3, 8)) == ()
    assert hours_of(calendar, date(2026, 3, 15)) == timedelta(minutes=30)
    assert not calendar.is_open(datetime(2026, 3, 8, 7, 0, tzinfo=UTC))


def test_a_range_starting_in_the_spring_gap_opens_when_the_gap_ends() -> None:
    calendar = sundays("America/New_York", ("02:30", "04:00"))
    ((start, end),) = calendar.intervals(date(2026, 3, 8))
    assert start == local(NEW_YORK, 2026, 3, 8, 3)
    assert end - start == timedelta(hours=1)


def test_an_ambiguous_range_end_is_its_first_occurrence() -> None:
    calendar = sundays("America/New_York", ("00:00", "01:30"))
    ((start, end),) = calendar.intervals(date(2026, 11, 1))
    assert end == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert end - start == timedelta(hours=1, minutes=30)


def test_an_ambiguous_range_start_is_its_first_occurrence_and_covers_the_repeat() -> None:
    calendar = sundays("America/New_York", ("01:30", "03:00"))
    ((start, end),) = calendar.intervals(date(2026, 11, 1))
    assert start == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert end - start == timedelta(hours=2, minutes=30)
    assert calendar.is_open(local(NEW_YORK, 2026, 11, 1, 1, 10, fold=1))  # the repeated hour


@pytest.mark.parametrize(
    ("day", "split"), [(date(2026, 3, 8), "02:30"), (date(2026, 11, 1), "01:30")]
)
def test_splitting_a_range_at_a_transition_never_changes_its_total(day: date, split: str) -> None:
    whole = sundays("America/New_York", ("00:00", "06:00"))
    halves = sundays("America/New_York", ("00:00", split), (split, "06:00"))
    assert hours_of(halves, day) == hours_of(whole, day)


def test_sao_paulo_midnight_transitions() -> None:
    calendar = BusinessCalendar(
        timezone="America/Sao_Paulo", hours={5: [("22:00", "24:00")], 6: [("00:00", "02:00")]}
    )
    # 2018-11-04 00:00 -> 01:00 (spring forward at midnight): Sunday's 00:00 is 01:00.
    assert hours_of(calendar, date(2018, 11, 3)) == timedelta(hours=2)
    assert hours_of(calendar, date(2018, 11, 4)) == timedelta(hours=1)
    # 2019-02-17 00:00 -> 2019-02-16 23:00 (fall back at midnight): Saturday's
    # 23:00 hour runs twice, and "24:00" is the first instant of Sunday.
    assert hours_of(calendar, date(2019, 2, 16)) == timedelta(hours=3)
    assert calendar.is_open(local(SAO_PAULO, 2019, 2, 16, 23, 30, fold=1))
    start = local(SAO_PAULO, 2019, 2, 16, 23, 30, fold=1)
    assert calendar.add(start, timedelta(hours=1)) == local(SAO_PAULO, 2019, 2, 17, 0, 30)


def test_a_skipped_day_has_no_business_time() -> None:
    # Samoa skipped Friday 2011-12-30 when it crossed the date line.
    calendar = BusinessCalendar.weekdays("Pacific/Apia", [("09:00", "17:00")])
    assert calendar.intervals(date(2011, 12, 30)) == ()
    start = local(ZoneInfo("Pacific/Apia"), 2011, 12, 29, 16)
    assert calendar.add(start, timedelta(hours=2)) == local(
        ZoneInfo("Pacific/Apia"), 2012, 1, 2, 10
    )


def brute_force_open_minutes(
    zone: ZoneInfo, hours: dict[int, list[tuple[str, str]]], first: date, last: date
) -> set[datetime]:
    """Open UTC minutes by the documented rule, found by scanning minutes: a range
    runs from the first minute whose wall clock reads its start (or later) to the
    first minute whose wall clock reads its end (or later)."""

    def first_minute_reading(wall: datetime) -> datetime:
        t = wall.replace(tzinfo=UTC) - timedelta(hours=16)
        while t.astimezone(zone).replace(tzinfo=None) < wall:
            t += timedelta(minutes=1)
        return t

    def wall_time(day: date, text: str) -> datetime:
        if text == "24:00":
            return datetime.combine(day + timedelta(days=1), time(0))
        return datetime.combine(day, time.fromisoformat(text))

    minutes: set[datetime] = set()
    day = first
    while day <= last:
        for start, end in hours.get(day.weekday(), []):
            a = first_minute_reading(wall_time(day, start))
            b = first_minute_reading(wall_time(day, end))
            while a < b:
                minutes.add(a)
                a += timedelta(minutes=1)
        day += timedelta(days=1)
    return minutes


@pytest.mark.parametrize(
    ("zone", "sunday"),
    [
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
        ("Europe/Helsinki", date(2017, 10, 29)),
        ("Australia/Lord_Howe", date(2026, 4, 5)),
    ],
)
def test_minute_by_minute_reference_agrees_around_transitions(zone: str, sunday: date) -> None:
    hours = {
        5: [("22:00", "24:00")],
        6: [("00:30", "01:30"), ("01:45", "02:15"), ("02:45", "03:30"), ("05:00", "24:00")],
        0: [("00:00", "02:00")],
    }
    calendar = BusinessCalendar(timezone=zone, hours=hours)
    open_minutes = brute_force_open_minutes(
        ZoneInfo(zone), hours, sunday - timedelta(days=1), sunday + timedelta(days=1)
    )
    begin = datetime.combine(sunday - timedelta(days=2), time(0), tzinfo=UTC)
    counted = timedelta(0)
    for step in range(4 * 24 * 60):
        t = begin + timedelta(minutes=step)
        assert calendar.is_open(t) == (t in open_minutes), t
        assert calendar.elapsed(begin, t) == counted, t
        counted += timedelta(minutes=1) if t in open_minutes else timedelta(0)


# -- properties ------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Asia/Seoul",
    "America/New_York",
    "Europe/Helsinki",
    "Australia/Lord_Howe",
    "Asia/Kathmandu",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Pacific/Apia",
]


@st.composite
def day_ranges(draw: st.DrawFn) -> list[tuple[str, str]]:
    marks = sorted(draw(st.sets(st.integers(0, 96), max_size=6)))
    marks = marks[: len(marks) // 2 * 2]

    def text(quarter: int) -> str:
        return f"{quarter // 4:02d}:{quarter % 4 * 15:02d}"

    return [(text(a), text(b)) for a, b in zip(marks[::2], marks[1::2], strict=True)]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    hours = {day: draw(day_ranges()) for day in range(7)}
    if not any(hours.values()):
        hours[draw(st.integers(0, 6))] = [("09:00", "17:00")]
    holidays = draw(
        st.lists(st.dates(min_value=date(2010, 1, 1), max_value=date(2031, 12, 31)), max_size=30)
    )
    return BusinessCalendar(timezone=draw(st.sampled_from(ZONES)), hours=hours, holidays=holidays)


starts = st.datetimes(
    min_value=datetime(2010, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=14))


@PROPERTY_SETTINGS
@given(calendars(), starts, durations)
def test_elapsed_undoes_add(calendar: BusinessCalendar, start: datetime, d: timedelta) -> None:
    assert calendar.elapsed(start, calendar.add(start, d)) == d


@PROPERTY_SETTINGS
@given(calendars(), starts, durations, durations)
def test_add_is_monotonic_in_duration(
    calendar: BusinessCalendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    low, high = sorted((d1, d2))
    assert calendar.add(start, low) <= calendar.add(start, high)


@PROPERTY_SETTINGS
@given(calendars(), starts, durations)
def test_a_deadline_is_inside_an_open_range_or_at_its_end(
    calendar: BusinessCalendar, start: datetime, d: timedelta
) -> None:
    deadline = calendar.add(start, d)
    assert deadline >= start
    if d > timedelta(0):
        assert calendar.is_open(deadline) or calendar.is_open(deadline - timedelta(microseconds=1))
    else:
        assert deadline == calendar.next_open(start)
        assert calendar.is_open(deadline)


@PROPERTY_SETTINGS
@given(calendars(), starts, durations, durations)
def test_elapsed_adds_up_over_consecutive_periods(
    calendar: BusinessCalendar, start: datetime, d1: timedelta, d2: timedelta
) -> None:
    middle, end = start + d1, start + d1 + d2
    assert calendar.elapsed(start, middle) + calendar.elapsed(middle, end) == calendar.elapsed(
        start, end
    )
    assert calendar.elapsed(start, end) <= end - start


def test_always_counts_real_time() -> None:
    calendar = BusinessCalendar.always("America/New_York")
    start = local(NEW_YORK, 2026, 3, 7, 12).astimezone(UTC)  # across spring forward
    assert calendar.add(start, timedelta(days=2)) == start + timedelta(days=2)
    assert calendar.elapsed(start, start + timedelta(hours=30)) == timedelta(hours=30)


def test_evolve_builds_a_calendar_with_fresh_intervals() -> None:
    calendar = seoul()
    start = local(SEOUL, 2026, 9, 23, 17)
    assert calendar.add(start, timedelta(hours=2)) == local(SEOUL, 2026, 9, 28, 10)
    workday = attrs.evolve(calendar, holidays=[])
    assert workday.add(start, timedelta(hours=2)) == local(SEOUL, 2026, 9, 24, 10)
