-- Every kept CRM account (deleted ones flagged: tags and marts drop them).
with

accounts as (
    select * from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

final as (
    select
        account_id as customer_id,
        account_name,
        customer_type,
        industry_text,
        province_text,
        city,
        employee_count,
        annual_revenue,
        is_deleted,
        created_at,
        updated_at,
    from accounts
)

select * from final
