-- complaint_risk: >= min_complaints complaint tickets opened in the 365-day window.
with

complaints as (
    select
        customer_id,
        count(*) as complaints_365d
    from {{ ref('fct_tickets') }}
    where customer_id is not null
        and ticket_type = 'complaint'
        and {{ occurred_in_window('opened_at', tag_param('all', 'window_365d_days')) }}
    group by customer_id
),

final as (
    select
        customer_id,
        'complaint_risk' as tag_code,
        'complaint_prone' as tag_value,
        'complaints_365d = ' || complaints_365d as evidence,
        {{ as_of_date() }} as as_of_date
    from complaints
    where complaints_365d >= {{ tag_param('complaint_risk', 'min_complaints') }}
)

select * from final
