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

{% macro spark__type_double() -%}double{%- endmacro %}


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

{% macro spark__key_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
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

{% macro spark__format_timestamp_seconds(expression) -%}
    date_format({{ expression }}, 'yyyy-MM-dd HH:mm:ss')
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
    {#- Spark: a full rebuild per run (macros/spark.sql) -#}
    {{ return({'duckdb': 'merge', 'spark': 'insert_overwrite'}.get(target.type, 'delete+insert')) }}
{%- endmacro %}

{% macro tombstone_post_hook() -%}
    {#- Spark rebuilds these models in full (macros/spark.sql): no tombstones to delete -#}
    {{ return([] if target.type in ('duckdb', 'spark') else ['delete from {{ this }} where _is_removed']) }}
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
    Spark prints a DOUBLE as Java does (8.4E-4, 1.0E-5, 1.0E7); DuckDB as Python's repr
    (0.00084, 1e-05, 10000000.0: the exponent form below 1e-4 and from 1e16). Java's digits
    are kept and laid out as DuckDB's.
#}
{% macro spark__double_to_text(expression) -%}
    {%- set java = 'cast(' ~ expression ~ ' as string)' -%}
    {%- set pattern = "'^(-?)([0-9])[.]([0-9]+)E(-?[0-9]+)$'" -%}
    {%- set sign = 'regexp_extract(' ~ java ~ ', ' ~ pattern ~ ', 1)' -%}
    {%- set digits = 'regexp_replace(regexp_extract(' ~ java ~ ', ' ~ pattern ~ ', 2) || regexp_extract(' ~ java ~ ', ' ~ pattern ~ ", 3), '0+$', '')" -%}
    {%- set exponent = 'cast(regexp_extract(' ~ java ~ ', ' ~ pattern ~ ', 4) as int)' -%}
    case
        when {{ expression }} = floor({{ expression }}) and abs({{ expression }}) < 1e15
            then cast(cast({{ expression }} as bigint) as string) || '.0'
        when {{ java }} not like '%E%' then {{ java }}
        when {{ exponent }} < -4 or {{ exponent }} >= 16
            then {{ sign }} || substr({{ digits }}, 1, 1)
                || case when length({{ digits }}) > 1 then '.' || substr({{ digits }}, 2) else '' end
                || 'e' || case when {{ exponent }} < 0 then '-' else '+' end
                || lpad(cast(abs({{ exponent }}) as string), 2, '0')
        when {{ exponent }} < 0
            then {{ sign }} || '0.' || repeat('0', -{{ exponent }} - 1) || {{ digits }}
        when length({{ digits }}) <= {{ exponent }} + 1
            then {{ sign }} || rpad({{ digits }}, {{ exponent }} + 1, '0') || '.0'
        else {{ sign }} || substr({{ digits }}, 1, {{ exponent }} + 1) || '.' || substr({{ digits }}, {{ exponent }} + 2)
    end
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

{% macro spark__ratio_text(numerator, denominator, digits) -%}
    {{ double_to_text('cast(round(cast(' ~ numerator ~ ' as decimal(38, 12)) / ' ~ denominator ~ ', ' ~ digits ~ ') as double)') }}
{%- endmacro %}


{#
    Post-hook of every model (dbt_project.yml): PostgreSQL plans a query by table statistics,
    and a table dbt has just created has none until autovacuum gets to it: the next model's
    joins were then planned as nested loops over 100k-row tables. ANALYZE each table a model
    writes. Nothing on DuckDB (an empty hook is skipped).
#}
{% macro analyze_after_build() -%}
    {{ return(adapter.dispatch('analyze_after_build', 'crm_tags')()) }}
{%- endmacro %}

{% macro default__analyze_after_build() -%}
    {%- if model.config.materialized in ('table', 'incremental') -%}analyze {{ this }}{%- endif -%}
{%- endmacro %}

{% macro duckdb__analyze_after_build() -%}{%- endmacro %}

{#- Spark: dbt-spark's tables carry no planner statistics worth an extra scan here -#}
{% macro spark__analyze_after_build() -%}{%- endmacro %}


{# string_agg in a given order: DuckDB's and PostgreSQL's `order by` inside the call, Spark's (4.0+) `within group`. #}
{% macro ordered_string_agg(measure, delimiter, order_by) -%}
    {{ return(adapter.dispatch('ordered_string_agg', 'crm_tags')(measure, delimiter, order_by)) }}
{%- endmacro %}

{% macro default__ordered_string_agg(measure, delimiter, order_by) -%}
    string_agg({{ measure }}, {{ delimiter }} order by {{ order_by }})
{%- endmacro %}

{% macro spark__ordered_string_agg(measure, delimiter, order_by) -%}
    string_agg({{ measure }}, {{ delimiter }}) within group (order by {{ order_by }})
{%- endmacro %}


{# The character of a Unicode code point: chr(); Spark's chr() takes the code modulo 256, so the character itself, as a literal. #}
{% macro unicode_char(code) -%}
    {{ return(adapter.dispatch('unicode_char', 'crm_tags')(code)) }}
{%- endmacro %}

{% macro default__unicode_char(code) -%}chr({{ code }}){%- endmacro %}

{% macro spark__unicode_char(code) -%}'{{ "%c" | format(code) }}'{%- endmacro %}
