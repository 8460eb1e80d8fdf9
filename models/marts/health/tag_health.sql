-- marts.tag_health: the health of the tag system for data stewards, one row per guideline
-- dimension, per tag and per value at each run date, kept over time (docs/tag-health.md).
-- A run replaces its own run date's rows and keeps the others (--full-refresh keeps them too),
-- so trends read across run dates; the change since the previous run compares with the latest
-- earlier run date held here. The flags of the row, with the thresholds that raised them, are
-- listed in flags / flag_reasons (one row per flag: marts.tag_health_flags).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of_date',
    full_refresh=false,
    on_schema_change='append_new_columns',
) }}
with

figures as (
    select * from {{ ref('int_tag_health_figures') }}
),

flags as (
    select * from {{ ref('int_tag_health_flags') }}
),

{% if is_incremental() %}
earlier as (
    select
        health_key,
        as_of_date,
        holders
    from {{ this }}
    where as_of_date < {{ as_of_date() }}
),

previous_date as (
    select max(as_of_date) as as_of_date from earlier
),

previous as (
    select
        earlier.health_key,
        earlier.as_of_date,
        earlier.holders
    from earlier
    inner join previous_date on earlier.as_of_date = previous_date.as_of_date
),
{% else %}
previous as (
    select
        cast(null as {{ dbt.type_string() }}) as health_key,
        cast(null as date) as as_of_date,
        cast(null as integer) as holders
    where 1 = 0
),
{% endif %}

-- ordered by flag, then reason: a row may raise one flag several times (redundant with two
-- tags), listed in the same order on every engine
row_flags as (
    select
        health_key,
        {{ dbt.listagg('flag', "', '", 'order by flag, reason') }} as flags,
        {{ dbt.listagg(dbt.concat(['flag', "': '", 'reason']), "'; '", 'order by flag, reason') }}
            as flag_reasons,
        count(*) as flag_count
    from flags
    group by health_key
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        figures.health_key,
        figures.scope,
        figures.dimension,
        figures.tag_code,
        figures.tag_value,
        figures.label_zh,
        figures.label_en,
        figures.refresh_frequency,
        figures.sort_order,
        figures.live_customers,
        figures.holders,
        figures.coverage,
        previous.as_of_date as previous_as_of_date,
        previous.holders as previous_holders,
        figures.holders - previous.holders as holders_change,
        figures.largest_value,
        figures.largest_value_holders,
        figures.largest_value_coverage,
        figures.concentration,
        figures.value_share,
        figures.tags_in_dimension,
        figures.tag_as_of_date,
        figures.cadence_days,
        figures.staleness_days,
        figures.previous_tag_as_of_date,
        figures.changed_holders,
        figures.changed_share,
        coalesce(row_flags.flag_count, 0) as flag_count,
        coalesce(row_flags.flags, '') as flags,
        coalesce(row_flags.flag_reasons, '') as flag_reasons
    from figures
    left join previous on figures.health_key = previous.health_key
    left join row_flags on figures.health_key = row_flags.health_key
)

select * from final
