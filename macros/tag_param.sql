{#
    A tag threshold from seeds/tag_thresholds.csv as a scalar SQL expression, so business users
    change a boundary in the seed and every model that uses it follows. Referencing the seed
    through ref() keeps it in the lineage (and in unit-test inputs).
#}
{% macro tag_param(tag_code, parameter) -%}
    (select value from {{ ref('tag_thresholds') }} where tag_code = '{{ tag_code }}' and parameter = '{{ parameter }}')
{%- endmacro %}
