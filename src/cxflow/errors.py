"""The one error tree of cxflow.

Every error cxflow raises on purpose derives from ``CxflowError``, so a host
can catch the library's errors without catching its own.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "CxflowError",
    "MoveRefused",
    "NotFound",
    "StorageError",
    "ValidationError",
]


class CxflowError(Exception):
    """Root of every error cxflow raises on purpose."""


class ValidationError(CxflowError, ValueError):
    """Bad definitions or input: ``field`` names what was wrong, ``reason`` says why.

    Raised before anything is written, so bad input never leaves half-written state.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str, str]]:
        return (type(self), (self.field, self.reason))


class MoveRefused(ValidationError):
    """A task move that the flow does not allow (unknown, disabled or restricted
    target, or completion blocked by open required to-dos)."""


class NotFound(CxflowError, LookupError):
    """No record of ``kind`` with ``id`` exists for the tenant (or it belongs to another)."""

    def __init__(self, kind: str, id: str) -> None:
        self.kind = kind
        self.id = id
        super().__init__(f"{kind} {id!r} not found")

    def __reduce__(self) -> tuple[type[NotFound], tuple[str, str]]:
        return (type(self), (self.kind, self.id))


class ConflictError(CxflowError):
    """A write lost an optimistic-concurrency race (stale version, duplicate id)."""


class StorageError(CxflowError):
    """An adapter failed for a reason of its own; the driver error is the ``__cause__``."""


def summary(exc: BaseException) -> str:
    """``"Type: message"`` of any exception, the message cut to 200 characters
    (it may quote a caller's input); never raises. For wrapping a foreign
    error into one of cxflow's."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    text = text if len(text) <= 200 else f"{text[:200]}..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
