-- Who holds which tag value, one row per (customer, tag, value), for the tag-health figures:
-- the account-level tags of live customers (int_customer_tag_values) and the contact-level
-- tags counted at their customer (a customer holds a contact tag's value when one of its
-- contacts does), so every tag's coverage has the same denominator, the live customers.
-- as_of_date: the run date the tag's model was computed as of.
with

customers as (
    select customer_id from {{ ref('dim_customers') }} where not is_deleted
),

account_values as (
    select
        customer_id,
        tag_code,
        tag_value,
        as_of_date
    from {{ ref('int_customer_tag_values') }}
),

contact_values as (
    {%- set models = contact_tags() %}
    {%- if models %}
    {%- for tag in models %}
    select
        customer_id,
        tag_code,
        tag_value,
        as_of_date
    from {{ ref(tag.model) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as tag_code,
        cast(null as {{ dbt.type_string() }}) as tag_value,
        cast(null as date) as as_of_date
    where 1 = 0
    {%- endif %}
),

contact_values_of_live_customers as (
    select distinct
        contact_values.customer_id,
        contact_values.tag_code,
        contact_values.tag_value,
        contact_values.as_of_date
    from contact_values
    inner join customers on contact_values.customer_id = customers.customer_id
),

final as (
    select * from account_values
    union all
    select * from contact_values_of_live_customers
)

select * from final
