"""Clocks: the only place cxflow learns what time it is.

The domain core never reads a clock; the service layer asks its ``Clock``
and passes the instant in. Tests use ``TestClock``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from cxflow.errors import ValidationError

__all__ = ["Clock", "SystemClock", "TestClock", "ensure_aware"]


def ensure_aware(value: object, field: str) -> datetime:
    """Return ``value`` as an aware UTC datetime.

    Raises ``ValidationError`` naming ``field`` when ``value`` is not a
    datetime or is naive (has no UTC offset).
    """
    if not isinstance(value, datetime):
        raise ValidationError(field, f"expected an aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "naive datetime; pass an aware datetime (with a UTC offset)")
    if value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


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
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; return the new instant."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValidationError("delta", "a test clock never moves backwards")
        self._now = self._now + step
        return self._now

    def set(self, instant: datetime) -> datetime:
        """Jump to ``instant`` (aware, not earlier than now); return it."""
        target = ensure_aware(instant, "instant")
        if target < self._now:
            raise ValidationError("instant", "a test clock never moves backwards")
        self._now = target
        return self._now
