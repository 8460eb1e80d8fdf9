"""Where the gate's SQL runs: the warehouse's own engine (DuckDB file, PostgreSQL, or Spark).

The suites (expectations/suites/) are written in SQL every engine accepts, apart from a few
DuckDB spellings translated here in one place (`for_engine`). On PostgreSQL `printf` is
`format` (which knows only `%s`), and the 64-bit key hash of the duplicate finders is
`hashtextextended` of the key parts. On Spark the hash is `xxhash64`, `varchar` is `string`,
`double precision` is `double`, and `information_schema.tables` / `.columns` (which Spark's
catalog does not have) are temporary views of the session's catalog
(crm_tags.quality.spark_gate). Every metric is a query run by the engine where the data is;
only the aggregates and the sampled problem rows come back (docs/quality-gate.md, "The gate
on PostgreSQL", "The gate on Spark").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

ENGINES = ("duckdb", "postgres", "spark")

# Spark has no information_schema: the gate's Spark session registers these temporary views
# of its catalog (crm_tags.quality.spark_gate.register_information_schema)
SPARK_INFORMATION_SCHEMA = {"information_schema.tables": "information_schema_tables",
                            "information_schema.columns": "information_schema_columns"}


@dataclass(frozen=True)
class SchemaNames:
    """Where the schemas that SQL names are: on PostgreSQL a write-audit-publish build is
    audited in candidate schemas (`marts__candidate` for `marts`, crm_tags.pg_publish), while
    the suites, the gate's facts and the distribution history name the published ones. `sql`
    rewrites `schema.relation` for the relations that exist in a candidate schema (and the few
    tables the gate itself writes, `extra`), outside string literals and comments: a table alias
    that is also a schema's name (`tags.tag_code`) and a problem sentence naming
    `marts.customer_tags` stay as they are. Empty: every name as written (DuckDB, Spark, the published schemas)."""

    schemas: Mapping[str, str] = field(default_factory=dict)  # published name -> actual name
    relations: frozenset[tuple[str, str]] = frozenset()  # (published schema, relation)

    @classmethod
    def of(cls, schemas: Mapping[str, str], relations: Iterable[tuple[str, str]],
           extra: Iterable[str] = ()) -> SchemaNames:
        found = set(relations) | {tuple(name.split(".", 1)) for name in extra}
        return cls(dict(schemas), frozenset(found))

    def schema(self, name: str) -> str:
        return self.schemas.get(name, name)

    def sql(self, sql: str) -> str:
        if not self.schemas:
            return sql
        names = "|".join(re.escape(name) for name in sorted(self.schemas, key=len, reverse=True))
        relation = re.compile(rf'(?<![\w."])("?)({names})\1\.("?)(\w+)\3(?![\w"])')
        created = re.compile(rf"\b(schema\s+if\s+not\s+exists\s+)({names})\b", re.IGNORECASE)

        def renamed(match: re.Match) -> str:
            quote, schema, quote2, name = match.groups()
            if (schema, name) not in self.relations:
                return match[0]
            return f"{quote}{self.schemas[schema]}{quote}.{quote2}{name}{quote2}"

        # string literals and comments (an apostrophe in a comment is no quote) at odd positions
        parts = re.split(r"('(?:[^']|'')*'|--[^\n]*|/\*[\s\S]*?\*/)", sql)
        for i in range(0, len(parts), 2):
            parts[i] = created.sub(lambda m: m[1] + self.schemas[m[2]], relation.sub(renamed, parts[i]))
        return "".join(parts)


def for_engine(sql: str, engine: str, names: SchemaNames | None = None) -> str:
    """A suite query in the dialect of `engine` (DuckDB's is the one the suites are written in),
    naming the schemas where `names` says they are."""
    if names is not None:
        sql = names.sql(sql)
    if engine == "duckdb":
        return sql
    if engine == "spark":
        sql = re.sub(r"\bhash\(", "xxhash64(", sql)
        sql = re.sub(r"\bvarchar\b", "string", sql)
        sql = re.sub(r"\bdouble precision\b", "double", sql)
        for relation, view in SPARK_INFORMATION_SCHEMA.items():
            sql = sql.replace(relation, view)
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

    def __init__(self, connection: Any, names: SchemaNames | None = None) -> None:
        self._connection = connection
        self.names = names or SchemaNames()

    def execute(self, sql: str, params: list | None = None) -> _PgCursor:
        cursor = self._connection.cursor()
        sql = self.names.sql(sql)
        cursor.execute(sql.replace("?", "%s") if params is not None else sql, params)
        return _PgCursor(cursor)

    def actual_schema(self, name: str) -> str:
        """Where the schema the caller names is (a candidate schema while auditing one)."""
        return self.names.schema(name)

    def commit(self) -> None:
        self._connection.commit()


class _SparkCursor:
    def __init__(self, rows: list) -> None:
        self._rows = [tuple(row) for row in rows]

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list:
        return self._rows


class SparkSqlConnection:
    """A Spark session with DuckDB's `execute(sql, params)` shape (`?` placeholders, Spark's
    positional parameters), the suite SQL translated by for_engine: the gate's fact queries and
    the distribution history run unchanged on Spark too. Each statement is run by Spark; only
    its (small) result is collected."""

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    def execute(self, sql: str, params: list | None = None) -> _SparkCursor:
        return _SparkCursor(self.spark.sql(for_engine(sql, "spark"), args=params).collect())

    def commit(self) -> None:
        """Spark commits each statement."""


@contextmanager
def pg_connection(settings: dict | None = None, names: SchemaNames | None = None):
    """A PgConnection to the postgres target (its SQL naming the schemas where `names` says),
    committed on success."""
    import psycopg2

    from crm_tags.load import pg_connect_kwargs

    raw = psycopg2.connect(**(settings or pg_connect_kwargs()))
    try:
        yield PgConnection(raw, names)
        raw.commit()
    finally:
        raw.close()
