"""What the suites in expectations/suites/ are written with.

A suite file (one per checkpoint) is plain Python: `build(facts) -> list[Suite]`, each Suite
binding one data asset of the warehouse (a table, or a SQL query that DuckDB runs) to a list of
Great Expectations expectations. `severity="critical"` (GX's default) blocks the gate;
`"warning"` is flagged in the summary and in Data Docs; `"info"` only records a number. Every
expectation carries a `description` written for data stewards: it is what the gate prints when
the expectation fails.

Checks that relate several tables are written as "problem queries": a query with a `problem`
column that is null when all is well and otherwise says, in a sentence, what is wrong
(`problem_suite`). Only the problem rows are kept, so the query's result (materialised once in a
DuckDB temporary table) stays small; GX expects `problem` to be null, i.e. no problem row, and
Data Docs and the gate's summary show the first sentences.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from crm_tags.quality.distribution import PublishedDistribution
from crm_tags.quality.lineage import TagLineage

Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True)
class Table:
    schema: str
    name: str


@dataclass(frozen=True)
class Query:
    sql: str


@dataclass
class Suite:
    name: str  # unique, e.g. "core.fct_orders"; also the GX asset and suite name
    asset: Table | Query
    expectations: list[gxe.Expectation]


@dataclass(frozen=True)
class CatalogTag:
    tag_code: str
    tag_level: str  # account | contact
    is_multi_valued: bool
    authoritative_source: str
    source_tables: str  # space separated, e.g. "orders.orders orders.order_items"


@dataclass
class GateFacts:
    """What a suite file may rely on when it builds its suites (read from the warehouse)."""

    run_date: dt.date  # the as_of_date the warehouse was built for
    customers: int  # rows of marts.customer_profile
    policy: dict  # expectations/gate.yml
    catalog: dict[str, CatalogTag]  # reference.tag_definitions as built
    catalog_values: dict[str, list[str]]  # tag_code -> value codes (tag_value_definitions)
    contract: dict[str, list[tuple[str, str]]]  # landing table -> [(column, type)]
    lineage: list[TagLineage]  # per tag: catalog sources vs dbt lineage
    # the distribution recorded at the last publish (None: this warehouse's first run)
    previous: PublishedDistribution | None = None
    notes: list[str] = field(default_factory=list)  # checks skipped, and why
    relations: frozenset[str] = frozenset()  # schema.name of every table and view of the marts
    engine: str = "duckdb"  # where the data is: duckdb | postgres | spark (quality.connection)

    @property
    def run_date_sql(self) -> str:
        return f"date '{self.run_date.isoformat()}'"

    def days_before_run(self, date_sql: str) -> str:
        """Whole days from a date to the run date: a date difference (Spark's is `datediff`:
        there, subtracting dates gives an interval)."""
        if self.engine == "spark":
            return f"datediff({self.run_date_sql}, {date_sql})"
        return f"{self.run_date_sql} - {date_sql}"


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def problem_suite(
    name: str, sql: str, description: str, severity: Severity = "critical"
) -> Suite:
    """A suite over `sql`, none of whose rows may carry a `problem`."""
    # sorted, so the sampled problems GX reports are the same from run to run
    query = (f"select * from (\n{sql.strip()}\n) as checked where problem is not null"
             " order by problem")
    return Suite(name, Query(query), [
        gxe.ExpectColumnValuesToBeNull(column="problem", description=description, severity=severity)
    ])


def key_label(key: list[str]) -> str:
    """How a steward reads a key: `order_id`, or `(order_id, line_no)`."""
    return key[0] if len(key) == 1 else f"({', '.join(key)})"


def repeated_key_hashes(relation: str, key: list[str], where: str = "true") -> str:
    """The 64-bit hashes of `key` held by more than one row of `relation` (where `where`): a
    duplicate finder groups these first, and the key strings only where a hash repeats (which
    also drops two keys that merely share a hash): grouping the strings of every row costs more
    (docs/benchmark.md, "The measurements behind the code's comments")."""
    keys = ", ".join(key)
    return (f"select hash({keys}) as key_hash from {relation} where {where} "
            "group by key_hash having count(*) > 1")


def unique_key_suite(
    name: str, relation: str, key: list[str], description: str, where: str | None = None,
    severity: Severity = "critical",
) -> Suite:
    """A problem suite: no two rows of `relation` (optionally: `where`) share `key`; rows with a
    null key part are left to the not-null expectations (as dbt's unique tests skip them).

    One grouping query, materialised once, where GX's unique expectations window over the whole
    table twice (for the unexpected count, then again for the examples; their cost is in
    docs/benchmark.md). It groups the key's hash first (repeated_key_hashes).
    """
    keys = ", ".join(key)
    label = key_label(key)
    shown = " || ', ' || ".join(f"cast({k} as varchar)" for k in key)
    shown = shown if len(key) == 1 else f"'(' || {shown} || ')'"
    conditions = " and ".join([f"{k} is not null" for k in key] + ([f"({where})"] if where else []))
    return problem_suite(name, f"""
        with repeated as ({repeated_key_hashes(relation, key, conditions)})
        select {keys}, printf(
            '{relation}: {label} = %s is held by %d rows', {shown}, count(*)) as problem
        from {relation}
        where {conditions} and hash({keys}) in (select key_hash from repeated)
        group by {keys}
        having count(*) > 1
        """, description, severity)


# Row condition of an expectation on a staging model that looks at the kept rows only (the
# rejected ones are in audit.quarantine_rows with their reason).
KEPT_ROWS = Column("rejection_reason").is_null()
