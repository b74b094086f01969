"""Clocks: the only place cxflow learns what time it is.

The domain core never reads a clock; the service layer asks its ``Clock``
and passes the instant in. Tests use ``TestClock``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from cxflow.errors import ValidationError

__all__ = [
    "Clock",
    "SystemClock",
    "TestClock",
    "duration_us",
    "ensure_aware",
    "epoch_us",
    "from_epoch_us",
]


def ensure_aware(value: object, field: str) -> datetime:
    """Return ``value`` as an aware UTC datetime.

    Raises ``ValidationError`` naming ``field`` when ``value`` is not a
    datetime, is naive (has no UTC offset) or cannot be expressed in UTC
    (an offset near year 1 or 9999). The range every store keeps is checked
    by ``cxflow._validate.check_instant``.
    """
    if not isinstance(value, datetime):
        raise ValidationError(field, f"expected an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "naive datetime; pass an aware datetime (with a UTC offset)")
    if value.tzinfo is UTC:
        return value
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError(field, f"{value.isoformat()} is out of range in UTC") from None


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current instant."""

    def now(self) -> datetime:
        """Return the current instant as an aware UTC datetime."""
        ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    """A frozen clock that moves only when told to.

    ``TestClock(start)`` starts at ``start`` (aware, required); ``advance``
    steps it forward and ``set`` jumps it (never backwards).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime) -> None:
        self._now = ensure_aware(start, "start")

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; return the new
        instant. ``ValidationError`` (field ``delta``) for a negative step, a
        step that is not a duration, or one past the last ``datetime``."""
        bad = ValidationError("delta", "expected a duration the clock can move by")
        try:
            step = delta if delta is not None else timedelta(**kwargs)
        except (TypeError, ValueError, OverflowError):
            raise bad from None
        if not isinstance(step, timedelta):
            raise bad
        if step < timedelta(0):
            raise ValidationError("delta", "a test clock never moves backwards")
        try:
            self._now = self._now + step
        except OverflowError:
            raise bad from None
        return self._now

    def set(self, instant: datetime) -> datetime:
        """Jump to ``instant`` (aware, not earlier than now); return it."""
        target = ensure_aware(instant, "instant")
        if target < self._now:
            raise ValidationError("instant", "a test clock never moves backwards")
        self._now = target
        return self._now


_US = 1_000_000
_DAY_US = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.toordinal()


def epoch_us(instant: datetime) -> int:
    """Microseconds since the Unix epoch of an aware UTC datetime (exact, no floats)."""
    return (
        (instant.toordinal() - _EPOCH_ORDINAL) * _DAY_US
        + ((instant.hour * 60 + instant.minute) * 60 + instant.second) * _US
        + instant.microsecond
    )


def from_epoch_us(us: int) -> datetime:
    """The aware UTC datetime ``us`` microseconds after the Unix epoch."""
    return _EPOCH + timedelta(microseconds=us)


def duration_us(delta: timedelta) -> int:
    """``delta`` in whole microseconds."""
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds
