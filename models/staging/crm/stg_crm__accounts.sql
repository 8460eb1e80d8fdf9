-- One row per account_id (latest updated_at wins), typed and normalised, with the reason a row
-- is rejected (null = kept). Deleted accounts are kept here; marts drop them.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['account_id'], on_schema_change='fail') }}
with

latest as (
    {{ current_versions_to_evaluate(
        'base_crm__accounts', ['account_id'],
    ) }}
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

select *, {{ evaluation_stamp() }} from final
