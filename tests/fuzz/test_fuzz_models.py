"""Fuzz the model constructors: each public record class is built from a valid
instance with one to three fields replaced by hostile (or other) values.
Only ``CxflowError`` may come out; an accepted record serialises and reads
back equal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest
from fuzzkit import Arg, arg, hostile, probe, tolerating_known_gaps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cxflow
from cxflow.serialization import from_dict, to_dict
from cxflow.testing import (
    T0,
    sample_conversation,
    sample_customer,
    sample_flow,
    sample_task,
    sample_timer,
)

SETTINGS = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

_targets = cxflow.SlaTargets(first_response=timedelta(hours=1))
_action = cxflow.TriggerAction(kind=cxflow.TriggerActionKind.NOTIFY, target="lead")
_flow = sample_flow()

SAMPLES: dict[str, Any] = {
    "Flow": _flow,
    "Status": _flow.statuses[0],
    "Transition": cxflow.Transition(source="new", target="doing"),
    "Material": cxflow.Material(name="Guide", uri="https://x.test/g", media_type="text/html"),
    "TodoTemplate": cxflow.TodoTemplate(text="Read", required=True),
    "Task": sample_task(),
    "Todo": cxflow.Todo(id="t1", text="Read"),
    "Comment": cxflow.Comment(id="c1", author="ana", body="hi", at=T0),
    "Conversation": sample_conversation(),
    "Customer": sample_customer(),
    "Timer": sample_timer(),
    "Agent": cxflow.Agent(id="ana", skills={"billing": 3}, channel_capacity={"chat": 2}),
    "Routing": cxflow.Routing(conversation_id="c1", channel="chat", arrived_at=T0),
    "AssignmentSettings": cxflow.AssignmentSettings(),
    "QueuePolicy": cxflow.QueuePolicy(),
    "SlaTargets": _targets,
    "SlaRule": cxflow.SlaRule(targets=_targets),
    "SlaPolicy": cxflow.SlaPolicy(id="gold", rules=(cxflow.SlaRule(targets=_targets),)),
    "TriggerAction": _action,
    "TimeTrigger": cxflow.TimeTrigger(
        id="t", since=cxflow.ElapsedSince.OPENED, after=timedelta(hours=1), action=_action
    ),
    "AutoClosePolicy": cxflow.AutoClosePolicy(customer_silence=timedelta(minutes=10)),
    "ConversationSettings": cxflow.ConversationSettings(),
    "TenantSettings": cxflow.TenantSettings(),
    "TaskQuery": cxflow.TaskQuery(),
    "ConversationQuery": cxflow.ConversationQuery(),
    "CustomerQuery": cxflow.CustomerQuery(),
    "FlowVariant": cxflow.FlowVariant(flow_id="support", weight=1),
    "RetryPolicy": cxflow.RetryPolicy(),
}

_SERIALISED = {"RetryPolicy"}
"""Kinds that are values of the process, never written as JSON."""


def _fields(record: Any) -> list[str]:
    return [f.name for f in attrs.fields(type(record)) if f.init]


def _alternatives(record: Any, name: str) -> st.SearchStrategy[Any]:
    """Plausible values of one field: those of the other samples' same-named
    fields, and small variations."""
    current = getattr(record, name)
    found: list[Any] = [current]
    for other in SAMPLES.values():
        if hasattr(other, name) and name in _fields(other):
            found.append(getattr(other, name))
    return st.sampled_from(found)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
@SETTINGS
@given(data=st.data())
@tolerating_known_gaps
def test_a_record_with_hostile_fields_is_built_or_refused(kind: str, data: st.DataObject) -> None:
    record = SAMPLES[kind]
    cls = type(record)
    names = data.draw(
        st.lists(st.sampled_from(_fields(record)), min_size=1, max_size=3, unique=True),
        label="fields",
    )
    changes: dict[str, Arg] = {
        name: data.draw(arg(_alternatives(record, name)), label=name) for name in names
    }
    kwargs = {name: getattr(record, name) for name in _fields(record)}
    kwargs.update({name: value.value for name, value in changes.items()})
    built = probe(f"{kind}()", None, lambda: cls(**kwargs))
    if built.error is not None or kind in _SERIALISED:
        return
    written = probe(f"to_dict({kind})", None, lambda: to_dict(built.value))
    assert written.error is None, f"accepted but not serialisable: {written.error!r}"
    assert from_dict(cls, written.value) == built.value, "accepted but does not read back"


CALENDAR_CALLS = {
    "BusinessCalendar.always": lambda a: cxflow.BusinessCalendar.always(a[0]),
    "BusinessCalendar.weekdays": lambda a: cxflow.BusinessCalendar.weekdays(a[0], a[1]),
    "Flow.revise": lambda a: _flow.revise(name=a[0], description=a[1]),
    "default_flow": lambda a: cxflow.default_flow(a[0]),
    "TestClock.advance": lambda a: cxflow.TestClock(T0).advance(a[0]),
}


@pytest.mark.parametrize("entry", sorted(CALENDAR_CALLS))
@SETTINGS
@given(args=st.tuples(
    arg(st.sampled_from(["UTC", "Europe/Berlin", "utc", "Mars/Olympus"])),
    arg(st.sampled_from([[("09:00", "17:00")], [], [("17:00", "09:00")]])),
))
@tolerating_known_gaps
def test_factories_build_or_refuse(entry: str, args: tuple[Arg, Arg]) -> None:
    values = [a.value for a in args]
    probe(entry, None, lambda: CALENDAR_CALLS[entry](values))


@SETTINGS
@given(value=hostile())
@tolerating_known_gaps
def test_a_change_set_of_hostile_records_is_built_or_refused(value: Arg) -> None:
    for field in ("tasks", "events", "timers", "finished_routings", "routing_version"):
        probe("ChangeSet()", None, lambda f=field: cxflow.ChangeSet(**{f: value.value}))
