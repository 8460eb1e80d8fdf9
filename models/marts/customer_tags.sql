-- marts.customer_tags: one row per assigned account-level tag value of a non-deleted customer.
-- A view: the values are stored in int_customer_tag_values, the catalog's columns are joined
-- at read (two small seeds), so each of the 9M rows does not store them.
-- as_of_date is each tag's own run date (stored by its model): a build that refreshes only the
-- daily tags leaves the weekly and monthly tags, and their dates, as their last run made them.
{{ config(materialized='view') }}
with

assigned as (
    select * from {{ ref('int_customer_tag_values') }}
),

catalog as (
    select * from {{ ref('tag_definitions') }}
),

tag_values as (
    select * from {{ ref('tag_value_definitions') }}
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
        assigned.as_of_date
    from assigned
    left join catalog on assigned.tag_code = catalog.tag_code
    left join tag_values
        on assigned.tag_code = tag_values.tag_code and assigned.tag_value = tag_values.tag_value
)

select * from final
