-- profit_contribution: profit / net sales over the 365-day window (compared without division,
-- so boundaries are exact); no net sales -> no tag.
with

metrics as (
    select * from {{ ref('int_customer_order_metrics') }} where net_sales_365d > 0
),

final as (
    select
        customer_id,
        'profit_contribution' as tag_code,
        case
            when profit_365d > {{ tag_param('profit_contribution', 'high_min_exclusive') }} * net_sales_365d then 'high'
            when profit_365d >= {{ tag_param('profit_contribution', 'medium_min') }} * net_sales_365d then 'medium'
            else 'low'
        end as tag_value,
        (
            'profit_365d = ' || profit_365d || ', net_sales_365d = ' || net_sales_365d
            || ', margin = ' || {{ ratio_text('profit_365d', 'net_sales_365d', 4) }}
        ) as evidence,
        {{ as_of_date() }} as as_of_date
    from metrics
)

select * from final
