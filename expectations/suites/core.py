"""Checkpoint core: the facts and dimensions in schema core (kept rows only, one grain each).

- No duplicate business keys in any fact or dimension (one grouping query each: unique_key_suite).
- Referential integrity: every fact row belongs to a customer that exists in core.dim_customers
  (a kept CRM account); order lines belong to kept orders. Unattributed interactions (no or an
  ambiguous email) are allowed, but must say so in attribution_status.
- Amounts reconcile with the raw order system: the net sales of the kept order lines equal the
  raw delivered net sales (latest version per line) minus the quarantined lines, and the orders
  carry exactly their lines' totals.
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

ATTRIBUTION = ["account_id", "email", "ambiguous_email", "unknown_email", "no_identity"]

# table -> (business key columns, columns that may not be negative)
KEYS: dict[str, tuple[list[str], list[str]]] = {
    "dim_customers": (["customer_id"], ["employee_count", "annual_revenue"]),
    "dim_contacts": (["contact_id"], []),
    "dim_products": (["product_id"], ["list_price"]),
    "fct_orders": (["order_id"], ["net_sales", "line_count"]),
    "fct_order_lines": (["order_id", "line_no"], ["quantity", "unit_price", "net_sales"]),
    "fct_tickets": (["ticket_id"], []),
    "fct_campaign_events": (["event_id"], []),
    "fct_web_events": (["event_id"], []),
    "fct_manual_tag_actions": ([], []),
}

# Facts whose rows must all be attributed to a customer (the others may be unattributed).
ATTRIBUTED = {"dim_contacts", "fct_orders", "fct_order_lines", "fct_manual_tag_actions"}


def build(facts: GateFacts) -> list[Suite]:
    del facts  # nothing here depends on the run
    return [key_suite(table, key, non_negative) for table, (key, non_negative) in KEYS.items()] + [
        unique_key_suite(f"core.{table}.unique_key", f"core.{table}", key,
                         f"core.{table}: no duplicate {key_label(key)}.")
        for table, (key, _) in KEYS.items() if key
    ] + [referential_integrity_suite(), order_amounts_suite()]


def key_suite(table: str, key: list[str], non_negative: list[str]) -> Suite:
    expectations: list[gxe.Expectation] = [
        gxe.ExpectColumnValuesToNotBeNull(column=column, description=f"core.{table}: {column} is set.")
        for column in key
    ]
    if table in ATTRIBUTED:
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id", description=f"core.{table}: every row belongs to a customer."))
    elif table.startswith("fct_"):
        expectations.append(gxe.ExpectColumnValuesToBeInSet(
            column="attribution_status", value_set=ATTRIBUTION,
            description=f"core.{table}: every row says how it was attributed to a customer "
                        "(unattributed rows are kept and counted, never dropped)."))
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, description=f"core.{table}: {column} is >= 0.")
        for column in non_negative
    ]
    return Suite(f"core.{table}", Table("core", table), expectations)


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


def order_amounts_suite() -> Suite:
    # The raw side re-implements "latest delivery wins" independently of the dbt macro, and the
    # rejected side reads the quarantined rows' JSON, so the three sums come from three places.
    net = "quantity * unit_price - coalesce(discount_amount, 0)"
    return problem_suite(
        "core.amounts_reconcile",
        f"""
        with raw_lines as (
            -- latest delivery of each line wins (arg_max_null: a null amount in the latest
            -- version must not fall back to an older version's amount)
            select arg_max_null({net}, struct_pack(
                delivered := coalesce(_delivered_at, '-infinity'::timestamp),
                file := _source_file, row_number := _source_row_number)) as net_sales
            from raw_orders.order_items
            group by coalesce(
                nullif(trim(order_id), '') || '#' || cast(line_no as varchar),
                '#unkeyed:' || _source_file || ':' || cast(_source_row_number as varchar))
        ),
        quarantined_lines as (
            select
                try_cast(json_extract_string(record, '$.quantity') as integer)
                * try_cast(json_extract_string(record, '$.unit_price') as decimal(18, 2))
                - coalesce(try_cast(json_extract_string(record, '$.discount_amount')
                    as decimal(18, 2)), 0) as net_sales
            from audit.quarantine_rows
            where source_table = 'orders/order_items'
        ),
        sums as (
            select
                (select coalesce(sum(net_sales), 0) from raw_lines) as raw_net_sales,
                (select coalesce(sum(net_sales), 0) from quarantined_lines) as quarantined_net_sales,
                (select coalesce(sum(net_sales), 0) from core.fct_order_lines) as kept_net_sales,
                (select coalesce(sum(net_sales), 0) from core.fct_orders) as order_net_sales,
                (select coalesce(sum(profit), 0) from core.fct_order_lines) as kept_profit,
                (select coalesce(sum(profit), 0) from core.fct_orders) as order_profit,
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
