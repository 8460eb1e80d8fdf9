"""crm-tags load: copy the Parquet landing zone into PostgreSQL's raw tables (docs/engines.md).

On DuckDB the landing zone is read in place (macros/landing_zone.sql). A PostgreSQL server
cannot read the delivery files, so this loader mirrors the landing zone into it, with the
same contract, the same lineage and the same error messages:
  - raw_<system>.<table>: one row per delivered row, cast to the contract type, with
    _source_file (relative to $CRM_RAW_DIR), _source_row_number and _delivered_at (file mtime);
  - raw_landing.delivery_files: one row per delivery file (mtime, size, row count).
Incremental and idempotent: a file already loaded with the same mtime, size and row count is
skipped; a new file is copied; a changed or vanished file is replaced or removed, so the raw
tables always equal the zone as it is now, and the incremental base models then report such a
file as they do on DuckDB ("deliveries are append-only ... run with --full-refresh"). Each
file is copied in one transaction: a failed run leaves every file either loaded or not.

The files are read and cast by DuckDB (the engine of the default target), so what casts, what
is a delivery error and the row numbers are exactly those of the DuckDB target.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

from crm_tags import PROJECT_DIR

_PG_TYPES = {
    "varchar": "varchar",
    "integer": "integer",
    "decimal(18,2)": "numeric(18,2)",
    "timestamp": "timestamp",
    "date": "date",
    "boolean": "boolean",
}


class DeliveryError(RuntimeError):
    """A delivery file breaks the landing-zone contract (names table, file and column)."""


@dataclass(frozen=True)
class RawTable:
    landing_path: str  # e.g. 'orders/orders'
    schema: str  # e.g. 'raw_orders'
    name: str  # e.g. 'orders'
    columns: tuple[tuple[str, str], ...]  # (column, contract type), contract order

    @property
    def relation(self) -> str:
        return f'"{self.schema}"."{self.name}"'


def raw_tables() -> list[RawTable]:
    """Every landing table of the contract (the dbt source YAML), with its raw schema."""
    tables = []
    for path in sorted((PROJECT_DIR / "models" / "staging").glob("*/_*__sources.yml")):
        for source in yaml.safe_load(path.read_text())["sources"]:
            for table in source["tables"]:
                landing_path = (table.get("meta") or {}).get("landing_path")
                if not landing_path:
                    continue
                columns = tuple((c["name"].lower(), c["data_type"].lower()) for c in table["columns"])
                tables.append(RawTable(landing_path, source.get("schema", source["name"]),
                                       table.get("identifier", table["name"]), columns))
    return sorted(tables, key=lambda t: t.landing_path)


def pg_connect_kwargs() -> dict:
    """Connection settings of the postgres target (profiles.yml reads the same variables)."""
    return {
        "host": os.environ.get("CRM_PG_HOST", "localhost"),
        "port": int(os.environ.get("CRM_PG_PORT", "5432")),
        "user": os.environ.get("CRM_PG_USER", "postgres"),
        "password": os.environ.get("CRM_PG_PASSWORD", ""),
        "dbname": os.environ.get("CRM_PG_DATABASE", "crm_tags"),
    }


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _check_file(duck, table: RawTable, path: str, rel: str) -> None:
    """The contract of raw-sources.md: every required column present and castable."""
    present = {
        row[0].lower()
        for row in duck.execute(
            f"select name from parquet_schema({_sql_string(path)}) where name <> 'schema'"
        ).fetchall()
    }
    for column, kind in table.columns:
        if column not in present:
            raise DeliveryError(
                f"Delivery error in table {table.landing_path}, file {rel}: required column "
                f"'{column}' is missing (expected {kind.upper()}). Nothing was loaded from it."
            )
    for column, kind in table.columns:
        bad, example = duck.execute(
            f'select count(*), min(cast("{column}" as varchar)) from read_parquet({_sql_string(path)}) '
            f'where "{column}" is not null and try_cast("{column}" as {kind}) is null'
        ).fetchone()
        if bad:
            raise DeliveryError(
                f"Delivery error in table {table.landing_path}, file {rel}: column '{column}' "
                f"cannot be cast to {kind.upper()} ({bad} value(s), e.g. '{example}'). "
                "Nothing was loaded from it."
            )


def _file_facts(duck, path: str) -> tuple:
    """(delivered_at, file_bytes, rows_delivered) as the DuckDB landing zone registers them."""
    return duck.execute(
        f"select cast(blob.last_modified as timestamp), blob.size, meta.num_rows "
        f"from read_blob({_sql_string(path)}) as blob, "
        f"parquet_file_metadata({_sql_string(path)}) as meta"
    ).fetchone()


def _copy_file(duck, cur, table: RawTable, path: str, rel: str, delivered_at) -> None:
    # hive_partitioning off: a delivery's folder names carry no meaning (raw-sources.md)
    select = ", ".join(f'cast("{c}" as {k}) as "{c}"' for c, k in table.columns)
    csv_path = Path(tempfile.gettempdir()) / f"crm_tags_load_{os.getpid()}.csv"
    try:
        duck.execute(
            f"copy (select {select}, {_sql_string(rel)} as _source_file, "
            f"file_row_number as _source_row_number, "
            f"cast({_sql_string(str(delivered_at))} as timestamp) as _delivered_at "
            f"from read_parquet({_sql_string(path)}, file_row_number = true, hive_partitioning = false)) "
            f"to {_sql_string(str(csv_path))} (format csv, header false)"
        )
        columns = ", ".join([f'"{c}"' for c, _ in table.columns] + ["_source_file", "_source_row_number", "_delivered_at"])
        with open(csv_path, "rb") as handle:
            cur.copy_expert(f"copy {table.relation} ({columns}) from stdin with (format csv)", handle)
    finally:
        csv_path.unlink(missing_ok=True)


def _create_tables(cur, tables: list[RawTable]) -> None:
    cur.execute("create schema if not exists raw_landing")
    cur.execute(
        "create table if not exists raw_landing.delivery_files (source_table varchar, "
        "source_file varchar primary key, delivered_at timestamp, file_bytes bigint, rows_delivered bigint)"
    )
    for table in tables:
        cur.execute(f'create schema if not exists "{table.schema}"')
        columns = ", ".join(f'"{c}" {_PG_TYPES[k]}' for c, k in table.columns)
        cur.execute(
            f"create table if not exists {table.relation} ({columns}, _source_file varchar, "
            "_source_row_number bigint, _delivered_at timestamp)"
        )
        cur.execute(
            f'create index if not exists "{table.name}__source_file" on {table.relation} (_source_file)'
        )


@dataclass
class LoadReport:
    loaded: list[str]
    replaced: list[str]
    removed: list[str]
    unchanged: int


def load(raw_dir: Path, connect_kwargs: dict | None = None, out=sys.stdout) -> LoadReport:
    """Mirror the landing zone `raw_dir` into the PostgreSQL raw tables."""
    import psycopg2

    raw_dir = Path(raw_dir).resolve()
    tables = raw_tables()
    report = LoadReport([], [], [], 0)
    duck = duckdb.connect()
    conn = psycopg2.connect(**(connect_kwargs or pg_connect_kwargs()))
    try:
        with conn, conn.cursor() as cur:
            _create_tables(cur, tables)
            cur.execute("select source_file, delivered_at, file_bytes, rows_delivered from raw_landing.delivery_files")
            known = {row[0]: tuple(row[1:]) for row in cur.fetchall()}
        seen = set()
        for table in tables:
            folder = raw_dir / table.landing_path
            for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
                rel = str(path.relative_to(raw_dir))
                seen.add(rel)
                facts = _file_facts(duck, str(path))
                if known.get(rel) == facts:
                    report.unchanged += 1
                    continue
                _check_file(duck, table, str(path), rel)
                with conn, conn.cursor() as cur:
                    if rel in known:
                        cur.execute(f"delete from {table.relation} where _source_file = %s", (rel,))
                        cur.execute("delete from raw_landing.delivery_files where source_file = %s", (rel,))
                    _copy_file(duck, cur, table, str(path), rel, facts[0])
                    cur.execute(
                        "insert into raw_landing.delivery_files values (%s, %s, %s, %s, %s)",
                        (table.landing_path, rel, *facts),
                    )
                (report.replaced if rel in known else report.loaded).append(rel)
        by_table = {t.landing_path: t for t in tables}
        with conn, conn.cursor() as cur:
            cur.execute("select source_table, source_file from raw_landing.delivery_files")
            for source_table, rel in cur.fetchall():
                if rel not in seen:
                    cur.execute(f"delete from {by_table[source_table].relation} where _source_file = %s", (rel,))
                    cur.execute("delete from raw_landing.delivery_files where source_file = %s", (rel,))
                    report.removed.append(rel)
    finally:
        conn.close()
        duck.close()
    print(
        f"crm-tags load: {len(report.loaded)} file(s) loaded, {len(report.replaced)} replaced, "
        f"{len(report.removed)} removed, {report.unchanged} unchanged",
        file=out,
    )
    return report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("CRM_RAW_DIR", "data/raw")),
                        help="the landing zone (default: $CRM_RAW_DIR or data/raw)")


def run(args: argparse.Namespace) -> int:
    try:
        load(args.raw_dir)
    except DeliveryError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0
