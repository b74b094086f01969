"""Flow definitions: statuses, to-do templates, materials, allowed moves.

A ``Flow`` is an immutable, validated definition at one version. An
invalid flow cannot be constructed: every rule below raises
``cxflow.ValidationError`` naming the field and the reason.

- 1 to 8 statuses; keys unique ignoring case; labels unique ignoring case
  and spacing; at least one enabled status;
- a completed status (success or failure) enabled and reachable from the
  initial status, so every task can finish;
- restricted moves (``transitions``) name known statuses only;
- names, labels and texts follow the boundary rules
  (``docs/reference/boundary.md``): ``MAX_LABEL`` characters for a name,
  label, to-do text or material name, ``MAX_TEXT`` for a description.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar

import attrs

from cxflow import _validate as v
from cxflow.errors import ValidationError

__all__ = [
    "MAX_STATUSES",
    "Flow",
    "Material",
    "Status",
    "StatusKind",
    "TodoTemplate",
    "Transition",
]

MAX_STATUSES = 8


class StatusKind(enum.Enum):
    """What a status means to statistics and timers."""

    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    """Waiting on the customer or a third party: SLA clocks pause here."""
    COMPLETED_SUCCESS = "completed_success"
    COMPLETED_FAILURE = "completed_failure"

    @property
    def is_completed(self) -> bool:
        """True for both completed kinds."""
        return self in (StatusKind.COMPLETED_SUCCESS, StatusKind.COMPLETED_FAILURE)


def _to_kind(value: StatusKind | str) -> StatusKind:
    """Converter: a kind or its value; anything else is left for the validator."""
    result: Any = v.to_enum(StatusKind)(value)
    return result  # type: ignore[no-any-return]


@attrs.frozen(kw_only=True)
class TodoTemplate:
    """A checklist item that becomes a task's to-do when the task enters its status."""

    text: str = attrs.field(validator=v.free_text(v.MAX_LABEL))
    required: bool = attrs.field(default=False, validator=v.boolean)
    """Required to-dos must be checked before the task can complete (unless the
    flow allows completing with open required to-dos)."""


@attrs.frozen(kw_only=True)
class Material:
    """A file an agent can send into the conversation: name, URI and media type."""

    name: str = attrs.field(validator=v.free_text(v.MAX_LABEL))
    uri: str = attrs.field(validator=v.free_text(v.MAX_TEXT))
    media_type: str = attrs.field(default="application/octet-stream")

    @media_type.validator
    def _check_media_type(self, attribute: attrs.Attribute[str], value: object) -> None:
        if not isinstance(value, str) or not v.MEDIA_TYPE_PATTERN.match(value):
            raise ValidationError("media_type", f"{value!r} is not a media type like 'image/png'")


@attrs.frozen(kw_only=True)
class Status:
    """One step of a flow. A disabled (OFF) status is hidden from the board and
    cannot be entered."""

    key: str = attrs.field(validator=v.key)
    """Stable identifier, unique in its flow ignoring case."""
    label: str = attrs.field(validator=v.free_text(v.MAX_LABEL))
    """The board column's title, unique in its flow ignoring case and spacing
    (``"Done"``, ``"done"`` and ``" Done "`` are one label), disabled statuses
    included: they can be switched back on, and tasks in them still show it."""
    kind: StatusKind = attrs.field(converter=_to_kind, validator=v.enum_of(StatusKind))
    """A ``StatusKind`` or its value (``"waiting"``)."""
    enabled: bool = attrs.field(default=True, validator=v.boolean)
    todos: tuple[TodoTemplate, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(TodoTemplate)
    )
    materials: tuple[Material, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(Material)
    )


@attrs.frozen(kw_only=True)
class Transition:
    """An allowed move from one status key to another."""

    source: str = attrs.field(validator=v.key)
    target: str = attrs.field(validator=v.key)


@attrs.frozen(kw_only=True, cache_hash=True)
class Flow:
    """A versioned task flow.

    ``transitions=None`` (the default) allows any enabled status to move to any
    other enabled status; a tuple of ``Transition`` restricts moves to
    exactly those pairs (moves touching a disabled status stay impossible).
    Edit a flow with ``revise``, which returns the next version.
    """

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    id: str = attrs.field(validator=v.identifier)
    name: str = attrs.field(validator=v.free_text(v.MAX_LABEL))
    statuses: tuple[Status, ...] = attrs.field(converter=v.to_tuple, validator=v.tuple_of(Status))
    version: int = attrs.field(default=1, validator=v.positive_int)
    description: str = attrs.field(default="", validator=v.free_text(v.MAX_TEXT, blank=True))
    initial: str | None = attrs.field(default=None, validator=attrs.validators.optional(v.key))
    """Key of the status new tasks start in; default: the first enabled status."""
    transitions: tuple[Transition, ...] | None = attrs.field(
        default=None, converter=v.optional_tuple
    )
    allow_open_required_todos: bool = attrs.field(default=False, validator=v.boolean)
    """When true, a task may complete while required to-dos are open."""
    materials: tuple[Material, ...] = attrs.field(
        default=(), converter=v.to_tuple, validator=v.tuple_of(Material)
    )

    def __attrs_post_init__(self) -> None:
        _check_flow(self)

    # -- queries -----------------------------------------------------------------

    @property
    def initial_status(self) -> Status:
        """The status new tasks start in."""
        key = self.initial
        for status in self.statuses:
            if (key is None and status.enabled) or status.key == key:
                return status
        raise AssertionError("validated flows always have an initial status")  # pragma: no cover

    @property
    def enabled_statuses(self) -> tuple[Status, ...]:
        """The statuses that are ON, in board order."""
        return tuple(s for s in self.statuses if s.enabled)

    def status(self, key: str) -> Status:
        """The status with ``key``; ``ValidationError`` if the flow has none."""
        if not isinstance(key, str):
            raise ValidationError("status", f"expected a status key, got {type(key).__name__}")
        for status in self.statuses:
            if status.key == key:
                return status
        raise ValidationError("status", f"flow {self.id!r} has no status {key!r}")

    def has_status(self, key: str) -> bool:
        """True when the flow defines a status with ``key`` (enabled or not)."""
        return any(s.key == key for s in self.statuses)

    def revise(self, **changes: Any) -> Flow:
        """Return the next version of this flow with ``changes`` applied (validated)."""
        if "version" in changes or "id" in changes:
            raise ValidationError("version", "revise() sets id and version itself")
        return attrs.evolve(self, version=self.version + 1, **changes)


def _check_flow(flow: Flow) -> None:
    count = len(flow.statuses)
    if not 1 <= count <= MAX_STATUSES:
        raise ValidationError(
            "statuses", f"a flow has 1 to {MAX_STATUSES} statuses, got {count}"
        )
    seen: dict[str, int] = {}
    for index, status in enumerate(flow.statuses):
        folded = status.key.casefold()
        if folded in seen:
            raise ValidationError(
                f"statuses[{index}].key",
                f"duplicate status key {status.key!r} (same as statuses[{seen[folded]}], "
                "keys are compared ignoring case)",
            )
        seen[folded] = index
    labels: dict[str, int] = {}
    for index, status in enumerate(flow.statuses):
        folded = " ".join(status.label.split()).casefold()
        if folded in labels:
            raise ValidationError(
                f"statuses[{index}].label",
                f"duplicate status label {status.label!r} (same as statuses[{labels[folded]}], "
                "labels are compared ignoring case and spacing)",
            )
        labels[folded] = index
    enabled = {s.key for s in flow.statuses if s.enabled}
    if not enabled:
        raise ValidationError("statuses", "at least one status must be enabled")
    if flow.initial is not None:
        if not flow.has_status(flow.initial):
            raise ValidationError("initial", f"unknown status {flow.initial!r}")
        if flow.initial not in enabled:
            raise ValidationError("initial", f"status {flow.initial!r} is disabled")
    if flow.transitions is not None:
        if not isinstance(flow.transitions, tuple):
            raise ValidationError("transitions", "expected a list of Transition or None")
        known = {s.key for s in flow.statuses}
        for index, transition in enumerate(flow.transitions):
            if not isinstance(transition, Transition):
                raise ValidationError(f"transitions[{index}]", "expected a Transition")
            for end in ("source", "target"):
                if getattr(transition, end) not in known:
                    raise ValidationError(
                        f"transitions[{index}].{end}",
                        f"unknown status {getattr(transition, end)!r}",
                    )
            if transition.source == transition.target:
                raise ValidationError(
                    f"transitions[{index}]", "a status cannot move to itself"
                )
    completed = {s.key for s in flow.statuses if s.enabled and s.kind.is_completed}
    if not completed:
        raise ValidationError(
            "statuses", "no way to complete: no enabled status of a completed kind"
        )
    if not completed & reachable_statuses(flow):
        raise ValidationError(
            "transitions",
            "no way to complete: no enabled completed status is reachable from "
            f"{flow.initial_status.key!r}",
        )


def allowed_targets(flow: Flow) -> dict[str, frozenset[str]]:
    """Map each enabled status key to the enabled keys a task there may move to."""
    enabled = [s.key for s in flow.statuses if s.enabled]
    if flow.transitions is None:
        return {src: frozenset(k for k in enabled if k != src) for src in enabled}
    table: dict[str, set[str]] = {k: set() for k in enabled}
    enabled_set = set(enabled)
    for transition in flow.transitions:
        if transition.source in enabled_set and transition.target in enabled_set:
            table[transition.source].add(transition.target)
    return {src: frozenset(targets) for src, targets in table.items()}


def reachable_statuses(flow: Flow) -> set[str]:
    """Enabled status keys reachable from the initial status (itself included)."""
    table = allowed_targets(flow)
    start = flow.initial_status.key
    seen = {start}
    frontier = [start]
    while frontier:
        for target in table[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen
