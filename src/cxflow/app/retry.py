"""``RetryPolicy``: the one policy every write path uses for lost races.

A unit of work that loses an optimistic-concurrency race (another writer
committed first) is run again from fresh reads. How often, and how long to
wait in between, is decided here and nowhere else: bounded attempts with
full-jitter exponential backoff (the AWS "full jitter" scheme), so writers
that collided do not collide again in lockstep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import attrs

from cxflow import _validate as v
from cxflow.errors import ValidationError

__all__ = ["RetryPolicy"]


def _seconds(_inst: object, attribute: attrs.Attribute[float], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
        raise ValidationError(
            attribute.name, f"expected seconds from 0 to 10, got {v.shown(value)}"
        )


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How a unit of work that lost a race is run again.

    ``attempts`` runs in all (1: never retry). Before attempt *n + 1* the
    writer sleeps a random time in ``[0, min(cap, base * 2**(n - 1))]``
    seconds. ``sleep`` and ``random`` are injectable so tests never wait.
    A policy is an immutable value, safe to share between threads.
    """

    attempts: int = attrs.field(default=8, validator=v.int_between(1, 100))
    base: float = attrs.field(default=0.002, validator=_seconds)
    cap: float = attrs.field(default=0.1, validator=_seconds)
    sleep: Callable[[float], None] = attrs.field(default=time.sleep, eq=False, repr=False)
    random: Callable[[], float] = attrs.field(default=random.random, eq=False, repr=False)

    def backoff(self, attempt: int) -> None:
        """Sleep before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        delay = self.random() * min(self.cap, self.base * 2 ** (attempt - 1))
        if delay > 0:
            self.sleep(delay)
