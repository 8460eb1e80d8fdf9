-- Every version of orders/orders ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['order_id']) }}

with

source as (
    select * from {{ source('orders', 'orders') }}
    where {{ not_yet_loaded('orders/orders') }}
),

cleaned as (
    select
        {{ clean_key('order_id') }} as order_id,
        {{ clean_key('account_id') }} as account_id,
        {{ clean_key('promotion_id') }} as promotion_id,
        {{ normalize_code('status') }} as status,
        {{ normalize_code('sales_channel') }} as sales_channel,
        order_ts,
        _ingested_at,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

{{ rank_versions('cleaned', ['order_id'], '_ingested_at desc nulls last') }}
