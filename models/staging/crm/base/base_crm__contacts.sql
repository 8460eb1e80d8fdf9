-- Every version of crm/contacts ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql), and the current version carries its verdict (macros/stored_verdicts.sql).
-- Incremental: a run loads only new delivery files and re-judges what can have changed.
-- A contact must belong to a kept account.
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
        {{ trim_spaces('full_name') }} as full_name,
        {{ normalize_email('email') }} as email,
        nullif({{ regexp_replace_all('phone', "'[^0-9+]'", "''") }}, '') as phone,
        {{ trim_spaces('job_title') }} as job_title,
        {{ normalize_code('decision_role') }} as decision_role_text,
        case
            when upper({{ trim_spaces('gender') }}) in ('M', 'MALE', '男') then 'M'
            when upper({{ trim_spaces('gender') }}) in ('F', 'FEMALE', '女') then 'F'
        end as gender,
        birth_date,
        coalesce(is_primary, false) as is_primary,
        updated_at,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

{{ rank_versions('cleaned', ['contact_id'], 'updated_at desc nulls last', reevaluate={
    'parents': [account_parent()],
}) }},

final as (
    select
        ranked.*,
        case
            when not ranked._is_current then null
            when ranked.contact_id is null then 'missing contact_id'
            when ranked.account_id is null then 'missing account_id'
            when accounts.account_id is null then 'unknown account_id'
        end as rejection_reason
    from ranked
    left join accounts on ranked.account_id = accounts.account_id
)

select *, {{ evaluation_stamp() }} from final
