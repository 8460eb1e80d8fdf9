-- marts.contact_tags: contact-level tags of contacts at non-deleted customers.
with

customers as (
    select customer_id from {{ ref('dim_customers') }} where not is_deleted
),

tag_values as (
    select * from {{ ref('tag_value_definitions') }}
),

assigned as (
    {% for tag in contact_tags() if tag.model %}
    select
        contact_id,
        customer_id,
        tag_code,
        tag_value,
        evidence,
        as_of_date
    from {{ ref(tag.model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        assigned.contact_id,
        assigned.customer_id,
        assigned.tag_code,
        assigned.tag_value,
        assigned.evidence,
        tag_values.label_zh as tag_value_label_zh,
        tag_values.label_en as tag_value_label_en,
        assigned.as_of_date
    from assigned
    inner join customers on assigned.customer_id = customers.customer_id
    left join tag_values
        on assigned.tag_code = tag_values.tag_code and assigned.tag_value = tag_values.tag_value
)

select * from final
order by contact_id, tag_code, tag_value
