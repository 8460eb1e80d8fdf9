-- Every kept CRM account (deleted ones flagged: tags and marts drop them).
-- A view: a projection of the stored accounts (base_crm__accounts), so a run does not rewrite
-- 1M rows when ~0.1% of accounts change; a read costs a scan of the current versions.
{{ config(materialized='view') }}
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
        updated_at
    from accounts
)

select * from final
