"""The one cattrs converter: cxflow values to JSON-ready dicts and back.

- Datetimes are ISO 8601 strings with an offset; naive ones are refused.
- Durations (``timedelta``) are integer microseconds; dates are ISO 8601 text.
- Enums are their values; tuples become lists.
- Named tuples (``cxflow.assignment.Decision``) are objects keyed by field
  name, like attrs records.
- Primitive types are strict: ``"5"`` is not an int and ``1`` is not a bool.
- Unknown keys are refused (``forbid_extra_keys``).
- Events carry a ``"type"`` tag resolved through the explicit map
  ``cxflow.events.EVENT_TYPES``; no class is ever imported by name.
- Shapes evolve through upcasters. Every event class and record class has a
  ``schema_version`` (a class attribute, 1 unless its shape changed); data of
  a class past version 1 carries it as ``"schema_version"``, data without
  the key is version 1. Reading data at an older version runs the upcasters
  registered for it (``register_upcaster``), one version step at a time, on
  the raw dict before it is structured; data of a newer version than this
  cxflow knows is refused.

Every structuring failure is raised as ``cxflow.ValidationError`` whose
``field`` is the path of the offending value (``$.statuses[2].kind``), and
nothing else ever comes out of ``from_dict`` / ``event_from_dict``, whatever
the input: input nested deeper than ``MAX_DEPTH`` containers is refused
before structuring (so no ``RecursionError``), numbers and instants out of
range are refused by the hooks, and any other exception raised while
structuring (``OverflowError``, a validator's ``TypeError``, ...) becomes a
``ValidationError`` at the path cattrs reports. Error messages quote at most
a few dozen characters of the offending value.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import cattrs
from attrs import AttrsInstance
from cattrs.cols import (
    is_namedtuple,
    namedtuple_dict_structure_factory,
    namedtuple_dict_unstructure_factory,
)
from cattrs.errors import BaseValidationError, StructureHandlerNotFoundError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.v import transform_error

from cxflow._validate import shown
from cxflow.assignment.strategies import LeastLoad, RoundRobin, SkillBased, Strategy
from cxflow.clock import ensure_aware
from cxflow.errors import ValidationError, summary
from cxflow.events import EVENT_TYPES, Event

if TYPE_CHECKING:  # at run time the cycle through cxflow.assignment is not needed
    from cxflow.assignment.scheduler import Decision

__all__ = [
    "MAX_DEPTH",
    "SCHEMA_KEY",
    "STRATEGIES",
    "UPCASTERS",
    "Record",
    "Upcaster",
    "converter", "event_from_dict", "event_to_dict",
    "from_dict",
    "register_upcaster",
    "schema_version",
    "to_dict",
]

T = TypeVar("T")

Record: TypeAlias = "AttrsInstance | Decision"
"""What ``to_dict`` takes: a cxflow record (any attrs class: flow, task,
event, agent, ...) or an assignment ``Decision``."""


class _ValueRefused(ValidationError):
    """Raised by the converter's own hooks: the path cattrs reports is the field."""


_FIELD_MARK = " @@"
_MICROSECOND = timedelta(microseconds=1)
_MIN_MICROSECONDS = timedelta.min // _MICROSECOND
_MAX_MICROSECONDS = timedelta.max // _MICROSECOND
"""The range of a ``timedelta``, in microseconds."""

MAX_DEPTH = 32
"""The deepest nesting of objects and lists ``from_dict`` accepts (a cxflow
record nests fewer than 10 levels); deeper input is a ``ValidationError``."""

STRATEGIES: dict[str, type[Strategy]] = {
    "least-load": LeastLoad,
    "round-robin": RoundRobin,
    "skill-based": SkillBased,
    "skill-based+spread": SkillBased,
}
"""The assignment strategies ``from_dict`` builds, by their ``"name"`` (the
explicit map of tagged unions: no class is imported by name). A custom
strategy serialises, but reads back only once added here by the host."""

SCHEMA_KEY = "schema_version"
"""The key of a shape's version in its data (present only past version 1)."""

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns the data of one shape at version *n* into its data at *n + 1*."""

UPCASTERS: dict[tuple[str, int], Upcaster] = {}
"""``(shape, n)`` -> the upcaster from version *n*; a shape is an event's
``type`` tag or a record class's name (``"Task"``). See ``register_upcaster``."""


def register_upcaster(shape: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Register the decorated function as the upcaster of ``shape`` (an event
    ``type`` tag, or a record class's ``__name__``) from ``from_version`` to
    the next. It gets a copy of the stored dict (without ``"type"`` and
    ``"schema_version"``) and returns the dict at the next version; raising
    ``ValidationError`` refuses the data. A class whose shape changes bumps
    its ``schema_version`` and registers one upcaster per step."""
    if type(from_version) is not int or from_version < 1:
        raise ValidationError("from_version", "expected an integer >= 1")

    def register(upcaster: Upcaster) -> Upcaster:
        key = (shape, from_version)
        if key in UPCASTERS:
            raise ValidationError("shape", f"{shape!r} v{from_version} has an upcaster already")
        UPCASTERS[key] = upcaster
        return upcaster

    return register


def schema_version(kind: type) -> int:
    """The current shape version of ``kind`` (1 unless it says otherwise)."""
    version = getattr(kind, "schema_version", 1)
    return version if type(version) is int and version >= 1 else 1


def _upcast(shape: str, current: int, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a copy, its ``"schema_version"`` taken out) upcast to ``current``."""
    stored = data.pop(SCHEMA_KEY, 1)
    if type(stored) is not int or stored < 1:
        raise ValidationError(SCHEMA_KEY, f"expected an integer >= 1, got {shown(stored)}")
    if stored > current:
        raise ValidationError(
            SCHEMA_KEY,
            f"{shape} data of shape v{stored} was written by a newer cxflow "
            f"(this one reads up to v{current})",
        )
    while stored < current:
        upcaster = UPCASTERS.get((shape, stored))
        if upcaster is None:
            raise ValidationError(SCHEMA_KEY, f"no upcaster for {shape} v{stored}")
        data = upcaster(dict(data))
        if not isinstance(data, dict):
            raise ValidationError(SCHEMA_KEY, f"the upcaster of {shape} v{stored} returned no dict")
        stored += 1
    return data


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, unstruct_collection_overrides={tuple: list})

    def structure_datetime(value: Any, _: type) -> datetime:
        if not isinstance(value, str):
            raise _ValueRefused("datetime", f"expected an ISO 8601 string, got {shown(value)}")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise _ValueRefused("datetime", f"{shown(value)} is not ISO 8601") from exc
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            raise _ValueRefused("datetime", f"{shown(value)} is naive; include a UTC offset")
        try:
            return ensure_aware(parsed, "datetime")
        except (OverflowError, ValidationError) as exc:  # year 1 at +05:00 is before year 1 UTC
            raise _ValueRefused("datetime", f"{shown(value)} is out of range in UTC") from exc

    conv.register_unstructure_hook(datetime, lambda d: ensure_aware(d, "datetime").isoformat())
    conv.register_structure_hook(datetime, structure_datetime)

    def structure_timedelta(value: Any, _: type) -> timedelta:
        if type(value) is not int:
            raise _ValueRefused(
                "timedelta", f"expected integer microseconds, got {shown(value)}"
            )
        if not _MIN_MICROSECONDS <= value <= _MAX_MICROSECONDS:
            raise _ValueRefused(
                "timedelta",
                f"{shown(value)} is out of range (a duration is from {_MIN_MICROSECONDS} "
                f"to {_MAX_MICROSECONDS} microseconds)",
            )
        return timedelta(microseconds=value)

    def structure_date(value: Any, _: type) -> date:
        if not isinstance(value, str):
            raise _ValueRefused("date", f"expected an ISO 8601 date string, got {shown(value)}")
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise _ValueRefused("date", f"{shown(value)} is not an ISO 8601 date") from exc

    conv.register_unstructure_hook(date, date.isoformat)
    conv.register_structure_hook(date, structure_date)
    conv.register_unstructure_hook(timedelta, lambda d: d // _MICROSECOND)
    conv.register_structure_hook(timedelta, structure_timedelta)

    def strict(kind: type[Any]) -> Any:
        def structure(value: Any, _: type) -> Any:
            if type(value) is not kind and not (kind is float and type(value) is int):
                raise _ValueRefused(
                    kind.__name__, f"expected {kind.__name__}, got {type(value).__name__}"
                )
            try:
                return kind(value)
            except OverflowError as exc:  # an int too large for a float
                raise _ValueRefused(kind.__name__, f"{shown(value)} is out of range") from exc

        return structure

    for kind in (str, int, bool, float):
        conv.register_structure_hook(kind, strict(kind))

    def structure_enum(value: Any, kind: type[enum.Enum]) -> enum.Enum:
        try:
            return kind(value)
        except ValueError as exc:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise _ValueRefused(kind.__name__, f"{shown(value)} is not one of {allowed}") from exc

    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), structure_enum
    )

    strategy_structurers = {
        kind: make_dict_structure_fn(kind, conv, _cattrs_forbid_extra_keys=True)
        for kind in set(STRATEGIES.values())
    }

    def structure_strategy(value: Any, _: type) -> Strategy:
        if not isinstance(value, dict):
            raise _ValueRefused("strategy", f"expected an object, got {type(value).__name__}")
        name = value.get("name")
        kind = STRATEGIES.get(name) if isinstance(name, str) else None
        if kind is None:
            known = ", ".join(repr(known) for known in STRATEGIES)
            raise ValidationError("name", f"unknown strategy {shown(name)} (known: {known})")
        strategy: Strategy = strategy_structurers[kind](value, kind)
        return strategy

    conv.register_structure_hook(Strategy, structure_strategy)

    def structure_namedtuple(cl: type[tuple[Any, ...]], c: cattrs.Converter) -> Any:
        return namedtuple_dict_structure_factory(cl, c, "from_converter", True)  # forbid extras

    conv.register_unstructure_hook_factory(is_namedtuple, namedtuple_dict_unstructure_factory)
    conv.register_structure_hook_factory(is_namedtuple, structure_namedtuple)

    structurers = {
        tag: make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True)
        for tag, cls in EVENT_TYPES.items()
    }
    unstructurers = {cls: make_dict_unstructure_fn(cls, conv) for cls in EVENT_TYPES.values()}

    def unstructure_event(event: Event) -> dict[str, Any]:
        kind = type(event)
        unstructure = unstructurers.get(kind)
        if unstructure is None:
            raise _ValueRefused("type", f"{kind.__name__} is not a registered event type")
        version = schema_version(kind)
        if version > 1:
            return {"type": kind.type, SCHEMA_KEY: version, **unstructure(event)}
        return {"type": kind.type, **unstructure(event)}

    def structure_event(value: Any, _: type) -> Event:
        if not isinstance(value, dict):
            raise _ValueRefused("event", f"expected an object, got {type(value).__name__}")
        tag = value.get("type")
        structure = structurers.get(tag) if isinstance(tag, str) else None
        if structure is None:
            raise ValidationError("type", f"unknown event type {shown(tag)}")
        body = {k: v for k, v in value.items() if k != "type"}
        kind = EVENT_TYPES[str(tag)]
        current = schema_version(kind)
        if current > 1 or SCHEMA_KEY in body:
            body = _upcast(str(tag), current, body)
        event: Event = structure(body, kind)
        return event

    conv.register_unstructure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Event), unstructure_event
    )
    conv.register_structure_hook_func(
        lambda t: isinstance(t, type) and issubclass(t, Event), structure_event
    )
    return conv


converter: cattrs.Converter = _make_converter()
"""The shared converter. Prefer ``to_dict`` / ``from_dict``."""


def _leaf_format(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, _ValueRefused):
        return exc.reason
    if isinstance(exc, ValidationError):
        # Raised by a class's validators: its field is relative to the class's path.
        return f"{exc.reason}{_FIELD_MARK}{exc.field}"
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown keys {sorted(exc.extra_fields)}"
    return summary(exc)


def _join(path: str, field: str) -> str:
    return f"{path}{field}" if field.startswith("[") else f"{path}.{field}"


def _as_validation_error(exc: BaseException) -> ValidationError:
    if isinstance(exc, _ValueRefused):
        return ValidationError("$", exc.reason)
    if isinstance(exc, ValidationError):
        return ValidationError(_join("$", exc.field), exc.reason)
    if isinstance(exc, BaseValidationError):
        messages = transform_error(exc, path="$", format_exception=_leaf_format)
        first = messages[0] if messages else "invalid value @ $"
        reason, _, path = first.rpartition(" @ ")
        if _FIELD_MARK in reason:
            reason, _, field = reason.rpartition(_FIELD_MARK)
            path = _join(path or "$", field)
        more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
        return ValidationError(path or "$", f"{reason}{more}")
    return ValidationError("$", summary(exc))


def to_dict(value: Record) -> dict[str, Any]:
    """Unstructure a cxflow record (flow, task, event, decision, ...) into a
    JSON-ready object; ``ValidationError`` for a value that is not a record."""
    result = converter.unstructure(value)
    if type(result) is not dict:
        raise ValidationError(
            "value", f"expected a cxflow record, got {type(value).__name__}"
        )
    version = schema_version(type(value))
    if version > 1 and not isinstance(value, Event):  # an event's tag comes first
        result = {SCHEMA_KEY: version, **result}
    return result


_CONTAINERS = (dict, list, tuple)


def _too_deep(data: object) -> str | None:
    """The path of a container nested deeper than ``MAX_DEPTH`` in ``data``,
    or ``None``. Iterative, level by level: no recursion, whatever the depth
    (about 10 us for a task)."""
    if not isinstance(data, _CONTAINERS):
        return None
    level: list[Any] = [data]
    depth = 1
    while True:
        deeper: list[Any] = []
        for parent in level:
            for child in parent.values() if isinstance(parent, dict) else parent:
                if isinstance(child, _CONTAINERS):
                    deeper.append(child)
        if not deeper:
            return None
        depth += 1
        if depth > MAX_DEPTH:
            return _path_to_depth(data, depth)
        level = deeper


def _path_to_depth(data: object, depth: int) -> str:
    """The path of the first container at nesting ``depth`` (1: ``data``)."""
    stack: list[tuple[object, str, int]] = [(data, "$", 1)]
    while stack:
        value, path, at = stack.pop()
        if at == depth:
            return path
        items: list[tuple[str, object]]
        if isinstance(value, dict):
            items = [(f".{str(key)[:40]}", child) for key, child in value.items()]
        elif isinstance(value, list | tuple):
            items = [(f"[{index}]", child) for index, child in enumerate(value)]
        else:
            continue
        stack.extend(
            (child, path + step, at + 1)
            for step, child in reversed(items)
            if isinstance(child, _CONTAINERS)
        )
    return "$"  # pragma: no cover - _too_deep found one


def from_dict(kind: type[T], data: Any) -> T:
    """Structure ``data`` (what ``json.loads`` returns) into ``kind``.

    Raises ``ValidationError`` and nothing else, for any input: its ``field``
    is the path of the offending value (``$.statuses[2].kind``); ``kind`` when
    the converter cannot build ``kind`` at all; ``$...`` with "nested deeper"
    when ``data`` nests more than ``MAX_DEPTH`` objects and lists."""
    deep = _too_deep(data)
    if deep is not None:
        raise ValidationError(deep, f"nested deeper than {MAX_DEPTH} objects and lists")
    try:
        if isinstance(data, dict) and isinstance(kind, type) and not issubclass(kind, Event):
            current = schema_version(kind)
            if current > 1 or SCHEMA_KEY in data:
                data = _upcast(kind.__name__, current, dict(data))
        return converter.structure(data, kind)
    except StructureHandlerNotFoundError as exc:
        raise ValidationError("kind", f"cannot structure {shown(kind)}") from exc
    except Exception as exc:  # the boundary: nothing but ValidationError leaves it
        raise _as_validation_error(exc) from exc


def event_to_dict(event: Event) -> dict[str, Any]:
    """Unstructure an event, tagged with its ``"type"``."""
    result: dict[str, Any] = converter.unstructure(event, Event)
    return result


def event_from_dict(data: Any) -> Event:
    """Structure a tagged event dict back into its event class; raises only
    ``ValidationError``, as ``from_dict``."""
    return from_dict(Event, data)
