"""The Great Expectations quality gate: in DuckDB, single authoritative sources, write-audit-publish.

One clean synthetic landing zone is built and published once per test run (build_and_publish,
conftest.generated_shop); the corruption tests copy that warehouse into a candidate, damage it and run the audit+publish
step on it, so only the dirty-data and broken-delivery tests pay for another dbt build.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import (
    GENERATED_AS_OF,
    GENERATED_CUSTOMERS,
    LandingZone,
    b2c_shop,
    dirty_shop,
    generated_shop,
    query,
    without_data_tests,
    write_b2c_shop,
)

from crm_tags import PROJECT_DIR
from crm_tags.build import DbtError
from crm_tags.quality.gate import published_warehouse, run_gate, site_dir
from crm_tags.quality.lineage import load_manifest, tag_lineage
from crm_tags.quality.publish import build_and_publish, candidate_path, gate_and_publish

AS_OF = GENERATED_AS_OF
CUSTOMERS = GENERATED_CUSTOMERS  # enough for the distribution checks (min_customers = 100)


# ------------------------------------------------------------------------------------------
# GX over DuckDB: the cursor-after-close fix (no dbt needed).
# ------------------------------------------------------------------------------------------

@pytest.fixture
def tiny_db(tmp_path) -> Path:
    path = tmp_path / "tiny.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema core")
        con.execute("create table core.t as select range as id, range % 3 as v from range(10)")
    return path


# GX 1.24 deprecates table assets naming their schema; the warehouse has several in one file.
schema_name_deprecated = pytest.mark.filterwarnings(
    "ignore:`schema_name` is deprecated:DeprecationWarning")


def _validate(datasource, expectation):
    asset = datasource.add_table_asset("t", table_name="t", schema_name="core")
    batch = asset.add_batch_definition_whole_table("all").get_batch()
    return batch.validate(expectation)


@schema_name_deprecated
def test_stock_sql_datasource_loses_duckdb_results(tiny_db):
    """The root cause: GX reads the result after closing the connection, which empties it."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import sqlalchemy as sa

    engine = sa.create_engine(f"duckdb:///{tiny_db}")
    with engine.connect() as connection:
        result = connection.execute(sa.text("select count(*) from core.t"))
    assert result.fetchall() == []  # the close rolled back on the same DuckDB connection
    engine.dispose()

    context = gx.get_context(mode="ephemeral")
    stock = context.data_sources.add_sql("stock", connection_string=f"duckdb:///{tiny_db}")
    try:
        outcome = _validate(stock, gxe.ExpectColumnValuesToNotBeNull(column="id"))
    finally:
        stock.get_execution_engine().close()
    assert not outcome.success
    assert "list index out of range" in str(outcome.exception_info)


@schema_name_deprecated
def test_duckdb_datasource_validates_inside_duckdb(tiny_db):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from crm_tags.quality.duckdb_datasource import duckdb_url

    context = gx.get_context(mode="ephemeral")
    datasource = context.data_sources.add_duckdb(
        "warehouse", connection_string=duckdb_url(tiny_db),
        kwargs={"connect_args": {"read_only": True}})
    # schema-qualified table: columns reflect through DuckDB's information_schema
    passing = _validate(datasource, gxe.ExpectColumnValuesToNotBeNull(column="id"))
    assert passing.success and passing.result["element_count"] == 10
    failing = datasource.get_asset("t").get_batch_definition("all").get_batch().validate(
        gxe.ExpectColumnValuesToBeInSet(column="v", value_set=[0, 1]))
    assert not failing.success and failing.result["unexpected_count"] == 3
    rows = datasource.get_asset("t").get_batch_definition("all").get_batch().validate(
        gxe.UnexpectedRowsExpectation(unexpected_rows_query="select * from {batch} where v = 2"))
    assert rows.result["observed_value"] == 3
    datasource.get_execution_engine().close()


# ------------------------------------------------------------------------------------------
# The core checkpoint on a small hand-made warehouse (no dbt needed).
# ------------------------------------------------------------------------------------------

# Raw order lines: (order_id, line_no, quantity, unit_price, discount_amount, _delivered_at,
# _source_file, _source_row_number). Every way of getting "latest delivery wins" wrong changes
# the raw sum: older amount 10.00, fallback 5.00, earlier row 6.00, undated 100.00, earlier
# file 20.00, or the two identical unkeyed lines counted once.
RAW_ORDER_LINES = [
    ("O1", 1, 1, "10.00", None, "2025-06-01 08:00", "orders/order_items/f1.parquet", 1),
    ("O1", 1, 1, "12.00", None, "2025-06-02 08:00", "orders/order_items/f2.parquet", 1),
    ("O1", 2, 5, "1.00", None, "2025-06-01 08:00", "orders/order_items/f1.parquet", 2),
    # the latest version has no quantity: the line counts nothing, not its older 5.00
    ("O1", 2, None, "1.00", None, "2025-06-02 08:00", "orders/order_items/f2.parquet", 2),
    # same file: the later row wins; an undated delivery is older than any dated one
    ("O2", 1, 2, "3.50", "1.00", "2025-06-02 08:00", "orders/order_items/f2.parquet", 3),
    ("O2", 1, 2, "4.00", "1.00", "2025-06-02 08:00", "orders/order_items/f2.parquet", 4),
    ("O2", 1, 1, "100.00", None, None, "orders/order_items/f0.parquet", 1),
    # delivered at the same time: the later file wins
    ("O2", 2, 1, "20.00", None, "2025-06-02 08:00", "orders/order_items/f2.parquet", 5),
    ("O2", 2, 1, "30.00", None, "2025-06-02 08:00", "orders/order_items/f2b.parquet", 1),
    ("O3", 1, 1, "40.00", None, "2025-06-01 08:00", "orders/order_items/f1.parquet", 4),
    # unkeyed (blank order_id, no line_no): each counts once, and each was quarantined
    (" ", 1, 1, "8.00", None, "2025-06-01 08:00", "orders/order_items/f1.parquet", 3),
    (" ", 1, 1, "8.00", None, "2025-06-02 08:00", "orders/order_items/f2.parquet", 7),
    ("O4", None, 1, "8.00", None, "2025-06-02 08:00", "orders/order_items/f2.parquet", 6),
]
# raw 12 + 0 + 7 + 30 + 40 + 3 * 8 = 113.00, quarantined 24.00: the kept lines hold 89.00
KEPT_ORDER_LINES = [("O1", 1, "C1", "12.00", "2.00"), ("O1", 2, "C1", None, None),
                    ("O2", 1, "C2", "7.00", "1.00"), ("O2", 2, "C2", "30.00", "3.00"),
                    ("O3", 1, "C3", "40.00", "4.00")]


def write_core_warehouse(path: Path) -> Path:
    """A warehouse with just what the core checkpoint and the gate's facts read: three
    customers, their orders and lines, the raw order lines above and their quarantine."""
    with duckdb.connect(str(path)) as con:
        for schema in ("core", "raw_orders", "audit", "marts", "reference"):
            con.execute(f"create schema {schema}")
        con.execute("create table audit.reconciliation as select date '2025-06-30' as as_of_date")
        con.execute("create table reference.tag_definitions (tag_code varchar, tag_level varchar,"
                    " is_multi_valued boolean, authoritative_source varchar, source_tables varchar)")
        con.execute("create table reference.tag_value_definitions (tag_code varchar,"
                    " tag_value varchar, sort_order integer)")
        con.execute("create table core.dim_customers (customer_id varchar)")
        con.execute("insert into core.dim_customers values ('C1'), ('C2'), ('C3')")
        con.execute("create table marts.customer_profile as select * from core.dim_customers")
        for table in ("dim_contacts", "fct_tickets", "fct_campaign_events", "fct_web_events",
                      "fct_manual_tag_actions"):
            con.execute(f"create table core.{table} as select * from core.dim_customers")
        con.execute("create table core.fct_order_lines (order_id varchar, line_no integer,"
                    " customer_id varchar, net_sales decimal(18, 2), profit decimal(18, 2))")
        con.executemany("insert into core.fct_order_lines values (?, ?, ?, ?, ?)",
                        KEPT_ORDER_LINES)
        con.execute("""create table core.fct_orders as
            select order_id, any_value(customer_id) as customer_id, count(*) as line_count,
                sum(net_sales) as net_sales, sum(profit) as profit
            from core.fct_order_lines group by order_id""")
        con.execute("create table raw_orders.order_items (order_id varchar, line_no integer,"
                    " quantity integer, unit_price decimal(18, 2), discount_amount decimal(18, 2),"
                    " _delivered_at timestamp, _source_file varchar, _source_row_number bigint)")
        con.executemany("insert into raw_orders.order_items values (?, ?, ?, ?, ?, ?, ?, ?)",
                        RAW_ORDER_LINES)
        con.execute("""create table audit.quarantine_rows as
            select 'orders/order_items' as source_table, _source_file as source_file,
                _source_row_number as source_row_number
            from raw_orders.order_items where trim(order_id) = '' or line_no is null""")
    return path


def _amounts_problems(warehouse: Path) -> list[str]:
    from crm_tags.quality.gate import load_checkpoint_module

    suite = load_checkpoint_module("core").order_amounts_suite("duckdb")
    return [row[-1] for row in query(warehouse, suite.asset.sql)]


def test_amounts_reconcile_takes_the_latest_version_of_each_raw_line(tmp_path):
    warehouse = write_core_warehouse(tmp_path / "warehouse.duckdb")
    assert _amounts_problems(warehouse) == []
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update core.fct_order_lines set net_sales = 41 where order_id = 'O3'")
    assert _amounts_problems(warehouse) == [
        "core.fct_orders sums to net sales 89.00 / profit 10.00, its lines to 90.00 / 10.00",
        ("orders/order_items: raw net sales 113.00 - quarantined 24.00 = 89.00, but the kept "
         "lines (core.fct_order_lines) sum to 90.00: 1.00 CNY appeared or vanished"),
    ]


def test_history_matches_tags_counts_rows_missing_on_either_side(tmp_path):
    """Row for row, duplicates included (as `except all` both ways): on the run date the
    history holds one of the two identical mart rows, a period the mart does not hold, and a
    period that ended before the run date (not compared)."""
    from crm_tags.quality.gate import load_checkpoint_module

    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        for holder, mart, history in (("customer_id", "customer_tags", "customer_tag_history"),
                                      ("contact_id", "contact_tags", "contact_tag_history")):
            con.execute(f"create table marts.{mart} (tag_code varchar, tag_value varchar,"
                        f" {holder} varchar, as_of_date date)")
            con.execute(f"create table marts.{history} (tag_code varchar, tag_value varchar,"
                        f" {holder} varchar, valid_from date, valid_to date)")
        con.execute("""insert into marts.customer_tags values
            ('recency', 'new', 'C1', '2025-06-30'), ('recency', 'new', 'C1', '2025-06-30'),
            ('recency', 'old', 'C2', '2025-06-30'), ('grade', 'vip', 'C1', '2025-06-23')""")
        con.execute("""insert into marts.customer_tag_history values
            ('recency', 'new', 'C1', '2025-06-01', null),
            ('recency', 'old', 'C2', '2025-06-01', '2025-06-30'),
            ('recency', 'new', 'C3', '2025-06-30', null),
            ('grade', 'vip', 'C1', '2025-06-23', null), ('grade', 'vip', 'C9', '2025-01-01',
            '2025-06-01')""")
        con.execute("insert into marts.contact_tags values ('role', 'buyer', 'P1', '2025-06-30')")
        con.execute("insert into marts.contact_tag_history values"
                    " ('role', 'buyer', 'P1', '2025-06-30', null)")
    suite = load_checkpoint_module("tag_marts").history_matches_tags_suite()
    assert [row[-1] for row in query(warehouse, suite.asset.sql)] == [
        ("marts.customer_tag_history: 1 rows of recency on the tag's run date are not in "
         "marts.customer_tags, e.g. C3 = new"),
        ("marts.customer_tag_history: 2 rows of recency on the tag's run date are not in the "
         "history, e.g. C1 = new"),
    ]


@schema_name_deprecated
def test_a_check_whose_query_fails_blocks_alone_and_the_next_checks_run(tmp_path):
    """A query that fails inside DuckDB (here a fact view that cannot convert a value; at 4M
    customers it was the memory limit) aborts the connection's transaction: the gate rolls it
    back, so only that check is unevaluated and the checks after it run and pass."""
    warehouse = write_core_warehouse(tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table core.fct_web_events")
        con.execute("create table core.web_visits as select 'not a number' as visitor")
        con.execute("create view core.fct_web_events as select 'C' || "
                    "cast(cast(visitor as integer) as varchar) as customer_id from core.web_visits")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"nodes": {}, "sources": {}}))
    result = run_gate(warehouse, manifest=manifest, runtime_dir=tmp_path / "gx",
                      checkpoints=["core"], build_docs=False)
    assert not result.passed
    [failure] = result.failures
    assert failure.suite == "core.referential_integrity"
    assert "could not be evaluated" in failure.description
    assert "Conversion Error" in failure.details
    evaluated = {suite.suite: suite for suite in result.suites}
    assert set(evaluated) == {
        "core.fct_orders", "core.fct_order_lines", "core.fct_orders.unique_key",
        "core.fct_order_lines.unique_key", "core.referential_integrity", "core.amounts_reconcile"}
    for name, suite in evaluated.items():
        if name != "core.referential_integrity":
            assert suite.evaluated > 0 and suite.ok, name
    assert "aborted" not in result.report()


# ------------------------------------------------------------------------------------------
# The gate on built warehouses.
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A clean generated landing zone, built, gated and published once (conftest's
    generated_shop, shared with test_privacy.py and test_bi_readers.py): a copy of its own."""
    root, result = generated_shop(tmp_path_factory)
    return root, root / "warehouse.duckdb", result


def _snapshot(warehouse: Path) -> list:
    return query(warehouse, "select * from marts.customer_tags order by all") + query(
        warehouse, "select * from marts.customer_profile order by customer_id")


def _candidate_from(warehouse: Path) -> Path:
    """A copy of the published warehouse to damage and audit."""
    candidate = candidate_path(warehouse)
    shutil.copyfile(warehouse, candidate)
    return candidate


slow = pytest.mark.slow


@slow
def test_clean_data_passes_and_is_published(published):
    _, warehouse, result = published
    assert result.published, result.report()
    gate = result.gate
    assert gate.passed and not gate.failures
    checkpoints = {suite.checkpoint for suite in gate.suites}
    assert checkpoints == {"landing_zone", "core", "tag_marts", "authoritative_sources"}
    assert all(suite.evaluated > 0 for suite in gate.suites)
    assert gate.data_docs and gate.data_docs.exists()
    assert "Quality gate PASSED" in gate.report()
    # absolute bounds are opt-in (none in gate.yml); the swing check needs a published run
    assert "tag_marts.distribution_bounds" not in gate.report()
    assert any(note.startswith("tag distribution swing not checked: this warehouse has no "
                               "published run to compare with yet") for note in gate.notes)
    # the distribution was recorded for the next run's swing check
    assert query(warehouse, "select count(distinct run_id) from audit.tag_distribution_history") == [(1,)]
    assert query(warehouse, "select run_id from audit.published_run") == [(result.run_id,)]
    assert not candidate_path(warehouse).exists()


@slow
def test_corrupted_marts_fail_and_the_last_good_marts_stay(published):
    root, warehouse, _ = published
    before = _snapshot(warehouse)
    candidate = _candidate_from(warehouse)
    with duckdb.connect(str(candidate)) as con:
        victim = con.execute("select min(customer_id) from marts.customer_tags "
                             "where tag_code = 'industry'").fetchone()[0]
        # marts.customer_tags is a view: corrupt the rows it shows
        con.execute("update intermediate.int_customer_tag_values set tag_value = 'gaming' "
                    "where tag_code = 'industry' and customer_id = ?", [victim])
        # a live customer vanishes from the profile
        missing = con.execute("select max(customer_id) from marts.customer_profile").fetchone()[0]
        con.execute("delete from marts.customer_profile where customer_id = ?", [missing])

    result = gate_and_publish(candidate, warehouse, manifest=root / "target" / "manifest.json",
                              runtime_dir=root / "gx")
    assert not result.published
    messages = "\n".join(str(f) for f in result.gate.failures)
    assert f"industry = 'gaming' is not one of the catalog's codes (1 rows, e.g. {victim})" in messages
    assert (f"customer {missing} is a live CRM account but missing from marts.customer_profile"
            in messages)
    assert "Traceback" not in messages
    # BI still reads the last good marts; the bad candidate is kept aside for inspection
    assert _snapshot(warehouse) == before
    assert result.candidate and result.candidate.exists() and not candidate.exists()
    assert "NOT published" in result.report()


@slow
def test_tag_model_rewired_to_the_campaign_feed_fails_the_lineage_check(published):
    root, warehouse, _ = published
    manifest = load_manifest(root / "target" / "manifest.json")
    catalog = dict(query(warehouse, "select tag_code, source_tables from reference.tag_definitions"))
    assert [t.problem for t in tag_lineage(manifest, catalog) if t.problem] == []

    rewired = copy.deepcopy(manifest)
    rewired["nodes"]["model.crm_tags.tag_customer_grade"]["depends_on"]["nodes"].append(
        "model.crm_tags.stg_campaigns__attributed_orders")
    problems = [t.problem for t in tag_lineage(rewired, catalog) if t.problem]
    assert problems == [
        "tag customer_grade (tag_customer_grade) reads campaigns.attributed_orders, which its "
        "catalog entry does not declare; catalog source_tables: " + " ".join(sorted(
            set(catalog["customer_grade"].split()) - {"crm.accounts", "crm.contacts"}))
    ]

    path = root / "rewired_manifest.json"
    path.write_text(json.dumps(rewired))
    before = _snapshot(warehouse)
    result = gate_and_publish(_candidate_from(warehouse), warehouse,
                              manifest=path, runtime_dir=root / "gx")
    assert not result.published
    assert [f.suite for f in result.gate.failures] == ["authoritative_sources.lineage"]
    assert problems[0] in result.gate.failures[0].examples
    assert _snapshot(warehouse) == before


@slow
def test_revenue_taken_from_the_campaign_feed_fails_the_reconciliation(published):
    root, warehouse, _ = published
    candidate = _candidate_from(warehouse)
    with duckdb.connect(str(candidate)) as con:
        customer, feed_revenue = con.execute("""
            select account_id, sum(attributed_revenue) from staging.stg_campaigns__attributed_orders
            where rejection_reason is null and date '2025-06-30' - cast(conversion_ts as date) between 0 and 364
            group by account_id
            having sum(attributed_revenue) <> (select coalesce(sum(net_sales), 0) from core.fct_orders
                where customer_id = account_id and is_purchase
                and date '2025-06-30' - order_date between 0 and 364)
            order by account_id limit 1
        """).fetchone()
        con.execute("update marts.customer_profile set net_sales_365d = ? where customer_id = ?",
                    [feed_revenue, customer])
    result = gate_and_publish(candidate, warehouse, manifest=root / "target" / "manifest.json",
                              runtime_dir=root / "gx")
    assert not result.published
    by_suite = {f.suite: f for f in result.gate.failures}
    assert f"customer {customer}: net_sales_365d {feed_revenue} follows the campaign feed" in \
        by_suite["authoritative_sources.not_the_campaign_feed"].examples[0]
    assert "authoritative_sources.order_system_figures" in by_suite


def _second_run(published, tmp_path: Path, change, policy: Path | None = None):
    """Publish a changed copy of the published warehouse over a copy of it (the next run of that
    warehouse, compared with its last publish); return the PublishResult and the BI file."""
    root, warehouse, _ = published
    bi = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, bi)  # keep the module's warehouse for the other tests
    candidate = candidate_path(bi)
    shutil.copyfile(warehouse, candidate)
    with duckdb.connect(str(candidate)) as con:
        change(con)
    return gate_and_publish(candidate, bi, manifest=root / "target" / "manifest.json",
                            runtime_dir=tmp_path / "gx", policy=policy), bi


@slow
def test_the_next_run_is_compared_with_the_last_publish_and_passes(published, tmp_path):
    result, bi = _second_run(published, tmp_path, lambda con: None)
    assert result.published, result.report()
    assert "tag_marts.distribution_swing" in {suite.suite for suite in result.gate.suites}
    assert query(bi, "select count(distinct run_id) from audit.tag_distribution_history") == [(2,)]


def move_recency(con):
    """A run that moved every over_180d customer to within_30d: the tags, and the history's
    open periods as that run would have written them (tag_marts.history_matches_tags)."""
    con.execute("update intermediate.int_customer_tag_values set tag_value = 'within_30d' "
                "where tag_code = 'recency' and tag_value = 'over_180d'")
    con.execute("update marts.customer_tag_history set tag_value = 'within_30d' "
                "where tag_code = 'recency' and tag_value = 'over_180d' and valid_to is null")


@slow
def test_a_sudden_swing_blocks_publishing(published, tmp_path):
    before = _snapshot(published[1])
    result, bi = _second_run(published, tmp_path, move_recency)
    assert not result.published
    [swing] = result.gate.failures
    assert swing.suite == "tag_marts.distribution_swing"
    assert swing.description.startswith("No tag value's share of customers swings suddenly "
                                        "against the last published run (limit 10% points")
    assert any(e.startswith("recency:within_30d moved from") and e.endswith(
        "more than 10 percentage points") for e in swing.examples)
    assert _snapshot(bi) == before  # BI keeps the last good marts
    assert query(bi, "select count(distinct run_id) from audit.tag_distribution_history") == [(1,)]


def _policy(tmp_path: Path, **distribution) -> Path:
    """A copy of expectations/gate.yml with `distribution` settings replaced."""
    policy = yaml.safe_load((PROJECT_DIR / "expectations" / "gate.yml").read_text())
    policy["distribution"].update(distribution)
    path = tmp_path / "gate.yml"
    path.write_text(yaml.safe_dump(policy))
    return path


@slow
def test_an_intended_change_is_published_with_a_higher_limit_for_its_tag(published, tmp_path):
    policy = _policy(tmp_path, swing={"limit": 0.10, "per_tag": {"recency": 1.0}})
    result, _ = _second_run(published, tmp_path, move_recency, policy=policy)
    assert result.published, result.report()


@slow
def test_an_opt_in_bound_blocks_and_shows_the_measured_share(published, tmp_path):
    warehouse = published[1]
    [(vip_share,)] = query(warehouse, """
        select count(*) filter (where customer_grade = 'vip') / count(*)
        from marts.customer_profile""")
    assert 0 < vip_share < 0.9
    policy = _policy(tmp_path, bounds={"customer_grade": {"vip": {"max": 0.001}},
                                       "lifecycle_stage": {"*": {"min": 1.0}}})
    result, _ = _second_run(published, tmp_path, lambda con: None, policy=policy)
    assert not result.published
    [bound] = result.gate.failures
    assert (bound.suite, bound.description) == (
        "tag_marts.distribution_bounds",
        "The share of customers with customer_grade = vip is at most 0.1% (expectations/gate.yml).")
    assert bound.details == f"measured {vip_share:.1%} (expected at most 0.1%)"
    # the bound that holds is measured too (Data Docs show it)
    [held] = [c for c in result.gate.checks if "holding any lifecycle_stage" in c.description]
    assert (held.status, held.observed) == ("passed", "measured 100.0% (expected at least 100.0%)")


@slow
def test_a_bound_the_catalog_cannot_check_blocks_naming_it(published, tmp_path):
    root, warehouse, _ = published
    policy = _policy(tmp_path, bounds={"company_size": {"tiny": {"max": 0.5}},
                                       "region": {"*": [0.5, 1.0]}})
    result = run_gate(warehouse, manifest=root / "target" / "manifest.json",
                      runtime_dir=tmp_path / "gx", policy=policy, build_docs=False)
    [finding] = result.failures
    assert finding.suite == "tag_marts.distribution_bounds"
    assert sorted(finding.examples) == [
        ("distribution.bounds.company_size.tiny: company_size = tiny is not an account-level "
         "tag value of the catalog (nor '*', any value of the tag)"),
        ("distribution.bounds.region.*: must be {min: share, max: share} (either may be left "
         "out; shares between 0 and 1), not [0.5, 1.0]"),
    ]


@slow
def test_a_small_shop_skips_the_distribution_checks_saying_why(published, tmp_path):
    policy = _policy(tmp_path, min_customers=CUSTOMERS + 1,
                     bounds={"customer_grade": {"vip": {"max": 0.001}}})
    result, _ = _second_run(published, tmp_path, lambda con: None, policy=policy)
    assert result.published, result.report()
    few = (f"shares of so few customers move by chance; distribution.min_customers = "
           f"{CUSTOMERS + 1} in expectations/gate.yml")
    customers = result.gate.customers
    assert f"tag distribution bounds not checked: {customers} customers ({few})" in result.gate.notes
    assert f"tag distribution swing not checked: {customers} customers ({few})" in result.gate.notes


@slow
@pytest.mark.parametrize("provinces", [False, True], ids=["no_province", "b2c_only"])
def test_a_consumer_shop_passes_the_default_gate(provinces, tmp_path, tmp_path_factory):
    """Shops unlike the generator's: every account B2C (no company_size at all), small baskets
    (no VIP), and without provinces no region. The default gate fits them: no absolute bound,
    and from the second run on the swing check."""
    if provinces:  # built and published once per run, shared with test_browser.py
        root, first = b2c_shop(tmp_path_factory)
    else:
        root = tmp_path
        write_b2c_shop(LandingZone(root / "raw"), AS_OF, provinces=False)
        first = build_and_publish(root / "raw", root / "warehouse.duckdb", AS_OF,
                                  target_path=root / "target", runtime_dir=root / "gx")
    warehouse = root / "warehouse.duckdb"
    assert first.published, first.report()
    # not vacuous: enough customers for the distribution checks, and the shop is unusual
    [(customers, company_size, vip, region)] = query(warehouse, """
        select count(*), count(company_size), count(*) filter (where customer_grade = 'vip'),
            count(region)
        from marts.customer_profile""")
    assert customers >= 100 and company_size == 0 and vip == 0
    assert (region == 0) is (not provinces)

    candidate = candidate_path(warehouse)
    shutil.copyfile(warehouse, candidate)
    second = gate_and_publish(candidate, warehouse, manifest=root / "target" / "manifest.json",
                              runtime_dir=root / "gx")
    assert second.published, second.report()
    assert "tag_marts.distribution_swing" in {suite.suite for suite in second.gate.suites}


def _gate_a_changed_copy(published, tmp_path: Path, change):
    """Gate a copy of the published warehouse after `change(connection)`; return what the
    change returned and the gate's result."""
    root, warehouse, _ = published
    candidate = tmp_path / "candidate.duckdb"
    shutil.copyfile(warehouse, candidate)
    with duckdb.connect(str(candidate)) as con:
        changed = change(con)
    return changed, run_gate(candidate, manifest=root / "target" / "manifest.json",
                             runtime_dir=tmp_path / "gx", build_docs=False)


@slow
def test_a_duplicated_fact_line_fails_naming_its_key(published, tmp_path):
    def duplicate_a_line(con):
        key = con.execute(
            "select order_id, line_no from core.fct_order_lines order by all limit 1").fetchone()
        con.execute("insert into core.fct_order_lines select * from core.fct_order_lines"
                    " where order_id = ? and line_no = ?", list(key))
        return key

    (order_id, line_no), result = _gate_a_changed_copy(published, tmp_path, duplicate_a_line)
    [finding] = [f for f in result.failures if f.suite == "core.fct_order_lines.unique_key"]
    assert finding.description == \
        "core.fct_order_lines: no duplicate (order_id, line_no) in the whole table."
    assert finding.examples == [
        f"core.fct_order_lines: (order_id, line_no) = ({order_id}, {line_no}) is held by 2 rows"]


@slow
def test_a_daily_only_refresh_keeps_the_weekly_grade_of_its_run_and_passes(published, tmp_path):
    """The daily schedule refreshes the daily tags only: the weekly grade keeps its run date in
    marts.customer_tags, and the gate does not hold it against a week's newer orders."""
    from crm_tags.bench import daily_job_selection
    from crm_tags.build import build

    root, warehouse, _ = published
    week_later = "2025-07-07"
    candidate = tmp_path / "candidate.duckdb"
    shutil.copyfile(warehouse, candidate)
    build(root / "raw", candidate, week_later,
          select=" ".join(daily_job_selection(root / "target" / "manifest.json")),
          target_path=tmp_path / "target", quiet=True, unit_tests=False)
    as_of = dict(query(candidate, """
        select refresh_frequency, string_agg(distinct cast(as_of_date as varchar), ',')
        from marts.customer_tags group by refresh_frequency"""))
    assert as_of == {"daily": week_later, "weekly": AS_OF, "monthly": AS_OF}
    # not vacuous: a week on, some recency (daily) moved while the weekly grade's R did not
    [(moved,)] = query(candidate, """
        select count(*) from marts.customer_profile
        where (recency = 'within_30d') <> (r_score = 5) and r_score > 0""")
    assert moved > 0
    result = run_gate(candidate, manifest=tmp_path / "target" / "manifest.json",
                      runtime_dir=tmp_path / "gx", build_docs=False)
    assert result.passed, result.report()


@slow
def test_a_profile_metric_that_disagrees_with_the_order_system_fails(published, tmp_path):
    def shift_a_last_purchase(con):
        victim, days = con.execute(
            "select customer_id, days_since_last_purchase from marts.customer_profile"
            " where days_since_last_purchase is not null order by customer_id limit 1").fetchone()
        con.execute("update marts.customer_profile set days_since_last_purchase = ? "
                    "where customer_id = ?", [days + 40, victim])
        return victim, days

    (victim, days), result = _gate_a_changed_copy(published, tmp_path, shift_a_last_purchase)
    [finding] = result.failures
    assert finding.suite == "authoritative_sources.order_system_figures"
    assert finding.details == "1 problem, e.g.:"
    assert finding.examples == [(f"customer {victim}: days_since_last_purchase is {days + 40} "
                                 f"in the profile but {days} in the order system")]


@slow
def test_a_tag_row_without_evidence_fails_the_dbt_test(published, tmp_path):
    """Structure is dbt's (tests/dbt/assert_tag_rows_carry_evidence.sql): a blank evidence and
    a missing one, in either mart, are one failing row each."""
    from crm_tags.build import run_dbt

    root, warehouse, _ = published
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, copy)

    # it passed in the shop's build (which published it)
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    assert [r["status"] for r in results
            if r["unique_id"].startswith("test.crm_tags.assert_tag_rows_carry_evidence")] == ["pass"]
    with duckdb.connect(str(copy)) as con:
        con.execute("""update intermediate.int_customer_tag_values set evidence = ' '
            where (customer_id, tag_code) = (select (min(customer_id), 'recency')
                from intermediate.int_customer_tag_values where tag_code = 'recency')""")
        contact = con.execute("select min(contact_id) from marts.contact_tags").fetchone()[0]
        con.execute("update marts.contact_tags set evidence = null where contact_id = ?", [contact])
    with pytest.raises(DbtError, match=r"FAIL 2 assert_tag_rows_carry_evidence"):
        run_dbt(["test", "--select", "assert_tag_rows_carry_evidence"], root / "raw", copy, AS_OF,
                tmp_path / "target", quiet=True)


@pytest.fixture(scope="module")
def dirty_published(tmp_path_factory):
    """A dirty generated landing zone (every kind of generator dirt), built and published once
    per run (conftest's dirty_shop, shared with test_incremental.py): a copy of its own."""
    root, (result, stats) = dirty_shop(tmp_path_factory)
    return root, root / "warehouse.duckdb", result, stats


@slow
def test_dirty_data_is_quarantined_and_the_gate_passes(dirty_published):
    """Every kind of dirt the generator writes is quarantined with its reason, or handled (and
    counted) where the spec says so; nothing is lost and the gate passes."""
    _, warehouse, result, stats = dirty_published
    assert result.published, result.report()

    reasons = {r[0] for r in query(warehouse, "select distinct rejection_reason from audit.quarantine_rows")}
    expected_reasons = {
        "null_key": {"missing order_id", "missing account_id", "missing event_id"},
        "null_fk": {"missing product_id", "missing campaign_id"},
        "unknown_fk": {"unknown account_id", "unknown product_id", "unknown campaign_id"},
        "negative_value": {"negative quantity", "negative unit_price"},
        "future_date": {"order_ts after the run date", "opened_at after the run date",
                        "event_ts after the run date"},
        "unknown_enum": {"unknown status", "unknown channel", "unknown event_type"},
    }
    for kind, wanted in expected_reasons.items():
        assert stats["dirt"][kind], kind  # the generator did write this dirt
        assert wanted <= reasons, (kind, wanted - reasons)
    # duplicates and re-deliveries: superseded (the latest wins), counted, and the books balance
    superseded, balanced = query(
        warehouse, "select sum(duplicates_superseded), bool_and(is_balanced) from audit.reconciliation")[0]
    assert balanced
    assert superseded >= sum(stats["dirt"]["duplicate_row"].values()) + sum(
        stats["dirt"]["redelivered"].values())
    # an email shared by two accounts attributes to nobody, and is counted
    ambiguous = query(warehouse, """
        select (select count(*) from core.fct_tickets where attribution_status = 'ambiguous_email')
             + (select count(*) from core.fct_campaign_events where attribution_status = 'ambiguous_email')
    """)[0][0]
    assert stats["dirt"]["ambiguous_email"] and ambiguous > 0
    # unparseable free text is kept and mapped to 'other' (industry), never dropped
    assert stats["dirt"]["unparseable_text"]
    assert query(warehouse, "select count(*) from marts.customer_tags where tag_code = 'industry' "
                            "and tag_value = 'other'")[0][0] > 0


@slow
def test_a_delivery_error_stops_the_build_naming_table_file_and_column(published, tmp_path):
    import pyarrow.parquet as pq

    root, warehouse, _ = published
    bi = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, bi)
    before = _snapshot(bi)
    raw = tmp_path / "raw"
    shutil.copytree(root / "raw", raw)
    orders = min((raw / "orders" / "orders").glob("*.parquet"))
    broken = raw / "orders" / "orders" / "broken_export.parquet"
    pq.write_table(pq.read_table(orders).slice(0, 5).drop(["status"]), broken)

    with pytest.raises(DbtError) as error:
        build_and_publish(raw, bi, AS_OF, target_path=tmp_path / "t", runtime_dir=tmp_path / "gx")
    message = str(error.value)
    assert "orders/orders" in message and "broken_export.parquet" in message and "'status'" in message
    assert _snapshot(bi) == before  # BI keeps the last good marts


@slow
def test_dirt_above_the_budget_stops_the_gate(dirty_published, tmp_path):
    """Quarantining is for dirt; a delivery that is mostly quarantined means a broken export,
    and stops the gate with a message that says which table, how much and why."""
    root, warehouse, _, _ = dirty_published
    bi = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, bi)
    before = _snapshot(bi)
    policy = tmp_path / "gate.yml"
    strict = yaml.safe_load((PROJECT_DIR / "expectations" / "gate.yml").read_text())
    strict["quarantine"] = {"max_rejected_share": 1.0, "per_table": {"orders/orders": 0.01}}
    policy.write_text(yaml.safe_dump(strict))
    candidate = candidate_path(bi)
    shutil.copyfile(warehouse, candidate)

    result = gate_and_publish(candidate, bi, manifest=root / "target" / "manifest.json",
                              runtime_dir=tmp_path / "gx", policy=policy)
    assert not result.published
    assert {f.suite for f in result.gate.failures} == {"landing_zone.quarantine_budget"}
    [example] = result.gate.failures[0].examples
    assert example.startswith("orders/orders: ") and "delivered rows" in example
    assert "were quarantined, above the budget of 1%" in example
    assert "most common reason: " in example and "see audit.quarantine_rows" in example
    assert _snapshot(bi) == before


@slow
def test_each_warehouse_gets_its_own_data_docs_site_listing_its_runs(published, tmp_path):
    root, warehouse, _ = published
    other = tmp_path / "other" / "warehouse.duckdb"
    other.parent.mkdir()
    shutil.copyfile(warehouse, other)
    manifest, runtime = root / "target" / "manifest.json", tmp_path / "gx"
    first, second = (run_gate(warehouse, manifest=manifest, runtime_dir=runtime) for _ in range(2))
    elsewhere = run_gate(other, manifest=manifest, runtime_dir=runtime)
    assert first.data_docs == second.data_docs != elsewhere.data_docs
    assert first.data_docs == site_dir(runtime, warehouse) / "data_docs" / "index.html"
    index = first.data_docs.read_text(encoding="utf-8")
    # both runs of this warehouse are listed and linked, the other warehouse's run is not
    for run in (first, second):
        assert f'href="runs/{run.data_docs_run.name}"' in index and run.data_docs_run.exists()
    assert elsewhere.data_docs_run.name not in index and str(other) not in index
    assert str(warehouse) in index


@slow
def test_validate_cli_exit_code(published, capsys):
    from crm_tags.cli import main

    root, warehouse, _ = published
    code = main(["validate", "--warehouse", str(warehouse), "--manifest",
                 str(root / "target" / "manifest.json"), "--runtime-dir", str(root / "gx"),
                 "--no-docs"])
    assert code == 0
    assert "Quality gate PASSED" in capsys.readouterr().out


def test_each_warehouse_has_its_own_site_and_a_candidate_runs_on_its_warehouse_site(tmp_path):
    runtime = tmp_path / "gx"
    warehouse, other = tmp_path / "bi" / "warehouse.duckdb", tmp_path / "bench" / "warehouse.duckdb"
    assert published_warehouse(candidate_path(warehouse)) == warehouse.resolve()
    assert site_dir(runtime, candidate_path(warehouse)) == site_dir(runtime, warehouse)
    assert site_dir(runtime, warehouse) != site_dir(runtime, other)
    assert site_dir(runtime, warehouse).parent == runtime
    assert site_dir(runtime, warehouse).name.startswith("warehouse-")


@slow
def test_validate_build_and_publish_cli_publishes(published, tmp_path, capsys):
    from crm_tags.cli import main

    root, warehouse, _ = published
    bi = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, bi)
    # the same deliveries and run date as the shop's build, which ran the data tests
    with without_data_tests():
        code = main(["validate", "--build-and-publish", "--raw-dir", str(root / "raw"),
                     "--warehouse", str(bi), "--as-of", AS_OF, "--runtime-dir", str(tmp_path / "gx")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Quality gate PASSED" in out and f"Published to {bi}" in out


def test_the_gate_never_imports_write_audit_publish():
    """One way only: crm_tags.quality.publish imports the gate, never the reverse, not even
    lazily inside a function (the `validate` CLI, which uses both, is its own module)."""
    import ast

    from crm_tags import quality

    gate_modules = ["gate", "spec", "distribution", "lineage", "duckdb_datasource", "data_docs"]
    for name in gate_modules:
        tree = ast.parse((Path(quality.__file__).parent / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        assert not {"crm_tags.quality.publish", "crm_tags.quality.validate"} & imported, name


def test_a_warehouse_the_gate_cannot_read_blocks_and_data_docs_show_why(tmp_path):
    import re

    warehouse = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()  # no tables at all
    result = run_gate(warehouse, manifest=tmp_path / "no_manifest.json",
                      runtime_dir=tmp_path / "gx")
    assert not result.passed
    [finding] = result.failures
    assert finding.description.startswith("The gate could not read the warehouse")
    page = result.data_docs_run.read_text(encoding="utf-8")
    assert "The gate could not read the warehouse" in page and "not evaluated" in page
    # every anchor the page links to is on it
    for fragment in re.findall(r'href="#([^"]+)"', page):
        assert f'id="{fragment}"' in page, fragment
    assert f'href="runs/{result.data_docs_run.name}"' in result.data_docs.read_text()


def test_missing_warehouse_blocks(tmp_path):
    result = run_gate(tmp_path / "nope.duckdb", runtime_dir=tmp_path / "gx", build_docs=False)
    assert not result.passed and "missing" in str(result.failures[0])
