"""Checkpoint core: the facts and dimensions in schema core, across tables and whole.

- Every key of the incrementally built facts is unique over the whole published table (one
  grouping query each: unique_key_suite). A daily dbt build tests only the keys it wrote
  (macros/test_unique_combination.sql), so this is where every key is checked on every publish.
- Referential integrity: every fact row belongs to a customer that exists in core.dim_customers
  (a kept CRM account); order lines belong to kept orders.
- Amounts: the facts' own sums are not negative, and they reconcile with the raw order system
  (the net sales of the kept order lines equal the raw delivered net sales, latest version per
  line, minus the quarantined lines; the orders carry exactly their lines' totals).

Each model's structure (keys set, codes such as attribution_status in their set) is tested by
dbt next to the model (docs/quality-gate.md, "One home per check").
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from crm_tags.quality.spec import (
    GateFacts,
    Suite,
    Table,
    key_label,
    problem_suite,
    unique_key_suite,
)

# Incremental facts (dbt merges them on this key; a daily build's dbt test checks only the keys
# it wrote): the key checked over the whole table on every publish.
INCREMENTAL_KEYS: dict[str, list[str]] = {
    "fct_orders": ["order_id"],
    "fct_order_lines": ["order_id", "line_no"],
}

# Amounts the facts derive (net sales summed or computed from kept lines), which may not be
# negative; the delivered amounts themselves are checked on the kept rows (landing_zone).
DERIVED_AMOUNTS: dict[str, list[str]] = {
    "fct_orders": ["net_sales", "line_count"],
    "fct_order_lines": ["net_sales"],
}


def build(facts: GateFacts) -> list[Suite]:
    return [amounts_suite(table, columns) for table, columns in DERIVED_AMOUNTS.items()] + [
        unique_key_suite(f"core.{table}.unique_key", f"core.{table}", key,
                         f"core.{table}: no duplicate {key_label(key)} in the whole table.")
        for table, key in INCREMENTAL_KEYS.items()
    ] + [referential_integrity_suite(), order_amounts_suite(facts.engine)]


def amounts_suite(table: str, columns: list[str]) -> Suite:
    return Suite(f"core.{table}", Table("core", table), [
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, description=f"core.{table}: {column} is >= 0.")
        for column in columns
    ])


def referential_integrity_suite() -> Suite:
    facts_with_customers = [
        "dim_contacts", "fct_orders", "fct_order_lines", "fct_tickets", "fct_campaign_events",
        "fct_web_events", "fct_manual_tag_actions",
    ]
    orphans = "\n        union all\n".join(
        f"""        select 'core.{table}' as fact, fact.customer_id,
            dim_customers.customer_id is null as orphan
        from core.{table} as fact
        left join core.dim_customers on fact.customer_id = dim_customers.customer_id
        where fact.customer_id is not null"""
        for table in facts_with_customers
    )
    return problem_suite(
        "core.referential_integrity",
        f"""
        with customer_refs as (
{orphans}
        ),
        line_orders as (
            select lines.order_id, orders.order_id is null as orphan
            from core.fct_order_lines as lines
            left join core.fct_orders as orders on lines.order_id = orders.order_id
        )
        select fact, case when orphan then printf(
            '%s: a row belongs to customer %s, which is not a kept CRM account', fact, customer_id)
            end as problem
        from customer_refs
        union all
        select 'core.fct_order_lines', case when orphan then printf(
            'core.fct_order_lines: line of order %s, which is not a kept order', order_id)
            end
        from line_orders
        """,
        "Referential integrity: every fact row has a live customer (a kept CRM account in "
        "core.dim_customers) and every order line a kept order.",
    )


def order_amounts_suite(engine: str = "duckdb") -> Suite:
    # The raw side re-implements "latest delivery wins" independently of the dbt macro, and the
    # rejected side reads the quarantined rows in the landing zone by their file and row number
    # (the quarantine keeps no row: docs/privacy.md), so the three sums come from three places.
    # Most lines are delivered once: only the lines whose key repeats go through the
    # latest-version aggregate, found by grouping the key's 64-bit hash (a fixed-size grouping
    # DuckDB spills to disk); one aggregate over every line's (amount, version) pairs ran out
    # of the 6GB memory_limit at 80 M lines (docs/benchmark.md, "How far DuckDB goes").
    # Every delivered version of every line, read three times below: a derived table, not a
    # CTE, which PostgreSQL would materialise when it is read more than once. A line is keyed
    # by (order_id, line_no); an unkeyed line (blank order_id or no line_no) matches nothing
    # and counts once, as delivered.
    versions = """(
            select
                nullif(trim(order_id), '') || '#' || cast(line_no as varchar) as line_key,
                quantity * unit_price - coalesce(discount_amount, 0) as net_sales,
                coalesce(_delivered_at, cast('-infinity' as timestamp)) as delivered,
                _source_file, _source_row_number
            from raw_orders.order_items
        ) as versions"""
    latest = {
        "duckdb": "arg_max_null(net_sales, struct_pack(delivered := delivered, "
                  "file := _source_file, row_number := _source_row_number))",
        # Spark's max_by keeps a null amount of the latest version, as arg_max_null does
        "spark": "max_by(net_sales, struct(delivered, _source_file, _source_row_number))",
        # PostgreSQL has no arg_max: the first of the versions ordered latest first
    }.get(engine, "(array_agg(net_sales order by delivered desc, _source_file desc, "
                  "_source_row_number desc))[1]")
    return problem_suite(
        "core.amounts_reconcile",
        f"""
        with repeated_keys as (
            -- lines delivered more than once (and keys merely sharing a hash: they are
            -- grouped by the key itself below)
            select hash(line_key) as key_hash from {versions}
            where line_key is not null
            group by hash(line_key)
            having count(*) > 1
        ),
        raw_lines as (
            -- a line delivered once, or unkeyed: its only version
            select net_sales from {versions}
            where line_key is null or hash(line_key) not in (select key_hash from repeated_keys)
            union all
            -- latest delivery of each line wins (arg_max_null: a null amount in the latest
            -- version must not fall back to an older version's amount)
            select {latest} as net_sales
            from {versions}
            where line_key is not null and hash(line_key) in (select key_hash from repeated_keys)
            group by line_key
        ),
        quarantined_lines as (
            select
                raw.quantity * raw.unit_price - coalesce(raw.discount_amount, 0) as net_sales
            from audit.quarantine_rows as quarantine
            join raw_orders.order_items as raw
                on raw._source_file = quarantine.source_file
                and raw._source_row_number = quarantine.source_row_number
            where quarantine.source_table = 'orders/order_items'
        ),
        sums as (
            select
                (select coalesce(sum(net_sales), 0) from raw_lines) as raw_net_sales,
                (select coalesce(sum(net_sales), 0) from quarantined_lines) as quarantined_net_sales,
                (select coalesce(sum(net_sales), 0) from core.fct_order_lines) as kept_net_sales,
                (select coalesce(sum(net_sales), 0) from core.fct_orders) as order_net_sales,
                (select coalesce(sum(profit), 0) from core.fct_order_lines) as kept_profit,
                (select coalesce(sum(profit), 0) from core.fct_orders) as order_profit
        )
        select 'order lines vs raw' as checked, case
            when kept_net_sales <> raw_net_sales - quarantined_net_sales then printf(
                'orders/order_items: raw net sales %s - quarantined %s = %s, but the kept lines '
                || '(core.fct_order_lines) sum to %s: %s CNY appeared or vanished',
                cast(raw_net_sales as varchar), cast(quarantined_net_sales as varchar),
                cast(raw_net_sales - quarantined_net_sales as varchar), cast(kept_net_sales as varchar),
                cast(kept_net_sales - (raw_net_sales - quarantined_net_sales) as varchar))
            end as problem
        from sums
        union all
        select 'orders vs lines', case
            when order_net_sales <> kept_net_sales or order_profit <> kept_profit then printf(
                'core.fct_orders sums to net sales %s / profit %s, its lines to %s / %s',
                cast(order_net_sales as varchar), cast(order_profit as varchar),
                cast(kept_net_sales as varchar), cast(kept_profit as varchar))
            end
        from sums
        """,
        "Amounts reconcile with the raw order system: net sales of the kept order lines = raw "
        "delivered net sales (latest version of each line) - quarantined lines; orders carry "
        "exactly their lines' net sales and profit.",
    )
