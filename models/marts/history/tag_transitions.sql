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

period_starts as (
    select
        history.customer_id,
        history.tag_code,
        history.tag_value,
        history.valid_from as as_of_date,
        catalog.is_multi_valued
    from history
    inner join catalog on history.tag_code = catalog.tag_code
),

period_ends as (
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

single_ends as (
    select * from period_ends where not is_multi_valued
),

single_starts as (
    select * from period_starts where not is_multi_valued
),

single_valued as (
    select
        coalesce(single_ends.tag_code, single_starts.tag_code) as tag_code,
        coalesce(single_ends.as_of_date, single_starts.as_of_date) as as_of_date,
        single_ends.tag_value as from_value,
        single_starts.tag_value as to_value
    from single_ends
    full outer join single_starts
        on single_ends.customer_id = single_starts.customer_id
            and single_ends.tag_code = single_starts.tag_code
            and single_ends.as_of_date = single_starts.as_of_date
),

multi_valued as (
    select
        tag_code,
        as_of_date,
        cast(null as {{ dbt.type_string() }}) as from_value,
        tag_value as to_value
    from period_starts
    where is_multi_valued
    union all
    select
        tag_code,
        as_of_date,
        tag_value as from_value,
        cast(null as {{ dbt.type_string() }}) as to_value
    from period_ends
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
