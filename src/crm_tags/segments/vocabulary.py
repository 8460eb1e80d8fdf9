"""What the names in a `where` expression may be: the catalog's account-level tags with their
values, and the profile metrics; and the checks of an expression against them.

The tags come from the tag catalog (var tag_catalog in dbt_project.yml), read either with
crm_tags.catalog.read_catalog() (before a build) or from the warehouse's reference tables built
from it (reference.tag_definitions, reference.tag_value_definitions: inside the build, and for
a preview of the published warehouse). The values of the category tags (product_preference,
browsing_interest) are the shop's categories: those configured in seeds/category_mapping.csv and
seeds/category_labels.csv, and those present in the data (core.dim_product_categories, which
may hold categories no seed lists). The data's categories are known only where a warehouse
holds them: before the first build a value outside the configured ones is not checked here, and
the build checks it against the categories it has just computed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

from crm_tags.segments.expression import (
    Compare,
    Has,
    InList,
    InSegment,
    IsNull,
    Literal,
    Name,
    Node,
    walk,
)

IDENTIFIER = re.compile(r"[a-z][a-z0-9_]*")

# The columns of marts.customer_profile a segment may compare (< <= > >= = != in, is null).
# Tags are compared by value (=, in, has), metrics by number or date. One home: a test checks
# each of these is a numeric or date column of the built customer_profile.
PROFILE_METRICS: dict[str, str] = {
    "r_score": "number",
    "f_score": "number",
    "m_score": "number",
    "rfm_total": "number",
    "purchases_total": "number",
    "purchases_365d": "number",
    "net_sales_365d": "number",
    "profit_365d": "number",
    "promotional_purchases_365d": "number",
    "days_since_last_purchase": "number",
    "employee_count": "number",
    "first_purchase_date": "date",
    "last_purchase_date": "date",
}


@dataclass(frozen=True)
class TagTerm:
    code: str
    level: str  # account or contact
    is_multi_valued: bool
    values: frozenset[str] | None  # None: not known here (category values before a build)
    is_category: bool = False


@dataclass(frozen=True)
class Problem:
    """A mistake in an expression: its offset and length there, and the sentence."""

    offset: int
    length: int
    message: str


@dataclass
class Vocabulary:
    tags: Mapping[str, TagTerm]
    metrics: Mapping[str, str] = field(default_factory=lambda: dict(PROFILE_METRICS))
    # what this vocabulary could not check, said once in `crm-tags segments validate`
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_catalog(cls, catalog: Mapping, categories: Iterable[str] | None) -> Vocabulary:
        """From read_catalog()'s entries; `categories`: every category code the shop knows (the
        seeds' and a warehouse's), or None when the data's are unknown (no warehouse yet: the
        category values are then not checked)."""
        known = None if categories is None else frozenset(categories)
        tags = {}
        for code, tag in catalog.items():
            listed = frozenset(_value_code(v) for v in tag.values)
            is_category = (getattr(tag, "values_from", None) == "product_categories"
                           or bool(getattr(tag, "values_are_product_categories", False)))
            values = (None if known is None else known | listed) if is_category else listed
            tags[code] = TagTerm(code, tag.level, tag.is_multi_valued, values, is_category)
        notes = []
        if categories is None and any(t.is_category for t in tags.values()):
            names = ", ".join(sorted(t.code for t in tags.values() if t.is_category))
            notes.append(f"no warehouse yet: the values of {names} (the categories of the "
                         "seeds and of the data) are checked when the build runs")
        return cls(tags, notes=notes)

    @classmethod
    def from_warehouse(cls, con: duckdb.DuckDBPyConnection, definitions: str = "",
                       values: str = "", categories: Iterable[str] = ()) -> Vocabulary:
        """From a warehouse's reference.tag_definitions and reference.tag_value_definitions (or
        the relations named `definitions` and `values`, e.g. dbt refs); `categories`: the
        configured category codes (the seeds'), valid for the category tags too."""
        definitions = definitions or "reference.tag_definitions"
        values = values or "reference.tag_value_definitions"
        codes: dict[str, set[str]] = {}
        for tag_code, tag_value in con.sql(f"select tag_code, tag_value from {values}").fetchall():
            codes.setdefault(tag_code, set()).add(tag_value)
        configured = frozenset(categories)
        tags = {}
        for code, level, multi, values_from in con.sql(
                f"select tag_code, tag_level, is_multi_valued, values_from from {definitions}"
        ).fetchall():
            is_category = values_from == "product_categories"
            known = frozenset(codes.get(code, ())) | (configured if is_category else frozenset())
            tags[code] = TagTerm(code, level, bool(multi), known, is_category)
        return cls(tags)

    # --- checks --------------------------------------------------------------------------

    def check(self, tree: Node, segment_codes: Iterable[str]) -> list[Problem]:
        """Every mistake of the expression against the catalog, the metrics and the segments."""
        known_segments = set(segment_codes)
        problems: list[Problem] = []
        for node in walk(tree):
            if isinstance(node, InSegment):
                code = str(node.code.value)
                if code not in known_segments:
                    problems.append(self._at(node.code, f"unknown segment '{code}' in "
                                    f"in_segment(); expected one of: "
                                    f"{_listing(known_segments)}{_suggest(code, known_segments)}"))
            elif isinstance(node, (Compare, InList, IsNull, Has)):
                problems += self._check_predicate(node)
        return problems

    def _check_predicate(self, node: Compare | InList | IsNull | Has) -> list[Problem]:
        name = node.field.name
        if name in self.metrics:
            return self._check_metric(node, name, self.metrics[name])
        tag = self.tags.get(name)
        if tag is None:
            names = set(self.tags) | set(self.metrics)
            return [self._at(node.field, f"unknown tag or metric '{node.field.name}'; expected "
                             f"a tag of the catalog or a profile metric"
                             f"{_suggest(name, names)}")]
        if tag.level != "account":
            return [self._at(node.field, f"{name} is a {tag.level}-level tag: a segment "
                             "selects customers, by their account-level tags")]
        if isinstance(node, IsNull):
            return []
        if isinstance(node, Has):
            if not tag.is_multi_valued:
                return [self._at(node, f"'has' needs a multi-valued tag; {name} is "
                                 f"single-valued: expected {name} = '...' or {name} in (...)")]
            return self._check_values(tag, [node.value])
        if tag.is_multi_valued:
            return [self._at(node, f"{name} is multi-valued (a customer may hold several "
                             f"values): expected {name} has '...'")]
        if isinstance(node, Compare) and node.op not in ("=", "!="):
            return [self._at(node, f"comparison '{node.op}' needs a profile metric; {name} is "
                             f"a tag: expected = , != or in")]
        values = [node.value] if isinstance(node, Compare) else list(node.values)
        return self._check_values(tag, values)

    def _check_values(self, tag: TagTerm, values: list[Literal]) -> list[Problem]:
        problems = []
        for literal in values:
            if literal.is_number:
                problems.append(self._at(literal, f"{tag.code} takes a value in single quotes, "
                                         f"not a number: expected {_examples(tag)}"))
            elif tag.values is not None and literal.value not in tag.values:
                where = ("the shop's categories (seeds and data)" if tag.is_category
                         else "the catalog")
                problems.append(self._at(literal, f"'{literal.value}' is not a value of "
                                         f"{tag.code} in {where}; expected one of: "
                                         f"{_listing(tag.values)}"
                                         f"{_suggest(str(literal.value), tag.values)}"))
        return problems

    def _check_metric(self, node: Node, name: str, kind: str) -> list[Problem]:
        if isinstance(node, Has):
            return [self._at(node, f"'has' needs a multi-valued tag; {name} is a profile "
                             "metric: expected a comparison such as "
                             f"{name} >= {_metric_example(kind)}")]
        if isinstance(node, IsNull):
            return []
        values = [node.value] if isinstance(node, Compare) else list(node.values)
        problems = []
        for literal in values:
            if kind == "number" and not literal.is_number:
                problems.append(self._at(literal, f"{name} is a number: expected a number such "
                                         f"as {_metric_example(kind)}, not a quoted value"))
            elif kind == "date" and (literal.is_number or not _is_date(str(literal.value))):
                problems.append(self._at(literal, f"{name} is a date: expected a date in "
                                         f"single quotes, as in {_metric_example(kind)}"))
        return problems

    @staticmethod
    def _at(node: Node | Name | Literal, message: str) -> Problem:
        return Problem(node.start, node.end - node.start, message)


def metric_literal(value: str | Decimal, kind: str):
    """The Python value bound for a metric comparison (a Decimal, or a date)."""
    import datetime as dt

    return dt.date.fromisoformat(str(value)) if kind == "date" else value


def _is_date(text: str) -> bool:
    import datetime as dt

    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text))


def _metric_example(kind: str) -> str:
    return "'2025-01-01'" if kind == "date" else "10000"


def _examples(tag: TagTerm) -> str:
    if not tag.values:
        return f"{tag.code} = 'value'"
    return f"{tag.code} = '{min(tag.values)}'"


def _listing(values: Iterable[str], limit: int = 30) -> str:
    ordered = sorted(values)
    if not ordered:
        return "(none)"
    shown = ", ".join(ordered[:limit])
    return shown + (f", ... ({len(ordered) - limit} more)" if len(ordered) > limit else "")


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _value_code(value) -> str:
    """A catalog value's code: read_catalog() gives (code, label_zh, label_en) tuples."""
    return str(getattr(value, "code", None) or value[0])


CATEGORY_SEEDS = ("category_mapping", "category_labels")  # seeds/<name>.csv, column category_code


def configured_categories(con: duckdb.DuckDBPyConnection, relations: Iterable[str]) -> set[str]:
    """The category codes the seeds configure, read from their tables (`relations`)."""
    found: set[str] = set()
    for relation in relations:
        found |= {r[0] for r in con.sql(f"select distinct category_code from {relation}")
                  .fetchall() if r[0]}
    return found
