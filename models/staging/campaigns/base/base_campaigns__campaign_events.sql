-- Every version of campaigns/campaign_events ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['event_id']) }}

with

source as (
    select * from {{ source('campaigns', 'campaign_events') }}
    where {{ not_yet_loaded('campaigns/campaign_events') }}
),

cleaned as (
    select
        {{ clean_key('event_id') }} as event_id,
        {{ clean_key('campaign_id') }} as campaign_id,
        {{ normalize_email('recipient_email') }} as recipient_email,
        {{ normalize_code('event_type') }} as event_type,
        event_ts,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

{{ rank_versions('cleaned', ['event_id']) }}

select * from ranked
