-- Every version of support/tickets ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql), and the current version carries its verdict (macros/stored_verdicts.sql).
-- Incremental: a run loads only new delivery files and re-judges what can have changed.
-- account_id, when set, must be a kept account; otherwise the requester email is resolved later.
{{ config(unique_key=['ticket_id']) }}

with

source as (
    select * from {{ source('support', 'tickets') }}
    where {{ not_yet_loaded('support/tickets') }}
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
        _delivered_at
    from source
),

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

{{ rank_versions('cleaned', ['ticket_id'], 'resolved_at desc nulls last', reevaluate={
    'parents': [account_parent()],
    'dated': ['opened_at'],
}) }},

final as (
    select
        ranked.*,
        case
            when not ranked._is_current then null
            when ranked.ticket_id is null then 'missing ticket_id'
            when ranked.account_id is not null and accounts.account_id is null then 'unknown account_id'
            when ranked.channel is null
                or ranked.channel not in ('phone', 'online_chat', 'email', 'wechat', 'account_manager')
                then 'unknown channel'
            when ranked.ticket_type is null
                or ranked.ticket_type not in ('inquiry', 'complaint', 'after_sales', 'return')
                then 'unknown ticket_type'
            when ranked.satisfaction_score not between 1 and 5 then 'satisfaction_score outside 1-5'
            when ranked.opened_at is null then 'missing opened_at'
            when {{ days_since('ranked.opened_at') }} < 0 then 'opened_at after the run date'
        end as rejection_reason
    from ranked
    left join accounts on ranked.account_id = accounts.account_id
)

select *, {{ evaluation_stamp() }} from final
