-- The benchmark reference: the account-level tags of marts.customer_tags that are rules (ltv and
-- churn_risk come from a fitted model, not SQL; the tags compared are those named below as
-- `'<code>' as tag_code`) computed by ONE hand-written DuckDB query straight over the Parquet
-- landing zone. It is an independent implementation of the same rules as the dbt project
-- (cleaning, "latest wins" dedupe, the staging rejection rules that decide which rows count,
-- identity resolution, windows and the thresholds of seeds/tag_thresholds.csv), written for
-- speed: only the columns and rows a tag needs are read, and no intermediate table is written.
-- tests/test_bench.py checks that it returns exactly the (customer_id, tag_code, tag_value) set
-- of marts.customer_tags.
--
-- Placeholders, filled in by crm_tags.bench.render_reference_sql:
--   {{raw:<table>}}  the landing-zone table: all its files by column name, contract columns cast
--                    to their types, plus _source_row_number and _file_rank: 1 for the latest
--                    delivery (file mtime), ties by file name descending, the order dbt's
--                    "latest wins" breaks ties in. An integer instead of the file name and mtime
--                    on every row keeps the dedupe windows small.
--   {{seed:<name>}}  a seed CSV (all columns as text)
--   {{catalog_values:<tag>}}  the tag's listed value codes in the catalog (dbt_project.yml), as a
--                    relation with one column, tag_value
--   {{as_of}}        the run date, a DATE literal
with

-- Thresholds and windows, as typed in the dbt seed (decimal(18,4)), so boundaries compare alike.
thresholds as (
    select tag_code || '.' || parameter as name, cast(value as decimal(18, 4)) as value
    from {{seed:tag_thresholds}}
),

p as (
    select
        {{as_of}} as as_of,
        any_value(value) filter (where name = 'all.window_365d_days') as w365,
        any_value(value) filter (where name = 'all.window_90d_days') as w90,
        any_value(value) filter (where name = 'company_size.medium_min_employees') as size_medium_min,
        any_value(value) filter (where name = 'company_size.medium_max_employees') as size_medium_max,
        any_value(value) filter (where name = 'purchase_frequency.high_min_purchases') as freq_high,
        any_value(value) filter (where name = 'purchase_frequency.medium_min_purchases') as freq_medium,
        any_value(value) filter (where name = 'recency.within_30d_max_days') as rec_30,
        any_value(value) filter (where name = 'recency.d31_90_max_days') as rec_90,
        any_value(value) filter (where name = 'recency.d91_180_max_days') as rec_180,
        any_value(value) filter (where name = 'product_preference.min_top_share') as top_share,
        any_value(value) filter (where name = 'customer_grade.r5_max_days') as r5_days,
        any_value(value) filter (where name = 'customer_grade.r3_max_days') as r3_days,
        any_value(value) filter (where name = 'customer_grade.m5_min_net_sales') as m5_sales,
        any_value(value) filter (where name = 'customer_grade.m3_min_net_sales') as m3_sales,
        any_value(value) filter (where name = 'customer_grade.vip_min_total') as vip_total,
        any_value(value) filter (where name = 'customer_grade.important_min_total') as important_total,
        any_value(value) filter (where name = 'customer_grade.ordinary_min_total') as ordinary_total,
        any_value(value) filter (where name = 'profit_contribution.high_min_exclusive') as margin_high,
        any_value(value) filter (where name = 'profit_contribution.medium_min') as margin_medium,
        any_value(value) filter (where name = 'price_sensitivity.high_min_exclusive') as promo_high,
        any_value(value) filter (where name = 'price_sensitivity.medium_min') as promo_medium,
        any_value(value) filter (where name = 'service_preference.window_days') as service_days,
        any_value(value) filter (where name = 'lifecycle_stage.new_window_days') as new_days,
        any_value(value) filter (where name = 'lifecycle_stage.active_max_days') as active_days,
        any_value(value) filter (where name = 'lifecycle_stage.at_risk_max_days') as at_risk_days,
        any_value(value) filter (where name = 'browsing_interest.min_page_views') as interest_views,
        any_value(value) filter (where name = 'purchase_intent.min_page_views') as intent_views,
        any_value(value) filter (where name = 'purchase_intent.cart_window_days') as cart_days,
        any_value(value) filter (where name = 'campaign_engagement.high_min_clicks') as clicks_high,
        any_value(value) filter (where name = 'campaign_engagement.medium_min_clicks') as clicks_medium,
        any_value(value) filter (where name = 'campaign_engagement.low_min_clicks') as clicks_low,
        any_value(value) filter (where name = 'satisfaction.satisfied_min_score') as satisfied_score,
        any_value(value) filter (where name = 'satisfaction.neutral_min_score') as neutral_score,
        any_value(value) filter (where name = 'complaint_risk.min_complaints') as min_complaints,
    from thresholds
),

-- ---------------------------------------------------------------- crm: accounts and contacts
-- Latest version per account_id (updated_at, then delivery mtime, file, row); a row is kept
-- when its type is B2B/B2C and its numbers are not negative. Deleted accounts stay kept here
-- (their contacts, orders and tickets still resolve) and are dropped at the very end.
accounts as (
    select *
    from (
        select
            nullif(trim(account_id), '') as account_id,
            upper(trim(customer_type)) as customer_type,
            nullif(lower(regexp_replace(trim(industry), '\s+', ' ', 'g')), '') as industry_text,
            nullif(regexp_replace(province, '\s+', '', 'g'), '') as province_text,
            employee_count,
            annual_revenue,
            coalesce(is_deleted, false) as is_deleted,
            updated_at,
            _file_rank,
            _source_row_number,
        from {{raw:crm/accounts}}
    )
    where account_id is not null
    qualify row_number() over (
        partition by account_id
        order by updated_at desc nulls last, _file_rank, _source_row_number desc
    ) = 1
),

kept_accounts as (
    select account_id, customer_type, industry_text, province_text, employee_count, is_deleted
    from accounts
    where customer_type in ('B2B', 'B2C')
        and (employee_count is null or employee_count >= 0)
        and (annual_revenue is null or annual_revenue >= 0)
),

contacts as (
    select contact_id, account_id, email
    from (
        select
            nullif(trim(contact_id), '') as contact_id,
            nullif(trim(account_id), '') as account_id,
            nullif(lower(trim(email)), '') as email,
            updated_at,
            _file_rank,
            _source_row_number,
        from {{raw:crm/contacts}}
    )
    where contact_id is not null
    qualify row_number() over (
        partition by contact_id
        order by updated_at desc nulls last, _file_rank, _source_row_number desc
    ) = 1
),

-- Email -> customer through kept contacts; an email on two accounts resolves to nobody.
identities as (
    select
        contacts.email,
        case when count(distinct contacts.account_id) = 1 then min(contacts.account_id) end as customer_id,
    from contacts
    semi join kept_accounts on contacts.account_id = kept_accounts.account_id
    where contacts.email is not null
    group by contacts.email
),

-- ---------------------------------------------------------------- orders
products as (
    select
        latest.product_id,
        coalesce(
            category_mapping.category_code,
            nullif(trim(regexp_replace(latest.category_text, '[^\p{L}\p{N}]+', '_', 'g'), '_'), ''),
            'other'
        ) as category_code,
    from (
        select
            nullif(trim(product_id), '') as product_id,
            nullif(lower(regexp_replace(trim(category), '\s+', ' ', 'g')), '') as category_text,
            list_price,
        from {{raw:orders/products}}
        where nullif(trim(product_id), '') is not null
        qualify row_number() over (
            partition by nullif(trim(product_id), '')
            order by _file_rank, _source_row_number desc
        ) = 1
    ) as latest
    left join {{seed:category_mapping}} as category_mapping
        on latest.category_text = category_mapping.category_text
    where latest.list_price is null or latest.list_price >= 0
),

orders as (
    select *
    from (
        select
            nullif(trim(order_id), '') as order_id,
            nullif(trim(account_id), '') as account_id,
            nullif(trim(promotion_id), '') as promotion_id,
            nullif(lower(regexp_replace(trim(status), '\s+', ' ', 'g')), '') as status,
            nullif(lower(regexp_replace(trim(sales_channel), '\s+', ' ', 'g')), '') as sales_channel,
            order_ts,
            _ingested_at,
            _file_rank,
            _source_row_number,
        from {{raw:orders/orders}}
    )
    where order_id is not null
    qualify row_number() over (
        partition by order_id
        order by _ingested_at desc nulls last, _file_rank, _source_row_number desc
    ) = 1
),

-- Only purchases feed a tag: kept orders (known account, status, channel; dated by the run date)
-- whose current status is paid, shipped or completed.
purchases as (
    select
        orders.order_id,
        orders.account_id as customer_id,
        orders.promotion_id is not null as is_promotional,
        orders.order_ts,
        date_diff('day', cast(orders.order_ts as date), p.as_of) as days_since,
    from orders
    semi join kept_accounts on orders.account_id = kept_accounts.account_id
    cross join p
    where orders.status in ('paid', 'shipped', 'completed')
        and orders.sales_channel in ('online', 'offline', 'partner')
        and orders.order_ts is not null
        and date_diff('day', cast(orders.order_ts as date), p.as_of) >= 0
),

-- Latest version per (order_id, line_no): lines carry no timestamp, the later delivery wins.
order_items as (
    select *
    from (
        select
            nullif(trim(order_id), '') as order_id,
            line_no,
            nullif(trim(product_id), '') as product_id,
            quantity,
            unit_price,
            coalesce(discount_amount, 0) as discount_amount,
            unit_cost,
            _file_rank,
            _source_row_number,
        from {{raw:orders/order_items}}
    )
    where order_id is not null and line_no is not null
    qualify row_number() over (
        partition by order_id, line_no
        order by _file_rank, _source_row_number desc
    ) = 1
),

-- Net sales and profit of kept lines of purchases in the 365-day window, per customer and
-- category. One aggregation serves both product_preference and the customer's 365-day totals
-- (decimal sums are exact, so summing lines per category equals dbt's per-order, per-day sums),
-- which keeps the 20M order lines streaming instead of materialised for two consumers.
category_sales as (
    select
        purchases.customer_id,
        products.category_code,
        sum(cast(order_items.quantity * order_items.unit_price - order_items.discount_amount
            as decimal(18, 2))) as net_sales,
        sum(cast(order_items.quantity * (order_items.unit_price - order_items.unit_cost)
            - order_items.discount_amount as decimal(18, 2))) as profit,
        max(purchases.order_ts) as last_bought_at,
    from order_items
    inner join purchases on order_items.order_id = purchases.order_id
    inner join products on order_items.product_id = products.product_id
    cross join p
    where purchases.days_since < p.w365
        and order_items.quantity >= 0
        and order_items.unit_price >= 0
        and order_items.unit_cost >= 0
        and order_items.discount_amount >= 0
        and order_items.discount_amount <= order_items.quantity * order_items.unit_price
    group by purchases.customer_id, products.category_code
),

-- Customers with at least one purchase (ever); the others have no order metrics.
order_metrics as (
    select
        counts.*,
        cast(coalesce(sales.net_sales_365d, 0) as decimal(18, 2)) as net_sales_365d,
        cast(coalesce(sales.profit_365d, 0) as decimal(18, 2)) as profit_365d,
    from (
        select
            customer_id,
            count(*) filter (where days_since < p.w365) as purchases_365d,
            count(*) filter (where days_since < p.w365 and is_promotional) as promotional_365d,
            count(*) filter (where days_since < p.cart_days) as purchases_cart_window,
            max(days_since) as days_since_first,
            min(days_since) as days_since_last,
        from purchases
        cross join p
        group by customer_id
    ) as counts
    left join (
        select customer_id, sum(net_sales) as net_sales_365d, sum(profit) as profit_365d
        from category_sales
        group by customer_id
    ) as sales on counts.customer_id = sales.customer_id
),

product_preference as (
    select
        customer_id,
        case when net_sales < top_share * total_net_sales then 'mixed' else category_code end as tag_value,
    from (
        select
            category_sales.*,
            p.top_share,
            sum(net_sales) over (partition by customer_id) as total_net_sales,
        from category_sales
        cross join p
        qualify row_number() over (
            partition by customer_id order by net_sales desc, last_bought_at desc, category_code
        ) = 1
    )
    where total_net_sales > 0
),

-- ---------------------------------------------------------------- support
tickets as (
    select *
    from (
        select
            nullif(trim(ticket_id), '') as ticket_id,
            nullif(trim(account_id), '') as account_id,
            nullif(lower(trim(requester_email)), '') as requester_email,
            nullif(lower(regexp_replace(trim(channel), '\s+', ' ', 'g')), '') as channel,
            nullif(lower(regexp_replace(trim(ticket_type), '\s+', ' ', 'g')), '') as ticket_type,
            satisfaction_score,
            opened_at,
            resolved_at,
            _file_rank,
            _source_row_number,
        from {{raw:support/tickets}}
    )
    where ticket_id is not null
    qualify row_number() over (
        partition by ticket_id
        order by resolved_at desc nulls last, _file_rank, _source_row_number desc
    ) = 1
),

-- Kept tickets resolved to a customer: the linked account, else the requester email.
customer_tickets as (
    select
        coalesce(tickets.account_id, identities.customer_id) as customer_id,
        channel_groups.channel_group,
        tickets.ticket_type,
        tickets.satisfaction_score,
        tickets.opened_at,
        date_diff('day', cast(tickets.opened_at as date), p.as_of) as days_since,
    from tickets
    cross join p
    left join kept_accounts on tickets.account_id = kept_accounts.account_id
    -- (no "account_id is null" in the join condition: coalesce already prefers account_id, and a
    -- non-equi condition would turn this hash join into a nested loop)
    left join identities on tickets.requester_email = identities.email
    left join {{seed:service_channel_groups}} as channel_groups
        on tickets.channel = channel_groups.ticket_channel
    where (tickets.account_id is null or kept_accounts.account_id is not null)
        and tickets.channel in ('phone', 'online_chat', 'email', 'wechat', 'account_manager')
        and tickets.ticket_type in ('inquiry', 'complaint', 'after_sales', 'return')
        and (tickets.satisfaction_score is null or tickets.satisfaction_score between 1 and 5)
        and tickets.opened_at is not null
        and date_diff('day', cast(tickets.opened_at as date), p.as_of) >= 0
        and coalesce(tickets.account_id, identities.customer_id) is not null
),

ticket_metrics as (
    select
        customer_id,
        count(*) filter (where days_since < p.w365 and ticket_type = 'complaint') as complaints_365d,
        count(satisfaction_score) filter (where days_since < p.w365) as scored_tickets,
        sum(satisfaction_score) filter (where days_since < p.w365) as score_sum,
    from customer_tickets
    cross join p
    group by customer_id
),

service_preference as (
    select customer_id, channel_group as tag_value
    from (
        select customer_id, channel_group, count(*) as tickets, max(opened_at) as latest_opened_at,
        from customer_tickets
        cross join p
        where days_since < p.service_days
        group by customer_id, channel_group
    )
    qualify row_number() over (
        partition by customer_id order by tickets desc, latest_opened_at desc, channel_group
    ) = 1
),

-- ---------------------------------------------------------------- campaigns and web
kept_campaigns as (
    select campaign_id
    from (
        select
            nullif(trim(campaign_id), '') as campaign_id,
            nullif(lower(regexp_replace(trim(channel), '\s+', ' ', 'g')), '') as channel,
            _file_rank,
            _source_row_number,
        from {{raw:campaigns/campaigns}}
    )
    where campaign_id is not null
    -- the latest version decides: an older version with a valid channel does not keep it
    qualify row_number() over (
        partition by campaign_id
        order by _file_rank, _source_row_number desc
    ) = 1
        and channel in ('email', 'sms', 'wechat', 'ads')
),

campaign_events as (
    select *
    from (
        select
            nullif(trim(event_id), '') as event_id,
            nullif(trim(campaign_id), '') as campaign_id,
            nullif(lower(trim(recipient_email)), '') as recipient_email,
            nullif(lower(regexp_replace(trim(event_type), '\s+', ' ', 'g')), '') as event_type,
            event_ts,
            _file_rank,
            _source_row_number,
        from {{raw:campaigns/campaign_events}}
    )
    where event_id is not null
    qualify row_number() over (
        partition by event_id
        order by _file_rank, _source_row_number desc
    ) = 1
),

campaign_engagement as (
    select
        identities.customer_id,
        count(*) filter (where campaign_events.event_type = 'clicked') as clicks_90d,
        count(*) filter (where campaign_events.event_type = 'sent') as sends_90d,
    from campaign_events
    semi join kept_campaigns on campaign_events.campaign_id = kept_campaigns.campaign_id
    inner join identities on campaign_events.recipient_email = identities.email
    cross join p
    where identities.customer_id is not null
        and campaign_events.event_type in ('sent', 'delivered', 'opened', 'clicked', 'unsubscribed')
        and campaign_events.event_ts is not null
        and date_diff('day', cast(campaign_events.event_ts as date), p.as_of) >= 0
        and date_diff('day', cast(campaign_events.event_ts as date), p.as_of) < p.w90
    group by identities.customer_id
),

web_events as (
    select *
    from (
        select
            nullif(trim(event_id), '') as event_id,
            nullif(lower(trim(user_email)), '') as user_email,
            nullif(lower(regexp_replace(trim(event_type), '\s+', ' ', 'g')), '') as event_type,
            nullif(lower(regexp_replace(trim(product_category), '\s+', ' ', 'g')), '') as category_text,
            event_ts,
            _file_rank,
            _source_row_number,
        from {{raw:campaigns/web_events}}
    )
    where event_id is not null
    qualify row_number() over (
        partition by event_id
        order by _file_rank, _source_row_number desc
    ) = 1
),

-- Page views and add-to-carts per customer and category code (null = no category), in one
-- aggregation that both purchase_intent (summed per customer) and browsing_interest read.
web_counts as (
    select
        identities.customer_id,
        case
            when web_events.category_text is not null
                then coalesce(
                    category_mapping.category_code,
                    nullif(trim(regexp_replace(web_events.category_text, '[^\p{L}\p{N}]+', '_', 'g'), '_'), ''),
                    'other'
                )
        end as category_code,
        count(*) filter (
            where web_events.event_type = 'page_view'
                and date_diff('day', cast(web_events.event_ts as date), p.as_of) < p.w90
        ) as page_views_90d,
        count(*) filter (
            where web_events.event_type = 'add_to_cart'
                and date_diff('day', cast(web_events.event_ts as date), p.as_of) < p.cart_days
        ) as add_to_carts,
    from web_events
    inner join identities on web_events.user_email = identities.email
    left join {{seed:category_mapping}} as category_mapping
        on web_events.category_text = category_mapping.category_text
    cross join p
    where identities.customer_id is not null
        and web_events.event_type in ('page_view', 'add_to_cart', 'search')
        and web_events.event_ts is not null
        and date_diff('day', cast(web_events.event_ts as date), p.as_of) >= 0
    group by all
),

web_metrics as (
    select customer_id, sum(page_views_90d) as page_views_90d, sum(add_to_carts) as add_to_carts
    from web_counts
    group by customer_id
),

browsing_interest as (
    select customer_id, category_code as tag_value
    from web_counts
    cross join p
    where category_code is not null and page_views_90d >= p.interest_views
),

-- ---------------------------------------------------------------- manual tags
-- The latest kept action per (account, tag) decides; at the same instant remove wins.
manual as (
    select account_id as customer_id, tag_code as tag_value
    from (
        select actions.account_id, actions.tag_code, actions.action
        from (
            select
                nullif(trim(account_id), '') as account_id,
                nullif(lower(regexp_replace(trim(tag_code), '\s+', ' ', 'g')), '') as tag_code,
                nullif(lower(regexp_replace(trim(action), '\s+', ' ', 'g')), '') as action,
                trim(operator) as operator,
                operated_at,
            from {{raw:crm/manual_tags}}
        ) as actions
        semi join kept_accounts on actions.account_id = kept_accounts.account_id
        semi join (
            select tag_value from {{catalog_values:manual}}
        ) as manual_codes on actions.tag_code = manual_codes.tag_value
        cross join p
        where actions.action in ('add', 'remove')
            and actions.operated_at is not null
            and date_diff('day', cast(actions.operated_at as date), p.as_of) >= 0
        qualify row_number() over (
            partition by actions.account_id, actions.tag_code
            order by actions.operated_at desc, actions.action desc, actions.operator
        ) = 1
    )
    where action = 'add'
),

-- ---------------------------------------------------------------- the tags
province_regions as (
    select province_name as province_text, region_code from {{seed:province_regions}}
    union
    select province_short_name, region_code from {{seed:province_regions}}
),

customer_grade as (
    select
        kept_accounts.account_id as customer_id,
        case
            when order_metrics.customer_id is null then 0
            when order_metrics.days_since_last <= p.r5_days then 5
            when order_metrics.days_since_last <= p.r3_days then 3
            else 1
        end
        + case
            when order_metrics.customer_id is null then 0
            when order_metrics.purchases_365d >= p.freq_high then 5
            when order_metrics.purchases_365d >= p.freq_medium then 3
            else 1
        end
        + case
            when order_metrics.customer_id is null then 0
            when order_metrics.net_sales_365d >= p.m5_sales then 5
            when order_metrics.net_sales_365d >= p.m3_sales then 3
            else 1
        end as rfm_total,
    from kept_accounts
    cross join p
    left join order_metrics on kept_accounts.account_id = order_metrics.customer_id
),

tags as (
    select kept_accounts.account_id as customer_id, 'industry' as tag_code,
        coalesce(industry_mapping.industry_code, 'other') as tag_value
    from kept_accounts
    left join {{seed:industry_mapping}} as industry_mapping
        on kept_accounts.industry_text = industry_mapping.industry_text
    where kept_accounts.industry_text is not null

    union all
    select account_id, 'company_size',
        case
            when employee_count < p.size_medium_min then 'small'
            when employee_count <= p.size_medium_max then 'medium'
            else 'large'
        end
    from kept_accounts cross join p
    where customer_type = 'B2B' and employee_count is not null

    union all
    select kept_accounts.account_id, 'region', province_regions.region_code
    from kept_accounts
    inner join province_regions on kept_accounts.province_text = province_regions.province_text

    union all
    select customer_id, 'purchase_frequency',
        case
            when purchases_365d >= p.freq_high then 'high'
            when purchases_365d >= p.freq_medium then 'medium'
            else 'low'
        end
    from order_metrics cross join p

    union all
    select customer_id, 'recency',
        case
            when days_since_last <= p.rec_30 then 'within_30d'
            when days_since_last <= p.rec_90 then 'd31_90'
            when days_since_last <= p.rec_180 then 'd91_180'
            else 'over_180d'
        end
    from order_metrics cross join p

    union all
    select customer_id, 'product_preference', tag_value from product_preference

    union all
    select customer_id, 'customer_grade',
        case
            when rfm_total >= p.vip_total then 'vip'
            when rfm_total >= p.important_total then 'important'
            when rfm_total >= p.ordinary_total then 'ordinary'
            else 'potential'
        end
    from customer_grade cross join p

    union all
    select customer_id, 'profit_contribution',
        case
            when profit_365d > p.margin_high * net_sales_365d then 'high'
            when profit_365d >= p.margin_medium * net_sales_365d then 'medium'
            else 'low'
        end
    from order_metrics cross join p
    where net_sales_365d > 0

    union all
    select customer_id, 'price_sensitivity',
        case
            when promotional_365d > p.promo_high * purchases_365d then 'high'
            when promotional_365d >= p.promo_medium * purchases_365d then 'medium'
            else 'low'
        end
    from order_metrics cross join p
    where purchases_365d > 0

    union all
    select customer_id, 'service_preference', tag_value from service_preference

    union all
    select kept_accounts.account_id, 'lifecycle_stage',
        case
            when order_metrics.customer_id is null then 'prospect'
            when order_metrics.days_since_first < p.new_days then 'new'
            when order_metrics.days_since_last <= p.active_days then 'active'
            when order_metrics.days_since_last <= p.at_risk_days then 'at_risk'
            else 'churned'
        end
    from kept_accounts
    cross join p
    left join order_metrics on kept_accounts.account_id = order_metrics.customer_id

    union all
    select customer_id, 'browsing_interest', tag_value from browsing_interest

    union all
    select web_metrics.customer_id, 'purchase_intent', 'browsing_no_purchase'
    from web_metrics
    cross join p
    left join order_metrics on web_metrics.customer_id = order_metrics.customer_id
    where web_metrics.page_views_90d >= p.intent_views
        and coalesce(order_metrics.purchases_365d, 0) = 0

    union all
    select web_metrics.customer_id, 'purchase_intent', 'cart_abandoner'
    from web_metrics
    left join order_metrics on web_metrics.customer_id = order_metrics.customer_id
    where web_metrics.add_to_carts > 0 and coalesce(order_metrics.purchases_cart_window, 0) = 0

    union all
    select customer_id, 'campaign_engagement',
        case
            when clicks_90d >= p.clicks_high then 'high'
            when clicks_90d >= p.clicks_medium then 'medium'
            when clicks_90d >= p.clicks_low then 'low'
            else 'none'
        end
    from campaign_engagement cross join p
    where clicks_90d >= p.clicks_low or sends_90d > 0

    union all
    select customer_id, 'satisfaction',
        case
            when score_sum >= p.satisfied_score * scored_tickets then 'satisfied'
            when score_sum >= p.neutral_score * scored_tickets then 'neutral'
            else 'dissatisfied'
        end
    from ticket_metrics cross join p
    where scored_tickets > 0

    union all
    select customer_id, 'complaint_risk', 'complaint_prone'
    from ticket_metrics cross join p
    where complaints_365d >= p.min_complaints

    union all
    select customer_id, 'manual', tag_value from manual
)

-- Deleted accounts get no tags.
select tags.customer_id, tags.tag_code, tags.tag_value
from tags
semi join (select account_id from kept_accounts where not is_deleted) as live
    on tags.customer_id = live.account_id
