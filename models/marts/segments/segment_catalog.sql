-- marts.segment_catalog: one row per segment of the segments file: its definition, owner and
-- labels, and its members as of the run date (count, holdout, share of all live customers,
-- entered and exited since the segment's previous run).
with

definitions as (
    select * from {{ ref('segment_definitions') }}
),

changes as (
    select * from {{ ref('segment_membership_changes') }}
    where as_of_date = {{ as_of_date() }}
),

customers as (
    select count(*) as customer_count from {{ ref('customer_profile') }}
),

final as (
    select
        definitions.segment_code,
        definitions.label_zh,
        definitions.label_en,
        definitions.owner,
        definitions.description,
        definitions.where_expression as definition,
        definitions.priority_list,
        definitions.priority_rank,
        definitions.holdout_percent,
        definitions.holdout_salt,
        definitions.tags_read,
        definitions.metrics_read,
        definitions.segments_read,
        definitions.definition_hash,
        coalesce(changes.member_count, 0) as member_count,
        coalesce(changes.holdout_count, 0) as holdout_count,
        -- the issue's name for the column, though a keyword to the SQL linter
        cast(coalesce(changes.member_count, 0) as {{ dbt.type_numeric() }}) / nullif(customers.customer_count, 0) as share,  -- noqa: RF04
        coalesce(changes.entered_count, 0) as entered_count,
        coalesce(changes.exited_count, 0) as exited_count,
        {{ as_of_date() }} as as_of_date
    from definitions
    cross join customers
    left join changes on definitions.segment_code = changes.segment_code
)

select * from final
order by segment_code
