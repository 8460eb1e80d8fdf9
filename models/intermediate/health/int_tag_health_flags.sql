-- The tag-health flags of this run, one row per flag raised, with the measure, the threshold
-- that raised it (seeds/tag_health_thresholds.csv) and the reason in words. A flag is a warning
-- for the stewards, never a reason to hold a publish back (docs/tag-health.md).
-- The dimension flags check the guideline's four dimensions; `manual` (tags sellers assign by
-- hand) is outside the guideline and has no 3-5 tag rule.
with

figures as (
    select * from {{ ref('int_tag_health_figures') }}
),

overlap as (
    select * from {{ ref('tag_overlap') }}
),

effectiveness as (
    select * from {{ ref('tag_effectiveness') }}
),

tag_rows as (
    select * from figures where scope = 'tag'
),

too_few as (
    select
        health_key,
        'too_few' as flag,
        coverage as measure,
        {{ health_param('min_coverage') }} as threshold,
        'min_coverage' as threshold_parameter,
        {{ dbt.concat(["'coverage '", health_number_text('coverage'), "' < min_coverage '",
                       health_number_text(health_param('min_coverage')),
                       "' ('", "cast(holders as " ~ dbt.type_string() ~ ")",
                       "' of '", "cast(live_customers as " ~ dbt.type_string() ~ ")",
                       "' live customers)'"]) }} as reason
    from tag_rows
    where coalesce(coverage, 0) < {{ health_param('min_coverage') }}
),

too_broad as (
    select
        health_key,
        'too_broad' as flag,
        largest_value_coverage as measure,
        {{ health_param('max_value_coverage') }} as threshold,
        'max_value_coverage' as threshold_parameter,
        {{ dbt.concat(["'value '", "largest_value", "' holds '",
                       health_number_text('largest_value_coverage'),
                       "' of live customers >= max_value_coverage '",
                       health_number_text(health_param('max_value_coverage'))]) }} as reason
    from tag_rows
    where largest_value_coverage >= {{ health_param('max_value_coverage') }}
),

redundant as (
    select
        tag_rows.health_key,
        'redundant' as flag,
        overlap.jaccard as measure,
        {{ health_param('redundant_min_jaccard') }} as threshold,
        'redundant_min_jaccard' as threshold_parameter,
        {{ dbt.concat(["'duplicates '", "overlap.tag_b", "': Jaccard of holders '",
                       health_number_text('overlap.jaccard'), "' >= redundant_min_jaccard '",
                       health_number_text(health_param('redundant_min_jaccard')),
                       "', values correspond for '", health_number_text('overlap.value_agreement'),
                       "' >= redundant_min_agreement '",
                       health_number_text(health_param('redundant_min_agreement'))]) }} as reason
    from overlap
    inner join tag_rows on overlap.tag_a = tag_rows.tag_code
    where
        overlap.jaccard >= {{ health_param('redundant_min_jaccard') }}
        and overlap.value_agreement >= {{ health_param('redundant_min_agreement') }}
),

stale as (
    select
        health_key,
        'stale' as flag,
        cast(staleness_days as double precision) as measure,
        cadence_days + {{ health_param('stale_grace_days') }} as threshold,
        {{ dbt.concat(["'cadence_days_'", "refresh_frequency", "' + stale_grace_days'"]) }}
            as threshold_parameter,
        {{ dbt.concat(["'computed as of '", "cast(tag_as_of_date as " ~ dbt.type_string() ~ ")",
                       "', '", "cast(staleness_days as " ~ dbt.type_string() ~ ")",
                       "' days ago > '", "refresh_frequency", "' cadence '",
                       health_number_text('cadence_days'), "' + grace '",
                       health_number_text(health_param('stale_grace_days')), "' days'"]) }}
            as reason
    from tag_rows
    where staleness_days > cadence_days + {{ health_param('stale_grace_days') }}
),

unstable as (
    select
        health_key,
        'unstable' as flag,
        changed_share as measure,
        {{ health_param('unstable_min_changed_share') }} as threshold,
        'unstable_min_changed_share' as threshold_parameter,
        {{ dbt.concat(["'value changed since '", "cast(previous_tag_as_of_date as " ~ dbt.type_string() ~ ")",
                       "' for '", health_number_text('changed_share'),
                       "' of holders >= unstable_min_changed_share '",
                       health_number_text(health_param('unstable_min_changed_share'))]) }} as reason
    from tag_rows
    where changed_share >= {{ health_param('unstable_min_changed_share') }}
),

-- the tag's latest backtest date whose window has ended (marts.tag_effectiveness)
latest_backtest as (
    select
        tag_code,
        max(backtest_date) as backtest_date
    from effectiveness
    group by tag_code
),

uninformative_tags as (
    select distinct
        effectiveness.tag_code,
        effectiveness.backtest_date,
        effectiveness.values_in_spread,
        effectiveness.lift_spread
    from effectiveness
    inner join latest_backtest
        on
            effectiveness.tag_code = latest_backtest.tag_code
            and effectiveness.backtest_date = latest_backtest.backtest_date
    where effectiveness.is_uninformative
),

uninformative as (
    select
        tag_rows.health_key,
        'uninformative' as flag,
        uninformative_tags.lift_spread as measure,
        {{ health_param('uninformative_max_lift_spread') }} as threshold,
        'uninformative_max_lift_spread' as threshold_parameter,
        {{ dbt.concat(["'repurchase lifts of '",
                       "cast(uninformative_tags.values_in_spread as " ~ dbt.type_string() ~ ")",
                       "' values held as of '",
                       "cast(uninformative_tags.backtest_date as " ~ dbt.type_string() ~ ")",
                       "' span '", health_number_text('uninformative_tags.lift_spread'),
                       "' < uninformative_max_lift_spread '",
                       health_number_text(health_param('uninformative_max_lift_spread'))]) }}
            as reason
    from uninformative_tags
    inner join tag_rows on uninformative_tags.tag_code = tag_rows.tag_code
),

guideline_dimensions as (
    select * from figures where scope = 'dimension' and dimension <> 'manual'
),

too_many as (
    select
        health_key,
        'too_many' as flag,
        cast(tags_in_dimension as double precision) as measure,
        {{ health_param('max_tags_per_dimension') }} as threshold,
        'max_tags_per_dimension' as threshold_parameter,
        {{ dbt.concat(["cast(tags_in_dimension as " ~ dbt.type_string() ~ ")",
                       "' tags > max_tags_per_dimension '",
                       health_number_text(health_param('max_tags_per_dimension'))]) }} as reason
    from guideline_dimensions
    where tags_in_dimension > {{ health_param('max_tags_per_dimension') }}
),

too_few_tags as (
    select
        health_key,
        'too_few_tags' as flag,
        cast(tags_in_dimension as double precision) as measure,
        {{ health_param('min_tags_per_dimension') }} as threshold,
        'min_tags_per_dimension' as threshold_parameter,
        {{ dbt.concat(["cast(tags_in_dimension as " ~ dbt.type_string() ~ ")",
                       "' tags < min_tags_per_dimension '",
                       health_number_text(health_param('min_tags_per_dimension'))]) }} as reason
    from guideline_dimensions
    where tags_in_dimension < {{ health_param('min_tags_per_dimension') }}
),

unioned as (
    select * from too_few
    union all
    select * from too_broad
    union all
    select * from redundant
    union all
    select * from stale
    union all
    select * from unstable
    union all
    select * from uninformative
    union all
    select * from too_many
    union all
    select * from too_few_tags
),

final as (
    select
        figures.health_key,
        figures.scope,
        figures.dimension,
        figures.tag_code,
        figures.tag_value,
        unioned.flag,
        cast(unioned.measure as double precision) as measure,
        cast(unioned.threshold as double precision) as threshold,
        unioned.threshold_parameter,
        unioned.reason
    from unioned
    inner join figures on unioned.health_key = figures.health_key
)

select * from final
