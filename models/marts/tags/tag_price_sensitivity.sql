-- price_sensitivity: share of purchases in the 365-day window that carry a promotion_id;
-- no purchase in the window -> no tag.
with

metrics as (
    select * from {{ ref('int_customer_order_metrics') }} where purchases_365d > 0
),

final as (
    select
        customer_id,
        'price_sensitivity' as tag_code,
        case
            when promotional_purchases_365d > {{ tag_param('price_sensitivity', 'high_min_exclusive') }} * purchases_365d
                then 'high'
            when promotional_purchases_365d >= {{ tag_param('price_sensitivity', 'medium_min') }} * purchases_365d
                then 'medium'
            else 'low'
        end as tag_value,
        (
            'promotional_purchases_365d = ' || promotional_purchases_365d
            || ' of purchases_365d = ' || purchases_365d
        ) as evidence,
        {{ as_of_date() }} as as_of_date
    from metrics
)

select * from final
