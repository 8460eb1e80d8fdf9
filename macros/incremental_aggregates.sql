{#
    Incremental facts and per-customer aggregates (fct_order_lines, fct_orders,
    int_customer_daily_*; see docs/design.md "Incremental refresh").

    Such a model keeps its rows and, on an incremental run, recomputes only the rows whose
    inputs staging re-evaluated since the model last ran (its watermark: the newest
    _evaluated_at in the model). Recomputed rows replace the old ones through a merge on the
    model's key; an old row the recomputation no longer produces (its order was cancelled,
    its account deleted, ...) comes as a tombstone (_is_removed) and the merge deletes it.
#}

{#
    The newest _evaluated_at of this model: what changed after it is this run's work. Read
    when the model is compiled and written as a literal, so `_evaluated_at > watermark` skips
    the row groups written before it (DuckDB's zone maps) instead of scanning every row.
#}
{% macro watermark() -%}
    {{ return(newest_timestamp(this, '_evaluated_at')) }}
{%- endmacro %}


{# max(column) of a relation as a TIMESTAMP literal ('-infinity' when empty), read at compile time. #}
{% macro newest_timestamp(relation, column) -%}
    {%- if not execute -%}{{ return("cast('-infinity' as timestamp)") }}{%- endif -%}
    {%- set newest = run_query('select max(' ~ column ~ ') from ' ~ relation).columns[0].values()[0] -%}
    {%- if newest is none -%}{{ return("cast('-infinity' as timestamp)") }}{%- endif -%}
    {{ return("cast('" ~ newest ~ "' as timestamp)") }}
{%- endmacro %}


{# merge_clauses for the config: update or insert recomputed rows, delete tombstones. #}
{% macro merge_with_tombstones() -%}
    {{ return({
        'when_matched': [
            {'condition': 'DBT_INTERNAL_SOURCE._is_removed', 'action': 'delete'},
            {'action': 'update', 'mode': 'by_name'},
        ],
        'when_not_matched': [
            {'condition': 'not DBT_INTERNAL_SOURCE._is_removed', 'action': 'insert', 'mode': 'by_name'},
        ],
    }) }}
{%- endmacro %}


{#
    Tombstones: rows of this model in the recomputed scope (`scope`: a relation or subquery with
    the `scope_columns`) that the recomputation (`recomputed`, keyed by `key_columns`) no
    longer produces. When the scope is a set of keys, every scope key the recomputation lacks
    is a tombstone (the merge deletes it where it exists), without reading this model; a wider
    scope (a customer-day) reads the model's rows in it.
#}
{% macro removed_rows(recomputed, scope, scope_columns, key_columns) -%}
    {%- set source = 'scope' if scope_columns == key_columns else 'existing' -%}
    select {{ tombstone_columns(source, key_columns) }}
    {%- if scope_columns == key_columns %}
    from ({{ scope }}) as scope
    where not exists (
    {%- else %}
    from {{ this }} as existing
    where exists (
        select 1 from ({{ scope }}) as scope
        where {% for c in scope_columns %}{{ 'and ' if not loop.first }}scope.{{ c }} = existing.{{ c }} {% endfor %}
    )
    and not exists (
    {%- endif %}
        select 1 from {{ recomputed }}
        where {% for c in key_columns %}{{ 'and ' if not loop.first }}{{ recomputed }}.{{ c }} = {{ source }}.{{ c }} {% endfor %}
    )
{%- endmacro %}


{#
    A tombstone's select list: its key and _is_removed. DuckDB's `union all by name` fills the
    other columns with nulls; elsewhere they are listed, as null, in the model's column order
    (this model's columns up to _is_removed, the last one the recomputation writes).
#}
{% macro tombstone_columns(source, key_columns) -%}
    {{ return(adapter.dispatch('tombstone_columns', 'crm_tags')(source, key_columns)) }}
{%- endmacro %}

{% macro duckdb__tombstone_columns(source, key_columns) -%}
    {{ source }}.{{ key_columns | join(', ' ~ source ~ '.') }}, true as _is_removed
{%- endmacro %}

{% macro default__tombstone_columns(source, key_columns) -%}
    {%- if not execute -%}{{ return(duckdb__tombstone_columns(source, key_columns)) }}{%- endif -%}
    {%- set items = [] -%}
    {%- for column in adapter.get_columns_in_relation(this) -%}
        {%- set name = column.name | lower -%}
        {%- if name == '_is_removed' -%}
            {%- do items.append('true as _is_removed') -%}
            {{ return(items | join(', ')) }}
        {%- elif name in key_columns -%}
            {%- do items.append(source ~ '.' ~ name) -%}
        {%- else -%}
            {%- do items.append('cast(null as ' ~ column.data_type ~ ') as ' ~ name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do exceptions.raise_compiler_error('tombstone_columns: ' ~ this ~ ' has no column _is_removed') -%}
{%- endmacro %}


{# A fingerprint of seeds/category_mapping.csv: stored per row, so a changed mapping re-maps. #}
{% macro category_mapping_version() -%}
    {#- the rule's name is hashed too: lines mapped under an earlier rule (unlisted text -> other)
        are re-mapped once -#}
    select {{ mapping_fingerprint("'unlisted text keeps its own code;'
        || " ~ ordered_string_agg("category_text || '=' || category_code", "';'", 'category_text, category_code')) }}
        as version
    from {{ ref('category_mapping') }}
{%- endmacro %}


{# The same fingerprint as a literal, read at compile time. #}
{% macro current_category_mapping_version() -%}
    {%- if not execute -%}{{ return('0') }}{%- endif -%}
    {%- set version = run_query(category_mapping_version()).columns[0].values()[0] -%}
    {{ return(adapter.dispatch('mapping_fingerprint_literal', 'crm_tags')(version)) }}
{%- endmacro %}

{% macro mapping_fingerprint(expression) -%}
    {{ return(adapter.dispatch('mapping_fingerprint', 'crm_tags')(expression)) }}
{%- endmacro %}

{% macro default__mapping_fingerprint(expression) -%}md5({{ expression }}){%- endmacro %}

{% macro duckdb__mapping_fingerprint(expression) -%}hash({{ expression }}){%- endmacro %}

{% macro default__mapping_fingerprint_literal(version) -%}'{{ version }}'{%- endmacro %}

{% macro duckdb__mapping_fingerprint_literal(version) -%}cast({{ version }} as ubigint){%- endmacro %}


{#
    The orders staging re-evaluated since the watermark, itself or through one of its lines:
    what fct_orders rewrites, and what the daily aggregates recompute from.
#}
{% macro changed_orders() -%}
    {%- set since = watermark() -%}
    select order_id from {{ ref('stg_orders__orders') }}
    where _evaluated_at > {{ since }} and order_id is not null
    union
    select order_id from {{ ref('stg_orders__order_items') }}
    where _evaluated_at > {{ since }} and order_id is not null
{%- endmacro %}


{#
    The (customer, day) pairs whose order-derived rows must be recomputed: the customer and
    order day of every version of each changed order (a re-delivered order can move to
    another account or day; its old pair must be recomputed too).
#}
{% macro affected_customer_days() -%}
    select distinct account_id as customer_id, cast(order_ts as date) as order_date
    from {{ ref('base_orders__orders') }}
    where account_id is not null and order_ts is not null
        and order_id in (select changed_orders.order_id from ({{ changed_orders() }}) as changed_orders)
{%- endmacro %}
