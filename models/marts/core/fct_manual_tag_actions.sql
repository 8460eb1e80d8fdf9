with

actions as (
    select * from {{ ref('stg_crm__manual_tags') }} where rejection_reason is null
),

final as (
    select
        account_id as customer_id,
        tag_code,
        action,
        operator,
        operated_at
    from actions
)

select * from final
