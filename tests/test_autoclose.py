"""Auto-close policies and decisions of ``cxflow.conversations.autoclose`` (seed 001).

One behaviour per test; a hypothesis property checks ``due`` against a reference
model on random message sequences.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxflow.conversations import commands as c
from cxflow.conversations.autoclose import (
    AUTOCLOSE_TIMER_KIND,
    MAX_AFTER,
    MIN_AFTER,
    AutoCloseDue,
    AutoClosePolicy,
    AutoCloseRule,
    AutoCloseSetting,
    autoclose_timer_id,
    close_by_rule,
    due,
    still_due,
)
from cxflow.conversations.model import AuthorKind, Conversation, ConversationState, Customer
from cxflow.errors import ValidationError
from cxflow.events import CloseMessageRequested, ConversationClosed, SurveyRequested
from cxflow.serialization import event_from_dict, event_to_dict
from cxflow.timers.model import Timer

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NAIVE = datetime(2024, 5, 1, 9, 0)

C, A, B, S = AuthorKind.CUSTOMER, AuthorKind.AGENT, AuthorKind.BOT, AuthorKind.SYSTEM
AGENT_SILENCE = AutoCloseRule.AGENT_SILENCE
CUSTOMER_SILENCE = AutoCloseRule.CUSTOMER_SILENCE

BOTH = AutoClosePolicy(agent_silence=HOUR, customer_silence=DAY)


def room(**kwargs: Any) -> Conversation:
    conversation, _ = c.open_conversation(
        conversation_id="room-1", channel="kakao", customer=Customer(id="u1"), at=T0,
        by="hook", **kwargs,
    )
    return conversation


def say(conversation: Conversation, kind: AuthorKind, at: datetime, **kwargs: Any) -> Conversation:
    updated, _ = c.record_message(conversation, kind, at=at, **kwargs)
    return updated


def waiting_customer() -> Conversation:
    """The customer wrote at T0 + 1 min; nobody answered."""
    return say(room(), C, T0 + MIN)


def answered() -> Conversation:
    """The customer wrote at T0 + 1 min, an agent answered at T0 + 2 min."""
    return say(waiting_customer(), A, T0 + 2 * MIN)


# -- T: allowed values -----------------------------------------------------------------


@pytest.mark.parametrize(
    "after",
    [MIN_AFTER, timedelta(minutes=20), HOUR, DAY, timedelta(days=6, hours=23, minutes=50)],
    ids=str,
)
def test_allowed_durations_are_accepted(after: timedelta) -> None:
    assert AutoClosePolicy(agent_silence=after).agent_silence.after == after


@pytest.mark.parametrize(
    "after",
    [
        timedelta(0),
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(minutes=9, seconds=59),
        timedelta(minutes=10, microseconds=1),
        timedelta(days=7),
        timedelta(days=7, minutes=10),
        timedelta(minutes=-10),
    ],
    ids=str,
)
def test_disallowed_durations_are_refused_naming_the_field(after: timedelta) -> None:
    with pytest.raises(ValidationError) as info:
        AutoClosePolicy(agent_silence=after)
    assert info.value.field == "agent_silence.after"


def test_refusal_names_the_allowed_range() -> None:
    with pytest.raises(ValidationError) as info:
        AutoClosePolicy(customer_silence=timedelta(minutes=5))
    assert info.value.field == "customer_silence.after"
    assert "10 minutes to 6 days 23 hours 50 minutes" in info.value.reason
    assert "10-minute steps" in info.value.reason


@pytest.mark.parametrize("after", [600, 10.0, "10m", True], ids=repr)
def test_non_timedelta_durations_are_refused(after: Any) -> None:
    with pytest.raises(ValidationError) as info:
        AutoClosePolicy(agent_silence=after)
    assert info.value.field == "agent_silence.after"


def test_setting_alone_refuses_a_bad_duration_on_after() -> None:
    with pytest.raises(ValidationError) as info:
        AutoCloseSetting(enabled=True, after=timedelta(minutes=15))
    assert info.value.field == "after"


def test_disabled_setting_still_validates_its_duration() -> None:
    with pytest.raises(ValidationError):
        AutoCloseSetting(enabled=False, after=timedelta(days=7))


def test_bounds_are_the_published_figures() -> None:
    assert (MIN_AFTER.total_seconds(), MAX_AFTER.total_seconds()) == (600, 604_200)


# -- policy shape ----------------------------------------------------------------------


def test_default_policy_has_both_rules_off() -> None:
    policy = AutoClosePolicy()
    assert not policy.agent_silence.enabled
    assert not policy.customer_silence.enabled


def test_default_policy_sends_the_close_message_without_survey() -> None:
    policy = AutoClosePolicy()
    assert (policy.send_close_message, policy.survey_enabled) == (True, False)


def test_a_timedelta_switches_the_rule_on() -> None:
    assert AutoClosePolicy(agent_silence=HOUR).agent_silence == AutoCloseSetting(
        enabled=True, after=HOUR
    )


def test_none_switches_the_rule_off() -> None:
    assert not AutoClosePolicy(agent_silence=None).agent_silence.enabled


def test_a_disabled_setting_keeps_its_duration() -> None:
    setting = AutoCloseSetting(enabled=False, after=HOUR)
    assert AutoClosePolicy(customer_silence=setting).customer_silence.after == HOUR


@pytest.mark.parametrize("field", ["send_close_message", "survey_enabled"])
def test_policy_flags_must_be_bools(field: str) -> None:
    kwargs: dict[str, Any] = {field: 1}
    with pytest.raises(ValidationError) as info:
        AutoClosePolicy(**kwargs)
    assert info.value.field == field


def test_setting_returns_each_rules_setting() -> None:
    assert BOTH.setting(AGENT_SILENCE).after == HOUR
    assert BOTH.setting(CUSTOMER_SILENCE).after == DAY


# -- due(): which timer should be pending ------------------------------------------------


def test_fresh_conversation_has_no_timer() -> None:
    assert due(BOTH, room()) is None


def test_customer_message_starts_the_agent_silence_timer() -> None:
    assert due(BOTH, waiting_customer()) == AutoCloseDue(AGENT_SILENCE, T0 + MIN + HOUR)


def test_second_customer_message_moves_the_agent_silence_timer() -> None:
    conversation = say(waiting_customer(), C, T0 + 30 * MIN)
    assert due(BOTH, conversation) == (AGENT_SILENCE, T0 + 30 * MIN + HOUR)


def test_agent_reply_switches_to_the_customer_silence_timer() -> None:
    assert due(BOTH, answered()) == (CUSTOMER_SILENCE, T0 + 2 * MIN + DAY)


def test_second_agent_reply_moves_the_customer_silence_timer() -> None:
    conversation = say(answered(), A, T0 + HOUR)
    assert due(BOTH, conversation) == (CUSTOMER_SILENCE, T0 + HOUR + DAY)


def test_customer_answer_switches_back_to_agent_silence() -> None:
    conversation = say(answered(), C, T0 + HOUR)
    assert due(BOTH, conversation) == (AGENT_SILENCE, T0 + 2 * HOUR)


@pytest.mark.parametrize(
    ("kind", "automatic"),
    [(A, True), (B, False), (B, True), (S, False), (S, True)],
    ids=["agent-auto", "bot", "bot-auto", "system", "system-auto"],
)
def test_uncounted_message_after_the_customer_leaves_the_timer_alone(
    kind: AuthorKind, automatic: bool
) -> None:
    conversation = say(waiting_customer(), kind, T0 + 10 * MIN, automatic=automatic)
    assert due(BOTH, conversation) == due(BOTH, waiting_customer())


@pytest.mark.parametrize(
    ("kind", "automatic"),
    [(A, True), (B, False), (B, True), (S, False), (S, True), (C, True)],
    ids=["agent-auto", "bot", "bot-auto", "system", "system-auto", "customer-auto"],
)
def test_uncounted_message_after_the_agent_leaves_the_timer_alone(
    kind: AuthorKind, automatic: bool
) -> None:
    conversation = say(answered(), kind, T0 + 10 * MIN, automatic=automatic)
    assert due(BOTH, conversation) == due(BOTH, answered())


@pytest.mark.parametrize(
    ("kind", "automatic"),
    [(A, True), (B, False), (S, False), (C, True)],
    ids=["agent-greeting", "bot", "system", "customer-auto"],
)
def test_uncounted_message_alone_starts_no_timer(kind: AuthorKind, automatic: bool) -> None:
    assert due(BOTH, say(room(), kind, T0, automatic=automatic)) is None


def test_agent_silence_off_means_no_timer_while_the_customer_waits() -> None:
    assert due(AutoClosePolicy(customer_silence=DAY), waiting_customer()) is None


def test_customer_silence_off_cancels_the_timer_after_an_agent_reply() -> None:
    assert due(AutoClosePolicy(agent_silence=HOUR), answered()) is None


def test_closed_conversation_has_no_timer() -> None:
    conversation, _ = c.close(waiting_customer(), at=T0 + 5 * MIN, by="agent-1")
    assert due(BOTH, conversation) is None


def test_reopened_conversation_has_no_timer_until_someone_speaks() -> None:
    closed, _ = close_by_rule(BOTH, waiting_customer(), AGENT_SILENCE, at=T0 + 2 * HOUR)
    reopened, _ = c.reopen(closed, at=T0 + 3 * HOUR, by="agent-1")
    assert due(BOTH, reopened) is None


def test_reopened_conversation_restarts_its_timer_on_the_next_message() -> None:
    closed, _ = close_by_rule(BOTH, waiting_customer(), AGENT_SILENCE, at=T0 + 2 * HOUR)
    reopened, _ = c.reopen(closed, at=T0 + 3 * HOUR, by="agent-1")
    conversation = say(reopened, A, T0 + 3 * HOUR)
    assert due(BOTH, conversation) == (CUSTOMER_SILENCE, T0 + 3 * HOUR + DAY)


def test_late_older_customer_message_does_not_move_the_timer() -> None:
    conversation = say(answered(), C, T0)
    assert due(BOTH, conversation) == due(BOTH, answered())


def test_due_deadline_may_be_past_after_a_policy_change() -> None:
    late = due(AutoClosePolicy(agent_silence=MIN_AFTER), waiting_customer())
    assert late is not None
    assert late.deadline == T0 + 11 * MIN


def test_waiting_does_not_affect_auto_close() -> None:
    conversation, _ = c.set_waiting(answered(), True, at=T0 + 3 * MIN, by="agent-1")
    assert due(BOTH, conversation) == due(BOTH, answered())


def test_due_refuses_a_non_policy() -> None:
    with pytest.raises(ValidationError) as info:
        due(None, room())  # type: ignore[arg-type]
    assert info.value.field == "policy"


# -- still_due(): the re-check at fire time ----------------------------------------------


def test_still_due_at_the_deadline() -> None:
    assert still_due(BOTH, waiting_customer(), AGENT_SILENCE, T0 + MIN + HOUR)


def test_not_still_due_before_the_deadline() -> None:
    assert not still_due(BOTH, waiting_customer(), AGENT_SILENCE, T0 + HOUR)


def test_not_still_due_for_the_other_rule() -> None:
    assert not still_due(BOTH, waiting_customer(), CUSTOMER_SILENCE, T0 + 2 * DAY)


def test_not_still_due_after_the_agent_answered() -> None:
    assert not still_due(BOTH, answered(), AGENT_SILENCE, T0 + 2 * HOUR)


def test_not_still_due_after_the_customer_wrote_again() -> None:
    conversation = say(waiting_customer(), C, T0 + 50 * MIN)
    assert not still_due(BOTH, conversation, AGENT_SILENCE, T0 + MIN + HOUR)


def test_not_still_due_when_the_rule_was_switched_off() -> None:
    policy = AutoClosePolicy(customer_silence=DAY)
    assert not still_due(policy, waiting_customer(), AGENT_SILENCE, T0 + DAY)


def test_not_still_due_once_closed() -> None:
    conversation, _ = c.close(waiting_customer(), at=T0 + 5 * MIN, by="agent-1")
    assert not still_due(BOTH, conversation, AGENT_SILENCE, T0 + DAY)


def test_still_due_refuses_a_naive_instant() -> None:
    with pytest.raises(ValidationError) as info:
        still_due(BOTH, waiting_customer(), AGENT_SILENCE, NAIVE)
    assert info.value.field == "at"


def test_still_due_takes_a_rule_by_value_and_refuses_an_unknown_one() -> None:
    by_value = still_due(BOTH, waiting_customer(), "agent_silence", T0)  # type: ignore[arg-type]
    assert by_value == still_due(BOTH, waiting_customer(), AutoCloseRule.AGENT_SILENCE, T0)
    with pytest.raises(ValidationError) as info:
        still_due(BOTH, waiting_customer(), "silence", T0)  # type: ignore[arg-type]
    assert info.value.field == "rule"


# -- close_by_rule() -------------------------------------------------------------------

AT = T0 + 2 * DAY


def test_close_by_rule_closes_with_a_reason_naming_the_rule() -> None:
    conversation, _ = close_by_rule(BOTH, answered(), CUSTOMER_SILENCE, at=AT)
    assert conversation.state is ConversationState.CLOSED
    assert conversation.close_reason == "autoclose:customer_silence"
    assert conversation.closed_at == AT


def test_close_by_rule_emits_closed_then_the_close_message_intent() -> None:
    _, events = close_by_rule(BOTH, answered(), CUSTOMER_SILENCE, at=AT)
    assert [type(e) for e in events] == [ConversationClosed, CloseMessageRequested]


def test_close_by_rule_event_carries_the_rule_and_cxflow_as_actor() -> None:
    _, events = close_by_rule(BOTH, answered(), CUSTOMER_SILENCE, at=AT)
    assert events[0] == ConversationClosed(
        at=AT, by="cxflow", conversation_id="room-1", customer_id="u1",
        reason="autoclose:customer_silence", rule="customer_silence", agent_replied=True,
        no_agent_reply=False,
    )


def test_close_message_is_delivered_when_an_agent_replied() -> None:
    _, events = close_by_rule(BOTH, answered(), CUSTOMER_SILENCE, at=AT)
    assert events[1] == CloseMessageRequested(
        at=AT, by="cxflow", conversation_id="room-1", customer_id="u1",
        rule="customer_silence", deliver=True, no_agent_reply=False,
    )


def test_agent_silence_without_any_agent_reply_is_flagged() -> None:
    _, events = close_by_rule(BOTH, waiting_customer(), AGENT_SILENCE, at=AT)
    closed = events[0]
    assert isinstance(closed, ConversationClosed)
    assert (closed.no_agent_reply, closed.agent_replied) == (True, False)


def test_close_message_is_not_delivered_when_no_agent_ever_replied() -> None:
    _, events = close_by_rule(BOTH, waiting_customer(), AGENT_SILENCE, at=AT)
    message = events[1]
    assert isinstance(message, CloseMessageRequested)
    assert (message.deliver, message.no_agent_reply) == (False, True)


def test_greeting_before_the_silence_does_not_clear_the_no_reply_flag() -> None:
    greeted = say(waiting_customer(), A, T0 + 2 * MIN, automatic=True)
    _, events = close_by_rule(BOTH, greeted, AGENT_SILENCE, at=AT)
    assert isinstance(events[0], ConversationClosed)
    assert events[0].no_agent_reply is True


def test_agent_silence_after_an_earlier_agent_reply_is_not_flagged() -> None:
    conversation = say(answered(), C, T0 + HOUR)
    _, events = close_by_rule(BOTH, conversation, AGENT_SILENCE, at=AT)
    assert isinstance(events[0], ConversationClosed)
    assert events[0].no_agent_reply is False
    assert isinstance(events[1], CloseMessageRequested)
    assert events[1].deliver is True


def test_customer_silence_is_never_flagged() -> None:
    _, events = close_by_rule(BOTH, room(), CUSTOMER_SILENCE, at=AT)
    assert isinstance(events[0], ConversationClosed)
    assert events[0].no_agent_reply is False


def test_no_close_message_intent_when_the_policy_says_not_to_send_it() -> None:
    policy = AutoClosePolicy(agent_silence=HOUR, send_close_message=False)
    _, events = close_by_rule(policy, waiting_customer(), AGENT_SILENCE, at=AT)
    assert [type(e) for e in events] == [ConversationClosed]


def test_survey_intent_follows_the_close_message_when_surveys_are_on() -> None:
    policy = AutoClosePolicy(customer_silence=DAY, survey_enabled=True)
    _, events = close_by_rule(policy, answered(), CUSTOMER_SILENCE, at=AT)
    assert [type(e) for e in events] == [
        ConversationClosed, CloseMessageRequested, SurveyRequested
    ]


def test_survey_intent_is_emitted_without_a_close_message() -> None:
    policy = AutoClosePolicy(survey_enabled=True, send_close_message=False)
    _, events = close_by_rule(policy, answered(), CUSTOMER_SILENCE, at=AT)
    assert events[1:] == [
        SurveyRequested(
            at=AT, by="cxflow", conversation_id="room-1", customer_id="u1",
            rule="customer_silence", deliver=True,
        )
    ]


def test_survey_is_not_delivered_when_no_agent_ever_replied() -> None:
    policy = AutoClosePolicy(agent_silence=HOUR, survey_enabled=True)
    _, events = close_by_rule(policy, waiting_customer(), AGENT_SILENCE, at=AT)
    assert isinstance(events[-1], SurveyRequested)
    assert events[-1].deliver is False


def test_close_by_rule_on_a_closed_conversation_is_a_no_op() -> None:
    closed, _ = c.close(answered(), at=T0 + HOUR, by="agent-1")
    assert close_by_rule(BOTH, closed, CUSTOMER_SILENCE, at=AT) == (closed, [])


def test_close_by_rule_increments_the_version_once() -> None:
    conversation = answered()
    closed, _ = close_by_rule(BOTH, conversation, CUSTOMER_SILENCE, at=AT)
    assert closed.version == conversation.version + 1


def test_close_by_rule_refuses_a_naive_instant() -> None:
    with pytest.raises(ValidationError) as info:
        close_by_rule(BOTH, answered(), CUSTOMER_SILENCE, at=NAIVE)
    assert info.value.field == "at"


def test_close_by_rule_events_round_trip_through_serialization() -> None:
    policy = AutoClosePolicy(agent_silence=HOUR, survey_enabled=True)
    _, events = close_by_rule(policy, waiting_customer(), AGENT_SILENCE, at=AT)
    assert [event_from_dict(event_to_dict(e)) for e in events] == events


# -- the timer id ----------------------------------------------------------------------


def test_timer_id_names_the_conversation() -> None:
    assert autoclose_timer_id("room-1") == "autoclose:room-1"


def test_timer_id_is_a_valid_timer_id_for_the_longest_conversation_id() -> None:
    timer_id = autoclose_timer_id("r" * 200)
    timer = Timer(id=timer_id, kind=AUTOCLOSE_TIMER_KIND, subject_id="r" * 200, deadline=T0)
    assert timer.id.startswith("autoclose:#")


def test_long_timer_ids_are_stable_and_distinct() -> None:
    assert autoclose_timer_id("r" * 200) == autoclose_timer_id("r" * 200)
    assert autoclose_timer_id("r" * 200) != autoclose_timer_id("r" * 199 + "s")


# -- property: due() against a reference model ------------------------------------------

KINDS = st.sampled_from(list(AuthorKind))
AFTERS = st.integers(1, int(MAX_AFTER / timedelta(minutes=10))).map(
    lambda n: timedelta(minutes=10 * n)
)
SETTINGS = st.one_of(st.none(), AFTERS)
MESSAGES = st.lists(
    st.tuples(KINDS, st.booleans(), st.integers(0, 10_000).map(lambda m: T0 + m * MIN)),
    max_size=30,
)


def reference_due(
    policy: AutoClosePolicy, messages: list[tuple[AuthorKind, bool, datetime]]
) -> AutoCloseDue | None:
    """The latest counted message (ties: the one recorded last) picks the rule."""
    counted = [
        (at, index, kind)
        for index, (kind, automatic, at) in enumerate(messages)
        if not automatic and kind in (C, A)
    ]
    if not counted:
        return None
    at, _, kind = max(counted)
    rule = AGENT_SILENCE if kind is C else CUSTOMER_SILENCE
    setting = policy.setting(rule)
    return AutoCloseDue(rule, at + setting.after) if setting.enabled else None


@settings(max_examples=3 * settings.default.max_examples, deadline=None)  # see conftest.py
@given(agent=SETTINGS, customer=SETTINGS, messages=MESSAGES)
def test_due_matches_the_reference_on_random_message_sequences(
    agent: timedelta | None,
    customer: timedelta | None,
    messages: list[tuple[AuthorKind, bool, datetime]],
) -> None:
    policy = AutoClosePolicy(agent_silence=agent, customer_silence=customer)
    conversation = room()
    for kind, automatic, at in messages:
        conversation = say(conversation, kind, at, automatic=automatic)
    found = due(policy, conversation)
    assert found == reference_due(policy, messages)
    if found is not None:
        instant = (
            conversation.last_customer_message_at
            if found.rule is AGENT_SILENCE
            else conversation.last_agent_reply_at
        )
        assert instant is not None
        assert found.deadline == instant + policy.setting(found.rule).after


@settings(max_examples=2 * settings.default.max_examples, deadline=None)
@given(agent=SETTINGS, customer=SETTINGS, messages=MESSAGES, offset=st.integers(-60, 60))
def test_still_due_agrees_with_due_at_any_instant(
    agent: timedelta | None,
    customer: timedelta | None,
    messages: list[tuple[AuthorKind, bool, datetime]],
    offset: int,
) -> None:
    policy = AutoClosePolicy(agent_silence=agent, customer_silence=customer)
    conversation = room()
    for kind, automatic, at in messages:
        conversation = say(conversation, kind, at, automatic=automatic)
    found = due(policy, conversation)
    for rule in AutoCloseRule:
        at = (found.deadline if found else T0) + offset * MIN
        expected = found is not None and found.rule is rule and found.deadline <= at
        assert still_due(policy, conversation, rule, at) is expected


@settings(max_examples=2 * settings.default.max_examples, deadline=None)
@given(messages=MESSAGES)
def test_bookkeeping_summarises_the_messages(
    messages: list[tuple[AuthorKind, bool, datetime]],
) -> None:
    conversation = room()
    for kind, automatic, at in messages:
        conversation = say(conversation, kind, at, automatic=automatic)
    replies = [at for kind, automatic, at in messages if kind is A and not automatic]
    own = [at for kind, automatic, at in messages if kind is C and not automatic]
    assert conversation.message_count == len(messages)
    assert conversation.first_agent_reply_at == min(replies, default=None)
    assert conversation.last_agent_reply_at == max(replies, default=None)
    assert conversation.last_customer_message_at == max(own, default=None)
