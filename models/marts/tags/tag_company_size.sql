-- company_size: B2B customers by employee count; B2C or unknown count -> no tag.
with

customers as (
    select * from {{ ref('dim_customers') }}
    where customer_type = 'B2B' and employee_count is not null
),

final as (
    select
        customer_id,
        'company_size' as tag_code,
        case
            when employee_count < {{ tag_param('company_size', 'medium_min_employees') }} then 'small'
            when employee_count <= {{ tag_param('company_size', 'medium_max_employees') }} then 'medium'
            else 'large'
        end as tag_value,
        'employee_count = ' || employee_count as evidence,
        {{ as_of_date() }} as as_of_date
    from customers
)

select * from final
