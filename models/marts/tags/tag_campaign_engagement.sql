-- campaign_engagement: clicks in the 90-day window; 0 clicks but a send in the window -> none;
-- nothing sent and nothing clicked in the window -> no tag.
with

events as (
    select * from {{ ref('fct_campaign_events') }}
    where customer_id is not null
        and {{ occurred_in_window('event_ts', tag_param('all', 'window_90d_days')) }}
),

counts as (
    select
        customer_id,
        count(*) filter (where event_type = 'clicked') as clicks_90d,
        count(*) filter (where event_type = 'sent') as sends_90d
    from events
    group by customer_id
),

final as (
    select
        customer_id,
        'campaign_engagement' as tag_code,
        case
            when clicks_90d >= {{ tag_param('campaign_engagement', 'high_min_clicks') }} then 'high'
            when clicks_90d >= {{ tag_param('campaign_engagement', 'medium_min_clicks') }} then 'medium'
            when clicks_90d >= {{ tag_param('campaign_engagement', 'low_min_clicks') }} then 'low'
            else 'none'
        end as tag_value,
        'clicks_90d = ' || clicks_90d || ', sends_90d = ' || sends_90d as evidence,
        {{ as_of_date() }} as as_of_date
    from counts
    where clicks_90d >= {{ tag_param('campaign_engagement', 'low_min_clicks') }} or sends_90d > 0
)

select * from final
