-- Every version of orders/promotions ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['promotion_id']) }}

with

source as (
    select * from {{ source('orders', 'promotions') }}
    where {{ not_yet_loaded('orders/promotions') }}
),

cleaned as (
    select
        {{ clean_key('promotion_id') }} as promotion_id,
        {{ trim_spaces('promotion_name') }} as promotion_name,
        {{ normalize_code('promotion_type') }} as promotion_type,
        start_date,
        end_date,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

{{ rank_versions('cleaned', ['promotion_id']) }}

select * from ranked
