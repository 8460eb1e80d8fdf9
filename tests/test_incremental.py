"""Incremental refreshes over several days give exactly the tables of a full rebuild.

One warehouse (conftest's dirty generated shop, built and published) is refreshed day by day
(the base models load only the new delivery files); after every day a second warehouse is built from scratch on the same landing
zone and run date, and every published and audit table must match row for row. Each day brings
a normal generated delivery plus the cases that break naive incremental logic: a re-delivered
order line, an order whose account arrives a day late, an order dated after the run date, a
stale re-delivery that must lose, an order moved to another account and day, a whole file
delivered twice, an account deleted later, and campaign and web events whose stored verdict
changes without a new version (dated after the run date, or of a campaign that arrives late).
Two days: the first brings what the second resolves (the late account and campaign, the future
day) and the file the second delivers again; a refresh on top of a refresh is the second's.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import (
    GENERATED_AS_OF,
    LandingZone,
    build_reference,
    copy_project,
    dirty_shop,
    generated_shop,
    query,
)

from crm_tags.bench import write_daily_delivery
from crm_tags.build import DbtError, build, run_dbt

AS_OF = dt.date.fromisoformat(GENERATED_AS_OF)
COMPARED = [
    "marts.customer_tags", "marts.customer_profile", "marts.contact_tags",
    "audit.quarantine_rows", "audit.reconciliation",
    # the incremental layers themselves, without their run bookkeeping (when a row was
    # loaded or judged), as sets
    "core.fct_orders", "core.fct_order_lines",
    "intermediate.int_customer_daily_purchases", "intermediate.int_customer_daily_category_sales",
    "staging.stg_crm__accounts", "staging.stg_orders__orders", "staging.stg_orders__order_items",
    "staging.stg_support__tickets", "staging.stg_campaigns__campaign_events",
    "staging.stg_campaigns__web_events",
    "staging.base_orders__orders", "staging.base_orders__order_items",
]
BOOKKEEPING = {"_loaded_at", "_evaluated_at", "_as_of_date"}
# marts.customer_tags is a view without an order (sorting 9M rows at each read would cost BI
# every query): the same rows, compared sorted.
UNORDERED = {"marts.customer_tags"}
# Both warehouses build only the compared tables and what they are built from: the rest (the
# histories, segments, tag health, the LTV calibration) reads them and is compared nowhere here.
COMPARED_MODELS = "+customer_tags +customer_profile +contact_tags +quarantine_rows +reconciliation"


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour))


def _one(raw: Path, sql: str) -> tuple:
    with duckdb.connect() as con:
        return con.sql(sql.replace("{raw}", str(raw))).fetchone()


def _edge_cases(raw: Path, day: dt.date, n: int, landing: LandingZone) -> None:
    """Hand-made deliveries for day n (delivered on `day`, the run date of that refresh)."""
    account = _one(raw, "select account_id from read_parquet('{raw}/crm/accounts/*.parquet') "
                        "where account_id like 'AC%' order by account_id limit 1")[0]
    order_id, line_no, product, quantity, price, cost = _one(raw, """
        select order_id, line_no, product_id, quantity, unit_price, unit_cost
        from read_parquet('{raw}/orders/order_items/*.parquet')
        where quantity > 0 and order_id like 'SO%' order by order_id, line_no limit 1""")
    if n == 1:
        # an order of an account that has not arrived yet, and one dated after the run date
        landing.deliver("orders/orders", [
            {"order_id": "late_o1", "account_id": "late_a1", "order_ts": _at(day, 9), "status": "paid",
             "sales_channel": "online", "_ingested_at": _at(day, 10)},
            {"order_id": "future_o1", "account_id": account, "order_ts": _at(day + dt.timedelta(days=1), 9),
             "status": "paid", "sales_channel": "online", "_ingested_at": _at(day, 10)},
        ], name=f"day{n}_edge_orders.parquet")
        landing.deliver("orders/order_items", [
            {"order_id": "late_o1", "line_no": 1, "product_id": product, "quantity": 2, "unit_price": price,
             "discount_amount": 0, "unit_cost": cost},
            {"order_id": "future_o1", "line_no": 1, "product_id": product, "quantity": 1, "unit_price": price,
             "discount_amount": 0, "unit_cost": cost},
            # a re-delivered line of an old order: the new quantity replaces the old one
            {"order_id": order_id, "line_no": line_no, "product_id": product, "quantity": quantity + 5,
             "unit_price": price, "discount_amount": 0, "unit_cost": cost},
        ], name=f"day{n}_edge_items.parquet")
        # events dated after the run date (valid from tomorrow), and one of a campaign that
        # arrives tomorrow
        campaign, email = _one(raw, """
            select campaign_id, recipient_email from read_parquet('{raw}/campaigns/campaign_events/*.parquet')
            where campaign_id like 'CMP%' and recipient_email like '%@%' order by event_id limit 1""")
        tomorrow = _at(day + dt.timedelta(days=1), 9)
        landing.deliver("campaigns/campaign_events", [
            {"event_id": "future_ce1", "campaign_id": campaign, "recipient_email": email,
             "event_type": "clicked", "event_ts": tomorrow},
            {"event_id": "late_ce1", "campaign_id": "late_cp1", "recipient_email": email,
             "event_type": "sent", "event_ts": _at(day, 9)},
        ], name=f"day{n}_edge_campaign_events.parquet")
        landing.deliver("campaigns/web_events", [
            {"event_id": "future_we1", "visitor_id": "v_future", "user_email": email,
             "event_type": "page_view", "product_category": "electronics", "event_ts": tomorrow},
        ], name=f"day{n}_edge_web_events.parquet")
    elif n == 2:
        landing.deliver("campaigns/campaigns", [
            {"campaign_id": "late_cp1", "campaign_name": "Late campaign", "channel": "email"},
        ], name=f"day{n}_edge_campaigns.parquet")
        # the late account arrives: yesterday's orphan order now counts; an account deleted in
        # the CRM (another one, with orders) leaves every mart
        deleted = _one(raw, """
            select min(account_id) from read_parquet('{raw}/orders/orders/*.parquet')
            where account_id like 'AC%' and account_id > '""" + account + "'")[0]
        landing.deliver("crm/accounts", [
            {"account_id": "late_a1", "account_name": "Late Arrival Ltd", "customer_type": "B2B",
             "industry": "制造业", "employee_count": 40, "province": "浙江省", "city": "杭州",
             "created_at": _at(day, 8), "updated_at": _at(day, 8), "is_deleted": False},
            {"account_id": deleted, "account_name": "deleted", "customer_type": "B2C",
             "created_at": _at(day, 8), "updated_at": _at(day, 8), "is_deleted": True},
        ], name=f"day{n}_edge_accounts.parquet")
        # a stale re-delivery of that order (older export) must lose to the current version;
        # an old order corrected to another account and another day: both old and new
        # (customer, day) pairs change
        moved_id, moved_ts = _one(raw, """
            select order_id, order_ts from read_parquet('{raw}/orders/orders/*.parquet')
            where order_id like 'SO%' and lower(trim(status)) = 'completed' order by order_id limit 1""")
        landing.deliver("orders/orders", [
            {"order_id": "late_o1", "account_id": "late_a1", "order_ts": _at(day, 9), "status": "cancelled",
             "sales_channel": "online", "_ingested_at": _at(day - dt.timedelta(days=30), 10)},
            {"order_id": moved_id, "account_id": account, "order_ts": moved_ts - dt.timedelta(days=3),
             "status": "completed", "sales_channel": "offline", "_ingested_at": _at(day, 11)},
        ], name=f"day{n}_edge_orders.parquet")
        # a whole earlier file delivered again under a new name: every row a duplicate
        shutil.copy(raw / "orders/order_items/day1_edge_items.parquet",
                    raw / f"orders/order_items/day{n}_again_items.parquet")


def _rows(warehouse: Path, table: str) -> list[tuple]:
    if table in UNORDERED:
        return query(warehouse, f"select * from {table} order by all")
    if table.startswith(("marts.", "audit.")):  # published tables: same rows in the same order
        return query(warehouse, f"select * from {table}")
    schema, name = table.split(".")
    columns = [c for (c,) in query(warehouse, f"""
        select column_name from information_schema.columns
        where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position""")
        if c not in BOOKKEEPING]
    return query(warehouse, f"select {', '.join(columns)} from {table} order by all")


def test_daily_incremental_refreshes_equal_full_rebuilds(tmp_path_factory):
    # the first day: conftest's dirty generated shop (300 customers), built and published once
    # per run (shared with test_quality_gate.py); this test refreshes a copy of it
    root, _ = dirty_shop(tmp_path_factory)
    raw = root / "raw"
    landing = LandingZone(raw)
    incremental = root / "warehouse.duckdb"
    loaded_day0 = query(incremental, "select count(*) from staging.base_orders__order_items")[0][0]

    day = AS_OF
    for n in (1, 2):
        delivered = write_daily_delivery(raw, day)
        day += dt.timedelta(days=1)
        _edge_cases(raw, day, n, landing)
        build(raw, incremental, day, select=COMPARED_MODELS, target_path=root / "target_inc",
              quiet=True, unit_tests=False)
        # one file name for both: dbt's saved parse holds for every file of that name
        full = build_reference(raw, root / f"day{n}" / "full.duckdb", day, root / "target_full",
                               select=COMPARED_MODELS)
        for table in COMPARED:
            assert _rows(incremental, table) == _rows(full, table), f"day {n}: {table}"
        if n == 1:  # the refresh loaded the new rows on top of what was there
            loaded = query(incremental, "select count(*) from staging.base_orders__order_items")[0][0]
            assert loaded == loaded_day0 + delivered["orders/order_items"] + 3

    # the edge cases did what they say, in both warehouses alike (compared above)
    tags = {r[0] for r in query(incremental, "select customer_id from marts.customer_profile")}
    assert "late_a1" in tags
    reasons = dict(query(incremental, """
        select record_key, rejection_reason from audit.quarantine_rows
        where record_key in ('late_o1', 'future_o1')"""))
    assert reasons == {}  # the orphan found its account, the future order's day came
    assert query(incremental, "select status from core.fct_orders where order_id = 'late_o1'") == [("paid",)]
    superseded = query(incremental, """
        select duplicates_superseded, is_balanced from audit.reconciliation
        where source_table = 'orders/order_items'""")[0]
    assert superseded[0] >= 4 and superseded[1]  # the re-delivered line + the file delivered twice


def test_a_loaded_file_that_changes_or_vanishes_needs_a_full_refresh(tmp_path):
    # macros/versions.sql, not_yet_loaded: the table's base model checks the files it loaded,
    # so the builds select it alone
    accounts = "base_crm__accounts"
    raw = tmp_path / "raw"
    landing = LandingZone(raw)
    landing.deliver("crm/accounts", [
        {"account_id": "a1", "account_name": "One", "customer_type": "B2C", "updated_at": _at(AS_OF, 8),
         "is_deleted": False},
    ], name="first.parquet")
    warehouse = tmp_path / "w.duckdb"
    build(raw, warehouse, AS_OF, select=accounts, target_path=tmp_path / "target", quiet=True,
          unit_tests=False)
    first = raw / "crm/accounts/first.parquet"
    # rewritten in place, other rows, the same mtime (a regenerated zone): still caught
    mtime = first.stat().st_mtime
    landing.deliver("crm/accounts", [
        {"account_id": f"b{i}", "account_name": "Other", "customer_type": "B2B", "updated_at": _at(AS_OF, 8),
         "is_deleted": False} for i in range(2)
    ], name="first.parquet")
    os.utime(first, (mtime, mtime))
    with pytest.raises(DbtError, match=r"crm/accounts, file crm/accounts/first.parquet: it was loaded .* changed in"):
        build(raw, warehouse, AS_OF, select=accounts, target_path=tmp_path / "target", quiet=True,
              unit_tests=False)
    first.rename(raw / "crm/accounts/renamed.parquet")
    with pytest.raises(DbtError, match=r"crm/accounts, file crm/accounts/first.parquet: it was loaded"):
        build(raw, warehouse, AS_OF, select=accounts, target_path=tmp_path / "target", quiet=True,
              unit_tests=False)
    # --full-refresh rebuilds from the files as they are now
    build(raw, warehouse, AS_OF, select=accounts, target_path=tmp_path / "target", quiet=True,
          unit_tests=False, full_refresh=True)
    assert query(warehouse, "select _source_file, count(*) from staging.base_crm__accounts group by all") == [
        ("crm/accounts/renamed.parquet", 2)]


def test_only_a_table_merged_on_the_tested_key_is_checked_by_the_rows_written(tmp_path):
    # macros/test_unique_combination.sql: grouping only the rows a run wrote finds every
    # duplicate it made only when its merge rewrites every row of the keys it writes
    project = copy_project(tmp_path / "project")
    cases = {
        "core.fct_orders: order_id": True,  # merge on order_id
        "core.fct_order_lines: line_no, order_id": True,  # the key in any order
        "core.fct_order_lines: order_id": False,  # merged on (order_id, line_no)
        "staging.stg_campaigns__campaign_events: event_id": True,  # a view over its base model
        "staging.stg_campaigns__campaign_events: campaign_id": False,
        "core.fct_tickets: ticket_id": False,  # a view over several models
        "marts.customer_profile: customer_id": False,  # rebuilt, not merged
    }
    (project / "macros" / "probe.sql").write_text(
        "{% macro probe() %}{% for case in " + repr(list(cases)) + " %}"
        "{% set table, columns = case.split(': ') %}{% set schema, name = table.split('.') %}"
        "{% do log('probe ' ~ case ~ ' = ' ~ merged_on_key({'schema': schema, 'identifier': name},"
        " columns.split(', ')), info=true) %}{% endfor %}{% endmacro %}")
    output = run_dbt(["run-operation", "probe", "--project-dir", str(project)], tmp_path / "raw",
                     tmp_path / "w.duckdb", AS_OF, tmp_path / "target", quiet=True)
    assert {case: f"probe {case} = {merged}" in output for case, merged in cases.items()} == {
        case: True for case in cases}


def test_a_daily_build_checks_the_keys_it_wrote_and_dbt_test_checks_all(tmp_path_factory):
    # macros/test_unique_combination.sql: an incremental build groups only the keys it wrote;
    # on a copy of conftest's generated shop (built and published once per run)
    root, _ = generated_shop(tmp_path_factory)
    raw, warehouse, target = root / "raw", root / "warehouse.duckdb", root / "target_daily"
    (touched, account, ordered_at), (untouched,) = _one(raw, """
        select order_id, account_id, order_ts from read_parquet('{raw}/orders/orders/*.parquet')
        where order_id like 'SO%' order by order_id limit 1"""), _one(raw, """
        select max(order_id) from read_parquet('{raw}/orders/orders/*.parquet') where order_id like 'SO%'""")
    with duckdb.connect(str(warehouse)) as con:  # two orders stored twice (a broken merge)
        con.execute("insert into core.fct_orders select * from core.fct_orders where order_id in (?, ?)",
                    [touched, untouched])
    LandingZone(raw).deliver("orders/orders", [  # the next day re-delivers one of them
        {"order_id": touched, "account_id": account, "order_ts": ordered_at, "status": "refunded",
         "sales_channel": "online", "_ingested_at": _at(AS_OF, 23)}], name="redelivered.parquet")
    # the build merges the re-delivered order into both copies: its key is the one it reports
    with pytest.raises(DbtError, match=r"FAIL 1 unique_combination_fct_orders_order_id"):
        build(raw, warehouse, AS_OF, select="+fct_orders", target_path=target, quiet=True, unit_tests=False)
    assert query(warehouse, f"select count(*) from core.fct_orders where order_id = '{touched}'") == [(2,)]
    # fct_orders is merged on order_id, so the test grouped only the rows the build wrote
    (compiled,) = (target / "compiled").rglob("unique_combination_fct_orders_order_id*.sql")
    assert "and _evaluated_at = cast(" in compiled.read_text()
    assert "hash(order_id) in" not in compiled.read_text()
    # `dbt test` checks every key
    with pytest.raises(DbtError, match=r"FAIL 2 unique_combination_fct_orders_order_id"):
        run_dbt(["test", "--select", "fct_orders"], raw, warehouse, AS_OF, target, quiet=True)
