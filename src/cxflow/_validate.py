"""The boundary checks: one rule per kind of value, shared by every entry point.

Each ``check_*`` function returns the (possibly normalised) value or raises
``cxflow.ValidationError`` naming the field; the attrs ``validator=`` hooks
below apply the same rules to attributes. So a bad value is reported the
same way whether it came from Python code, JSON or a store read. The limits
are public constants, listed in ``docs/reference/boundary.md``; every shipped
store (memory, SQLite, PostgreSQL) can keep whatever passes them.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

import attrs

from cxflow.clock import ensure_aware
from cxflow.errors import ValidationError

KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
MEDIA_TYPE_PATTERN = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+\Z")
_UNSTORABLE_IN_IDS = re.compile("[\x00-\x1f\ud800-\udfff]")
"""Control characters and lone surrogates (no database keeps the latter)."""
_UNSTORABLE_IN_NAMES = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_UNSTORABLE_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
"""C0 control characters except tab, newline and carriage return, and lone
surrogates (PostgreSQL refuses NUL in text; no UTF-8 store keeps surrogates)."""

MAX_ID = 200
"""Longest record id, in characters (the SQL key columns are ``VARCHAR(200)``)."""
MAX_TENANT = 200
"""Longest tenant, in characters (the SQL tenant columns are ``VARCHAR(200)``)."""
MAX_NAME = 200
"""Longest name (tag, agent, assignee, skill, group, ``by``), in characters."""
MAX_LABEL = 500
"""Longest one-line text (title, status label, flow name, reason), in characters."""
MAX_TEXT = 65_536
"""Longest long text (description, comment), in characters."""
MIN_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
"""Earliest instant accepted (inclusive)."""
MAX_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)
"""Latest instant accepted (inclusive): far enough from year 9999 that adding
any accepted duration cannot overflow."""
MAX_DURATION = timedelta(days=3650)
"""Longest duration accepted (inclusive): SLA targets, timeouts, leases."""


def check_text(value: object, field: str) -> str:
    """Return ``value`` if it is text with a non-space character, else raise
    ``ValidationError`` naming ``field`` (for command arguments)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, "must be non-empty text")
    return value


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 2
_SHOWN.maxstring = _SHOWN.maxother = 40
_SHOWN.maxdict = _SHOWN.maxlist = _SHOWN.maxtuple = 4


def shown(value: object) -> str:
    """A short ``repr`` of ``value`` for error messages, at most 60 characters,
    whose cost does not grow with the value (a megabyte string, deep nesting);
    never raises: a huge int, or an object whose ``__repr__`` fails, is shown
    by its type (``<int>``)."""
    if type(value) is int and value.bit_length() > 64:
        return "<int>"
    try:
        text = _SHOWN.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _reject(field: str, value: object, rule: str) -> ValidationError:
    return ValidationError(field, f"{shown(value)} is not valid: {rule}")


def check_id(value: object, field: str) -> str:
    """Return ``value`` if it is a record id: text of 1 to ``MAX_ID``
    characters without leading/trailing space, control characters or lone
    surrogates; else raise ``ValidationError`` naming ``field``. Stores apply
    it to the ids of reads too, so a non-string id fails alike everywhere."""
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_ID
        or value != value.strip()
        or _UNSTORABLE_IN_IDS.search(value) is not None
    ):
        raise _reject(
            field,
            value,
            f"an id is 1-{MAX_ID} characters, no surrounding spaces, "
            "control characters or lone surrogates",
        )
    return value


_GOOD_TENANTS: set[str] = set()
"""Tenants that passed ``check_tenant`` (a call checks its tenant at every
layer it crosses: the engine, each store read, the commit)."""
_GOOD_TENANTS_KEPT = 10_000


def check_tenant(value: object, field: str = "tenant") -> str:
    """Return ``value`` if it is a tenant: non-blank text of at most
    ``MAX_TENANT`` characters without control characters or lone surrogates;
    else raise ``ValidationError`` naming ``field``."""
    if value.__class__ is str and value in _GOOD_TENANTS:
        return value
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > MAX_TENANT
        or _UNSTORABLE_IN_NAMES.search(value) is not None
    ):
        raise _reject(
            field,
            value,
            f"a tenant is non-blank text of at most {MAX_TENANT} characters, "
            "no control characters or lone surrogates",
        )
    if value.__class__ is str and len(_GOOD_TENANTS) < _GOOD_TENANTS_KEPT:
        _GOOD_TENANTS.add(value)
    return value


def check_free_text(
    value: object, field: str, *, max_len: int = MAX_LABEL, blank: bool = False
) -> str:
    """Return ``value`` if it is free text (a title, label, comment, reason...)
    of at most ``max_len`` characters without NUL, other C0 control
    characters (tab, newline and carriage return are allowed) or lone
    surrogates, and not blank unless ``blank``; else raise ``ValidationError``
    naming ``field``."""
    if not isinstance(value, str):
        raise ValidationError(field, f"expected text, got {type(value).__name__}")
    if len(value) > max_len:
        raise ValidationError(field, f"at most {max_len} characters, got {len(value)}")
    if not blank and not value.strip():
        raise ValidationError(field, "must not be empty")
    if _UNSTORABLE_IN_TEXT.search(value) is not None:
        raise ValidationError(
            field,
            "must not contain NUL, control characters other than tab, newline and "
            "carriage return, or lone surrogates",
        )
    return value


def free_text(max_len: int = MAX_LABEL, *, blank: bool = False) -> Any:
    """Validator: ``check_free_text`` with these limits, naming the attribute."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_free_text(value, attribute.name, max_len=max_len, blank=blank)

    return check


def check_instant(value: object, field: str) -> datetime:
    """Return ``value`` as an aware UTC datetime if it is an aware datetime
    from ``MIN_INSTANT`` to ``MAX_INSTANT``; else raise ``ValidationError``
    naming ``field`` (never ``OverflowError``, whatever the offset)."""
    instant = ensure_aware(value, field)
    if not MIN_INSTANT <= instant <= MAX_INSTANT:
        raise ValidationError(
            field,
            f"{instant.isoformat()} is out of range "
            f"({MIN_INSTANT.isoformat()} to {MAX_INSTANT.isoformat()})",
        )
    return instant


def optional_instant(value: object, field: str) -> datetime | None:
    """``None``, or ``check_instant``."""
    return None if value is None else check_instant(value, field)


def check_duration(
    value: object,
    field: str,
    *,
    zero: bool = False,
    maximum: timedelta = MAX_DURATION,
) -> timedelta:
    """Return ``value`` if it is a ``timedelta`` greater than zero (or equal
    to it when ``zero``) and at most ``maximum`` (default ``MAX_DURATION``);
    else raise ``ValidationError`` naming ``field``."""
    if not isinstance(value, timedelta):
        raise ValidationError(field, f"expected a timedelta, got {type(value).__name__}")
    low_ok = value >= timedelta(0) if zero else value > timedelta(0)
    if not low_ok or value > maximum:
        low = ">= 0" if zero else "> 0"
        raise ValidationError(field, f"expected a duration {low} and <= {maximum}, got {value}")
    return value


def duration(*, zero: bool = False, maximum: timedelta = MAX_DURATION) -> Any:
    """Validator: ``check_duration`` with these bounds, naming the attribute."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_duration(value, attribute.name, zero=zero, maximum=maximum)

    return check


E = TypeVar("E", bound=Enum)


def check_enum(value: object, kind: type[E], field: str) -> E:
    """Return the member of ``kind`` that ``value`` is or whose value it is
    (``"high"`` gives ``Priority.HIGH``); else raise ``ValidationError``
    naming ``field`` and listing the accepted values."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except (ValueError, TypeError):
        accepted = ", ".join(repr(member.value) for member in kind)
        raise _reject(field, value, f"expected one of {accepted}") from None


def to_enum(kind: type[E]) -> Any:
    """Converter: a member's value becomes the member of ``kind``; anything
    else is left for the ``enum_of`` validator to refuse by name."""

    def convert(value: object) -> object:
        if isinstance(value, kind):
            return value
        try:
            return kind(value)
        except (ValueError, TypeError):
            return value

    return convert


def enum_of(kind: type[Enum]) -> Any:
    """Validator: a member of ``kind`` (see ``check_enum``), naming the attribute."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_enum(value, kind, attribute.name)

    return check


def check_names(value: object, field: str) -> tuple[str, ...]:
    """Return ``value`` as a tuple of names (see ``check_name``) if it is a
    list, tuple, set or other non-text iterable of names; a string, mapping
    or anything else raises ``ValidationError`` naming ``field``."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValidationError(field, f"expected a list of names, got {type(value).__name__}")
    items = tuple(value)
    for index, item in enumerate(items):
        check_name(item, f"{field}[{index}]")
    return items


def non_empty_text(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``str`` with at least one non-space character."""
    if not isinstance(value, str):
        raise ValidationError(attribute.name, f"expected text, got {type(value).__name__}")
    if not value.strip():
        raise ValidationError(attribute.name, "must not be empty")


def identifier(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A record id (see ``check_id``)."""
    check_id(value, attribute.name)


def check_name(value: object, field: str) -> str:
    """Return ``value`` if it is a name: a tag, an agent, an assignee — non-blank
    text of at most ``MAX_NAME`` characters without control characters or lone
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
            f"{shown(value)} is not a valid name (non-blank text, at most {MAX_NAME} "
            "characters, no control characters or lone surrogates)",
        )
    return value


def check_filter(value: object, field: str) -> str:
    """Return ``value`` if it is usable as a query filter: text of at most
    ``MAX_TEXT`` characters that every store can compare (no NUL, other C0
    control characters but tab, newline and carriage return, or lone
    surrogates); blank or over-long names are allowed and match nothing.
    Else raise ``ValidationError`` naming ``field``."""
    return check_free_text(value, field, max_len=MAX_TEXT, blank=True)


def optional_filter(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or a query filter value (see ``check_filter``)."""
    if value is not None:
        check_filter(value, attribute.name)


def name(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A name (see ``check_name``)."""
    check_name(value, attribute.name)


def optional_id(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or a record id (see ``check_id``)."""
    if value is not None:
        check_id(value, attribute.name)


def optional_free_text(max_len: int = MAX_LABEL) -> Any:
    """Validator: ``None`` or non-blank free text (see ``check_free_text``)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            check_free_text(value, attribute.name, max_len=max_len)

    return check


def optional_enum_of(kind: type[Enum]) -> Any:
    """Validator: ``None`` or a member of ``kind`` (see ``check_enum``)."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            check_enum(value, kind, attribute.name)

    return check


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
            f"{shown(value)} is not a valid key (a letter, then letters, digits, '_' or '-', "
            "at most 64 characters)",
        )


def aware(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """An aware datetime in range (see ``check_instant``)."""
    check_instant(value, attribute.name)


def optional_aware(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """``None`` or an aware datetime in range (see ``check_instant``)."""
    if value is not None:
        check_instant(value, attribute.name)


def to_utc(value: datetime) -> datetime:
    """Converter: aware datetimes are normalised to UTC; anything else is left for the
    validator to refuse (an offset that overflows UTC is left too)."""
    if isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None:
        try:
            return ensure_aware(value, "datetime")
        except ValidationError:
            return value
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
        raise ValidationError(field, f"expected an integer {bounds}, got {shown(value)}")
    return value


def int_between(low: int, high: int | None = None) -> Any:
    """Validator: ``check_int`` with these bounds, naming the attribute."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
        check_int(value, attribute.name, low, high)

    return check


def positive_int(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """An ``int`` (not ``bool``) of at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError(attribute.name, f"expected an integer >= 1, got {shown(value)}")


def boolean(_inst: Any, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``bool``."""
    if not isinstance(value, bool):
        raise ValidationError(attribute.name, f"expected true or false, got {shown(value)}")


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
    """Return ``by`` (who makes a change) if it is a name (see ``check_name``),
    else raise ``ValidationError`` (field ``by``)."""
    return check_name(by, "by")
