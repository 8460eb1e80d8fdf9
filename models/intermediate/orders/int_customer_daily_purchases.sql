-- Purchases per customer and day: the grain every order-based tag aggregates from, so tag
-- models never rescan order lines. Incremental: a run recomputes only the customer-days whose
-- orders changed (macros/incremental_aggregates.sql).
-- what an incremental run reads to find the changed customers:
-- depends_on: {{ ref('stg_orders__orders') }}
-- depends_on: {{ ref('stg_orders__order_items') }}
-- depends_on: {{ ref('base_orders__orders') }}
{{ config(
    materialized='incremental',
    incremental_strategy=tombstone_strategy(),
    unique_key=['customer_id', 'order_date'],
    merge_clauses=merge_with_tombstones(),
    post_hook=tombstone_post_hook(),
    on_schema_change='fail',
) }}
with

{% if is_incremental() %}
affected_customer_days as (
    {{ affected_customer_days() }}
),
{% endif %}

purchases as (
    select purchases.*
    from {{ ref('fct_orders') }} as purchases
    where purchases.is_purchase
    {% if is_incremental() %}
        and exists (select 1 from affected_customer_days where affected_customer_days.customer_id = purchases.customer_id and affected_customer_days.order_date = purchases.order_date)
    {% endif %}
),

recomputed as (
    select
        customer_id,
        order_date,
        count(*) as purchases,
        count(*) filter (where is_promotional) as promotional_purchases,
        cast(sum(net_sales) as decimal(18, 2)) as net_sales,
        cast(sum(profit) as decimal(18, 2)) as profit,
        false as _is_removed
    from purchases
    group by customer_id, order_date
),

final as (
    select * from recomputed
    {% if is_incremental() %}
    {{ union_all_by_name() }}
    {{ removed_rows(
        'recomputed',
        'select customer_id, order_date from affected_customer_days',
        ['customer_id', 'order_date'],
        ['customer_id', 'order_date'],
    ) }}
    {% endif %}
)

select *, {{ run_started_at_timestamp() }} as _evaluated_at from final
