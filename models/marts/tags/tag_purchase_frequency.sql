-- purchase_frequency: distinct purchases in the 365-day window; never purchased -> no tag.
with

metrics as (
    select * from {{ ref('int_customer_order_metrics') }}
),

final as (
    select
        customer_id,
        'purchase_frequency' as tag_code,
        case
            when purchases_365d >= {{ tag_param('purchase_frequency', 'high_min_purchases') }} then 'high'
            when purchases_365d >= {{ tag_param('purchase_frequency', 'medium_min_purchases') }} then 'medium'
            else 'low'
        end as tag_value,
        'purchases_365d = ' || purchases_365d as evidence,
        {{ as_of_date() }} as as_of_date
    from metrics
)

select * from final
