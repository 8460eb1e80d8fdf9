-- Every version of campaigns/web_events ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['event_id']) }}

with

source as (
    select * from {{ source('campaigns', 'web_events') }}
    where {{ not_yet_loaded('campaigns/web_events') }}
),

cleaned as (
    select
        {{ clean_key('event_id') }} as event_id,
        {{ clean_key('visitor_id') }} as visitor_id,
        {{ normalize_email('user_email') }} as user_email,
        {{ normalize_code('event_type') }} as event_type,
        {{ normalize_code('product_category') }} as product_category_text,
        event_ts,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

{{ rank_versions('cleaned', ['event_id']) }}

select * from ranked
