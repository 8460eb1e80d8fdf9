-- marts.tag_runs: one row per run date and tag that the run computed (its model was built;
-- a cadence's job builds only its tags, macros/history.sql computed_tag_codes), with the
-- customers (or contacts) it tagged. A re-run of a date replaces that date's rows of the tags
-- it computes. The tag histories' periods end and start on these dates.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['tag_code', 'as_of_date'],
        on_schema_change='fail',
        full_refresh=false,
    )
}}
with

definitions as (
    select
        tag_code,
        tag_level
    from {{ ref('tag_definitions') }}
),

account_counts as (
    select
        tag_code,
        count(distinct customer_id) as tagged_count
    from {{ ref('int_customer_tag_values') }}
    where {{ is_computed_tag('tag_code', 'account') }}
    group by tag_code
),

contact_counts as (
    select
        tag_code,
        count(distinct contact_id) as tagged_count
    from {{ ref('contact_tags') }}
    where {{ is_computed_tag('tag_code', 'contact') }}
    group by tag_code
),

counts as (
    select * from account_counts
    union all
    select * from contact_counts
),

final as (
    select
        definitions.tag_code,
        definitions.tag_level,
        cast(coalesce(counts.tagged_count, 0) as bigint) as tagged_count,
        {{ as_of_date() }} as as_of_date
    from definitions
    left join counts on definitions.tag_code = counts.tag_code
    where
        ({{ is_computed_tag('definitions.tag_code', 'account') }})
        or ({{ is_computed_tag('definitions.tag_code', 'contact') }})
)

select * from final
