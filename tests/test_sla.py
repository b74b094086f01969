"""SLA clocks: targets by priority/plan, pause/resume, warnings, breaches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from cxflow import ValidationError
from cxflow.conversations.model import AuthorKind
from cxflow.tasks.model import Priority
from cxflow.timers.sla import (
    SlaClockState,
    SlaMetric,
    SlaPolicy,
    SlaRule,
    SlaTargets,
    check_clock,
    end_clock,
    pause_clock,
    resume_clock,
    start_clock,
    sync_clocks,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
H = timedelta(hours=1)
M = timedelta(minutes=1)


class NineToFive:
    """A UTC 09:00-17:00, Monday-Friday calendar, computed by hand for the tests."""

    def _open(self, day: datetime) -> tuple[datetime, datetime] | None:
        if day.weekday() >= 5:
            return None
        start = day.replace(hour=9, minute=0, second=0, microsecond=0)
        return start, start + 8 * H

    def add(self, start: datetime, duration: timedelta) -> datetime:
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        cursor = start
        while True:
            window = self._open(day)
            if window is not None:
                begin = max(window[0], cursor)
                if begin <= window[1]:
                    if begin + duration <= window[1]:
                        return begin + duration
                    duration -= window[1] - begin
            day += timedelta(days=1)
            cursor = day

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        total = timedelta(0)
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            window = self._open(day)
            if window is not None:
                begin, finish = max(window[0], start), min(window[1], end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total


@attrs.frozen(kw_only=True)
class Conv:
    """The fields sync_clocks reads, as a plain value."""

    open: bool = True
    waiting: bool = False
    priority: Priority = Priority.NORMAL
    plan: str | None = None
    last_agent_reply_at: datetime | None = None
    last_customer_message_at: datetime | None = None
    last_speaker: Any = None
    sla: tuple[Any, ...] = ()

    @property
    def agent_ever_replied(self) -> bool:
        return self.last_agent_reply_at is not None


def policy(**kwargs: Any) -> SlaPolicy:
    rules = [
        SlaRule(
            plan="enterprise",
            targets=SlaTargets(first_response=10 * M, next_response=30 * M, resolution=4 * H),
        ),
        SlaRule(
            priority=Priority.HIGH,
            targets=SlaTargets(first_response=30 * M, resolution=8 * H),
        ),
        SlaRule(targets=SlaTargets(first_response=H, next_response=2 * H, resolution=24 * H)),
    ]
    return SlaPolicy(id="default", rules=rules, **kwargs)


def metrics(clocks: Any) -> dict[SlaMetric, Any]:
    return {clock.metric: clock for clock in clocks}


# -- policies -------------------------------------------------------------------------


def test_the_first_matching_rule_gives_the_targets() -> None:
    p = policy()
    assert p.targets_for(Priority.LOW, "enterprise") == p.rules[0].targets
    assert p.targets_for(Priority.HIGH, "smb") == p.rules[1].targets
    assert p.targets_for(Priority.LOW, None) == p.rules[2].targets


def test_no_matching_rule_means_no_targets() -> None:
    p = SlaPolicy(id="p", rules=[SlaRule(plan="vip", targets=SlaTargets(resolution=H))])
    assert p.targets_for(Priority.NORMAL, None) is None


@pytest.mark.parametrize("bad", [timedelta(0), -M, 5])
def test_targets_must_be_positive_durations(bad: object) -> None:
    with pytest.raises(ValidationError) as info:
        SlaTargets(first_response=bad)  # type: ignore[arg-type]
    assert info.value.field == "first_response"


def test_a_policy_needs_a_rule_and_a_non_negative_warning() -> None:
    with pytest.raises(ValidationError):
        SlaPolicy(id="p", rules=[])
    with pytest.raises(ValidationError):
        SlaPolicy(id="p", rules=policy().rules, warn_before=-M)


# -- clocks -----------------------------------------------------------------------------


def test_a_clock_is_due_target_after_its_start_around_the_clock() -> None:
    clock = start_clock(policy(), SlaMetric.RESOLUTION, 4 * H, T0)
    assert clock.state is SlaClockState.RUNNING
    assert clock.due_at == T0 + 4 * H
    assert clock.warn_at is None


def test_a_clock_counts_business_time_on_a_calendar() -> None:
    p = policy(calendar=NineToFive())
    friday_1630 = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)
    clock = start_clock(p, SlaMetric.FIRST_RESPONSE, H, friday_1630)
    assert clock.due_at == datetime(2026, 3, 9, 9, 30, tzinfo=UTC)  # Monday 09:30


def test_the_warning_comes_warn_before_ahead_of_the_breach() -> None:
    clock = start_clock(policy(warn_before=10 * M), SlaMetric.RESOLUTION, H, T0)
    assert clock.warn_at == T0 + 50 * M
    assert clock.next_instant == T0 + 50 * M


def test_a_paused_clock_keeps_its_consumed_time_and_resumes_with_the_rest() -> None:
    p = policy()
    clock = start_clock(p, SlaMetric.RESOLUTION, 4 * H, T0)
    paused = pause_clock(p, clock, T0 + H)
    assert paused.state is SlaClockState.PAUSED
    assert paused.consumed == H
    assert paused.due_at is None
    resumed = resume_clock(p, paused, T0 + 10 * H)
    assert resumed.due_at == T0 + 10 * H + 3 * H


def test_pausing_over_a_weekend_on_a_calendar_counts_only_business_time() -> None:
    p = policy(calendar=NineToFive())
    friday_1600 = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    clock = start_clock(p, SlaMetric.RESOLUTION, 2 * H, friday_1600)
    assert clock.due_at == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    paused = pause_clock(p, clock, datetime(2026, 3, 7, 12, 0, tzinfo=UTC))  # Saturday
    assert paused.consumed == H


def test_check_warns_once_then_breaches_at_the_due_instant() -> None:
    p = policy(warn_before=10 * M)
    clock = start_clock(p, SlaMetric.FIRST_RESPONSE, H, T0)
    assert check_clock(p, clock, T0 + 49 * M) == (clock, None)
    warned, what = check_clock(p, clock, T0 + 50 * M)
    assert what == "warned"
    assert warned.next_instant == T0 + H
    assert check_clock(p, warned, T0 + 55 * M)[1] is None
    breached, what = check_clock(p, warned, T0 + H)
    assert what == "breached"
    assert breached.state is SlaClockState.BREACHED
    assert check_clock(p, breached, T0 + 2 * H)[1] is None


def test_a_breached_clock_keeps_its_exact_breach_instant() -> None:
    p = policy()
    clock = start_clock(p, SlaMetric.RESOLUTION, H, T0)
    breached, _ = check_clock(p, clock, T0 + H + 7 * M)  # the tick came 7 minutes late
    assert breached.due_at == T0 + H
    assert breached.consumed == H + 7 * M


def test_a_stale_check_of_a_paused_clock_does_nothing() -> None:
    p = policy()
    paused = pause_clock(p, start_clock(p, SlaMetric.RESOLUTION, H, T0), T0 + M)
    assert check_clock(p, paused, T0 + 3 * H) == (paused, None)


def test_ending_a_breached_clock_keeps_it_breached() -> None:
    p = policy()
    breached, _ = check_clock(p, start_clock(p, SlaMetric.RESOLUTION, H, T0), T0 + H)
    assert end_clock(p, breached, T0 + 2 * H, SlaClockState.FULFILLED) is breached


# -- the conversation lifecycle -----------------------------------------------------------


def opened(p: SlaPolicy, **fields: Any) -> Conv:
    conv = Conv(**fields)
    clocks, _ = sync_clocks(p, None, conv, T0)
    return attrs.evolve(conv, sla=clocks)


def apply(p: SlaPolicy, before: Conv, at: datetime, **changes: Any) -> tuple[Conv, list[str]]:
    after = attrs.evolve(before, **changes)
    clocks, changed = sync_clocks(p, before, after, at)
    return attrs.evolve(after, sla=clocks), [f"{c.clock.metric.value}:{c.change}" for c in changed]


def test_opening_starts_first_response_and_resolution() -> None:
    p = policy()
    conv = Conv()
    clocks, changes = sync_clocks(p, None, conv, T0)
    assert set(metrics(clocks)) == {SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION}
    assert [c.change for c in changes] == ["activated", "activated"]


def test_opening_while_waiting_starts_the_clocks_paused() -> None:
    clocks = opened(policy(), waiting=True).sla
    assert {c.state for c in clocks} == {SlaClockState.PAUSED}


def test_an_agent_reply_fulfils_first_response() -> None:
    p = policy()
    conv, changes = apply(p, opened(p), T0 + 5 * M, last_agent_reply_at=T0 + 5 * M,
                          last_speaker=AuthorKind.AGENT)
    assert changes == ["first_response:fulfilled"]
    assert metrics(conv.sla)[SlaMetric.FIRST_RESPONSE].state is SlaClockState.FULFILLED


def test_a_customer_message_after_a_reply_starts_next_response_and_a_reply_fulfils_it() -> None:
    p = policy()
    conv, _ = apply(p, opened(p), T0 + 5 * M, last_agent_reply_at=T0 + 5 * M,
                    last_speaker=AuthorKind.AGENT)
    conv, changes = apply(p, conv, T0 + 20 * M, last_customer_message_at=T0 + 20 * M,
                          last_speaker=AuthorKind.CUSTOMER)
    assert changes == ["next_response:activated"]
    assert metrics(conv.sla)[SlaMetric.NEXT_RESPONSE].due_at == T0 + 20 * M + 2 * H
    conv, changes = apply(p, conv, T0 + 30 * M, last_agent_reply_at=T0 + 30 * M,
                          last_speaker=AuthorKind.AGENT)
    assert changes == ["next_response:fulfilled"]


def test_a_customer_message_before_any_reply_starts_no_next_response() -> None:
    p = policy()
    _conv, changes = apply(p, opened(p), T0 + M, last_customer_message_at=T0 + M,
                           last_speaker=AuthorKind.CUSTOMER)
    assert changes == []


def test_waiting_pauses_running_clocks_and_leaving_it_resumes_them() -> None:
    p = policy()
    conv, changes = apply(p, opened(p), T0 + H / 2, waiting=True)
    assert sorted(changes) == ["first_response:paused", "resolution:paused"]
    conv, changes = apply(p, conv, T0 + 5 * H, waiting=False)
    assert sorted(changes) == ["first_response:resumed", "resolution:resumed"]
    assert metrics(conv.sla)[SlaMetric.FIRST_RESPONSE].due_at == T0 + 5 * H + H / 2


def test_closing_an_answered_conversation_fulfils_resolution() -> None:
    p = policy()
    conv, _ = apply(p, opened(p), T0 + 5 * M, last_agent_reply_at=T0 + 5 * M,
                    last_speaker=AuthorKind.AGENT)
    conv, changes = apply(p, conv, T0 + H / 2, open=False)
    assert changes == ["resolution:fulfilled"]
    assert metrics(conv.sla)[SlaMetric.RESOLUTION].state is SlaClockState.FULFILLED


def test_closing_an_unanswered_conversation_stops_every_clock_unmet() -> None:
    p = policy()
    conv, changes = apply(p, opened(p), T0 + H / 2, open=False)
    assert sorted(changes) == ["first_response:stopped", "resolution:stopped"]
    assert {c.state for c in conv.sla} == {SlaClockState.STOPPED}


def test_reopening_resumes_resolution_with_the_time_it_had_consumed() -> None:
    p = policy()
    conv, _ = apply(p, opened(p), T0 + 2 * H, open=False)
    conv, changes = apply(p, conv, T0 + 30 * H, open=True)
    assert changes == ["resolution:resumed"]
    resolution = metrics(conv.sla)[SlaMetric.RESOLUTION]
    assert resolution.consumed == 2 * H
    assert resolution.due_at == T0 + 30 * H + 22 * H


def test_reopening_into_waiting_keeps_resolution_paused() -> None:
    p = policy()
    conv, _ = apply(p, opened(p), T0 + 2 * H, open=False)
    conv, _ = apply(p, conv, T0 + 3 * H, waiting=True)
    conv, _changes = apply(p, conv, T0 + 30 * H, open=True)
    assert metrics(conv.sla)[SlaMetric.RESOLUTION].state is SlaClockState.PAUSED
