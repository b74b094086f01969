"""The transition table and the python-statemachine class of a flow agree.

``CompiledFlow.check_move`` (a dict of frozensets, used for every per-task move)
and ``CompiledFlow.machine_class`` (the reference semantics) are two forms of the
same rules. These properties drive both with the same random move sequences on
random valid flows and require the same accept/refuse decision and the same
resulting status at every step.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statemachine.exceptions import TransitionNotAllowed

from cxflow.errors import MoveRefused, ValidationError
from cxflow.flows import (
    MAX_STATUSES,
    CompiledFlow,
    Flow,
    Status,
    StatusKind,
    TodoTemplate,
    Transition,
    compile_flow,
)

# Deprecated python-statemachine APIs (e.g. ``current_state``) must not be used here.
pytestmark = pytest.mark.filterwarnings("error::DeprecationWarning")

PROPERTY_SETTINGS = settings(  # twice the hypothesis profile's examples (conftest.py)
    max_examples=2 * settings.default.max_examples,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)

UNKNOWN_KEYS = ("unknown", "K0")  # no such status; "K0" differs from "k0" only in case


@st.composite
def flow_definitions(draw: st.DrawFn) -> Flow | None:
    """Random flow definitions; ``None`` when the definition is invalid."""
    count = draw(st.integers(1, MAX_STATUSES))
    keys = [f"k{i}" for i in range(count)]
    statuses = [
        Status(
            key=key,
            label=f"{draw(st.sampled_from(['New', 'Doing', 'Waiting', 'Done']))} {key}",
            kind=draw(st.sampled_from(StatusKind)),
            enabled=draw(st.sampled_from([True, True, True, False])),
            todos=[TodoTemplate(text="Check", required=draw(st.booleans()))],
        )
        for key in keys
    ]
    transitions: list[Transition] | None = None
    if count > 1 and draw(st.booleans()):
        pairs = st.tuples(st.sampled_from(keys), st.sampled_from(keys)).filter(
            lambda pair: pair[0] != pair[1]
        )
        chosen = draw(st.lists(pairs, max_size=3 * count, unique=True))
        transitions = [Transition(source=a, target=b) for a, b in chosen]
    try:
        return Flow(
            id="random",
            name="Random flow",
            statuses=statuses,
            initial=draw(st.none() | st.sampled_from(keys)),
            transitions=transitions,
            allow_open_required_todos=draw(st.booleans()),
        )
    except ValidationError:
        return None


valid_flows = flow_definitions().filter(lambda flow: flow is not None)


@st.composite
def flows_and_moves(draw: st.DrawFn) -> tuple[Flow, list[tuple[str, int]]]:
    flow = draw(valid_flows)
    assert flow is not None
    targets = st.sampled_from([s.key for s in flow.statuses] + list(UNKNOWN_KEYS))
    moves = draw(st.lists(st.tuples(targets, st.integers(0, 2)), min_size=1, max_size=30))
    return flow, moves


def table_move(compiled: CompiledFlow, current: str, target: str, open_todos: int) -> bool:
    """Ask the table; True when the move is accepted."""
    try:
        compiled.check_move(current, target, open_todos)
    except MoveRefused:
        return False
    return True


def machine_move(compiled: CompiledFlow, machine: Any, target: str, open_todos: int) -> bool:
    """Send the move to the machine; True when it took a transition.

    Unknown status keys have no event at all. A known status without incoming
    transitions (disabled, or unreachable by any move) has no event on the class:
    ``StateMachine`` refuses an unknown event with ``TransitionNotAllowed`` too
    (``allow_event_without_transition = False``), which
    ``test_machine_refuses_an_event_it_does_not_define`` pins down.
    """
    try:
        event = compiled.event_name(target)
    except MoveRefused:
        return False
    try:
        machine.send(event, open_required_todos=open_todos)
    except TransitionNotAllowed:
        return False
    return True


def machine_status(compiled: CompiledFlow, machine: Any) -> str:
    """The status key of the machine's single active state."""
    (state_id,) = machine.configuration_values
    by_id = {compiled.state_id(s.key): s.key for s in compiled.flow.statuses}
    return by_id[state_id]


@PROPERTY_SETTINGS
@given(flows_and_moves())
def test_table_and_machine_agree_on_every_move(case: tuple[Flow, list[tuple[str, int]]]) -> None:
    flow, moves = case
    compiled = compile_flow(flow)
    current = flow.initial_status.key
    machine = compiled.machine_class(start_value=compiled.state_id(current))
    assert machine_status(compiled, machine) == current
    for step, (target, open_todos) in enumerate(moves):
        accepted = table_move(compiled, current, target, open_todos)
        machine_accepted = machine_move(compiled, machine, target, open_todos)
        assert accepted == machine_accepted, (step, current, target, open_todos)
        if accepted:
            current = target
        assert machine_status(compiled, machine) == current, (step, target)


@PROPERTY_SETTINGS
@given(flows_and_moves())
def test_a_disabled_status_is_never_entered(case: tuple[Flow, list[tuple[str, int]]]) -> None:
    flow, moves = case
    compiled = compile_flow(flow)
    disabled = {s.key for s in flow.statuses if not s.enabled}
    current = flow.initial_status.key
    for target, open_todos in moves:
        if table_move(compiled, current, target, open_todos):
            current = target
        assert current not in disabled
    for source in (s.key for s in flow.statuses if s.enabled):
        for target in disabled:
            with pytest.raises(MoveRefused):
                compiled.check_move(source, target, 0)


@PROPERTY_SETTINGS
@given(valid_flows)
def test_machine_has_no_state_for_a_disabled_status(flow: Flow | None) -> None:
    assert flow is not None
    compiled = compile_flow(flow)
    state_ids = {state.id for state in compiled.machine_class.states}
    expected = {compiled.state_id(s.key) for s in flow.statuses if s.enabled}
    assert state_ids == expected


@PROPERTY_SETTINGS
@given(valid_flows)
def test_machine_starts_in_the_initial_status(flow: Flow | None) -> None:
    assert flow is not None
    compiled = compile_flow(flow)
    machine = compiled.machine_class()
    assert machine_status(compiled, machine) == flow.initial_status.key


def test_machine_refuses_an_event_it_does_not_define() -> None:
    flow = Flow(
        id="f",
        name="Flow",
        statuses=[
            Status(key="new", label="New", kind=StatusKind.NOT_STARTED),
            Status(key="off", label="Off", kind=StatusKind.IN_PROGRESS, enabled=False),
            Status(key="done", label="Done", kind=StatusKind.COMPLETED_SUCCESS),
        ],
    )
    compiled = compile_flow(flow)
    machine = compiled.machine_class(start_value=compiled.state_id("new"))
    assert not hasattr(machine, compiled.event_name("off"))
    with pytest.raises(TransitionNotAllowed):
        machine.send(compiled.event_name("off"), open_required_todos=0)
    assert list(machine.configuration_values) == [compiled.state_id("new")]


def test_event_name_of_an_unknown_status_is_refused() -> None:
    flow = Flow(
        id="f",
        name="Flow",
        statuses=[Status(key="done", label="Done", kind=StatusKind.COMPLETED_SUCCESS)],
    )
    with pytest.raises(MoveRefused):
        compile_flow(flow).event_name("unknown")
