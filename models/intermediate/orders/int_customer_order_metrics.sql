-- Per-customer purchase metrics as of the run date, from the order system only. Only customers
-- with at least one purchase appear (never purchased = no row).
with

daily as (
    select
        *,
        {{ days_since('order_date') }} as days_since_order
    from {{ ref('int_customer_daily_purchases') }}
    where order_date <= {{ as_of_date() }}
),

window_365d as (
    select {{ tag_param('all', 'window_365d_days') }} as window_days
),

final as (
    select
        daily.customer_id,
        sum(daily.purchases) as purchases_total,
        coalesce(sum(daily.purchases) filter (
            where {{ in_window('daily.days_since_order', 'window_365d.window_days') }}
        ), 0) as purchases_365d,
        coalesce(sum(daily.promotional_purchases) filter (
            where {{ in_window('daily.days_since_order', 'window_365d.window_days') }}
        ), 0) as promotional_purchases_365d,
        cast(coalesce(sum(daily.net_sales) filter (
            where {{ in_window('daily.days_since_order', 'window_365d.window_days') }}
        ), 0) as decimal(18, 2)) as net_sales_365d,
        cast(coalesce(sum(daily.profit) filter (
            where {{ in_window('daily.days_since_order', 'window_365d.window_days') }}
        ), 0) as decimal(18, 2)) as profit_365d,
        min(daily.order_date) as first_purchase_date,
        max(daily.order_date) as last_purchase_date,
        max(daily.days_since_order) as days_since_first_purchase,
        min(daily.days_since_order) as days_since_last_purchase
    from daily
    cross join window_365d
    group by daily.customer_id
)

select * from final
