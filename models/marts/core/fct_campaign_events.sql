-- Kept campaign events attributed to a customer through the recipient email.
{{ config(materialized='view') }}
with

events as (
    select * from {{ ref('stg_campaigns__campaign_events') }} where rejection_reason is null
),

identities as (
    {{ email_identities() }}
),

final as (
    select
        events.event_id,
        events.campaign_id,
        {{ attributed_customer_columns('cast(null as ' ~ dbt.type_string() ~ ')', 'events.recipient_email') }},
        events.recipient_email,
        events.event_type,
        events.event_ts,
        cast(events.event_ts as date) as event_date
    from events
    left join identities on events.recipient_email = identities.email
)

select * from final
