-- The marketing platform's conversion feed. Kept only to say which campaign an order is
-- attributed to: no tag may read revenue, frequency or profit from it.
with

source as (
    select * from {{ source('campaigns', 'attributed_orders') }}
),

cleaned as (
    select
        {{ clean_key('order_id') }} as order_id,
        {{ clean_key('campaign_id') }} as campaign_id,
        {{ clean_key('account_id') }} as account_id,
        attributed_revenue,
        conversion_ts,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', "order_id || '#' || campaign_id", 'conversion_ts desc nulls last') }}
),

final as (
    select
        *,
        case
            when order_id is null then 'missing order_id'
            when campaign_id is null then 'missing campaign_id'
            when attributed_revenue < 0 then 'negative attributed_revenue'
            when {{ days_since('conversion_ts') }} < 0 then 'conversion_ts after the run date'
        end as rejection_reason,
    from latest
)

select * from final
