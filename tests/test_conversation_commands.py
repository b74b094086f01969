"""The pure conversation and customer commands of ``cxflow.conversations.commands``.

One behaviour per test. Every instant is a fixed aware datetime; no clock is read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cxflow.conversations import commands as c
from cxflow.conversations.model import AuthorKind, Conversation, ConversationState, Customer
from cxflow.errors import ValidationError
from cxflow.events import (
    ConversationAssigned,
    ConversationClosed,
    ConversationMessageRecorded,
    ConversationOpened,
    ConversationPriorityChanged,
    ConversationReopened,
    ConversationWaitingChanged,
    CustomerPlanChanged,
    CustomerTagAdded,
    CustomerTagRemoved,
    Event,
    RoomTagAdded,
    RoomTagRemoved,
)
from cxflow.serialization import event_from_dict, event_to_dict
from cxflow.tasks.model import Priority

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
T2 = T0 + timedelta(minutes=2)
T3 = T0 + timedelta(minutes=3)
NAIVE = datetime(2024, 5, 1, 9, 0)

CUSTOMER = Customer(id="kakao-user-1", plan="pro", tags=("vip",))
C, A, B, S = AuthorKind.CUSTOMER, AuthorKind.AGENT, AuthorKind.BOT, AuthorKind.SYSTEM


def opened(**kwargs: Any) -> Conversation:
    kwargs.setdefault("conversation_id", "room-1")
    kwargs.setdefault("channel", "kakao")
    kwargs.setdefault("customer", CUSTOMER)
    kwargs.setdefault("at", T0)
    kwargs.setdefault("by", "kakao-webhook")
    conversation, _ = c.open_conversation(**kwargs)
    return conversation


def say(conversation: Conversation, kind: AuthorKind, at: datetime, **kwargs: Any) -> Conversation:
    updated, _ = c.record_message(conversation, kind, at=at, **kwargs)
    return updated


def closed_room() -> Conversation:
    conversation, _ = c.close(say(opened(), C, T1), at=T2, by="agent-1", reason="resolved")
    return conversation


# -- open_conversation -----------------------------------------------------------------


def test_open_creates_an_open_conversation_at_version_1() -> None:
    conversation = opened()
    assert conversation.state is ConversationState.OPEN
    assert conversation.version == 1
    assert conversation.opened_at == conversation.updated_at == T0


def test_open_snapshots_the_customers_plan_and_id() -> None:
    conversation = opened()
    assert (conversation.customer_id, conversation.plan) == ("kakao-user-1", "pro")


def test_open_starts_with_empty_bookkeeping() -> None:
    conversation = opened()
    assert conversation.last_speaker is None
    assert conversation.message_count == 0
    assert conversation.first_agent_reply_at is None


def test_open_emits_opened_with_the_initial_fields() -> None:
    _, events = c.open_conversation(
        conversation_id="room-1", channel="kakao", customer=CUSTOMER, at=T0, by="hook",
        priority=Priority.HIGH, assignee="agent-1", room_tags=["refund"],
    )
    assert events == [
        ConversationOpened(
            at=T0, by="hook", conversation_id="room-1", customer_id="kakao-user-1",
            channel="kakao", plan="pro", priority=Priority.HIGH, assignee="agent-1",
            room_tags=("refund",),
        )
    ]


def test_open_deduplicates_room_tags_in_order() -> None:
    assert opened(room_tags=["b", "a", "b"]).room_tags == ("b", "a")


def test_open_refuses_an_empty_room_tag() -> None:
    with pytest.raises(ValidationError) as info:
        opened(room_tags=[" "])
    assert info.value.field == "room_tags"


def test_open_refuses_a_non_customer() -> None:
    with pytest.raises(ValidationError) as info:
        opened(customer="kakao-user-1")
    assert info.value.field == "customer"


def test_open_takes_a_priority_by_value_and_refuses_an_unknown_one() -> None:
    assert opened(priority="high").priority is Priority.HIGH
    with pytest.raises(ValidationError) as info:
        opened(priority="urgent")
    assert info.value.field == "priority"


def test_open_refuses_a_bad_conversation_id() -> None:
    with pytest.raises(ValidationError) as info:
        opened(conversation_id=" ")
    assert info.value.field == "id"


def test_open_refuses_an_empty_actor() -> None:
    with pytest.raises(ValidationError) as info:
        opened(by="")
    assert info.value.field == "by"


def test_open_normalises_an_offset_datetime_to_utc() -> None:
    kst = timezone(timedelta(hours=9))
    assert opened(at=T0.astimezone(kst)).opened_at.tzinfo is UTC


# -- record_message: every author kind x automatic --------------------------------------

# (author kind, automatic) -> (last_speaker, customer instant set, agent instants set)
COMBINATIONS = {
    (C, False): (C, True, False),
    (C, True): (None, False, False),
    (A, False): (A, False, True),
    (A, True): (None, False, False),
    (B, False): (None, False, False),
    (B, True): (None, False, False),
    (S, False): (None, False, False),
    (S, True): (None, False, False),
}
CASES = sorted(COMBINATIONS, key=lambda k: (k[0].value, k[1]))


def case_id(case: tuple[AuthorKind, bool]) -> str:
    return f"{case[0].value}-{'auto' if case[1] else 'manual'}"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_message_sets_last_speaker_only_when_counted(case: tuple[AuthorKind, bool]) -> None:
    kind, automatic = case
    conversation = say(opened(), kind, T1, automatic=automatic)
    assert conversation.last_speaker is COMBINATIONS[case][0]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_message_sets_last_customer_message_at_only_for_a_customers_own_message(
    case: tuple[AuthorKind, bool],
) -> None:
    conversation = say(opened(), case[0], T1, automatic=case[1])
    expected = T1 if COMBINATIONS[case][1] else None
    assert conversation.last_customer_message_at == expected


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_message_counts_as_agent_reply_only_for_a_humans_non_automatic_message(
    case: tuple[AuthorKind, bool],
) -> None:
    conversation = say(opened(), case[0], T1, automatic=case[1])
    expected = T1 if COMBINATIONS[case][2] else None
    assert (conversation.last_agent_reply_at, conversation.first_agent_reply_at) == (
        expected,
        expected,
    )


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_message_adds_one_to_message_count(case: tuple[AuthorKind, bool]) -> None:
    assert say(opened(), case[0], T1, automatic=case[1]).message_count == 1


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_message_emits_one_event_describing_it(case: tuple[AuthorKind, bool]) -> None:
    kind, automatic = case
    _, events = c.record_message(opened(), kind, at=T1, automatic=automatic)
    counted = COMBINATIONS[case][0] is not None
    agent = COMBINATIONS[case][2]
    assert events == [
        ConversationMessageRecorded(
            at=T1, by=kind.value, conversation_id="room-1", customer_id="kakao-user-1",
            author_kind=kind.value, automatic=automatic, author_id=None, counted=counted,
            agent_reply=agent, first_agent_reply=agent,
        )
    ]


@pytest.mark.parametrize("kind", [B, S], ids=lambda k: k.value)
def test_bot_or_system_message_after_the_customer_leaves_the_customer_as_last_speaker(
    kind: AuthorKind,
) -> None:
    conversation = say(say(opened(), C, T1), kind, T2)
    assert conversation.last_speaker is C


def test_automatic_agent_greeting_after_the_customer_is_not_an_agent_reply() -> None:
    conversation = say(say(opened(), C, T1), A, T2, automatic=True)
    assert conversation.last_speaker is C
    assert not conversation.agent_ever_replied


def test_message_increments_the_version() -> None:
    assert say(opened(), C, T1).version == 2


def test_message_moves_updated_at() -> None:
    assert say(opened(), C, T1).updated_at == T1


def test_agent_reply_after_customer_makes_the_agent_last_speaker() -> None:
    conversation = say(say(opened(), C, T1), A, T2)
    assert conversation.last_speaker is A


def test_first_agent_reply_is_kept_on_later_replies() -> None:
    conversation = say(say(opened(), A, T1), A, T2)
    assert (conversation.first_agent_reply_at, conversation.last_agent_reply_at) == (T1, T2)


def test_second_agent_reply_is_not_flagged_first() -> None:
    _, events = c.record_message(say(opened(), A, T1), A, at=T2)
    assert isinstance(events[0], ConversationMessageRecorded)
    assert events[0].first_agent_reply is False


def test_event_by_is_the_author_id_when_given() -> None:
    _, events = c.record_message(opened(), A, at=T1, author_id="agent-7")
    assert (events[0].by, getattr(events[0], "author_id", None)) == ("agent-7", "agent-7")


def test_message_does_not_mutate_its_input() -> None:
    conversation = opened()
    before = copy.deepcopy(conversation)
    say(conversation, C, T1)
    assert conversation == before


# -- record_message: out-of-order messages ----------------------------------------------


def test_older_customer_message_does_not_take_last_speaker_from_a_newer_reply() -> None:
    conversation = say(say(opened(), A, T2), C, T1)
    assert conversation.last_speaker is A


def test_older_customer_message_does_not_move_last_customer_instant_backwards() -> None:
    conversation = say(say(opened(), C, T3), C, T1)
    assert conversation.last_customer_message_at == T3


def test_older_agent_reply_does_not_move_last_agent_instant_backwards() -> None:
    conversation = say(say(opened(), A, T3), A, T1)
    assert conversation.last_agent_reply_at == T3


def test_older_agent_reply_moves_first_agent_reply_earlier() -> None:
    conversation = say(say(opened(), A, T3), A, T1)
    assert conversation.first_agent_reply_at == T1


def test_older_message_is_still_counted_in_message_count() -> None:
    assert say(say(opened(), C, T3), C, T1).message_count == 2


def test_older_message_does_not_move_updated_at_backwards() -> None:
    assert say(say(opened(), C, T3), C, T1).updated_at == T3


def test_message_at_the_same_instant_as_the_latest_wins_last_speaker() -> None:
    conversation = say(say(opened(), A, T1), C, T1)
    assert conversation.last_speaker is C


# -- record_message: refused input and closed conversations -----------------------------


@pytest.mark.parametrize("case", [(C, False), (A, False)], ids=case_id)
def test_counted_message_on_a_closed_conversation_is_refused(
    case: tuple[AuthorKind, bool],
) -> None:
    with pytest.raises(ValidationError) as info:
        c.record_message(closed_room(), case[0], at=T3, automatic=case[1])
    assert info.value.field == "conversation"


@pytest.mark.parametrize(
    "case", [k for k in CASES if COMBINATIONS[k][0] is None], ids=case_id
)
def test_uncounted_message_on_a_closed_conversation_only_counts(
    case: tuple[AuthorKind, bool],
) -> None:
    room = closed_room()
    conversation = say(room, case[0], T3, automatic=case[1])
    assert conversation.message_count == room.message_count + 1
    assert conversation.state is ConversationState.CLOSED


def test_message_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValidationError) as info:
        c.record_message(opened(), C, at=NAIVE)
    assert info.value.field == "at"


def test_message_takes_an_author_kind_by_value_and_refuses_an_unknown_one() -> None:
    by_value, _ = c.record_message(opened(), "customer", at=T1)  # type: ignore[arg-type]
    assert by_value.last_speaker is C
    with pytest.raises(ValidationError) as info:
        c.record_message(opened(), "robot", at=T1)  # type: ignore[arg-type]
    assert info.value.field == "author_kind"


def test_message_refuses_a_non_bool_automatic() -> None:
    with pytest.raises(ValidationError) as info:
        c.record_message(opened(), C, at=T1, automatic=1)  # type: ignore[arg-type]
    assert info.value.field == "automatic"


def test_message_refuses_an_empty_author_id() -> None:
    with pytest.raises(ValidationError) as info:
        c.record_message(opened(), C, at=T1, author_id="")
    assert info.value.field == "author_id"


# -- plain fields ----------------------------------------------------------------------


def test_assign_sets_the_assignee_and_emits_assigned() -> None:
    conversation, events = c.assign(opened(), "agent-1", at=T1, by="lead")
    assert conversation.assignee == "agent-1"
    assert events == [
        ConversationAssigned(
            at=T1, by="lead", conversation_id="room-1", customer_id="kakao-user-1",
            assignee="agent-1", previous=None,
        )
    ]


def test_assign_to_the_same_agent_is_a_no_op() -> None:
    conversation = opened(assignee="agent-1")
    assert c.assign(conversation, "agent-1", at=T1, by="lead") == (conversation, [])


def test_assign_none_unassigns() -> None:
    conversation, _ = c.assign(opened(assignee="agent-1"), None, at=T1, by="lead")
    assert conversation.assignee is None


def test_assign_refuses_an_empty_assignee() -> None:
    with pytest.raises(ValidationError) as info:
        c.assign(opened(), " ", at=T1, by="lead")
    assert info.value.field == "assignee"


def test_set_waiting_changes_the_flag_and_emits() -> None:
    conversation, events = c.set_waiting(opened(), True, at=T1, by="agent-1")
    assert conversation.waiting is True
    assert [type(e) for e in events] == [ConversationWaitingChanged]


def test_set_waiting_to_the_current_value_is_a_no_op() -> None:
    conversation = opened()
    assert c.set_waiting(conversation, False, at=T1, by="agent-1") == (conversation, [])


def test_set_waiting_refuses_a_non_bool() -> None:
    with pytest.raises(ValidationError) as info:
        c.set_waiting(opened(), "yes", at=T1, by="agent-1")  # type: ignore[arg-type]
    assert info.value.field == "waiting"


def test_set_priority_changes_it_and_records_the_previous() -> None:
    conversation, events = c.set_priority(opened(), Priority.HIGH, at=T1, by="lead")
    assert conversation.priority is Priority.HIGH
    assert isinstance(events[0], ConversationPriorityChanged)
    assert events[0].previous is Priority.NORMAL


def test_set_priority_to_the_current_value_is_a_no_op() -> None:
    conversation = opened()
    assert c.set_priority(conversation, Priority.NORMAL, at=T1, by="lead") == (conversation, [])


def test_set_priority_refuses_text() -> None:
    with pytest.raises(ValidationError) as info:
        c.set_priority(opened(), "urgent", at=T1, by="lead")  # type: ignore[arg-type]
    assert info.value.field == "priority"


def test_add_room_tag_appends_and_emits() -> None:
    conversation, events = c.add_room_tag(opened(), "refund", at=T1, by="agent-1")
    assert conversation.room_tags == ("refund",)
    assert [type(e) for e in events] == [RoomTagAdded]


def test_add_room_tag_twice_is_a_no_op() -> None:
    conversation = opened(room_tags=["refund"])
    assert c.add_room_tag(conversation, "refund", at=T1, by="agent-1") == (conversation, [])


def test_add_room_tag_refuses_an_empty_tag() -> None:
    with pytest.raises(ValidationError) as info:
        c.add_room_tag(opened(), "", at=T1, by="agent-1")
    assert info.value.field == "tag"


@pytest.mark.parametrize("tag", ["nul\x00byte", "tab\tand", "x" * 201, "lone\ud800surrogate"])
def test_add_room_tag_refuses_what_a_database_cannot_store(tag: str) -> None:
    conversation = opened()
    with pytest.raises(ValidationError) as info:
        c.add_room_tag(conversation, tag, at=T1, by="agent-1")
    assert info.value.field == "tag"
    assert conversation.room_tags == ()


def test_remove_room_tag_removes_and_emits() -> None:
    conversation, events = c.remove_room_tag(
        opened(room_tags=["a", "b"]), "a", at=T1, by="agent-1"
    )
    assert conversation.room_tags == ("b",)
    assert [type(e) for e in events] == [RoomTagRemoved]


def test_remove_absent_room_tag_is_a_no_op() -> None:
    conversation = opened()
    assert c.remove_room_tag(conversation, "x", at=T1, by="agent-1") == (conversation, [])


def test_room_tags_can_be_edited_after_close() -> None:
    conversation, _ = c.add_room_tag(closed_room(), "wrap-up", at=T3, by="agent-1")
    assert conversation.room_tags == ("wrap-up",)


def test_room_tags_do_not_touch_customer_tags() -> None:
    conversation, _ = c.add_room_tag(opened(), "refund", at=T1, by="agent-1")
    assert "refund" not in CUSTOMER.tags
    assert "vip" not in conversation.room_tags


# -- close and reopen ------------------------------------------------------------------


def test_close_sets_state_instant_and_reason() -> None:
    conversation = closed_room()
    assert (conversation.state, conversation.closed_at, conversation.close_reason) == (
        ConversationState.CLOSED,
        T2,
        "resolved",
    )


def test_close_emits_closed_without_rule_or_flag() -> None:
    _, events = c.close(say(opened(), C, T1), at=T2, by="agent-1", reason="resolved")
    assert events == [
        ConversationClosed(
            at=T2, by="agent-1", conversation_id="room-1", customer_id="kakao-user-1",
            reason="resolved", rule=None, agent_replied=False, no_agent_reply=False,
        )
    ]


def test_close_event_says_whether_an_agent_replied() -> None:
    _, events = c.close(say(opened(), A, T1), at=T2, by="agent-1")
    assert isinstance(events[0], ConversationClosed)
    assert events[0].agent_replied is True


def test_close_a_closed_conversation_is_a_no_op() -> None:
    conversation = closed_room()
    assert c.close(conversation, at=T3, by="agent-1") == (conversation, [])


def test_close_refuses_an_empty_reason() -> None:
    with pytest.raises(ValidationError) as info:
        c.close(opened(), at=T1, by="agent-1", reason=" ")
    assert info.value.field == "reason"


def test_reopen_opens_and_clears_the_close() -> None:
    conversation, _ = c.reopen(closed_room(), at=T3, by="agent-1")
    assert (conversation.state, conversation.closed_at, conversation.close_reason) == (
        ConversationState.OPEN,
        None,
        None,
    )


def test_reopen_counts_reopens_and_emits() -> None:
    conversation, events = c.reopen(closed_room(), at=T3, by="agent-1", reason="customer back")
    assert conversation.reopen_count == 1
    assert events == [
        ConversationReopened(
            at=T3, by="agent-1", conversation_id="room-1", customer_id="kakao-user-1",
            reason="customer back", reopen_count=1,
        )
    ]


def test_reopen_resets_last_speaker_but_keeps_the_instants() -> None:
    conversation, _ = c.reopen(closed_room(), at=T3, by="agent-1")
    assert conversation.last_speaker is None
    assert conversation.last_customer_message_at == T1


def test_reopen_an_open_conversation_is_a_no_op() -> None:
    conversation = opened()
    assert c.reopen(conversation, at=T1, by="agent-1") == (conversation, [])


def test_reopened_conversation_accepts_customer_messages() -> None:
    conversation, _ = c.reopen(closed_room(), at=T3, by="agent-1")
    assert say(conversation, C, T3).last_speaker is C


# -- customers -------------------------------------------------------------------------


def test_add_customer_tag_returns_the_next_version() -> None:
    customer, events = c.add_customer_tag(CUSTOMER, "loyal", at=T1, by="agent-1")
    assert (customer.tags, customer.version) == (("vip", "loyal"), 2)
    assert events == [
        CustomerTagAdded(at=T1, by="agent-1", customer_id="kakao-user-1", tag="loyal")
    ]


def test_add_customer_tag_twice_is_a_no_op() -> None:
    assert c.add_customer_tag(CUSTOMER, "vip", at=T1, by="agent-1") == (CUSTOMER, [])


def test_add_customer_tag_refuses_an_empty_tag() -> None:
    with pytest.raises(ValidationError) as info:
        c.add_customer_tag(CUSTOMER, "", at=T1, by="agent-1")
    assert info.value.field == "tag"


def test_remove_customer_tag_returns_the_next_version() -> None:
    customer, events = c.remove_customer_tag(CUSTOMER, "vip", at=T1, by="agent-1")
    assert (customer.tags, customer.version) == ((), 2)
    assert [type(e) for e in events] == [CustomerTagRemoved]


def test_remove_absent_customer_tag_is_a_no_op() -> None:
    assert c.remove_customer_tag(CUSTOMER, "nope", at=T1, by="agent-1") == (CUSTOMER, [])


def test_set_customer_plan_changes_it_and_records_the_previous() -> None:
    customer, events = c.set_customer_plan(CUSTOMER, "enterprise", at=T1, by="billing")
    assert (customer.plan, customer.version) == ("enterprise", 2)
    assert events == [
        CustomerPlanChanged(
            at=T1, by="billing", customer_id="kakao-user-1", plan="enterprise", previous="pro"
        )
    ]


def test_set_customer_plan_to_the_same_plan_is_a_no_op() -> None:
    assert c.set_customer_plan(CUSTOMER, "pro", at=T1, by="billing") == (CUSTOMER, [])


def test_set_customer_plan_does_not_change_an_open_conversations_snapshot() -> None:
    conversation = opened()
    c.set_customer_plan(CUSTOMER, "enterprise", at=T1, by="billing")
    assert conversation.plan == "pro"


def test_customer_tags_follow_the_customer_into_a_new_conversation() -> None:
    customer, _ = c.add_customer_tag(CUSTOMER, "loyal", at=T1, by="agent-1")
    later = opened(conversation_id="room-2", customer=customer, at=T2)
    assert later.room_tags == ()
    assert "loyal" in customer.tags


# -- every command refuses naive datetimes and validates its subject --------------------

COMMANDS: dict[str, Callable[[datetime], object]] = {
    "open": lambda at: opened(at=at),
    "record_message": lambda at: c.record_message(opened(), C, at=at),
    "assign": lambda at: c.assign(opened(), "a", at=at, by="x"),
    "set_waiting": lambda at: c.set_waiting(opened(), True, at=at, by="x"),
    "set_priority": lambda at: c.set_priority(opened(), Priority.HIGH, at=at, by="x"),
    "add_room_tag": lambda at: c.add_room_tag(opened(), "t", at=at, by="x"),
    "remove_room_tag": lambda at: c.remove_room_tag(opened(), "t", at=at, by="x"),
    "close": lambda at: c.close(opened(), at=at, by="x"),
    "reopen": lambda at: c.reopen(closed_room(), at=at, by="x"),
    "add_customer_tag": lambda at: c.add_customer_tag(CUSTOMER, "t", at=at, by="x"),
    "remove_customer_tag": lambda at: c.remove_customer_tag(CUSTOMER, "vip", at=at, by="x"),
    "set_customer_plan": lambda at: c.set_customer_plan(CUSTOMER, None, at=at, by="x"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_refuses_a_naive_datetime(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        COMMANDS[name](NAIVE)
    assert info.value.field == "at"


def test_no_op_call_still_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValidationError) as info:
        c.add_room_tag(opened(room_tags=["t"]), "t", at=NAIVE, by="x")
    assert info.value.field == "at"


def test_customer_command_refuses_a_conversation() -> None:
    with pytest.raises(ValidationError) as info:
        c.add_customer_tag(opened(), "t", at=T1, by="x")  # type: ignore[arg-type]
    assert info.value.field == "customer"


def test_conversation_command_refuses_a_customer() -> None:
    with pytest.raises(ValidationError) as info:
        c.assign(CUSTOMER, "a", at=T1, by="x")  # type: ignore[arg-type]
    assert info.value.field == "conversation"


# -- events round-trip -----------------------------------------------------------------


def test_emitted_events_round_trip_through_serialization() -> None:
    conversation, emitted = c.open_conversation(
        conversation_id="r", channel="web", customer=CUSTOMER, at=T0, by="hook",
        room_tags=["a"],
    )
    steps: list[Callable[[Conversation], tuple[Conversation, list[Event]]]] = [
        lambda x: c.record_message(x, C, at=T1, author_id="u"),
        lambda x: c.record_message(x, A, at=T2),
        lambda x: c.assign(x, "agent", at=T2, by="lead"),
        lambda x: c.set_waiting(x, True, at=T2, by="lead"),
        lambda x: c.set_priority(x, Priority.LOW, at=T2, by="lead"),
        lambda x: c.add_room_tag(x, "b", at=T2, by="lead"),
        lambda x: c.remove_room_tag(x, "a", at=T2, by="lead"),
        lambda x: c.close(x, at=T3, by="lead", reason="done"),
        lambda x: c.reopen(x, at=T3, by="lead"),
    ]
    for step in steps:
        conversation, more = step(conversation)
        emitted += more
    emitted += c.set_customer_plan(CUSTOMER, "free", at=T3, by="x")[1]
    emitted += c.add_customer_tag(CUSTOMER, "new", at=T3, by="x")[1]
    emitted += c.remove_customer_tag(CUSTOMER, "vip", at=T3, by="x")[1]
    assert len(emitted) == 13
    assert [event_from_dict(event_to_dict(e)) for e in emitted] == emitted


@pytest.mark.parametrize("bad", ["x\ud800", "\udfffy", "a\x00b", "tab\there"])
def test_ids_that_no_store_can_keep_are_refused(bad: str) -> None:
    from cxflow.conversations.model import Customer

    with pytest.raises(ValidationError) as caught:
        Customer(id=bad)
    assert caught.value.field == "id"
