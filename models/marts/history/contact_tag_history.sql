-- marts.contact_tag_history: contact-level tags over time, as marts.customer_tag_history keeps
-- the account-level ones (periods of run dates; valid on D: valid_from <= D and (valid_to is
-- null or valid_to > D)). One row per (contact_id, tag_code, tag_value) period; customer_id and
-- evidence as of the run that started the period. full_refresh=false: `--full-refresh`
-- rebuilds the tags, never this record (docs/history.md).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_periods',
        unique_key=['contact_id', 'tag_code'],
        on_schema_change='fail',
        full_refresh=false,
    )
}}
with

members as (
    select
        contact_id,
        tag_code,
        tag_value,
        customer_id,
        evidence
    from {{ ref('contact_tags') }}
    where {{ is_computed_tag('tag_code', 'contact') }}
),

{{ period_history(
    members='members',
    runs=ref('tag_runs'),
    scope='tag_code',
    key=['contact_id', 'tag_code'],
    item=['tag_value'],
    payload=['customer_id', 'evidence'],
    computed=computed_tag_codes('contact')
) }}

select * from final
