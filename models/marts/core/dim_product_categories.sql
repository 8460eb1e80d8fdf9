-- One row per product category present in the product data: the categories of kept products
-- (orders/products) and of kept web events (campaigns/web_events), coded as their facts code them
-- (macros/text.sql category_code). Labels from seeds/category_labels.csv where it has them, else
-- the code. These are the values of the category tags (reference.tag_value_definitions).
with

category_mapping as (
    select * from {{ ref('category_mapping') }}
),

category_labels as (
    select * from {{ ref('category_labels') }}
),

product_categories as (
    select distinct category_code from {{ ref('dim_products') }}
),

web_category_texts as (
    select distinct product_category_text as category_text
    from {{ ref('stg_campaigns__web_events') }}
    where rejection_reason is null and product_category_text is not null
),

web_categories as (
    select distinct
        {{ category_code('web_category_texts.category_text', 'category_mapping.category_code') }} as category_code
    from web_category_texts
    left join category_mapping on web_category_texts.category_text = category_mapping.category_text
),

present as (
    select
        category_code,
        true as in_products
    from product_categories
    union all
    select
        category_code,
        false as in_products
    from web_categories
),

final as (
    select
        present.category_code,
        coalesce({{ dbt.any_value('category_labels.label_zh') }}, present.category_code) as label_zh,
        coalesce({{ dbt.any_value('category_labels.label_en') }}, present.category_code) as label_en,
        {{ dbt.any_value('category_labels.label_zh') }} is not null as is_labelled,
        {{ dbt.bool_or('present.in_products') }} as is_in_products,
        {{ dbt.bool_or('not present.in_products') }} as is_in_web_events,
        cast(coalesce({{ dbt.any_value('category_labels.sort_order') }}, 1000) as integer) as sort_order
    from present
    left join category_labels on present.category_code = category_labels.category_code
    group by present.category_code
)

select * from final
order by sort_order, category_code
