{#
    Stored verdicts (the base models of orders, order_items, contacts, tickets and the two event
    tables; see docs/design.md "Incremental refresh").

    A staging verdict (rejection_reason) depends on the row, on parent rows (an order's
    account, a line's order and product) and on the run date (rows dated after it are
    rejected). Where judging every row at each read would cost a big join, or a pass over a big
    table that many models read, the base model stores the verdict of each current version
    next to it, and the staging model is a view of the current versions. An incremental run
    re-judges exactly the keys whose verdict can have changed since the model last ran,
    re-ranking all their versions (rank_versions, macros/versions.sql), and dbt's
    delete+insert on the key swaps them in:
      - keys with a new version in this run's files (new keys, re-deliveries);
      - keys whose current version's parent was re-judged or re-loaded since (a late account
        arrives, an order is cancelled, an account is deleted ...):
        parents=[{'model': 'stg_orders__orders', 'key': 'order_id', 'column': 'order_id',
        'changed_at': '_evaluated_at'}] - use '_loaded_at' with a base model as the parent
        when the parent's verdict is not stored;
      - keys whose current version is dated between the previous run date and this one (a row
        "after the run date" becomes valid when its day comes; a run date moved back turns it
        round): dated=['order_ts'].
    Rows with a null key are judged when loaded and never again (they cannot be matched by
    key). Every row carries _evaluated_at (the run that judged it; null verdict on superseded
    versions) and _as_of_date (the run date it was judged for): the watermarks of the next run.
    A full build (first run, --full-refresh) judges everything; both must give the same table,
    which tests/test_incremental.py checks over several days.

    Usage, in a base model:
        {{ rank_versions('cleaned', ['order_id'], '_ingested_at desc nulls last',
            reevaluate={'parents': [...], 'dated': ['order_ts']}) }},
        final as (select ranked.*, case when not ranked._is_current then null when ... end as rejection_reason ...)
        select *, {{ evaluation_stamp() }} from final
#}

{# The columns a stored verdict adds to a base model. #}
{% macro stored_verdict_columns() -%}
    {{ return(['rejection_reason', '_evaluated_at', '_as_of_date']) }}
{%- endmacro %}


{# The keys of this model whose stored verdict can have changed since it last ran. #}
{% macro keys_to_reevaluate(key_columns, parents=[], dated=[]) -%}
    {%- set keys_not_null = all_not_null(key_columns) -%}
    {%- set evaluated_at = newest_timestamp(this, '_evaluated_at') -%}
    {%- set previous_as_of = "coalesce((select _as_of_date from " ~ this ~ " where _evaluated_at is not null order by _evaluated_at desc limit 1), " ~ as_of_date() ~ ")" -%}
    select {{ key_columns | join(', ') }}
    from {{ this }}
    where _is_current and {{ keys_not_null }}
        and (false
        {%- for p in parents %}
            or {{ p.column }} in (
                select {{ p.key }} from {{ ref(p.model) }}
                where {{ p.get('changed_at', '_evaluated_at') }} > {{ evaluated_at }}
            )
        {%- endfor %}
        {%- for d in dated %}
            or cast({{ d }} as date) between least({{ previous_as_of }}, {{ as_of_date() }})
                and greatest({{ previous_as_of }}, {{ as_of_date() }})
        {%- endfor %}
        )
{%- endmacro %}


{#
    The parent entry of a row that belongs to an account (orders, contacts, tickets): accounts
    are judged at each read (stg_crm__accounts is a view without a stored verdict), so a
    changed account shows as a re-loaded version in base_crm__accounts.
#}
{% macro account_parent() -%}
    {{ return({'model': 'base_crm__accounts', 'key': 'account_id', 'column': 'account_id',
        'changed_at': '_loaded_at'}) }}
{%- endmacro %}


{% macro evaluation_stamp() -%}
    {{ run_started_at_timestamp() }} as _evaluated_at, {{ as_of_date() }} as _as_of_date
{%- endmacro %}
