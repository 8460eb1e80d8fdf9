-- reference.tag_value_definitions: every value code a tag may take, with its zh/en labels. The
-- catalog lists them (var tag_catalog); a tag with `values_from: product_categories` takes the
-- categories present in the product data (core.dim_product_categories) first, then its listed
-- values (product_preference's `mixed`). A category whose code is also a listed value is listed
-- once, with the catalog's labels.
with

listed as (
    {%- set rows = [] %}
    {%- for code, tag in tag_catalog().items() %}
    {%- for value, labels in (tag.get('values') or {}).items() %}
    {%- do rows.append([code, value, labels[0], labels[1], loop.index]) %}
    {%- endfor %}
    {%- endfor %}
    select entries.* from (
        values
        {%- for code, value, label_zh, label_en, value_position in rows %}
        (
            {{ sql_literal(code) }}, {{ sql_literal(value) }},
            {{ sql_literal(label_zh) }}, {{ sql_literal(label_en) }}, {{ value_position }}
        ){{ ',' if not loop.last }}
        {%- endfor %}
    ) as entries (tag_code, tag_value, label_zh, label_en, value_position)
),

categories as (
    select * from {{ ref('dim_product_categories') }}
),

category_tags as (
    select tag_code from {{ ref('tag_definitions') }} where values_from = 'product_categories'
),

from_categories as (
    select
        category_tags.tag_code,
        categories.category_code as tag_value,
        categories.label_zh,
        categories.label_en,
        row_number() over (
            partition by category_tags.tag_code
            order by categories.sort_order, categories.category_code
        ) as value_position
    from category_tags
    cross join categories
    where not exists (
            select 1 from listed
            where listed.tag_code = category_tags.tag_code and listed.tag_value = categories.category_code
        )
),

categories_held as (
    select
        tag_code,
        count(*) as categories
    from from_categories
    group by tag_code
),

final as (
    select
        tag_code,
        tag_value,
        label_zh,
        label_en,
        cast(value_position as integer) as sort_order
    from from_categories
    union all
    select
        listed.tag_code,
        listed.tag_value,
        listed.label_zh,
        listed.label_en,
        cast(listed.value_position + coalesce(categories_held.categories, 0) as integer) as sort_order
    from listed
    left join categories_held on listed.tag_code = categories_held.tag_code
)

select * from final
order by tag_code, sort_order
