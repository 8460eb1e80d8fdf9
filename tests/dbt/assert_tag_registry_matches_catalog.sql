-- macros/registry.sql (which model computes which tag) and seeds/tag_definitions.csv agree.
{% set registered = [] %}
{% for tag in account_tags() %}{% do registered.append((tag.code, 'account', tag.multi_valued)) %}{% endfor %}
{% for tag in contact_tags() %}{% do registered.append((tag.code, 'contact', tag.multi_valued)) %}{% endfor %}
with

registry as (
    {% for code, level, multi in registered %}
    select '{{ code }}' as tag_code, '{{ level }}' as tag_level, {{ multi }} as is_multi_valued
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

catalog as (
    select tag_code, tag_level, is_multi_valued from {{ ref('tag_definitions') }}
)

select 'missing from the registry' as problem, * from (select * from catalog except select * from registry)
union all
select 'missing from the catalog' as problem, * from (select * from registry except select * from catalog)
