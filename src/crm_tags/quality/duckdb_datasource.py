"""A Great Expectations SQL datasource for DuckDB that returns metric results.

Root cause of the empty results (``MetricResolutionError: list index out of range``):
``SqlAlchemyExecutionEngine.execute_query`` runs the query inside
``with self.get_connection() as connection:`` and returns the still-unread ``CursorResult``
*after* that block has closed the connection. Closing a SQLAlchemy 2.x connection rolls back
its auto-begun transaction. For most drivers the rows already sit in a client-side cursor, but
duckdb-engine's cursor is the DuckDB connection itself (``CursorWrapper`` delegates to the one
``DuckDBPyConnection``), and DuckDB keeps one pending result per connection: the ROLLBACK
replaces it, so the caller's ``fetchall()`` sees ``[]`` and GX indexes ``res[0]``. Pool
settings do not help (``pool_reset_on_return=None`` still rolls back on close, ``NullPool``
closes the result, and DuckDB has no AUTOCOMMIT isolation level).

Fix: the same extension point GX uses for its own SQLite support (``SqliteDatasource`` +
``SqliteExecutionEngine``): a datasource type ``duckdb`` whose execution engine reads the rows
*before* the connection closes (``Result.freeze()``) and hands GX a buffered result with the
same fetch API. Every query still runs inside DuckDB; only the metric rows GX asked for
(single aggregate rows, or unexpected-value samples limited by the result format) come back.

A second incompatibility of this stack is fixed the same way: duckdb-engine 0.17 reflects
columns with PostgreSQL's catalog query, which on SQLAlchemy 2.1 joins ``pg_collation`` (absent
in DuckDB), so GX falls back to ``SELECT * FROM <table>`` without the schema and cannot find
``core.fct_orders``. The engine's inspector reads DuckDB's own ``information_schema`` instead.

Importing this module registers the type, so ``context.data_sources.add_duckdb(...)`` exists
and a GX project file naming ``type: duckdb`` loads.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource
from great_expectations.execution_engine.sqlalchemy_execution_engine import (
    SqlAlchemyExecutionEngine,
)


def _buffered(result: Any) -> Any:
    """Read every row of `result` now; statements without rows are returned as they are."""
    return result.freeze()() if result.returns_rows else result


_DUCKDB_TYPES: dict[str, type[sa.types.TypeEngine]] = {
    "VARCHAR": sa.String, "INTEGER": sa.Integer, "BIGINT": sa.BigInteger,
    "SMALLINT": sa.SmallInteger, "HUGEINT": sa.BigInteger, "DOUBLE": sa.Float, "FLOAT": sa.Float,
    "BOOLEAN": sa.Boolean, "DATE": sa.Date, "TIMESTAMP": sa.DateTime, "TIME": sa.Time,
}


def _sa_type(duckdb_type: str) -> sa.types.TypeEngine:
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", duckdb_type)
    if decimal:
        return sa.Numeric(int(decimal[1]), int(decimal[2]))
    return _DUCKDB_TYPES.get(duckdb_type, sa.types.NullType)()


class _DuckDBInspector:
    """The two reflection calls GX makes, answered from DuckDB's information_schema.

    It asks on the execution engine's own connection: the temporary tables GX materialises
    query assets into exist on that connection only.
    """

    def __init__(self, execution_engine: DuckDBExecutionEngine) -> None:
        self.execution_engine = execution_engine
        self.dialect = execution_engine.engine.dialect

    def get_pk_constraint(self, table_name: str, schema: str | None = None, **_: Any) -> dict:
        return {"constrained_columns": [], "name": None}

    def get_columns(self, table_name: str, schema: str | None = None, **_: Any) -> list[dict]:
        query = sa.text(
            "select column_name, data_type, is_nullable = 'YES' from information_schema.columns"
            " where table_name = :table and table_schema = coalesce(:schema, current_schema())"
            " order by ordinal_position"
        )
        with self.execution_engine.get_connection() as connection:
            rows = connection.execute(query, {"table": str(table_name), "schema": schema}).fetchall()
        if not rows:
            raise sa.exc.NoSuchTableError(f"{schema}.{table_name}" if schema else str(table_name))
        return [
            {"name": name, "type": _sa_type(kind), "nullable": nullable, "default": None}
            for name, kind, nullable in rows
        ]


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """SqlAlchemyExecutionEngine whose results survive the connection being returned.

    It also keeps one connection for its lifetime, as GX does for SQLite: a query asset is then
    materialised once into a DuckDB temporary table (``create_temp_table``; temporary tables
    live per connection, and work on a read-only database) instead of being re-run for every
    metric, and all metrics of a gate run read one consistent snapshot.
    """

    def get_inspector(self) -> Any:
        return _DuckDBInspector(self)

    @contextmanager
    def get_connection(self) -> Iterator[sa.engine.Connection]:
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
            # DuckDB draws a progress bar on stdout for long queries; the gate prints a report
            self._connection.exec_driver_sql("set enable_progress_bar = false")
            # The same memory cap as the dbt profile: the gate's queries over the big facts
            # spill to disk beyond it instead of growing past the machine's budget.
            limit = os.environ.get("CRM_DUCKDB_MEMORY_LIMIT", "6GB").replace("'", "")
            self._connection.exec_driver_sql(f"set memory_limit = '{limit}'")
            self._connection.exec_driver_sql("set preserve_insertion_order = false")
        try:
            yield self._connection
        except Exception:
            # A failed statement (out of memory, a file gone, ...) aborts the open DuckDB
            # transaction, and every later statement on this connection would fail with
            # "Current transaction is aborted": roll it back here, so the failure stays the
            # failing check's own. Nothing is lost: the gate only reads, and the temporary
            # tables of earlier checks were committed when they were created.
            if not self._connection.closed and self._connection.in_transaction():
                # the statement's own error is the one to report, not a failed rollback's
                with suppress(Exception):
                    self._connection.rollback()
            raise

    def get_batch_data_and_markers(self, batch_spec: Any) -> Any:
        # Only query assets are worth materialising; a table asset is read where it is.
        if not batch_spec.get("query"):
            batch_spec["create_temp_table"] = False
        return super().get_batch_data_and_markers(batch_spec)

    def close(self) -> None:
        """Close the kept connection and the pool, releasing the DuckDB file."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()

    def execute_query(self, query: Any) -> Any:
        with self.get_connection() as connection:
            return _buffered(self._execute_query_with_recovery(connection, query))

    def execute_query_in_transaction(self, query: Any) -> Any:
        with self.get_connection() as connection:
            result = _buffered(self._execute_query_with_recovery(connection, query))
            if connection.in_transaction():
                connection.commit()
        return result


class DuckDBDatasource(SQLDatasource):
    """GX SQL datasource over a DuckDB file (duckdb-engine SQLAlchemy dialect)."""

    type: Literal["duckdb"] = "duckdb"  # type: ignore[assignment]

    @property
    def execution_engine_type(self) -> type[SqlAlchemyExecutionEngine]:
        return DuckDBExecutionEngine


def duckdb_url(warehouse: Path) -> str:
    """SQLAlchemy URL of a DuckDB file (absolute path: four slashes)."""
    return f"duckdb:///{Path(warehouse).resolve()}"
