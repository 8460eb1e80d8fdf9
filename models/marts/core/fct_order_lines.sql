-- Kept order lines with the line formulas of raw-sources.md and the order's attributes.
{{ config(materialized='view') }}
with

order_items as (
    select * from {{ ref('stg_orders__order_items') }} where rejection_reason is null
),

orders as (
    select * from {{ ref('stg_orders__orders') }} where rejection_reason is null
),

products as (
    select product_id, category_code from {{ ref('dim_products') }}
),

final as (
    select
        order_items.order_id,
        order_items.line_no,
        orders.account_id as customer_id,
        order_items.product_id,
        products.category_code,
        order_items.quantity,
        order_items.unit_price,
        order_items.discount_amount,
        order_items.unit_cost,
        cast(order_items.quantity * order_items.unit_price - order_items.discount_amount
            as decimal(18, 2)) as net_sales,
        cast(order_items.quantity * (order_items.unit_price - order_items.unit_cost)
            - order_items.discount_amount as decimal(18, 2)) as profit,
        orders.status in ('paid', 'shipped', 'completed') as is_purchase,
        orders.order_ts,
        cast(orders.order_ts as date) as order_date,
    from order_items
    inner join orders on order_items.order_id = orders.order_id
    inner join products on order_items.product_id = products.product_id
)

select * from final
