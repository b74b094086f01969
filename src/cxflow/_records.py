"""Copying validated records without validating them again (hot paths only)."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
from attrs import AttrsInstance

_R = TypeVar("_R", bound=AttrsInstance)

_FIELDS: dict[type, tuple[str, ...]] = {}
_T = TypeVar("_T")


def open_copy(record: _T, **changes: Any) -> _T:
    """A copy of a ``Task`` or ``Conversation`` (attrs classes that keep a
    ``__dict__``, every field an immutable value, so a shallow copy shares
    nothing that can change), with ``changes`` set without validation (only
    values taken from validated records)."""
    clone: _T = object.__new__(type(record))
    state = clone.__dict__
    state.update(record.__dict__)
    if changes:
        state.update(changes)
    return clone


def replace_trusted(record: _R, **changes: Any) -> _R:
    """``attrs.evolve`` of a frozen attrs ``record`` without running its
    converters, validators or ``__attrs_post_init__``. Only for ``changes``
    the caller took from validated records and keeps consistent; anything a
    host passes goes through the constructor."""
    kind = type(record)
    names = _FIELDS.get(kind)
    if names is None:
        names = _FIELDS[kind] = tuple(field.name for field in attrs.fields(kind))
    new = object.__new__(kind)
    for name in names:
        object.__setattr__(new, name, changes[name] if name in changes else getattr(record, name))
    return new
