"""Compile a flow version into its move rules.

Each ``Flow`` version compiles (once, cached) into a
``CompiledFlow`` holding two equivalent forms of the same rules:

- ``CompiledFlow.machine_class``, a python-statemachine class: the reference
  semantics, used for validation, diagrams and tests;
- a transition table (a dict of frozensets) used for every per-task move, because
  one machine instance per task costs hundreds of microseconds and ~10 KB.

``tests/test_flow_machine.py`` proves with hypothesis that both agree on every
accepted and refused move.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import statemachine

from cxflow.errors import MoveRefused
from cxflow.flows.model import Flow, StatusKind, TodoTemplate, allowed_targets

__all__ = ["CompiledFlow", "compile_flow"]


class CompiledFlow:
    """The move rules of one flow version. Build it with ``compile_flow``."""

    __slots__ = (
        "_machine_class", "allowed", "completed", "flow", "kind_values", "kinds", "todo_templates"
    )

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        self.allowed: Mapping[str, frozenset[str]] = allowed_targets(flow)
        """Enabled status key -> keys a task there may move to."""
        self.kinds: Mapping[str, StatusKind] = {s.key: s.kind for s in flow.statuses}
        self.kind_values: Mapping[str, str] = {key: k.value for key, k in self.kinds.items()}
        """Status key -> its kind's value (the text events carry)."""
        self.completed: frozenset[str] = frozenset(
            key for key, kind in self.kinds.items() if kind.is_completed
        )
        """Keys of the statuses of a completed kind."""
        self.todo_templates: Mapping[str, tuple[TodoTemplate, ...]] = {
            s.key: s.todos for s in flow.statuses if s.todos
        }
        """Status key -> its to-do templates (statuses without templates are absent)."""
        self._machine_class: type[Any] | None = None

    def check_move(self, source: str, target: str, open_required_todos: int) -> None:
        """Raise ``MoveRefused`` unless a task in ``source`` may move to ``target``.

        ``open_required_todos`` is the number of unchecked required to-dos; it
        blocks a move into a completed status unless the flow allows it.
        """
        targets = self.allowed.get(source)
        if targets is not None and target in targets:
            if (
                open_required_todos
                and target in self.completed
                and not self.flow.allow_open_required_todos
            ):
                raise MoveRefused(
                    "status",
                    f"cannot complete with {open_required_todos} open required to-do(s)",
                )
            return
        raise MoveRefused("status", self._refusal(source, target))

    def _refusal(self, source: str, target: str) -> str:
        flow = self.flow
        if not flow.has_status(target):
            return f"flow {flow.id!r} v{flow.version} has no status {target!r}"
        if not flow.status(target).enabled:
            return f"status {target!r} is disabled"
        if source == target:
            return f"the task is already in {target!r}"
        if source not in self.allowed:
            return f"the task's status {source!r} is not an enabled status of this flow"
        return f"the flow does not allow moving from {source!r} to {target!r}"

    @property
    def machine_class(self) -> type[Any]:
        """The python-statemachine class of this flow version (built on first use).

        States are the enabled statuses (ids ``s0``, ``s1``, ... by position in the
        flow); the event ``to_<i>`` moves to status ``i``. Completing moves carry
        the guard ``required_todos_done``, fed by the ``open_required_todos``
        keyword of ``send``.
        """
        if self._machine_class is None:
            self._machine_class = _build_machine_class(self.flow, self.allowed)
        return self._machine_class

    def state_id(self, key: str) -> str:
        """The machine state id of status ``key``."""
        return f"s{self._index(key)}"

    def event_name(self, key: str) -> str:
        """The machine event that moves to status ``key``."""
        return f"to_{self._index(key)}"

    def _index(self, key: str) -> int:
        for index, status in enumerate(self.flow.statuses):
            if status.key == key:
                return index
        raise MoveRefused("status", f"flow {self.flow.id!r} has no status {key!r}")


def _build_machine_class(flow: Flow, allowed: Mapping[str, frozenset[str]]) -> type[Any]:
    index = {s.key: i for i, s in enumerate(flow.statuses)}
    initial = flow.initial_status.key
    states = {
        key: statemachine.State(flow.status(key).label, initial=(key == initial))
        for key in allowed
    }
    attributes: dict[str, Any] = {f"s{index[key]}": state for key, state in states.items()}
    for target in allowed:
        target_state = states[target]
        cond = (
            None
            if flow.allow_open_required_todos or not flow.status(target).kind.is_completed
            else "required_todos_done"
        )
        transitions = None
        for source in allowed:
            if target in allowed[source]:
                move = states[source].to(target_state, cond=cond)
                transitions = move if transitions is None else transitions | move
        if transitions is not None:
            attributes[f"to_{index[target]}"] = transitions

    def required_todos_done(self: Any, open_required_todos: int = 0) -> bool:
        return open_required_todos == 0

    attributes["required_todos_done"] = required_todos_done
    attributes["validate_disconnected_states"] = False
    attributes["validate_trap_states"] = False
    attributes["validate_final_reachability"] = False
    name = "Flow_" + re.sub(r"\W", "_", flow.id) + f"_v{flow.version}"
    return type(name, (statemachine.StateMachine,), attributes)


@lru_cache(maxsize=1024)
def compile_flow(flow: Flow) -> CompiledFlow:
    """Return the (cached) compiled rules of ``flow``.

    The cache is keyed by the flow's full definition, so two tenants' flows
    with the same id and version never share rules unless they are identical.
    """
    return CompiledFlow(flow)
