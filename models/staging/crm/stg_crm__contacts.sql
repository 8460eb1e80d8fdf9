-- One row per contact_id (latest updated_at wins). A contact must belong to a kept account.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['contact_id'], on_schema_change='fail') }}
with

accounts as (
    select account_id from {{ ref('stg_crm__accounts') }} where rejection_reason is null
),

latest as (
    {{ current_versions_to_evaluate(
        'base_crm__contacts', ['contact_id'],
        parents=[{'model': 'stg_crm__accounts', 'key': 'account_id', 'column': 'account_id'}],
    ) }}
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

select *, {{ evaluation_stamp() }} from final
