"""Checkpoint tag_marts: what BI tools read (schema marts).

- Every tag value is one of the catalog's codes (seeds/tag_value_definitions.csv).
- A customer holds at most one value of a single-valued tag (and each value of a multi-valued
  tag once); one profile row per customer.
- Every non-deleted customer is in marts.customer_profile, and only those; every tag row
  belongs to a profile customer.
- Every tag row carries its evidence.
- The distribution of each tag stays within the bounds set in expectations/gate.yml (e.g. the
  VIP share), and a sudden swing against the previous published run is flagged.
"""

from __future__ import annotations

import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from crm_tags.quality.distribution import HISTORY_TABLE, distribution_sql
from crm_tags.quality.spec import (
    GateFacts,
    Query,
    Suite,
    Table,
    problem_suite,
    repeated_key_hashes,
    sql_string,
    unique_key_suite,
)


def build(facts: GateFacts) -> list[Suite]:
    suites = [
        customer_tags_suite(), profile_suite(facts),
        unique_key_suite("marts.customer_profile.unique_key", "marts.customer_profile",
                         ["customer_id"],
                         "marts.customer_profile: one row per customer (no duplicated customer)."),
        contact_tags_suite(),
        unique_key_suite("marts.contact_tags.unique_key", "marts.contact_tags",
                         ["contact_id", "tag_code"],
                         "marts.contact_tags: a contact holds one value per contact-level tag."),
        catalog_suite(),
        values_in_catalog_suite(), one_value_suite(), profile_coverage_suite(), evidence_suite(),
    ]
    minimum = int(facts.policy["distribution"]["min_customers"])
    if facts.customers < minimum:
        facts.notes.append(
            f"tag distribution bounds and swing not checked: {facts.customers} customers, "
            f"fewer than min_customers = {minimum} (expectations/gate.yml)")
        return suites
    suites.append(distribution_bounds_suite(facts))
    if facts.previous_run is None:
        facts.notes.append("tag distribution swing not checked: no previous published run")
    elif facts.previous_customers < minimum:
        facts.notes.append("tag distribution swing not checked: the previous published run had "
                           f"{facts.previous_customers} customers")
    else:
        suites.append(distribution_swing_suite(facts))
    return suites


def customer_tags_suite() -> Suite:
    return Suite("marts.customer_tags", Table("marts", "customer_tags"), [
        gxe.ExpectColumnValuesToNotBeNull(
            column=column, description=f"marts.customer_tags: every row has its {column}.")
        for column in ("customer_id", "tag_code", "tag_value", "dimension", "as_of_date")
    ])


def profile_suite(facts: GateFacts) -> Suite:
    expectations: list[gxe.Expectation] = [
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id", description="marts.customer_profile: every row has a customer_id."),
    ]
    for tag_code in ("customer_grade", "lifecycle_stage"):
        expectations.append(gxe.ExpectColumnValuesToNotBeNull(
            column=tag_code,
            description=f"marts.customer_profile: every customer has a {tag_code}."))
    for tag_code, tag in facts.catalog.items():
        if tag.tag_level == "account" and not tag.is_multi_valued:
            values = facts.catalog_values.get(tag_code, [])
            expectations.append(gxe.ExpectColumnValuesToBeInSet(
                column=tag_code, value_set=values,
                description=f"marts.customer_profile: column {tag_code} holds only the "
                            f"catalog's codes ({', '.join(values)})."))
    return Suite("marts.customer_profile", Table("marts", "customer_profile"), expectations)


def contact_tags_suite() -> Suite:
    return Suite("marts.contact_tags", Table("marts", "contact_tags"), [
        gxe.ExpectColumnValuesToNotBeNull(
            column="contact_id", description="marts.contact_tags: every row has a contact_id."),
    ])


def catalog_suite() -> Suite:
    return Suite("marts.tag_catalog", Table("marts", "tag_catalog"), [
        gxe.ExpectColumnValuesToBeUnique(
            column="tag_code", description="marts.tag_catalog: one row per tag."),
        gxe.ExpectColumnValuesToNotBeNull(
            column="authoritative_source",
            description="marts.tag_catalog: every tag names its one authoritative source."),
    ])


def values_in_catalog_suite() -> Suite:
    return problem_suite(
        "tag_marts.values_in_catalog",
        """
        with assigned as (
            select 'marts.customer_tags' as mart, customer_id as holder, tag_code, tag_value
            from marts.customer_tags
            union all
            select 'marts.contact_tags', contact_id, tag_code, tag_value from marts.contact_tags
        ),
        checked as (
            select assigned.mart, assigned.tag_code, assigned.tag_value,
                count(*) as rows_held, min(assigned.holder) as example,
                bool_or(definitions.tag_value is null) as outside,
            from assigned
            left join reference.tag_value_definitions as definitions
                on assigned.tag_code = definitions.tag_code
                and assigned.tag_value = definitions.tag_value
            group by all
        )
        select mart, tag_code, tag_value, case when outside then printf(
            '%s: %s = ''%s'' is not one of the catalog''s codes (%d rows, e.g. %s)',
            mart, tag_code, tag_value, rows_held, example) end as problem
        from checked
        """,
        "Every tag value in the marts is one of the catalog's codes "
        "(seeds/tag_value_definitions.csv).",
    )


def one_value_suite() -> Suite:
    # (customer, tag) pairs held more than once, by their hash first (1M customers: 2.2 -> 1.9 s)
    repeated = repeated_key_hashes("marts.customer_tags", ["customer_id", "tag_code"])
    return problem_suite(
        "tag_marts.one_value_per_tag",
        f"""
        with repeated as ({repeated}),
        offending as (
            select tags.customer_id, tags.tag_code, count(*) as rows_held,
                coalesce(definitions.is_multi_valued, false) as is_multi_valued,
                count(distinct tags.tag_value) as distinct_values,
                string_agg(tags.tag_value, ', ' order by tags.tag_value) as tag_values,
            from marts.customer_tags as tags
            left join reference.tag_definitions as definitions on tags.tag_code = definitions.tag_code
            where hash(tags.customer_id, tags.tag_code) in (select key_hash from repeated)
            group by tags.customer_id, tags.tag_code, definitions.is_multi_valued
            having count(*) > 1
        )
        select customer_id, tag_code, case
            when not is_multi_valued then printf(
                'customer %s holds %d values of the single-valued tag %s: %s',
                customer_id, rows_held, tag_code, tag_values)
            when rows_held > distinct_values then printf(
                'customer %s holds a value of %s more than once: %s',
                customer_id, tag_code, tag_values)
            end as problem
        from offending
        """,
        "A customer holds at most one value of a single-valued tag, and each value of a "
        "multi-valued tag once.",
    )


def profile_coverage_suite() -> Suite:
    return problem_suite(
        "tag_marts.every_customer_profiled",
        """
        with profile as (
            select customer_id, count(*) as rows_held from marts.customer_profile group by all
        ),
        live as (
            select customer_id, is_deleted from core.dim_customers
        )
        select coalesce(live.customer_id, profile.customer_id) as customer_id, case
            when profile.customer_id is null and not live.is_deleted then printf(
                'customer %s is a live CRM account but missing from marts.customer_profile',
                live.customer_id)
            when live.customer_id is null then printf(
                'marts.customer_profile holds %s, which is not a CRM account', profile.customer_id)
            when live.is_deleted and profile.customer_id is not null then printf(
                'marts.customer_profile holds %s, a deleted account', profile.customer_id)
            end as problem
        from live
        full outer join profile on live.customer_id = profile.customer_id
        union all
        select tags.customer_id, case when profile.customer_id is null then printf(
            '%s: customer %s holds %s = %s but is not in marts.customer_profile '
            || '(deleted or unknown)', tags.mart, tags.customer_id, tags.tag_code, tags.tag_value)
            end
        from (
            select 'marts.customer_tags' as mart, customer_id, tag_code, tag_value
            from marts.customer_tags
            union all
            select 'marts.contact_tags', customer_id, tag_code, tag_value from marts.contact_tags
        ) as tags
        left join profile on tags.customer_id = profile.customer_id
        """,
        "Every non-deleted customer is in marts.customer_profile, no deleted or unknown one is, "
        "and every tag row belongs to a profiled customer.",
    )


def evidence_suite() -> Suite:
    return problem_suite(
        "tag_marts.evidence",
        """
        select customer_id, case when evidence is null or trim(evidence) = '' then printf(
            'marts.customer_tags: customer %s holds %s = %s without evidence',
            customer_id, tag_code, tag_value) end as problem
        from marts.customer_tags
        union all
        select contact_id, case when evidence is null or trim(evidence) = '' then printf(
            'marts.contact_tags: contact %s holds %s = %s without evidence',
            contact_id, tag_code, tag_value) end
        from marts.contact_tags
        """,
        "Every tag row carries its evidence (the metric it was derived from).",
    )


def distribution_bounds_suite(facts: GateFacts) -> Suite:
    expectations: list[gxe.Expectation] = []
    for tag_code, values in (facts.policy["distribution"].get("bounds") or {}).items():
        for tag_value, (low, high) in values.items():
            label = f"customers holding any {tag_code}" if tag_value == "*" else \
                f"customers with {tag_code} = {tag_value}"
            expectations.append(gxe.ExpectColumnValuesToBeBetween(
                column="share", min_value=float(low), max_value=float(high),
                row_condition=Column("tag_key") == f"{tag_code}:{tag_value}",
                description=f"The share of {label} is between {low:.1%} and {high:.1%} "
                            "(expectations/gate.yml).",
            ))
    return Suite("tag_marts.distribution_bounds", Query(distribution_sql()), expectations)


def distribution_swing_suite(facts: GateFacts) -> Suite:
    limit = float(facts.policy["distribution"]["max_swing"])
    return problem_suite(
        "tag_marts.distribution_swing",
        f"""
        with current_run as ({distribution_sql()}),
        previous_run as (
            select tag_code, tag_value, share, as_of_date from {HISTORY_TABLE}
            where run_id = {sql_string(facts.previous_run or "")}
        )
        select current_run.tag_key, case
            when abs(current_run.share - coalesce(previous_run.share, 0)) > {limit} then printf(
                '%s moved from %.1f%% of customers (run of %s) to %.1f%% (now): more than %.0f '
                || 'percentage points', current_run.tag_key, 100 * coalesce(previous_run.share, 0),
                coalesce(cast(previous_run.as_of_date as varchar), 'the previous run'),
                100 * current_run.share, {100 * limit})
            end as problem
        from current_run
        left join previous_run
            on current_run.tag_code = previous_run.tag_code
            and current_run.tag_value = previous_run.tag_value
        """,
        "No tag value's share swings suddenly against the previous published run "
        f"(limit {limit:.0%} points, expectations/gate.yml).",
        severity=facts.policy["distribution"].get("swing_severity", "warning"),
    )
