-- product_preference: the category with the largest net sales in the 365-day window (ties: the
-- most recently bought, then the category code); a top share below min_top_share -> mixed.
-- No purchase in the window, or no net sales to share out -> no tag.
with

daily_category_sales as (
    select * from {{ ref('int_customer_daily_category_sales') }}
    where {{ occurred_in_window('order_date', tag_param('all', 'window_365d_days'), 'date') }}
),

category_sales as (
    select
        customer_id,
        category_code,
        sum(net_sales) as category_net_sales,
        max(last_bought_at) as last_bought_at
    from daily_category_sales
    group by customer_id, category_code
),

ranked as (
    select
        *,
        sum(category_net_sales) over (partition by customer_id) as total_net_sales,
        row_number() over (
            partition by customer_id
            order by category_net_sales desc, last_bought_at desc, category_code asc
        ) as category_rank
    from category_sales
),

final as (
    select
        customer_id,
        'product_preference' as tag_code,
        case
            when category_net_sales < {{ tag_param('product_preference', 'min_top_share') }} * total_net_sales
                then 'mixed'
            else category_code
        end as tag_value,
        (
            'top_category = ' || category_code
            || ', category_net_sales_365d = ' || category_net_sales
            || ', net_sales_365d = ' || total_net_sales
        ) as evidence,
        {{ as_of_date() }} as as_of_date
    from ranked
    where category_rank = 1 and total_net_sales > 0
)

select * from final
