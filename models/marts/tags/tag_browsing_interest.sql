-- browsing_interest (multi-valued): each category with >= min_page_views page views by the
-- customer in the 90-day window.
with

page_views as (
    select
        customer_id,
        category_code,
        count(*) as page_views_90d
    from {{ ref('fct_web_events') }}
    where customer_id is not null
        and event_type = 'page_view'
        and category_code is not null
        and {{ occurred_in_window('event_ts', tag_param('all', 'window_90d_days')) }}
    group by customer_id, category_code
),

final as (
    select
        customer_id,
        'browsing_interest' as tag_code,
        category_code as tag_value,
        'page_views_90d = ' || page_views_90d as evidence,
        {{ as_of_date() }} as as_of_date
    from page_views
    where page_views_90d >= {{ tag_param('browsing_interest', 'min_page_views') }}
)

select * from final
