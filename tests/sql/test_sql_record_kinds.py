"""A kind of the tests' own (``note``, registered in ``conftest.py``) written
and read back on every store: by a consumer through the engine, with a task,
and refused whole on a conflict."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from cxflow import ChangeSet, ConflictError, Engine, NotFound
from cxflow.app.consumers import Batch
from cxflow.events import FlowSaved
from cxflow.storage import MemoryStore
from cxflow.storage.sql import SqlStore, schema, sqlite_engine
from cxflow.testing import TestClock, sample_task
from note_kind import NOTE_AT, note


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        store = SqlStore(sqlite_engine())
        store.create_schema()
        yield store
    else:
        yield request.getfixturevalue("fresh_postgres_store")()


def test_a_consumer_projects_the_log_into_notes(any_store: Any) -> None:
    """The host's own kind, written by a consumer with its cursor: a projection."""
    session = Engine(clock=TestClock(NOTE_AT)).session(any_store)
    for number in range(1, 4):
        any_store.commit("acme", ChangeSet(events=(
            FlowSaved(flow_id="support", version=number, by="ana", at=NOTE_AT),
        )))

    def handle(batch: Batch) -> None:
        notes = []
        for stored in batch.events:
            assert isinstance(stored.event, FlowSaved)
            notes.append(note(f"flow-v{stored.event.version}", text="saved"))
        batch.stage(ChangeSet(records={"notes": notes}))

    consumer = session.consumer("notes", handle, batch_size=2)
    assert consumer.run("acme") == 3
    listed = any_store.list_records("acme", "note")
    assert [n.id for n in listed] == ["flow-v1", "flow-v2", "flow-v3"]
    assert any_store.get_record("acme", "note", "flow-v2") == note("flow-v2", text="saved")
    assert consumer.position("acme") == 3


def test_a_stale_note_is_a_conflict_that_writes_nothing(any_store: Any) -> None:
    any_store.commit("acme", ChangeSet(records={"notes": [note()]}))
    stale = ChangeSet(
        tasks=(), records={"notes": [note("n-2"), note("n-1", version=3)]},
    )
    with pytest.raises(ConflictError) as info:
        any_store.commit("acme", stale)
    assert "note 'n-1'" in str(info.value)
    with pytest.raises(NotFound):
        any_store.get_record("acme", "note", "n-2")


def test_a_note_and_a_task_commit_together(any_store: Any) -> None:
    any_store.commit("acme", ChangeSet(tasks=(sample_task(),), records={"notes": [note()]}))
    assert any_store.get_task("acme", "task-1") == sample_task()
    assert any_store.get_record("acme", "note", "n-1").labels == ["vip"]


def test_the_note_table_is_in_the_metadata_for_alembic() -> None:
    tables = {table.name: table for table in schema.kind_tables()}
    assert tables["cxflow_kind_notes"] is schema.metadata.tables["cxflow_kind_notes"]
    store = SqlStore(sqlite_engine())
    store.create_schema()
    with store._bind.connect() as conn:  # type: ignore[union-attr]
        assert sa.inspect(conn).has_table("cxflow_kind_notes")


