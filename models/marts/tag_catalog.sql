-- marts.tag_catalog: one row per tag, from the catalog (reference.tag_definitions), with its value codes.
-- Value labels (zh/en) are in marts.tag_value_labels.
with

catalog as (
    select * from {{ ref('tag_definitions') }}
),

value_codes as (
    select
        tag_code,
        {{ ordered_string_agg('tag_value', "', '", 'sort_order') }} as allowed_values
    from {{ ref('tag_value_definitions') }}
    group by tag_code
),

final as (
    select
        catalog.tag_code,
        catalog.dimension,
        catalog.tag_level,
        catalog.is_multi_valued,
        catalog.label_zh,
        catalog.label_en,
        catalog.definition,
        catalog.authoritative_source,
        catalog.source_tables,
        catalog.rule,
        catalog.refresh_frequency,
        catalog.owner,
        value_codes.allowed_values
    from catalog
    left join value_codes on catalog.tag_code = value_codes.tag_code
)

select * from final
order by tag_code
