-- Every version of crm/contacts ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['contact_id']) }}

with

source as (
    select * from {{ source('crm', 'contacts') }}
    where {{ not_yet_loaded('crm/contacts') }}
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

{{ rank_versions('cleaned', ['contact_id'], 'updated_at desc nulls last') }}
