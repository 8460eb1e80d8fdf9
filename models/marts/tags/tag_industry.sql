-- industry: free text mapped through seeds/industry_mapping.csv; unknown text -> other; null -> no tag.
with

customers as (
    select * from {{ ref('dim_customers') }} where industry_text is not null
),

industry_mapping as (
    select * from {{ ref('industry_mapping') }}
),

final as (
    select
        customers.customer_id,
        'industry' as tag_code,
        coalesce(industry_mapping.industry_code, 'other') as tag_value,
        'industry_text = ' || customers.industry_text as evidence,
        {{ as_of_date() }} as as_of_date
    from customers
    left join industry_mapping on customers.industry_text = industry_mapping.industry_text
)

select * from final
