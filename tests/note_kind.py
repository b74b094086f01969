"""A record kind registered by the tests, as a host registers its own: one
``register_kind`` (in ``conftest.py``, before any store or schema exists)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from cxflow import _validate as v
from cxflow.storage.kinds import RecordKind

NOTE_AT = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)


@attrs.define(kw_only=True)
class Note:
    """A note a projection keeps per subject: a mutable record with a list, so
    stores must copy it in and out."""

    id: str = attrs.field(validator=v.identifier)
    text: str = attrs.field(validator=attrs.validators.instance_of(str))
    labels: list[str] = attrs.field(factory=list)
    written_at: datetime = attrs.field(converter=v.to_utc, validator=v.aware)
    version: int = attrs.field(default=1, validator=v.positive_int)


def _copy(note: Any) -> Note:
    return attrs.evolve(note, labels=list(note.labels))


NOTE_KIND = RecordKind(
    name="note",
    part="notes",
    record=Note,
    copy=_copy,
    example=lambda record_id: Note(id=record_id, text="Called back", labels=["vip"],
                                   written_at=NOTE_AT),
)


def note(note_id: str = "n-1", version: int = 1, **fields: Any) -> Note:
    """The example note ``note_id`` at ``version``, with ``fields`` changed."""
    return attrs.evolve(NOTE_KIND.example(note_id), version=version, **fields)
