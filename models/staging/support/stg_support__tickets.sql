-- One row per ticket_id (the latest delivery wins). account_id, when set, must be a kept
-- account; otherwise the requester email is resolved later (int_tickets_attributed).
with

source as (
    select * from {{ source('support', 'tickets') }}
),

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

cleaned as (
    select
        {{ clean_key('ticket_id') }} as ticket_id,
        {{ clean_key('account_id') }} as account_id,
        {{ normalize_email('requester_email') }} as requester_email,
        {{ normalize_code('channel') }} as channel,
        {{ normalize_code('ticket_type') }} as ticket_type,
        satisfaction_score,
        opened_at,
        resolved_at,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'ticket_id', 'resolved_at desc nulls last') }}
),

final as (
    select
        latest.*,
        case
            when latest.ticket_id is null then 'missing ticket_id'
            when latest.account_id is not null and accounts.account_id is null then 'unknown account_id'
            when latest.channel is null
                or latest.channel not in ('phone', 'online_chat', 'email', 'wechat', 'account_manager')
                then 'unknown channel'
            when latest.ticket_type is null
                or latest.ticket_type not in ('inquiry', 'complaint', 'after_sales', 'return')
                then 'unknown ticket_type'
            when latest.satisfaction_score not between 1 and 5 then 'satisfaction_score outside 1-5'
            when latest.opened_at is null then 'missing opened_at'
            when {{ days_since('latest.opened_at') }} < 0 then 'opened_at after the run date'
        end as rejection_reason,
    from latest
    left join accounts on latest.account_id = accounts.account_id
)

select * from final
