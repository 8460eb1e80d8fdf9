-- Every version of orders/order_items ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql), and the current version carries its verdict (macros/stored_verdicts.sql).
-- Incremental: a run loads only new delivery files and re-judges what can have changed.
-- A line needs a kept order and a known product, non-negative amounts, and a discount no
-- larger than the line's gross amount.
{{ config(unique_key=['order_id', 'line_no']) }}

with

source as (
    select * from {{ source('orders', 'order_items') }}
    where {{ not_yet_loaded('orders/order_items') }}
),

cleaned as (
    select
        {{ clean_key('order_id') }} as order_id,
        line_no,
        {{ clean_key('product_id') }} as product_id,
        quantity,
        unit_price,
        coalesce(discount_amount, 0) as discount_amount,
        unit_cost,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

orders as (
    select
        order_id,
        rejection_reason
    from {{ ref('stg_orders__orders') }}
),

products as (
    select product_id from {{ ref('stg_orders__products') }} where rejection_reason is null
),

{{ rank_versions('cleaned', ['order_id', 'line_no'], reevaluate={
    'parents': [
        {'model': 'stg_orders__orders', 'key': 'order_id', 'column': 'order_id'},
        {'model': 'base_orders__products', 'key': 'product_id', 'column': 'product_id', 'changed_at': '_loaded_at'},
    ],
}) }},

final as (
    select
        ranked.*,
        case
            when not ranked._is_current then null
            when ranked.order_id is null then 'missing order_id'
            when ranked.line_no is null then 'missing line_no'
            when orders.order_id is null then 'unknown order_id'
            when orders.rejection_reason is not null then 'order rejected: ' || orders.rejection_reason
            when ranked.product_id is null then 'missing product_id'
            when products.product_id is null then 'unknown product_id'
            when ranked.quantity is null then 'missing quantity'
            when ranked.quantity < 0 then 'negative quantity'
            when ranked.unit_price is null then 'missing unit_price'
            when ranked.unit_price < 0 then 'negative unit_price'
            when ranked.unit_cost is null then 'missing unit_cost'
            when ranked.unit_cost < 0 then 'negative unit_cost'
            when ranked.discount_amount < 0 then 'negative discount_amount'
            when ranked.discount_amount > ranked.quantity * ranked.unit_price
                then 'discount_amount exceeds the line amount'
        end as rejection_reason
    from ranked
    left join orders on ranked.order_id = orders.order_id
    left join products on ranked.product_id = products.product_id
)

select *, {{ evaluation_stamp() }} from final
