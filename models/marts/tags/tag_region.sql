-- region: province (official full name or short name) -> region; unknown -> no tag.
with

customers as (
    select * from {{ ref('dim_customers') }} where province_text is not null
),

provinces as (
    select * from {{ ref('province_regions') }}
),

final as (
    select
        customers.customer_id,
        'region' as tag_code,
        provinces.region_code as tag_value,
        'province = ' || customers.province_text as evidence,
        {{ as_of_date() }} as as_of_date
    from customers
    inner join provinces
        on customers.province_text in (provinces.province_name, provinces.province_short_name)
)

select * from final
