"""Fixtures for the SQL adapter tests: SQLite engines and the PostgreSQL server.

PostgreSQL tests read the server URL from ``CXFLOW_TEST_POSTGRES_URL``
(``scripts/pg-test-server.sh start`` prints it; CI always sets it). Without
it they skip, saying so.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

sa = pytest.importorskip("sqlalchemy", reason="the SQL adapter tests need the 'sql' extra")

from cxflow.storage.sql import SqlStore  # noqa: E402
from cxflow.storage.sql.schema import metadata  # noqa: E402

POSTGRES_URL = os.environ.get("CXFLOW_TEST_POSTGRES_URL")
NO_POSTGRES = (
    "no PostgreSQL server configured: run `eval \"$(scripts/pg-test-server.sh start)\"` "
    "to start a throwaway one (CI always does)"
)


def reset_postgres(engine: sa.Engine) -> SqlStore:
    """Empty every cxflow table (creating them on first use) and return a store."""
    store = SqlStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        names = ", ".join(table.name for table in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names}")
    store.create_schema()  # TRUNCATE emptied the schema-version row too
    return store


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[sa.Engine]:
    """One engine on the test server for the whole session."""
    if not POSTGRES_URL:
        pytest.skip(NO_POSTGRES)
    engine = sa.create_engine(POSTGRES_URL, pool_size=2, max_overflow=2)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def fresh_postgres_store(postgres_engine: sa.Engine) -> Callable[[], SqlStore]:
    """A factory of stores on the test server, emptying every cxflow table per call."""
    return lambda: reset_postgres(postgres_engine)


@pytest.fixture
def postgres_store(fresh_postgres_store: Callable[[], SqlStore]) -> SqlStore:
    """A store on the test server with every cxflow table empty."""
    return fresh_postgres_store()
