-- One row per contact_id (latest updated_at wins). A contact must belong to a kept account.
with

source as (
    select * from {{ source('crm', 'contacts') }}
),

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

cleaned as (
    select
        {{ clean_key('contact_id') }} as contact_id,
        {{ clean_key('account_id') }} as account_id,
        trim(full_name) as full_name,
        {{ normalize_email('email') }} as email,
        nullif(regexp_replace(phone, '[^0-9+]', '', 'g'), '') as phone,
        trim(job_title) as job_title,
        {{ normalize_code('decision_role') }} as decision_role_text,
        case
            when upper(trim(gender)) in ('M', 'MALE', '男') then 'M'
            when upper(trim(gender)) in ('F', 'FEMALE', '女') then 'F'
        end as gender,
        birth_date,
        coalesce(is_primary, false) as is_primary,
        updated_at,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'contact_id', 'updated_at desc nulls last') }}
),

final as (
    select
        latest.*,
        case
            when latest.contact_id is null then 'missing contact_id'
            when latest.account_id is null then 'missing account_id'
            when accounts.account_id is null then 'unknown account_id'
        end as rejection_reason,
    from latest
    left join accounts on latest.account_id = accounts.account_id
)

select * from final
