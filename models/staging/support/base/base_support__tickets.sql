-- Every version of support/tickets ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['ticket_id']) }}

with

source as (
    select * from {{ source('support', 'tickets') }}
    where {{ not_yet_loaded('support/tickets') }}
),

cleaned as (
    select
        {{ clean_key('ticket_id') }} as ticket_id,
        {{ clean_key('account_id') }} as account_id,
        {{ normalize_email('requester_email') }} as requester_email,
        {{ normalize_code('channel') }} as channel,
        {{ normalize_code('ticket_type') }} as ticket_type,
        satisfaction_score,
        opened_at,
        resolved_at,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

{{ rank_versions('cleaned', ['ticket_id'], 'resolved_at desc nulls last') }}
