-- customer_grade: RFM from the order system only (never from attributed_orders).
-- R from days since last purchase, F from the purchase_frequency tag, M from 365-day net sales;
-- a customer who never purchased scores R = F = M = 0.
with

customers as (
    select customer_id from {{ ref('dim_customers') }}
),

metrics as (
    select * from {{ ref('int_customer_order_metrics') }}
),

purchase_frequency as (
    select
        customer_id,
        tag_value
    from {{ ref('tag_purchase_frequency') }}
),

scores as (
    select
        customers.customer_id,
        metrics.days_since_last_purchase,
        metrics.purchases_365d,
        metrics.net_sales_365d,
        case
            when metrics.customer_id is null then 0
            when metrics.days_since_last_purchase <= {{ tag_param('customer_grade', 'r5_max_days') }} then 5
            when metrics.days_since_last_purchase <= {{ tag_param('customer_grade', 'r3_max_days') }} then 3
            else 1
        end as r_score,
        case purchase_frequency.tag_value
            when 'high' then 5
            when 'medium' then 3
            when 'low' then 1
            else 0
        end as f_score,
        case
            when metrics.customer_id is null then 0
            when metrics.net_sales_365d >= {{ tag_param('customer_grade', 'm5_min_net_sales') }} then 5
            when metrics.net_sales_365d >= {{ tag_param('customer_grade', 'm3_min_net_sales') }} then 3
            else 1
        end as m_score
    from customers
    left join metrics on customers.customer_id = metrics.customer_id
    left join purchase_frequency on customers.customer_id = purchase_frequency.customer_id
),

final as (
    select
        customer_id,
        'customer_grade' as tag_code,
        case
            when r_score + f_score + m_score >= {{ tag_param('customer_grade', 'vip_min_total') }} then 'vip'
            when r_score + f_score + m_score >= {{ tag_param('customer_grade', 'important_min_total') }} then 'important'
            when r_score + f_score + m_score >= {{ tag_param('customer_grade', 'ordinary_min_total') }} then 'ordinary'
            else 'potential'
        end as tag_value,
        case
            when days_since_last_purchase is null then 'rfm_total = 0 (never purchased)'
            else 'rfm_total = ' || (r_score + f_score + m_score)
                || ' (r = ' || r_score || ': days_since_last_purchase = ' || days_since_last_purchase
                || '; f = ' || f_score || ': purchases_365d = ' || purchases_365d
                || '; m = ' || m_score || ': net_sales_365d = ' || net_sales_365d || ')'
        end as evidence,
        {{ as_of_date() }} as as_of_date,
        r_score,
        f_score,
        m_score,
        r_score + f_score + m_score as rfm_total
    from scores
)

select * from final
