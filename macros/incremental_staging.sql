{#
    Incremental staging (the big tables' staging models; see docs/design.md).

    A staging model holds one evaluated row per key: the current version from its base model
    and its rejection_reason. The verdict depends on the row, on parent rows (an order's
    account, a line's order and product) and on the run date (rows dated after it are
    rejected). An incremental run therefore re-evaluates exactly the rows whose verdict can
    have changed since the model last ran, and dbt's delete+insert on the key swaps them in:
      - rows whose current version was loaded since (new keys, re-deliveries);
      - rows whose parent was re-evaluated or re-loaded since (a late account arrives, an order
        is cancelled, an account is deleted ...): parents=[{'model': 'stg_crm__accounts',
        'key': 'account_id', 'column': 'account_id', 'changed_at': '_evaluated_at'}] - use
        '_loaded_at' with a base model as parent when the parent is a view;
      - rows dated between the previous run date and this one (a row "after the run date"
        becomes valid when its day comes; a run date moved back turns it round): dated=['order_ts'].
    Rows with a null key are rejected for good when loaded and never re-evaluated (they cannot
    be matched by key). Every row carries _evaluated_at (the run that judged it) and
    _as_of_date (the run date it was judged for): the watermarks of the next run.
    A full build (first run, --full-refresh) evaluates everything; both must give the same
    table, which tests/test_incremental.py checks over several days.

    Usage, as the model's `latest` CTE:
        latest as ({{ current_versions_to_evaluate('base_orders__orders', ['order_id'], parents=[...], dated=['order_ts']) }}),
    and end the model with  select *, {{ evaluation_stamp() }} from final
#}

{% macro current_versions_to_evaluate(base_model, key_columns, parents=[], dated=[]) -%}
    {%- set keys = key_columns | join(', ') -%}
    {%- set keys_not_null = [] -%}
    {%- for k in key_columns -%}{%- do keys_not_null.append(k ~ ' is not null') -%}{%- endfor -%}
    {#- parents are read only on incremental runs; ref them always so dbt knows the dependency -#}
    {%- for p in parents -%}{%- do ref(p.model) -%}{%- endfor -%}
    {%- if not is_incremental() -%}
    select * exclude (_is_current) from {{ ref(base_model) }} where _is_current
    {%- else -%}
    with

    watermark as (
        select
            coalesce(max(_loaded_at), '-infinity'::timestamp) as loaded_at,
            coalesce(max(_evaluated_at), '-infinity'::timestamp) as evaluated_at,
            coalesce(arg_max(_as_of_date, _evaluated_at), {{ as_of_date() }}) as as_of_date,
        from {{ this }}
    ),

    affected as (
        {%- for p in parents %}
        select evaluated.{{ key_columns | join(', evaluated.') }}
        from {{ this }} as evaluated
        where {{ keys_not_null | join(' and ') }}
            and evaluated.{{ p.column }} in (
                select {{ p.key }} from {{ ref(p.model) }}
                where {{ p.get('changed_at', '_evaluated_at') }} > (select evaluated_at from watermark)
            )
        union
        {%- endfor %}
        {%- for d in dated %}
        select {{ keys }}
        from {{ this }}
        where {{ keys_not_null | join(' and ') }}
            and cast({{ d }} as date) between
                (select least(as_of_date, {{ as_of_date() }}) from watermark)
                and (select greatest(as_of_date, {{ as_of_date() }}) from watermark)
        union
        {%- endfor %}
        select {{ keys }} from {{ this }} where false
    )

    select base.* exclude (_is_current)
    from {{ ref(base_model) }} as base
    where base._is_current and base._loaded_at > (select loaded_at from watermark)
    union all
    select base.* exclude (_is_current)
    from {{ ref(base_model) }} as base
    semi join affected using ({{ keys }})
    where base._is_current and base._loaded_at <= (select loaded_at from watermark)
    {%- endif -%}
{%- endmacro %}


{% macro evaluation_stamp() -%}
    {{ run_started_at_timestamp() }} as _evaluated_at, {{ as_of_date() }} as _as_of_date
{%- endmacro %}
