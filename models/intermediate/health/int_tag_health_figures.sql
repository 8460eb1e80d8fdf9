-- The tag-health figures of this run (marts.tag_health adds the previous run's and the flags):
-- one row per guideline dimension (scope dimension), per catalog tag (scope tag) and per value
-- of each tag (scope value). Coverage is over the live customers; a tag's concentration is the
-- share of its holders that hold its largest value; staleness is the days from the date the
-- tag's model was computed as of to this run date, set against its cadence (seed days).
with

catalog as (
    select * from {{ ref('tag_definitions') }}
),

value_definitions as (
    select * from {{ ref('tag_value_definitions') }}
),

holdings as (
    select * from {{ ref('int_tag_holdings') }}
),

stability as (
    select * from {{ ref('int_tag_stability') }}
),

live as (
    select count(*) as live_customers from {{ ref('dim_customers') }} where not is_deleted
),

tag_stats as (
    select
        tag_code,
        count(distinct customer_id) as holders,
        max(as_of_date) as tag_as_of_date
    from holdings
    group by tag_code
),

value_stats as (
    select
        tag_code,
        tag_value,
        count(*) as holders
    from holdings
    group by tag_code, tag_value
),

-- the catalog's values, and any value the data holds beyond them (a value the catalog does not
-- list fails the tag models' tests, but is still counted here rather than hidden)
tag_values as (
    select
        tag_code,
        tag_value,
        label_zh,
        label_en,
        sort_order
    from value_definitions
    union all
    select
        value_stats.tag_code,
        value_stats.tag_value,
        value_stats.tag_value as label_zh,
        value_stats.tag_value as label_en,
        1000000 as sort_order
    from value_stats
    left join value_definitions
        on
            value_stats.tag_code = value_definitions.tag_code
            and value_stats.tag_value = value_definitions.tag_value
    where value_definitions.tag_code is null
),

ranked_values as (
    select
        tag_code,
        tag_value,
        holders,
        row_number() over (partition by tag_code order by holders desc, tag_value asc) as holder_rank
    from value_stats
),

largest_values as (
    select
        tag_code,
        tag_value as largest_value,
        holders as largest_value_holders
    from ranked_values
    where holder_rank = 1
),

tags as (
    select
        catalog.dimension,
        catalog.tag_code,
        catalog.label_zh,
        catalog.label_en,
        catalog.refresh_frequency,
        tag_stats.tag_as_of_date,
        coalesce(tag_stats.holders, 0) as holders,
        largest_values.largest_value,
        coalesce(largest_values.largest_value_holders, 0) as largest_value_holders,
        case catalog.refresh_frequency
            when 'daily' then {{ health_param('cadence_days_daily') }}
            when 'weekly' then {{ health_param('cadence_days_weekly') }}
            when 'monthly' then {{ health_param('cadence_days_monthly') }}
        end as cadence_days
    from catalog
    left join tag_stats on catalog.tag_code = tag_stats.tag_code
    left join largest_values on catalog.tag_code = largest_values.tag_code
),

dimensions as (
    select
        dimension,
        count(*) as tags_in_dimension
    from catalog
    group by dimension
),

tag_rows as (
    select
        'tag' as scope,
        tags.dimension,
        tags.tag_code,
        cast(null as {{ dbt.type_string() }}) as tag_value,
        tags.label_zh,
        tags.label_en,
        tags.refresh_frequency,
        tags.tag_as_of_date,
        tags.cadence_days,
        tags.holders,
        tags.largest_value,
        tags.largest_value_holders,
        {{ safe_share('tags.largest_value_holders', 'tags.holders') }} as concentration,
        cast(null as double precision) as value_share,
        cast(null as integer) as tags_in_dimension,
        0 as sort_order
    from tags
),

value_rows as (
    select
        'value' as scope,
        tags.dimension,
        tags.tag_code,
        tag_values.tag_value,
        tag_values.label_zh,
        tag_values.label_en,
        tags.refresh_frequency,
        tags.tag_as_of_date,
        tags.cadence_days,
        coalesce(value_stats.holders, 0) as holders,
        cast(null as {{ dbt.type_string() }}) as largest_value,
        cast(null as integer) as largest_value_holders,
        cast(null as double precision) as concentration,
        {{ safe_share('coalesce(value_stats.holders, 0)', 'tags.holders') }} as value_share,
        cast(null as integer) as tags_in_dimension,
        tag_values.sort_order
    from tag_values
    inner join tags on tag_values.tag_code = tags.tag_code
    left join value_stats
        on
            tag_values.tag_code = value_stats.tag_code
            and tag_values.tag_value = value_stats.tag_value
),

dimension_rows as (
    select
        'dimension' as scope,
        dimension,
        cast(null as {{ dbt.type_string() }}) as tag_code,
        cast(null as {{ dbt.type_string() }}) as tag_value,
        dimension as label_zh,
        dimension as label_en,
        cast(null as {{ dbt.type_string() }}) as refresh_frequency,
        cast(null as date) as tag_as_of_date,
        cast(null as decimal(18, 4)) as cadence_days,
        cast(null as integer) as holders,
        cast(null as {{ dbt.type_string() }}) as largest_value,
        cast(null as integer) as largest_value_holders,
        cast(null as double precision) as concentration,
        cast(null as double precision) as value_share,
        tags_in_dimension,
        0 as sort_order
    from dimensions
),

unioned as (
    select * from dimension_rows
    union all
    select * from tag_rows
    union all
    select * from value_rows
),

final as (
    select
        {{ dbt.concat(["unioned.scope", "':'", "coalesce(unioned.tag_code, unioned.dimension)",
                       "':'", "coalesce(unioned.tag_value, '')"]) }} as health_key,
        unioned.scope,
        unioned.dimension,
        unioned.tag_code,
        unioned.tag_value,
        unioned.label_zh,
        unioned.label_en,
        unioned.refresh_frequency,
        unioned.sort_order,
        live.live_customers,
        unioned.holders,
        {{ safe_share('unioned.holders', 'live.live_customers') }} as coverage,
        unioned.largest_value,
        unioned.largest_value_holders,
        {{ safe_share('unioned.largest_value_holders', 'live.live_customers') }}
            as largest_value_coverage,
        unioned.concentration,
        unioned.value_share,
        unioned.tags_in_dimension,
        unioned.tag_as_of_date,
        unioned.cadence_days,
        {{ dbt.datediff('unioned.tag_as_of_date', as_of_date(), 'day') }} as staleness_days,
        stability.previous_run as previous_tag_as_of_date,
        stability.changed_holders,
        stability.changed_share
    from unioned
    cross join live
    left join stability on unioned.scope = 'tag' and unioned.tag_code = stability.tag_code
)

select * from final
