-- Net sales per customer, day and product category (purchases only), for product_preference.
-- Incremental like int_customer_daily_purchases; in addition the customer-days of every line
-- fct_order_lines rewrote (a re-delivered product, a changed category mapping) are re-summed.
-- what an incremental run reads to find the changed customers:
-- depends_on: {{ ref('stg_orders__orders') }}
-- depends_on: {{ ref('stg_orders__order_items') }}
-- depends_on: {{ ref('base_orders__orders') }}
{{ config(
    materialized='incremental',
    incremental_strategy=tombstone_strategy(),
    unique_key=['customer_id', 'order_date', 'category_code'],
    merge_clauses=merge_with_tombstones(),
    post_hook=tombstone_post_hook(),
    on_schema_change='fail',
) }}
with

{% if is_incremental() %}
affected_customer_days as (
    {{ affected_customer_days() }}
    union
    -- a line's category changes when fct_order_lines rewrote it (its product or the mapping)
    select
        customer_id,
        order_date
    from {{ ref('fct_order_lines') }} where _evaluated_at > {{ watermark() }}
),
{% endif %}

order_lines as (
    select order_lines.*
    from {{ ref('fct_order_lines') }} as order_lines
    where order_lines.is_purchase
    {% if is_incremental() %}
        and exists (select 1 from affected_customer_days where affected_customer_days.customer_id = order_lines.customer_id and affected_customer_days.order_date = order_lines.order_date)
    {% endif %}
),

recomputed as (
    select
        customer_id,
        order_date,
        category_code,
        cast(sum(net_sales) as decimal(18, 2)) as net_sales,
        max(order_ts) as last_bought_at,
        false as _is_removed
    from order_lines
    group by customer_id, order_date, category_code
),

final as (
    select * from recomputed
    {% if is_incremental() %}
    {{ union_all_by_name() }}
    {{ removed_rows(
        'recomputed',
        'select customer_id, order_date from affected_customer_days',
        ['customer_id', 'order_date'],
        ['customer_id', 'order_date', 'category_code'],
    ) }}
    {% endif %}
)

select *, {{ run_started_at_timestamp() }} as _evaluated_at from final
