-- marts.customer_tags: one row per assigned account-level tag value of a non-deleted customer.
-- The tag models are listed in macros/registry.sql (account_tags).
with

customers as (
    select customer_id from {{ ref('dim_customers') }} where not is_deleted
),

catalog as (
    select * from {{ ref('tag_definitions') }}
),

tag_values as (
    select * from {{ ref('tag_value_definitions') }}
),

assigned as (
    {% for tag in account_tags() if tag.model %}
    select customer_id, tag_code, tag_value, evidence from {{ ref(tag.model) }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        assigned.customer_id,
        assigned.tag_code,
        assigned.tag_value,
        catalog.dimension,
        assigned.evidence,
        tag_values.label_zh as tag_value_label_zh,
        tag_values.label_en as tag_value_label_en,
        catalog.authoritative_source,
        catalog.refresh_frequency,
        {{ as_of_date() }} as as_of_date,
    from assigned
    inner join customers on assigned.customer_id = customers.customer_id
    left join catalog on assigned.tag_code = catalog.tag_code
    left join tag_values
        on assigned.tag_code = tag_values.tag_code and assigned.tag_value = tag_values.tag_value
)

select * from final
order by customer_id, tag_code, tag_value
