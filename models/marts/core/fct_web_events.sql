-- Kept web events; logged-in ones are attributed to a customer through the user email.
{{ config(materialized='view') }}
with

events as (
    select * from {{ ref('stg_campaigns__web_events') }} where rejection_reason is null
),

identities as (
    {{ email_identities() }}
),

category_mapping as (
    select * from {{ ref('category_mapping') }}
),

final as (
    select
        events.event_id,
        events.visitor_id,
        {{ attributed_customer_columns('cast(null as ' ~ dbt.type_string() ~ ')', 'events.user_email') }},
        events.user_email,
        events.event_type,
        case
            when events.product_category_text is not null
                then {{ category_code('events.product_category_text', 'category_mapping.category_code') }}
        end as category_code,
        events.event_ts,
        cast(events.event_ts as date) as event_date
    from events
    left join identities on events.user_email = identities.email
    left join category_mapping on events.product_category_text = category_mapping.category_text
)

select * from final
