-- marts.segment_membership_history: who was in which segment when, as periods of run dates.
-- One row per (segment_code, customer_id, is_holdout) period: valid_from is the first run date
-- of the period, valid_to the first run date without it (exclusive; null while it holds). The
-- members of a segment on a date D are
--     valid_from <= D and (valid_to is null or valid_to > D)
-- Only changes are stored: a customer who stays in a segment for a year is one row.
--
-- Each run writes its date's membership into the history (the date's runs are in
-- segment_runs, this run's included): a member the history did not hold on that date enters
-- (joining the period that ends on the date, or the one that starts at the segment's next run
-- date, if any); a period holding a customer who is no longer a member ends on the date (and
-- starts again at the next run date when it held there). Re-running a date therefore changes
-- nothing, and dates may be run in any order. Only the changed (segment, customer) pairs are
-- returned, with all their periods; the replace_periods strategy (macros/segments.sql)
-- replaces their stored periods with these. A pair left with no period is returned as one row
-- with a null valid_from. A segment removed from the file ends its open periods at the first
-- run without it. full_refresh=false: `--full-refresh` rebuilds the tags, never this record.
-- depends_on: {{ ref('segment_runs') }}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_periods',
        unique_key=['segment_code', 'customer_id'],
        on_schema_change='fail',
        full_refresh=false,
    )
}}
with

members as (
    select
        segment_code,
        customer_id,
        is_holdout
    from {{ ref('segment_members') }}
),

{% if is_incremental() %}

runs as (
    select
        segment_code,
        as_of_date
    from {{ ref('segment_runs') }}
),

next_runs as (
    -- each segment's first run date after this one (none when this is its latest run)
    select
        segment_code,
        min(as_of_date) as next_run_date
    from runs
    where as_of_date > {{ as_of_date() }}
    group by segment_code
),

previous as (
    select
        segment_code,
        customer_id,
        is_holdout,
        valid_from,
        valid_to
    from {{ this }}
),

held as (
    -- what the history holds on this run date
    select * from previous
    where valid_from <= {{ as_of_date() }}
        and (valid_to is null or valid_to > {{ as_of_date() }})
),

entering as (
    select members.*
    from members
    left join held
        on members.segment_code = held.segment_code
            and members.customer_id = held.customer_id
            and members.is_holdout = held.is_holdout
    where held.segment_code is null
),

exiting as (
    select held.*
    from held
    left join members
        on held.segment_code = members.segment_code
            and held.customer_id = members.customer_id
            and held.is_holdout = members.is_holdout
    where members.segment_code is null
),

exit_pieces as (
    -- the part of an exiting period before this run date ...
    select
        segment_code,
        customer_id,
        is_holdout,
        valid_from,
        {{ as_of_date() }} as valid_to
    from exiting
    where valid_from < {{ as_of_date() }}
    union all
    -- ... and the part from the segment's next run date on, when the period held there
    select
        exiting.segment_code,
        exiting.customer_id,
        exiting.is_holdout,
        next_runs.next_run_date as valid_from,
        exiting.valid_to
    from exiting
    inner join next_runs on exiting.segment_code = next_runs.segment_code
    where exiting.valid_to is null or exiting.valid_to > next_runs.next_run_date
),

ending_here as (
    -- periods of entering members that end on this run date: the new period continues them
    select previous.*
    from previous
    inner join entering
        on previous.segment_code = entering.segment_code
            and previous.customer_id = entering.customer_id
            and previous.is_holdout = entering.is_holdout
    where previous.valid_to = {{ as_of_date() }}
),

starting_next as (
    -- periods of entering members that start at the next run date: the new period runs into them
    select previous.*
    from previous
    inner join entering
        on previous.segment_code = entering.segment_code
            and previous.customer_id = entering.customer_id
            and previous.is_holdout = entering.is_holdout
    inner join next_runs
        on previous.segment_code = next_runs.segment_code
            and previous.valid_from = next_runs.next_run_date
),

enter_pieces as (
    select
        entering.segment_code,
        entering.customer_id,
        entering.is_holdout,
        coalesce(ending_here.valid_from, {{ as_of_date() }}) as valid_from,
        case
            when starting_next.valid_from is not null then starting_next.valid_to
            else next_runs.next_run_date
        end as valid_to
    from entering
    left join ending_here
        on entering.segment_code = ending_here.segment_code
            and entering.customer_id = ending_here.customer_id
            and entering.is_holdout = ending_here.is_holdout
    left join starting_next
        on entering.segment_code = starting_next.segment_code
            and entering.customer_id = starting_next.customer_id
            and entering.is_holdout = starting_next.is_holdout
    left join next_runs on entering.segment_code = next_runs.segment_code
),

replaced as (
    select
        segment_code,
        customer_id,
        is_holdout,
        valid_from
    from exiting
    union all
    select
        segment_code,
        customer_id,
        is_holdout,
        valid_from
    from ending_here
    union all
    select
        segment_code,
        customer_id,
        is_holdout,
        valid_from
    from starting_next
),

changed as (
    select distinct segment_code, customer_id
    from (
        select segment_code, customer_id from entering
        union all
        select segment_code, customer_id from exiting
    ) as pairs
),

kept as (
    -- the changed pairs' other periods stay as they are
    select previous.*
    from previous
    inner join changed
        on previous.segment_code = changed.segment_code
            and previous.customer_id = changed.customer_id
    left join replaced
        on previous.segment_code = replaced.segment_code
            and previous.customer_id = replaced.customer_id
            and previous.is_holdout = replaced.is_holdout
            and previous.valid_from = replaced.valid_from
    where replaced.segment_code is null
),

periods as (
    select * from kept
    union all
    select * from exit_pieces
    union all
    select * from enter_pieces
),

final as (
    select
        segment_code,
        customer_id,
        is_holdout,
        valid_from,
        valid_to
    from periods
    union all
    -- a changed pair left with no period: deleted by the replace_periods strategy
    select
        changed.segment_code,
        changed.customer_id,
        cast(null as boolean) as is_holdout,
        cast(null as date) as valid_from,
        cast(null as date) as valid_to
    from changed
    left join periods
        on changed.segment_code = periods.segment_code
            and changed.customer_id = periods.customer_id
    where periods.segment_code is null
)

{% else %}

final as (
    select
        segment_code,
        customer_id,
        is_holdout,
        {{ as_of_date() }} as valid_from,
        cast(null as date) as valid_to
    from members
)

{% endif %}

select * from final
