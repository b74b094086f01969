"""The limits of the boundary rules every value passes where it enters cxflow
(``docs/reference/boundary.md``): lengths of text, the range of instants and
the longest duration. Whatever stays within them, every shipped store keeps
and reads back equal."""

from __future__ import annotations

from cxflow._validate import (
    MAX_DURATION,
    MAX_ID,
    MAX_INSTANT,
    MAX_LABEL,
    MAX_NAME,
    MAX_TENANT,
    MAX_TEXT,
    MIN_INSTANT,
)

__all__ = [
    "MAX_DURATION",
    "MAX_ID",
    "MAX_INSTANT",
    "MAX_LABEL",
    "MAX_NAME",
    "MAX_TENANT",
    "MAX_TEXT",
    "MIN_INSTANT",
]
