-- One row per product_id; the free-text category is mapped to a category code (unknown -> other).
with

source as (
    select * from {{ source('orders', 'products') }}
),

category_mapping as (
    select * from {{ ref('category_mapping') }}
),

cleaned as (
    select
        {{ clean_key('product_id') }} as product_id,
        trim(product_name) as product_name,
        {{ normalize_code('category') }} as category_text,
        trim(sub_category) as sub_category,
        list_price,
        coalesce(is_active, true) as is_active,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'product_id') }}
),

final as (
    select
        latest.*,
        coalesce(category_mapping.category_code, 'other') as category_code,
        case
            when latest.product_id is null then 'missing product_id'
            when latest.list_price < 0 then 'negative list_price'
        end as rejection_reason,
    from latest
    left join category_mapping on latest.category_text = category_mapping.category_text
)

select * from final
