-- Manual tag actions are history, not versions: only exact duplicates are superseded here;
-- the latest action per (account, tag) is decided in tag_manual.
with

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

manual_codes as (
    -- the manual tag's value codes listed in the catalog (var tag_catalog)
    {{ catalog_value_codes('manual') }}
),

latest as (
    select {{ star_except(ref('base_crm__manual_tags'), ['_is_current']) }} from {{ ref('base_crm__manual_tags') }} where _is_current
),

final as (
    select
        latest.*,
        case
            when latest.account_id is null then 'missing account_id'
            when latest.tag_code is null then 'missing tag_code'
            when accounts.account_id is null then 'unknown account_id'
            when manual_codes.tag_value is null then 'tag_code not a manual tag in the catalog'
            when latest.action is null or latest.action not in ('add', 'remove') then 'unknown action'
            when latest.operated_at is null then 'missing operated_at'
            when {{ days_since('latest.operated_at') }} < 0 then 'operated_at after the run date'
        end as rejection_reason
    from latest
    left join accounts on latest.account_id = accounts.account_id
    left join manual_codes on latest.tag_code = manual_codes.tag_value
)

select *, {{ evaluation_stamp() }} from final
