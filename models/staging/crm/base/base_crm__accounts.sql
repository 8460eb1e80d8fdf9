-- Every version of crm/accounts ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['account_id']) }}

with

source as (
    select * from {{ source('crm', 'accounts') }}
    where {{ not_yet_loaded('crm/accounts') }}
),

cleaned as (
    select
        {{ clean_key('account_id') }} as account_id,
        {{ trim_spaces('account_name') }} as account_name,
        upper({{ trim_spaces('customer_type') }}) as customer_type,
        {{ normalize_code('industry') }} as industry_text,
        nullif({{ regexp_replace_all('province', "'[ \\t\\n\\f\\r]+'", "''") }}, '') as province_text,
        nullif({{ trim_spaces('city') }}, '') as city,
        employee_count,
        annual_revenue,
        coalesce(is_deleted, false) as is_deleted,
        created_at,
        updated_at,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

{{ rank_versions('cleaned', ['account_id'], 'updated_at desc nulls last') }}

select * from ranked
