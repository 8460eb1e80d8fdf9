-- Kept orders, one row each, with net sales and profit summed over their kept lines.
-- A purchase is an order whose current status is paid, shipped or completed.
{{ config(materialized='view') }}
with

orders as (
    select * from {{ ref('stg_orders__orders') }} where rejection_reason is null
),

order_lines as (
    select * from {{ ref('fct_order_lines') }}
),

line_totals as (
    select
        order_id,
        count(*) as line_count,
        sum(net_sales) as net_sales,
        sum(profit) as profit,
    from order_lines
    group by order_id
),

final as (
    select
        orders.order_id,
        orders.account_id as customer_id,
        orders.promotion_id,
        orders.status,
        orders.sales_channel,
        cast(coalesce(line_totals.net_sales, 0) as decimal(18, 2)) as net_sales,
        cast(coalesce(line_totals.profit, 0) as decimal(18, 2)) as profit,
        coalesce(line_totals.line_count, 0) as line_count,
        orders.status in ('paid', 'shipped', 'completed') as is_purchase,
        orders.promotion_id is not null as is_promotional,
        orders.order_ts,
        cast(orders.order_ts as date) as order_date,
    from orders
    left join line_totals on orders.order_id = line_totals.order_id
)

select * from final
