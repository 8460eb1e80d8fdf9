-- Every version of orders/order_items ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
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
        _delivered_at,
    from source
),

{{ rank_versions('cleaned', ['order_id', 'line_no']) }}
