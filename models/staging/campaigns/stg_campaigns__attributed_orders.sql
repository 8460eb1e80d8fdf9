-- The marketing platform's conversion feed. Kept only to say which campaign an order is
-- attributed to: no tag may read revenue, frequency or profit from it.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['order_id', 'campaign_id'], on_schema_change='fail') }}
with

latest as (
    {{ current_versions_to_evaluate(
        'base_campaigns__attributed_orders', ['order_id', 'campaign_id'],
        dated=['conversion_ts'],
    ) }}
),

final as (
    select
        *,
        case
            when order_id is null then 'missing order_id'
            when campaign_id is null then 'missing campaign_id'
            when attributed_revenue < 0 then 'negative attributed_revenue'
            when {{ days_since('conversion_ts') }} < 0 then 'conversion_ts after the run date'
        end as rejection_reason,
    from latest
)

select *, {{ evaluation_stamp() }} from final
