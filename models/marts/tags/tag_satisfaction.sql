-- satisfaction: mean score of scored tickets opened in the 365-day window (sum compared with
-- threshold x count, so boundaries are exact); no scored ticket -> no tag.
with

tickets as (
    select * from {{ ref('fct_tickets') }}
    where customer_id is not null
        and satisfaction_score is not null
        and {{ occurred_in_window('opened_at', tag_param('all', 'window_365d_days')) }}
),

scores as (
    select
        customer_id,
        count(*) as scored_tickets,
        sum(satisfaction_score) as score_sum
    from tickets
    group by customer_id
),

final as (
    select
        customer_id,
        'satisfaction' as tag_code,
        case
            when score_sum >= {{ tag_param('satisfaction', 'satisfied_min_score') }} * scored_tickets then 'satisfied'
            when score_sum >= {{ tag_param('satisfaction', 'neutral_min_score') }} * scored_tickets then 'neutral'
            else 'dissatisfied'
        end as tag_value,
        (
            'mean_satisfaction_365d = ' || {{ ratio_text('score_sum', 'scored_tickets', 2) }}
            || ' (scored_tickets = ' || scored_tickets || ')'
        ) as evidence,
        {{ as_of_date() }} as as_of_date
    from scores
)

select * from final
