-- Every version of orders/orders ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql), and the current version carries its verdict (macros/stored_verdicts.sql).
-- Incremental: a run loads only new delivery files and re-judges what can have changed.
-- An order must belong to a kept account, carry a known status and channel, and not be dated
-- after the run date.
{{ config(unique_key=['order_id']) }}

with

source as (
    select * from {{ source('orders', 'orders') }}
    where {{ not_yet_loaded('orders/orders') }}
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
        _delivered_at
    from source
),

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

{{ rank_versions('cleaned', ['order_id'], '_ingested_at desc nulls last', reevaluate={
    'parents': [account_parent()],
    'dated': ['order_ts'],
}) }},

final as (
    select
        ranked.*,
        case
            when not ranked._is_current then null
            when ranked.order_id is null then 'missing order_id'
            when ranked.account_id is null then 'missing account_id'
            when accounts.account_id is null then 'unknown account_id'
            when ranked.status is null
                or ranked.status not in ('paid', 'shipped', 'completed', 'cancelled', 'refunded')
                then 'unknown status'
            when ranked.sales_channel is null
                or ranked.sales_channel not in ('online', 'offline', 'partner')
                then 'unknown sales_channel'
            when ranked.order_ts is null then 'missing order_ts'
            when {{ days_since('ranked.order_ts') }} < 0 then 'order_ts after the run date'
        end as rejection_reason
    from ranked
    left join accounts on ranked.account_id = accounts.account_id
)

select *, {{ evaluation_stamp() }} from final
