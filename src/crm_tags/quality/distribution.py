"""Tag distributions: the share of customers holding each tag value, now and at the last publish.

The current distribution is a query over marts.customer_tags, run in the warehouse's engine
(DuckDB, or PostgreSQL through crm_tags.quality.connection: the SQL here is portable). When the gated
pipeline publishes a warehouse, it appends that distribution to
audit.tag_distribution_history and names the published run in audit.published_run; the next
gate compares against the latest recorded run other than the warehouse's own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

HISTORY_TABLE = "audit.tag_distribution_history"
PUBLISHED_RUN_TABLE = "audit.published_run"


def distribution_sql() -> str:
    """One row per account-level catalog tag value, plus `<tag>:*` = holding any value of it.

    Values nobody holds appear with share 0, so a lower bound on them can fail.
    """
    return """
        with population as (
            select count(*) as customers from marts.customer_profile
        ),
        catalog_values as (
            select values.tag_code, values.tag_value
            from reference.tag_value_definitions as values
            inner join reference.tag_definitions as tags on values.tag_code = tags.tag_code
            where tags.tag_level = 'account'
            union all
            select tag_code, '*' from reference.tag_definitions where tag_level = 'account'
        ),
        held as (
            select tag_code, tag_value, count(distinct customer_id) as customers
            from marts.customer_tags group by tag_code, tag_value
            union all
            select tag_code, '*', count(distinct customer_id)
            from marts.customer_tags group by tag_code
        )
        select
            catalog_values.tag_code || ':' || catalog_values.tag_value as tag_key,
            catalog_values.tag_code,
            catalog_values.tag_value,
            coalesce(held.customers, 0) as customers,
            cast(coalesce(held.customers, 0) as double precision)
                / nullif(population.customers, 0) as share
        from catalog_values
        cross join population
        left join held
            on catalog_values.tag_code = held.tag_code and catalog_values.tag_value = held.tag_value
    """


def table_exists(con: duckdb.DuckDBPyConnection, qualified_name: str) -> bool:
    schema, name = qualified_name.split(".")
    # a PgConnection auditing candidate schemas (crm_tags.pg_publish) says where `schema` is
    schema = getattr(con, "actual_schema", str)(schema)
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name]
    ).fetchone()[0])


@dataclass(frozen=True)
class PublishedDistribution:
    """The tag distribution recorded when a run was published (what the swing check compares
    the current run with)."""

    run_id: str
    as_of_date: dt.date | None
    customers: int  # the population its shares are fractions of
    tag_keys: frozenset[str]  # 'tag_code:tag_value' recorded (the catalog's values back then)


def previous_run(con: duckdb.DuckDBPyConnection,
                 run_date: dt.date | None = None) -> PublishedDistribution | None:
    """The latest recorded run that is not this warehouse's own (None: nothing published yet).
    With `run_date`, the latest recorded run dated on or before it (None when every published
    run is later): a build as of a past date (crm-tags backfill) is compared with the run
    before it in date order, not with today's."""
    if not table_exists(con, HISTORY_TABLE):
        return None
    own = None
    if table_exists(con, PUBLISHED_RUN_TABLE):
        row = con.execute(f"select max(run_id) from {PUBLISHED_RUN_TABLE}").fetchone()
        own = row[0] if row else None
    row = con.execute(
        f"""
        select run_id, max(as_of_date), max(population),
            array_agg(tag_code || ':' || tag_value)
        from {HISTORY_TABLE}
        where run_id is distinct from ?
        group by run_id
        having ? is null or max(as_of_date) is null or max(as_of_date) <= ?
        order by max(as_of_date) desc nulls last, max(recorded_at) desc limit 1
        """,
        [own, run_date, run_date]
    ).fetchone()
    if row is None:
        return None
    run_id, as_of_date, customers, tag_keys = row
    return PublishedDistribution(run_id, as_of_date, int(customers or 0), frozenset(tag_keys))


def forget_published_run(con) -> None:
    """Drop audit.published_run from a build that is not published (yet): a candidate copied
    from the published file, or schemas rebuilt in place (PostgreSQL, Spark). Else the swing
    check takes the run it names for this build's own and does not compare with it. `con`:
    anything with DuckDB's `execute` (a DuckDB, PgConnection or SparkSqlConnection)."""
    con.execute(f"drop table if exists {PUBLISHED_RUN_TABLE}")


def record_run(con: duckdb.DuckDBPyConnection, run_id: str, recorded_at: dt.datetime) -> None:
    """Append the current distribution to the history and mark `run_id` as the published run."""
    con.execute("create schema if not exists audit")
    con.execute(f"""
        create table if not exists {HISTORY_TABLE} (
            run_id varchar, as_of_date date, recorded_at timestamp, population bigint,
            tag_code varchar, tag_value varchar, customers bigint, share double precision
        )
    """)
    con.execute(
        f"""
        insert into {HISTORY_TABLE}
        select cast(? as varchar), (select max(as_of_date) from audit.reconciliation),
               cast(? as timestamp), (select count(*) from marts.customer_profile),
               tag_code, tag_value, customers, share
        from ({distribution_sql()}) as current_run
        """,
        [run_id, recorded_at]
    )
    con.execute(f"drop table if exists {PUBLISHED_RUN_TABLE}")
    con.execute(f"create table {PUBLISHED_RUN_TABLE} as select cast(? as varchar) as run_id, "
                "(select max(as_of_date) from audit.reconciliation) as as_of_date, "
                "cast(? as timestamp) as published_at", [run_id, recorded_at])
