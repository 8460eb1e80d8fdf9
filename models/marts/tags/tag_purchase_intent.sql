-- purchase_intent (multi-valued):
--   browsing_no_purchase: >= min_page_views page views in the 90-day window, no purchase in 365 days;
--   cart_abandoner: add_to_cart in the last cart_window_days days without a purchase in those days.
with

web_events as (
    select
        customer_id,
        event_type,
        {{ days_since('event_date') }} as days_since_event
    from {{ ref('fct_web_events') }}
    where customer_id is not null
        -- only the events either window can count (DuckDB skips older row groups)
        and {{ occurred_in_window('event_ts', 'greatest('
            ~ tag_param('all', 'window_90d_days') ~ ', '
            ~ tag_param('purchase_intent', 'cart_window_days') ~ ')') }}
),

purchases as (
    select
        customer_id,
        purchases,
        {{ days_since('order_date') }} as days_since_order
    from {{ ref('int_customer_daily_purchases') }}
    where {{ occurred_in_window('order_date', 'greatest('
        ~ tag_param('all', 'window_365d_days') ~ ', '
        ~ tag_param('purchase_intent', 'cart_window_days') ~ ')', 'date') }}
),

web_signals as (
    select
        customer_id,
        count(*) filter (
            where event_type = 'page_view'
            and {{ in_window('days_since_event', tag_param('all', 'window_90d_days')) }}
        ) as page_views_90d,
        count(*) filter (
            where event_type = 'add_to_cart'
            and {{ in_window('days_since_event', tag_param('purchase_intent', 'cart_window_days')) }}
        ) as add_to_carts_30d
    from web_events
    group by customer_id
),

purchase_signals as (
    select
        customer_id,
        coalesce(sum(purchases) filter (
            where {{ in_window('days_since_order', tag_param('all', 'window_365d_days')) }}
        ), 0) as purchases_365d,
        coalesce(sum(purchases) filter (
            where {{ in_window('days_since_order', tag_param('purchase_intent', 'cart_window_days')) }}
        ), 0) as purchases_30d
    from purchases
    group by customer_id
),

signals as (
    select
        web_signals.*,
        coalesce(purchase_signals.purchases_365d, 0) as purchases_365d,
        coalesce(purchase_signals.purchases_30d, 0) as purchases_30d
    from web_signals
    left join purchase_signals on web_signals.customer_id = purchase_signals.customer_id
),

final as (
    select
        customer_id,
        'purchase_intent' as tag_code,
        'browsing_no_purchase' as tag_value,
        'page_views_90d = ' || page_views_90d || ', purchases_365d = 0' as evidence,
        {{ as_of_date() }} as as_of_date
    from signals
    where page_views_90d >= {{ tag_param('purchase_intent', 'min_page_views') }} and purchases_365d = 0

    union all

    select
        customer_id,
        'purchase_intent' as tag_code,
        'cart_abandoner' as tag_value,
        'add_to_carts_30d = ' || add_to_carts_30d || ', purchases_30d = 0' as evidence,
        {{ as_of_date() }} as as_of_date
    from signals
    where add_to_carts_30d > 0 and purchases_30d = 0
)

select * from final
