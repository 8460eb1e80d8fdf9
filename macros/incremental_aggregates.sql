{#
    Incremental per-customer aggregates (int_customer_daily_*; see docs/design.md).

    An aggregate keeps its rows per customer and, on an incremental run, recomputes only the
    customers whose orders changed since it last ran: orders or order lines re-evaluated in
    staging since (new, re-delivered, late parents, the run date passing an order's date), and
    every customer such an order ever belonged to (a re-delivered order can move customers).
    The recomputed rows replace the customer's old rows through a merge; old rows with no
    recomputed counterpart come as tombstones (_is_removed) and the merge deletes them.

    affected_order_customers(): the customer_ids to recompute (a SELECT), or none on a full build.
    Model config: merge_config(unique_key) below.
#}

{% macro affected_order_customers(extra_changed_orders=none) -%}
    with

    watermark as (
        select coalesce(max(_evaluated_at), '-infinity'::timestamp) as evaluated_at from {{ this }}
    ),

    changed_orders as (
        select order_id from {{ ref('stg_orders__orders') }}
        where _evaluated_at > (select evaluated_at from watermark)
        union
        select order_id from {{ ref('stg_orders__order_items') }}
        where _evaluated_at > (select evaluated_at from watermark)
        {% if extra_changed_orders %}
        union
        {{ extra_changed_orders }}
        {% endif %}
    )

    -- every customer a changed order belongs or belonged to, in any version
    select distinct account_id as customer_id
    from {{ ref('base_orders__orders') }}
    semi join changed_orders using (order_id)
    where account_id is not null
{%- endmacro %}


{# Rows of `this` for the affected customers that the recomputation no longer produces. #}
{% macro removed_rows(recomputed, affected, key_columns) -%}
    select existing.{{ key_columns | join(', existing.') }}, true as _is_removed
    from {{ this }} as existing
    semi join ({{ affected }}) as affected using (customer_id)
    anti join {{ recomputed }} using ({{ key_columns | join(', ') }})
{%- endmacro %}


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
