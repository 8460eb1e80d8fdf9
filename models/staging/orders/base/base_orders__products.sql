-- Every version of orders/products ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['product_id']) }}

with

source as (
    select * from {{ source('orders', 'products') }}
    where {{ not_yet_loaded('orders/products') }}
),

cleaned as (
    select
        {{ clean_key('product_id') }} as product_id,
        {{ trim_spaces('product_name') }} as product_name,
        {{ normalize_code('category') }} as category_text,
        {{ trim_spaces('sub_category') }} as sub_category,
        list_price,
        coalesce(is_active, true) as is_active,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

{{ rank_versions('cleaned', ['product_id']) }}

select * from ranked
