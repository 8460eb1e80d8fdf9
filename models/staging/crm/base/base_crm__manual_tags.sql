-- Every version of crm/manual_tags ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['action_key']) }}

with

source as (
    select * from {{ source('crm', 'manual_tags') }}
    where {{ not_yet_loaded('crm/manual_tags') }}
),

cleaned_columns as (
    select
        {{ clean_key('account_id') }} as account_id,
        {{ normalize_code('tag_code') }} as tag_code,
        {{ normalize_code('action') }} as action,
        {{ trim_spaces('operator') }} as operator,
        operated_at,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

cleaned as (
    select
        account_id,
        tag_code,
        action,
        operator,
        operated_at,
        -- the key: an action is only superseded by an exact duplicate of itself
        case
            when account_id is null or tag_code is null then null
            else concat_ws('|', account_id, tag_code, action, operator, cast(operated_at as {{ dbt.type_string() }}))
        end as action_key,
        _source_file,
        _source_row_number,
        _delivered_at
    from cleaned_columns
),

{{ rank_versions('cleaned', ['action_key'], 'operated_at desc nulls last') }}

select * from ranked
