-- marts.customer_profile: one row per non-deleted customer, one column per single-valued
-- account-level tag (named as its tag_code, null when the customer has none), the RFM scores
-- and the key metrics behind the tags.
with

customers as (
    select * from {{ ref('dim_customers') }} where not is_deleted
),

customer_tags as (
    -- the stored rows of marts.customer_tags (the view adds only the catalog's columns)
    select customer_id, tag_code, tag_value from {{ ref('int_customer_tag_values') }}
),

grades as (
    select customer_id, r_score, f_score, m_score, rfm_total from {{ ref('tag_customer_grade') }}
),

metrics as (
    select * from {{ ref('int_customer_order_metrics') }}
),

tag_columns as (
    select
        customer_id,
        {% for tag in account_tags() if not tag.multi_valued %}
        max(tag_value) filter (where tag_code = '{{ tag.code }}') as {{ tag.code }},
        {% endfor %}
    from customer_tags
    group by customer_id
),

final as (
    select
        customers.customer_id,
        customers.account_name,
        customers.customer_type,
        customers.province_text as province,
        customers.city,
        {% for tag in account_tags() if not tag.multi_valued %}
        tag_columns.{{ tag.code }},
        {% endfor %}
        coalesce(grades.r_score, 0) as r_score,
        coalesce(grades.f_score, 0) as f_score,
        coalesce(grades.m_score, 0) as m_score,
        coalesce(grades.rfm_total, 0) as rfm_total,
        coalesce(metrics.purchases_total, 0) as purchases_total,
        coalesce(metrics.purchases_365d, 0) as purchases_365d,
        coalesce(metrics.net_sales_365d, 0) as net_sales_365d,
        coalesce(metrics.profit_365d, 0) as profit_365d,
        coalesce(metrics.promotional_purchases_365d, 0) as promotional_purchases_365d,
        metrics.days_since_last_purchase,
        metrics.first_purchase_date,
        metrics.last_purchase_date,
        customers.employee_count,
        {{ as_of_date() }} as as_of_date,
    from customers
    left join tag_columns on customers.customer_id = tag_columns.customer_id
    left join grades on customers.customer_id = grades.customer_id
    left join metrics on customers.customer_id = metrics.customer_id
)

select * from final
order by customer_id
