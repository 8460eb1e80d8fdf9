-- Net sales per customer, day and product category (purchases only), for product_preference.
with

order_lines as (
    select * from {{ ref('fct_order_lines') }} where is_purchase
),

final as (
    select
        customer_id,
        order_date,
        category_code,
        cast(sum(net_sales) as decimal(18, 2)) as net_sales,
        max(order_ts) as last_bought_at,
    from order_lines
    group by customer_id, order_date, category_code
)

select * from final
