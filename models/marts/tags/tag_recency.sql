-- recency: days since the last purchase; never purchased -> no tag.
with

metrics as (
    select * from {{ ref('int_customer_order_metrics') }}
),

final as (
    select
        customer_id,
        'recency' as tag_code,
        case
            when days_since_last_purchase <= {{ tag_param('recency', 'within_30d_max_days') }} then 'within_30d'
            when days_since_last_purchase <= {{ tag_param('recency', 'd31_90_max_days') }} then 'd31_90'
            when days_since_last_purchase <= {{ tag_param('recency', 'd91_180_max_days') }} then 'd91_180'
            else 'over_180d'
        end as tag_value,
        'days_since_last_purchase = ' || days_since_last_purchase as evidence,
        {{ as_of_date() }} as as_of_date
    from metrics
)

select * from final
