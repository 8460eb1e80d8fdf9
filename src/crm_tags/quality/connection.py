"""Where the gate's SQL runs: the warehouse's own engine (DuckDB file, or PostgreSQL).

The suites (expectations/suites/) are written in SQL both engines accept, apart from a few
DuckDB spellings translated here in one place (`for_engine`): `printf` is PostgreSQL's
`format` (which knows only `%s`), and the 64-bit key hash of the duplicate finders is
`hashtextextended` of the key parts. Every metric is a query run by the engine where the data
is; only the aggregates and the sampled problem rows come back (docs/quality-gate.md,
"The gate on PostgreSQL").
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

ENGINES = ("duckdb", "postgres")


def for_engine(sql: str, engine: str) -> str:
    """A suite query in the dialect of `engine` (DuckDB's is the one the suites are written in)."""
    if engine == "duckdb":
        return sql
    sql = re.sub(r"\bprintf\(", "format(", sql)
    sql = re.sub(r"%(\.\d+)?[df]", "%s", sql)  # format() knows %s (and %I, %L) only
    return re.sub(
        r"\bhash\(([^()]*)\)",
        lambda m: "hashtextextended(concat_ws(chr(31), "
                  + ", ".join(f"cast({part.strip()} as text)" for part in m[1].split(","))
                  + "), 0)",
        sql)


def pg_url(settings: dict) -> str:
    """SQLAlchemy URL of the postgres target (CRM_PG_* settings, crm_tags.load.pg_connect_kwargs);
    a host starting with / is a unix socket folder."""
    user = quote(settings["user"])
    password = f":{quote(settings['password'])}" if settings.get("password") else ""
    host = settings["host"]
    if host.startswith("/"):
        return (f"postgresql+psycopg2://{user}{password}@/{settings['dbname']}"
                f"?host={quote(host)}&port={settings['port']}")
    return f"postgresql+psycopg2://{user}{password}@{host}:{settings['port']}/{settings['dbname']}"


def pg_label(settings: dict) -> str:
    """How reports name a PostgreSQL warehouse: postgresql://user@host:port/database."""
    return f"postgresql://{settings['user']}@{settings['host']}:{settings['port']}/{settings['dbname']}"


class _PgCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list:
        return self._cursor.fetchall()


class PgConnection:
    """A psycopg2 connection with DuckDB's `execute(sql, params)` shape (`?` placeholders), so
    the gate's fact queries and the distribution history run unchanged on both engines."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, sql: str, params: list | None = None) -> _PgCursor:
        cursor = self._connection.cursor()
        cursor.execute(sql.replace("?", "%s") if params is not None else sql, params)
        return _PgCursor(cursor)

    def commit(self) -> None:
        self._connection.commit()


@contextmanager
def pg_connection(settings: dict | None = None):
    """A PgConnection to the postgres target, committed on success."""
    import psycopg2

    from crm_tags.load import pg_connect_kwargs

    raw = psycopg2.connect(**(settings or pg_connect_kwargs()))
    try:
        yield PgConnection(raw)
        raw.commit()
    finally:
        raw.close()
