-- marts.tag_health_flags: every tag-health flag raised, one row per run date and flag, with the
-- measure and the threshold (seeds/tag_health_thresholds.csv) that raised it. Kept over time
-- like marts.tag_health: a run replaces its own run date's rows.
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    full_refresh=false,
    on_schema_change='append_new_columns',
) }}
with

flags as (
    select * from {{ ref('int_tag_health_flags') }}
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        health_key,
        scope,
        dimension,
        tag_code,
        tag_value,
        flag,
        measure,
        threshold,
        threshold_parameter,
        reason
    from flags
)

select * from final
