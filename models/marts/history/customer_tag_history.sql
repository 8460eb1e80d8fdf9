-- marts.customer_tag_history: every customer's account-level tags over time, as periods of run
-- dates. One row per (customer_id, tag_code, tag_value) period: valid_from is the first run
-- date of the period, valid_to the first run date without it (exclusive; null while it holds).
-- The tags valid on a date D are
--     valid_from <= D and (valid_to is null or valid_to > D)
-- Only changes are stored: a value that holds for a year is one row; a multi-valued tag keeps
-- one period per value. evidence is the evidence of the run that started the period.
--
-- Each run writes the tags it computed (marts.tag_runs) into the history, with the period
-- logic every history shares (period_history and the replace_periods strategy,
-- macros/history.sql): a tag's periods end and start only on the run dates that computed it
-- (a weekly tag changes only on weekly runs), re-running a date changes nothing, and dates may
-- be run in any order (a backfill after the daily runs). full_refresh=false: `--full-refresh`
-- rebuilds the tags, never this record (docs/history.md).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_periods',
        unique_key=['customer_id', 'tag_code'],
        on_schema_change='fail',
        full_refresh=false,
    )
}}
with

members as (
    select
        customer_id,
        tag_code,
        tag_value,
        evidence
    from {{ ref('int_customer_tag_values') }}
    where {{ is_computed_tag('tag_code', 'account') }}
),

{{ period_history(
    members='members',
    runs=ref('tag_runs'),
    scope='tag_code',
    key=['customer_id', 'tag_code'],
    item=['tag_value'],
    payload=['evidence'],
    computed=computed_tag_codes('account')
) }}

select * from final
