"""Checkpoint authoritative_sources: every tag comes from its one authoritative source.

Enforced two ways:
(a) Lineage: from the dbt manifest, each tag model's upstream sources (minus the identity
    tables crm.accounts and crm.contacts) equal the catalog's `source_tables` for that tag. A tag
    model that starts reading campaigns.attributed_orders fails here.
(b) Reconciliation: revenue (net sales), frequency (purchases) and profit in
    marts.customer_profile match the order system (core.fct_orders) for every customer, the
    RFM scores behind customer_grade follow from those order-system figures, and where the
    campaign platform's attributed_orders feed disagrees with the order system the marts do not
    follow the feed.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from crm_tags.quality.spec import GateFacts, Query, Suite, problem_suite, sql_string

WINDOW_365D = (
    "(select value from reference.tag_thresholds"
    " where tag_code = 'all' and parameter = 'window_365d_days')"
)


def build(facts: GateFacts) -> list[Suite]:
    suites = [lineage_suite(facts), order_system_suite(facts), not_the_campaign_feed_suite(facts)]
    grade_as_of = facts.tag_as_of.get("customer_grade")
    if grade_as_of in (None, facts.run_date):
        suites.append(grade_from_orders_suite(facts))
    else:
        # A weekly grade is the order system's as of its own run; today's orders (late and
        # re-delivered ones included) need not agree with it. The gate of the run that built it
        # checked it; its lineage is checked above on every run.
        facts.notes.append(
            f"customer_grade was computed as of {grade_as_of} (its weekly run), not this run's "
            f"date {facts.run_date}: its R/F/M scores were checked against the order system by "
            "the gate of that run, not again")
    return suites + [feed_disagreement_suite(facts)]


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
        "(seeds/tag_definitions.csv source_tables; dbt lineage from manifest.json; the identity "
        "tables crm.accounts and crm.contacts are allowed everywhere).",
    )


def _order_system(facts: GateFacts) -> str:
    """Per-customer purchases, net sales and profit in the 365-day window, from core.fct_orders."""
    return f"""
        select customer_id,
            count(distinct order_id) as purchases_365d,
            sum(net_sales) as net_sales_365d,
            sum(profit) as profit_365d,
        from core.fct_orders
        where is_purchase
            and {facts.run_date_sql} - order_date >= 0
            and {facts.run_date_sql} - order_date < {WINDOW_365D}
        group by customer_id
    """


def _campaign_feed(facts: GateFacts) -> str:
    """Per-customer attributed orders and revenue in the 365-day window, per the campaign feed."""
    return f"""
        select account_id as customer_id,
            count(distinct order_id) as attributed_orders_365d,
            sum(attributed_revenue) as attributed_revenue_365d,
        from staging.stg_campaigns__attributed_orders
        where rejection_reason is null and account_id is not null
            and {facts.run_date_sql} - cast(conversion_ts as date) >= 0
            and {facts.run_date_sql} - cast(conversion_ts as date) < {WINDOW_365D}
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
            end as problem
        from marts.customer_profile as profile
        left join order_system on profile.customer_id = order_system.customer_id
        """,
        "Revenue, frequency and profit of every customer (marts.customer_profile net_sales_365d, "
        "purchases_365d, profit_365d) match the order system, the one authoritative source.",
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


def grade_from_orders_suite(facts: GateFacts) -> Suite:
    def param(parameter: str) -> str:
        return ("(select value from reference.tag_thresholds where tag_code = 'customer_grade'"
                f" and parameter = '{parameter}')")

    def frequency(parameter: str) -> str:
        return ("(select value from reference.tag_thresholds where tag_code = "
                f"'purchase_frequency' and parameter = '{parameter}')")

    return problem_suite(
        "authoritative_sources.grade_from_orders",
        f"""
        with order_system as ({_order_system(facts)}),
        last_purchase as (
            select customer_id, min({facts.run_date_sql} - order_date) as days_since_last_purchase
            from core.fct_orders
            where is_purchase and order_date <= {facts.run_date_sql}
            group by customer_id
        ),
        expected as (
            select profile.customer_id, profile.customer_grade,
                profile.r_score, profile.f_score, profile.m_score,
                case
                    when last_purchase.customer_id is null then 0
                    when last_purchase.days_since_last_purchase <= {param('r5_max_days')} then 5
                    when last_purchase.days_since_last_purchase <= {param('r3_max_days')} then 3
                    else 1
                end as expected_r,
                case
                    when last_purchase.customer_id is null then 0
                    when coalesce(order_system.purchases_365d, 0)
                        >= {frequency('high_min_purchases')} then 5
                    when coalesce(order_system.purchases_365d, 0)
                        >= {frequency('medium_min_purchases')} then 3
                    else 1
                end as expected_f,
                case
                    when last_purchase.customer_id is null then 0
                    when coalesce(order_system.net_sales_365d, 0) >= {param('m5_min_net_sales')} then 5
                    when coalesce(order_system.net_sales_365d, 0) >= {param('m3_min_net_sales')} then 3
                    else 1
                end as expected_m,
            from marts.customer_profile as profile
            left join order_system on profile.customer_id = order_system.customer_id
            left join last_purchase on profile.customer_id = last_purchase.customer_id
        )
        select customer_id, case
            when (r_score, f_score, m_score) <> (expected_r, expected_f, expected_m) then printf(
                'customer %s: customer_grade %s rests on R/F/M = %d/%d/%d, but the order system '
                || 'gives %d/%d/%d', customer_id, customer_grade, r_score, f_score, m_score,
                expected_r, expected_f, expected_m)
            end as problem
        from expected
        """,
        "customer_grade comes from the order system only: the R, F and M scores in the profile "
        "follow from the order system's last purchase, purchases and net sales (thresholds in "
        "seeds/tag_thresholds.csv).",
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
        description="Customers whose campaign-attributed revenue disagrees with the order "
                    "system (information: the marts must follow the order system for them).")])
