{#
    A tag-health threshold from seeds/tag_health_thresholds.csv as a scalar SQL expression:
    stewards tune the flags in the seed, never in SQL (docs/tag-health.md).
#}
{% macro health_param(parameter) -%}
    (select value from {{ ref('tag_health_thresholds') }} where parameter = '{{ parameter }}')
{%- endmacro %}

{# A share as a float: numerator / denominator, null when the denominator is 0 or null. #}
{% macro safe_share(numerator, denominator) -%}
    cast({{ numerator }} as double precision) / nullif({{ denominator }}, 0)
{%- endmacro %}

{# A number as text with four decimals, for the flags' reasons ('0.0150'). #}
{% macro health_number_text(expression) -%}
    cast(cast({{ expression }} as decimal(18, 4)) as {{ dbt.type_string() }})
{%- endmacro %}
