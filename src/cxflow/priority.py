"""Priority of tasks and conversations (its own module so every layer can
import it without cycles; re-exported by ``cxflow.tasks`` and ``cxflow``)."""

from __future__ import annotations

import enum
from typing import Any

__all__ = ["Priority", "to_optional_priority", "to_priority"]


class Priority(enum.Enum):
    """Task priority; boards show high first."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for high, 1 for normal, 2 for low (sort ascending for "most urgent first")."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK: dict[Priority, int] = {Priority.HIGH: 0, Priority.NORMAL: 1, Priority.LOW: 2}


def to_priority(value: Priority | str) -> Priority:
    """Converter: a ``Priority`` or its value (``"high"``) becomes the member;
    anything else is returned as is, for the field's validator to refuse by
    name (``cxflow._validate.enum_of``)."""
    if value.__class__ is Priority:
        return value
    try:
        return Priority(value)
    except (ValueError, TypeError):
        result: Any = value
        return result  # type: ignore[no-any-return]


def to_optional_priority(value: Priority | str | None) -> Priority | None:
    """Converter: like ``to_priority``, passing ``None`` through."""
    return None if value is None else to_priority(value)
