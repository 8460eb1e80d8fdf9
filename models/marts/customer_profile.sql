-- marts.customer_profile: one row per non-deleted customer, one column per single-valued
-- account-level tag (named as its tag_code, null when the customer has none), the RFM scores
-- and the key metrics behind the tags.
-- The tag columns join each single-valued tag's table on customer_id (at most one row per
-- customer: a duplicate would break the unique test on customer_id, not hide in a max()).
-- Pivoting the 9M stored tag values instead was slower at 1M customers (docs/benchmark.md).
with

customers as (
    select * from {{ ref('dim_customers') }} where not is_deleted
),

grades as (
    select
        customer_id,
        r_score,
        f_score,
        m_score,
        rfm_total
    from {{ ref('tag_customer_grade') }}
),

metrics as (
    select * from {{ ref('int_customer_order_metrics') }}
),

final as (
    select
        customers.customer_id,
        customers.account_name,
        customers.customer_type,
        customers.province_text as province,
        customers.city,
        {% for tag in account_tags() if not tag.multi_valued %}
        {% if tag.model %}{{ tag.code }}.tag_value{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as {{ tag.code }},
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
        {{ as_of_date() }} as as_of_date
    from customers
    {% for tag in account_tags() if not tag.multi_valued and tag.model %}
    left join {{ ref(tag.model) }} as {{ tag.code }} on customers.customer_id = {{ tag.code }}.customer_id
    {% endfor %}
    left join grades on customers.customer_id = grades.customer_id
    left join metrics on customers.customer_id = metrics.customer_id
)

select * from final
order by customer_id
