"""The segment language without a dbt build: the parser, the checks against the catalog (each
message names segment, position and what was expected), the SQL it compiles to (run on a small
hand-made profile in DuckDB), hostile values, and the holdout hash."""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from crm_tags import PROJECT_DIR
from crm_tags.build import DbtError
from crm_tags.catalog import read_catalog
from crm_tags.segments import (
    SegmentDefinitionError,
    Vocabulary,
    holdout_bucket,
    load_segments,
)
from crm_tags.segments.check import check_before_build
from crm_tags.segments.compile import filter_sql, membership_sql, sql_literal
from crm_tags.segments.expression import (
    BoolOp,
    Compare,
    ExpressionError,
    Has,
    InList,
    InSegment,
    IsNull,
    Not,
    parse,
)

CATEGORIES = ["electronics", "books", "宠物用品"]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.from_catalog(read_catalog(), CATEGORIES)


def segment(code: str, where: str, extra: str = "") -> str:
    return (f"  - code: {code}\n    label_zh: 标签\n    label_en: Label\n    owner: marketing\n"
            f"    description: A segment.\n    where: {where}\n{extra}")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "segments.yml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, vocabulary: Vocabulary | None) -> list:
    with pytest.raises(SegmentDefinitionError) as caught:
        load_segments(write(tmp_path, text), vocabulary)
    return caught.value.problems


# --- the parser ------------------------------------------------------------------------------


def test_every_operator_parses_with_its_span():
    tree = parse("customer_grade = 'vip' and (region in ('east', 'south') or region is null) "
                 "and not manual has 'blacklist' and net_sales_365d >= 10000 "
                 "AND in_segment('x') and recency <> 'over_180d' and region not in ('north') "
                 "and ltv is not null")
    assert isinstance(tree, BoolOp) and tree.op == "and"
    kinds = [type(n).__name__ for n in tree.operands]
    assert kinds == ["Compare", "BoolOp", "Not", "Compare", "InSegment", "Compare", "InList",
                     "IsNull"]
    grade, group, blacklist, sales, other, recency, region, ltv = tree.operands
    assert (grade.field.name, grade.op, grade.value.value) == ("customer_grade", "=", "vip")
    assert (grade.start, grade.end) == (0, 22)
    assert group.op == "or" and isinstance(group.operands[0], InList)
    assert isinstance(blacklist.operand, Has) and blacklist.operand.value.value == "blacklist"
    assert sales.op == ">=" and sales.value.value == Decimal(10000)
    assert isinstance(other, InSegment) and other.code.value == "x"
    assert recency.op == "!="  # <> is !=
    assert region.negated and [v.value for v in region.values] == ["north"]
    assert isinstance(ltv, IsNull) and ltv.negated


def test_quotes_in_values_and_precedence():
    tree = parse("manual has 'it''s' or region = 'east' and not region is null")
    assert isinstance(tree, BoolOp) and tree.op == "or"  # and binds tighter than or
    assert tree.operands[0].value.value == "it's"
    assert isinstance(tree.operands[1].operands[1], Not)
    assert isinstance(parse("(((region = 'east')))"), Compare)


@pytest.mark.parametrize(("expression", "offset", "expected"), [
    ("", 0, "the expression is empty"),
    ("customer_grade 'vip'", 15, ("expected an operator (=, !=, <, <=, >, >=, in, not in, "
                                 "is null, is not null, has) after 'customer_grade', found the "
                                 "value 'vip'")),
    ("customer_grade = 'vip", 17, "unterminated value"),
    ("(customer_grade = 'vip'", 23, "expected ')' to close the '(' at offset 0"),
    ("customer_grade = \"vip\"", 17, "values are in single quotes"),
    ("customer_grade = 'vip' region = 'east'", 23, "expected and, or, or the end"),
    ("region in ('east' 'south')", 18, "expected ',' or ')' to close the list"),
    ("region is 'east'", 10, "expected null after 'is'"),
    ("in_segment(vip)", 11, "expected a segment code in single quotes"),
    ("customer_grade = and", 17, "expected a value in single quotes or a number after '='"),
    ("and region = 'east'", 0, "expected a tag, a metric"),
    ("region = 'ea\x00st'", 12, "NUL"),
])
def test_syntax_errors_name_the_offset_and_what_was_expected(expression, offset, expected):
    with pytest.raises(ExpressionError) as caught:
        parse(expression)
    assert caught.value.offset == offset
    assert expected in caught.value.message


# --- checks against the catalog --------------------------------------------------------------


@pytest.mark.parametrize(("where", "offset", "expected"), [
    ("custmer_grade = 'vip'", 0,
     ("unknown tag or metric 'custmer_grade'; expected a tag of the catalog or a profile metric "
     "(did you mean customer_grade?)")),
    ("customer_grade = 'vvip'", 17,
     ("'vvip' is not a value of customer_grade in the catalog; expected one of: important, "
     "ordinary, potential, vip (did you mean vip?)")),
    ("browsing_interest has 'toys'", 22,
     ("'toys' is not a value of browsing_interest in the shop's categories (seeds and data); "
     "expected one of: books, electronics, 宠物用品")),
    ("product_preference = 'mixed' and product_preference = 'books'", 0, None),
    ("customer_grade has 'vip'", 0,
     ("'has' needs a multi-valued tag; customer_grade is single-valued: expected "
     "customer_grade = '...' or customer_grade in (...)")),
    ("manual = 'blacklist'", 0, ("manual is multi-valued (a customer may hold several values): "
                                "expected manual has '...'")),
    ("manual in ('blacklist')", 0, "manual is multi-valued"),
    ("customer_grade > 'vip'", 0, ("comparison '>' needs a profile metric; customer_grade is a "
                                  "tag: expected = , != or in")),
    ("net_sales_365d >= 'lots'", 18, ("net_sales_365d is a number: expected a number such as "
                                     "10000, not a quoted value")),
    ("first_purchase_date < '2025-13-01'", 22, "first_purchase_date is a date: expected a date"),
    ("customer_grade = 5", 17, "customer_grade takes a value in single quotes, not a number"),
    ("decision_role = 'user'", 0, ("decision_role is a contact-level tag: a segment selects "
                                  "customers")),
    ("net_sales_365d has 'x'", 0, ("'has' needs a multi-valued tag; net_sales_365d is a profile "
                                  "metric")),
    ("in_segment('nope')", 11, "unknown segment 'nope' in in_segment(); expected one of: s"),
])
def test_each_meaning_mistake_is_named(vocabulary, where, offset, expected):
    from crm_tags.segments.expression import parse as parse_expression

    problems = vocabulary.check(parse_expression(where), ["s"])
    if expected is None:
        assert problems == []
        return
    assert [p.offset for p in problems] == [offset]
    assert expected in problems[0].message


def test_multi_valued_is_null_and_metric_null_checks_are_accepted(vocabulary):
    tree = parse("manual is null and purchase_intent is not null and ltv is null "
                 "and days_since_last_purchase is null and last_purchase_date >= '2025-01-01'")
    assert vocabulary.check(tree, []) == []


def test_without_a_warehouse_category_values_wait_for_the_build():
    vocabulary = Vocabulary.from_catalog(read_catalog(), None)
    assert vocabulary.check(parse("browsing_interest has 'anything'"), []) == []
    assert vocabulary.check(parse("product_preference = 'mixed'"), []) == []
    assert "checked when the build runs" in vocabulary.notes[0]
    # listed values are still checked
    assert vocabulary.check(parse("customer_grade = 'vvip'"), [])


# --- the file: positions, structure, cycles ---------------------------------------------------


def test_a_mistake_is_placed_at_its_line_and_column_in_every_yaml_style(tmp_path, vocabulary):
    text = ("segments:\n"
            + segment("plain", "customer_grade = 'vvip'")
            + segment("quoted", "\"region = 'east' and custmer_grade = 'vip'\"")
            + segment("folded", ">-\n      region = 'east'\n      and custmer_grade = 'vip'"))
    problems = problems_of(tmp_path, text, vocabulary)
    assert [(p.subject, p.line, p.column, p.offset) for p in problems] == [
        ("segment plain", 7, 29, 17),
        ("segment quoted", 13, 33, 20),
        ("segment folded", 21, 11, 20),
    ]
    lines = text.splitlines()
    assert lines[6][28:34] == "'vvip'"
    assert lines[12][32:45] == "custmer_grade"
    assert lines[20][10:23] == "custmer_grade"
    # the message shows the expression with a caret under the mistake
    assert str(problems[0]).endswith(
        "    customer_grade = 'vvip'\n                     ^^^^^^")
    assert str(problems[0]).startswith(
        f"{problems[0].file}:7:29: segment plain (where, offset 17): 'vvip' is not a value")


def test_every_problem_of_the_file_is_reported_at_once(tmp_path, vocabulary):
    text = ("segments:\n"
            + segment("a", "customer_grade = 'vip'", "    lable_en: typo\n")
            + segment("a", "region = 'east'")
            + segment("Bad-Code", "region = 'east'")
            + segment("c", "region = 'east'", "    holdout_percent: 150\n")
            + "  - code: d\n    where: region = 'east'\n"
            + segment("e", "(region = 'east'")
            + "priority_lists:\n  - code: p\n    segments: [a, zz]\n"
            + "  - code: q\n    segments: [c]\n")
    messages = [f"{p.subject}: {p.message}" for p in problems_of(tmp_path, text, vocabulary)]
    assert messages == [
        ("segment a: unknown field 'lable_en'; expected one of: code, label_zh, label_en, owner, "
        "description, where, holdout_percent, holdout_salt"),
        "segment a: code 'a' is already used by the segment at line 2; expected a unique code",
        ("segment Bad-Code: code 'Bad-Code': expected lower-case snake_case (a letter, then "
        "letters, digits or _)"),
        ("segment c: holdout_percent: expected a number from 0 to 100 (excluded) with at most two "
        "decimals, found '150'"),
        "segment d: missing fields label_zh, label_en, owner, description",
        "segment e: expected ')' to close the '(' at offset 0, found the end of the expression",
        "priority list p: unknown segment 'zz'; expected one of: a, c, d, e",
        "priority list q: segments: a priority list orders at least two segments",
    ]


@pytest.mark.parametrize(("text", "cycle"), [
    ("segments:\n" + segment("a", "in_segment('b')") + segment("b", "in_segment('a')"),
     "a -> b -> a (a reads in_segment('b'); b reads in_segment('a'))"),
    ("segments:\n" + segment("a", "in_segment('a')"), "a -> a (a reads in_segment('a'))"),
    ("segments:\n" + segment("a", "in_segment('b')") + segment("b", "region = 'east'")
     + "priority_lists:\n  - code: p\n    segments: [a, b]\n",
     "a -> b -> a (a reads in_segment('b'); b comes after a in priority list p)"),
])
def test_cycles_are_found_and_named(tmp_path, vocabulary, text, cycle):
    [problem] = problems_of(tmp_path, text, vocabulary)
    assert problem.message == (f"segments depend on each other in a cycle: {cycle}; expected "
                               "segments that do not depend on themselves")
    assert problem.subject == "segment a" and problem.offset == 0


def test_not_yaml_and_not_a_mapping(tmp_path):
    [problem] = problems_of(tmp_path, "segments: [\n", None)
    assert problem.message.startswith("not valid YAML") and problem.line == 2
    [problem] = problems_of(tmp_path, "segments:\n  - just text\n", None)
    assert (problem.line, problem.message) == (2, ("expected a mapping with code, label_zh, "
                                                  "label_en, owner, description, where, "
                                                  "holdout_percent, holdout_salt"))


def test_a_missing_default_file_means_no_segments_but_an_explicit_one_is_an_error(
        tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_SEGMENTS_FILE", raising=False)
    from crm_tags.segments.definitions import segments_file

    missing = load_segments(tmp_path / "none.yml", required=False)
    assert (missing.segments, missing.exists) == ([], False)
    with pytest.raises(SegmentDefinitionError, match="the file does not exist"):
        load_segments(tmp_path / "none.yml")
    # a copy of the dbt project without segments/ builds no segments (tests change copies)
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_DIR / "dbt_project.yml", project)
    assert check_before_build(None, project).segments == []
    monkeypatch.setenv("CRM_SEGMENTS_FILE", str(tmp_path / "none.yml"))
    assert segments_file() == tmp_path / "none.yml"
    with pytest.raises(SegmentDefinitionError, match="the file does not exist"):
        load_segments()
    with pytest.raises(DbtError, match="the file does not exist"):
        check_before_build(None, project)


def test_the_shipped_file_is_valid(vocabulary, monkeypatch):
    monkeypatch.delenv("CRM_SEGMENTS_FILE", raising=False)
    file = load_segments(None, vocabulary)
    assert {"vip_frequent", "electronics_browsers_not_blacklisted", "win_back"} <= {
        s.code for s in file.segments}
    assert file.by_code()["win_back"].holdout_percent > 0
    assert file.priority_lists


# --- compiled SQL on a hand-made profile -----------------------------------------------------


@pytest.fixture
def shop() -> duckdb.DuckDBPyConnection:
    """Four customers: c1 vip in the east with 20,000 net sales and a blacklist, c2 ordinary
    with no region, c3 potential with a books interest, c4 with no grade at all."""
    con = duckdb.connect()
    con.execute("""
        create table profile as select * from (values
            ('c1', 'vip', 'east', 20000.00::decimal(18, 2), 3, date '2024-01-05'),
            ('c2', 'ordinary', null, 0.00, null, null),
            ('c3', 'potential', 'south', 10000.00, 40, date '2025-03-01'),
            ('c4', null, 'east', 0.00, null, null)
        ) as t (customer_id, customer_grade, region, net_sales_365d, days_since_last_purchase,
                first_purchase_date)
    """)
    con.execute("""
        create table tags as select * from (values
            ('c1', 'manual', 'blacklist'), ('c1', 'browsing_interest', 'electronics'),
            ('c3', 'browsing_interest', 'books'), ('c3', 'browsing_interest', 'electronics')
        ) as t (customer_id, tag_code, tag_value)
    """)
    return con


def matched(con, vocabulary, where: str, inline: bool = False) -> list[str]:
    compiled = filter_sql(parse(where), vocabulary, "profile", "tags", "members", inline=inline)
    rows = con.execute(compiled.sql + " order by customer_id", compiled.params or None)
    return [r[0] for r in rows.fetchall()]


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize(("where", "customers"), [
    ("customer_grade = 'vip'", ["c1"]),
    ("customer_grade != 'vip'", ["c2", "c3", "c4"]),  # no grade is not vip
    ("not customer_grade = 'vip'", ["c2", "c3", "c4"]),
    ("customer_grade in ('vip', 'potential')", ["c1", "c3"]),
    ("customer_grade not in ('vip', 'potential')", ["c2", "c4"]),
    ("region is null", ["c2"]),
    ("region is not null", ["c1", "c3", "c4"]),
    ("browsing_interest has 'electronics'", ["c1", "c3"]),
    ("not manual has 'blacklist'", ["c2", "c3", "c4"]),
    ("browsing_interest is null", ["c2", "c4"]),
    ("browsing_interest is not null", ["c1", "c3"]),
    ("net_sales_365d >= 10000", ["c1", "c3"]),
    ("net_sales_365d > 10000", ["c1"]),
    ("net_sales_365d < 10000", ["c2", "c4"]),
    ("net_sales_365d <= 10000", ["c2", "c3", "c4"]),
    ("net_sales_365d = 10000", ["c3"]),
    ("days_since_last_purchase < 30", ["c1"]),
    ("not days_since_last_purchase < 30", ["c2", "c3", "c4"]),  # never bought: not recent
    ("days_since_last_purchase in (3, 40)", ["c1", "c3"]),
    ("first_purchase_date < '2025-01-01'", ["c1"]),
    ("(region = 'east' or region = 'south') and not customer_grade = 'vip'", ["c3", "c4"]),
    ("region = 'east' or region = 'south' and customer_grade = 'vip'", ["c1", "c4"]),
])
def test_each_operator_selects_the_hand_worked_customers(shop, vocabulary, where, customers,
                                                         inline):
    assert vocabulary.check(parse(where), []) == []
    assert matched(shop, vocabulary, where, inline) == customers


def test_segments_priority_lists_and_in_segment(tmp_path, shop, vocabulary):
    text = ("segments:\n"
            + segment("east", "region = 'east'")
            + segment("east_or_books", "in_segment('east') or browsing_interest has 'books'")
            + segment("first", "customer_grade = 'vip'")
            + segment("second", "region = 'east' or region = 'south'")
            + segment("third", "customer_grade is not null")
            + "priority_lists:\n  - code: campaign\n    segments: [first, second, third]\n")
    file = load_segments(write(tmp_path, text), vocabulary)
    compiled = membership_sql(file, vocabulary, "profile", "tags")
    rows = shop.execute(compiled.sql, compiled.params).fetchall()
    members: dict[str, list[str]] = {}
    for code, customer in sorted(rows):
        members.setdefault(code, []).append(customer)
    assert members == {
        "east": ["c1", "c4"],
        "east_or_books": ["c1", "c3", "c4"],
        "first": ["c1"],
        "second": ["c3", "c4"],  # c1 is taken by first
        "third": ["c2"],  # c1, c3 are taken; c4 has no grade
    }


# --- hostile values --------------------------------------------------------------------------

HOSTILE = [
    "x' or '1'='1",
    "'); drop table profile; --",
    "x'; delete from tags where 'a'='a",
    "\\'; drop table profile; --",
    "$p1",
    "' union select customer_id from profile --",
]


@pytest.mark.parametrize("inline", [False, True])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_only_values(shop, value, inline):
    # a vocabulary that knows nothing of the values (as for category tags before a build), so
    # the hostile text reaches the compiler
    vocabulary = Vocabulary.from_catalog(read_catalog(), None)
    quoted = "'" + value.replace("'", "''") + "'"
    for where in (f"browsing_interest has {quoted}", f"manual has {quoted}",
                  f"region = 'east' and browsing_interest has {quoted}"):
        tree = parse(where)
        assert [n.value.value for n in _has_nodes(tree)] == [value]
        assert matched(shop, vocabulary, where, inline) == []
    compiled = filter_sql(parse(f"in_segment({quoted})"), vocabulary, "profile", "tags",
                          "(select 'c1' as customer_id, 'x' as segment_code)", inline=inline)
    assert shop.execute(compiled.sql, compiled.params or None).fetchall() == []
    assert shop.sql("select count(*) from profile").fetchone() == (4,)
    assert shop.sql("select count(*) from tags").fetchone() == (4,)


def _has_nodes(tree):
    from crm_tags.segments.expression import walk

    return [n for n in walk(tree) if isinstance(n, Has)]


def test_sql_literals():
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal(Decimal(10000)) == "10000"
    assert sql_literal(Decimal("-0.5")) == "-0.5"
    with pytest.raises(ValueError):
        sql_literal(Decimal("NaN"))
    with pytest.raises(ValueError):
        sql_literal("a\x00b")
    con = duckdb.connect()
    for value in HOSTILE:
        assert con.sql(f"select {sql_literal(value)}").fetchone() == (value,)


def test_a_hostile_segment_code_or_tag_never_reaches_the_sql(tmp_path, vocabulary):
    text = "segments:\n" + segment("x\"; drop table profile; --", "region = 'east'")
    [problem] = problems_of(tmp_path, text, vocabulary)
    assert "expected lower-case snake_case" in problem.message
    with pytest.raises(ExpressionError, match="values are in single quotes"):
        parse("\"region\"; drop table x = 'east'")


# --- the holdout hash ------------------------------------------------------------------------


def test_holdout_bucket_is_md5_of_salt_and_id():
    assert holdout_bucket("s", "a") == int(hashlib.md5(b"s:a").hexdigest()[:8], 16) % 10000
    con = duckdb.connect()
    # the dbt macro's DuckDB form gives the same buckets
    for salt, customer in [("win_back", "a1"), ("salt", "AC00000001"), ("", "x")]:
        [(bucket,)] = con.execute(
            "select cast(('0x' || substr(md5(cast(? || ':' || ? as varchar)), 1, 8)) as bigint)"
            " % 10000", [salt, customer]).fetchall()
        assert bucket == holdout_bucket(salt, customer)
