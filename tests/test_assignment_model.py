"""Assignment records: Agent, Routing and QueuePolicy validation, queue levels
and aging, and the serialization round trip."""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cxflow.assignment import MAX_CAPACITY, Agent, Presence, QueuePolicy, Routing
from cxflow.assignment import model as assignment_model
from cxflow.errors import ValidationError
from cxflow.priority import Priority
from cxflow.serialization import from_dict, to_dict

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def routing(cid: str = "c1", **fields: Any) -> Routing:
    fields.setdefault("channel", "chat")
    fields.setdefault("arrived_at", T0)
    return Routing(conversation_id=cid, **fields)


def field_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    return excinfo.value.field


# -- Agent ------------------------------------------------------------------------------


def test_an_agent_starts_offline_with_one_slot_and_no_profile() -> None:
    agent = Agent(id="ana")
    assert agent.presence is Presence.OFFLINE
    assert agent.capacity == 1
    assert (agent.channel_capacity, agent.skills, agent.groups) == ({}, {}, ())
    assert (agent.idle_since, agent.turn, agent.version) == (None, 0, 1)


@pytest.mark.parametrize("capacity", [-1, MAX_CAPACITY + 1, True, 1.5, "2", None])
def test_a_bad_capacity_is_refused_naming_the_field(capacity: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", capacity=capacity)  # type: ignore[arg-type]
    assert field_of(excinfo) == "capacity"


def test_capacity_runs_from_zero_to_the_maximum() -> None:
    assert Agent(id="ana", capacity=0).capacity == 0
    assert Agent(id="ana", capacity=MAX_CAPACITY).capacity == MAX_CAPACITY


@pytest.mark.parametrize("limit", [-1, MAX_CAPACITY + 1, False, "1"])
def test_a_bad_channel_capacity_names_the_channel(limit: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", channel_capacity={"chat": limit})  # type: ignore[dict-item]
    assert field_of(excinfo) == "channel_capacity[chat]"


def test_channel_capacity_must_be_a_mapping_with_named_channels() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", channel_capacity=[("chat", 1)])  # type: ignore[arg-type]
    assert field_of(excinfo) == "channel_capacity"
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", channel_capacity={" ": 1})
    assert field_of(excinfo) == "channel_capacity key"


def test_capacity_for_a_channel_is_the_smaller_of_the_two_limits() -> None:
    agent = Agent(id="ana", capacity=3, channel_capacity={"chat": 2, "email": 5})
    assert agent.capacity_for("chat") == 2
    assert agent.capacity_for("email") == 3
    assert agent.capacity_for("voice") == 3


@pytest.mark.parametrize("level", [0, 6, -1, True, 2.0])
def test_proficiency_outside_one_to_five_is_refused_naming_the_skill(level: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", skills={"billing": 3, "tech": level})  # type: ignore[dict-item]
    assert field_of(excinfo) == "skills[tech]"
    assert "1 to 5" in excinfo.value.reason


def test_proficiency_one_and_five_are_accepted() -> None:
    assert Agent(id="ana", skills={"a": 1, "b": 5}).skills == {"a": 1, "b": 5}


def test_skills_must_be_a_mapping() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", skills=["billing"])  # type: ignore[arg-type]
    assert field_of(excinfo) == "skills"


def test_a_naive_idle_since_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", idle_since=datetime(2024, 5, 1, 9, 0))
    assert field_of(excinfo) == "idle_since"


def test_idle_since_is_normalised_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    agent = Agent(id="ana", idle_since=datetime(2024, 5, 1, 11, 0, tzinfo=plus_two))
    assert agent.idle_since == T0
    assert agent.idle_since.tzinfo is UTC


@pytest.mark.parametrize(("fields", "field"), [
    ({"turn": -1}, "turn"),
    ({"turn": True}, "turn"),
    ({"version": 0}, "version"),
    ({"presence": "busy"}, "presence"),
    ({"groups": ("ok", "")}, "groups[1]"),
])
def test_other_bad_agent_fields_are_named(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id="ana", **fields)
    assert field_of(excinfo) == field


@pytest.mark.parametrize("bad_id", ["", " ana", "a\nb", 7])
def test_a_bad_agent_id_is_refused(bad_id: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        Agent(id=bad_id)  # type: ignore[arg-type]
    assert field_of(excinfo) == "id"


def test_groups_keep_their_first_seen_order_without_repeats() -> None:
    assert Agent(id="ana", groups=["vip", "billing", "vip"]).groups == ("vip", "billing")


# -- Routing ----------------------------------------------------------------------------


def test_a_new_routing_is_waiting_with_normal_priority() -> None:
    record = routing()
    assert record.waiting
    assert (record.agent, record.assigned_at) == (None, None)
    assert record.priority is Priority.NORMAL
    assert (record.plan, record.vip, record.skills, record.group) == (None, False, (), None)
    assert (record.overflow, record.answered, record.declined) == (False, False, ())


def test_a_naive_arrival_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as excinfo:
        routing(arrived_at=datetime(2024, 5, 1, 9, 0))
    assert field_of(excinfo) == "arrived_at"


def test_a_naive_assignment_instant_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as excinfo:
        routing(agent="ana", assigned_at=datetime(2024, 5, 1, 9, 0))
    assert field_of(excinfo) == "assigned_at"


def test_arrival_is_normalised_to_utc() -> None:
    minus_five = timezone(timedelta(hours=-5))
    record = routing(arrived_at=datetime(2024, 5, 1, 4, 0, tzinfo=minus_five))
    assert record.arrived_at == T0
    assert record.arrived_at.tzinfo is UTC


def test_assigned_at_without_an_agent_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        routing(assigned_at=T0)
    assert field_of(excinfo) == "assigned_at"


def test_an_agent_without_assigned_at_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        routing(agent="ana")
    assert field_of(excinfo) == "assigned_at"


@pytest.mark.parametrize("flag", ["overflow", "answered"])
def test_a_waiting_conversation_is_neither_overflow_nor_answered(flag: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        routing(**{flag: True})
    assert field_of(excinfo) == "agent"


def test_an_assigned_routing_may_be_overflow_and_answered() -> None:
    record = routing(agent="ana", assigned_at=T0, overflow=True, answered=True)
    assert not record.waiting
    assert record.overflow
    assert record.answered


def test_skills_and_declined_keep_first_seen_order_without_repeats() -> None:
    record = routing(skills=["tech", "billing", "tech"], declined=["bo", "ana", "bo"])
    assert record.skills == ("tech", "billing")
    assert record.declined == ("bo", "ana")


@pytest.mark.parametrize(("fields", "field"), [
    ({"channel": ""}, "channel"),
    ({"plan": " "}, "plan"),
    ({"vip": 1}, "vip"),
    ({"priority": "urgent"}, "priority"),
    ({"skills": ("ok", "")}, "skills[1]"),
    ({"group": ""}, "group"),
    ({"declined": "ana"}, "declined"),
    ({"version": 0}, "version"),
])
def test_other_bad_routing_fields_are_named(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        routing(**fields)
    assert field_of(excinfo) == field


# -- QueuePolicy: levels ----------------------------------------------------------------


@pytest.mark.parametrize(("fields", "level"), [
    ({"plan": "enterprise"}, 0),
    ({"plan": "large"}, 1),
    ({"plan": "smb"}, 2),
    ({"plan": "hobby"}, 3),
    ({}, 3),
    ({"plan": "smb", "vip": True}, 1),
    ({"plan": "smb", "priority": Priority.HIGH}, 1),
    ({"plan": "smb", "priority": Priority.LOW}, 3),
    ({"plan": "enterprise", "vip": True, "priority": Priority.HIGH}, -2),
])
def test_default_levels_come_from_plan_vip_and_priority(
    fields: dict[str, Any], level: int
) -> None:
    assert QueuePolicy().level(routing(**fields)) == level


def test_custom_levels_and_shifts() -> None:
    policy = QueuePolicy(
        plan_levels={"gold": 0, "free": 5},
        unknown_plan_level=7,
        vip_shift=-3,
        priority_shifts={Priority.HIGH: -2, Priority.NORMAL: 0, Priority.LOW: 4},
    )
    assert policy.level(routing(plan="gold")) == 0
    assert policy.level(routing(plan="free", vip=True)) == 2
    assert policy.level(routing(plan="smb")) == 7
    assert policy.level(routing(plan="gold", priority=Priority.LOW)) == 4


@pytest.mark.parametrize(("fields", "field"), [
    ({"plan_levels": {"gold": 5000}}, "plan_levels"),
    ({"plan_levels": [("gold", 1)]}, "plan_levels"),
    ({"unknown_plan_level": True}, "unknown_plan_level"),
    ({"vip_shift": -1001}, "vip_shift"),
    ({"priority_shifts": {Priority.HIGH: -1}}, "priority_shifts"),
    ({"aging": timedelta(0)}, "aging"),
    ({"aging": timedelta(days=8)}, "aging"),
    ({"aging": 600}, "aging"),
])
def test_bad_policies_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        QueuePolicy(**fields)
    assert field_of(excinfo) == field


# -- QueuePolicy: aging -----------------------------------------------------------------


def key(policy: QueuePolicy, plan: str, arrived_at: datetime) -> int:
    return policy.order_key(routing(plan=plan, arrived_at=arrived_at))


def test_within_one_level_the_earlier_arrival_goes_first() -> None:
    policy = QueuePolicy()
    assert key(policy, "smb", T0) < key(policy, "smb", T0 + timedelta(microseconds=1))


def test_with_the_same_arrival_the_lower_level_goes_first() -> None:
    policy = QueuePolicy()
    assert key(policy, "enterprise", T0) < key(policy, "large", T0) < key(policy, "smb", T0)


def test_an_smb_conversation_waiting_over_twice_the_aging_longer_goes_first() -> None:
    policy = QueuePolicy()  # aging 10 minutes; smb is two levels below enterprise
    enterprise = key(policy, "enterprise", T0)
    assert key(policy, "smb", T0 - timedelta(minutes=20, seconds=1)) < enterprise
    assert key(policy, "smb", T0 - timedelta(minutes=19, seconds=59)) > enterprise


def test_one_level_is_worth_exactly_one_aging_of_waiting() -> None:
    policy = QueuePolicy(aging=timedelta(minutes=3))
    assert key(policy, "large", T0 - timedelta(minutes=3)) == key(policy, "enterprise", T0)


def test_without_aging_the_level_always_comes_first() -> None:
    policy = QueuePolicy(aging=None)
    enterprise = key(policy, "enterprise", T0)
    assert key(policy, "smb", T0 - timedelta(days=365)) > enterprise
    assert key(policy, "smb", T0) < key(policy, "smb", T0 + timedelta(microseconds=1))
    lifted = routing(plan="smb", vip=True, priority=Priority.HIGH)  # level 0, like enterprise
    assert policy.order_key(lifted) == enterprise
    assert policy.order_key(routing(plan="smb", vip=True)) > enterprise


def test_without_aging_the_extreme_levels_keep_their_order() -> None:
    policy = QueuePolicy(plan_levels={"low": 1000, "high": -1000}, aging=None)
    late_high = key(policy, "high", datetime(2200, 1, 1, tzinfo=UTC))
    early_low = key(policy, "low", datetime(1971, 1, 1, tzinfo=UTC))
    assert late_high < early_low


def test_the_order_key_does_not_depend_on_the_time_zone_of_the_arrival() -> None:
    policy = QueuePolicy()
    plus_nine = timezone(timedelta(hours=9))
    assert key(policy, "smb", T0) == key(policy, "smb", T0.astimezone(plus_nine))


# -- serialization ----------------------------------------------------------------------


def test_an_agent_survives_the_round_trip() -> None:
    agent = Agent(
        id="ana",
        presence=Presence.AWAY,
        capacity=4,
        channel_capacity={"chat": 2, "voice": 0},
        skills={"billing": 5, "tech": 1},
        groups=("vip", "night"),
        idle_since=T0,
        turn=17,
        version=3,
    )
    data = to_dict(agent)
    assert data["presence"] == "away"
    assert data["idle_since"] == "2024-05-01T09:00:00+00:00"
    assert data["groups"] == ["vip", "night"]
    assert from_dict(Agent, data) == agent


def test_a_routing_survives_the_round_trip() -> None:
    record = routing(
        plan="enterprise",
        vip=True,
        priority=Priority.HIGH,
        skills=("billing", "tech"),
        group="vip",
        agent="ana",
        assigned_at=T0 + timedelta(seconds=5),
        overflow=True,
        answered=True,
        declined=("bo",),
        version=2,
    )
    data = to_dict(record)
    assert data["priority"] == "high"
    assert data["skills"] == ["billing", "tech"]
    assert from_dict(Routing, data) == record
    waiting = routing(declined=("bo",))
    assert from_dict(Routing, to_dict(waiting)) == waiting


@pytest.mark.parametrize("policy", [
    QueuePolicy(),
    QueuePolicy(aging=None),
    QueuePolicy(
        plan_levels={"gold": -2},
        unknown_plan_level=0,
        vip_shift=-5,
        priority_shifts={Priority.HIGH: -3, Priority.NORMAL: 1, Priority.LOW: 9},
        aging=timedelta(seconds=45),
    ),
])
def test_a_queue_policy_survives_the_round_trip(policy: QueuePolicy) -> None:
    data = to_dict(policy)
    restored = from_dict(QueuePolicy, data)
    assert restored == policy
    assert restored.order_key(routing(plan="gold")) == policy.order_key(routing(plan="gold"))


def test_aging_serializes_as_integer_microseconds() -> None:
    assert to_dict(QueuePolicy())["aging"] == 600_000_000
    assert to_dict(QueuePolicy(aging=None))["aging"] is None


@pytest.mark.parametrize(("kind", "data", "field"), [
    (Agent, {"id": "ana", "skills": {"tech": 9}}, "$.skills[tech]"),
    (Agent, {"id": "ana", "capacity": -1}, "$.capacity"),
    (Agent, {"id": "ana", "idle_since": "2024-05-01T09:00:00"}, "$.idle_since"),
    (Agent, {"id": "ana", "presence": "busy"}, "$.presence"),
    (Agent, {"id": "ana", "mood": "good"}, "$"),
    (
        Routing,
        {"conversation_id": "c1", "channel": "chat", "arrived_at": "2024-05-01T09:00:00"},
        "$.arrived_at",
    ),
    (
        Routing,
        {
            "conversation_id": "c1",
            "channel": "chat",
            "arrived_at": "2024-05-01T09:00:00+00:00",
            "agent": "ana",
        },
        "$.assigned_at",
    ),
    (QueuePolicy, {"aging": 0}, "$.aging"),
    (QueuePolicy, {"aging": "10m"}, "$.aging"),
])
def test_bad_data_is_refused_naming_the_path(kind: type[Any], data: Any, field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        from_dict(kind, data)
    assert field_of(excinfo) == field


# -- constructor types ------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "field", "hint"), [
    (Agent, "skills", Mapping[str, int]),
    (Agent, "channel_capacity", Mapping[str, int]),
    (Agent, "groups", Iterable[str]),
    (Routing, "skills", Iterable[str]),
    (Routing, "declined", Iterable[str]),
    (QueuePolicy, "plan_levels", Mapping[str, int]),
    (QueuePolicy, "priority_shifts", Mapping[Priority | str, int]),
])
def test_constructor_parameters_are_typed_not_any(kind: type, field: str, hint: object) -> None:
    hints = typing.get_type_hints(kind.__init__, vars(assignment_model))
    assert hints[field] == hint


def test_skills_given_as_any_mapping_or_iterable_are_copied() -> None:
    skills = types.MappingProxyType({"billing": 3})
    agent = Agent(id="ana", skills=skills, groups=iter(["vip", "vip"]))
    assert (agent.skills, agent.groups) == ({"billing": 3}, ("vip",))
    assert Routing(
        conversation_id="c1", channel="chat", arrived_at=T0, skills=["tech", "tech"]
    ).skills == ("tech",)
