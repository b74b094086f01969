"""The ``BatchReads`` tier (``get_records``) of ``SqlStore``, and what it
saves: opening a conversation under a host's own id reads the id it must not
reuse and the customer together. (``MemoryStore`` has no round trips to save
and leaves the tier out.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa

from cxflow import ChangeSet, ConflictError, Engine, MemoryStore, TestClock, ValidationError
from cxflow.conversations.model import Customer
from cxflow.storage.protocols import MAX_BATCH, BatchReads, provides
from cxflow.storage.sql import SqlStore, sqlite_engine
from cxflow.testing import T0, sample_conversation, sample_flow, sample_task

TENANT = "acme"


def test_the_memory_store_leaves_the_tier_out() -> None:
    assert not provides(MemoryStore(), BatchReads)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "batch.db")
        found = SqlStore(engine)
        found.create_schema()
        yield found
        engine.dispose()
    else:
        yield request.getfixturevalue("fresh_postgres_store")()


def _stored(store: Any) -> tuple[Any, Any, Customer]:
    task = sample_task()
    conversation = sample_conversation()
    customer = Customer(id=conversation.customer_id)
    store.commit(
        TENANT,
        ChangeSet(
            flows=(sample_flow(),), tasks=(task,), conversations=(conversation,),
            customers=(customer,),
        ),
    )
    return task, conversation, customer


def test_a_batch_reads_as_the_single_reads_would(store: Any) -> None:
    assert provides(store, BatchReads)
    task, conversation, customer = _stored(store)
    keys = [
        ("conversation", conversation.id),
        ("customer", customer.id),
        ("task", task.id),
        ("conversation", "nobody-opened-this"),
    ]
    found = store.get_records(TENANT, keys)
    assert found == {
        ("conversation", conversation.id): store.get_conversation(TENANT, conversation.id),
        ("customer", customer.id): store.get_customer(TENANT, customer.id),
        ("task", task.id): store.get_task(TENANT, task.id),
    }
    assert store.get_records("other-tenant", keys) == {}
    assert store.get_records(TENANT, []) == {}


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ([("flow", "f-1")], "keys"),
        ("conversation", "keys"),
        ([("conversation",)], "keys"),
        ([("customer", "x")] * (MAX_BATCH + 1), "keys"),
        ([("conversation", "")], "conversation_id"),
        ([("customer", 7)], "customer_id"),
    ],
    ids=["unknown kind", "not pairs", "short pair", "too many", "empty id", "int id"],
)
def test_a_bad_batch_is_refused_with_the_field_named(store: Any, keys: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        store.get_records(TENANT, keys)
    assert refused.value.field == field


def test_opening_under_a_host_id_reads_the_id_and_the_customer_in_one_statement(
    tmp_path: Path,
) -> None:
    engine = sqlite_engine(tmp_path / "open.db")
    SqlStore(engine).create_schema()
    statements: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    session = Engine(clock=TestClock(T0)).session(SqlStore(engine))
    session.conversations.open_conversation(
        TENANT, customer_id="kim", channel="web", by="kim", conversation_id="c-1"
    )
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1
    assert "cxflow_conversations" in reads[0]
    assert "cxflow_customers" in reads[0]
    # The id is still refused the second time, and nothing more is written.
    with pytest.raises(ConflictError, match="already exists"):
        session.conversations.open_conversation(
            TENANT, customer_id="kim", channel="web", by="kim", conversation_id="c-1"
        )
    assert len(SqlStore(engine).read_events(TENANT, limit=100)) == 1
    engine.dispose()


def test_a_decision_on_many_conversations_reads_them_in_one_statement(tmp_path: Path) -> None:
    """An agent going offline sends every conversation they held back to the
    queue; keeping those conversations' assignees in step reads them all at
    once (in a process that has not cached them: a second engine)."""
    from cxflow import Agent, AssignmentSettings, Presence, TenantSettings

    engine = sqlite_engine(tmp_path / "offline.db")
    SqlStore(engine).create_schema()
    cxflow_engine = Engine(
        settings=TenantSettings(assignment=AssignmentSettings()), clock=TestClock(T0)
    )
    session = cxflow_engine.session(SqlStore(engine))
    session.assignment.save_agent(
        TENANT, Agent(id="mina", capacity=3, presence=Presence.ONLINE), by="mina"
    )
    for n in range(3):
        session.conversations.open_conversation(
            TENANT, customer_id=f"k{n}", channel="web", by="k", conversation_id=f"c{n}"
        )
    statements: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute",
        lambda conn, cursor, statement, *rest: statements.append(statement),
    )
    other = Engine(settings=TenantSettings(assignment=AssignmentSettings()), clock=TestClock(T0))
    other.session(SqlStore(engine)).assignment.set_presence(
        TENANT, "mina", Presence.OFFLINE, by="mina"
    )
    reads = [s for s in statements if "FROM cxflow_conversations" in s]
    assert len(reads) == 1
    for n in range(3):
        assert SqlStore(engine).get_conversation(TENANT, f"c{n}").assignee is None
    engine.dispose()


def test_a_unit_prefetches_more_than_one_batch_holds(store: Any) -> None:
    """More ids than ``MAX_BATCH`` are read in batches, each of them found."""
    from cxflow.app.unit import UnitOfWork

    ids = [f"c-{n}" for n in range(MAX_BATCH + 20)]
    base = sample_conversation()
    store.commit(
        TENANT,
        ChangeSet(conversations=tuple(attrs.evolve(base, id=cid) for cid in ids)),
    )
    work = UnitOfWork(TENANT, T0, store)
    work.prefetch(conversations=[*ids, "c-missing"])
    assert all(work.stored_conversation(cid) is not None for cid in ids)
    assert work.stored_conversation("c-missing") is None
