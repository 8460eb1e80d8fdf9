-- Every kept CRM contact, with its account.
-- A view: a projection of the stored contacts (base_crm__contacts, where their verdict is stored),
-- so a run does not rewrite them all when a few change.
{{ config(materialized='view') }}
with

contacts as (
    select * from {{ ref('stg_crm__contacts') }} where rejection_reason is null
),

final as (
    select
        contact_id,
        account_id as customer_id,
        full_name,
        email,
        phone,
        job_title,
        decision_role_text,
        gender,
        birth_date,
        is_primary,
        updated_at
    from contacts
)

select * from final
