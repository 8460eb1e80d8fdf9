-- One row per order_id (latest _ingested_at wins). An order must belong to a kept account,
-- carry a known status and channel, and not be dated after the run date.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['order_id'], on_schema_change='fail') }}
with

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

latest as (
    {{ current_versions_to_evaluate(
        'base_orders__orders', ['order_id'],
        parents=[{'model': 'stg_crm__accounts', 'key': 'account_id', 'column': 'account_id'}],
        dated=['order_ts'],
    ) }}
),

final as (
    select
        latest.*,
        case
            when latest.order_id is null then 'missing order_id'
            when latest.account_id is null then 'missing account_id'
            when accounts.account_id is null then 'unknown account_id'
            when latest.status is null
                or latest.status not in ('paid', 'shipped', 'completed', 'cancelled', 'refunded')
                then 'unknown status'
            when latest.sales_channel is null
                or latest.sales_channel not in ('online', 'offline', 'partner')
                then 'unknown sales_channel'
            when latest.order_ts is null then 'missing order_ts'
            when {{ days_since('latest.order_ts') }} < 0 then 'order_ts after the run date'
        end as rejection_reason,
    from latest
    left join accounts on latest.account_id = accounts.account_id
)

select *, {{ evaluation_stamp() }} from final
