-- One row per promotion_id (the latest delivery wins), with the reason it is rejected (null = kept).
-- A view: the verdict needs only the row, so it is judged at each read.
with

latest as (
    select {{ star_except(ref('base_orders__promotions'), ['_is_current']) }} from {{ ref('base_orders__promotions') }} where _is_current
),

final as (
    select
        *,
        case
            when promotion_id is null then 'missing promotion_id'
            when end_date < start_date then 'end_date before start_date'
        end as rejection_reason
    from latest
)

select *, {{ evaluation_stamp() }} from final
