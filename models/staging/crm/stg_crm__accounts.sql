-- One row per account_id (latest updated_at wins), typed and normalised, with the reason a row
-- is rejected (null = kept). Deleted accounts are kept here; marts drop them.
-- A view: the verdict needs only the row, so it is judged at each read (children that check
-- their account see a change through base_crm__accounts._loaded_at).
with

latest as (
    select {{ star_except(ref('base_crm__accounts'), ['_is_current']) }} from {{ ref('base_crm__accounts') }} where _is_current
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
        end as rejection_reason
    from latest
)

select *, {{ evaluation_stamp() }} from final
