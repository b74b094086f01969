"""Timers: durable, versioned records of "do X for subject S at instant T".

A timer fires once per **cycle**. Scheduling a timer that is not pending (new,
fired or cancelled) starts a new cycle; moving the deadline of a pending timer
keeps its cycle. ``(id, cycle)`` is the dedupe key of a fire: a host that
forwards fires elsewhere can drop a second delivery of the same key.

Durable timers are claimed by workers with a **lease**: a claim writes the
timer at ``version + 1`` with the worker and the lease's end, and the fire is
committed at ``version + 2`` together with its effects. A worker that paused
past its lease loses the timer to the next claim, and its own commit then
fails with ``ConflictError`` (the version moved on): the version is the fence.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime, timedelta
from typing import ClassVar

import attrs

from cxflow import _validate as v
from cxflow.errors import ValidationError

__all__ = ["Timer", "TimerFire", "TimerState", "subject_timer_id"]


class TimerState(enum.Enum):
    """Where a timer is in its cycle."""

    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


@attrs.frozen(kw_only=True)
class TimerFire:
    """One fire of a timer: what a handler acts on. ``key`` is the dedupe key."""

    timer_id: str
    kind: str
    subject_id: str
    cycle: int
    deadline: datetime

    @property
    def key(self) -> tuple[str, int]:
        """``(timer id, cycle)``: unique per fire."""
        return (self.timer_id, self.cycle)


@attrs.frozen(kw_only=True)
class Timer:
    """A durable timer of one tenant (see the module docstring for cycles and leases)."""

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    id: str = attrs.field(validator=v.identifier)
    kind: str = attrs.field(validator=v.identifier)
    """What the timer is for, e.g. ``"autoclose"``, ``"sla.breach"``, ``"task.overdue"``."""
    subject_id: str = attrs.field(validator=v.identifier)
    """The conversation or task it is about."""
    deadline: datetime = attrs.field(converter=v.to_utc, validator=v.aware)
    cycle: int = attrs.field(default=1, validator=v.positive_int)
    state: TimerState = attrs.field(
        default=TimerState.PENDING, validator=v.instance_of(TimerState)
    )
    lease_owner: str | None = attrs.field(default=None, validator=v.optional_name)
    lease_until: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    fired_at: datetime | None = attrs.field(
        default=None, converter=v.optional_to_utc, validator=v.optional_aware
    )
    version: int = attrs.field(default=1, validator=v.positive_int)

    @property
    def pending(self) -> bool:
        """True while the timer waits to fire."""
        return self.state is TimerState.PENDING

    def is_due(self, at: datetime) -> bool:
        """Pending, deadline reached and not leased to a worker at ``at``."""
        return (
            self.state is TimerState.PENDING
            and self.deadline <= at
            and (self.lease_until is None or self.lease_until <= at)
        )

    def fire(self) -> TimerFire:
        """The fire this timer's current cycle produces."""
        return TimerFire(
            timer_id=self.id,
            kind=self.kind,
            subject_id=self.subject_id,
            cycle=self.cycle,
            deadline=self.deadline,
        )

    # -- transitions (each returns the next version) ---------------------------------

    def rescheduled(self, deadline: datetime) -> Timer:
        """Pending again with ``deadline``: same cycle if pending, else the next one.
        Any lease is dropped."""
        cycle = self.cycle if self.pending else self.cycle + 1
        return attrs.evolve(
            self,
            deadline=deadline,
            cycle=cycle,
            state=TimerState.PENDING,
            lease_owner=None,
            lease_until=None,
            fired_at=None,
            version=self.version + 1,
        )

    def cancelled(self) -> Timer:
        """Cancelled (ends the cycle without a fire)."""
        if not self.pending:
            raise ValidationError("state", f"timer {self.id!r} is {self.state.value}, not pending")
        return attrs.evolve(
            self,
            state=TimerState.CANCELLED,
            lease_owner=None,
            lease_until=None,
            version=self.version + 1,
        )

    def claimed(self, worker: str, at: datetime, lease: timedelta) -> Timer:
        """Leased to ``worker`` (a name) until ``at + lease`` (the claim's fence
        is the new version); ``lease`` is positive and at most ``MAX_DURATION``."""
        worker = v.check_name(worker, "worker")
        at = v.check_instant(at, "at")
        lease = v.check_duration(lease, "lease")
        if not self.is_due(at):
            raise ValidationError("timer", f"timer {self.id!r} is not due and free at {at}")
        return attrs.evolve(
            self, lease_owner=worker, lease_until=at + lease, version=self.version + 1
        )

    def fired(self, at: datetime) -> Timer:
        """Fired at ``at`` (the cycle is over)."""
        at = v.check_instant(at, "at")
        if not self.pending:
            raise ValidationError("state", f"timer {self.id!r} is {self.state.value}, not pending")
        return attrs.evolve(
            self,
            state=TimerState.FIRED,
            fired_at=at,
            lease_owner=None,
            lease_until=None,
            version=self.version + 1,
        )


def subject_timer_id(prefix: str, subject_id: str) -> str:
    """The id of a timer about ``subject_id``: ``"<prefix>:<subject id>"``, or,
    when that is longer than ``MAX_ID`` characters (a subject id near the
    limit), ``"<prefix>:#<sha256 of the subject id>"``: one stable, valid id
    per (prefix, subject). ``ValidationError`` for a subject id that is not
    a valid id. Every timer id built from a subject id goes through here."""
    v.check_id(subject_id, "subject_id")
    timer_id = f"{prefix}:{subject_id}"
    if len(timer_id) <= v.MAX_ID:
        return timer_id
    digest = hashlib.sha256(subject_id.encode("utf-8")).hexdigest()
    return f"{prefix}:#{digest}"


def plan_timer(
    current: Timer | None, *, timer_id: str, kind: str, subject_id: str, deadline: datetime | None
) -> Timer | None:
    """The timer version to write so that ``timer_id`` fires at ``deadline``
    (``None``: it should not fire), or ``None`` when nothing needs writing.

    A fired timer whose deadline equals ``deadline`` already fired for this
    situation and is left alone: each situation fires once.
    """
    if current is None:
        if deadline is None:
            return None
        return Timer(id=timer_id, kind=kind, subject_id=subject_id, deadline=deadline)
    if deadline is None:
        return current.cancelled() if current.pending else None
    if current.deadline == deadline and current.state is not TimerState.CANCELLED:
        return None
    return current.rescheduled(deadline)
