-- One row per product_id; the normalised category text gets its code (macros/text.sql
-- category_code: the mapping's code, else the text's own snake_case code).
with

category_mapping as (
    select * from {{ ref('category_mapping') }}
),

latest as (
    select {{ star_except(ref('base_orders__products'), ['_is_current']) }} from {{ ref('base_orders__products') }} where _is_current
),

final as (
    select
        latest.*,
        {{ category_code('latest.category_text', 'category_mapping.category_code') }} as category_code,
        case
            when latest.product_id is null then 'missing product_id'
            when latest.list_price < 0 then 'negative list_price'
        end as rejection_reason
    from latest
    left join category_mapping on latest.category_text = category_mapping.category_text
)

select *, {{ evaluation_stamp() }} from final
