"""Checkpoint authoritative_sources: every tag comes from its one authoritative source.

Enforced two ways:
(a) Lineage: from the dbt manifest, each tag model's upstream sources (minus the identity
    tables crm.accounts and crm.contacts) equal the catalog's `source_tables` for that tag. A tag
    model that starts reading campaigns.attributed_orders fails here.
(b) Reconciliation: the metrics the order tags are computed from (purchases, net sales and
    profit in the 365-day window, days since the last purchase) in marts.customer_profile match
    the order system (core.fct_orders) for every customer, and where the campaign platform's
    attributed_orders feed disagrees with the order system the marts do not follow the feed.

The metrics are recomputed here from core.fct_orders on purpose, independently of the dbt
models. The tag rules (thresholds, scores, grades) are not: each lives in its tag model only,
and the dbt unit tests next to it test it (e.g. customer_grade's RFM boundaries).
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from crm_tags.quality.spec import GateFacts, Query, Suite, problem_suite, sql_string

WINDOW_365D = (
    "(select value from reference.tag_thresholds"
    " where tag_code = 'all' and parameter = 'window_365d_days')"
)


def build(facts: GateFacts) -> list[Suite]:
    return [lineage_suite(facts), order_system_suite(facts), not_the_campaign_feed_suite(facts),
            feed_disagreement_suite(facts)]


def lineage_suite(facts: GateFacts) -> Suite:
    rows = ", ".join(
        f"({sql_string(tag.tag_code)}, {sql_string(tag.problem) if tag.problem else 'null'})"
        for tag in facts.lineage if tag.model is not None
    ) or "('none', null)"
    for tag in facts.lineage:
        if tag.model is None:
            facts.notes.append(f"tag {tag.tag_code} has no model yet: its lineage is not checked")
    return problem_suite(
        "authoritative_sources.lineage",
        f"select tag_code, problem from (values {rows}) as lineage(tag_code, problem)",
        "Each tag model reads exactly the raw tables its catalog entry declares "
        "(source_tables in vars.tag_catalog, dbt_project.yml; dbt lineage from manifest.json; "
        "the identity tables crm.accounts and crm.contacts are allowed everywhere).",
    )


def _order_system(facts: GateFacts) -> str:
    """Per-customer purchases, net sales and profit in the 365-day window, and days since the
    last purchase, from core.fct_orders (customers who never purchased have no row)."""
    days = facts.days_before_run("order_date")
    in_window = f"{days} >= 0 and {days} < {WINDOW_365D}"
    return f"""
        select customer_id,
            count(distinct order_id) filter (where {in_window}) as purchases_365d,
            sum(net_sales) filter (where {in_window}) as net_sales_365d,
            sum(profit) filter (where {in_window}) as profit_365d,
            min({days}) as days_since_last_purchase
        from core.fct_orders
        where is_purchase and order_date <= {facts.run_date_sql}
        group by customer_id
    """


def _campaign_feed(facts: GateFacts) -> str:
    """Per-customer attributed orders and revenue in the 365-day window, per the campaign feed."""
    days = facts.days_before_run("cast(conversion_ts as date)")
    return f"""
        select account_id as customer_id,
            count(distinct order_id) as attributed_orders_365d,
            sum(attributed_revenue) as attributed_revenue_365d
        from staging.stg_campaigns__attributed_orders
        where rejection_reason is null and account_id is not null
            and {days} >= 0 and {days} < {WINDOW_365D}
        group by account_id
    """


def order_system_suite(facts: GateFacts) -> Suite:
    return problem_suite(
        "authoritative_sources.order_system_figures",
        f"""
        with order_system as ({_order_system(facts)})
        select profile.customer_id, case
            when profile.net_sales_365d <> coalesce(order_system.net_sales_365d, 0) then printf(
                'customer %s: net_sales_365d is %s in the profile but %s in the order system',
                profile.customer_id, cast(profile.net_sales_365d as varchar),
                cast(coalesce(order_system.net_sales_365d, 0) as varchar))
            when profile.purchases_365d <> coalesce(order_system.purchases_365d, 0) then printf(
                'customer %s: purchases_365d is %s in the profile but %s in the order system',
                profile.customer_id, cast(profile.purchases_365d as varchar),
                cast(coalesce(order_system.purchases_365d, 0) as varchar))
            when profile.profit_365d <> coalesce(order_system.profit_365d, 0) then printf(
                'customer %s: profit_365d is %s in the profile but %s in the order system',
                profile.customer_id, cast(profile.profit_365d as varchar),
                cast(coalesce(order_system.profit_365d, 0) as varchar))
            when profile.days_since_last_purchase
                    is distinct from order_system.days_since_last_purchase then printf(
                'customer %s: days_since_last_purchase is %s in the profile but %s in the '
                || 'order system', profile.customer_id,
                coalesce(cast(profile.days_since_last_purchase as varchar), 'empty'),
                coalesce(cast(order_system.days_since_last_purchase as varchar),
                    'empty (never purchased)'))
            end as problem
        from marts.customer_profile as profile
        left join order_system on profile.customer_id = order_system.customer_id
        """,
        "The order metrics of every customer (marts.customer_profile purchases_365d, "
        "net_sales_365d, profit_365d, days_since_last_purchase) match the order system, the one "
        "authoritative source.",
    )


def not_the_campaign_feed_suite(facts: GateFacts) -> Suite:
    return problem_suite(
        "authoritative_sources.not_the_campaign_feed",
        f"""
        with order_system as ({_order_system(facts)}),
        campaign_feed as ({_campaign_feed(facts)})
        select profile.customer_id, case
            when campaign_feed.attributed_revenue_365d
                    <> coalesce(order_system.net_sales_365d, 0)
                and profile.net_sales_365d = campaign_feed.attributed_revenue_365d then printf(
                'customer %s: net_sales_365d %s follows the campaign feed, not the order system (%s)',
                profile.customer_id, cast(profile.net_sales_365d as varchar),
                cast(coalesce(order_system.net_sales_365d, 0) as varchar))
            when campaign_feed.attributed_orders_365d <> coalesce(order_system.purchases_365d, 0)
                and profile.purchases_365d = campaign_feed.attributed_orders_365d then printf(
                'customer %s: purchases_365d %s follows the campaign feed, not the order system (%s)',
                profile.customer_id, cast(profile.purchases_365d as varchar),
                cast(coalesce(order_system.purchases_365d, 0) as varchar))
            end as problem
        from marts.customer_profile as profile
        inner join campaign_feed on profile.customer_id = campaign_feed.customer_id
        left join order_system on profile.customer_id = order_system.customer_id
        """,
        "Where the campaign platform's attributed_orders disagree with the order system, the "
        "marts hold the order system's revenue and purchase count, never the feed's.",
    )


def feed_disagreement_suite(facts: GateFacts) -> Suite:
    # Informational: how often the feed disagrees, i.e. how much the checks above protect.
    return Suite("authoritative_sources.feed_disagreement", Query(f"""
        with order_system as ({_order_system(facts)}),
        campaign_feed as ({_campaign_feed(facts)})
        select count(*) filter (where campaign_feed.attributed_revenue_365d
                <> coalesce(order_system.net_sales_365d, 0)) as customers_where_feed_disagrees
        from campaign_feed
        left join order_system on campaign_feed.customer_id = order_system.customer_id
    """), [gxe.ExpectColumnMaxToBeBetween(
        column="customers_where_feed_disagrees", min_value=0, severity="info",
        meta={"unit": "customers"},
        description="Customers whose campaign-attributed revenue disagrees with the order "
                    "system (information: the marts must follow the order system for them).")])
