{#
    Segments (models/marts/segments/, docs/segments.md).

    segment_holdout_bucket(salt, customer_id)
        0-9999: the first 32 bits of md5(salt || ':' || customer_id) as an unsigned number,
        modulo 10,000. md5 and the hex digits are the same on every engine, so the holdout
        group is too (crm_tags.segments.holdout_bucket is the same function in Python).

    The membership history's periods: period_history and replace_periods in macros/history.sql.
#}

{% macro segment_holdout_bucket(salt, customer_id) -%}
    {{ return(adapter.dispatch('segment_holdout_bucket', 'crm_tags')(salt, customer_id)) }}
{%- endmacro %}

{% macro default__segment_holdout_bucket(salt, customer_id) -%}
    (cast(('0x' || substr({{ dbt.hash(dbt.concat([salt, "':'", customer_id])) }}, 1, 8)) as bigint) % 10000)
{%- endmacro %}

{% macro postgres__segment_holdout_bucket(salt, customer_id) -%}
    (('x' || substr({{ dbt.hash(dbt.concat([salt, "':'", customer_id])) }}, 1, 8))::bit(32)::bigint % 10000)
{%- endmacro %}

{#
    segment_conditions(definitions)
        [(segment_code, member_condition), ...] of intermediate.segment_definitions in
        evaluation order, read when segment_members runs (the model after it in the DAG); an
        empty list while that table does not exist (parse, or a compile before any build).
        Each condition was compiled from the segments file by crm_tags.segments.compile, values
        as escaped literals; the codes are checked again here before they become identifiers.

    segment_layers(profile, segments)
        CTEs segment_layer_0 (the profile) ... segment_layer_N, each adding one boolean column
        "segment:<code>" per segment (a later one reads an earlier one's: in_segment(), and the
        priority lists); segment_rows(segments) turns the last layer's columns into
        (segment_code, customer_id) rows of the members: UNPIVOT on DuckDB, one union all
        branch per segment elsewhere.
#}

{% macro segment_conditions(definitions) -%}
    {%- set segments = [] -%}
    {%- if execute and load_relation(definitions) is not none -%}
        {%- set result = run_query(
            "select segment_code, member_condition from " ~ definitions
            ~ " order by evaluation_order") -%}
        {%- for row in result.rows -%}
            {%- if not modules.re.fullmatch('[a-z][a-z0-9_]*', row[0]) -%}
                {{ exceptions.raise_compiler_error("segment code " ~ row[0] ~ " in " ~ definitions ~ " is not lower-case snake_case") }}
            {%- endif -%}
            {%- do segments.append((row[0], row[1])) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(segments) }}
{%- endmacro %}

{% macro segment_layers(profile, segments) -%}
segment_layer_0 as (
    select * from {{ profile }}
){% for code, condition in segments %},

segment_layer_{{ loop.index }} as (
    select
        *,
        {{ condition }} as "segment:{{ code }}"
    from segment_layer_{{ loop.index0 }}
){% endfor %}
{%- endmacro %}

{% macro segment_rows(segments) -%}
    {{ return(adapter.dispatch('segment_rows', 'crm_tags')(segments)) }}
{%- endmacro %}

{% macro default__segment_rows(segments) -%}
    {%- for code, condition in segments %}
    select
        '{{ code }}' as segment_code,
        customer_id
    from segment_layer_{{ segments | length }}
    where "segment:{{ code }}"
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{% macro duckdb__segment_rows(segments) -%}
    {%- set columns = [] -%}
    {%- for code, condition in segments -%}
        {%- do columns.append('"segment:' ~ code ~ '"') -%}
    {%- endfor %}
    select
        substr(segment_code, {{ 'segment:' | length + 1 }}) as segment_code,
        customer_id
    from (
        unpivot (
            select customer_id, {{ columns | join(', ') }}
            from segment_layer_{{ segments | length }}
        )
        on {{ columns | join(', ') }}
        into name segment_code value is_member
    )
    where is_member
{%- endmacro %}
