"""Flow definitions, compiled move rules, default templates and A/B experiments.

One behaviour per test; the table-vs-machine property lives in test_flow_machine.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
import pytest

from cxflow.errors import MoveRefused, ValidationError
from cxflow.flows import (
    DEFAULT_TEMPLATES,
    MAX_STATUSES,
    CompiledFlow,
    Flow,
    FlowExperiment,
    FlowVariant,
    Material,
    Status,
    StatusKind,
    TodoTemplate,
    Transition,
    compile_flow,
    default_flow,
)
from cxflow.flows.model import allowed_targets, reachable_statuses

NS = StatusKind.NOT_STARTED
IP = StatusKind.IN_PROGRESS
WAIT = StatusKind.WAITING
OK = StatusKind.COMPLETED_SUCCESS
FAIL = StatusKind.COMPLETED_FAILURE


def status(key: str, kind: StatusKind = IP, **kwargs: Any) -> Status:
    return Status(key=key, label=key.title(), kind=kind, **kwargs)


def make_flow(*statuses: Status, **kwargs: Any) -> Flow:
    kwargs.setdefault("id", "f")
    kwargs.setdefault("name", "Flow")
    return Flow(statuses=statuses, **kwargs)


def basic_flow(**kwargs: Any) -> Flow:
    """new -> doing -> done/failed, with one required to-do on ``doing``."""
    return make_flow(
        status("new", NS),
        status("doing", IP, todos=[TodoTemplate(text="Check", required=True)]),
        status("waiting", WAIT),
        status("done", OK),
        status("failed", FAIL),
        **kwargs,
    )


# -- Flow validation -----------------------------------------------------------


def test_flow_with_zero_statuses_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow()
    assert info.value.field == "statuses"


def test_flow_with_nine_statuses_is_refused() -> None:
    statuses = [status(f"s{i}") for i in range(MAX_STATUSES)] + [status("end", OK)]
    with pytest.raises(ValidationError) as info:
        make_flow(*statuses)
    assert info.value.field == "statuses"


def test_flow_with_eight_statuses_is_accepted() -> None:
    statuses = [status(f"s{i}") for i in range(MAX_STATUSES - 1)] + [status("end", OK)]
    assert len(make_flow(*statuses).statuses) == MAX_STATUSES


def test_duplicate_keys_ignoring_case_are_refused_naming_the_index() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(status("new", NS), status("done", OK), status("NEW", IP))
    assert info.value.field == "statuses[2].key"


def test_duplicate_labels_are_refused_naming_the_index() -> None:
    with pytest.raises(ValidationError, match="label") as info:
        make_flow(
            Status(key="new", label="Open", kind=NS),
            Status(key="done", label="Done", kind=OK),
            Status(key="reopened", label="Open", kind=IP),
        )
    assert info.value.field == "statuses[2].label"


@pytest.mark.parametrize("twin", ["done", "DONE", " Done ", "Done\t"])
def test_labels_differing_only_in_case_or_spacing_are_duplicates(twin: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(
            Status(key="new", label="Done", kind=NS),
            Status(key="closed", label=twin, kind=OK),
        )
    assert info.value.field == "statuses[1].label"


def test_a_disabled_status_cannot_share_a_label_either() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(
            Status(key="new", label="New", kind=NS),
            Status(key="old_done", label="Done", kind=OK, enabled=False),
            Status(key="done", label="Done", kind=OK),
        )
    assert info.value.field == "statuses[2].label"


def test_revise_refuses_a_duplicate_label() -> None:
    flow = basic_flow()
    renamed = [attrs.evolve(s, label="Done") if s.key == "failed" else s for s in flow.statuses]
    with pytest.raises(ValidationError) as info:
        flow.revise(statuses=renamed)
    assert info.value.field == "statuses[4].label"


def test_labels_with_inner_words_differing_are_distinct() -> None:
    flow = make_flow(
        Status(key="new", label="Waiting on customer", kind=NS),
        Status(key="wait", label="Waiting on courier", kind=WAIT),
        Status(key="done", label="Done", kind=OK),
    )
    assert [s.label for s in flow.statuses][:2] == ["Waiting on customer", "Waiting on courier"]


def test_flow_with_no_enabled_status_is_refused() -> None:
    with pytest.raises(ValidationError, match="enabled") as info:
        make_flow(status("new", NS, enabled=False), status("done", OK, enabled=False))
    assert info.value.field == "statuses"


def test_flow_with_no_enabled_completed_status_is_refused() -> None:
    with pytest.raises(ValidationError, match="complete") as info:
        make_flow(status("new", NS), status("doing", IP), status("done", OK, enabled=False))
    assert info.value.field == "statuses"


def test_completed_status_unreachable_under_restricted_transitions_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(
            status("new", NS),
            status("doing", IP),
            status("done", OK),
            transitions=[Transition(source="done", target="new")],
        )
    assert info.value.field == "transitions"


def test_completed_status_reachable_only_through_a_disabled_status_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(
            status("new", NS),
            status("doing", IP, enabled=False),
            status("done", OK),
            transitions=[
                Transition(source="new", target="doing"),
                Transition(source="doing", target="done"),
            ],
        )
    assert info.value.field == "transitions"


def test_transition_naming_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(
            status("new", NS),
            status("done", OK),
            transitions=[Transition(source="new", target="nowhere")],
        )
    assert info.value.field == "transitions[0].target"


def test_transition_from_a_status_to_itself_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(
            status("new", NS),
            status("done", OK),
            transitions=[
                Transition(source="new", target="done"),
                Transition(source="new", target="new"),
            ],
        )
    assert info.value.field == "transitions[1]"


def test_transition_that_is_not_a_transition_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        make_flow(status("new", NS), status("done", OK), transitions=[("new", "done")])
    assert info.value.field == "transitions[0]"


def test_unknown_initial_status_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        basic_flow(initial="nowhere")
    assert info.value.field == "initial"


def test_disabled_initial_status_is_refused() -> None:
    with pytest.raises(ValidationError, match="disabled") as info:
        make_flow(status("new", NS, enabled=False), status("done", OK), initial="new")
    assert info.value.field == "initial"


def test_initial_defaults_to_the_first_enabled_status() -> None:
    flow = make_flow(status("new", NS, enabled=False), status("doing"), status("done", OK))
    assert flow.initial_status.key == "doing"


def test_bad_media_type_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        Material(name="Guide", uri="https://example.com/guide", media_type="pdf")
    assert info.value.field == "media_type"


def test_good_media_type_is_accepted() -> None:
    material = Material(name="Guide", uri="https://example.com/g.pdf", media_type="application/pdf")
    assert material.media_type == "application/pdf"


def test_invalid_status_key_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        status("1st step")
    assert info.value.field == "key"


def test_enabled_must_be_a_bool() -> None:
    with pytest.raises(ValidationError) as info:
        status("new", NS, enabled="yes")
    assert info.value.field == "enabled"


def test_kind_is_a_status_kind_or_its_value() -> None:
    status = Status(key="new", label="New", kind="waiting")  # type: ignore[arg-type]
    assert status.kind is StatusKind.WAITING
    with pytest.raises(ValidationError) as info:
        Status(key="new", label="New", kind="paused")  # type: ignore[arg-type]
    assert info.value.field == "kind"


def test_required_must_be_a_bool() -> None:
    with pytest.raises(ValidationError) as info:
        TodoTemplate(text="Check", required=1)  # type: ignore[arg-type]
    assert info.value.field == "required"


def test_empty_todo_text_is_refused() -> None:
    with pytest.raises(ValidationError) as info:
        TodoTemplate(text="   ")
    assert info.value.field == "text"


def test_statuses_must_be_status_objects() -> None:
    with pytest.raises(ValidationError) as info:
        Flow(id="f", name="Flow", statuses=[{"key": "new"}])
    assert info.value.field == "statuses[0]"


def test_version_must_be_a_positive_int() -> None:
    with pytest.raises(ValidationError) as info:
        basic_flow(version=True)
    assert info.value.field == "version"


def test_allow_open_required_todos_must_be_a_bool() -> None:
    with pytest.raises(ValidationError) as info:
        basic_flow(allow_open_required_todos="no")
    assert info.value.field == "allow_open_required_todos"


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="statuses"):
        make_flow()


# -- revise ---------------------------------------------------------------------


def test_revise_bumps_the_version() -> None:
    flow = basic_flow()
    revised = flow.revise(name="Renamed")
    assert (revised.version, revised.name, revised.id) == (2, "Renamed", flow.id)


def test_revise_leaves_the_original_untouched() -> None:
    flow = basic_flow()
    flow.revise(name="Renamed")
    assert (flow.version, flow.name) == (1, "Flow")


def test_revise_validates_the_new_definition() -> None:
    with pytest.raises(ValidationError) as info:
        basic_flow().revise(statuses=())
    assert info.value.field == "statuses"


def test_revise_refuses_to_set_the_version() -> None:
    with pytest.raises(ValidationError) as info:
        basic_flow().revise(version=7)
    assert info.value.field == "version"


# -- allowed targets and reachability --------------------------------------------


def test_allowed_targets_default_is_every_other_enabled_status() -> None:
    flow = make_flow(status("new", NS), status("off", enabled=False), status("done", OK))
    assert allowed_targets(flow) == {"new": {"done"}, "done": {"new"}}


def test_allowed_targets_follow_restricted_transitions() -> None:
    flow = make_flow(
        status("new", NS),
        status("doing"),
        status("done", OK),
        transitions=[
            Transition(source="new", target="doing"),
            Transition(source="doing", target="done"),
        ],
    )
    assert allowed_targets(flow) == {"new": {"doing"}, "doing": {"done"}, "done": frozenset()}


def test_allowed_targets_drop_transitions_touching_disabled_statuses() -> None:
    flow = make_flow(
        status("new", NS),
        status("off", enabled=False),
        status("done", OK),
        transitions=[
            Transition(source="new", target="off"),
            Transition(source="off", target="done"),
            Transition(source="new", target="done"),
        ],
    )
    assert allowed_targets(flow) == {"new": {"done"}, "done": frozenset()}


def test_reachable_statuses_start_from_the_initial_status() -> None:
    flow = make_flow(
        status("new", NS),
        status("side"),
        status("doing"),
        status("done", OK),
        transitions=[
            Transition(source="new", target="doing"),
            Transition(source="doing", target="done"),
            Transition(source="side", target="new"),
        ],
    )
    assert reachable_statuses(flow) == {"new", "doing", "done"}


# -- compile_flow and check_move -------------------------------------------------


def test_compile_flow_returns_the_same_object_for_equal_flows() -> None:
    first, second = basic_flow(), basic_flow()
    assert first is not second
    assert compile_flow(first) is compile_flow(second)


def test_compile_flow_distinguishes_versions() -> None:
    flow = basic_flow()
    assert compile_flow(flow) is not compile_flow(flow.revise())


def test_compiled_flow_keeps_its_flow() -> None:
    flow = basic_flow()
    compiled = compile_flow(flow)
    assert isinstance(compiled, CompiledFlow)
    assert compiled.flow == flow


def test_check_move_accepts_an_allowed_move() -> None:
    compile_flow(basic_flow()).check_move("new", "doing", 0)


def test_check_move_accepts_moving_back() -> None:
    compile_flow(basic_flow()).check_move("done", "new", 0)


def test_check_move_refuses_an_unknown_target() -> None:
    with pytest.raises(MoveRefused, match="no status"):
        compile_flow(basic_flow()).check_move("new", "nowhere", 0)


def test_check_move_refuses_a_target_differing_only_in_case() -> None:
    with pytest.raises(MoveRefused):
        compile_flow(basic_flow()).check_move("new", "DOING", 0)


def test_check_move_refuses_a_disabled_target() -> None:
    flow = make_flow(status("new", NS), status("off", enabled=False), status("done", OK))
    with pytest.raises(MoveRefused, match="disabled"):
        compile_flow(flow).check_move("new", "off", 0)


def test_check_move_refuses_the_same_status() -> None:
    with pytest.raises(MoveRefused, match="already"):
        compile_flow(basic_flow()).check_move("doing", "doing", 0)


def test_check_move_refuses_a_restricted_move() -> None:
    flow = basic_flow(
        transitions=[
            Transition(source="new", target="doing"),
            Transition(source="doing", target="done"),
        ]
    )
    with pytest.raises(MoveRefused, match="does not allow"):
        compile_flow(flow).check_move("new", "done", 0)


def test_check_move_refuses_completion_with_open_required_todos() -> None:
    with pytest.raises(MoveRefused, match="open required"):
        compile_flow(basic_flow()).check_move("doing", "done", 1)


def test_check_move_refuses_failed_completion_with_open_required_todos() -> None:
    with pytest.raises(MoveRefused, match="open required"):
        compile_flow(basic_flow()).check_move("doing", "failed", 2)


def test_check_move_allows_non_completing_move_with_open_required_todos() -> None:
    compile_flow(basic_flow()).check_move("doing", "waiting", 3)


def test_check_move_allows_completion_with_open_todos_when_the_flow_allows_it() -> None:
    compile_flow(basic_flow(allow_open_required_todos=True)).check_move("doing", "done", 1)


def test_move_refused_is_a_validation_error_on_the_status_field() -> None:
    with pytest.raises(ValidationError) as info:
        compile_flow(basic_flow()).check_move("new", "nowhere", 0)
    assert isinstance(info.value, MoveRefused)
    assert info.value.field == "status"


# -- default templates -------------------------------------------------------------

REQUIRED_TEMPLATES = {
    "exchange_return",
    "delivery_inquiry",
    "b2b_partnership",
    "product_feedback",
    "order_issue",
    "onboarding",
}


def test_default_templates_include_the_product_list() -> None:
    assert set(DEFAULT_TEMPLATES) >= REQUIRED_TEMPLATES


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
def test_default_template_is_a_valid_flow(name: str) -> None:
    flow = default_flow(name)
    assert isinstance(flow, Flow)
    assert 1 <= len(flow.statuses) <= MAX_STATUSES
    assert flow.id == name


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
def test_default_template_has_required_todo_templates(name: str) -> None:
    todos = [todo for s in default_flow(name).statuses for todo in s.todos]
    assert any(todo.required for todo in todos)


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
def test_default_template_has_success_failure_and_waiting_statuses(name: str) -> None:
    kinds = {s.kind for s in default_flow(name).statuses}
    assert {NS, WAIT, OK, FAIL} <= kinds


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
def test_default_template_can_complete_from_its_initial_status(name: str) -> None:
    flow = default_flow(name)
    compiled = compile_flow(flow)
    done = next(s.key for s in flow.statuses if s.kind is OK)
    compiled.check_move(flow.initial_status.key, done, 0)


@pytest.mark.parametrize("name", sorted(DEFAULT_TEMPLATES))
def test_default_template_builds_its_machine(name: str) -> None:
    compiled = compile_flow(default_flow(name))
    machine = compiled.machine_class()
    assert list(machine.configuration_values) == [
        compiled.state_id(compiled.flow.initial_status.key)
    ]


def test_default_flow_takes_id_and_name() -> None:
    flow = default_flow("onboarding", flow_id="onboarding-eu", name="EU onboarding")
    assert (flow.id, flow.name) == ("onboarding-eu", "EU onboarding")


def test_default_flow_matches_its_builder() -> None:
    assert default_flow("order_issue") == DEFAULT_TEMPLATES["order_issue"]()


def test_default_flow_refuses_an_invalid_id() -> None:
    with pytest.raises(ValidationError) as info:
        default_flow("onboarding", flow_id=" padded ")
    assert info.value.field == "id"


def test_default_flow_unknown_name_names_the_known_templates() -> None:
    with pytest.raises(ValidationError, match="exchange_return") as info:
        default_flow("refund_party")
    assert info.value.field == "template"


def test_default_templates_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_TEMPLATES["mine"] = default_flow  # type: ignore[index]


# -- A/B experiments -----------------------------------------------------------------

IDS = [f"task-{i}" for i in range(20_000)]


def experiment(*weights: int) -> FlowExperiment:
    return FlowExperiment(
        task_type="exchange",
        variants=[FlowVariant(flow_id=f"flow-{i}", weight=w) for i, w in enumerate(weights)],
    )


def test_experiment_choice_is_deterministic() -> None:
    first, second = experiment(1, 1), experiment(1, 1)
    assert [first.choose(i) for i in IDS[:500]] == [second.choose(i) for i in IDS[:500]]


def test_experiment_choice_is_proportional_to_weights() -> None:
    counts = Counter(experiment(1, 3).choose(task_id) for task_id in IDS)
    # Expected 5000 / 15000; one standard deviation is ~61, and the id set is
    # fixed, so this band (> 8 sigma) is deterministic and still catches a skew.
    assert 4_500 <= counts["flow-0"] <= 5_500
    assert counts["flow-0"] + counts["flow-1"] == len(IDS)


def test_experiment_choice_uses_every_variant() -> None:
    counts = Counter(experiment(1, 1, 1).choose(task_id) for task_id in IDS[:3_000])
    assert set(counts) == {"flow-0", "flow-1", "flow-2"}


def test_experiment_choice_depends_on_the_task_type() -> None:
    other = FlowExperiment(task_type="refund", variants=experiment(1, 1).variants)
    assert [experiment(1, 1).choose(i) for i in IDS[:200]] != [other.choose(i) for i in IDS[:200]]


def test_experiment_needs_two_variants() -> None:
    with pytest.raises(ValidationError) as info:
        experiment(1)
    assert info.value.field == "variants"


def test_experiment_needs_distinct_variants() -> None:
    with pytest.raises(ValidationError) as info:
        FlowExperiment(
            task_type="exchange",
            variants=[FlowVariant(flow_id="a"), FlowVariant(flow_id="a", weight=2)],
        )
    assert info.value.field == "variants"


def test_experiment_weight_must_be_positive() -> None:
    with pytest.raises(ValidationError) as info:
        FlowVariant(flow_id="a", weight=0)
    assert info.value.field == "weight"
