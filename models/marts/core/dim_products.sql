with

products as (
    select * from {{ ref('stg_orders__products') }} where rejection_reason is null
),

final as (
    select
        product_id,
        product_name,
        category_text,
        category_code,
        sub_category,
        list_price,
        is_active
    from products
)

select * from final
