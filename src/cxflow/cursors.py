"""Consumer cursors: how far each named consumer of a tenant's log got.

A ``Cursor`` is a versioned record like a task: a consumer's batch writes it
at its next version in the same commit as what the batch's handler writes
(``cxflow.app.consumers``), so the two are durable together or not at all,
and two consumers of one name can never both commit the same events.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from cxflow import _validate as v

__all__ = ["MAX_POSITION", "Cursor"]

MAX_POSITION = 2**63 - 1
"""The largest outbox position (a signed 64-bit integer, as SQL stores keep it)."""


def _position(_inst: object, attribute: attrs.Attribute[int], value: object) -> None:
    v.check_int(value, attribute.name, 0, MAX_POSITION)


@attrs.frozen(kw_only=True)
class Cursor:
    """Consumer ``name`` of a tenant has handled every event up to and including
    ``position`` (0: none yet). ``name`` follows the id rules
    (``cxflow._validate.check_id``)."""

    schema_version: ClassVar[int] = 1
    """The version of this shape (see ``cxflow.serialization``)."""

    name: str = attrs.field(validator=v.identifier)
    position: int = attrs.field(default=0, validator=_position)
    version: int = attrs.field(default=1, validator=v.positive_int)

    @property
    def id(self) -> str:
        """The record's key in its tenant: its ``name``."""
        return self.name

    def advanced(self, position: int) -> Cursor:
        """This cursor at ``position``, one version on."""
        return Cursor(name=self.name, position=position, version=self.version + 1)
