"""Checkpoint landing_zone: what arrived in the Parquet landing zone, after dedupe and quarantine.

- Required columns and their contract types, per raw table (the raw views DuckDB reads).
- On the rows staging kept (rejected rows are in audit.quarantine_rows with their reason):
  keys present and unique after dedupe, enum codes within their sets, event dates not after the
  run date, money and quantities >= 0.
- Nothing lost: rows in = kept + quarantined + superseded duplicates, per table.
- A dirt budget: a table whose delivery is mostly quarantined stops the gate.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from crm_tags.quality.spec import (
    KEPT_ROWS,
    GateFacts,
    Suite,
    Table,
    key_label,
    problem_suite,
    sql_string,
    unique_key_suite,
)

# Per landing table: its staging model, business key, enum sets, event dates the spec says
# may not lie after the run date, and columns that may not be negative.
TABLES: dict[str, dict] = {
    "crm/accounts": {
        "staging": "stg_crm__accounts", "key": ["account_id"],
        "enums": {"customer_type": ["B2B", "B2C"]},
        "non_negative": ["employee_count", "annual_revenue"],
    },
    "crm/contacts": {
        "staging": "stg_crm__contacts", "key": ["contact_id"],
        "enums": {"gender": ["M", "F"]},
    },
    "crm/manual_tags": {
        "staging": "stg_crm__manual_tags", "key": [],  # a history of actions, no key
        "required": ["account_id", "tag_code"],
        "enums": {"action": ["add", "remove"]},
        "dates": ["operated_at"],
    },
    "orders/orders": {
        "staging": "stg_orders__orders", "key": ["order_id"],
        "required": ["account_id"],
        "enums": {
            "status": ["paid", "shipped", "completed", "cancelled", "refunded"],
            "sales_channel": ["online", "offline", "partner"],
        },
        "dates": ["order_ts"],
    },
    "orders/order_items": {
        "staging": "stg_orders__order_items", "key": ["order_id", "line_no"],
        "required": ["product_id"],
        "non_negative": ["quantity", "unit_price", "discount_amount", "unit_cost"],
    },
    "orders/products": {
        "staging": "stg_orders__products", "key": ["product_id"],
        "non_negative": ["list_price"],
    },
    "orders/promotions": {"staging": "stg_orders__promotions", "key": ["promotion_id"]},
    "support/tickets": {
        "staging": "stg_support__tickets", "key": ["ticket_id"],
        "enums": {
            "channel": ["phone", "online_chat", "email", "wechat", "account_manager"],
            "ticket_type": ["inquiry", "complaint", "after_sales", "return"],
            "satisfaction_score": [1, 2, 3, 4, 5],
        },
        "dates": ["opened_at"],
    },
    "campaigns/campaigns": {
        "staging": "stg_campaigns__campaigns", "key": ["campaign_id"],
        "enums": {"channel": ["email", "sms", "wechat", "ads"]},
    },
    "campaigns/campaign_events": {
        "staging": "stg_campaigns__campaign_events", "key": ["event_id"],
        "enums": {"event_type": ["sent", "delivered", "opened", "clicked", "unsubscribed"]},
        "dates": ["event_ts"],
    },
    "campaigns/web_events": {
        "staging": "stg_campaigns__web_events", "key": ["event_id"],
        "enums": {"event_type": ["page_view", "add_to_cart", "search"]},
        "dates": ["event_ts"],
    },
    "campaigns/attributed_orders": {
        "staging": "stg_campaigns__attributed_orders", "key": ["order_id", "campaign_id"],
        "non_negative": ["attributed_revenue"],
        "dates": ["conversion_ts"],
    },
}


def build(facts: GateFacts) -> list[Suite]:
    return [contract_suite(facts)] + [
        kept_rows_suite(table, spec, facts) for table, spec in TABLES.items()
    ] + [
        unique_key_suite(
            f"landing_zone.{table.replace('/', '.')}.unique_key", f"staging.{spec['staging']}",
            spec["key"],
            f"{table}: {key_label(spec['key'])} is unique after dedupe (latest version wins).",
            where="rejection_reason is null")
        for table, spec in TABLES.items() if spec["key"]
    ] + [reconciliation_suite(), quarantine_budget_suite(facts)]


# The contract's types as PostgreSQL's information_schema names them (crm-tags load casts
# every column to the contract type, crm_tags.load), and as Spark's catalog does (the raw
# views cast every column to the contract type, spark__register_landing_zone).
_ENGINE_TYPES = {
    "postgres": {"varchar": "character varying", "decimal(18,2)": "numeric",
                 "timestamp": "timestamp without time zone"},
    "spark": {"varchar": "string", "integer": "int"},
}


def _engine_type(kind: str, engine: str) -> str:
    return _ENGINE_TYPES.get(engine, {}).get(kind, kind)


def contract_suite(facts: GateFacts) -> Suite:
    expected = ", ".join(
        f"({sql_string(table)}, {sql_string('raw_' + table.split('/')[0])}, "
        f"{sql_string(table.split('/')[1])}, {sql_string(column)}, "
        f"{sql_string(_engine_type(kind, facts.engine).upper())})"
        for table, columns in facts.contract.items()
        for column, kind in columns
    )
    return problem_suite(
        "landing_zone.contract",
        f"""
        with expected(landing_table, table_schema, table_name, column_name, data_type) as (
            values {expected}
        )
        select
            expected.landing_table,
            expected.column_name,
            case
                when actual.column_name is null then printf(
                    '%s: required column %s (%s) is missing from the raw view %s.%s',
                    expected.landing_table, expected.column_name, expected.data_type,
                    expected.table_schema, expected.table_name)
                when upper(replace(actual.data_type, ' ', '')) <> replace(expected.data_type, ' ', '')
                    then printf('%s: column %s is %s, the contract says %s',
                        expected.landing_table, expected.column_name, actual.data_type,
                        expected.data_type)
            end as problem
        from expected
        left join information_schema.columns as actual
            on actual.table_schema = expected.table_schema
            and actual.table_name = expected.table_name
            and actual.column_name = expected.column_name
        """,
        "Every landing table has the contract's required columns with the contract's types "
        "(models/staging/*/_*__sources.yml).",
    )


def kept_rows_suite(table: str, spec: dict, facts: GateFacts) -> Suite:
    run_end = f"{facts.run_date.isoformat()} 23:59:59.999999"
    expectations: list[gxe.Expectation] = []
    for column in spec["key"] + spec.get("required", []):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(
            column=column, row_condition=KEPT_ROWS,
            description=f"{table}: every kept row has its {column}."))
    for column, values in spec.get("enums", {}).items():
        expectations.append(gxe.ExpectColumnValuesToBeInSet(
            column=column, value_set=values, row_condition=KEPT_ROWS,
            description=f"{table}: {column} of every kept row is one of {', '.join(map(str, values))}."))
    for column in spec.get("dates", []):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=column, max_value=run_end, row_condition=KEPT_ROWS,
            description=f"{table}: no kept {column} lies after the run date {facts.run_date}."))
    for column in spec.get("non_negative", []):
        expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, row_condition=KEPT_ROWS,
            description=f"{table}: {column} of every kept row is >= 0."))
    return Suite(f"landing_zone.{table.replace('/', '.')}", Table("staging", spec["staging"]),
                 expectations)


def reconciliation_suite() -> Suite:
    return problem_suite(
        "landing_zone.nothing_lost",
        """
        select
            source_table,
            case when not is_balanced then printf(
                '%s: %d rows delivered, but %d kept + %d quarantined + %d superseded duplicates'
                || ' = %d, and %d published (must equal the kept rows)',
                source_table, rows_in, rows_kept, rows_rejected, duplicates_superseded,
                rows_kept + rows_rejected + duplicates_superseded, rows_published)
            end as problem
        from audit.reconciliation
        """,
        "Nothing vanishes: per landing table, rows delivered = rows kept + rows quarantined "
        "(with their reason) + superseded duplicates, and every kept row is published.",
    )


def quarantine_budget_suite(facts: GateFacts) -> Suite:
    policy = facts.policy["quarantine"]
    default = float(policy["max_rejected_share"])
    min_rows = int(policy.get("min_rows", 0))
    per_table = {table: float(share) for table, share in (policy.get("per_table") or {}).items()}
    budget = "case reconciliation.source_table " + " ".join(
        f"when {sql_string(table)} then {share}" for table, share in per_table.items()
    ) + f" else {default} end" if per_table else str(default)
    return problem_suite(
        "landing_zone.quarantine_budget",
        f"""
        with later as (
            -- rows dated after the run date are not dirt for this run (a build as of a past
            -- date, crm-tags backfill): they count neither as delivered nor as quarantined
            select source_table, count(*) as rows_later
            from audit.quarantine_rows
            where rejection_reason like '%after the run date'
            group by source_table
        ),
        reasons as (
            select source_table, rejection_reason, count(*) as rows_rejected,
                row_number() over (
                    partition by source_table order by count(*) desc, rejection_reason
                ) as rank
            from audit.quarantine_rows
            where rejection_reason not like '%after the run date'
            group by source_table, rejection_reason
        ),
        shares as (
            select reconciliation.source_table,
                reconciliation.rows_in - coalesce(later.rows_later, 0) as rows_in,
                reconciliation.rows_rejected - coalesce(later.rows_later, 0) as rows_rejected,
                {budget} as budget
            from audit.reconciliation
            left join later on reconciliation.source_table = later.source_table
        )
        select
            shares.source_table,
            case when shares.rows_in >= greatest({min_rows}, 1)
                and shares.rows_rejected > shares.budget * shares.rows_in
                then printf(
                    '%s: %d of %d delivered rows (%.1f%%) were quarantined, above the budget of '
                    || '%.0f%%; most common reason: %s (%d rows). The delivery looks broken rather '
                    || 'than dirty: see audit.quarantine_rows.',
                    shares.source_table, shares.rows_rejected, shares.rows_in,
                    cast(100.0 * shares.rows_rejected / shares.rows_in as double precision),
                    cast(100.0 * shares.budget as double precision),
                    reasons.rejection_reason, reasons.rows_rejected)
            end as problem
        from shares
        left join reasons on reasons.source_table = shares.source_table and reasons.rank = 1
        """,
        "Dirty rows are quarantined and the gate passes, unless a landing table's delivery is "
        "mostly quarantined (budget in expectations/gate.yml). Rows dated after the run date "
        "are not dirt for that run (a build as of a past date): they are left out of both sides.",
    )
