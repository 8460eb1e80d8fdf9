{#
    Engine differences (docs/engines.md). The models are written once in SQL every target
    accepts; where an engine needs other SQL, or DuckDB has a faster form worth keeping, the
    difference lives here as an adapter.dispatch macro: `default__` is the portable form
    (PostgreSQL), `duckdb__` DuckDB's. dbt's own cross-database macros (dbt.datediff,
    dbt.hash, dbt.any_value ...) come first; these cover what they do not.
#}


{# DOUBLE PRECISION: dbt.type_float() is a 4-byte REAL on DuckDB. #}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'crm_tags')()) }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro duckdb__type_double() -%}double{%- endmacro %}


{#
    `alias.*` without `except_columns`: DuckDB's `* exclude (...)`; elsewhere the relation's
    columns, listed (read when the model runs; `relation` must then exist).
#}
{% macro star_except(relation, except_columns, alias=none) -%}
    {{ return(adapter.dispatch('star_except', 'crm_tags')(relation, except_columns, alias)) }}
{%- endmacro %}

{% macro default__star_except(relation, except_columns, alias) -%}
    {%- set prefix = (alias ~ '.') if alias else '' -%}
    {#- a unit test's fixture (a CTE) holds only the columns it lists: all of them -#}
    {%- if not execute or '__dbt__cte__' in relation | string -%}{{ return(prefix ~ '*') }}{%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name | lower not in except_columns | map('lower') | list -%}
            {%- do names.append(prefix ~ adapter.quote(column.name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if not names -%}
        {%- do exceptions.raise_compiler_error("star_except: no columns found in " ~ relation) -%}
    {%- endif -%}
    {{ return(names | join(', ')) }}
{%- endmacro %}

{% macro duckdb__star_except(relation, except_columns, alias) -%}
    {{ (alias ~ '.') if alias else '' }}* exclude ({{ except_columns | join(', ') }})
{%- endmacro %}


{#
    A 64-bit-ish hash of a list of columns, for grouping long keys cheaply (an optimisation
    only: the callers compare the keys themselves where hashes repeat).
#}
{% macro key_hash(columns) -%}
    {{ return(adapter.dispatch('key_hash', 'crm_tags')(columns)) }}
{%- endmacro %}

{% macro default__key_hash(columns) -%}
    {%- set parts = [] -%}
    {%- for c in columns -%}{%- do parts.append('coalesce(cast(' ~ c ~ ' as ' ~ dbt.type_string() ~ "), '\\x01')") -%}{%- endfor -%}
    {{ dbt.hash(parts | join(" || '\\x00' || ")) }}
{%- endmacro %}

{% macro duckdb__key_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}


{# A timestamp as 'YYYY-MM-DD HH:MM:SS' text (fractions of a second dropped). #}
{% macro format_timestamp_seconds(expression) -%}
    {{ return(adapter.dispatch('format_timestamp_seconds', 'crm_tags')(expression)) }}
{%- endmacro %}

{% macro default__format_timestamp_seconds(expression) -%}
    to_char({{ expression }}, 'YYYY-MM-DD HH24:MI:SS')
{%- endmacro %}

{% macro duckdb__format_timestamp_seconds(expression) -%}
    strftime({{ expression }}, '%Y-%m-%d %H:%M:%S')
{%- endmacro %}


{# Length of a string in bytes (UTF-8). #}
{% macro byte_length(expression) -%}
    {{ return(adapter.dispatch('byte_length', 'crm_tags')(expression)) }}
{%- endmacro %}

{% macro default__byte_length(expression) -%}octet_length({{ expression }}){%- endmacro %}

{% macro duckdb__byte_length(expression) -%}strlen({{ expression }}){%- endmacro %}


{#
    `union all by name`: DuckDB matches the two sides' columns by name; elsewhere the sides
    must list the same columns in the same order (the callers make sure of it).
#}
{% macro union_all_by_name() -%}
    {{ return(adapter.dispatch('union_all_by_name', 'crm_tags')()) }}
{%- endmacro %}

{% macro default__union_all_by_name() -%}union all{%- endmacro %}

{% macro duckdb__union_all_by_name() -%}union all by name{%- endmacro %}


{#
    The incremental strategy of a model that recomputes rows and sends tombstones
    (macros/incremental_aggregates.sql): DuckDB merges (merge_clauses delete the tombstones);
    elsewhere delete+insert on the key, and a post-hook deletes the tombstones it inserted.
#}
{% macro tombstone_strategy() -%}
    {{ return('merge' if target.type == 'duckdb' else 'delete+insert') }}
{%- endmacro %}

{% macro tombstone_post_hook() -%}
    {{ return([] if target.type == 'duckdb' else ['delete from {{ this }} where _is_removed']) }}
{%- endmacro %}


{# A DOUBLE as text the way DuckDB prints it (whole numbers keep '.0': 1.0, not PostgreSQL's 1). #}
{% macro double_to_text(expression) -%}
    {{ return(adapter.dispatch('double_to_text', 'crm_tags')(expression)) }}
{%- endmacro %}

{% macro default__double_to_text(expression) -%}
    case
        when {{ expression }} = floor({{ expression }}) and abs({{ expression }}) < 1e15
            then cast(cast({{ expression }} as bigint) as {{ dbt.type_string() }}) || '.0'
        else cast({{ expression }} as {{ dbt.type_string() }})
    end
{%- endmacro %}

{% macro duckdb__double_to_text(expression) -%}
    cast({{ expression }} as {{ dbt.type_string() }})
{%- endmacro %}


{#
    numerator / denominator rounded to `digits`, as text, the way DuckDB prints it (DuckDB
    divides in DOUBLE, also integers and decimals; PostgreSQL divides integers to an integer and
    keeps a decimal's trailing zeros: 0.5000).
#}
{% macro ratio_text(numerator, denominator, digits) -%}
    {{ return(adapter.dispatch('ratio_text', 'crm_tags')(numerator, denominator, digits)) }}
{%- endmacro %}

{% macro default__ratio_text(numerator, denominator, digits) -%}
    {{ double_to_text('cast(round(cast(' ~ numerator ~ ' as numeric) / ' ~ denominator ~ ', ' ~ digits ~ ') as ' ~ type_double() ~ ')') }}
{%- endmacro %}

{% macro duckdb__ratio_text(numerator, denominator, digits) -%}
    cast(round({{ numerator }} / {{ denominator }}, {{ digits }}) as {{ dbt.type_string() }})
{%- endmacro %}
