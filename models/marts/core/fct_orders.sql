-- Kept orders, one row each, with net sales and profit summed over their kept lines.
-- A purchase is an order whose current status is paid, shipped or completed.
-- Incremental (macros/incremental_aggregates.sql): a run rewrites the orders staging
-- re-evaluated since, itself or through one of its lines.
-- depends_on: {{ ref('stg_orders__order_items') }}
{{ config(
    materialized='incremental',
    incremental_strategy=tombstone_strategy(),
    unique_key=['order_id'],
    merge_clauses=merge_with_tombstones(),
    post_hook=tombstone_post_hook(),
    on_schema_change='fail',
) }}
with

{% if is_incremental() %}
changed_orders as (
    {{ changed_orders() }}
),
{% endif %}

orders as (
    select orders.*
    from {{ ref('stg_orders__orders') }} as orders
    where orders.rejection_reason is null
    {% if is_incremental() %}
        and orders.order_id in (select changed_orders.order_id from changed_orders)
    {% endif %}
),

order_lines as (
    select order_lines.*
    from {{ ref('fct_order_lines') }} as order_lines
    {% if is_incremental() %}where order_lines.order_id in (select changed_orders.order_id from changed_orders){% endif %}
),

line_totals as (
    select
        order_id,
        count(*) as line_count,
        sum(net_sales) as net_sales,
        sum(profit) as profit
    from order_lines
    group by order_id
),

recomputed as (
    select
        orders.order_id,
        orders.account_id as customer_id,
        orders.promotion_id,
        orders.status,
        orders.sales_channel,
        cast(coalesce(line_totals.net_sales, 0) as decimal(18, 2)) as net_sales,
        cast(coalesce(line_totals.profit, 0) as decimal(18, 2)) as profit,
        coalesce(line_totals.line_count, 0) as line_count,
        orders.status in ('paid', 'shipped', 'completed') as is_purchase,
        orders.promotion_id is not null as is_promotional,
        orders.order_ts,
        cast(orders.order_ts as date) as order_date,
        false as _is_removed
    from orders
    left join line_totals on orders.order_id = line_totals.order_id
),

final as (
    select * from recomputed
    {% if is_incremental() %}
    {{ union_all_by_name() }}
    {{ removed_rows('recomputed', 'select order_id from changed_orders', ['order_id'], ['order_id']) }}
    {% endif %}
)

select *, {{ run_started_at_timestamp() }} as _evaluated_at from final
