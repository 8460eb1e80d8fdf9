-- Net sales per customer, day and product category (purchases only), for product_preference.
-- Incremental like int_customer_daily_purchases; in addition a re-delivered product (its
-- category may change) or a changed seeds/category_mapping re-maps the customers concerned.
-- what an incremental run reads to find the changed customers:
-- depends_on: {{ ref('stg_orders__orders') }}
-- depends_on: {{ ref('stg_orders__order_items') }}
-- depends_on: {{ ref('base_orders__orders') }}
-- depends_on: {{ ref('base_orders__products') }}
{{ config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['customer_id', 'order_date', 'category_code'],
    merge_clauses=merge_with_tombstones(),
    on_schema_change='fail',
) }}
with

mapping_version as (
    select hash(string_agg(category_text || '=' || category_code, ';' order by category_text, category_code))
        as version
    from {{ ref('category_mapping') }}
),

{% if is_incremental() %}
affected_customers as (
    {{ affected_order_customers(
        "select order_id from " ~ ref('stg_orders__order_items') ~ " semi join (select product_id from "
        ~ ref('base_orders__products') ~ " where _loaded_at > (select evaluated_at from watermark)) using (product_id)"
    ) }}
    union
    select customer_id from {{ this }}
    where _category_mapping_version <> (select version from mapping_version)
),
{% endif %}

order_lines as (
    select * from {{ ref('fct_order_lines') }}
    where is_purchase
    {% if is_incremental() %}
        and customer_id in (select customer_id from affected_customers)
    {% endif %}
),

recomputed as (
    select
        customer_id,
        order_date,
        category_code,
        cast(sum(net_sales) as decimal(18, 2)) as net_sales,
        max(order_ts) as last_bought_at,
        false as _is_removed,
    from order_lines
    group by customer_id, order_date, category_code
),

final as (
    select * from recomputed
    {% if is_incremental() %}
    union all by name
    {{ removed_rows('recomputed', 'select customer_id from affected_customers', ['customer_id', 'order_date', 'category_code']) }}
    {% endif %}
)

select
    final.*,
    mapping_version.version as _category_mapping_version,
    {{ run_started_at_timestamp() }} as _evaluated_at,
from final
cross join mapping_version
