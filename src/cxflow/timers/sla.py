"""SLA policies and clocks: first response, next response and resolution.

A :class:`SlaPolicy` picks targets for a conversation by priority and/or
plan tier and measures them in business time on an optional calendar (none:
around the clock). Each running target is an :class:`SlaClock` kept on the
conversation; every change of a clock is an event (activated, paused,
resumed, warned, fulfilled, breached) so reports can be rebuilt from them.

The pure functions here compute clocks; the service schedules one timer per
running clock at its next instant (the warning, then the breach), so
deadlines are exact and nothing polls.

Lifecycle (``sync_clocks``):

- open: first-response and resolution clocks start;
- a human agent reply fulfils first response (and next response);
- a customer message after an agent reply starts a next-response clock;
- waiting (on the customer or a third party): running clocks pause, keeping
  the business time already consumed; leaving waiting resumes them;
- close: resolution is fulfilled (stopped, when no agent ever replied: closed
  is not resolved) and the other clocks stop; reopening resumes the
  resolution clock with the time it had consumed;
- a breach keeps its ``due_at`` (the exact breach instant); ``consumed`` is
  measured when the timer fired.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs

from cxflow import _validate as v
from cxflow.errors import ValidationError
from cxflow.priority import Priority, to_optional_priority

__all__ = [
    "BusinessTime",
    "SlaClock",
    "SlaClockState",
    "SlaMetric",
    "SlaPolicy",
    "SlaRule",
    "SlaTargets",
]


class BusinessTime(Protocol):
    """What SLA clocks need of a calendar (``BusinessCalendar`` provides it)."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of business time after ``start``."""
        ...

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between ``start`` and ``end`` (zero if end <= start)."""
        ...


class SlaMetric(enum.Enum):
    """What an SLA target measures."""

    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"


class SlaClockState(enum.Enum):
    """Where a clock is."""

    RUNNING = "running"
    PAUSED = "paused"
    FULFILLED = "fulfilled"
    BREACHED = "breached"
    STOPPED = "stopped"
    """Ended without being met or missed (e.g. next response when the
    conversation closed)."""


def _optional_positive(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        v.check_duration(value, attribute.name)


def _calendar(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not (
        callable(getattr(value, "add", None)) and callable(getattr(value, "elapsed", None))
    ):
        raise ValidationError(
            attribute.name,
            "expected None or a business calendar (add and elapsed, e.g. a BusinessCalendar), "
            f"got {type(value).__name__}",
        )


@attrs.frozen(kw_only=True)
class SlaTargets:
    """Business-time targets; ``None`` means "not measured". Each target is
    positive and at most ``MAX_DURATION`` (3650 days)."""

    first_response: timedelta | None = attrs.field(default=None, validator=_optional_positive)
    next_response: timedelta | None = attrs.field(default=None, validator=_optional_positive)
    resolution: timedelta | None = attrs.field(default=None, validator=_optional_positive)

    def target(self, metric: SlaMetric) -> timedelta | None:
        """The target of ``metric``."""
        result: timedelta | None = getattr(self, metric.value)
        return result


@attrs.frozen(kw_only=True)
class SlaRule:
    """Targets for conversations of ``priority`` (a ``Priority`` or its value)
    and/or ``plan`` (``None``: any)."""

    targets: SlaTargets = attrs.field(validator=v.instance_of(SlaTargets))
    priority: Priority | None = attrs.field(
        default=None, converter=to_optional_priority, validator=v.optional_enum_of(Priority)
    )
    plan: str | None = attrs.field(default=None, validator=v.optional_name)

    def matches(self, priority: Priority, plan: str | None) -> bool:
        """True when this rule applies to a conversation of ``priority`` and ``plan``."""
        return (self.priority is None or self.priority is priority) and (
            self.plan is None or self.plan == plan
        )


@attrs.frozen(kw_only=True)
class SlaPolicy:
    """A tenant's SLA: rules tried in order (the first match wins), a warning
    lead time and an optional business-hours calendar."""

    id: str = attrs.field(validator=v.identifier)
    rules: tuple[SlaRule, ...] = attrs.field(converter=v.to_tuple, validator=v.tuple_of(SlaRule))
    warn_before: timedelta = attrs.field(default=timedelta(0), validator=v.duration(zero=True))
    """Emit a warning this much business time before a breach (zero: no
    warning); at most ``MAX_DURATION``."""
    calendar: BusinessTime | None = attrs.field(default=None, eq=False, validator=_calendar)
    """Business hours; ``None`` measures around the clock. Anything without
    ``add`` and ``elapsed`` (``"9-to-5"``) is a ``ValidationError``."""
    escalation: tuple[str, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.names
    )
    """Names of actions the host (or the rule engine) performs on a breach,
    carried on the escalation event; cxflow does not interpret them."""

    def __attrs_post_init__(self) -> None:
        if not self.rules:
            raise ValidationError("rules", "an SLA policy needs at least one rule")

    def targets_for(self, priority: Priority, plan: str | None) -> SlaTargets | None:
        """The targets of the first matching rule, or ``None``."""
        for rule in self.rules:
            if rule.matches(priority, plan):
                return rule.targets
        return None

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """``start`` plus ``duration`` of business time."""
        if self.calendar is None:
            return start + duration
        return self.calendar.add(start, duration)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two instants."""
        if self.calendar is None:
            return max(end - start, timedelta(0))
        return self.calendar.elapsed(start, end)


@attrs.frozen(kw_only=True)
class SlaClock:
    """One measured target of one conversation.

    ``consumed`` is the business time used before ``running_since``; while
    running, ``due_at`` is the breach instant and ``warn_at`` the warning
    instant (``None`` when no warning is due or it was sent).
    """

    metric: SlaMetric
    target: timedelta
    state: SlaClockState
    started_at: datetime
    consumed: timedelta = timedelta(0)
    running_since: datetime | None = None
    due_at: datetime | None = None
    warn_at: datetime | None = None
    warned: bool = False
    ended_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Running or paused (not ended)."""
        return self.state in (SlaClockState.RUNNING, SlaClockState.PAUSED)

    @property
    def next_instant(self) -> datetime | None:
        """When this clock next needs attention: its warning, else its breach."""
        if self.state is not SlaClockState.RUNNING:
            return None
        if self.warn_at is not None and not self.warned:
            return self.warn_at
        return self.due_at


def start_clock(policy: SlaPolicy, metric: SlaMetric, target: timedelta, at: datetime) -> SlaClock:
    """A clock for ``metric`` running from ``at``."""
    clock = SlaClock(metric=metric, target=target, state=SlaClockState.PAUSED, started_at=at)
    return resume_clock(policy, clock, at)


def pause_clock(policy: SlaPolicy, clock: SlaClock, at: datetime) -> SlaClock:
    """Stop the clock counting at ``at``, keeping the business time it consumed."""
    if clock.state is not SlaClockState.RUNNING:
        return clock
    assert clock.running_since is not None
    return attrs.evolve(
        clock,
        state=SlaClockState.PAUSED,
        consumed=clock.consumed + policy.elapsed(clock.running_since, at),
        running_since=None,
        due_at=None,
        warn_at=None,
    )


def resume_clock(policy: SlaPolicy, clock: SlaClock, at: datetime) -> SlaClock:
    """Start the clock counting again from ``at``; the breach is due when the
    remaining target is used up in business time."""
    if clock.state is not SlaClockState.PAUSED:
        return clock
    remaining = max(clock.target - clock.consumed, timedelta(0))
    due_at = policy.add(at, remaining)
    warn_at: datetime | None = None
    if policy.warn_before > timedelta(0) and not clock.warned:
        warn_at = policy.add(at, remaining - policy.warn_before) if (
            remaining > policy.warn_before
        ) else at
    return attrs.evolve(
        clock, state=SlaClockState.RUNNING, running_since=at, due_at=due_at, warn_at=warn_at
    )


def end_clock(policy: SlaPolicy, clock: SlaClock, at: datetime, state: SlaClockState) -> SlaClock:
    """End an active clock as FULFILLED or STOPPED (a breached clock stays breached)."""
    if not clock.active:
        return clock
    paused = pause_clock(policy, clock, at)
    return attrs.evolve(paused, state=state, ended_at=at)


def check_clock(policy: SlaPolicy, clock: SlaClock, at: datetime) -> tuple[SlaClock, str | None]:
    """At ``at`` (a timer fired): warn or breach when due. Returns the clock and
    ``"warned"``, ``"breached"`` or ``None`` (nothing was due: a stale fire).

    A breach found before its warning was given (the tick ran late, past both
    instants) marks the clock warned as well: see :func:`missed_warning`."""
    if clock.state is not SlaClockState.RUNNING:
        return clock, None
    assert clock.due_at is not None
    if clock.due_at <= at:
        breached = pause_clock(policy, clock, at)
        return (
            attrs.evolve(
                breached,
                state=SlaClockState.BREACHED,
                due_at=clock.due_at,
                ended_at=at,
                warned=clock.warned or clock.warn_at is not None,
            ),
            "breached",
        )
    if clock.warn_at is not None and not clock.warned and clock.warn_at <= at:
        return attrs.evolve(clock, warned=True), "warned"
    return clock, None


def missed_warning(before: SlaClock, what: str | None) -> bool:
    """True when ``check_clock`` found ``before`` breached although its warning
    was never given: the warning is then due too, emitted late, just before the
    breach, so reports built from events see every warning after downtime."""
    return what == "breached" and before.warn_at is not None and not before.warned


@attrs.frozen(kw_only=True)
class SlaChange:
    """One clock change computed by :func:`sync_clocks` (the service turns it
    into an event): ``change`` is ``"activated"``, ``"paused"``, ``"resumed"``,
    ``"fulfilled"`` or ``"stopped"``."""

    change: str
    clock: SlaClock


class _Conversation(Protocol):
    """What :func:`sync_clocks` reads of a conversation."""

    @property
    def open(self) -> bool: ...
    @property
    def waiting(self) -> bool: ...
    @property
    def priority(self) -> Priority: ...
    @property
    def plan(self) -> str | None: ...
    @property
    def last_agent_reply_at(self) -> datetime | None: ...
    @property
    def last_customer_message_at(self) -> datetime | None: ...
    @property
    def agent_ever_replied(self) -> bool: ...
    @property
    def last_speaker(self) -> Any: ...
    @property
    def sla(self) -> tuple[SlaClock, ...]: ...


def sync_clocks(
    policy: SlaPolicy, before: _Conversation | None, after: _Conversation, at: datetime
) -> tuple[tuple[SlaClock, ...], list[SlaChange]]:
    """The clocks of ``after`` once the change from ``before`` (``None``: just
    opened) is applied at ``at``, and the changes made (see the module rules)."""
    clocks = {clock.metric: clock for clock in after.sla}
    changes: list[SlaChange] = []
    targets = policy.targets_for(after.priority, after.plan)

    def put(clock: SlaClock, change: str) -> None:
        clocks[clock.metric] = clock
        changes.append(SlaChange(change=change, clock=clock))

    def start(metric: SlaMetric) -> None:
        target = targets.target(metric) if targets is not None else None
        if target is None:
            return
        clock = start_clock(policy, metric, target, at)
        if after.waiting:
            clock = pause_clock(policy, clock, at)
        put(clock, "activated")

    def end(metric: SlaMetric, state: SlaClockState) -> None:
        clock = clocks.get(metric)
        if clock is not None and clock.active:
            put(end_clock(policy, clock, at, state), state.value)

    if before is None:
        start(SlaMetric.FIRST_RESPONSE)
        start(SlaMetric.RESOLUTION)
        return tuple(clocks.values()), changes

    if before.open and not after.open:
        # A conversation no agent ever answered was closed, not resolved.
        resolved = SlaClockState.FULFILLED if after.agent_ever_replied else SlaClockState.STOPPED
        end(SlaMetric.RESOLUTION, resolved)
        end(SlaMetric.FIRST_RESPONSE, SlaClockState.STOPPED)
        end(SlaMetric.NEXT_RESPONSE, SlaClockState.STOPPED)
        return tuple(clocks.values()), changes

    if not before.open and after.open:
        resolution = clocks.get(SlaMetric.RESOLUTION)
        ended_by_close = (SlaClockState.FULFILLED, SlaClockState.STOPPED)
        if resolution is not None and resolution.state in ended_by_close:
            reopened = attrs.evolve(resolution, state=SlaClockState.PAUSED, ended_at=None)
            if not after.waiting:
                reopened = resume_clock(policy, reopened, at)
            put(reopened, "resumed")

    if after.last_agent_reply_at != before.last_agent_reply_at:
        end(SlaMetric.FIRST_RESPONSE, SlaClockState.FULFILLED)
        end(SlaMetric.NEXT_RESPONSE, SlaClockState.FULFILLED)

    next_response = clocks.get(SlaMetric.NEXT_RESPONSE)
    customer_waits_for_reply = (
        after.open
        and after.last_customer_message_at != before.last_customer_message_at
        and after.agent_ever_replied
        and getattr(after.last_speaker, "value", None) == "customer"
    )
    if customer_waits_for_reply and (next_response is None or not next_response.active):
        start(SlaMetric.NEXT_RESPONSE)

    if before.waiting != after.waiting and after.open:
        for clock in list(clocks.values()):
            if after.waiting and clock.state is SlaClockState.RUNNING:
                put(pause_clock(policy, clock, at), "paused")
            elif not after.waiting and clock.state is SlaClockState.PAUSED:
                put(resume_clock(policy, clock, at), "resumed")
    return tuple(clocks.values()), changes


def sync_task_clock(
    policy: SlaPolicy,
    clocks: tuple[SlaClock, ...],
    *,
    priority: Priority,
    before_kind: str | None,
    after_kind: str,
    after_deleted: bool,
    at: datetime,
) -> tuple[tuple[SlaClock, ...], list[SlaChange]]:
    """A task's resolution clock after a change (``before_kind`` ``None``: just
    created). Kinds are ``StatusKind`` values. The clock runs while the task is
    live and in a not-started or in-progress status, pauses in a waiting status
    or while deleted, is fulfilled when the task completes and resumes when it
    is reopened (moved out of a completed status)."""
    completed = ("completed_success", "completed_failure")
    clock = next((c for c in clocks if c.metric is SlaMetric.RESOLUTION), None)
    changes: list[SlaChange] = []

    def result(new: SlaClock | None, change: str | None) -> tuple[
        tuple[SlaClock, ...], list[SlaChange]
    ]:
        if new is None or change is None:
            return clocks, changes
        changes.append(SlaChange(change=change, clock=new))
        return (new,), changes

    runs = not after_deleted and after_kind not in completed and after_kind != "waiting"
    if clock is None:
        if before_kind is not None:
            return clocks, changes
        targets = policy.targets_for(priority, None)
        target = targets.resolution if targets is not None else None
        if target is None:
            return clocks, changes
        new = start_clock(policy, SlaMetric.RESOLUTION, target, at)
        if after_kind in completed:
            new = end_clock(policy, new, at, SlaClockState.FULFILLED)
        elif not runs:
            new = pause_clock(policy, new, at)
        return result(new, "activated")
    if after_kind in completed and not after_deleted:
        if clock.active:
            return result(end_clock(policy, clock, at, SlaClockState.FULFILLED), "fulfilled")
        return clocks, changes
    if clock.state is SlaClockState.FULFILLED and before_kind in completed:
        reopened = attrs.evolve(clock, state=SlaClockState.PAUSED, ended_at=None)
        return result(resume_clock(policy, reopened, at) if runs else reopened, "resumed")
    if runs and clock.state is SlaClockState.PAUSED:
        return result(resume_clock(policy, clock, at), "resumed")
    if not runs and clock.state is SlaClockState.RUNNING:
        return result(pause_clock(policy, clock, at), "paused")
    return clocks, changes
