"""``SqlStore`` orders strings by code point whatever the database collation.

The test server's database uses the ``C.UTF-8`` collation, which already sorts
by code point, so the contract run there cannot tell whether the adapter
orders ids and titles itself. This runs the full contract again on a second
database whose default collation is ICU English, where ``"t-a"`` sorts before
``"T-z"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from cxflow.storage.sql import SqlStore
from cxflow.storage.sql.schema import metadata
from cxflow.testing import EveryTierContract

POSTGRES_URL = os.environ.get("CXFLOW_TEST_POSTGRES_URL")


def _empty_store(engine: sa.Engine) -> SqlStore:
    """A store on ``engine`` with every cxflow table created and empty."""
    store = SqlStore(engine)
    store.create_schema()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)}")
    store.create_schema()  # TRUNCATE emptied the schema-version row too
    return store


@pytest.fixture(scope="module")
def icu_engine() -> Iterator[sa.Engine]:
    """An engine on a database of the test server with an ICU ``en`` collation."""
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server configured (CXFLOW_TEST_POSTGRES_URL)")
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"{admin.url.database}_icu"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            try:
                conn.exec_driver_sql(
                    f"CREATE DATABASE \"{name}\" TEMPLATE template0 "
                    "LOCALE_PROVIDER icu ICU_LOCALE 'en'"
                )
            except sa.exc.DBAPIError as exc:  # PostgreSQL < 15 or built without ICU
                pytest.skip(f"cannot create an ICU-collated database: {exc.orig}")
        engine = sa.create_engine(admin.url.set(database=name), pool_size=2, max_overflow=2)
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        admin.dispose()


def test_icu_database_does_not_sort_by_code_point(icu_engine: sa.Engine) -> None:
    with icu_engine.connect() as conn:
        got = conn.exec_driver_sql(
            "SELECT v FROM (VALUES ('t-a'), ('T-z')) AS t(v) ORDER BY v"
        ).scalars().all()
    assert got == ["t-a", "T-z"]  # code-point order would put "T-z" first


class TestPostgresIcuCollationStore(EveryTierContract):
    @pytest.fixture(autouse=True)
    def _icu(self, icu_engine: sa.Engine) -> None:
        self.engine = icu_engine

    def make_store(self) -> SqlStore:
        return _empty_store(self.engine)
