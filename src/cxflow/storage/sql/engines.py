"""Engines configured for cxflow: SQLite locking, PostgreSQL URLs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

__all__ = ["WRITE_TRANSACTION", "configure_sqlite", "sqlite_engine"]

_WRITE_OPTION = "cxflow_write"

WRITE_TRANSACTION: Mapping[str, Any] = MappingProxyType({_WRITE_OPTION: True})
"""SQLAlchemy execution options for a transaction that will write.

On an engine set up by ``configure_sqlite``, a transaction begun on a
connection carrying them starts with ``BEGIN IMMEDIATE``: it takes the
database's write lock up front, so concurrent writers queue (up to the busy
timeout) instead of failing with "database is locked" when a transaction that
has read tries to write. A host that hands cxflow its own SQLite transaction
opens it this way::

    writer = engine.execution_options(**WRITE_TRANSACTION)
    with writer.begin() as conn:
        store = SqlStore(conn)

Writers then run one at a time, from ``BEGIN`` to commit. On other engines
(PostgreSQL) the options change nothing. cxflow's own write transactions
always carry them."""


def configure_sqlite(engine: sa.Engine, *, busy_timeout: float = 30.0) -> sa.Engine:
    """Make a SQLite engine safe for cxflow's writes from several processes.

    - The driver's own implicit transactions are switched off; SQLAlchemy's
      ``begin`` emits ``BEGIN IMMEDIATE`` on connections carrying
      ``WRITE_TRANSACTION`` (cxflow's writes, and host transactions opened
      with it: the write lock is taken up front, so two writers queue instead
      of deadlocking on lock upgrade), none on connections in ``AUTOCOMMIT``
      (cxflow's reads: each is one statement), and a deferred ``BEGIN``
      otherwise;
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
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return  # each statement commits on its own (cxflow's one-statement reads)
        immediate = options.get(_WRITE_OPTION, False)
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
