-- marts.segment_membership_history: who was in which segment when, as periods of run dates.
-- One row per (segment_code, customer_id, is_holdout) period: valid_from is the first run date
-- of the period, valid_to the first run date without it (exclusive; null while it holds). The
-- members of a segment on a date D are
--     valid_from <= D and (valid_to is null or valid_to > D)
-- Only changes are stored: a customer who stays in a segment for a year is one row.
--
-- Each run writes its date's membership into the history (the date's runs are in
-- segment_runs, this run's included), with the period logic every history shares
-- (period_history and the replace_periods strategy, macros/history.sql): re-running a date
-- changes nothing, and dates may be run in any order. A segment removed from the file ends its
-- open periods at the first run without it. full_refresh=false: `--full-refresh` rebuilds the
-- tags, never this record.
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

{{ period_history(
    members='members',
    runs=ref('segment_runs'),
    scope='segment_code',
    key=['segment_code', 'customer_id'],
    item=['is_holdout']
) }}

select * from final
