-- One row per account_id (latest updated_at wins), typed and normalised, with the reason a row
-- is rejected (null = kept). Deleted accounts are kept here; marts drop them.
with

source as (
    select * from {{ source('crm', 'accounts') }}
),

cleaned as (
    select
        {{ clean_key('account_id') }} as account_id,
        trim(account_name) as account_name,
        upper(trim(customer_type)) as customer_type,
        {{ normalize_code('industry') }} as industry_text,
        nullif(regexp_replace(province, '\s+', '', 'g'), '') as province_text,
        nullif(trim(city), '') as city,
        employee_count,
        annual_revenue,
        coalesce(is_deleted, false) as is_deleted,
        created_at,
        updated_at,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'account_id', 'updated_at desc nulls last') }}
),

final as (
    select
        *,
        case
            when account_id is null then 'missing account_id'
            when customer_type is null or customer_type not in ('B2B', 'B2C')
                then 'unknown customer_type'
            when employee_count < 0 then 'negative employee_count'
            when annual_revenue < 0 then 'negative annual_revenue'
        end as rejection_reason,
    from latest
)

select * from final
