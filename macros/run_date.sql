{# The run date every tag is computed as of: dbt var as_of_date ('YYYY-MM-DD'), default today. #}
{% macro as_of_date_string() %}
    {% set raw = var('as_of_date', '') | string | trim %}
    {% if raw in ('', 'None', 'none', 'null') %}
        {{ return(modules.datetime.date.today().isoformat()) }}
    {% endif %}
    {% if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', raw) %}
        {% do exceptions.raise_compiler_error("var as_of_date must be 'YYYY-MM-DD', got '" ~ raw ~ "'") %}
    {% endif %}
    {% do modules.datetime.datetime.strptime(raw, '%Y-%m-%d') %}
    {{ return(raw) }}
{% endmacro %}

{% macro as_of_date() %}cast('{{ as_of_date_string() }}' as date){% endmacro %}

{# days_since(x) = as_of_date - date(x), in whole days (negative for events after the run date). #}
{% macro days_since(expression) -%}
    {{ dbt.datediff('cast(' ~ expression ~ ' as date)', as_of_date(), 'day') }}
{%- endmacro %}

{# Window membership as the spec defines it: 0 <= days_since < window_days. #}
{% macro in_window(days_since_expression, window_days_expression) -%}
    ({{ days_since_expression }} >= 0 and {{ days_since_expression }} < {{ window_days_expression }})
{%- endmacro %}
