{# A text literal (or a typed null) for models generated from the graph (audit.privacy_columns). #}
{% macro _privacy_literal(value) -%}
    {%- if value is none -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        cast('{{ value | string | replace("'", "''") }}' as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
