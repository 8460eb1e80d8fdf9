-- marts.segment_runs: one row per run date and segment, as that run computed it (its
-- definition's hash, its member and holdout counts). A re-run of a date replaces that date's
-- rows. It also says which dates each segment was computed for: the membership history's
-- periods end and start on these dates.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='fail',
        full_refresh=false,
    )
}}
with

definitions as (
    select * from {{ ref('segment_definitions') }}
),

members as (
    select * from {{ ref('segment_members') }}
),

counts as (
    select
        segment_code,
        count(*) as member_count,
        sum(case when is_holdout then 1 else 0 end) as holdout_count
    from members
    group by segment_code
),

final as (
    select
        definitions.segment_code,
        definitions.definition_hash,
        coalesce(counts.member_count, 0) as member_count,
        cast(coalesce(counts.holdout_count, 0) as bigint) as holdout_count,
        {{ as_of_date() }} as as_of_date
    from definitions
    left join counts on definitions.segment_code = counts.segment_code
)

select * from final
