"""Preview a condition on the published warehouse, read-only (`crm-tags segments preview`).

    result = preview(warehouse, "customer_grade = 'vip' and purchase_frequency = 'high'")
    result.count, result.share, result.sample, result.by_customer_grade

The condition is checked against the warehouse's own catalog tables (reference.tag_definitions
and tag_value_definitions, so the category values are the categories it knows) and compiled
with its values bound; in_segment('code') reads the published marts.segment_members.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from crm_tags.segments.compile import filter_sql
from crm_tags.segments.expression import ExpressionError, parse
from crm_tags.segments.vocabulary import CATEGORY_SEEDS, Vocabulary, configured_categories

NO_GRADE = "(none)"


class PreviewError(ValueError):
    """The expression is wrong (the message points at it) or the warehouse cannot answer."""


@dataclass
class PreviewResult:
    expression: str
    count: int
    share: float | None  # of the live customers (marts.customer_profile); None when none
    customers: int
    sample: list[str]
    by_customer_grade: dict[str, int]
    as_of_date: str | None
    warehouse: str
    seconds: float = 0.0
    sql: str = field(default="", repr=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("sql")
        data["seconds"] = round(self.seconds, 3)
        return data

    def report(self) -> str:
        share = f"{self.share:.1%}" if self.share is not None else "n/a"
        lines = [
            self.expression,
            (f"{self.count:,} customers ({share} of {self.customers:,}) as of {self.as_of_date} "
            f"in {self.warehouse} ({self.seconds:.2f} s)"),
            "by customer_grade:",
        ]
        for grade, n in self.by_customer_grade.items():
            part = f"{n / self.count:.1%}" if self.count else "-"
            lines.append(f"  {grade:<12} {n:>9,}  {part:>6}")
        lines.append("sample: " + (", ".join(self.sample) or "(no customer)"))
        return "\n".join(lines)


def expression_error(expression: str, offset: int, length: int, message: str) -> PreviewError:
    caret = " " * offset + "^" * max(1, min(length, len(expression) - offset))
    return PreviewError(f"offset {offset}: {message}\n    {expression}\n    {caret}")


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return (schema, name) in set(con.sql(
        "select table_schema, table_name from information_schema.tables").fetchall())


def preview(warehouse: Path, expression: str, sample_size: int = 10) -> PreviewResult:
    started = time.perf_counter()
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise PreviewError(f"no warehouse at {warehouse}: build one first (crm-tags build)")
    try:
        tree = parse(expression)
    except ExpressionError as error:
        raise expression_error(expression, error.offset, error.length, error.message) from None
    with duckdb.connect(str(warehouse), read_only=True) as con:
        vocabulary = Vocabulary.from_warehouse(con, categories=configured_categories(
            con, [f"reference.{seed}" for seed in CATEGORY_SEEDS]))
        segments = []
        if _has_table(con, "marts", "segment_catalog"):
            segments = [r[0] for r in con.sql(
                "select segment_code from marts.segment_catalog").fetchall()]
        problems = vocabulary.check(tree, segments)
        if problems:
            raise PreviewError("\n".join(
                str(expression_error(expression, p.offset, p.length, p.message))
                for p in problems))
        # values inlined as escaped literals: binding parameters would import pandas
        compiled = filter_sql(tree, vocabulary, "marts.customer_profile", "marts.customer_tags",
                              "marts.segment_members", inline=True)
        customers, as_of = con.sql(
            "select count(*), max(as_of_date) from marts.customer_profile").fetchone()
        grades = con.execute(
            f"select coalesce(customer_grade, '{NO_GRADE}') as grade, count(*) "
            f"from ({compiled.sql}) as matched group by all order by 2 desc, 1").fetchall()
        sample = [r[0] for r in con.execute(
            f"select customer_id from ({compiled.sql}) as matched "
            f"order by hash(customer_id), customer_id limit {int(sample_size)}").fetchall()]
    count = sum(n for _, n in grades)
    return PreviewResult(
        expression=expression,
        count=count,
        share=count / customers if customers else None,
        customers=customers,
        sample=sample,
        by_customer_grade=dict(grades),
        as_of_date=str(as_of) if as_of else None,
        warehouse=str(warehouse),
        seconds=time.perf_counter() - started,
        sql=compiled.sql,
    )
