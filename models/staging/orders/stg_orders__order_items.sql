-- One row per (order_id, line_no); a re-delivered line replaces the old one (order items carry
-- no timestamp, so the later delivery wins). A line needs a kept order and a known product,
-- non-negative amounts, and a discount no larger than the line's gross amount.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['order_id', 'line_no'], on_schema_change='fail') }}
with

orders as (
    select order_id, rejection_reason from {{ ref('stg_orders__orders') }}
),

products as (
    select product_id from {{ ref('stg_orders__products') }} where rejection_reason is null
),

latest as (
    {{ current_versions_to_evaluate(
        'base_orders__order_items', ['order_id', 'line_no'],
        parents=[
            {'model': 'stg_orders__orders', 'key': 'order_id', 'column': 'order_id'},
            {'model': 'base_orders__products', 'key': 'product_id', 'column': 'product_id', 'changed_at': '_loaded_at'},
        ],
    ) }}
),

final as (
    select
        latest.*,
        case
            when latest.order_id is null then 'missing order_id'
            when latest.line_no is null then 'missing line_no'
            when orders.order_id is null then 'unknown order_id'
            when orders.rejection_reason is not null then 'order rejected: ' || orders.rejection_reason
            when latest.product_id is null then 'missing product_id'
            when products.product_id is null then 'unknown product_id'
            when latest.quantity is null then 'missing quantity'
            when latest.quantity < 0 then 'negative quantity'
            when latest.unit_price is null then 'missing unit_price'
            when latest.unit_price < 0 then 'negative unit_price'
            when latest.unit_cost is null then 'missing unit_cost'
            when latest.unit_cost < 0 then 'negative unit_cost'
            when latest.discount_amount < 0 then 'negative discount_amount'
            when latest.discount_amount > latest.quantity * latest.unit_price
                then 'discount_amount exceeds the line amount'
        end as rejection_reason,
    from latest
    left join orders on latest.order_id = orders.order_id
    left join products on latest.product_id = products.product_id
)

select *, {{ evaluation_stamp() }} from final
