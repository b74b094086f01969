"""Small validators shared by the domain classes (attrs ``validator=`` hooks).

Each raises ``cxflow.ValidationError`` naming the attribute, so a bad value
is reported the same way whether it came from Python code or from JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from cxflow.clock import ensure_aware
from cxflow.errors import ValidationError

KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
MEDIA_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+\Z")
_UNSTORABLE_IN_IDS = re.compile("[\x00-\x1f\ud800-\udfff]")
"""Control characters and lone surrogates (no database keeps the latter)."""
_UNSTORABLE_IN_NAMES = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def check_text(value: object, field: str) -> str:
    """Return ``value`` if it is text with a non-space character, else raise
    ``ValidationError`` naming ``field`` (for command arguments)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be non-empty text")
    return value


def non_empty_text(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``str`` with at least one non-space character."""
    if not isinstance(value, str):
        raise ValidationError(attribute.name, f"expected text, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(attribute.name, "must not be empty")


def identifier(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A record id: text of 1 to 200 characters without leading/trailing space,
    control characters or lone surrogates."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= 200
        or value != value.strip()
        or _UNSTORABLE_IN_IDS.search(value) is not None
    ):
        raise ValidationError(
            attribute.name,
            f"{value!r} is not a valid id (1-200 characters, no surrounding spaces, "
            "control characters or lone surrogates)",
        )


MAX_NAME = 200


def check_name(value: object, field: str) -> str:
    """Return ``value`` if it is a name: a tag, an agent, an assignee — non-blank
    text of at most 200 characters without control characters or lone
    surrogates (which databases cannot store); else raise ``ValidationError``
    naming ``field``."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_NAME
        or _UNSTORABLE_IN_NAMES.search(value) is not None
    ):
        raise ValidationError(
            field,
            f"{value!r} is not a valid name (non-blank text, at most {MAX_NAME} "
            "characters, no control characters or lone surrogates)",
        )
    return value


def optional_name(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or a name (see ``check_name``)."""
    if value is not None:
        check_name(value, attribute.name)


def names(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A tuple of names (see ``check_name``)."""
    if not isinstance(value, tuple):
        raise ValidationError(
            attribute.name, f"expected a list of names, got {type(value).__name__}"
        )
    for index, item in enumerate(value):
        check_name(item, f"{attribute.name}[{index}]")


def optional_text(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or non-empty text."""
    if value is not None:
        non_empty_text(_inst, attribute, value)


def text(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``str`` (possibly empty)."""
    if not isinstance(value, str):
        raise ValidationError(attribute.name, f"expected text, got {type(value).__name__}")


def key(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """An identifier-like key: a letter, then letters, digits, ``_`` or ``-`` (max 64)."""
    if not isinstance(value, str) or not KEY_PATTERN.match(value):
        raise ValidationError(
            attribute.name,
            f"{value!r} is not a valid key (a letter, then letters, digits, '_' or '-', "
            "at most 64 characters)",
        )


def aware(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """An aware datetime (naive datetimes are refused)."""
    ensure_aware(value, attribute.name)


def optional_aware(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or an aware datetime."""
    if value is not None:
        ensure_aware(value, attribute.name)


def to_utc(value: datetime) -> datetime:
    """Converter: aware datetimes are normalised to UTC; anything else is left for the
    validator to refuse."""
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        return ensure_aware(value, "datetime")
    return value


def optional_to_utc(value: datetime | None) -> datetime | None:
    """Converter: like ``to_utc``, passing ``None`` through."""
    return None if value is None else to_utc(value)


def check_int(value: object, field: str, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an ``int`` (not ``bool``) from ``low`` to
    ``high`` inclusive (``None``: no upper bound), else raise
    ``ValidationError`` naming ``field``."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        raise ValidationError(field, f"expected an integer {bounds}, got {value!r}")
    return value


def int_between(low: int, high: int | None = None) -> Any:
    """Validator: ``check_int`` with these bounds, naming the attribute."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int(value, attribute.name, low, high)

    return check


def positive_int(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """An ``int`` (not ``bool``) of at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(attribute.name, f"expected an integer >= 1, got {value!r}")


def boolean(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``bool``."""
    if not isinstance(value, bool):
        raise ValidationError(attribute.name, f"expected true or false, got {value!r}")


def instance_of(kind: type[Any]) -> Any:
    """Validator: ``isinstance(value, kind)``, reported as a ``ValidationError``."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, kind):
            raise ValidationError(
                attribute.name, f"expected {kind.__name__}, got {type(value).__name__}"
            )

    return check


def tuple_of(kind: type[Any]) -> Any:
    """Validator: a tuple whose every item is a ``kind``."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, tuple):
            raise ValidationError(
                attribute.name, f"expected a list or tuple, got {type(value).__name__}"
            )
        for index, item in enumerate(value):
            if not isinstance(item, kind):
                raise ValidationError(
                    f"{attribute.name}[{index}]",
                    f"expected {kind.__name__}, got {type(item).__name__}",
                )

    return check


def to_tuple(value: Iterable[Any]) -> Any:
    """Converter: a list or other iterable becomes a tuple (so callers may pass
    lists); anything else is left for the field's validator to refuse by name."""
    if type(value) is tuple:
        return value
    if type(value) is list or (
        isinstance(value, Iterable) and not isinstance(value, str | bytes | dict)
    ):
        return tuple(value)
    return value


def to_dict(value: Any) -> Any:
    """Converter: a mapping becomes a plain ``dict`` copy (so callers may pass any
    mapping, and never share it); anything else is left for the validator."""
    return dict(value) if isinstance(value, Mapping) else value


def optional_tuple(value: Iterable[Any] | None) -> Any:
    """Converter: like ``to_tuple``, passing ``None`` through."""
    return None if value is None else to_tuple(value)


def actor(by: object) -> str:
    """Return ``by`` (who makes a change) if it is non-empty text, else raise
    ``ValidationError`` (field ``by``)."""
    if not isinstance(by, str) or not by.strip():
        raise ValidationError("by", "name who makes the change (non-empty text)")
    return by
