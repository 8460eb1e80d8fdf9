{#
    The run date every tag is computed as of ('YYYY-MM-DD'): dbt var as_of_date when given, else
    the environment variable CRM_AS_OF_DATE, else today.
    Schedulers pass CRM_AS_OF_DATE (orchestration/, crm-tags build and bench): the date only
    changes compiled SQL, never the project's graph, and it is read when a node executes, not
    while dbt parses, so a new date keeps dbt's partial parsing (a changed --vars makes dbt
    re-parse the whole project at every daily run; the cost: docs/benchmark.md).
#}
{% macro as_of_date_string() %}
    {% set raw = var('as_of_date', '') | string | trim %}
    {% set origin = 'var as_of_date' %}
    {% if raw in ('', 'None', 'none', 'null') and execute %}
        {% set raw = env_var('CRM_AS_OF_DATE', '') | trim %}
        {% set origin = 'environment variable CRM_AS_OF_DATE' %}
    {% endif %}
    {% if raw in ('', 'None', 'none', 'null') %}
        {{ return(modules.datetime.date.today().isoformat()) }}
    {% endif %}
    {% if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', raw) %}
        {% do exceptions.raise_compiler_error(origin ~ " must be 'YYYY-MM-DD', got '" ~ raw ~ "'") %}
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

{#
    The same window written on the column itself, for a filter: x's date is within
    0 <= days_since(x) < window_days. A condition on the column (not on a day count computed
    from it) lets DuckDB skip the row groups outside the window by their min/max, even when
    the window comes from the thresholds seed (a fraction of the full read for the 90-day web
    events: docs/benchmark.md). `column_type`: 'timestamp' or 'date'.
    A window of w days holds the days as_of - (ceil(w) - 1) .. as_of (days_since is whole days).
#}
{% macro occurred_in_window(column, window_days_expression, column_type='timestamp') -%}
    {%- set first_day -%}
        ({{ as_of_date() }} - cast(ceil({{ window_days_expression }}) as integer) + 1)
    {%- endset -%}
    {%- if column_type == 'timestamp' -%}
    ({{ column }} >= cast({{ first_day }} as timestamp) and {{ column }} < cast({{ as_of_date() }} + 1 as timestamp))
    {%- elif column_type == 'date' -%}
    ({{ column }} >= {{ first_day }} and {{ column }} <= {{ as_of_date() }})
    {%- else -%}
    {%- do exceptions.raise_compiler_error("occurred_in_window: column_type must be 'timestamp' or 'date', got '" ~ column_type ~ "'") -%}
    {%- endif -%}
{%- endmacro %}
