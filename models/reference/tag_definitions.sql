-- reference.tag_definitions: the tag catalog (var tag_catalog in dbt_project.yml), one row per tag.
with

catalog as (
    select entries.* from (
        values
        {%- for code, tag in tag_catalog().items() %}
        (
            {{ sql_literal(code) }}, {{ sql_literal(tag.dimension) }}, {{ sql_literal(tag.tag_level) }},
            {{ 'true' if tag.is_multi_valued else 'false' }},
            {{ sql_literal(tag.label_zh) }}, {{ sql_literal(tag.label_en) }},
            {{ sql_literal(tag.definition) }}, {{ sql_literal(tag.authoritative_source) }},
            {{ sql_literal(tag.source_tables | join(' ')) }}, {{ sql_literal(tag.rule) }},
            {{ sql_literal(tag.refresh_frequency) }}, {{ sql_literal(tag.owner) }},
            {{ sql_literal(tag.get('values_from') or '') }}
        ){{ ',' if not loop.last }}
        {%- endfor %}
    ) as entries (
        tag_code, dimension, tag_level, is_multi_valued, label_zh, label_en, definition,
        authoritative_source, source_tables, rule, refresh_frequency, owner, values_from
    )
),

final as (
    select
        tag_code,
        dimension,
        tag_level,
        cast(is_multi_valued as boolean) as is_multi_valued,
        label_zh,
        label_en,
        definition,
        authoritative_source,
        source_tables,
        rule,
        refresh_frequency,
        owner,
        nullif(values_from, '') as values_from
    from catalog
)

select * from final
order by tag_code
