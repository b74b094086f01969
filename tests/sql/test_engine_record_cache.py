"""The engine's cached snapshots (``cxflow.app.records``) on a shared database.

Two engines on one database are two host processes. Each starts a change
from its own cached snapshot; whatever the other wrote meanwhile, no call
decides on a stale one: a stale write loses on the version and runs again
fresh, and a refusal is checked against the store before it is raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from cxflow import (
    Agent,
    AssignmentSettings,
    AuthorKind,
    ConflictError,
    Engine,
    MoveRefused,
    Presence,
    TenantSettings,
    TestClock,
    ValidationError,
)
from cxflow.app.records import RecordCache
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.tasks.model import Task
from cxflow.testing import sample_flow

TENANT = "acme"
START = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "shared.db")
        SqlStore(engine).create_schema()
        yield engine
        engine.dispose()
    else:
        bind = request.getfixturevalue("fresh_postgres_store")().bind
        assert isinstance(bind, sa.Engine)
        yield bind


def _processes(database: sa.Engine) -> tuple[Callable[[], Any], Callable[[], Any], TestClock]:
    """Session factories of two engines (processes) on ``database``, with task
    ``t1`` (status ``new``) and conversation ``c1`` known to both."""
    clock = TestClock(START)
    one, two = Engine(clock=clock), Engine(clock=clock)

    def first() -> Any:
        return one.session(SqlStore(database))

    def second() -> Any:
        return two.session(SqlStore(database))

    flow = first().tasks.create_flow(TENANT, sample_flow(), by="admin")
    first().tasks.create_task(TENANT, flow_id=flow.id, title="Refund", by="web", task_id="t1")
    first().conversations.open_conversation(
        TENANT, customer_id="u1", channel="chat", by="web", conversation_id="c1"
    )
    for session in (first, second):  # both read (and cache) the current snapshots
        session().tasks.move_task(TENANT, "t1", "waiting", by="ana")
        session().tasks.move_task(TENANT, "t1", "new", by="ana")
        session().conversations.record_message(TENANT, "c1", AuthorKind.CUSTOMER)
    return first, second, clock


def test_a_move_from_a_stale_snapshot_is_made_on_the_stored_task(database: sa.Engine) -> None:
    first, second, _ = _processes(database)
    second().tasks.move_task(TENANT, "t1", "doing", by="bo")  # first's snapshot is stale now
    moved = first().tasks.move_task(TENANT, "t1", "waiting", by="ana")
    stored = first().tasks.get_task(TENANT, "t1")
    assert stored == moved
    assert [change.target for change in stored.history][-2:] == ["doing", "waiting"]


def test_a_refusal_on_a_stale_snapshot_is_checked_against_the_store(database: sa.Engine) -> None:
    first, second, _ = _processes(database)
    second().tasks.move_task(TENANT, "t1", "waiting", by="bo")
    with pytest.raises(MoveRefused, match="already in 'waiting'"):
        first().tasks.move_task(TENANT, "t1", "waiting", by="ana")  # stale: would move
    second().tasks.move_task(TENANT, "t1", "new", by="bo")
    second().tasks.move_task(TENANT, "t1", "waiting", by="bo")
    # first's snapshot (waiting, refused above) is current again; from "new" it moves:
    second().tasks.move_task(TENANT, "t1", "new", by="bo")
    assert first().tasks.move_task(TENANT, "t1", "waiting", by="ana").status == "waiting"


def test_an_expected_version_is_checked_against_the_store(database: sa.Engine) -> None:
    first, second, _ = _processes(database)
    current = second().tasks.move_task(TENANT, "t1", "waiting", by="bo")
    moved = first().tasks.move_task(
        TENANT, "t1", "new", by="ana", expected_version=current.version
    )
    assert moved.version == current.version + 1
    with pytest.raises(ConflictError, match="caller expected"):
        first().tasks.move_task(TENANT, "t1", "waiting", by="ana", expected_version=1)


def test_a_message_recorded_from_a_stale_snapshot_keeps_every_message(
    database: sa.Engine,
) -> None:
    first, second, clock = _processes(database)
    before = first().conversations.get_conversation(TENANT, "c1")
    clock.advance(minutes=1)
    second().conversations.record_message(TENANT, "c1", AuthorKind.CUSTOMER)
    clock.advance(minutes=1)
    first().conversations.record_message(TENANT, "c1", AuthorKind.AGENT, author_id="ana")
    after = first().conversations.get_conversation(TENANT, "c1")
    assert after.version == before.version + 2
    assert after.last_customer_message_at == START + (after.last_customer_message_at - START)
    assert after.last_agent_reply_at == clock.now()


def test_a_current_process_changes_a_task_without_reading_it(database: sa.Engine) -> None:
    first, _, _ = _processes(database)
    first().tasks.move_task(TENANT, "t1", "doing", by="ana")  # stale, then current
    selects: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            selects.append(sql)

    sa.event.listen(database, "before_cursor_execute", statement)
    try:
        first().tasks.move_task(TENANT, "t1", "waiting", by="ana")
    finally:
        sa.event.remove(database, "before_cursor_execute", statement)
    assert selects == []


def test_a_host_transaction_reads_from_the_store(database: sa.Engine) -> None:
    first, second, _ = _processes(database)
    second().tasks.move_task(TENANT, "t1", "doing", by="bo")
    engine = Engine(clock=TestClock(START))
    with database.begin() as conn:
        store = SqlStore(conn)
        assert store.record_scope() is None
        moved = engine.session(store).tasks.move_task(TENANT, "t1", "waiting", by="ana")
    assert moved.version == first().tasks.get_task(TENANT, "t1").version


# -- the cache itself ---------------------------------------------------------------


def _task(version: int, title: str = "Refund") -> Task:
    from cxflow.testing import sample_task

    task = sample_task()
    object.__setattr__(task, "version", version)
    object.__setattr__(task, "title", title)
    return task


def test_the_cache_hands_out_copies() -> None:
    cache = RecordCache()
    task = _task(3)
    cache.put("db", TENANT, task)
    found = cache.get("db", TENANT, Task, task.id)
    assert found == task
    assert found is not task
    found.title = "changed"
    assert cache.get("db", TENANT, Task, task.id) == task


def test_the_cache_keeps_the_later_version_and_forgets_on_drop() -> None:
    cache = RecordCache()
    cache.put("db", TENANT, _task(5, "five"))
    cache.put("db", TENANT, _task(4, "four"))  # a slower reader's older snapshot
    found = cache.get("db", TENANT, Task, _task(1).id)
    assert found is not None
    assert found.title == "five"
    cache.drop("db", TENANT, Task, found.id)
    assert cache.get("db", TENANT, Task, found.id) is None


def test_the_cache_keeps_databases_and_tenants_apart_and_stays_bounded() -> None:
    cache = RecordCache(max_records=2)
    task = _task(1)
    cache.put("db", TENANT, task)
    assert cache.get("other db", TENANT, Task, task.id) is None
    assert cache.get("db", "globex", Task, task.id) is None
    cache.put("db", "globex", task)
    cache.put("db", "initech", task)
    assert len(cache) == 2
    assert cache.get("db", TENANT, Task, task.id) is None  # the least recently used went


def test_a_stale_snapshot_never_costs_a_rebuild_of_the_scheduler(
    database: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = TestClock(START)
    settings = TenantSettings(assignment=AssignmentSettings())
    one, two = Engine(settings=settings, clock=clock), Engine(settings=settings, clock=clock)
    one.session(SqlStore(database)).assignment.save_agent(
        TENANT, Agent(id="ana", presence=Presence.ONLINE, capacity=1), by="admin"
    )
    for opened in ("c1", "c2"):
        one.session(SqlStore(database)).conversations.open_conversation(
            TENANT, customer_id="u1", channel="chat", by="web", conversation_id=opened
        )
    one.session(SqlStore(database)).conversations.record_message(TENANT, "c1", AuthorKind.CUSTOMER)
    # Another process changes c1 without touching assignment: one's snapshot is stale.
    two.session(SqlStore(database)).conversations.record_message(TENANT, "c1", AuthorKind.CUSTOMER)
    rebuilds: list[str] = []
    list_routings = SqlStore.list_routings

    def counted(store: SqlStore, tenant: str) -> Any:
        rebuilds.append(tenant)
        return list_routings(store, tenant)

    monkeypatch.setattr(SqlStore, "list_routings", counted)
    one.session(SqlStore(database)).conversations.close(TENANT, "c1", by="ana")
    assert rebuilds == []
    store = SqlStore(database)
    assert store.get_conversation(TENANT, "c1").state.value == "closed"
    assert store.get_conversation(TENANT, "c2").assignee == "ana"  # the slot went to c2


@pytest.mark.parametrize("bad", [{"a": 1}, ["c1"], 7, "", " c1"])
def test_a_bad_conversation_id_is_the_stores_validation_error(
    database: sa.Engine, bad: object
) -> None:
    # Found by the fuzz suite: the unit looked the id up in a dict before any
    # store checked it, so an unhashable one raised TypeError.
    first, _, _ = _processes(database)
    for call in (
        lambda: first().conversations.remove_room_tag(TENANT, bad, "vip", by="mina"),
        lambda: first().conversations.record_message(TENANT, bad, AuthorKind.CUSTOMER),
        lambda: first().tasks.move_task(TENANT, bad, "waiting", by="ana"),
    ):
        with pytest.raises(ValidationError) as refused:
            call()
        assert refused.value.field in ("conversation_id", "task_id")
