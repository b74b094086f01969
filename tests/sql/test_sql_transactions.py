"""SqlStore inside a host's transaction, and driver errors translated."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from cxflow import ConflictError, NotFound, StorageError, TaskService, TestClock, ValidationError
from cxflow.storage.sql import SqlStore, configure_sqlite, sqlite_engine
from cxflow.testing import T0, sample_flow

TENANT = "acme"
HOST = sa.Table("host_notes", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A file SQLite engine or the PostgreSQL test server, schema created and empty."""
    if request.param == "sqlite":
        engine = sqlite_engine(tmp_path / "host.db")
        SqlStore(engine).create_schema()
    else:
        fresh: Callable[[], SqlStore] = request.getfixturevalue("fresh_postgres_store")
        bind = fresh().bind
        assert isinstance(bind, sa.Engine)
        engine = bind
    HOST.drop(engine, checkfirst=True)
    HOST.create(engine)
    yield engine
    HOST.drop(engine, checkfirst=True)
    if request.param == "sqlite":
        engine.dispose()


def _service(bind: sa.Engine | sa.Connection) -> TaskService:
    return TaskService(SqlStore(bind), TestClock(T0))


def test_writes_through_a_host_transaction_vanish_when_the_host_rolls_back(
    engine: sa.Engine,
) -> None:
    with engine.connect() as conn:
        conn.begin()
        _service(conn).create_flow(TENANT, sample_flow(), by="admin")
        conn.rollback()
    with pytest.raises(NotFound):
        SqlStore(engine).get_flow(TENANT, sample_flow().id)


def test_writes_through_a_host_transaction_land_when_the_host_commits(
    engine: sa.Engine,
) -> None:
    with engine.connect() as conn:
        conn.begin()
        conn.execute(sa.insert(HOST).values(id=1))
        _service(conn).create_flow(TENANT, sample_flow(), by="admin")
        conn.commit()
    assert SqlStore(engine).get_flow(TENANT, sample_flow().id).version == 1
    assert len(SqlStore(engine).read_events(TENANT)) == 1


def test_a_refused_commit_rolls_back_only_cxflows_part_of_the_host_transaction(
    engine: sa.Engine,
) -> None:
    with engine.connect() as conn:
        conn.begin()
        service = _service(conn)
        service.create_flow(TENANT, sample_flow(), by="admin")
        conn.execute(sa.insert(HOST).values(id=7))
        with pytest.raises(ConflictError):
            service.create_flow(TENANT, sample_flow(), by="admin")  # v1 again
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.select(HOST.c.id)).scalars().all() == [7]
    store = SqlStore(engine)
    assert [f.version for f in store.list_flow_versions(TENANT, sample_flow().id)] == [1]
    assert [e.position for e in store.read_events(TENANT)] == [1]


def test_a_host_connection_outside_a_transaction_gets_its_own_committed_one(
    engine: sa.Engine,
) -> None:
    with engine.connect() as conn:
        _service(conn).create_flow(TENANT, sample_flow(), by="admin")
        assert not conn.in_transaction()
    assert SqlStore(engine).get_flow(TENANT, sample_flow().id).version == 1


def test_missing_tables_are_a_storage_error_with_the_driver_error_as_cause() -> None:
    store = SqlStore(sqlite_engine())
    with pytest.raises(StorageError) as info:
        store.get_flow(TENANT, "anything")
    assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)


def test_a_write_to_missing_tables_is_a_storage_error() -> None:
    service = _service(sqlite_engine())
    with pytest.raises(StorageError) as info:
        service.create_flow(TENANT, sample_flow(), by="admin")
    assert isinstance(info.value.__cause__, sa.exc.SQLAlchemyError)


def test_an_unreachable_server_is_a_storage_error() -> None:
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(StorageError):
        SqlStore(engine).get_task(TENANT, "t1")


def test_sqlstore_refuses_what_is_not_an_engine_or_connection() -> None:
    with pytest.raises(ValueError, match="bind"):
        SqlStore("sqlite://")  # type: ignore[arg-type]


def test_configure_sqlite_refuses_other_databases() -> None:
    engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(ValueError, match="SQLite"):
        configure_sqlite(engine)


def test_sqlite_engine_syncs_at_checkpoints_by_default_and_on_every_commit_when_asked(
    tmp_path: Path,
) -> None:
    levels = {}
    for name, options in (("default", {}), ("full", {"synchronous": "FULL"})):
        engine = sqlite_engine(tmp_path / f"{name}.db", **options)
        with engine.connect() as conn:
            levels[name] = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        engine.dispose()
    assert levels == {"default": 1, "full": 2}  # NORMAL, FULL


def test_sqlite_engine_refuses_an_unknown_synchronous_level(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="synchronous"):
        sqlite_engine(tmp_path / "x.db", synchronous="SOMETIMES")
