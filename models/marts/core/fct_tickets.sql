-- Kept tickets attributed to a customer (direct account_id, else requester email).
{{ config(materialized='view') }}
with

tickets as (
    select * from {{ ref('stg_support__tickets') }} where rejection_reason is null
),

identities as (
    {{ email_identities() }}
),

channel_groups as (
    select * from {{ ref('service_channel_groups') }}
),

final as (
    select
        tickets.ticket_id,
        {{ attributed_customer_columns('tickets.account_id', 'tickets.requester_email') }},
        tickets.requester_email,
        tickets.channel,
        channel_groups.channel_group,
        tickets.ticket_type,
        tickets.satisfaction_score,
        tickets.opened_at,
        cast(tickets.opened_at as date) as opened_date,
        tickets.resolved_at
    from tickets
    left join identities on tickets.requester_email = identities.email
    left join channel_groups on tickets.channel = channel_groups.ticket_channel
)

select * from final
