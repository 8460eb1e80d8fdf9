-- Every version of campaigns/web_events ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql), and the current version carries its verdict (macros/stored_verdicts.sql).
-- Incremental: a run loads only new delivery files and re-judges what can have changed.
-- An event needs a known type and a date not after the run date. Stored, not judged at each
-- read, like campaign events (base_campaigns__campaign_events).
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
        _delivered_at
    from source
),

{{ rank_versions('cleaned', ['event_id'], reevaluate={'dated': ['event_ts']}) }},

final as (
    select
        ranked.*,
        case
            when not ranked._is_current then null
            when ranked.event_id is null then 'missing event_id'
            when ranked.event_type is null
                or ranked.event_type not in ('page_view', 'add_to_cart', 'search')
                then 'unknown event_type'
            when ranked.event_ts is null then 'missing event_ts'
            when {{ days_since('ranked.event_ts') }} < 0 then 'event_ts after the run date'
        end as rejection_reason
    from ranked
)

select *, {{ evaluation_stamp() }} from final
