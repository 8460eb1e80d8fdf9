-- Kept campaign events attributed to a customer through the recipient email.
{{ config(materialized='view') }}
with

events as (
    select * from {{ ref('stg_campaigns__campaign_events') }} where rejection_reason is null
),

identities as (
    -- `email is not null` matches nothing less (a null email joins nothing) but makes DuckDB
    -- estimate this side smaller than the kept events, so a read of every event (the
    -- reconciliation) builds its hash table here, not on the events
    select * from {{ ref('int_email_identities') }} where email is not null
),

final as (
    select
        events.event_id,
        events.campaign_id,
        {{ attributed_customer_columns('cast(null as varchar)', 'events.recipient_email') }},
        events.recipient_email,
        events.event_type,
        events.event_ts,
        cast(events.event_ts as date) as event_date,
    from events
    left join identities on events.recipient_email = identities.email
)

select * from final
