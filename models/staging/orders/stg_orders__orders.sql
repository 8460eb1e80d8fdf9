-- One row per order_id (latest _ingested_at wins). An order must belong to a kept account,
-- carry a known status and channel, and not be dated after the run date.
with

source as (
    select * from {{ source('orders', 'orders') }}
),

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

cleaned as (
    select
        {{ clean_key('order_id') }} as order_id,
        {{ clean_key('account_id') }} as account_id,
        {{ clean_key('promotion_id') }} as promotion_id,
        {{ normalize_code('status') }} as status,
        {{ normalize_code('sales_channel') }} as sales_channel,
        order_ts,
        _ingested_at,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'order_id', '_ingested_at desc nulls last') }}
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

select * from final
