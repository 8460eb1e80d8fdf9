-- One row per product_id; the free-text category is mapped to a category code (unknown -> other).
with

category_mapping as (
    select * from {{ ref('category_mapping') }}
),

latest as (
    select * exclude (_is_current) from {{ ref('base_orders__products') }} where _is_current
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

select *, {{ evaluation_stamp() }} from final
