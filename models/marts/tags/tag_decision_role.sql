-- decision_role (contact level): free text mapped through seeds/decision_role_mapping.csv;
-- unknown or null -> no tag.
with

contacts as (
    select * from {{ ref('dim_contacts') }} where decision_role_text is not null
),

roles as (
    select * from {{ ref('decision_role_mapping') }}
),

final as (
    select
        contacts.contact_id,
        contacts.customer_id,
        'decision_role' as tag_code,
        roles.decision_role_code as tag_value,
        'decision_role_text = ' || contacts.decision_role_text as evidence,
        {{ as_of_date() }} as as_of_date
    from contacts
    inner join roles on contacts.decision_role_text = roles.decision_role_text
)

select * from final
