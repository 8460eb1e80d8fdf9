-- One row per event_id; product_category text is mapped to a category code (unknown -> other).
with

source as (
    select * from {{ source('campaigns', 'web_events') }}
),

category_mapping as (
    select * from {{ ref('category_mapping') }}
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

latest as (
    {{ latest_version('cleaned', 'event_id') }}
),

final as (
    select
        latest.*,
        case
            when latest.product_category_text is not null
                then coalesce(category_mapping.category_code, 'other')
        end as category_code,
        case
            when latest.event_id is null then 'missing event_id'
            when latest.event_type is null
                or latest.event_type not in ('page_view', 'add_to_cart', 'search')
                then 'unknown event_type'
            when latest.event_ts is null then 'missing event_ts'
            when {{ days_since('latest.event_ts') }} < 0 then 'event_ts after the run date'
        end as rejection_reason,
    from latest
    left join category_mapping on latest.product_category_text = category_mapping.category_text
)

select * from final
