{#
    Generic test: no two rows share the same values in `columns` (dbt_utils is unavailable here).

    written_at (optional): a column that every row a run writes carries the run's start stamp
    in (run_started_at_timestamp(): `_evaluated_at` of the facts, and of the base models under
    the staging views, which stamp every row they load or re-judge). When this `dbt build`
    rewrote part of the table, only the rows it wrote are checked: a duplicate needs at least
    one row written by the run that made it, and when the table is merged on the tested key
    (`unique_key` of the model, or of the one incremental model a view reads) the merge
    rewrites every row of the keys it writes (merge updates each matching row, delete+insert
    deletes them all), so the duplicate's other rows carry the stamp too. The daily build then
    groups the day's 0.1M rows instead of probing 20M order lines with their keys (1M
    customers; the times: docs/benchmark.md). Without such a merge the run's keys are probed over the
    whole table. The whole table is checked when the build wrote no row or every row (the
    model was not built in this invocation, or was built in full), in `dbt test` and with
    --full-refresh; the quality gate checks every key of the published tables in any case
    (expectations/suites/core.py).
    Rows with a null in a key column are skipped, as dbt's `unique` skips null values (rejected
    rows of a staging view have no key; not_null tests cover the facts' keys).
#}
{% test unique_combination(model, columns, written_at=none) %}
{%- set keys = columns | join(', ') -%}
{%- set scoped = written_at is not none and rows_written_by_this_build(model, written_at) -%}
select {{ keys }}, count(*) as occurrences
from {{ model }}
where {{ all_not_null(columns) }}
{%- if scoped and merged_on_key(model, columns) %}
    -- every row sharing a key with a row this run wrote was rewritten by it (see above)
    and {{ written_at }} = {{ run_started_at_timestamp() }}
{%- elif scoped %}
    -- the keys of the rows this run wrote, by a 64-bit hash (a collision only widens the
    -- check); `in` lets DuckDB build its hash table on them, not on the whole table
    and {{ key_hash(columns) }} in (
        select {{ key_hash(columns) }} from {{ model }} where {{ written_at }} = {{ run_started_at_timestamp() }}
    )
{%- else %}
    and {{ key_hash(columns) }} in ({{ repeated_key_hashes(model, columns, all_not_null(columns)) }})
{%- endif %}
group by {{ keys }}
having count(*) > 1
{% endtest %}


{#
    The 64-bit hashes of `columns` held by more than one row of `relation` (where `where`). A
    duplicate finder groups these first and the key strings only where a hash repeats, which
    also drops two keys that merely share a hash: grouping the strings of every row costs
    more, most for the long keys of the tag values (docs/benchmark.md).
#}
{% macro repeated_key_hashes(relation, columns, where='true') -%}
    select {{ key_hash(columns) }} as key_hash from {{ relation }} where {{ where }}
    group by {{ key_hash(columns) }} having count(*) > 1
{%- endmacro %}


{#
    Whether this `dbt build` (not --full-refresh) rewrote only part of `model`: some rows carry
    this run's stamp in `written_at` and some an older one. A first build stamps every row, and
    grouping the whole table is then cheaper than scoping it.
#}
{% macro rows_written_by_this_build(model, written_at) -%}
    {%- if not execute or flags.WHICH != 'build' or flags.FULL_REFRESH -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set stamp = run_started_at_timestamp() -%}
    {%- set found = run_query(
        "select exists (select 1 from " ~ model ~ " where " ~ written_at ~ " = " ~ stamp ~ ")"
        ~ " and exists (select 1 from " ~ model ~ " where " ~ written_at ~ " is distinct from " ~ stamp ~ ")") -%}
    {{ return(found.columns[0].values()[0]) }}
{%- endmacro %}


{#
    Whether `model` is stored by an incremental merge on exactly `columns` (merge or
    delete+insert with that unique_key), or is a view over one such model: then a run that
    writes a key rewrites every stored row of it.
#}
{% macro merged_on_key(model, columns) -%}
    {%- set node = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
        | selectattr('schema', 'equalto', model.schema) | selectattr('alias', 'equalto', model.identifier)
        | first -%}
    {%- if node and node.config.materialized == 'view' -%}
        {%- set parents = [] -%}
        {%- for parent in node.depends_on.nodes if parent.startswith('model.') -%}{%- do parents.append(parent) -%}{%- endfor -%}
        {%- set node = graph.nodes[parents[0]] if parents | length == 1 else none -%}
    {%- endif -%}
    {%- if not node or node.config.materialized != 'incremental'
        or node.config.incremental_strategy not in ('merge', 'delete+insert') -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set unique_key = node.config.unique_key -%}
    {%- set unique_key = [unique_key] if unique_key is string else (unique_key or []) -%}
    {{ return(unique_key | sort == columns | sort) }}
{%- endmacro %}
