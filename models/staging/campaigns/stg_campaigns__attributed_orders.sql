-- The marketing platform's conversion feed. Kept only to say which campaign an order is
-- attributed to: no tag may read revenue, frequency or profit from it.
-- A view: the verdict needs only the row and the run date, so it is judged at each read.
with

latest as (
    select {{ star_except(ref('base_campaigns__attributed_orders'), ['_is_current']) }} from {{ ref('base_campaigns__attributed_orders') }} where _is_current
),

final as (
    select
        *,
        case
            when order_id is null then 'missing order_id'
            when campaign_id is null then 'missing campaign_id'
            when attributed_revenue < 0 then 'negative attributed_revenue'
            when {{ days_since('conversion_ts') }} < 0 then 'conversion_ts after the run date'
        end as rejection_reason
    from latest
)

select *, {{ evaluation_stamp() }} from final
