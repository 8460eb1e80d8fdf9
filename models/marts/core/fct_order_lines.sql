-- Kept order lines with the line formulas of raw-sources.md and the order's attributes.
-- Incremental (macros/incremental_aggregates.sql): a run rewrites the lines staging
-- re-evaluated since (a line is re-evaluated when it, its order or its product changes),
-- and every line when seeds/category_mapping.csv changes.
-- depends_on: {{ ref('stg_orders__order_items') }}
{{ config(
    materialized='incremental',
    incremental_strategy=tombstone_strategy(),
    unique_key=['order_id', 'line_no'],
    merge_clauses=merge_with_tombstones(),
    post_hook=tombstone_post_hook(),
    on_schema_change='fail',
) }}
{% if is_incremental() %}{% set since = watermark() %}{% endif %}
with

mapping_version as (
    {{ category_mapping_version() }}
),

{% if is_incremental() %}
remapped_lines as (
    -- lines mapped with another category mapping than the current one (the version as a
    -- literal, so zone maps skip every row group of the current mapping)
    select
        order_id,
        line_no
    from {{ this }}
    where _category_mapping_version <> {{ current_category_mapping_version() }}
),

changed_lines as (
    -- staging re-judged them since (a line is re-judged when it, its order or its product
    -- changes), or they need re-mapping
    select
        order_id,
        line_no
    from {{ ref('stg_orders__order_items') }}
    where _evaluated_at > {{ since }} and order_id is not null and line_no is not null
    union
    select
        order_id,
        line_no
    from remapped_lines
),
{% endif %}

order_items as (
    select order_items.*
    from {{ ref('stg_orders__order_items') }} as order_items
    where order_items.rejection_reason is null
    {% if is_incremental() %}
        -- read by the watermark (zone maps skip older row groups), not by a join over every line
        and order_items._evaluated_at > {{ since }}
    union all
    select order_items.*
    from {{ ref('stg_orders__order_items') }} as order_items
    where order_items.rejection_reason is null and order_items._evaluated_at <= {{ since }}
        and exists (select 1 from remapped_lines where remapped_lines.order_id = order_items.order_id and remapped_lines.line_no = order_items.line_no)
    {% endif %}
),

orders as (
    select * from {{ ref('stg_orders__orders') }} where rejection_reason is null
),

products as (
    select
        product_id,
        category_code
    from {{ ref('dim_products') }}
),

recomputed as (
    select
        order_items.order_id,
        order_items.line_no,
        orders.account_id as customer_id,
        order_items.product_id,
        products.category_code,
        order_items.quantity,
        order_items.unit_price,
        order_items.discount_amount,
        order_items.unit_cost,
        cast(
            order_items.quantity * order_items.unit_price - order_items.discount_amount as decimal(18, 2)
        ) as net_sales,
        cast(
            order_items.quantity * (order_items.unit_price - order_items.unit_cost)
            - order_items.discount_amount as decimal(18, 2)
        ) as profit,
        orders.status in ('paid', 'shipped', 'completed') as is_purchase,
        orders.order_ts,
        cast(orders.order_ts as date) as order_date,
        false as _is_removed
    from order_items
    inner join orders on order_items.order_id = orders.order_id
    inner join products on order_items.product_id = products.product_id
),

final as (
    select * from recomputed
    {% if is_incremental() %}
    {{ union_all_by_name() }}
    {{ removed_rows(
        'recomputed', 'select order_id, line_no from changed_lines', ['order_id', 'line_no'], ['order_id', 'line_no'],
    ) }}
    {% endif %}
)

select
    final.*,
    mapping_version.version as _category_mapping_version,
    {{ run_started_at_timestamp() }} as _evaluated_at
from final
cross join mapping_version
