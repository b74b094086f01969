"""Stored shapes evolve: old outboxes read back, upcasters lift old data,
newer data is refused.

``tests/data/outbox_before_envelopes.json`` was written by cxflow at e4bef15,
the last commit before event envelopes: the outbox of the demo day and one
event of every type, as that release's ``event_to_dict`` made them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cxflow import ChangeSet, Consumer, Customer, MemoryStore, TestClock, ValidationError
from cxflow.events import EVENT_TYPES, TaskMoved
from cxflow.serialization import (
    SCHEMA_KEY,
    UPCASTERS,
    event_from_dict,
    event_to_dict,
    from_dict,
    register_upcaster,
    to_dict,
)
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.storage.sql.schema import events as events_table
from cxflow.testing import T0

OLD = json.loads(
    (Path(__file__).parent / "data" / "outbox_before_envelopes.json").read_text("utf-8")
)
OLD_EVENTS: list[dict[str, Any]] = OLD["demo_events"] + OLD["one_of_each_type"]


def test_the_old_outbox_holds_every_event_type() -> None:
    assert {data["type"] for data in OLD_EVENTS} == set(EVENT_TYPES)
    assert all("envelope" not in data for data in OLD_EVENTS)


def test_every_event_of_the_previous_release_reads_back() -> None:
    for data in OLD_EVENTS:
        event = event_from_dict(data)
        assert type(event) is EVENT_TYPES[data["type"]]
        assert event.envelope is None
        assert event_to_dict(event) == {**data, "envelope": None}


def test_an_old_outbox_in_a_sql_store_reads_back_and_is_consumed(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "old.db")
    store = SqlStore(engine)
    store.create_schema()
    with engine.begin() as conn:  # the rows as the previous release wrote them
        conn.execute(sa.insert(events_table), [
            {"tenant": "acme", "position": n, "type": data["type"], "data": json.dumps(data)}
            for n, data in enumerate(OLD_EVENTS, start=1)
        ])
        conn.exec_driver_sql(
            "INSERT INTO cxflow_outbox_heads (tenant, last_position) VALUES ('acme', ?)",
            (len(OLD_EVENTS),),
        )
    stored = store.read_events("acme", limit=10_000)
    assert [e.event.type for e in stored] == [data["type"] for data in OLD_EVENTS]
    seen: list[str] = []
    consumer = Consumer(store, "stats", lambda batch: seen.extend(
        e.event.type for e in batch.events), clock=TestClock(T0))
    assert consumer.run("acme") == len(OLD_EVENTS)
    # New events follow the old ones, with envelopes.
    store.commit("acme", ChangeSet(events=(event_from_dict(OLD_EVENTS[0]),)))
    assert store.read_events("acme", after=len(OLD_EVENTS))[0].position == len(OLD_EVENTS) + 1
    engine.dispose()


@pytest.fixture
def task_moved_v2(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``TaskMoved`` as if its v1 shape called ``reason`` ``comment``."""
    monkeypatch.setattr(TaskMoved, "schema_version", 2)

    @register_upcaster("task.moved", 1)
    def comment_is_reason(data: dict[str, Any]) -> dict[str, Any]:
        data["reason"] = data.pop("comment", None)
        return data

    yield
    del UPCASTERS[("task.moved", 1)]


def _moved(**fields: Any) -> TaskMoved:
    return TaskMoved(at=T0, by="ana", task_id="t1", flow_id="f", flow_version=1,
                     source="new", target="done", source_kind="not_started",
                     target_kind="success", **fields)


@pytest.mark.usefixtures("task_moved_v2")
def test_an_event_of_an_old_shape_is_upcast_when_read() -> None:
    old = event_to_dict(_moved())
    del old[SCHEMA_KEY]
    del old["reason"]
    old["comment"] = "customer confirmed"
    assert event_from_dict(old) == _moved(reason="customer confirmed")


@pytest.mark.usefixtures("task_moved_v2")
def test_an_event_of_a_later_shape_carries_its_version_and_reads_back() -> None:
    data = event_to_dict(_moved(reason="ok"))
    assert data[SCHEMA_KEY] == 2
    assert event_from_dict(json.loads(json.dumps(data))) == _moved(reason="ok")


def test_a_record_of_an_old_shape_is_upcast_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Customer, "schema_version", 2)
    monkeypatch.setitem(UPCASTERS, ("Customer", 1), lambda data: {**data, "plan": "gold"})
    old = to_dict(Customer(id="u1"))
    assert old.pop(SCHEMA_KEY) == 2
    assert from_dict(Customer, old).plan == "gold"
    assert from_dict(Customer, to_dict(Customer(id="u1", plan="free"))).plan == "free"


def test_data_written_by_a_newer_cxflow_is_refused() -> None:
    with pytest.raises(ValidationError) as refused:
        event_from_dict({**event_to_dict(_moved()), SCHEMA_KEY: 2})
    assert refused.value.field == "$.schema_version"
    assert "newer cxflow" in refused.value.reason
    with pytest.raises(ValidationError) as refused:
        from_dict(Customer, {**to_dict(Customer(id="u1")), SCHEMA_KEY: 5})
    assert refused.value.field == "$.schema_version"


def test_a_missing_step_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TaskMoved, "schema_version", 3)
    monkeypatch.setitem(UPCASTERS, ("task.moved", 1), lambda data: data)
    with pytest.raises(ValidationError, match=r"no upcaster for task\.moved v2"):
        event_from_dict(event_to_dict(_moved()) | {SCHEMA_KEY: 1})


@pytest.mark.parametrize("bad", [0, -1, "1", True, None, 1.0])
def test_a_schema_version_that_is_not_a_positive_int_is_refused(bad: object) -> None:
    with pytest.raises(ValidationError) as refused:
        event_from_dict({**event_to_dict(_moved()), SCHEMA_KEY: bad})
    assert refused.value.field == "$.schema_version"


def test_a_failing_upcaster_is_a_validation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("gone")

    monkeypatch.setattr(Customer, "schema_version", 2)
    monkeypatch.setitem(UPCASTERS, ("Customer", 1), broken)
    with pytest.raises(ValidationError):
        from_dict(Customer, {"id": "u1"})


def test_an_upcaster_is_registered_once_per_step() -> None:
    with pytest.raises(ValidationError):
        register_upcaster("task.moved", 0)
    register_upcaster("test.shape", 1)(lambda data: data)
    try:
        with pytest.raises(ValidationError):
            register_upcaster("test.shape", 1)(lambda data: data)
    finally:
        del UPCASTERS[("test.shape", 1)]


def test_the_memory_store_keeps_events_of_every_old_shape() -> None:
    store = MemoryStore()
    store.commit("acme", ChangeSet(events=tuple(event_from_dict(d) for d in OLD_EVENTS)))
    assert len(store.read_events("acme", limit=10_000)) == len(OLD_EVENTS)
