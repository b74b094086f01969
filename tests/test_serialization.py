"""The cattrs converter: round trips (hypothesis) and strict, path-naming errors."""

from __future__ import annotations

import contextlib
import enum
import json
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cxflow import AssignmentSettings, QueuePolicy, TenantSettings
from cxflow import events as events_module
from cxflow.assignment import Decision, LeastLoad, RoundRobin, SkillBased
from cxflow.errors import MoveRefused, NotFound, ValidationError
from cxflow.events import EVENT_TYPES, Envelope, Event, TaskCreated
from cxflow.flows import (
    MAX_STATUSES,
    Flow,
    Material,
    Status,
    StatusKind,
    TodoTemplate,
    Transition,
    default_flow,
)
from cxflow.serialization import (
    MAX_DEPTH,
    STRATEGIES,
    event_from_dict,
    event_to_dict,
    from_dict,
    to_dict,
)
from cxflow.tasks import Priority, Task
from cxflow.tasks import commands as c

SETTINGS = settings(  # examples: the hypothesis profile's (see conftest.py)
    deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

# -- strategies ----------------------------------------------------------------

OFFSETS = st.sampled_from(
    [UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=5, minutes=30))]
)
aware_datetimes = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=OFFSETS
)
# Free text the boundary rules accept: no lone surrogates, no C0 controls but \t \n \r.
_storable = st.characters(
    exclude_categories=("Cs",),
    exclude_characters="".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r"),
)
texts = st.text(alphabet=_storable, max_size=20)
non_empty_texts = st.text(alphabet=_storable, min_size=1, max_size=20).filter(
    lambda s: bool(s.strip())
)
identifiers = st.text(
    alphabet=st.characters(min_codepoint=33, exclude_categories=("Cs",)), min_size=1, max_size=20
).filter(lambda s: s == s.strip())
names = st.text(
    alphabet=st.characters(min_codepoint=32, exclude_categories=("Cs", "Cc")),
    min_size=1,
    max_size=20,
).filter(lambda s: bool(s.strip()))
keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,12}", fullmatch=True)
media_types = st.from_regex(r"[a-z0-9.+-]{1,10}/[a-z0-9.+-]{1,10}", fullmatch=True)

materials = st.builds(Material, name=non_empty_texts, uri=non_empty_texts, media_type=media_types)
todo_templates = st.builds(TodoTemplate, text=non_empty_texts, required=st.booleans())


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    """Valid flows of every shape: 1 to 8 statuses, some off, optional restrictions."""
    status_keys = draw(
        st.lists(keys, min_size=1, max_size=MAX_STATUSES, unique_by=str.casefold)
    )
    labels = draw(
        st.lists(
            non_empty_texts,
            min_size=len(status_keys),
            max_size=len(status_keys),
            unique_by=lambda label: " ".join(label.split()).casefold(),
        )
    )
    statuses = [
        Status(
            key=key,
            label=label,
            kind=draw(st.sampled_from(StatusKind)),
            enabled=draw(st.booleans()),
            todos=draw(st.lists(todo_templates, max_size=2)),
            materials=draw(st.lists(materials, max_size=2)),
        )
        for key, label in zip(status_keys, labels, strict=True)
    ]
    # One enabled completed status, so most draws are valid flows.
    done = draw(st.integers(0, len(statuses) - 1))
    statuses[done] = attrs.evolve(
        statuses[done],
        enabled=True,
        kind=draw(st.sampled_from([StatusKind.COMPLETED_SUCCESS, StatusKind.COMPLETED_FAILURE])),
    )
    transitions = draw(
        st.none()
        | st.lists(
            st.tuples(st.sampled_from(status_keys), st.sampled_from(status_keys))
            .filter(lambda pair: pair[0] != pair[1])
            .map(lambda pair: Transition(source=pair[0], target=pair[1])),
            max_size=12,
        )
    )
    try:
        return Flow(
            id=draw(identifiers),
            name=draw(non_empty_texts),
            statuses=statuses,
            version=draw(st.integers(1, 1000)),
            description=draw(texts),
            initial=draw(st.none() | st.sampled_from(status_keys)),
            transitions=transitions,
            allow_open_required_todos=draw(st.booleans()),
            materials=draw(st.lists(materials, max_size=2)),
        )
    except ValidationError:
        assume(False)
        raise  # unreachable: assume(False) aborts the example


TASK_FLOW = Flow(
    id="support",
    name="Support",
    materials=[Material(name="policy", uri="https://example.com/p.pdf")],
    statuses=[
        Status(key="new", label="New", kind=StatusKind.NOT_STARTED,
               todos=[TodoTemplate(text="Greet")]),
        Status(key="doing", label="Doing", kind=StatusKind.IN_PROGRESS,
               todos=[TodoTemplate(text="Check", required=True)]),
        Status(key="waiting", label="Waiting", kind=StatusKind.WAITING),
        Status(key="done", label="Done", kind=StatusKind.COMPLETED_SUCCESS),
        Status(key="failed", label="Failed", kind=StatusKind.COMPLETED_FAILURE),
    ],
)

OPERATIONS = st.one_of(
    st.tuples(st.just("move"), st.sampled_from([s.key for s in TASK_FLOW.statuses])),
    st.tuples(st.just("comment"), non_empty_texts),
    st.tuples(st.just("watch"), non_empty_texts),
    st.tuples(st.just("unwatch"), non_empty_texts),
    st.tuples(st.just("todo"), non_empty_texts),
    st.tuples(st.just("check"), st.integers(0, 5)),
    st.tuples(st.just("uncheck"), st.integers(0, 5)),
    st.tuples(st.just("attach"), materials),
    st.tuples(st.just("update"), st.sampled_from(Priority), st.none() | aware_datetimes),
    st.tuples(st.just("delete")),
    st.tuples(st.just("restore")),
    st.tuples(st.just("overdue")),
)


def _apply(task: Task, op: tuple[Any, ...], at: datetime) -> Task:
    name = op[0]
    by = "agent"
    try:
        if name == "move":
            task, _ = c.move_task(task, TASK_FLOW, op[1], by=by, at=at)
        elif name == "comment":
            task, _ = c.add_comment(task, op[1], by=by, at=at)
        elif name == "watch":
            task, _ = c.add_watcher(task, op[1], by=by, at=at)
        elif name == "unwatch":
            task, _ = c.remove_watcher(task, op[1], by=by, at=at)
        elif name == "todo":
            task, _ = c.add_todo(task, op[1], by=by, at=at, required=True)
        elif name in ("check", "uncheck") and task.todos:
            todo_id = task.todos[op[1] % len(task.todos)].id
            command = c.check_todo if name == "check" else c.uncheck_todo
            task, _ = command(task, todo_id, by=by, at=at)
        elif name == "attach":
            task, _ = c.add_attachment(task, op[1], by=by, at=at)
        elif name == "update":
            task, _ = c.update_task(task, by=by, at=at, priority=op[1], due_at=op[2])
        elif name == "delete":
            task, _ = c.delete_task(task, by=by, at=at)
        elif name == "restore":
            task, _ = c.restore_task(task, TASK_FLOW, by=by, at=at)
        elif name == "overdue":
            task, _ = c.raise_overdue(task, at=at)
    except (MoveRefused, NotFound, ValidationError):
        pass  # refused operations leave the task as it was
    return task


@st.composite
def tasks(draw: st.DrawFn) -> Task:
    """Tasks built by the commands from a random sequence of operations."""
    at = draw(aware_datetimes)
    task, _ = c.create_task(
        flow=TASK_FLOW,
        task_id=draw(identifiers),
        title=draw(non_empty_texts),
        by="creator",
        at=at,
        description=draw(texts),
        priority=draw(st.sampled_from(Priority)),
        due_at=draw(st.none() | aware_datetimes),
        assignee=draw(st.none() | names),
        conversation_id=draw(st.none() | identifiers),
        watchers=draw(st.lists(names, max_size=3)),
        status=draw(st.sampled_from(["new", "doing", "waiting", "done"])),
        task_type=draw(st.none() | identifiers),
    )
    for op in draw(st.lists(OPERATIONS, max_size=15)):
        at += timedelta(seconds=draw(st.integers(0, 10**6)))
        task = _apply(task, op, at)
    return task


def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy of valid values for a field annotated ``tp`` in an event class."""
    if tp is datetime:
        return aware_datetimes
    if tp is str:
        return texts
    if tp is int:
        return st.integers(-(2**40), 2**40)
    if tp is bool:
        return st.booleans()
    if tp is Material:
        return materials
    if tp is Envelope:
        hints = typing.get_type_hints(Envelope)
        return st.builds(Envelope, *(strategy_for(hints[name]) for name in Envelope._fields))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(arg) for arg in args))
    if tp is type(None):
        return st.none()
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*(strategy_for(arg) for arg in args))
    raise AssertionError(f"no strategy for {tp!r}; extend strategy_for")


def event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: strategy_for(hints[f.name]) for f in attrs.fields(cls)})


EVENT_CLASSES = sorted(EVENT_TYPES.values(), key=lambda cls: cls.type)
any_event = st.one_of(*(event_strategy(cls) for cls in EVENT_CLASSES))


def via_json(data: Any) -> Any:
    return json.loads(json.dumps(data))


# -- round trips ---------------------------------------------------------------


@SETTINGS
@given(flows())
def test_flow_round_trips(flow: Flow) -> None:
    assert from_dict(Flow, to_dict(flow)) == flow


@SETTINGS
@given(flows())
def test_flow_round_trips_through_json(flow: Flow) -> None:
    assert from_dict(Flow, via_json(to_dict(flow))) == flow


@pytest.mark.parametrize("template", ["exchange_return", "delivery_inquiry", "onboarding"])
def test_default_flow_round_trips_through_json(template: str) -> None:
    flow = default_flow(template)
    assert from_dict(Flow, via_json(to_dict(flow))) == flow


@SETTINGS
@given(tasks())
def test_task_round_trips(task: Task) -> None:
    assert from_dict(Task, to_dict(task)) == task


@SETTINGS
@given(tasks())
def test_task_round_trips_through_json(task: Task) -> None:
    assert from_dict(Task, via_json(to_dict(task))) == task


@SETTINGS
@given(tasks())
def test_task_datetimes_serialise_as_utc_iso_text(task: Task) -> None:
    data = to_dict(task)
    assert data["created_at"].endswith("+00:00")
    assert datetime.fromisoformat(data["created_at"]) == task.created_at


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda cls: cls.type)
@settings(max_examples=max(5, settings.default.max_examples // 4), deadline=None)  # per event
@given(data=st.data())
def test_every_event_class_round_trips_through_json(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(event_strategy(cls))
    dumped = event_to_dict(event)
    assert dumped["type"] == cls.type
    assert event_from_dict(via_json(dumped)) == event


@SETTINGS
@given(any_event)
def test_event_round_trips(event: Event) -> None:
    restored = event_from_dict(via_json(event_to_dict(event)))
    assert type(restored) is type(event)
    assert restored == event
    assert restored.envelope == event.envelope


def test_every_event_class_is_registered_under_a_unique_tag() -> None:
    concrete = {
        obj
        for name in events_module.__all__
        if isinstance(obj := getattr(events_module, name), type)
        and issubclass(obj, Event)
        and "type" in vars(obj)
        and obj is not Event
    }
    assert set(EVENT_TYPES.values()) == concrete
    assert all(tag == cls.type for tag, cls in EVENT_TYPES.items())


def test_events_emitted_by_commands_round_trip_through_json() -> None:
    task, emitted = c.create_task(
        flow=TASK_FLOW, task_id="x", title="T", by="a", at=T0, due_at=T0,
        priority=Priority.HIGH, conversation_id="conv",
    )
    for step in (
        lambda t: c.move_task(t, TASK_FLOW, "doing", by="a", at=T0),
        lambda t: c.update_task(t, by="a", at=T0, title="U", due_at=T0 + timedelta(1)),
        lambda t: c.request_material(t, TASK_FLOW, "policy", by="a", at=T0),
        lambda t: c.raise_overdue(t, at=T0 + timedelta(days=2)),
    ):
        task, more = step(task)
        emitted.extend(more)
    assert [event_from_dict(via_json(event_to_dict(e))) for e in emitted] == emitted


# -- errors --------------------------------------------------------------------


def flow_data() -> dict[str, Any]:
    data: dict[str, Any] = to_dict(TASK_FLOW)
    return data


def task_data() -> dict[str, Any]:
    task, _ = c.create_task(flow=TASK_FLOW, task_id="x", title="T", by="a", at=T0)
    task, _ = c.check_todo(task, task.todos[0].id, by="a", at=T0)
    data: dict[str, Any] = to_dict(task)
    return data


def event_data() -> dict[str, Any]:
    event = TaskCreated(
        at=T0, by="a", task_id="x", flow_id="f", flow_version=1, status="new",
        priority=Priority.NORMAL,
    )
    return event_to_dict(event)


def error_of(call: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        call()
    return info.value


def test_unknown_top_level_key_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "colour": "red"}))
    assert error.field == "$"
    assert "colour" in error.reason


def test_unknown_nested_key_is_refused_with_its_path() -> None:
    data = flow_data()
    data["statuses"][1]["colour"] = "red"
    error = error_of(lambda: from_dict(Flow, data))
    assert error.field == "$.statuses[1]"
    assert "colour" in error.reason


def test_unknown_deeply_nested_key_is_refused_with_its_path() -> None:
    data = flow_data()
    data["statuses"][1]["todos"][0]["colour"] = "red"
    error = error_of(lambda: from_dict(Flow, data))
    assert error.field == "$.statuses[1].todos[0]"


def test_string_for_an_int_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "version": "5"}))
    assert error.field == "$.version"


def test_float_for_an_int_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "version": 1.0}))
    assert error.field == "$.version"


def test_bool_for_an_int_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "version": True}))
    assert error.field == "$.version"


def test_int_for_a_bool_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "allow_open_required_todos": 1}))
    assert error.field == "$.allow_open_required_todos"


def test_int_for_a_nested_bool_is_refused() -> None:
    data = flow_data()
    data["statuses"][2]["enabled"] = 0
    assert error_of(lambda: from_dict(Flow, data)).field == "$.statuses[2].enabled"


def test_int_for_a_str_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "name": 5}))
    assert error.field == "$.name"


def test_none_for_a_required_str_is_refused() -> None:
    error = error_of(lambda: from_dict(Task, {**task_data(), "title": None}))
    assert error.field == "$.title"


def test_naive_datetime_string_is_refused() -> None:
    error = error_of(lambda: from_dict(Task, {**task_data(), "created_at": "2024-05-01T09:00:00"}))
    assert error.field == "$.created_at"
    assert "naive" in error.reason


def test_nested_naive_datetime_string_is_refused() -> None:
    data = task_data()
    data["todos"][0]["checked_at"] = "2024-05-01T09:00:00"
    assert error_of(lambda: from_dict(Task, data)).field == "$.todos[0].checked_at"


def test_datetime_that_is_not_iso_text_is_refused() -> None:
    error = error_of(lambda: from_dict(Task, {**task_data(), "created_at": "yesterday"}))
    assert error.field == "$.created_at"


def test_number_for_a_datetime_is_refused() -> None:
    error = error_of(lambda: from_dict(Task, {**task_data(), "created_at": 1714554000}))
    assert error.field == "$.created_at"


def test_datetime_with_an_offset_is_read_as_the_same_instant_in_utc() -> None:
    task = from_dict(Task, {**task_data(), "created_at": "2024-05-01T18:00:00+09:00"})
    assert task.created_at == T0
    assert task.created_at.utcoffset() == timedelta(0)


def test_unknown_enum_value_is_refused() -> None:
    error = error_of(lambda: from_dict(Task, {**task_data(), "priority": "urgent"}))
    assert error.field == "$.priority"
    assert "urgent" in error.reason


def test_unknown_nested_enum_value_is_refused() -> None:
    data = flow_data()
    data["statuses"][0]["kind"] = "paused"
    assert error_of(lambda: from_dict(Flow, data)).field == "$.statuses[0].kind"


def test_missing_required_field_is_refused() -> None:
    data = flow_data()
    del data["name"]
    error = error_of(lambda: from_dict(Flow, data))
    assert error.field == "$.name"
    assert "missing" in error.reason


def test_missing_nested_required_field_is_refused() -> None:
    data = flow_data()
    del data["statuses"][3]["kind"]
    assert error_of(lambda: from_dict(Flow, data)).field == "$.statuses[3].kind"


def test_list_for_a_nested_object_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "statuses": [["new"]]}))
    assert error.field.startswith("$.statuses[0]")


@pytest.mark.parametrize("data", [None, [], "flow", 5], ids=["none", "list", "str", "int"])
def test_top_level_value_that_is_not_an_object_is_refused(data: Any) -> None:
    assert error_of(lambda: from_dict(Flow, data)).field.startswith("$")


def test_invalid_flow_definition_is_refused() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "statuses": []}))
    assert "statuses" in error.field or "statuses" in error.reason


def test_status_key_with_a_trailing_newline_is_refused() -> None:
    data = flow_data()
    data["statuses"][0]["key"] = "new\n"
    data["statuses"][0]["todos"] = []
    error_of(lambda: from_dict(Flow, data))


def test_value_refused_by_a_class_validator_is_reported_at_its_path() -> None:
    error = error_of(lambda: from_dict(Flow, {**flow_data(), "version": 0}))
    assert error.field == "$.version"


def test_value_refused_by_a_nested_class_validator_is_reported_at_its_path() -> None:
    data = flow_data()
    data["statuses"][0]["key"] = "1-starts-with-a-digit"
    assert error_of(lambda: from_dict(Flow, data)).field == "$.statuses[0].key"


# -- event errors --------------------------------------------------------------


def test_unknown_event_type_is_refused() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "type": "task.exploded"}))
    assert error.field == "$.type"
    assert "task.exploded" in error.reason


def test_event_without_a_type_is_refused() -> None:
    data = event_data()
    del data["type"]
    assert error_of(lambda: event_from_dict(data)).field == "$.type"


def test_event_that_is_not_an_object_is_refused() -> None:
    error_of(lambda: event_from_dict(["task.created"]))


def test_unknown_event_key_is_refused() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "colour": "red"}))
    assert "colour" in error.reason


def test_missing_event_field_is_refused() -> None:
    data = event_data()
    del data["task_id"]
    error = error_of(lambda: event_from_dict(data))
    assert error.field == "$.task_id"


def test_string_for_an_event_int_is_refused() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "flow_version": "1"}))
    assert error.field == "$.flow_version"


def test_int_for_an_event_str_is_refused() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "by": 5}))
    assert error.field == "$.by"


def test_int_for_an_event_bool_is_refused() -> None:
    data = {
        "type": "task.todo_added", "at": T0.isoformat(), "by": "a", "task_id": "x",
        "flow_id": "f", "flow_version": 1, "todo_id": "t1", "text": "Check", "required": 1,
    }
    assert error_of(lambda: event_from_dict(data)).field == "$.required"


def test_naive_event_datetime_is_refused() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "at": "2024-05-01T09:00:00"}))
    assert error.field == "$.at"


def test_unknown_event_enum_value_is_refused() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "priority": "urgent"}))
    assert error.field == "$.priority"


# -- assignment decisions ------------------------------------------------------

decisions = st.builds(
    Decision,
    conversation_id=identifiers,
    agent_id=st.none() | names,
    reason=st.sampled_from(
        ["auto", "manual", "transfer", "agent_offline", "no_answer", "unassigned"]
    ),
    previous_agent=st.none() | names,
    overflow=st.booleans(),
)


@SETTINGS
@given(decisions)
def test_decision_round_trips_through_json(decision: Decision) -> None:
    assert from_dict(Decision, via_json(to_dict(decision))) == decision


def test_decision_serialises_as_an_object_keyed_by_field() -> None:
    decision = Decision("c1", None, "agent_offline", "ana")
    assert to_dict(decision) == {
        "conversation_id": "c1",
        "agent_id": None,
        "reason": "agent_offline",
        "previous_agent": "ana",
        "overflow": False,
    }


def test_decision_optional_fields_default_when_absent() -> None:
    data = {"conversation_id": "c1", "agent_id": "ana", "reason": "auto"}
    assert from_dict(Decision, data) == Decision("c1", "ana", "auto")


@pytest.mark.parametrize(("change", "field"), [
    ({"agent_id": 5}, "$.agent_id"),
    ({"overflow": 1}, "$.overflow"),
    ({"conversation_id": None}, "$.conversation_id"),
])
def test_decision_fields_are_strictly_typed(change: dict[str, Any], field: str) -> None:
    data = {**to_dict(Decision("c1", "ana", "auto")), **change}
    assert error_of(lambda: from_dict(Decision, data)).field == field


def test_decision_missing_a_field_is_refused() -> None:
    error = error_of(lambda: from_dict(Decision, {"conversation_id": "c1", "reason": "auto"}))
    assert error.field == "$.agent_id"


def test_decision_with_unknown_keys_is_refused() -> None:
    data = {**to_dict(Decision("c1", "ana", "auto")), "winner": "ana"}
    assert "winner" in error_of(lambda: from_dict(Decision, data)).reason


def test_decision_from_a_list_is_refused() -> None:
    error_of(lambda: from_dict(Decision, ["c1", "ana", "auto", None, False]))


def test_decision_and_explanation_are_exported_from_the_root() -> None:
    import cxflow
    from cxflow.assignment import Explanation

    assert cxflow.Decision is Decision
    assert cxflow.Explanation is Explanation
    assert {"Decision", "Explanation"} <= set(cxflow.__all__)


@pytest.mark.parametrize("value", [5, "text", [1, 2], Priority.HIGH, None])
def test_to_dict_refuses_a_value_that_is_not_a_record(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        to_dict(value)
    assert info.value.field == "value"


def test_from_dict_into_a_type_it_cannot_build_is_a_validation_error() -> None:
    class Unknown:
        pass

    with pytest.raises(ValidationError) as info:
        from_dict(Unknown, {})
    assert info.value.field == "kind"


# -- the JSON boundary: nothing but ValidationError, for any JSON (issue 10) ----

def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` containers, alternating objects and lists, around ``leaf``."""
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


def test_assignment_settings_from_an_empty_object_are_the_defaults() -> None:
    assert from_dict(AssignmentSettings, {}) == AssignmentSettings()


@pytest.mark.parametrize(
    "strategy", [LeastLoad(), RoundRobin(), SkillBased(), SkillBased(spread=True)]
)
def test_assignment_settings_round_trip_with_every_built_in_strategy(strategy: Any) -> None:
    settings_ = AssignmentSettings(
        strategy=strategy,
        group_strategies={"billing": strategy},
        no_answer_after=timedelta(minutes=2),
    )
    assert from_dict(AssignmentSettings, via_json(to_dict(settings_))) == settings_


def test_tenant_settings_round_trip_through_json() -> None:
    settings_ = TenantSettings(assignment=AssignmentSettings(strategy=RoundRobin()))
    assert from_dict(TenantSettings, via_json(to_dict(settings_))) == settings_


def test_every_built_in_strategy_is_in_the_map_under_its_name() -> None:
    for strategy in (LeastLoad(), RoundRobin(), SkillBased(), SkillBased(spread=True)):
        assert isinstance(strategy, STRATEGIES[strategy.name])


@pytest.mark.parametrize(("strategy", "field"), [
    ({"name": "fastest"}, "$.strategy.name"),
    ({}, "$.strategy.name"),
    (5, "$.strategy"),
    ({"name": "least-load", "speed": 1}, "$.strategy"),
])
def test_an_unknown_or_malformed_strategy_is_refused_at_its_path(
    strategy: Any, field: str
) -> None:
    error = error_of(lambda: from_dict(AssignmentSettings, {"strategy": strategy}))
    assert error.field == field


def test_input_nested_as_deep_as_the_limit_is_structured_as_usual() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "by": nested(MAX_DEPTH - 1)}))
    assert error.field == "$.by"
    assert "nested" not in error.reason


def test_input_nested_deeper_than_the_limit_is_refused_before_structuring() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "by": nested(MAX_DEPTH)}))
    assert error.field.startswith("$.by")
    assert f"nested deeper than {MAX_DEPTH}" in error.reason


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_input_is_a_validation_error_not_a_recursion_error(depth: int) -> None:
    for data in (nested(depth), {"type": "flow.saved", "by": nested(depth)}):
        for read in (event_from_dict, lambda d: from_dict(Flow, d)):
            with pytest.raises(ValidationError, match="nested deeper"):
                read(data)


@pytest.mark.parametrize("micros", [
    timedelta.max // timedelta(microseconds=1) + 1,
    timedelta.min // timedelta(microseconds=1) - 1,
    -(10**30),
    10**400,
])
def test_a_duration_out_of_the_timedelta_range_is_refused(micros: int) -> None:
    error = error_of(lambda: from_dict(QueuePolicy, {"aging": micros}))
    assert error.field == "$.aging"
    assert "out of range" in error.reason
    assert len(error.reason) < 200  # the 400-digit number is not quoted


def test_the_longest_durations_a_timedelta_holds_structure() -> None:
    for longest in (timedelta.max, timedelta.min):
        assert from_dict(timedelta, longest // timedelta(microseconds=1)) == longest


@pytest.mark.parametrize("text", [
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
])
def test_an_instant_outside_the_utc_range_is_refused(text: str) -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "at": text}))
    assert error.field == "$.at"
    assert "out of range" in error.reason


def test_an_integer_too_large_for_a_float_is_refused() -> None:
    assert error_of(lambda: from_dict(float, 10**400)).field == "$"


def test_a_megabyte_value_is_not_quoted_whole_in_the_error() -> None:
    error = error_of(lambda: event_from_dict({**event_data(), "at": "x" * 1_000_000}))
    assert error.field == "$.at"
    assert len(str(error)) < 300


def _explode(_inst: Any, _attribute: Any, value: Any) -> None:
    raise OverflowError("too big") if value == 1 else TypeError("unhashable")


@attrs.frozen
class _Inner:
    n: int = attrs.field(validator=_explode)


@attrs.frozen
class _Outer:
    inner: _Inner


def test_any_exception_raised_while_structuring_is_a_validation_error_at_its_path() -> None:
    for n in (1, 2):
        error = error_of(lambda: from_dict(_Outer, {"inner": {"n": n}}))  # noqa: B023
        assert error.field == "$.inner"
        assert ("OverflowError" if n == 1 else "TypeError") in error.reason


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@SETTINGS
@given(data=json_values, tag=st.sampled_from([None, *sorted(EVENT_TYPES)]))
def test_any_json_is_an_event_or_a_validation_error(data: Any, tag: str | None) -> None:
    if tag is not None and isinstance(data, dict):
        data = {**data, "type": tag}
    with contextlib.suppress(ValidationError):
        event_from_dict(data)


@SETTINGS
@given(
    kind=st.sampled_from([Flow, Task, AssignmentSettings, TenantSettings, Decision]),
    data=json_values,
)
def test_any_json_is_a_record_or_a_validation_error(kind: type[Any], data: Any) -> None:
    with contextlib.suppress(ValidationError):
        from_dict(kind, data)
