"""Business-hours calendars: exact business-time arithmetic for SLA deadlines.

A ``BusinessCalendar`` is a time zone, weekly opening hours (several ranges per
weekday, so lunch breaks are closed) and holidays (local dates closed all day).
``add(start, duration)`` returns the instant at which ``duration`` of business
time has elapsed after ``start``; ``elapsed(start, end)`` measures business time
between two instants. Both are computed exactly, never by stepping.

Opening hours are local wall-clock times; business time is real elapsed time.
Each range of one local date becomes one real interval
``[instant(start), instant(end))`` where ``instant(w)`` is **the first instant at
which the local wall clock reads** ``w`` **or later**. Therefore:

- a wall time skipped by a spring-forward gap maps to the first instant after
  the gap (New York 2026-03-08: 02:30 maps to 03:00 EDT), so a range inside
  the gap is closed that day and 00:00-06:00 lasts 5 real hours;
- a wall time that occurs twice at a fall-back maps to its **first**
  occurrence, for starts and ends alike, and the range covers all real time
  between its two instants (New York 2026-11-01: 00:00-06:00 lasts 7 real
  hours; 00:00-01:30 ends at the first 01:30, EDT; 01:30-06:00 starts there
  and includes the repeated hour). Splitting a range in two at any wall time
  never changes the total;
- ``"24:00"`` is the next date's ``00:00``.

Intervals are half-open: the calendar is open at a range's start and closed at
its end. How it works: each local date's intervals are computed once (with the
time zone, at the edge) as integer UTC epoch microseconds and cached per
calendar (a bounded cache); ``add`` and ``elapsed`` then walk the intervals
with integer arithmetic. A calendar is an immutable value, safe to share
between threads; the cache only memoises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

import attrs

from cxflow._validate import check_instant, shown
from cxflow.clock import duration_us, epoch_us, from_epoch_us
from cxflow.errors import ValidationError

__all__ = ["BusinessCalendar"]

TimeOfDay: TypeAlias = str | time
"""A local wall-clock time: ``"HH:MM"`` (or ``"HH:MM:SS"``) text or a naive
``datetime.time``; ``"24:00"`` is allowed as the end of a range."""

Range: TypeAlias = tuple[str, str]
Week: TypeAlias = tuple[tuple[Range, ...], ...]

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_MAX_ORDINAL = date.max.toordinal()
_LAST_US = (_MAX_ORDINAL - 1 - _EPOCH_ORDINAL) * _DAY_US
_TIME_TEXT = re.compile(r"^\d\d:\d\d(:\d\d(\.\d{6})?)?\Z")
_CACHE_DATES = 4096
_NO_TIME = 1 << 62
_CLOSED: tuple[int, int, int, tuple[tuple[int, int], ...]] = (_NO_TIME, -_NO_TIME, 0, ())

_Day: TypeAlias = tuple[int, int, int, tuple[tuple[int, int], ...]]
"""One local date: (first start, last end, total open, intervals), epoch µs."""


def _parse_time(value: object, field: str, day: str, *, end: bool) -> int:
    """Microseconds after local midnight of ``value``."""
    if isinstance(value, str):
        if end and value in ("24:00", "24:00:00"):
            return _DAY_US
        if not _TIME_TEXT.match(value):
            raise ValidationError(field, f"{day}: {value!r} is not a time of day ('HH:MM')")
        try:
            value = time.fromisoformat(value)
        except ValueError:
            raise ValidationError(
                field, f"{day}: {value!r} is not a time of day ('HH:MM')"
            ) from None
    if not isinstance(value, time):
        raise ValidationError(
            field, f"{day}: expected 'HH:MM' text or a datetime.time, got {type(value).__name__}"
        )
    if value.tzinfo is not None:
        raise ValidationError(field, f"{day}: {value} has a time zone; give local wall-clock time")
    return ((value.hour * 60 + value.minute) * 60 + value.second) * _US + value.microsecond


def _format_time(us: int) -> str:
    if us == _DAY_US:
        return "24:00"
    seconds, micro = divmod(us, _US)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}"
    if second or micro:
        text += f":{second:02d}"
    if micro:
        text += f".{micro:06d}"
    return text


def _parse_day(weekday: int, ranges: object) -> tuple[Range, ...]:
    field = f"hours[{weekday}]"
    day = _WEEKDAY_NAMES[weekday]
    if ranges is None:
        return ()
    if isinstance(ranges, str | bytes | Mapping) or not isinstance(ranges, Iterable):
        raise ValidationError(field, f"{day}: expected a list of (start, end) ranges")
    parsed: list[tuple[int, int]] = []
    for item in ranges:
        if isinstance(item, str | bytes) or not isinstance(item, Iterable):
            raise ValidationError(field, f"{day}: expected a (start, end) pair, got {item!r}")
        pair = tuple(item)
        if len(pair) != 2:
            raise ValidationError(field, f"{day}: expected a (start, end) pair, got {item!r}")
        start = _parse_time(pair[0], field, day, end=False)
        end = _parse_time(pair[1], field, day, end=True)
        if start >= end:
            hint = " (use '24:00' for the end of the day)" if end == 0 else ""
            raise ValidationError(
                field,
                f"{day}: range {_format_time(start)}-{_format_time(end)} is empty; "
                f"the start must be before the end{hint}",
            )
        parsed.append((start, end))
    parsed.sort()
    for (start_a, end_a), (start_b, end_b) in pairwise(parsed):
        if start_b < end_a:
            raise ValidationError(
                field,
                f"{day}: range {_format_time(start_b)}-{_format_time(end_b)} overlaps "
                f"{_format_time(start_a)}-{_format_time(end_a)}",
            )
    return tuple((_format_time(start), _format_time(end)) for start, end in parsed)


def _to_week(value: Mapping[int, Iterable[tuple[TimeOfDay, TimeOfDay]]] | Iterable[Any]) -> Week:
    """Converter: weekday -> ranges (a mapping, or a sequence of seven days from
    Monday) becomes the canonical seven-tuple of sorted ``("HH:MM", "HH:MM")``
    pairs; raises ``ValidationError`` (field ``hours[weekday]``) on a bad range."""
    days: list[object] = [()] * 7
    if isinstance(value, Mapping):
        for weekday, ranges in value.items():
            if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
                raise ValidationError(
                    "hours", f"weekday keys are 0 (Monday) to 6 (Sunday), got {weekday!r}"
                )
            days[weekday] = ranges
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        days = list(value)
        if len(days) != 7:
            raise ValidationError(
                "hours", f"expected a mapping of weekday to ranges or seven days, got {len(days)}"
            )
    else:
        raise ValidationError(
            "hours", f"expected a mapping of weekday to ranges, got {type(value).__name__}"
        )
    week = tuple(_parse_day(weekday, ranges) for weekday, ranges in enumerate(days))
    if not any(week):
        raise ValidationError("hours", "the calendar is never open; give at least one range")
    return week


def _to_holidays(value: Iterable[date | str]) -> tuple[date, ...]:
    """Converter: dates (or ISO ``YYYY-MM-DD`` text) become a sorted tuple
    without duplicates; raises ``ValidationError`` (field ``holidays``)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValidationError("holidays", f"expected a list of dates, got {type(value).__name__}")
    days: set[date] = set()
    for item in value:
        if isinstance(item, str):
            try:
                item = date.fromisoformat(item)
            except ValueError:
                raise ValidationError(
                    "holidays", f"{item!r} is not a date ('YYYY-MM-DD')"
                ) from None
        if isinstance(item, datetime) or not isinstance(item, date):
            raise ValidationError(
                "holidays", f"expected a date, got {type(item).__name__} {item!r}"
            )
        days.add(item)
    return tuple(sorted(days))


_MAX_ZONE_NAME = 255


def _timezone(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """An IANA time zone name that ``zoneinfo`` knows, spelled exactly (the
    zone the calendar computes with: ``"utc"`` is not ``"UTC"``)."""
    if not isinstance(value, str) or not value or len(value) > _MAX_ZONE_NAME:
        raise ValidationError(
            attribute.name, f"expected an IANA time zone name, got {shown(value)}"
        )
    try:
        ZoneInfo(value)
    except Exception:  # ZoneInfoNotFoundError, ValueError or OSError for malformed keys
        raise ValidationError(
            attribute.name, f"unknown time zone {value!r} (IANA names are case-sensitive)"
        ) from None


class _Days:
    """Open intervals per local date, in UTC epoch microseconds, cached (FIFO, bounded)."""

    __slots__ = ("_cache", "_holidays", "_week", "_zone")

    def __init__(self, zone: ZoneInfo, week: Week, holidays: Iterable[date]) -> None:
        self._zone = zone
        self._week = tuple(
            tuple(
                (
                    _parse_time(start, "hours", "", end=False),
                    _parse_time(end, "hours", "", end=True),
                )
                for start, end in ranges
            )
            for ranges in week
        )
        self._holidays = frozenset(day.toordinal() for day in holidays)
        self._cache: dict[int, _Day] = {}

    def day(self, ordinal: int) -> _Day:
        entry = self._cache.get(ordinal)
        if entry is None:
            entry = self._compute(ordinal)
            cache = self._cache
            if len(cache) >= _CACHE_DATES:
                with suppress(KeyError, RuntimeError, StopIteration):  # raced by another thread
                    del cache[next(iter(cache))]
            cache[ordinal] = entry
        return entry

    def _compute(self, ordinal: int) -> _Day:
        if not 1 <= ordinal < _MAX_ORDINAL:
            raise OverflowError("date out of range")
        ranges = self._week[(ordinal - 1) % 7]
        if not ranges or ordinal in self._holidays:
            return _CLOSED
        today = date.fromordinal(ordinal)
        ymd = (today.year, today.month, today.day)
        spans: list[tuple[int, int]] = []
        for start, end in ranges:
            a = self._instant(ordinal, ymd, start)
            b = (
                self._instant(ordinal + 1, _ymd(ordinal + 1), 0)
                if end == _DAY_US
                else self._instant(ordinal, ymd, end)
            )
            if b <= a:  # the whole range falls in a spring-forward gap
                continue
            if spans and spans[-1][1] == a:
                a = spans.pop()[0]
            spans.append((a, b))
        if not spans:
            return _CLOSED
        return (spans[0][0], spans[-1][1], sum(b - a for a, b in spans), tuple(spans))

    def _instant(self, ordinal: int, ymd: tuple[int, int, int], us: int) -> int:
        """The first instant (epoch µs) at which the local wall clock reads
        ``us`` (below 24:00) after midnight of date ``ordinal``, or later."""
        seconds, micro = divmod(us, _US)
        minutes, second = divmod(seconds, 60)
        hour, minute = divmod(minutes, 60)
        y, m, d = ymd
        zone = self._zone
        # fold=0 gives the offset before a transition, fold=1 the one after.
        before = zone.utcoffset(datetime(y, m, d, hour, minute, second, micro))
        after = zone.utcoffset(datetime(y, m, d, hour, minute, second, micro, fold=1))
        assert before is not None
        assert after is not None
        local = (ordinal - _EPOCH_ORDINAL) * _DAY_US + us
        if before >= after:  # an ordinary time, or a repeated one (first occurrence)
            return local - duration_us(before)
        # In a gap: find the transition, the first instant whose wall time >= ``us``.
        low, high = local - duration_us(after), local - duration_us(before)
        while high - low > 1:
            mid = (low + high) // 2
            offset = from_epoch_us(mid).astimezone(zone).utcoffset()
            assert offset is not None
            if mid + duration_us(offset) >= local:
                high = mid
            else:
                low = mid
        return high


def _ymd(ordinal: int) -> tuple[int, int, int]:
    day = date.fromordinal(ordinal)
    return (day.year, day.month, day.day)


@attrs.frozen(kw_only=True)
class BusinessCalendar:
    """A time zone, weekly opening hours and holidays (see the module docstring
    for how wall-clock ranges map to real time across DST changes).

    ``hours`` maps a weekday (``0`` Monday to ``6`` Sunday) to zero or more
    ``(start, end)`` ranges of local time, ``"HH:MM"`` text or ``datetime.time``,
    with ``"24:00"`` allowed as an end, e.g.
    ``{0: [("09:00", "12:00"), ("13:00", "18:00")], ...}``; a sequence of seven
    days from Monday is accepted too. It is stored as a seven-tuple of sorted
    ``("HH:MM", "HH:MM")`` pairs. ``holidays`` are local dates closed all day.
    Raises ``ValidationError`` for an unknown time zone, an empty or overlapping
    range (naming the weekday and range), or a calendar that is never open.
    """

    timezone: str = attrs.field(validator=_timezone)
    """IANA time zone name, e.g. ``"Asia/Seoul"``."""
    hours: Week = attrs.field(converter=_to_week)
    holidays: tuple[date, ...] = attrs.field(default=(), converter=_to_holidays)
    _days: _Days = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_days", _Days(ZoneInfo(self.timezone), self.hours, self.holidays))

    @classmethod
    def weekdays(
        cls,
        timezone: str,
        ranges: Iterable[tuple[TimeOfDay, TimeOfDay]],
        *,
        holidays: Iterable[date | str] = (),
    ) -> BusinessCalendar:
        """The same ``ranges`` Monday to Friday, closed at weekends, e.g.
        ``BusinessCalendar.weekdays("Asia/Seoul", [("09:00", "18:00")])``."""
        same: Any = (
            tuple(ranges)
            if isinstance(ranges, Iterable) and not isinstance(ranges, str | bytes | Mapping)
            else ranges  # refused by the hours converter, naming the weekday
        )
        return cls(timezone=timezone, hours=dict.fromkeys(range(5), same), holidays=holidays)

    @classmethod
    def always(cls, timezone: str = "UTC") -> BusinessCalendar:
        """Open around the clock, every day (business time is real time)."""
        return cls(timezone=timezone, hours=dict.fromkeys(range(7), (("00:00", "24:00"),)))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant, as aware UTC, at which ``duration`` of business time has
        elapsed after ``start``; a zero ``duration`` gives ``next_open(start)``.

        The result of a positive ``duration`` is inside an open range or at its
        end. Raises ``ValidationError`` for a naive or out-of-range ``start``
        (see ``check_instant``), a negative ``duration``, or a deadline after
        the year 9999.
        """
        at = epoch_us(check_instant(start, "start"))
        if not isinstance(duration, timedelta):
            raise ValidationError(
                "duration", f"expected a timedelta, got {type(duration).__name__}"
            )
        remaining = duration_us(duration)
        if remaining < 0:
            raise ValidationError("duration", "must not be negative")
        if at + remaining >= _LAST_US:  # business time never runs faster than real time
            raise ValidationError("duration", "the deadline falls after the year 9999")
        day = self._days.day
        ordinal = max(at // _DAY_US + _EPOCH_ORDINAL - 1, 1)  # the local date is at most 1 earlier
        try:
            while True:
                first, last, total, spans = day(ordinal)
                if at < last:
                    if at <= first and remaining > total:
                        remaining -= total
                        at = last
                    else:
                        for a, b in spans:
                            if b <= at:
                                continue
                            if a > at:
                                at = a
                            if remaining <= b - at:
                                return from_epoch_us(at + remaining)
                            remaining -= b - at
                            at = b
                ordinal += 1
        except OverflowError:
            raise ValidationError("duration", "the deadline falls after the year 9999") from None

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between ``start`` and ``end`` (zero when ``end <= start``).

        Raises ``ValidationError`` for a naive or out-of-range ``start`` or ``end``.
        """
        low = epoch_us(check_instant(start, "start"))
        high = epoch_us(check_instant(end, "end"))
        if high <= low:
            return timedelta(0)
        day = self._days.day
        ordinal = max(low // _DAY_US + _EPOCH_ORDINAL - 1, 1)
        stop = min(high // _DAY_US + _EPOCH_ORDINAL + 2, _MAX_ORDINAL - 1)
        counted = 0
        while ordinal <= stop:
            first, last, total, spans = day(ordinal)
            if last > low and first < high:
                if low <= first and last <= high:
                    counted += total
                else:
                    for a, b in spans:
                        a = max(a, low)
                        b = min(b, high)
                        if b > a:
                            counted += b - a
            ordinal += 1
        return timedelta(microseconds=counted)

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` is inside an open range (open at a range's start,
        closed at its end). Raises ``ValidationError`` for a naive or
        out-of-range ``at``."""
        instant = epoch_us(check_instant(at, "at"))
        return self._next_interval(instant)[0] <= instant

    def next_open(self, at: datetime) -> datetime:
        """The first open instant at or after ``at``, as aware UTC. Raises
        ``ValidationError`` for a naive or out-of-range ``at``."""
        instant = epoch_us(check_instant(at, "at"))
        return from_epoch_us(max(self._next_interval(instant)[0], instant))

    def intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The open intervals of local date ``day`` as aware UTC ``(start, end)``
        pairs (touching ranges merged; empty on holidays and closed days)."""
        if isinstance(day, datetime) or not isinstance(day, date):
            raise ValidationError("day", f"expected a date, got {type(day).__name__}")
        try:
            spans = self._days.day(day.toordinal())[3]
        except OverflowError:
            raise ValidationError("day", f"{day} is out of range") from None
        return tuple((from_epoch_us(a), from_epoch_us(b)) for a, b in spans)

    def _next_interval(self, instant: int) -> tuple[int, int]:
        day = self._days.day
        ordinal = max(instant // _DAY_US + _EPOCH_ORDINAL - 1, 1)
        try:
            while True:
                spans = day(ordinal)[3]
                for a, b in spans:
                    if b > instant:
                        return a, b
                ordinal += 1
        except OverflowError:
            raise ValidationError("at", "no open time before the year 9999") from None
