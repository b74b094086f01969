"""Priority of tasks and conversations (its own module so every layer can
import it without cycles; re-exported by ``cxflow.tasks`` and ``cxflow``)."""

from __future__ import annotations

import enum

__all__ = ["Priority"]


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
