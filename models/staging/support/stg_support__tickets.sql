-- One row per ticket_id (the latest delivery wins). account_id, when set, must be a kept
-- account; otherwise the requester email is resolved later (int_tickets_attributed).
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['ticket_id'], on_schema_change='fail') }}
with

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

latest as (
    {{ current_versions_to_evaluate(
        'base_support__tickets', ['ticket_id'],
        parents=[{'model': 'stg_crm__accounts', 'key': 'account_id', 'column': 'account_id'}],
        dated=['opened_at'],
    ) }}
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

select *, {{ evaluation_stamp() }} from final
