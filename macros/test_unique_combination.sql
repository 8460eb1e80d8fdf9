{#
    Generic test: no two rows share the same values in `columns` (dbt_utils is unavailable here).

    written_at (optional): a column that every row a run writes carries the run's start stamp
    in (run_started_at_timestamp(): `_evaluated_at` of the facts, and of the base models under
    the staging views, which stamp every row they load or re-judge). When this `dbt build` rewrote part of the table, only the keys of
    the rows it wrote are checked, over the whole table: a duplicate needs at least one row
    written by the run that made it, so the daily build does not re-group 20M untouched order
    lines. The whole table is checked when the build wrote no row or every row (the model was
    not built in this invocation, or was built in full), in `dbt test` and with --full-refresh;
    the quality gate checks every key of the published tables in any case
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
{%- if scoped %}
    -- the keys of the rows this run wrote, by a 64-bit hash (a collision only widens the
    -- check); `in` lets DuckDB build its hash table on them, not on the whole table
    and hash({{ keys }}) in (
        select hash({{ keys }}) from {{ model }} where {{ written_at }} = {{ run_started_at_timestamp() }}
    )
{%- else %}
    -- the keys whose 64-bit hash repeats: grouping the hashes first costs 5-20% less than
    -- grouping the key strings of every row (20M order lines, 1M customers); the grouping
    -- below drops two keys that merely share a hash
    and hash({{ keys }}) in (
        select hash({{ keys }}) from {{ model }} where {{ all_not_null(columns) }}
        group by hash({{ keys }}) having count(*) > 1
    )
{%- endif %}
group by {{ keys }}
having count(*) > 1
{% endtest %}


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
