"""Engines configured for cxflow: SQLite locking, PostgreSQL URLs."""

from __future__ import annotations

import os
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

__all__ = ["configure_sqlite", "sqlite_engine"]


def configure_sqlite(engine: sa.Engine, *, busy_timeout: float = 30.0) -> sa.Engine:
    """Make a SQLite engine safe for cxflow's writes from several processes.

    - The driver's own implicit transactions are switched off; SQLAlchemy's
      ``begin`` emits ``BEGIN IMMEDIATE`` for cxflow's writes (the write lock is
      taken up front, so two writers queue instead of deadlocking on lock
      upgrade) and a deferred ``BEGIN`` for reads;
    - ``busy_timeout`` (seconds): how long a writer waits for the lock before
      the call fails with ``StorageError``;
    - WAL journal for file databases, so reads do not block on writers.

    Returns ``engine``. Call it once, before the engine's first connection.
    """
    if engine.dialect.name != "sqlite":
        raise ValueError(f"configure_sqlite() needs a SQLite engine, got {engine.dialect.name}")
    timeout_ms = int(busy_timeout * 1000)

    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("cxflow_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def sqlite_engine(
    path: str | os.PathLike[str] | None = None, *, busy_timeout: float = 30.0, **kwargs: Any
) -> sa.Engine:
    """A SQLite engine configured by ``configure_sqlite``.

    ``path`` is the database file; ``None`` gives a private in-memory database
    shared by every use of this engine (one connection, so it lives as long as
    the engine). Extra keyword arguments go to ``sqlalchemy.create_engine``.
    """
    if path is None:
        engine = sa.create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            **kwargs,
        )
    else:
        engine = sa.create_engine(
            f"sqlite:///{os.fspath(path)}", connect_args={"timeout": busy_timeout}, **kwargs
        )
    return configure_sqlite(engine, busy_timeout=busy_timeout)
