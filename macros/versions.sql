{#
    The incremental "all versions" pattern of the base models (models/staging/*/base/).

    A base model keeps every raw row it has loaded, one row per row delivered, stamped with
    _loaded_at (the dbt run that loaded it), and flags the version that wins for its key with
    _is_current ("latest wins": newest by `order_by`, then
    the latest delivery (file mtime), then the later file and row). Staging models read the
    current versions; the reconciliation counts the superseded ones.

    Incremental runs read only the delivery files the model has not loaded yet (a file is
    identified by its path relative to $CRM_RAW_DIR) and re-rank only the keys those files
    touch: the model's SQL returns every version of the touched keys, and dbt's delete+insert
    on the key columns swaps them in. A full build (first run, --full-refresh) ranks everything.
    Rows with a null key part cannot be matched to anything: each is its own current version
    (staging rejects it).

    A base model whose verdict is stored (macros/stored_verdicts.sql) also passes
    `reevaluate`: the keys whose verdict can have changed without a new version are re-ranked
    and re-judged too.

    Usage, in a base model (the macro ends with the CTE `ranked`, every version of the keys
    this run touches):
        source as (select * from {{ source('crm', 'accounts') }} where {{ not_yet_loaded('crm/accounts') }}),
        cleaned as (...),
        {{ rank_versions('cleaned', ['account_id'], 'updated_at desc nulls last') }}
        select * from ranked
#}

{% macro not_yet_loaded(landing_table) -%}
    {%- if not is_incremental() or not execute -%}
        true
    {%- else -%}
        {#- a loaded file is known by its mtime and its row count (every row it held is kept) -#}
        {%- set loaded = run_query(
            'select _source_file, max(_delivered_at), count(*) from ' ~ this ~ ' group by _source_file'
        ) -%}
        {%- set landed = run_query(
            "select source_file, delivered_at, rows_delivered from " ~ source('landing', 'delivery_files')
            ~ " where source_table = '" ~ landing_table ~ "'"
        ) -%}
        {%- set landed_at = {} -%}
        {%- for row in landed.rows -%}{%- do landed_at.update({row[0]: [row[1], row[2]]}) -%}{%- endfor -%}
        {%- for row in loaded.rows -%}
            {%- if row[0] not in landed_at or landed_at[row[0]] != [row[1], row[2]] -%}
                {%- do exceptions.raise_compiler_error(
                    "Delivery error in table " ~ landing_table ~ ", file " ~ row[0] ~ ": it was loaded "
                    ~ "into " ~ this ~ " before and is now "
                    ~ ("gone from" if row[0] not in landed_at else "changed in")
                    ~ " the landing zone. Deliveries are append-only; to rebuild from the files as "
                    ~ "they are now, run with --full-refresh."
                ) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set loaded_files = loaded.columns[0].values() -%}
        {%- set new_files = [] -%}
        {%- for f in landed_at.keys() | sort -%}
            {%- if f not in loaded_files -%}{%- do new_files.append("'" ~ f | replace("'", "''") ~ "'") -%}{%- endif -%}
        {%- endfor -%}
        {%- if new_files -%}
            _source_file in ({{ new_files | join(', ') }})
        {%- else -%}
            false
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{% macro rank_versions(relation, key_columns, order_by=none, reevaluate=none) -%}
    {%- set keys = key_columns | join(', ') -%}
    {%- set keys_not_null = all_not_null(key_columns) -%}
    {%- if reevaluate is not none -%}{%- for p in reevaluate.get('parents', []) -%}{%- do ref(p.model) -%}{%- endfor -%}{%- endif -%}
{% if is_incremental() %}
touched_keys as (
    -- keys with a new version in this run's files
    select {{ keys }} from {{ relation }}
    {%- if reevaluate is not none %}
    union
    -- keys whose stored verdict can have changed without a new version
    {{ keys_to_reevaluate(key_columns, reevaluate.get('parents', []), reevaluate.get('dated', [])) }}
    {%- endif %}
),
{% endif %}
{%- set dropped = ['_is_current'] + (stored_verdict_columns() if reevaluate is not none else []) %}
versions as (
    {% if is_incremental() and target.type != 'duckdb' -%}
    {#- the two sides' columns in the same order: the loaded rows' own, bar the ranking's -#}
    select {{ star_except(this, dropped) }}
    from (select *, {{ run_started_at_timestamp() }} as _loaded_at from {{ relation }}) as new_versions
    {%- else -%}
    select *, {{ run_started_at_timestamp() }} as _loaded_at from {{ relation }}
    {%- endif %}
    {% if is_incremental() %}
    {{ union_all_by_name() }}
    -- the versions already loaded for the keys this run touches, to be re-ranked with the new ones
    select {{ star_except(this, dropped, 'loaded') }}
    from {{ this }} as loaded
    where exists (
        select 1 from touched_keys
        where {% for k in key_columns %}{{ 'and ' if not loop.first }}touched_keys.{{ k }} = loaded.{{ k }} {% endfor %}
    )
    {% endif %}
),

keys_with_versions as (
    -- keys delivered more than once: only their rows need ranking (a window over every row
    -- sorts the whole table, and most keys have a single version). Grouped by a 64-bit hash
    -- of the key, which costs a fraction of grouping the key strings; keys that share a hash
    -- only go through the window together, and it partitions by the key itself.
    select {{ key_hash(key_columns) }} as _key_hash from versions
    where {{ keys_not_null }}
    group by {{ key_hash(key_columns) }}
    having count(*) > 1
),

ranked as (
    -- a single version, or a null key part (matches nothing): current
    select versions.*, true as _is_current
    from versions
    where not ({{ keys_not_null }})
        or {{ key_hash(key_columns) }} not in (select _key_hash from keys_with_versions)
    -- both sides: the versions' columns, then _is_current
    union all
    select
        *,
        row_number() over (
            partition by {{ keys }}
            order by {% if order_by %}{{ order_by }}, {% endif %}_delivered_at desc nulls last, _source_file desc, _source_row_number desc
        ) = 1 as _is_current
    from versions
    where {{ keys_not_null }}
        and {{ key_hash(key_columns) }} in (select _key_hash from keys_with_versions)
)
{%- endmacro %}


{# `a is not null and b is not null ...`: every one of the columns is set. #}
{% macro all_not_null(columns) -%}
    {%- set conditions = [] -%}
    {%- for c in columns -%}{%- do conditions.append(c ~ ' is not null') -%}{%- endfor -%}
    {{ return(conditions | join(' and ')) }}
{%- endmacro %}


{# The dbt invocation's start time as a TIMESTAMP literal: the stamp of rows a run loads or evaluates. #}
{% macro run_started_at_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}
