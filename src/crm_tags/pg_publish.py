"""`crm-tags build` on PostgreSQL: build, gate, publish what BI reads (docs/engines.md,
docs/privacy.md).

1. build   - `crm-tags load` and dbt in waves, in place in the dbt schemas (crm_tags.build);
2. audit   - the quality gate runs every check in PostgreSQL (crm_tags.quality.gate,
             engine="postgres");
3. publish - only when the gate passes: the run's tag distribution is recorded
             (audit.tag_distribution_history, the swing check's memory) and the customers of
             the erasure log are deleted from every table whose model declares an erasure key
             (crm_tags.privacy); when that deleted segment members, the segments' counting
             models are rebuilt (crm_tags.quality.publish.RECOUNTED); then, in one
             transaction, the schema `bi_candidate` is written from `marts` (every
             table and view as a table, personal columns pseudonymised with the same keyed
             HMAC as DuckDB's BI file, computed on this host: the key never reaches the
             server), then swapped in for `bi` and granted to the BI role ($CRM_PG_BI_ROLE,
             default crm_bi). The BI role reads `bi` and nothing else.

BI never sees an ungated run: `bi` changes only in the publish transaction. The dbt schemas are
built in place (engineers and stewards read them); a failed gate leaves `bi` as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from crm_tags.build import DbtError, build
from crm_tags.privacy import (
    BI_SCHEMAS,
    FORGOTTEN_CONTACTS_SQL,
    BiSummary,
    Column,
    PrivacyError,
    _refuse_unclassified,
    clear_columns,
    erasure_log_path,
    forgotten_customers,
    load_key,
    pseudonym,
)
from crm_tags.quality.connection import PgConnection, pg_connection, pg_label
from crm_tags.quality.distribution import forget_published_run, record_run
from crm_tags.quality.publish import RECOUNTED, RECOUNTED_FROM, PublishResult

BI_SCHEMA = "bi"
BI_ROLE_ENV = "CRM_PG_BI_ROLE"


def bi_role() -> str:
    role = os.environ.get(BI_ROLE_ENV, "").strip() or "crm_bi"
    if not role.replace("_", "").isalnum():
        raise PrivacyError(f"${BI_ROLE_ENV}={role!r} is not a plain role name")
    return role


def build_and_publish_postgres(
    raw_dir: Path,
    warehouse: Path,
    as_of: dt.date | str | None = None,
    *,
    target_path: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    quiet: bool = True,
    full_refresh: bool = False,
    select: str | None = None,
) -> PublishResult:
    """Build on the postgres target, gate it there, publish the `bi` schema if it passes.
    `warehouse` only places the erasure log (erasure_requests.jsonl beside it, or
    $CRM_ERASURE_LOG). Raises crm_tags.build.DbtError when dbt fails (`bi` untouched)."""
    import psycopg2

    from crm_tags.load import pg_connect_kwargs
    from crm_tags.quality.gate import run_gate

    settings = pg_connect_kwargs()
    label = pg_label(settings)
    started = time.monotonic()
    try:
        key = load_key()  # no key, no publish: say so before building
    except PrivacyError as error:
        return PublishResult(False, label, None, None, error=str(error))
    target_path = Path(target_path or Path(warehouse).resolve().with_name(".postgres.dbt_target"))
    build(raw_dir, warehouse, as_of, select=select, target_path=target_path, quiet=quiet,
          full_refresh=full_refresh, unit_tests=False)
    with pg_connection(settings) as con:  # built in place: not published yet
        forget_published_run(con)
    gate_started = time.monotonic()
    gate = run_gate(warehouse, manifest=target_path / "manifest.json", runtime_dir=runtime_dir,
                    policy=policy, engine="postgres")
    gate_seconds = time.monotonic() - gate_started
    build_seconds = gate_started - started
    if not gate.passed:
        return PublishResult(False, label, None, gate, build_seconds=build_seconds,
                             gate_seconds=gate_seconds)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = f"{gate.run_date}_{now:%Y%m%dT%H%M%S%f}"
    customers = forgotten_customers(erasure_log_path(warehouse))
    connection = psycopg2.connect(**settings)
    try:
        with connection:
            record_run(PgConnection(connection), run_id, now)
            with connection.cursor() as cur:
                erased = erase_forgotten_pg(cur, customers)
        if any(n for table, n in erased.items() if table in RECOUNTED_FROM):
            # counts dbt made before the erasure: their own models count the members again
            build(raw_dir, warehouse, gate.run_date or as_of, select=" ".join(RECOUNTED),
                  target_path=target_path, quiet=True, unit_tests=False)
        # one transaction: BI sees the old `bi` or the new one
        with connection, connection.cursor() as cur:
            summary = write_bi_schema(cur, key, customers)
    except DbtError as error:
        return PublishResult(False, label, None, gate, error=f"Publishing failed: {error}",
                             build_seconds=build_seconds, gate_seconds=gate_seconds)
    except (PrivacyError, psycopg2.Error) as error:
        message = str(error) if isinstance(error, PrivacyError) else f"Publishing failed: {error}"
        return PublishResult(False, label, None, gate, error=message, build_seconds=build_seconds,
                             gate_seconds=gate_seconds)
    finally:
        connection.close()
    rows = sum(erased.values())
    forgotten = (f"Erasure log: {len(customers)} customer(s) forgotten; {rows} row(s) deleted "
                 f"this run ({', '.join(f'{t} {n}' for t, n in erased.items() if n) or 'none left'})."
                 if customers else "Erasure log: no customer to forget.")
    return PublishResult(True, label, None, gate, build_seconds=build_seconds,
                         gate_seconds=gate_seconds, run_id=run_id,
                         privacy=f"{summary.report()}\n{forgotten}")


def read_classification_pg(cur) -> list[Column]:
    cur.execute("select count(*) from information_schema.tables where table_schema = 'audit' "
                "and table_name = 'privacy_columns'")
    if not cur.fetchone()[0]:
        return []
    cur.execute("select schema_name, table_name, column_name, personal_kind, erasure_kind "
                "from audit.privacy_columns")
    return [Column(s, t, c, p if p and p != "none" else None, e) for s, t, c, p, e in cur.fetchall()]


def _base_tables(cur) -> set[tuple[str, str]]:
    cur.execute("select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE'")
    return set(cur.fetchall())


def erase_forgotten_pg(cur, customers: set[str]) -> dict[str, int]:
    """crm_tags.privacy.erase_forgotten on PostgreSQL: delete the forgotten customers, their
    contacts and their contacts' emails (every delivered version) from every table whose model
    declares an erasure key; rows deleted per table."""
    if not customers:
        return {}
    cur.execute("drop table if exists pg_temp.forgotten")
    cur.execute("create temporary table forgotten (kind text, value text) on commit drop")
    for customer in sorted(customers):
        cur.execute("insert into forgotten values ('customer', %s)", [customer])
    tables = _base_tables(cur)
    if ("staging", "base_crm__contacts") in tables:
        cur.execute(FORGOTTEN_CONTACTS_SQL)
    deleted: dict[str, int] = {}
    for column in read_classification_pg(cur):
        if not column.erasure or (column.schema, column.table) not in tables:
            continue
        value = f'"{column.column}"'
        value = f"lower(trim({value}))" if column.erasure == "email" else f"cast({value} as text)"
        cur.execute(f'delete from "{column.schema}"."{column.table}" where {value} in '
                    "(select value from forgotten where kind = %s)", [column.erasure])
        name = f"{column.schema}.{column.table}"
        deleted[name] = deleted.get(name, 0) + cur.rowcount
    return deleted


def write_bi_schema(cur, key: bytes, forgotten: set[str]) -> BiSummary:
    """The schema `bi`: every table and view of `marts` as a table, personal columns replaced by
    their pseudonyms (crm_tags.privacy.pseudonym, computed here: the key never reaches the
    server), rows of forgotten customers left out by the erasure keys; written as
    `bi_candidate`, then renamed over `bi` and granted to the BI role (the caller commits)."""
    role = bi_role()
    summary = BiSummary(Path(BI_SCHEMA))
    allowed = clear_columns()
    classified = {(c.schema, c.table, c.column): c for c in read_classification_pg(cur)}
    cur.execute("select table_schema, table_name, column_name from information_schema.columns "
                "where table_schema = any(%s) order by table_schema, table_name, ordinal_position",
                [list(BI_SCHEMAS)])
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in cur.fetchall():
        columns.setdefault((schema, table), []).append(column)
    _refuse_unclassified(columns, classified)
    cur.execute("drop schema if exists bi_candidate cascade")
    cur.execute("create schema bi_candidate")
    cur.execute("drop table if exists pg_temp.bi_forgotten")
    cur.execute("create temporary table bi_forgotten (value text) on commit drop")
    for customer in sorted(forgotten):
        cur.execute("insert into bi_forgotten values (%s)", [customer])
    cur.execute("drop table if exists pg_temp.bi_pseudonyms")
    cur.execute("create temporary table bi_pseudonyms (kind text, value text, pseudonym text, "
                "primary key (kind, value)) on commit drop")
    for (schema, table), names in columns.items():
        select = []
        for name in names:
            info = classified.get((schema, table, name))
            quoted = f'"{name}"'
            if info and info.personal and f"{table}.{name}".lower() not in allowed:
                _add_pseudonyms(cur, key, schema, table, name, info.personal)
                select.append(f"(select pseudonym from bi_pseudonyms where kind = "
                              f"'{info.personal}' and value = cast(source.{quoted} as text)) "
                              f"as {quoted}")
                summary.pseudonymised.append(f"{table}.{name}")
            else:
                if info and info.personal:
                    summary.in_clear.append(f"{table}.{name}")
                select.append(f"source.{quoted}")
        keys = [c.column for c in classified.values() if (c.schema, c.table) == (schema, table)
                and c.erasure == "customer" and c.column in names]
        where = " and ".join(f'cast(source."{k}" as text) not in (select value from bi_forgotten)'
                             for k in keys) or "true"
        cur.execute(f'create table bi_candidate."{table}" as select {", ".join(select)} '
                    f'from "{schema}"."{table}" as source where {where}')
        summary.tables.append(f"{BI_SCHEMA}.{table}")
    cur.execute(f"drop schema if exists {BI_SCHEMA} cascade")
    cur.execute(f"alter schema bi_candidate rename to {BI_SCHEMA}")
    cur.execute("select 1 from pg_roles where rolname = %s", [role])
    if cur.fetchone() is None:
        # a group role: deployments grant it to their BI tools' login roles
        cur.execute(f"create role {role} nologin")
    cur.execute(f"grant usage on schema {BI_SCHEMA} to {role}")
    cur.execute(f"grant select on all tables in schema {BI_SCHEMA} to {role}")
    return summary


def _add_pseudonyms(cur, key: bytes, schema: str, table: str, column: str, kind: str) -> None:
    from psycopg2.extras import execute_values

    cur.execute(f'select distinct cast("{column}" as text) from "{schema}"."{table}" '
                f'where "{column}" is not null')
    values = [(kind, value, pseudonym(key, value, kind)) for (value,) in cur.fetchall()]
    execute_values(cur, "insert into bi_pseudonyms values %s on conflict do nothing", values)
