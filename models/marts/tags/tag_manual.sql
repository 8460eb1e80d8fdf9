-- manual (multi-valued): the tag is held when the latest action per (customer, tag) is add.
-- Two actions at the same instant: remove wins (the conservative reading).
with

actions as (
    select * from {{ ref('fct_manual_tag_actions') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by customer_id, tag_code
            order by operated_at desc, action desc, operator asc
        ) as action_rank
    from actions
),

latest as (
    select * from ranked where action_rank = 1
),

final as (
    select
        customer_id,
        'manual' as tag_code,
        tag_code as tag_value,
        (
            'added by ' || coalesce(operator, 'unknown')
            || ' at ' || {{ format_timestamp_seconds('operated_at') }}
        ) as evidence,
        {{ as_of_date() }} as as_of_date
    from latest
    where action = 'add'
)

select * from final
