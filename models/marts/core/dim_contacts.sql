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
        updated_at,
    from contacts
)

select * from final
