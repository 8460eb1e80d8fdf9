"""Segment expressions compiled to SQL, every value bound as a parameter.

What reaches the SQL text: keywords, the profile's column names and segment codes (checked
against the catalog, the metric list and `[a-z][a-z0-9_]*` before they get here), and
parameter placeholders ($p1, $p2, ...). Every value a marketer typed (a tag value, a number, a
date, a segment code in in_segment()) is a parameter, so no value can change the query.

The predicates are two-valued: a customer without a tag (null in the profile) equals no value,
so `customer_grade = 'vip'` is false for it and `customer_grade != 'vip'` true; a missing metric
satisfies no comparison. `not`, `and`, `or` then behave as a marketer reads them.

    segment_conditions(file, vocabulary, tags)   each segment's condition over a row of the
        profile to which the earlier segments (dependency order) have added their columns
    membership_sql(file, vocabulary, profile, tags)   all segments of a file, in one statement:
        one projection per segment over the profile (in dependency order), then one UNPIVOT to
        (segment_code, customer_id) rows: a single pass over the profile for every segment
    filter_sql(tree, vocabulary, profile, tags, members)   one expression (preview)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from crm_tags.segments.definitions import SegmentFile
from crm_tags.segments.expression import (
    BoolOp,
    Compare,
    Has,
    InList,
    InSegment,
    IsNull,
    Literal,
    Node,
    Not,
)
from crm_tags.segments.vocabulary import IDENTIFIER, Vocabulary, metric_literal

SEGMENT_COLUMN_PREFIX = "segment:"


@dataclass
class Compiled:
    sql: str
    params: dict[str, object] = field(default_factory=dict)


class _Params:
    """Bound parameters ($p1 ...), or with inline=True escaped SQL literals: a preview is one
    short query in a fresh process, and DuckDB's parameter binding imports pandas and numpy to
    convert the values, which costs more than the query (docs/benchmark.md, Segments)."""

    def __init__(self, inline: bool = False) -> None:
        self.values: dict[str, object] = {}
        self.inline = inline

    def bind(self, value: object) -> str:
        if self.inline:
            return sql_literal(value)
        name = f"p{len(self.values) + 1}"
        self.values[name] = value
        return f"${name}"


def sql_literal(value: object) -> str:
    """A value as a DuckDB literal: a string in single quotes with each quote doubled (DuckDB
    reads no backslash escapes in such a string), a finite number in plain digits, a date."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | int):
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return format(number, "f")
    if isinstance(value, dt.date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("a value holds a NUL character")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def _identifier(name: str) -> str:
    if not IDENTIFIER.fullmatch(name):  # checked long before; never quote anything else
        raise ValueError(f"not an identifier: {name!r}")
    return f'"{name}"'


def segment_column(code: str) -> str:
    _identifier(code)
    return f'"{SEGMENT_COLUMN_PREFIX}{code}"'


class _Compiler:
    def __init__(self, vocabulary: Vocabulary, tags: str, params: _Params,
                 segment_sql: Callable[[str, _Params], str], row: str = "customer_id"):
        self.vocabulary = vocabulary
        self.tags = tags
        self.params = params
        self.segment_sql = segment_sql
        self.row = row  # the customer id column of the row being tested

    def node(self, node: Node) -> str:
        if isinstance(node, BoolOp):
            return "(" + f" {node.op} ".join(self.node(o) for o in node.operands) + ")"
        if isinstance(node, Not):
            return f"(not {self.node(node.operand)})"
        if isinstance(node, InSegment):
            return self.segment_sql(str(node.code.value), self.params)
        if isinstance(node, (Compare, InList, IsNull, Has)):
            return self.predicate(node)
        raise TypeError(f"unknown node {type(node).__name__}")

    def value(self, literal: Literal, kind: str | None = None) -> str:
        return self.params.bind(metric_literal(literal.value, kind) if kind else literal.value)

    def predicate(self, node: Compare | InList | IsNull | Has) -> str:
        name = node.field.name
        kind = self.vocabulary.metrics.get(name)
        tag = None if kind else self.vocabulary.tags[name]
        if tag is not None and tag.is_multi_valued:
            return self.multi_valued(node, name)
        column = _identifier(name)
        if isinstance(node, IsNull):
            return f"({column} is {'not ' if node.negated else ''}null)"
        if isinstance(node, InList):
            values = ", ".join(self.value(v, kind) for v in node.values)
            test = f"coalesce({column} in ({values}), false)"
            return f"(not {test})" if node.negated else test
        assert isinstance(node, Compare)
        value = self.value(node.value, kind)
        if node.op == "=":
            return f"({column} is not distinct from {value})"
        if node.op == "!=":
            return f"({column} is distinct from {value})"
        return f"coalesce({column} {node.op} {value}, false)"

    def multi_valued(self, node: Compare | InList | IsNull | Has, name: str) -> str:
        code = self.params.bind(name)
        if isinstance(node, IsNull):
            held = f"{self.row} in (select customer_id from {self.tags} where tag_code = {code})"
            return f"({held})" if node.negated else f"(not ({held}))"
        assert isinstance(node, Has)
        value = self.value(node.value)
        return (f"({self.row} in (select customer_id from {self.tags} "
                f"where tag_code = {code} and tag_value = {value}))")


def segment_conditions(file: SegmentFile, vocabulary: Vocabulary, tags: str, *,
                       inline: bool = False) -> tuple[list[tuple[str, str]], dict[str, object]]:
    """(code, condition) of each segment of `file` in evaluation order, and the bound values.
    A condition is a predicate over one row of the profile to which every earlier segment
    has added its column (segment_column(code), read by in_segment()); a priority list's
    segment excludes the members of the list's earlier segments (first match wins). inline:
    values as escaped literals (the dbt model segment_members reads the conditions from
    intermediate.segment_definitions, where no parameter can be bound)."""
    params = _Params(inline)

    def earlier_segment(code: str, _params: _Params) -> str:
        return segment_column(code)  # computed by an earlier layer

    compiler = _Compiler(vocabulary, tags, params, earlier_segment)
    conditions = []
    for segment in file.evaluation_order():
        condition = compiler.node(segment.tree)
        earlier = _earlier_in_list(file, segment)
        if earlier:
            condition = (f"({condition} and not ("
                         + " or ".join(segment_column(c) for c in earlier) + "))")
        conditions.append((segment.code, condition))
    return conditions, params.values


def membership_sql(file: SegmentFile, vocabulary: Vocabulary, profile: str,
                   tags: str) -> Compiled:
    """One statement: (segment_code, customer_id) for every member of every segment of `file`
    (a priority list's segment keeps only customers no earlier segment of the list holds).
    `profile` and `tags` are relations (marts.customer_profile, marts.customer_tags). The
    same layers as the dbt model segment_members (macros/segments.sql, segment_layers)."""
    conditions, params = segment_conditions(file, vocabulary, tags)
    if not conditions:
        return Compiled("select cast(null as varchar) as segment_code, "
                        "cast(null as varchar) as customer_id limit 0")
    layers = [f"segment_layer_0 as (select * from {profile})"]
    for number, (code, condition) in enumerate(conditions, start=1):
        layers.append(f"segment_layer_{number} as (select *, {condition} as "
                      f"{segment_column(code)} from segment_layer_{number - 1})")
    columns = ", ".join(segment_column(code) for code, _ in conditions)
    sql = (
        "with\n" + ",\n".join(layers) + ",\n"
        f"matched as (select customer_id, {columns} from segment_layer_{len(conditions)})\n"
        f"select substr(segment_code, {len(SEGMENT_COLUMN_PREFIX) + 1}) as segment_code, "
        "customer_id\n"
        f"from (unpivot matched on {columns} into name segment_code value is_member)\n"
        "where is_member"
    )
    return Compiled(sql, params)


def _earlier_in_list(file: SegmentFile, segment) -> list[str]:
    if segment.priority_list is None:
        return []
    plist = next(p for p in file.priority_lists if p.code == segment.priority_list)
    return list(plist.segments[: (segment.priority_rank or 1) - 1])


def filter_sql(tree: Node, vocabulary: Vocabulary, profile: str, tags: str,
               members: str, *, inline: bool = False) -> Compiled:
    """`select * from profile where <tree>`; in_segment('x') reads `members`
    (marts.segment_members: the published members of x). inline: values as escaped literals
    instead of parameters."""
    params = _Params(inline)

    def published_segment(code: str, bound: _Params) -> str:
        return (f"(customer_id in (select customer_id from {members} "
                f"where segment_code = {bound.bind(code)}))")

    condition = _Compiler(vocabulary, tags, params, published_segment).node(tree)
    return Compiled(f"select * from {profile} where {condition}", params.values)
