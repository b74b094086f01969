"""The record-kind registry: registering a kind and writing it through a
change set (the tests' own kind ``note`` is registered in ``conftest.py``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from cxflow import ChangeSet, ValidationError
from cxflow.storage import RecordKind, kind_named, kinds, register_kind
from cxflow.storage.kinds import RECORD_KINDS
from note_kind import NOTE_AT, NOTE_KIND, Note, note

# -- the registry ----------------------------------------------------------------------


def test_the_built_in_kinds_come_first_in_commit_order() -> None:
    names = [kind.name for kind in kinds()]
    assert names[:7] == ["task", "customer", "conversation", "timer", "agent", "routing",
                         "cursor"]
    assert kind_named("note") is NOTE_KIND


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "task"}, "name"),
        ({"name": "flow"}, "name"),
        ({"name": "note"}, "name"),
        ({"part": "notes"}, "part"),
        ({"part": "events"}, "part"),
        ({"part": "records"}, "part"),
        ({"part": "routing_version"}, "part"),
    ],
)
def test_a_taken_name_or_part_is_refused(changes: dict[str, str], field: str) -> None:
    kind = attrs.evolve(NOTE_KIND, **{"name": "memo", "part": "memos", **changes})
    before = dict(RECORD_KINDS)
    with pytest.raises(ValidationError) as info:
        register_kind(kind)
    assert info.value.field == field
    assert before == RECORD_KINDS


@pytest.mark.parametrize("name", ["", "Note", "1note", "no-te", "n" * 41, None])
def test_a_name_that_cannot_be_a_table_name_is_refused(name: Any) -> None:
    with pytest.raises(ValidationError) as info:
        RecordKind(name=name, part="memos", record=Note, example=NOTE_KIND.example)
    assert info.value.field == "name"


@pytest.mark.parametrize(("field", "value"), [("key", "nonesuch"), ("version", "revision")])
def test_key_and_version_must_be_fields_of_the_record(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        RecordKind(name="memo", part="memos", record=Note, example=NOTE_KIND.example,
                   **{field: value})
    assert info.value.field == field


def test_an_unregistered_kind_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        kind_named("memo")
    assert info.value.field == "kind"


# -- ChangeSet.records -----------------------------------------------------------------


def test_records_of_a_registered_part_make_a_change_set_non_empty() -> None:
    changes = ChangeSet(records={"notes": [note()]})
    assert changes
    assert changes.part("notes") == (note(),)
    assert changes.part("tasks") == ()
    assert not ChangeSet(records={"notes": []})


@pytest.mark.parametrize(
    "records",
    [{"tasks": []}, {"memos": [1]}, {"notes": "n-1"}, {"notes": 5}, [("notes", [])], None],
)
def test_records_other_than_registered_parts_are_refused(records: Any) -> None:
    with pytest.raises(ValidationError) as info:
        ChangeSet(records=records)
    assert info.value.field == "records"


def test_records_of_a_change_set_cannot_be_changed_in_place() -> None:
    changes = ChangeSet(records={"notes": [note()]})
    with pytest.raises(TypeError):
        changes.records["notes"] = ()  # type: ignore[index]


def test_a_note_with_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValidationError):
        note(written_at=NOTE_AT.replace(tzinfo=None))
    assert note(written_at=NOTE_AT + timedelta(hours=1)).written_at.utcoffset() == timedelta(0)
