"""The boundary rules (``cxflow._validate``, ``docs/reference/boundary.md``):
one regression test per defect of issue 10 that lives in the core, on the
memory store and through engine sessions where a host meets it, and
hypothesis properties of the checks themselves."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cxflow import (
    Agent,
    AssignmentSettings,
    BusinessCalendar,
    ConversationSettings,
    Engine,
    MemoryStore,
    Presence,
    Priority,
    SlaPolicy,
    SlaRule,
    SlaTargets,
    TenantSettings,
    TestClock,
    ValidationError,
)
from cxflow import _validate as v
from cxflow.assignment.model import QueuePolicy, Routing
from cxflow.clock import ensure_aware
from cxflow.conversations import commands as conv
from cxflow.conversations.model import Customer
from cxflow.flows import default_flow
from cxflow.flows.model import Status, StatusKind
from cxflow.storage.protocols import require_tenant
from cxflow.tasks import TaskQuery
from cxflow.tasks import commands as c
from cxflow.timers.model import Timer, subject_timer_id
from cxflow.timers.triggers import (
    ElapsedSince,
    TimeTrigger,
    TriggerAction,
    TriggerActionKind,
    trigger_timer_id,
)

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)
FLOW = default_flow("order_issue")
DOCS = Path(__file__).resolve().parent.parent / "docs" / "reference" / "boundary.md"


def session() -> Any:
    engine = Engine(settings=TenantSettings(), clock=TestClock(START))
    s = engine.session(MemoryStore())
    s.tasks.create_flow(TENANT, FLOW, by="admin")
    return s


def snapshot(s: Any) -> tuple[Any, ...]:
    """What a host can read of the tenant: every read must still work."""
    tasks = s.tasks.list_tasks(TENANT, TaskQuery(deleted=None))
    board = s.tasks.board(TENANT, FLOW.id)
    events = s.store.read_events(TENANT, 0, 1000)
    return tasks, board, events


def new_task(**fields: Any) -> tuple[Any, list[Any]]:
    fields.setdefault("task_id", "t1")
    fields.setdefault("title", "Refund")
    fields.setdefault("by", "mina")
    fields.setdefault("at", START)
    return c.create_task(flow=FLOW, **fields)


def refused(field: str, call: Any, *args: Any, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    assert info.value.field == field, info.value
    return info.value


# -- a bad argument poisons a tenant ---------------------------------------------------


def test_a_move_with_a_non_text_reason_is_refused_and_the_tenant_stays_readable() -> None:
    s = session()
    task = s.tasks.create_task(TENANT, flow_id=FLOW.id, title="Refund", by="mina")
    before = snapshot(s)
    target = FLOW.statuses[1].key
    refused("reason", s.tasks.move_task, TENANT, task.id, target, by="mina", reason=5)
    assert snapshot(s) == before
    moved = s.tasks.move_task(TENANT, task.id, target, by="mina", reason="customer called")
    assert moved.history[-1].reason == "customer called"
    snapshot(s)


def test_a_task_type_that_is_not_an_id_is_refused_and_nothing_is_written() -> None:
    s = session()
    before = snapshot(s)
    refused("task_type", s.tasks.create_task, TENANT, flow_id=FLOW.id, title="x", by="mina",
            task_type=7)
    assert snapshot(s) == before


def test_a_move_to_a_target_that_is_not_text_is_a_validation_error() -> None:
    task, _ = new_task()
    refused("target", c.move_task, task, FLOW, [], by="mina", at=START)
    refused("target", c.relocate_task, task, FLOW.revise(), [], by="mina", at=START)


def test_watchers_given_as_one_string_are_refused() -> None:
    refused("watchers", new_task, watchers="joon")
    s = session()
    refused("watchers", s.tasks.create_task, TENANT, flow_id=FLOW.id, title="x", by="mina",
            watchers="joon")
    task, _ = new_task(watchers={"joon", "ana"})
    assert sorted(task.watchers) == ["ana", "joon"]


def test_a_missing_flow_id_is_an_invalid_flow_id_not_a_missing_flow() -> None:
    s = session()
    refused("flow_id", s.tasks.create_task, TENANT, flow_id=None, title="x", by="mina")
    refused("flow", c.create_task, flow=None, task_id="t1", title="x", by="mina", at=START)


# -- errors outside the error tree -----------------------------------------------------


def test_the_longest_timedelta_as_an_sla_target_is_a_validation_error() -> None:
    refused("resolution", SlaTargets, resolution=timedelta.max)
    refused("first_response", SlaTargets, first_response=v.MAX_DURATION + timedelta(1))
    assert SlaTargets(resolution=v.MAX_DURATION).resolution == v.MAX_DURATION
    refused("warn_before", SlaPolicy, id="p", rules=[SlaRule(targets=SlaTargets())],
            warn_before=timedelta.max)


@pytest.mark.parametrize("due", [
    datetime.max.replace(tzinfo=UTC),
    datetime.min.replace(tzinfo=UTC),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
    datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
    v.MAX_INSTANT + timedelta(microseconds=1),
    v.MIN_INSTANT - timedelta(microseconds=1),
])
def test_an_extreme_due_date_is_a_validation_error(due: datetime) -> None:
    refused("due_at", new_task, due_at=due)
    s = session()
    refused("due_at", s.tasks.create_task, TENANT, flow_id=FLOW.id, title="x", by="mina",
            due_at=due)
    task = s.tasks.create_task(TENANT, flow_id=FLOW.id, title="x", by="mina")
    refused("due_at", s.tasks.update_task, TENANT, task.id, by="mina", due_at=due)


def test_an_offset_that_overflows_utc_is_a_validation_error_everywhere() -> None:
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    early = datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    for at in (late, early):
        refused("at", ensure_aware, at, "at")
        refused("at", c.move_task, new_task()[0], FLOW, FLOW.statuses[1].key, by="m", at=at)
        refused("start", BusinessCalendar.always().add, at, timedelta(hours=1))
        refused("start", TestClock, at)


def test_the_range_ends_are_accepted() -> None:
    for at in (v.MIN_INSTANT, v.MAX_INSTANT):
        task, _ = new_task(at=at, due_at=at)
        assert task.created_at == at
    assert v.check_instant(v.MAX_INSTANT + v.MAX_DURATION - v.MAX_DURATION, "at")
    assert datetime.max.replace(tzinfo=UTC) > v.MAX_INSTANT + v.MAX_DURATION


def test_weekdays_without_ranges_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        BusinessCalendar.weekdays("UTC", None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        BusinessCalendar.weekdays("UTC", 5)  # type: ignore[arg-type]


def test_edit_flow_with_a_relocate_that_is_not_a_mapping_is_a_validation_error() -> None:
    s = session()
    refused("relocate", s.tasks.edit_flow, TENANT, FLOW.revise(), by="admin", relocate=5)


def test_the_zone_check_and_the_zone_computation_agree() -> None:
    refused("timezone", BusinessCalendar.always, "utc")
    refused("timezone", BusinessCalendar.always, "Not/AZone")
    refused("timezone", BusinessCalendar.always, "../../etc/passwd")
    refused("timezone", BusinessCalendar.always, "x" * 10_000)
    calendar = BusinessCalendar.always("UTC")
    assert calendar.add(START, timedelta(hours=1)) == START + timedelta(hours=1)


def test_unhashable_or_non_text_skills_and_groups_are_validation_errors() -> None:
    refused("groups[0]", Agent, id="a", groups=[["billing"]])
    refused("groups[0]", Agent, id="a", groups=[{"billing": 1}])
    refused("skills key", Agent, id="a", skills={("billing",): 3})
    refused("skills", Agent, id="a", skills=[["billing", 3]])
    refused("skills[0]", Routing, conversation_id="c1", channel="chat", arrived_at=START,
            skills=[["billing"]])
    refused("declined[0]", Routing, conversation_id="c1", channel="chat", arrived_at=START,
            declined=[{}])


# -- free text -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Re\x00fund", "\ud800", "a\x1bb", "", "   "])
def test_a_title_with_unstorable_characters_or_blank_is_refused(bad: str) -> None:
    refused("title", new_task, title=bad)


def test_text_over_its_limit_is_refused_and_at_its_limit_accepted() -> None:
    refused("title", new_task, title="x" * (v.MAX_LABEL + 1))
    assert new_task(title="x" * v.MAX_LABEL)[0].title == "x" * v.MAX_LABEL
    task, _ = new_task()
    refused("body", c.add_comment, task, "x" * (5 * 2**20), by="mina", at=START)
    refused("body", c.add_comment, task, "no\x00pe", by="mina", at=START)
    assert c.add_comment(task, "x" * v.MAX_TEXT, by="mina", at=START)[0].comments
    refused("label", Status, key="new", label="x" * 2**20, kind=StatusKind.NOT_STARTED)
    refused("name", FLOW.revise, name="x\x00")
    refused("description", new_task, description="x" * (v.MAX_TEXT + 1))
    assert new_task(description="line 1\r\n\tline 2")[0].description == "line 1\r\n\tline 2"


def test_by_follows_the_name_rule_like_an_assignee() -> None:
    refused("by", new_task, by="mi\x00na")
    refused("assignee", new_task, assignee="mi\x00na")
    task, _ = new_task()
    refused("by", c.move_task, task, FLOW, FLOW.statuses[1].key, by="mi\x00na", at=START)
    refused("by", c.add_comment, task, "hi", by="x" * (v.MAX_NAME + 1), at=START)
    s = session()
    refused("by", s.tasks.create_task, TENANT, flow_id=FLOW.id, title="x", by="mi\x00na")


def test_a_reason_is_bounded_free_text() -> None:
    task, _ = new_task()
    key = FLOW.statuses[1].key
    refused("reason", c.move_task, task, FLOW, key, by="m", at=START, reason="x" * 2**20)
    refused("reason", c.move_task, task, FLOW, key, by="m", at=START, reason="a\x00")
    opened, _ = conv.open_conversation(
        conversation_id="c1", channel="chat", customer=Customer(id="u1"), at=START, by="w"
    )
    refused("reason", conv.close, opened, at=START, by="m", reason="a\x00")


def test_a_huge_tenant_is_refused_by_every_store_call() -> None:
    store = MemoryStore()
    huge = "t" * 2**20
    refused("tenant", require_tenant, huge)
    refused("tenant", store.get_task, huge, "t1")
    s = session()
    refused("tenant", s.tasks.create_task, huge, flow_id=FLOW.id, title="x", by="mina")
    refused("tenant", require_tenant, "ac\x00me")
    refused("tenant", require_tenant, "\ud800")
    assert require_tenant("x" * v.MAX_TENANT) == "x" * v.MAX_TENANT


@pytest.mark.parametrize("bad_id", [5, None, 1.5, b"t1", "x\ud800", " t1", "", "x" * 201])
def test_an_id_that_is_not_valid_is_a_validation_error_on_reads(bad_id: object) -> None:
    refused("task_id", MemoryStore().get_task, TENANT, bad_id)
    refused("task_id", v.check_id, bad_id, "task_id")


# -- definitions that misbehave later --------------------------------------------------


def test_an_sla_calendar_that_is_not_a_calendar_is_refused_at_construction() -> None:
    refused("calendar", SlaPolicy, id="p", rules=[SlaRule(targets=SlaTargets())],
            calendar="9-to-5")
    SlaPolicy(id="p", rules=[SlaRule(targets=SlaTargets())],
              calendar=BusinessCalendar.always("UTC"))


def test_conversation_settings_refuse_an_sla_or_autoclose_that_is_not_a_policy() -> None:
    refused("sla", ConversationSettings, sla="gold")
    refused("autoclose", ConversationSettings, autoclose=timedelta(hours=1))


def test_an_sla_rule_and_a_trigger_take_a_priority_by_value() -> None:
    rule = SlaRule(targets=SlaTargets(), priority="high")
    assert rule.priority is Priority.HIGH
    assert rule.matches(Priority.HIGH, None)
    refused("priority", SlaRule, targets=SlaTargets(), priority="urgent")
    action = TriggerAction(kind="notify", target="leads")
    assert action.kind is TriggerActionKind.NOTIFY
    trigger = TimeTrigger(id="late", since="opened", after=timedelta(hours=1),
                          action=action, priority="high")
    assert trigger.priority is Priority.HIGH
    assert trigger.since is ElapsedSince.OPENED
    opened, _ = conv.open_conversation(conversation_id="c1", channel="chat",
                                       customer=Customer(id="u1"), at=START, by="w",
                                       priority=Priority.HIGH)
    assert trigger.deadline(opened) == START + timedelta(hours=1)
    refused("priority", TimeTrigger, id="late", since=ElapsedSince.OPENED,
            after=timedelta(hours=1), action=action, priority="urgent")
    refused("after", TimeTrigger, id="late", since=ElapsedSince.OPENED,
            after=timedelta.max, action=action)


def test_other_enums_are_taken_by_value_too() -> None:
    assert Agent(id="a", presence="online").presence is Presence.ONLINE
    policy = QueuePolicy(priority_shifts={"high": -2, "normal": 0, "low": 1})
    assert policy.priority_shifts[Priority.HIGH] == -2
    assert new_task(priority="low")[0].priority is Priority.LOW
    refused("presence", Agent, id="a", presence="busy")


def test_timer_ids_built_from_long_subject_ids_stay_valid_ids() -> None:
    long_id = "c" * v.MAX_ID
    for timer_id in (subject_timer_id("sla:resolution", long_id),
                     trigger_timer_id("late-reply", long_id)):
        assert len(timer_id) <= v.MAX_ID
        Timer(id=timer_id, kind="k", subject_id=long_id, deadline=START)
    assert subject_timer_id("x", "c1") == "x:c1"
    assert subject_timer_id("x", long_id) != subject_timer_id("x", long_id[:-1] + "d")


def test_a_lease_is_a_bounded_duration_and_the_worker_a_name() -> None:
    timer = Timer(id="t", kind="k", subject_id="s", deadline=START)
    refused("lease", timer.claimed, "w1", START, timedelta.max)
    refused("lease", timer.claimed, "w1", START, timedelta(0))
    refused("worker", timer.claimed, "w\x00", START, timedelta(minutes=1))


def _routing_session() -> tuple[Any, TestClock]:
    settings = TenantSettings(
        assignment=AssignmentSettings(no_answer_after=timedelta(minutes=5)),
        conversations=ConversationSettings(
            sla=SlaPolicy(
                id="std", rules=(SlaRule(targets=SlaTargets(first_response=timedelta(hours=1))),)
            ),
        ),
    )
    clock = TestClock(START)
    engine = Engine(settings=settings, clock=clock)
    s = engine.session(MemoryStore())
    s.tasks.create_flow(TENANT, FLOW, by="admin")
    s.assignment.save_agent(TENANT, Agent(id="ana", presence="online", capacity=2), by="admin")
    return s, clock


def test_open_conversation_refuses_skills_that_are_not_a_list_of_names() -> None:
    s, _clock = _routing_session()
    for skills in (5, None, "billing", {"billing": 1}, ["bill\x00ing"]):
        refused_error = refused(
            "skills" if not isinstance(skills, list) else "skills[0]",
            s.conversations.open_conversation, TENANT,
            customer_id="cust", channel="web", by="cust", skills=skills,
        )
        assert "skills" in refused_error.field
    assert s.conversations.query_conversations(TENANT) == []


def test_records_with_the_longest_ids_get_their_timers() -> None:
    """Timer ids are built from subject ids: one of MAX_ID characters must
    still give valid timer ids (overdue, task SLA, conversation SLA, no-answer)."""
    s, clock = _routing_session()
    long_id = "c" * v.MAX_ID
    opened = s.conversations.open_conversation(
        TENANT, customer_id="cust", channel="web", by="cust", conversation_id=long_id
    )
    assert s.assignment.scheduler(TENANT).holder(opened.id) == "ana"
    task = s.tasks.create_task(
        TENANT, flow_id=FLOW.id, title="Refund", by="mina", task_id="t" * v.MAX_ID,
        due_at=START + timedelta(days=1),
    )
    assert task.id == "t" * v.MAX_ID
    clock.advance(days=2)
    fired = {fire.kind for fire in s.tick(TENANT)}
    assert {"assignment.no_answer", "task.overdue"} <= fired, fired
    assert s.tasks.get_task(TENANT, task.id).overdue_marked_at is not None


# -- properties of the checks ----------------------------------------------------------

ANY_TEXT = st.text(max_size=50) | st.text(
    alphabet=st.sampled_from(["a", " ", "\x00", "\t", "\n", "\ud800", "\udfff", "\x7f", "é"]),
    max_size=50,
) | st.builds(lambda n, ch: ch * n, st.sampled_from([199, 200, 201, 500, 501, 65_536, 65_537,
                                                     2**20]), st.sampled_from(["x", " ", "é"]))
ANY_VALUE = ANY_TEXT | st.none() | st.integers() | st.floats() | st.binary(max_size=8) | st.lists(
    st.text(max_size=3), max_size=3
)


def storable(text: str) -> bool:
    """What every shipped store keeps: valid UTF-8 and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in text


def outcome(check: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``(result, None)`` when ``check`` accepts, ``(None, field)`` when it
    raises ``ValidationError`` (any other exception escapes and fails)."""
    try:
        return check(*args, **kwargs), None
    except ValidationError as error:
        return None, error.field


@given(ANY_VALUE)
def test_free_text_accepts_only_storable_bounded_text(value: object) -> None:
    for max_len in (v.MAX_LABEL, v.MAX_TEXT):
        accepted, field = outcome(v.check_free_text, value, "f", max_len=max_len)
        if field is not None:
            assert field == "f"
            continue
        assert accepted == value
        assert isinstance(accepted, str)
        assert storable(accepted)
        assert accepted.strip()
        assert len(accepted) <= max_len
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", accepted)


@given(ANY_VALUE)
def test_names_ids_and_tenants_accept_only_storable_bounded_text(value: object) -> None:
    for check, limit in ((v.check_name, v.MAX_NAME), (v.check_id, v.MAX_ID),
                         (v.check_tenant, v.MAX_TENANT)):
        accepted, field = outcome(check, value, "f")
        if field is not None:
            assert field == "f"
            continue
        assert isinstance(accepted, str)
        assert storable(accepted)
        assert accepted.strip()
        assert 1 <= len(accepted) <= limit
        assert not re.search("[\x00-\x1f]", accepted)


OFFSETS = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
ANY_INSTANT = st.datetimes(timezones=st.none() | st.just(UTC) | OFFSETS) | st.sampled_from([
    datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC), datetime.max,
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-23))),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23))),
    v.MIN_INSTANT, v.MAX_INSTANT,
])


@given(ANY_INSTANT | ANY_VALUE)
def test_instants_are_aware_utc_in_range_or_a_validation_error(value: object) -> None:
    instant, field = outcome(v.check_instant, value, "at")
    if field is not None:
        assert field == "at"
        return
    assert instant.tzinfo is UTC
    assert instant == value
    assert v.MIN_INSTANT <= instant <= v.MAX_INSTANT
    # arithmetic with any accepted duration does not overflow
    assert instant - v.MAX_DURATION < instant < instant + v.MAX_DURATION


@given(st.timedeltas() | st.sampled_from([timedelta.max, timedelta.min, timedelta(0),
                                          v.MAX_DURATION]) | ANY_VALUE, st.booleans())
def test_durations_are_bounded_or_a_validation_error(value: object, zero: bool) -> None:
    duration, field = outcome(v.check_duration, value, "d", zero=zero)
    if field is not None:
        assert field == "d"
        return
    assert timedelta(0) <= duration if zero else timedelta(0) < duration
    assert duration <= v.MAX_DURATION


@given(ANY_VALUE | st.sampled_from(list(Priority)) | st.sampled_from([p.value for p in Priority]))
def test_enums_are_a_member_or_its_value_or_a_validation_error(value: object) -> None:
    member, field = outcome(v.check_enum, value, Priority, "priority")
    if field is not None:
        assert field == "priority"
        assert value not in [p.value for p in Priority]
        assert not isinstance(value, Priority)
        return
    assert member is value or member.value == value


@given(ANY_VALUE)
def test_a_task_command_refuses_or_builds_a_storable_task(title: object) -> None:
    result, _field = outcome(
        new_task, title=title, description=title if isinstance(title, str) else ""
    )
    if result is not None:
        task = result[0]
        assert storable(task.title)
        assert storable(task.description)


# -- the reference page matches the constants ------------------------------------------


def test_the_reference_page_names_every_limit_and_range() -> None:
    page = DOCS.read_text(encoding="utf-8")
    for constant in ("MAX_ID", "MAX_TENANT", "MAX_NAME", "MAX_LABEL", "MAX_TEXT",
                     "MIN_INSTANT", "MAX_INSTANT", "MAX_DURATION"):
        assert f"`{constant}`" in page, constant
    for number in (v.MAX_ID, v.MAX_TENANT, v.MAX_NAME, v.MAX_LABEL):
        assert f"{number}" in page
    assert f"{v.MAX_TEXT:,}".replace(",", " ") in page or f"{v.MAX_TEXT}" in page
    assert v.MIN_INSTANT.isoformat() in page
    assert v.MAX_INSTANT.isoformat() in page
    assert f"{v.MAX_DURATION.days} days" in page


def test_a_test_clock_refuses_steps_it_cannot_take_with_a_validation_error() -> None:
    clock = TestClock(START)
    refused("delta", clock.advance, timedelta.max)
    refused("delta", clock.advance, days=1e30)
    refused("delta", clock.advance, 5)
    refused("delta", clock.advance, hours=-1)
    assert clock.advance(minutes=5) == START + timedelta(minutes=5)


# -- found by the fuzz suite ------------------------------------------------------------


def test_a_value_whose_repr_fails_is_refused_with_a_validation_error() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    for value in (10**5000, Unprintable()):
        refused("task_id", v.check_id, value, "task_id")
        refused("tenant", v.check_tenant, value)
        refused("agent", v.check_name, value, "agent")
        refused("limit", v.check_int, value, "limit", 1, 10)
    assert v.shown(10**5000) == "<int>"


def test_memory_store_reads_check_the_tenant_before_their_other_arguments() -> None:
    store = MemoryStore()
    refused("tenant", store.query_tasks, 5, None)
    refused("tenant", store.read_events, 5, after=-1)
