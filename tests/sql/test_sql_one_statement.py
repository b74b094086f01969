"""PostgreSQL's one-statement commit (``cxflow.storage.sql.one_statement``).

The contract suite runs every commit rule through it on PostgreSQL; these
tests pin what is particular to it: which change sets take the general
path, that a refused statement leaves every table as it was, and what its
conflicts say.
"""

from __future__ import annotations

import attrs
import pytest
import sqlalchemy as sa

from cxflow import ChangeSet, ConflictError, Engine, TestClock
from cxflow.assignment.model import Routing
from cxflow.conversations.query import ConversationQuery
from cxflow.storage.sql import SqlStore
from cxflow.storage.sql import schema as sql_schema
from cxflow.storage.sql.one_statement import TAGS, statement
from cxflow.testing import T0, sample_conversation, sample_flow, sample_task

TENANT = "acme"


def _row(record_id: str, version: int) -> dict[str, object]:
    return {"tenant": TENANT, "task_id": record_id, "version": version, "data": "{}"}


def test_a_record_written_twice_takes_the_general_path() -> None:
    rows = [_row("t1", 1), _row("t1", 2)]
    assert statement(TENANT, [(sql_schema.tasks, "task", rows)], (), None, ()) is None


def test_a_routing_written_and_finished_takes_the_general_path() -> None:
    row = {"tenant": TENANT, "conversation_id": "c1", "version": 2, "data": "{}"}
    found = statement(TENANT, [(sql_schema.routings, "routing", [row])], ["c1"], 3, ())
    assert found is None


def test_a_routing_finished_twice_takes_the_general_path() -> None:
    assert statement(TENANT, [], ["c1", "c1"], 3, ()) is None


def test_one_shape_gives_one_statement_text() -> None:
    tasks = sql_schema.tasks
    first = statement(TENANT, [(tasks, "task", [_row("t1", 2)])], (), None, [("a", "{}")])
    second = statement(TENANT, [(tasks, "task", [_row("t9", 7)])], (), None, [("b", "{}")])
    assert first is not None
    assert second is not None
    assert first[0] == second[0]
    assert first[1] != second[1]


def _snapshot(store: SqlStore) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every cxflow table."""
    engine = store.bind
    assert isinstance(engine, sa.Engine)
    with engine.connect() as conn:
        return {
            table.name: sorted(tuple(row) for row in conn.execute(sa.select(table)))
            for table in sql_schema.metadata.sorted_tables
        }


def test_a_refused_statement_leaves_every_table_as_it_was(postgres_store: SqlStore) -> None:
    store = postgres_store
    conversation = sample_conversation(room_tags=("vip", "gold"))
    store.commit(TENANT, ChangeSet(
        tasks=(sample_task(),),
        conversations=(conversation,),
        routings=(Routing(conversation_id="c9", channel="web", arrived_at=T0),),
        routing_version=1,
    ))
    before = _snapshot(store)
    retagged = attrs.evolve(conversation, room_tags=("new",), version=2)
    stale_task = attrs.evolve(sample_task(), version=3)  # stored: v1
    with pytest.raises(ConflictError, match="cannot write v3 over stored v1"):
        store.commit(TENANT, ChangeSet(
            conversations=(retagged,),
            tasks=(stale_task,),
            finished_routings=("c9",),
            routing_version=2,
        ))
    assert _snapshot(store) == before


def test_every_failed_check_is_named(postgres_store: SqlStore) -> None:
    store = postgres_store
    store.commit(TENANT, ChangeSet(tasks=(sample_task(),), routing_version=1))
    with pytest.raises(ConflictError) as raised:
        store.commit(TENANT, ChangeSet(
            tasks=(attrs.evolve(sample_task(), version=5),),
            finished_routings=("nowhere",),
            routing_version=7,
        ))
    message = str(raised.value)
    assert "routing version: cannot write v7 over stored v1" in message
    assert "cannot write v5 over stored v1" in message
    assert "routing 'nowhere': cannot finish, none is stored" in message


def test_tags_kept_added_and_dropped_in_one_statement(postgres_store: SqlStore) -> None:
    store = postgres_store
    conversation = sample_conversation(room_tags=("a", "b"))
    store.commit(TENANT, ChangeSet(conversations=(conversation,)))
    store.commit(TENANT, ChangeSet(
        conversations=(attrs.evolve(conversation, room_tags=("b", "c"), version=2),)
    ))

    def tagged(tag: str) -> list[str]:
        return [c.id for c in store.query_conversations(TENANT, ConversationQuery(room_tag=tag))]

    assert (tagged("a"), tagged("b"), tagged("c")) == ([], [conversation.id], [conversation.id])


def test_tags_ride_under_their_key() -> None:
    row = {"tenant": TENANT, "conversation_id": "c1", "version": 1, "data": "{}", TAGS: ["x"]}
    found = statement(TENANT, [(sql_schema.conversations, "conversation", [row])], (), None, ())
    assert found is not None
    sql, params = found
    assert "cxflow_conversation_tags" in sql
    assert "x" in params.values()
    assert TAGS not in sql


def test_a_unit_of_work_reads_and_commits_on_one_pooled_connection(
    postgres_store: SqlStore,
) -> None:
    engine = postgres_store.bind
    assert isinstance(engine, sa.Engine)
    session = Engine(clock=TestClock(T0)).session(SqlStore(engine))
    flow = session.tasks.create_flow(TENANT, sample_flow(), by="admin")
    session.tasks.create_task(TENANT, flow_id=flow.id, title="Refund", by="web", task_id="t1")
    checkouts: list[object] = []

    def checkout(*_: object) -> None:
        checkouts.append(None)

    sa.event.listen(engine.pool, "checkout", checkout)
    try:
        session.tasks.move_task(TENANT, "t1", "waiting", by="ana")
    finally:
        sa.event.remove(engine.pool, "checkout", checkout)
    assert len(checkouts) == 1
    assert session.tasks.get_task(TENANT, "t1").status == "waiting"


def test_the_unit_scope_gives_its_connection_back_when_the_unit_fails(
    postgres_store: SqlStore,
) -> None:
    engine = postgres_store.bind
    assert isinstance(engine, sa.Engine)
    store = SqlStore(engine)
    before = engine.pool.checkedout()  # type: ignore[attr-defined]
    with pytest.raises(ConflictError), store.unit_scope():
        store.commit(TENANT, ChangeSet(tasks=(attrs.evolve(sample_task(), version=4),)))
    assert engine.pool.checkedout() == before  # type: ignore[attr-defined]
    store.commit(TENANT, ChangeSet(tasks=(sample_task(),)))  # the store works on
    assert store.get_task(TENANT, sample_task().id).version == 1
