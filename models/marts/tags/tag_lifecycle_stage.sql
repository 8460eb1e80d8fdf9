-- lifecycle_stage: prospect (never purchased), new (first purchase in the 90-day window),
-- active (last purchase <= 180 days ago), at_risk (181-365), churned (> 365). First match wins.
with

customers as (
    select customer_id from {{ ref('dim_customers') }}
),

metrics as (
    select * from {{ ref('int_customer_order_metrics') }}
),

final as (
    select
        customers.customer_id,
        'lifecycle_stage' as tag_code,
        case
            when metrics.customer_id is null then 'prospect'
            when metrics.days_since_first_purchase < {{ tag_param('lifecycle_stage', 'new_window_days') }} then 'new'
            when metrics.days_since_last_purchase <= {{ tag_param('lifecycle_stage', 'active_max_days') }} then 'active'
            when metrics.days_since_last_purchase <= {{ tag_param('lifecycle_stage', 'at_risk_max_days') }} then 'at_risk'
            else 'churned'
        end as tag_value,
        case
            when metrics.customer_id is null then 'purchases_total = 0'
            else 'days_since_first_purchase = ' || metrics.days_since_first_purchase
                || ', days_since_last_purchase = ' || metrics.days_since_last_purchase
        end as evidence,
        {{ as_of_date() }} as as_of_date
    from customers
    left join metrics on customers.customer_id = metrics.customer_id
)

select * from final
