-- Purchases per customer and day: the grain every order-based tag aggregates from, so tag
-- models never rescan order lines (and a daily refresh only touches the days that changed).
with

purchases as (
    select * from {{ ref('fct_orders') }} where is_purchase
),

final as (
    select
        customer_id,
        order_date,
        count(*) as purchases,
        count(*) filter (where is_promotional) as promotional_purchases,
        cast(sum(net_sales) as decimal(18, 2)) as net_sales,
        cast(sum(profit) as decimal(18, 2)) as profit,
    from purchases
    group by customer_id, order_date
)

select * from final
