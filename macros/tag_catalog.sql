{#
    The tag catalog (var `tag_catalog` in dbt_project.yml) and everything derived from it while
    dbt parses. A tag is its catalog entry, its thresholds (seeds/tag_thresholds.csv), its model
    `models/marts/tags/tag_<code>.sql` and that model's YAML with its unit tests; nothing here
    lists tags by hand (docs/adding-a-tag.md).

    tag_catalog()            the entries, checked (a mistake stops the parse naming tag and field)
    account_tags()           [{code, model, multi_valued}] of the account-level tags: the models
                             int_customer_tag_values unions and customer_profile's columns
    contact_tags()           likewise for contact-level tags (marts.contact_tags)
    catalog_value_codes(t)   a one-column relation (tag_value) of tag t's listed value codes
#}

{% macro tag_catalog() %}
    {%- set catalog = var('tag_catalog', none) -%}
    {%- if catalog is not mapping or not catalog -%}
        {%- do exceptions.raise_compiler_error(
            "dbt_project.yml: vars.tag_catalog must map each tag_code to its catalog entry") -%}
    {%- endif -%}
    {%- set required = ['dimension', 'tag_level', 'is_multi_valued', 'label_zh', 'label_en',
                        'definition', 'authoritative_source', 'source_tables', 'rule',
                        'refresh_frequency', 'owner'] -%}
    {%- set allowed = {
        'dimension': ['basic', 'behaviour', 'value', 'preference', 'manual'],
        'tag_level': ['account', 'contact'],
        'refresh_frequency': ['daily', 'weekly', 'monthly'],
        'values_from': ['product_categories'],
    } -%}
    {%- for code, tag in catalog.items() -%}
        {%- set where = 'dbt_project.yml vars.tag_catalog.' ~ code -%}
        {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', code | string) -%}
            {%- do exceptions.raise_compiler_error(where ~ ": a tag_code is lower-case snake_case") -%}
        {%- endif -%}
        {%- if tag is not mapping -%}
            {%- do exceptions.raise_compiler_error(where ~ ": expected the entry's fields (" ~ required | join(', ') ~ ")") -%}
        {%- endif -%}
        {%- for field in required if tag.get(field) is none or tag.get(field) | string | trim == '' -%}
            {%- do exceptions.raise_compiler_error(where ~ ": missing field " ~ field) -%}
        {%- endfor -%}
        {%- for field, values in allowed.items() if tag.get(field) is not none and tag[field] not in values -%}
            {%- do exceptions.raise_compiler_error(
                where ~ "." ~ field ~ " is '" ~ tag[field] ~ "'; expected one of " ~ values | join(', ')) -%}
        {%- endfor -%}
        {%- if tag.is_multi_valued not in [true, false] -%}
            {%- do exceptions.raise_compiler_error(where ~ ".is_multi_valued must be true or false") -%}
        {%- endif -%}
        {%- if tag.source_tables is string or tag.source_tables is not iterable -%}
            {%- do exceptions.raise_compiler_error(where ~ ".source_tables must be a list such as [orders.orders, orders.order_items]") -%}
        {%- endif -%}
        {%- if tag.get('values') is none and tag.get('values_from') is none -%}
            {%- do exceptions.raise_compiler_error(where ~ ": list its values (code: [label_zh, label_en]) or set values_from") -%}
        {%- endif -%}
        {%- for value, labels in (tag.get('values') or {}).items() -%}
            {#- YAML reads yes/no/on/off/true/false as booleans: such a code must be quoted -#}
            {%- if value is not string or not modules.re.fullmatch('[a-z0-9][a-z0-9_]*', value) -%}
                {%- do exceptions.raise_compiler_error(
                    where ~ ".values: '" ~ value ~ "' is not a lower-case snake_case code (quote codes such as 'no')") -%}
            {%- endif -%}
            {%- if labels is string or labels is not iterable or labels | length != 2 -%}
                {%- do exceptions.raise_compiler_error(where ~ ".values." ~ value ~ ": expected [label_zh, label_en]") -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(catalog) }}
{% endmacro %}


{% macro catalog_tags_at_level(level) %}
    {%- set tags = [] -%}
    {%- for code, tag in tag_catalog().items() if tag.tag_level == level -%}
        {%- do tags.append({'code': code, 'model': 'tag_' ~ code, 'multi_valued': tag.is_multi_valued}) -%}
    {%- endfor -%}
    {{ return(tags) }}
{% endmacro %}

{% macro account_tags() %}{{ return(catalog_tags_at_level('account')) }}{% endmacro %}

{% macro contact_tags() %}{{ return(catalog_tags_at_level('contact')) }}{% endmacro %}


{# A SQL string literal (standard quoting), for catalog text compiled into SQL. #}
{% macro sql_literal(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}


{% macro catalog_value_codes(tag_code) -%}
    {%- set values = (tag_catalog()[tag_code].get('values') or {}).keys() | list -%}
    {%- if not values -%}
    select cast(null as {{ dbt.type_string() }}) as tag_value where false
    {%- else -%}
    select * from (values {% for value in values %}({{ sql_literal(value) }}){{ ', ' if not loop.last }}{% endfor %}) as listed (tag_value)
    {%- endif -%}
{%- endmacro %}
