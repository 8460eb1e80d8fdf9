-- The membership history holds, on the run date, exactly marts.segment_members.
with

members as (
    select
        segment_code,
        customer_id,
        is_holdout
    from {{ ref('segment_members') }}
),

held as (
    select
        segment_code,
        customer_id,
        is_holdout
    from {{ ref('segment_membership_history') }}
    where {{ period_valid_on(none, as_of_date()) }}
),

missing as (
    select
        'member missing from the history' as problem,
        members.*
    from members
    left join held
        on members.segment_code = held.segment_code
            and members.customer_id = held.customer_id
            and members.is_holdout = held.is_holdout
    where held.segment_code is null
),

extra as (
    select
        'history holds a non-member' as problem,
        held.*
    from held
    left join members
        on held.segment_code = members.segment_code
            and held.customer_id = members.customer_id
            and held.is_holdout = members.is_holdout
    where members.segment_code is null
)

select * from missing
union all
select * from extra
