-- The assigned account-level tag values of non-deleted customers, stored narrow: marts.customer_tags
-- is a view that adds the catalog's columns (dimension, labels, source, cadence).
-- DuckDB spends most of a table's write on its text columns, and repeating the catalog's text on
-- each of 9M rows (1M customers) was a large share of the mart's build (docs/benchmark.md).
-- The tag models are the catalog's account-level tags (macros/tag_catalog.sql account_tags: var
-- tag_catalog in dbt_project.yml, model tag_<code>). as_of_date is the run date each
-- tag model was computed as of: a weekly or monthly tag keeps the date of its own last run.
with

customers as (
    select customer_id from {{ ref('dim_customers') }} where not is_deleted
),

assigned as (
    {% for tag in account_tags() if tag.model %}
    select
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
    select assigned.*
    from assigned
    where exists (select 1 from customers where customers.customer_id = assigned.customer_id)
)

select * from final
