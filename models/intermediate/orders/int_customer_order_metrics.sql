-- Per-customer purchase metrics as of the run date, from the order system only. Only customers
-- with at least one purchase appear (never purchased = no row).
with

orders as (
    select
        *,
        {{ days_since('order_date') }} as days_since_order,
    from {{ ref('fct_orders') }}
    where is_purchase
),

window_365d as (
    select {{ tag_param('all', 'window_365d_days') }} as days
),

final as (
    select
        orders.customer_id,
        count(distinct orders.order_id) as purchases_total,
        count(distinct orders.order_id) filter (
            where {{ in_window('orders.days_since_order', 'window_365d.days') }}
        ) as purchases_365d,
        count(distinct orders.order_id) filter (
            where {{ in_window('orders.days_since_order', 'window_365d.days') }} and orders.is_promotional
        ) as promotional_purchases_365d,
        cast(coalesce(sum(orders.net_sales) filter (
            where {{ in_window('orders.days_since_order', 'window_365d.days') }}
        ), 0) as decimal(18, 2)) as net_sales_365d,
        cast(coalesce(sum(orders.profit) filter (
            where {{ in_window('orders.days_since_order', 'window_365d.days') }}
        ), 0) as decimal(18, 2)) as profit_365d,
        min(orders.order_date) as first_purchase_date,
        max(orders.order_date) as last_purchase_date,
        max(orders.days_since_order) as days_since_first_purchase,
        min(orders.days_since_order) as days_since_last_purchase,
    from orders
    cross join window_365d
    group by orders.customer_id
)

select * from final
