"""SQL storage: ``SqlStore`` on SQLAlchemy Core 2.x, for SQLite and PostgreSQL.

Needs the ``sql`` extra (``pip install 'cxflow[sql]'``); PostgreSQL also needs
a driver: ``pip install 'cxflow[postgres]'`` adds psycopg 3.
"""

try:
    import sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "cxflow.storage.sql needs SQLAlchemy 2: pip install 'cxflow[sql]'"
    ) from exc

from cxflow.storage.sql.engines import WRITE_TRANSACTION, configure_sqlite, sqlite_engine
from cxflow.storage.sql.schema import SCHEMA_VERSION
from cxflow.storage.sql.store import SqlStore

__all__ = ["SCHEMA_VERSION", "WRITE_TRANSACTION", "SqlStore", "configure_sqlite", "sqlite_engine"]
