"""End to end: a hand-made landing zone -> dbt build -> marts, quarantine, reconciliation.

The landing zone is written from the contract only (column names and types from the source
YAML), with one customer per situation; run date 2025-06-30.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import LandingZone, build_reference, build_warehouse, copy_project, query, ts

from crm_tags.build import DbtError, build, run_dbt

AS_OF = "2025-06-30"

pytestmark = pytest.mark.slow


def write_scenario(landing: LandingZone) -> None:
    t = lambda days, hour=10: ts(AS_OF, days, hour)
    landing.deliver("crm/accounts", [
        # a1: an older version says retail; the latest (manufacturing, 100 employees) wins
        {"account_id": "a1", "account_name": "杭州精工机械有限公司", "customer_type": " b2b ", "industry": "retail",
         "employee_count": 80, "province": "浙江省", "updated_at": t(400), "is_deleted": False},
        {"account_id": "a2", "account_name": "王芳", "customer_type": "B2C", "industry": None,
         "province": "香港", "updated_at": t(400), "is_deleted": False},
        {"account_id": "a3", "account_name": "Deleted Co", "customer_type": "B2B", "industry": "IT服务",
         "employee_count": 20, "province": "上海", "updated_at": t(400), "is_deleted": True},
        {"account_id": "a4", "account_name": "Li Lei", "customer_type": "b2c ", "province": "广西壮族自治区",
         "updated_at": t(400), "is_deleted": False},
        {"account_id": "a5", "account_name": "Bad Type", "customer_type": "enterprise", "updated_at": t(400)},
    ])
    landing.deliver("crm/accounts", [
        {"account_id": "a1", "account_name": "杭州精工机械有限公司", "customer_type": "B2B",
         "industry": " Manufacturing ", "employee_count": 100, "province": "浙江省", "updated_at": t(10),
         "is_deleted": False},
    ])
    landing.deliver("crm/contacts", [
        {"contact_id": "k1", "account_id": "a1", "email": " Boss@A1.cn ", "decision_role": "DM", "updated_at": t(50)},
        {"contact_id": "k2", "account_id": "a1", "email": "shared@mail.cn", "decision_role": "采购", "updated_at": t(50)},
        {"contact_id": "k3", "account_id": "a4", "email": "SHARED@mail.cn", "decision_role": "???", "updated_at": t(50)},
        {"contact_id": "k4", "account_id": "a2", "email": "a2@example.com", "decision_role": None, "updated_at": t(50)},
        {"contact_id": "k5", "account_id": "a3", "email": "x@deleted.cn", "decision_role": "决策者", "updated_at": t(50)},
        {"contact_id": "k6", "account_id": "a4", "email": "li@example.com", "decision_role": "user", "updated_at": t(50)},
        {"contact_id": "k7", "account_id": "nobody", "email": "ghost@example.com", "updated_at": t(50)},
    ])
    landing.deliver("orders/products", [
        {"product_id": "p1", "product_name": "笔记本电脑", "category": " 电子产品 ", "list_price": Decimal("5000.00")},
        {"product_id": "p2", "product_name": "Novel", "category": "Books", "list_price": Decimal("50.00")},
    ])
    orders, items = [], []
    # a1: 12 purchases inside the 365-day window (days 0, 30, ..., 330), 6 of them promotional
    for i in range(12):
        order_id = f"o1_{i:02d}"
        orders.append({"order_id": order_id, "account_id": "a1", "order_ts": t(30 * i), "status": "completed",
                       "promotion_id": "promo1" if i % 2 == 0 else None, "sales_channel": "online",
                       "_ingested_at": t(30 * i, 12)})
        items.append({"order_id": order_id, "line_no": 1, "product_id": "p1", "quantity": 1,
                      "unit_price": Decimal("5000.00"), "discount_amount": Decimal("0.00"),
                      "unit_cost": Decimal("3000.00")})
    orders += [
        # delivered paid, re-delivered cancelled later: the cancelled version wins (no purchase)
        {"order_id": "o1_x", "account_id": "a1", "order_ts": t(5), "status": "paid", "sales_channel": "online",
         "_ingested_at": t(5, 11)},
        # an order dated after the run date
        {"order_id": "o1_future", "account_id": "a1", "order_ts": t(-1), "status": "paid",
         "sales_channel": "online", "_ingested_at": t(-1, 11)},
        # a2: one purchase exactly 365 days ago (outside the window)
        {"order_id": "o2_1", "account_id": "a2", "order_ts": t(365), "status": " Shipped ",
         "sales_channel": "offline", "_ingested_at": t(365, 11)},
        # a3 is deleted; a5 was rejected; 'nobody' does not exist
        {"order_id": "o3_1", "account_id": "a3", "order_ts": t(3), "status": "paid", "sales_channel": "partner",
         "_ingested_at": t(3, 11)},
        {"order_id": "o5_1", "account_id": "a5", "order_ts": t(3), "status": "paid", "sales_channel": "online",
         "_ingested_at": t(3, 11)},
        {"order_id": "o9_1", "account_id": "nobody", "order_ts": t(3), "status": "paid", "sales_channel": "online",
         "_ingested_at": t(3, 11)},
        {"order_id": "o1_bad_status", "account_id": "a1", "order_ts": t(3), "status": "pending",
         "sales_channel": "online", "_ingested_at": t(3, 11)},
    ]
    items += [
        {"order_id": "o1_x", "line_no": 1, "product_id": "p1", "quantity": 1, "unit_price": Decimal("5000.00"),
         "discount_amount": Decimal("0.00"), "unit_cost": Decimal("3000.00")},
        {"order_id": "o2_1", "line_no": 1, "product_id": "p2", "quantity": 2, "unit_price": Decimal("50.00"),
         "discount_amount": Decimal("10.00"), "unit_cost": Decimal("20.00")},
        {"order_id": "o2_1", "line_no": 2, "product_id": "p2", "quantity": -1, "unit_price": Decimal("50.00"),
         "discount_amount": Decimal("0.00"), "unit_cost": Decimal("20.00")},
        {"order_id": "o1_future", "line_no": 1, "product_id": "p1", "quantity": 1, "unit_price": Decimal("1.00"),
         "discount_amount": Decimal("0.00"), "unit_cost": Decimal("1.00")},
        {"order_id": "o1_00", "line_no": 2, "product_id": "p_unknown", "quantity": 1, "unit_price": Decimal("1.00"),
         "discount_amount": Decimal("0.00"), "unit_cost": Decimal("1.00")},
    ]
    landing.deliver("orders/orders", orders)
    landing.deliver("orders/order_items", items)
    landing.deliver("orders/orders", [
        {"order_id": "o1_x", "account_id": "a1", "order_ts": t(5), "status": "cancelled", "sales_channel": "online",
         "_ingested_at": t(4, 11)},
        orders[0],  # an exact duplicate of an order already delivered
    ])
    landing.deliver("support/tickets", [
        {"ticket_id": "t1", "account_id": "a1", "channel": "phone", "ticket_type": "inquiry", "opened_at": t(10),
         "satisfaction_score": 4},
        {"ticket_id": "t2", "account_id": "a1", "channel": "Phone", "ticket_type": "inquiry", "opened_at": t(20),
         "satisfaction_score": 4},
        {"ticket_id": "t3", "account_id": None, "requester_email": " BOSS@a1.cn", "channel": "wechat",
         "ticket_type": "inquiry", "opened_at": t(30)},
        {"ticket_id": "t4", "requester_email": "a2@example.com", "channel": "email", "ticket_type": "complaint",
         "opened_at": t(1), "satisfaction_score": 2},
        {"ticket_id": "t5", "requester_email": "a2@example.com", "channel": "email", "ticket_type": "complaint",
         "opened_at": t(100)},
        {"ticket_id": "t6", "requester_email": "a2@example.com", "channel": "online_chat", "ticket_type": "complaint",
         "opened_at": t(364)},
        {"ticket_id": "t7", "requester_email": "shared@mail.cn", "channel": "phone", "ticket_type": "complaint",
         "opened_at": t(5)},
        {"ticket_id": "t8", "requester_email": "a2@example.com", "channel": "fax", "ticket_type": "inquiry",
         "opened_at": t(5)},
    ])
    landing.deliver("campaigns/campaigns", [
        {"campaign_id": "cp1", "campaign_name": "双十一", "channel": "email"},
    ])
    landing.deliver("campaigns/campaign_events", [
        {"event_id": "e1", "campaign_id": "cp1", "recipient_email": "boss@a1.cn", "event_type": "sent", "event_ts": t(20)},
        {"event_id": "e2", "campaign_id": "cp1", "recipient_email": "boss@a1.cn", "event_type": "clicked", "event_ts": t(19)},
        {"event_id": "e3", "campaign_id": "cp1", "recipient_email": "boss@a1.cn", "event_type": "clicked", "event_ts": t(18)},
        {"event_id": "e4", "campaign_id": "cp1", "recipient_email": "a2@example.com", "event_type": "sent", "event_ts": t(89)},
        {"event_id": "e5", "campaign_id": "cp_missing", "recipient_email": "a2@example.com", "event_type": "clicked",
         "event_ts": t(1)},
    ])
    landing.deliver("campaigns/web_events", [
        {"event_id": f"w{i}", "visitor_id": "v4", "user_email": "li@example.com", "event_type": "page_view",
         "product_category": "图书", "event_ts": t(i * 10)} for i in range(5)
    ] + [
        {"event_id": "w_anon", "visitor_id": "v9", "user_email": None, "event_type": "page_view",
         "product_category": "books", "event_ts": t(1)},
    ])
    landing.deliver("campaigns/attributed_orders", [
        # the campaign feed disagrees with the order system: never a source of revenue
        {"order_id": "o2_1", "campaign_id": "cp1", "account_id": "a2", "attributed_revenue": Decimal("999999.00"),
         "conversion_ts": t(300)},
    ])
    landing.deliver("crm/manual_tags", [
        {"account_id": "a1", "tag_code": "key_account", "action": "add", "operator": "li", "operated_at": t(50)},
        {"account_id": "a2", "tag_code": "blacklist", "action": "add", "operator": "li", "operated_at": t(50)},
        {"account_id": "a2", "tag_code": "blacklist", "action": "remove", "operator": "wang", "operated_at": t(40)},
        {"account_id": "a1", "tag_code": "vip_forever", "action": "add", "operator": "li", "operated_at": t(50)},
    ])


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scenario")
    landing = LandingZone(root / "raw")
    write_scenario(landing)
    # the one build of the suite that runs the dbt unit tests (every other build leaves them out)
    return build_warehouse(landing.root, root / "warehouse.duckdb", AS_OF, root, unit_tests=True)


def test_every_dbt_unit_test_runs_here_and_passes(warehouse):
    target = warehouse.parent / "dbt_target"
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    ran = {r["unique_id"]: r["status"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert len(manifest["unit_tests"]) >= 20
    assert ran == dict.fromkeys(manifest["unit_tests"], "pass")


def tags_of(warehouse: Path, customer_id: str) -> dict[str, list[str]]:
    rows = query(warehouse, f"select tag_code, tag_value from marts.customer_tags where customer_id = '{customer_id}'")
    tags: dict[str, list[str]] = {}
    for code, value in rows:
        tags.setdefault(code, []).append(value)
    return {code: sorted(values) for code, values in tags.items()}


def test_a_loyal_b2b_customer_gets_every_order_tag(warehouse):
    assert tags_of(warehouse, "a1") == {
        "industry": ["manufacturing"],          # latest CRM version wins over 'retail'
        "company_size": ["medium"],             # exactly 100 employees
        "region": ["east"],
        "purchase_frequency": ["high"],         # 12 purchases; the re-delivered order is cancelled
        "recency": ["within_30d"],
        "product_preference": ["electronics"],  # '电子产品' mapped to its code
        "customer_grade": ["vip"],              # R5 + F5 + M5 (60,000.00 net sales)
        "profit_contribution": ["high"],        # 24,000 / 60,000 = 40%
        "price_sensitivity": ["medium"],        # 6 of 12 promotional = exactly 50%
        "service_preference": ["phone"],        # 2 phone tickets vs 1 wechat (via email)
        "satisfaction": ["satisfied"],
        "lifecycle_stage": ["active"],
        "campaign_engagement": ["medium"],      # 2 clicks
        "manual": ["key_account"],
        "ltv": ["high"],                        # regularised: too few customers for an MLE
        "churn_risk": ["low"],                  # buys monthly, last purchase recent
    }


def test_window_edge_customer(warehouse):
    # a2's only purchase is exactly 365 days old: outside the window, but it has purchased.
    assert tags_of(warehouse, "a2") == {
        "purchase_frequency": ["low"],
        "recency": ["over_180d"],
        "customer_grade": ["ordinary"],         # R1 + F1 + M1
        "lifecycle_stage": ["at_risk"],         # 365 days <= 365
        "service_preference": ["online"],       # email / online_chat tickets resolved by email
        "satisfaction": ["dissatisfied"],
        "complaint_risk": ["complaint_prone"],  # 3 complaints on days 1, 100, 364
        "campaign_engagement": ["none"],        # a send on day 89, no click (e5's campaign is unknown)
        "ltv": ["low"],                         # one purchase, a year ago
        "churn_risk": ["low"],                  # BG/NBD: P(alive) = 1 until a repeat purchase
    }


def test_prospect_with_browsing_interest(warehouse):
    assert tags_of(warehouse, "a4") == {
        "region": ["south"],
        "customer_grade": ["potential"],
        "lifecycle_stage": ["prospect"],
        "browsing_interest": ["books"],
        "purchase_intent": ["browsing_no_purchase"],
    }


def test_deleted_and_rejected_accounts_leave_every_mart(warehouse):
    profile_ids = [r[0] for r in query(warehouse, "select customer_id from marts.customer_profile order by 1")]
    assert profile_ids == ["a1", "a2", "a4"]
    assert query(warehouse, "select count(*) from marts.customer_tags where customer_id in ('a3', 'a5')") == [(0,)]
    assert query(warehouse, "select count(*) from marts.contact_tags where customer_id = 'a3'") == [(0,)]


def test_contact_tags(warehouse):
    rows = query(warehouse, "select contact_id, tag_value from marts.contact_tags order by contact_id")
    assert rows == [("k1", "decision_maker"), ("k2", "purchaser"), ("k6", "user")]


def test_profile_columns_and_rfm(warehouse):
    row = query(warehouse, """
        select customer_grade, r_score, f_score, m_score, rfm_total, purchases_365d, net_sales_365d,
               profit_365d, ltv, purchase_frequency
        from marts.customer_profile where customer_id = 'a1'
    """)
    assert row == [("vip", 5, 5, 5, 15, 12, Decimal("60000.00"), Decimal("24000.00"), "high", "high")]


def test_evidence_and_labels(warehouse):
    rows = query(warehouse, """
        select evidence, tag_value_label_zh, tag_value_label_en, dimension, as_of_date
        from marts.customer_tags where customer_id = 'a1' and tag_code = 'purchase_frequency'
    """)
    assert rows == [("purchases_365d = 12", "高频", "High", "behaviour", __import__("datetime").date(2025, 6, 30))]


def test_quarantine_keeps_each_rejected_row_with_its_reason(warehouse):
    rows = set(query(warehouse, "select source_table, record_key, rejection_reason from audit.quarantine_rows"))
    assert rows == {
        ("crm/accounts", "a5", "unknown customer_type"),
        ("crm/contacts", "k7", "unknown account_id"),
        ("crm/manual_tags", "a1|vip_forever", "tag_code not a manual tag in the catalog"),
        ("orders/orders", "o1_future", "order_ts after the run date"),
        ("orders/orders", "o5_1", "unknown account_id"),
        ("orders/orders", "o9_1", "unknown account_id"),
        ("orders/orders", "o1_bad_status", "unknown status"),
        ("orders/order_items", "o2_1#2", "negative quantity"),
        ("orders/order_items", "o1_future#1", "order rejected: order_ts after the run date"),
        ("orders/order_items", "o1_00#2", "unknown product_id"),
        ("support/tickets", "t8", "unknown channel"),
        ("campaigns/campaign_events", "e5", "unknown campaign_id"),
    }
    # where to find the row in the landing zone, and not the row itself (docs/privacy.md)
    source_file, row_number = query(warehouse, """
        select source_file, source_row_number from audit.quarantine_rows
        where record_key = 'o2_1#2'
    """)[0]
    assert source_file.endswith(".parquet") and row_number >= 1
    columns = {r[0] for r in query(warehouse, "select column_name from information_schema.columns "
                                              "where table_name = 'quarantine_rows'")}
    assert columns == {"source_table", "record_key", "rejection_reason", "source_file",
                       "source_row_number", "as_of_date"}


def test_reconciliation_balances_every_table(warehouse):
    rows = {r[0]: r[1:] for r in query(warehouse, """
        select source_table, rows_in, rows_kept, rows_rejected, duplicates_superseded, rows_published, is_balanced
        from audit.reconciliation
    """)}
    assert len(rows) == 12
    assert all(r[-1] for r in rows.values())
    # orders: 21 rows in = 15 kept + 4 rejected + 2 superseded (a re-delivery and an exact duplicate)
    assert rows["orders/orders"] == (21, 15, 4, 2, 15, True)
    assert rows["crm/accounts"] == (6, 4, 1, 1, 4, True)
    assert rows["campaigns/campaigns"] == (1, 1, 0, 0, 1, True)


def test_unattributed_interactions_are_kept_and_counted(warehouse):
    rows = query(warehouse, "select ticket_id, customer_id, attribution_status from core.fct_tickets order by 1")
    assert ("t7", None, "ambiguous_email") in rows
    assert ("t3", "a1", "email") in rows
    anonymous = query(warehouse, "select attribution_status from core.fct_web_events where event_id = 'w_anon'")
    assert anonymous == [("no_identity",)]


def test_grade_ignores_the_campaign_feed(warehouse):
    # attributed_orders claims 999,999 CNY for a2; the order system has 90.00, outside the window -> M = 1
    assert query(warehouse, "select m_score, net_sales_365d from marts.customer_profile where customer_id = 'a2'") == [
        (1, Decimal("0.00"))
    ]


def test_tag_catalog_mart(warehouse):
    rows = query(warehouse, "select tag_code, label_zh, label_en, refresh_frequency from marts.tag_catalog")
    assert len(rows) == 20
    assert ("customer_grade", "客户等级", "Customer grade", "weekly") in rows
    assert ("churn_risk", "流失风险", "Churn risk", "monthly") in rows


def test_unlisted_categories_stay_their_own(tmp_path, landing):
    """A category the mapping does not list is the shop's own category, not `other`: books 40% /
    food 35% / toys 25% is mixed, food alone is food; the category tags' values are the
    categories present in the product data, labelled where the mapping has labels."""
    t = lambda days: ts(AS_OF, days)
    landing.deliver("crm/accounts", [
        {"account_id": acc, "customer_type": "B2C", "updated_at": t(100), "is_deleted": False}
        for acc in ("shop", "foodie", "browser")
    ])
    landing.deliver("crm/contacts", [
        {"contact_id": "k1", "account_id": "browser", "email": "b@example.com", "updated_at": t(100)},
    ])
    landing.deliver("orders/products", [
        {"product_id": "p_book", "category": " 图书 ", "list_price": Decimal("40.00")},
        {"product_id": "p_food", "category": "Food", "list_price": Decimal("35.00")},
        {"product_id": "p_toy", "category": "TOYS ", "list_price": Decimal("25.00")},
    ])
    baskets = {"shop": ["p_book", "p_food", "p_toy"], "foodie": ["p_food"]}
    prices = {"p_book": Decimal("40.00"), "p_food": Decimal("35.00"), "p_toy": Decimal("25.00")}
    orders, items = [], []
    for customer, products in baskets.items():
        for n, product in enumerate(products):
            order_id = f"{customer}_{n}"
            orders.append({"order_id": order_id, "account_id": customer, "order_ts": t(10 + n),
                           "status": "paid", "sales_channel": "online", "_ingested_at": t(10 + n)})
            items.append({"order_id": order_id, "line_no": 1, "product_id": product, "quantity": 1,
                          "unit_price": prices[product], "discount_amount": Decimal("0.00"),
                          "unit_cost": Decimal("1.00")})
    landing.deliver("orders/orders", orders)
    landing.deliver("orders/order_items", items)
    landing.deliver("campaigns/web_events", [
        {"event_id": f"w{i}", "visitor_id": "v", "user_email": "b@example.com", "event_type": "page_view",
         "product_category": "Pet  Supplies", "event_ts": t(i)} for i in range(5)
    ])
    # the two category tags and the catalog marts, with what they are built from (the category
    # mapping, the product and web-event staging); marts.customer_tags only unions the tags
    warehouse = build_warehouse(
        landing.root, tmp_path / "wh.duckdb", AS_OF, tmp_path,
        select="+tag_product_preference +tag_browsing_interest +tag_value_labels +tag_catalog")

    tags = set(query(warehouse, """select customer_id, tag_code, tag_value from tags.tag_product_preference
        union all select customer_id, tag_code, tag_value from tags.tag_browsing_interest"""))
    assert tags == {("shop", "product_preference", "mixed"), ("foodie", "product_preference", "food"),
                    ("browser", "browsing_interest", "pet_supplies")}
    assert query(warehouse, """select tag_value, label_zh, label_en from marts.tag_value_labels
        where tag_code = 'product_preference' order by sort_order""") == [
        ("books", "图书", "Books"), ("food", "food", "food"), ("pet_supplies", "pet_supplies", "pet_supplies"),
        ("toys", "toys", "toys"), ("mixed", "多品类", "Mixed")]
    assert query(warehouse, "select allowed_values from marts.tag_catalog where tag_code = 'browsing_interest'") \
        == [("books, food, pet_supplies, toys",)]


def test_same_data_same_date_gives_identical_tables(warehouse, tmp_path):
    raw_dir = warehouse.parent / "raw"
    tables = ["marts.customer_tags", "marts.customer_profile", "marts.contact_tags", "marts.tag_catalog",
              "audit.quarantine_rows", "audit.reconciliation"]
    # the second build: the compared tables and what they are built from, without the data tests
    # (the module's build ran them on the same data)
    second = build_reference(raw_dir, tmp_path / "second.duckdb", AS_OF, tmp_path / "dbt_target",
                             select=" ".join("+" + table.split(".")[1] for table in tables))
    for table in tables:
        first_rows = query(warehouse, f"select * from {table}")
        second_rows = query(second, f"select * from {table}")
        assert first_rows == second_rows, table  # same rows in the same order


def test_views_work_in_a_copy_under_another_name(warehouse, tmp_path):
    # publish renames the candidate file over the warehouse, and BI tools open it under any
    # name: a view that names the database it was built in would break (DuckDB 1.4 keeps the
    # catalog in a view's SQL), so every view must resolve in a copy of the file.
    copy = tmp_path / "published_elsewhere.duckdb"
    shutil.copyfile(warehouse, copy)
    views = query(copy, "select schema_name, view_name from duckdb_views() where not internal")
    assert len(views) > 10
    for schema, view in views:
        query(copy, f'select count(*) from "{schema}"."{view}"')


def test_a_second_value_of_a_single_valued_tag_fails_the_dbt_test(warehouse, tmp_path):
    # tests/dbt/assert_single_valued_tags_have_one_value.sql, on a copy with stored rows added
    copy, target = tmp_path / "duplicated.duckdb", tmp_path / "target"
    shutil.copyfile(warehouse, copy)

    def add_rows(condition: str, value: str = "tag_value") -> None:
        with duckdb.connect(str(copy)) as con:
            con.execute(f"""insert into intermediate.int_customer_tag_values
                select customer_id, tag_code, {value}, evidence, as_of_date
                from intermediate.int_customer_tag_values where {condition}""")

    def dbt_test() -> str:
        return run_dbt(["test", "--select", "assert_single_valued_tags_have_one_value"],
                       warehouse.parent / "raw", copy, AS_OF, target, quiet=True)

    # a second value of a multi-valued tag is allowed (one dbt test for the three cases: were
    # it counted, three rows would fail)
    add_rows("customer_id = 'a4' and tag_code = 'browsing_interest'", value="'electronics'")
    # the same value of a multi-valued tag twice, and a second recency, are not: each is one
    # failing row
    add_rows("customer_id = 'a1' and tag_code in ('manual', 'recency')")
    with pytest.raises(DbtError, match=r"FAIL 2 assert_single_valued_tags_have_one_value"):
        dbt_test()


def test_a_text_mapped_twice_in_a_seed_fails_naming_the_seed(tmp_path):
    # seeds/_seeds.yml: a steward's CSV edit that lists a text twice (it would give a web event
    # two categories, and count it twice through the fct_web_events view)
    project = copy_project(tmp_path / "project")
    with open(project / "seeds" / "category_mapping.csv", "a", encoding="utf-8") as mapping:
        mapping.write("数码,books\n")
    with pytest.raises(DbtError, match=r"FAIL 1 unique_category_mapping_category_text"):
        build(tmp_path / "raw", tmp_path / "w.duckdb", AS_OF, select="category_mapping",
              target_path=tmp_path / "target", quiet=True, project_dir=project)


def test_empty_landing_zone_builds(tmp_path):
    warehouse = build_warehouse(tmp_path / "nothing_here", tmp_path / "empty.duckdb", AS_OF, tmp_path)
    assert query(warehouse, "select count(*) from marts.customer_profile") == [(0,)]
    assert query(warehouse, "select count(*) from marts.tag_catalog") == [(20,)]


def test_missing_required_column_fails_naming_table_file_and_column(tmp_path, landing):
    landing.deliver("crm/accounts", [{"account_id": "a1", "customer_type": "B2B", "updated_at": ts(AS_OF, 1)}])
    # the profile (read here) and its inputs; the delivery files' columns are checked before any
    # model, whatever the selection (on-run-start: register_landing_zone, macros/landing_zone.sql)
    profile = "+customer_profile"
    # the last good marts (their data tests are not what this test is about)
    warehouse = build_reference(landing.root, tmp_path / "wh.duckdb", AS_OF, tmp_path / "dbt_target",
                                select=profile)
    before = query(warehouse, "select * from marts.customer_profile")
    assert [r[0] for r in before] == ["a1"]

    import pyarrow.parquet as pq

    bad = landing.deliver("orders/orders", [{"order_id": "o1", "account_id": "a1"}], name="bad_drop.parquet")
    pq.write_table(pq.read_table(bad).drop(["status"]), bad)
    with pytest.raises(DbtError) as error:
        build_warehouse(landing.root, warehouse, AS_OF, tmp_path, select=profile)
    message = str(error.value)
    assert "orders/orders" in message and "bad_drop.parquet" in message and "'status'" in message
    # nothing was published: the last good marts are still there
    assert query(warehouse, "select * from marts.customer_profile") == before


def test_text_column_whose_values_all_cast_is_accepted(tmp_path, landing):
    # a delivery may type a number as text: it is accepted when every value casts
    import pyarrow as pa
    import pyarrow.parquet as pq

    landing.deliver("crm/accounts", [{"account_id": "a1", "customer_type": "B2B", "updated_at": ts(AS_OF, 1)}])
    landing.deliver("orders/orders", [{"order_id": "o1", "account_id": "a1", "order_ts": ts(AS_OF, 3),
                                       "status": "paid", "sales_channel": "online",
                                       "_ingested_at": ts(AS_OF, 3)}])
    items = landing.deliver("orders/order_items", [{"order_id": "o1", "line_no": 1}], name="items.parquet")
    table = pq.read_table(items)
    for name, value in [("quantity", "3"), ("product_id", "p1"), ("unit_price", "10.50"),
                        ("unit_cost", "4"), ("discount_amount", "0")]:
        table = table.set_column(table.schema.get_field_index(name), name, pa.array([value], pa.string()))
    pq.write_table(table, items)
    landing.deliver("orders/products", [{"product_id": "p1", "category": "software", "list_price": 10}])
    # the order lines and their inputs; the landing zone's views cast the text columns before
    # any model, whatever the selection (on-run-start: register_landing_zone)
    warehouse = build_warehouse(landing.root, tmp_path / "wh.duckdb", AS_OF, tmp_path,
                                select="+fct_order_lines")
    assert query(warehouse, "select quantity, unit_price, net_sales from core.fct_order_lines") == [
        (3, Decimal("10.50"), Decimal("31.50"))]


def test_uncastable_column_fails_naming_table_file_and_column(tmp_path, landing):
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = landing.deliver("orders/order_items", [{"order_id": "o1", "line_no": 1}], name="items.parquet")
    table = pq.read_table(good)
    index = table.schema.get_field_index("quantity")
    table = table.set_column(index, "quantity", pa.array(["three"], pa.string()))
    pq.write_table(table, good)
    with pytest.raises(DbtError) as error:
        build_warehouse(landing.root, tmp_path / "wh.duckdb", AS_OF, tmp_path)
    message = str(error.value)
    assert "orders/order_items" in message and "items.parquet" in message and "'quantity'" in message
    assert "INTEGER" in message and "three" in message
