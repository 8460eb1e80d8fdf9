-- marts.segment_membership_changes: per run date and segment, how many customers entered and
-- exited it (from the membership history) and how many members it had (segment_runs). A member
-- whose holdout flag changed ends one period and starts another on the same date: it neither
-- entered nor exited.
{{ config(materialized='view') }}
with

history as (
    select * from {{ ref('segment_membership_history') }}
),

runs as (
    select * from {{ ref('segment_runs') }}
),

starts as (
    select
        segment_code,
        customer_id,
        valid_from as change_date
    from history
),

ends as (
    select
        segment_code,
        customer_id,
        valid_to as change_date
    from history
    where valid_to is not null
),

entered as (
    select
        starts.segment_code,
        starts.change_date,
        count(*) as entered_count
    from starts
    left join ends
        on starts.segment_code = ends.segment_code
            and starts.customer_id = ends.customer_id
            and starts.change_date = ends.change_date
    where ends.segment_code is null
    group by starts.segment_code, starts.change_date
),

exited as (
    select
        ends.segment_code,
        ends.change_date,
        count(*) as exited_count
    from ends
    left join starts
        on ends.segment_code = starts.segment_code
            and ends.customer_id = starts.customer_id
            and ends.change_date = starts.change_date
    where starts.segment_code is null
    group by ends.segment_code, ends.change_date
),

final as (
    select
        runs.segment_code,
        runs.member_count,
        runs.holdout_count,
        coalesce(entered.entered_count, 0) as entered_count,
        coalesce(exited.exited_count, 0) as exited_count,
        runs.as_of_date
    from runs
    left join entered
        on runs.segment_code = entered.segment_code and runs.as_of_date = entered.change_date
    left join exited
        on runs.segment_code = exited.segment_code and runs.as_of_date = exited.change_date
)

select * from final
