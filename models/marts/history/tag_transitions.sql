-- marts.tag_transitions: per run date and account-level tag, how many customers moved from
-- which value to which (from marts.customer_tag_history): from_value null = entered (the
-- customer had no value of the tag before), to_value null = exited. A single-valued tag pairs
-- the period that ends on the date with the one that starts on it (new -> active); a
-- multi-valued tag's values come and go on their own (null -> value, value -> null).
-- Only moves are rows: customers whose value held are not counted.
{{ config(materialized='view') }}
with

history as (
    select
        customer_id,
        tag_code,
        tag_value,
        valid_from,
        valid_to
    from {{ ref('customer_tag_history') }}
),

catalog as (
    select
        tag_code,
        is_multi_valued
    from {{ ref('tag_definitions') }}
),

starts as (
    select
        history.customer_id,
        history.tag_code,
        history.tag_value,
        history.valid_from as as_of_date,
        catalog.is_multi_valued
    from history
    inner join catalog on history.tag_code = catalog.tag_code
),

ends as (
    select
        history.customer_id,
        history.tag_code,
        history.tag_value,
        history.valid_to as as_of_date,
        catalog.is_multi_valued
    from history
    inner join catalog on history.tag_code = catalog.tag_code
    where history.valid_to is not null
),

single_valued as (
    select
        coalesce(ends.tag_code, starts.tag_code) as tag_code,
        coalesce(ends.as_of_date, starts.as_of_date) as as_of_date,
        ends.tag_value as from_value,
        starts.tag_value as to_value
    from (select * from ends where not is_multi_valued) as ends
    full outer join (select * from starts where not is_multi_valued) as starts
        on ends.customer_id = starts.customer_id
            and ends.tag_code = starts.tag_code
            and ends.as_of_date = starts.as_of_date
),

multi_valued as (
    select
        tag_code,
        as_of_date,
        cast(null as {{ dbt.type_string() }}) as from_value,
        tag_value as to_value
    from starts
    where is_multi_valued
    union all
    select
        tag_code,
        as_of_date,
        tag_value as from_value,
        cast(null as {{ dbt.type_string() }}) as to_value
    from ends
    where is_multi_valued
),

moves as (
    select * from single_valued
    union all
    select * from multi_valued
),

final as (
    select
        as_of_date,
        tag_code,
        from_value,
        to_value,
        count(*) as customer_count
    from moves
    group by as_of_date, tag_code, from_value, to_value
)

select * from final
