"""Fuzz the converter's JSON boundary: ``from_dict`` into every record kind and
``event_from_dict``, on random JSON (deep nesting included) and on mutations
of valid records. Only ``ValidationError`` may come out; whatever is
accepted round-trips."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fuzzkit import Arg, hostile, probe, tolerating_known_gaps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxflow
from cxflow import ValidationError
from cxflow.events import EVENT_TYPES, TaskCreated
from cxflow.serialization import event_from_dict, event_to_dict, from_dict, to_dict
from cxflow.tasks import Priority
from cxflow.testing import (
    T0,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_timer,
)

SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

SAMPLES: dict[str, Any] = {
    "Flow": sample_flow(),
    "Task": sample_task(),
    "Conversation": sample_conversation(),
    "Customer": sample_customer(),
    "Timer": sample_timer(),
    "Agent": cxflow.Agent(id="ana", skills={"billing": 3}, channel_capacity={"chat": 2}),
    "Routing": cxflow.Routing(conversation_id="c1", channel="chat", arrived_at=T0),
    "AssignmentSettings": cxflow.AssignmentSettings(no_answer_after=timedelta(minutes=2)),
    "QueuePolicy": cxflow.QueuePolicy(),
    "ConversationSettings": cxflow.ConversationSettings(),
    "TenantSettings": cxflow.TenantSettings(assignment=cxflow.AssignmentSettings()),
    "AutoClosePolicy": cxflow.AutoClosePolicy(customer_silence=timedelta(minutes=10)),
    "SlaTargets": cxflow.SlaTargets(first_response=timedelta(hours=1)),
    "TaskQuery": cxflow.TaskQuery(),
    "ConversationQuery": cxflow.ConversationQuery(),
    "CustomerQuery": cxflow.CustomerQuery(),
    "Decision": cxflow.Decision("c1", "ana", "auto"),
}
"""One valid instance of each record kind the converter reads."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=25,
)


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every value inside ``data`` (objects and lists)."""
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _leaves(value, (*path, index))
    return found


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replace(data[path[0]], path[1:], value)
    return copy


def _structure(entry: str, read: Any) -> None:
    outcome = probe(entry, None, read)
    if outcome.error is not None:
        assert isinstance(outcome.error, ValidationError), outcome.error


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@SETTINGS
@given(data=json_values)
@tolerating_known_gaps
def test_random_json_is_a_record_or_a_validation_error(kind: str, data: Any) -> None:
    cls = type(SAMPLES[kind])
    _structure(f"from_dict({kind})", lambda: from_dict(cls, data))


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@SETTINGS
@given(data=st.data(), value=hostile())
@tolerating_known_gaps
def test_a_valid_record_with_one_hostile_value_reads_or_is_refused(
    kind: str, data: st.DataObject, value: Arg
) -> None:
    record = SAMPLES[kind]
    cls = type(record)
    valid = json.loads(json.dumps(to_dict(record)))
    path = data.draw(st.sampled_from(_leaves(valid)), label="path")
    mutated = _replace(valid, path, value.value)
    outcome = probe(f"from_dict({kind})", None, lambda: from_dict(cls, mutated))
    if outcome.error is not None:
        assert isinstance(outcome.error, ValidationError), outcome.error
        return
    again = probe(f"to_dict({kind})", None, lambda: to_dict(outcome.value))
    assert again.error is None, again.error
    assert from_dict(cls, again.value) == outcome.value  # accepted: round-trips


def _event_data() -> dict[str, Any]:
    event = TaskCreated(
        at=T0, by="a", task_id="x", flow_id="f", flow_version=1, status="new",
        priority=Priority.NORMAL,
    )
    return event_to_dict(event)


@SETTINGS
@given(data=json_values, tag=st.sampled_from(sorted(EVENT_TYPES)))
@tolerating_known_gaps
def test_random_json_under_every_event_tag_is_an_event_or_a_validation_error(
    data: Any, tag: str
) -> None:
    body = {**data, "type": tag} if isinstance(data, dict) else data
    _structure("event_from_dict", lambda: event_from_dict(body))


@SETTINGS
@given(data=st.data(), value=hostile())
@tolerating_known_gaps
def test_an_event_with_one_hostile_value_reads_or_is_refused(
    data: st.DataObject, value: Arg
) -> None:
    valid = _event_data()
    path = data.draw(st.sampled_from(_leaves(valid)), label="path")
    mutated = _replace(valid, path, value.value)
    outcome = probe("event_from_dict", None, lambda: event_from_dict(mutated))
    if outcome.error is not None:
        assert isinstance(outcome.error, ValidationError), outcome.error
        return
    assert event_from_dict(event_to_dict(outcome.value)) == outcome.value


@pytest.mark.parametrize("depth", [33, 1_000, 200_000])
def test_deeply_nested_json_is_refused_by_every_entry_point(depth: int) -> None:
    deep: Any = 1
    for level in range(depth):
        deep = {"a": deep} if level % 2 else [deep]
    for kind, record in SAMPLES.items():
        cls = type(record)
        body = {**to_dict(record), "id": deep}
        _structure(f"from_dict({kind})", lambda c=cls: from_dict(c, deep))
        _structure(f"from_dict({kind})", lambda c=cls, b=body: from_dict(c, b))
    _structure("event_from_dict", lambda: event_from_dict({**_event_data(), "by": deep}))
