-- marts.segment_membership_history: a period ends after it starts, and the periods of one
-- (segment, customer) never overlap (a customer is in a segment once, holdout or not).
with

history as (
    select * from {{ ref('segment_membership_history') }}
),

ordered as (
    select
        *,
        lead(valid_from) over (
            partition by segment_code, customer_id order by valid_from
        ) as next_valid_from
    from history
)

select * from ordered
where valid_to <= valid_from
    or (next_valid_from is not null and (valid_to is null or valid_to > next_valid_from))
