-- service_preference: the channel group with most tickets in the 365-day window. Ties go to the
-- tied group whose latest ticket is the most recent (then the group code); no ticket -> no tag.
with

tickets as (
    select * from {{ ref('fct_tickets') }}
    where customer_id is not null
        and {{ occurred_in_window('opened_at', tag_param('service_preference', 'window_days')) }}
),

group_counts as (
    select
        customer_id,
        channel_group,
        count(*) as tickets,
        max(opened_at) as latest_opened_at
    from tickets
    group by customer_id, channel_group
),

ranked as (
    select
        *,
        sum(tickets) over (partition by customer_id) as tickets_total,
        row_number() over (
            partition by customer_id
            order by tickets desc, latest_opened_at desc, channel_group asc
        ) as group_rank
    from group_counts
),

final as (
    select
        customer_id,
        'service_preference' as tag_code,
        channel_group as tag_value,
        channel_group || '_tickets_365d = ' || tickets || ' of tickets_365d = ' || tickets_total as evidence,
        {{ as_of_date() }} as as_of_date
    from ranked
    where group_rank = 1
)

select * from final
