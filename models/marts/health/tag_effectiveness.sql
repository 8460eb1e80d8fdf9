-- marts.tag_effectiveness: the backtest of each account-level tag (docs/tag-health.md). For each
-- past run date D of a tag (marts.tag_runs) and each value held on D (marts.customer_tag_history:
-- valid_from <= D and (valid_to is null or valid_to > D)), what its holders did in (D, D + window]
-- (seed effectiveness_window_days) from core.fct_orders: the share with at least one purchase
-- (paid, shipped or completed) and the net sales per customer, against all customers live on D
-- (created by D and not deleted): the lift. Only dates whose window ended before this run date
-- count, so a run never measures a window still open. Recomputed each run from the history.
-- A tag is uninformative on D when its values held by at least effectiveness_min_holders
-- customers (two or more of them) have repurchase lifts spanning less than
-- uninformative_max_lift_spread.
with

params as (
    select
        cast({{ health_param('effectiveness_window_days') }} as integer) as window_days,
        {{ health_param('effectiveness_min_holders') }} as min_holders,
        {{ health_param('uninformative_max_lift_spread') }} as max_lift_spread
),

tag_runs as (
    select
        tag_code,
        as_of_date
    from {{ ref('tag_runs') }}
    where tag_level = 'account'
),

windows as (
    select
        tag_runs.tag_code,
        tag_runs.as_of_date as backtest_date,
        cast({{ dbt.dateadd('day', 'params.window_days', 'tag_runs.as_of_date') }} as date)
            as window_end
    from tag_runs
    cross join params
),

elapsed as (
    select * from windows where window_end < {{ as_of_date() }}
),

backtest_dates as (
    select distinct
        backtest_date,
        window_end
    from elapsed
),

customers as (
    select
        customer_id,
        cast(created_at as date) as created_date
    from {{ ref('dim_customers') }}
    where not is_deleted
),

purchases as (
    select
        customer_id,
        order_date,
        net_sales
    from {{ ref('fct_orders') }}
    where is_purchase
),

history as (
    select
        customer_id,
        tag_code,
        tag_value,
        valid_from,
        valid_to
    from {{ ref('customer_tag_history') }}
),

-- every customer live on each backtest date, with what they bought in the window after it
outcomes as (
    select
        backtest_dates.backtest_date,
        customers.customer_id,
        count(purchases.order_date) as purchases_in_window,
        coalesce(sum(purchases.net_sales), 0) as net_sales_in_window
    from backtest_dates
    inner join customers on backtest_dates.backtest_date >= customers.created_date
    left join purchases
        on
            customers.customer_id = purchases.customer_id
            and backtest_dates.backtest_date < purchases.order_date
            and backtest_dates.window_end >= purchases.order_date
    group by backtest_dates.backtest_date, customers.customer_id
),

baseline as (
    select
        backtest_date,
        count(*) as base_customers,
        {{ safe_share('sum(case when purchases_in_window > 0 then 1 else 0 end)', 'count(*)') }}
            as base_repurchase_rate,
        {{ safe_share('sum(net_sales_in_window)', 'count(*)') }} as base_net_sales_per_customer
    from outcomes
    group by backtest_date
),

-- the holders of each value on D who are in the base (live customers)
holdings as (
    select
        elapsed.backtest_date,
        elapsed.window_end,
        history.tag_code,
        history.tag_value,
        outcomes.purchases_in_window,
        outcomes.net_sales_in_window
    from elapsed
    inner join history
        on
            elapsed.tag_code = history.tag_code
            and {{ period_valid_on('history', 'elapsed.backtest_date') }}
    inner join outcomes
        on
            elapsed.backtest_date = outcomes.backtest_date
            and history.customer_id = outcomes.customer_id
),

value_stats as (
    select
        backtest_date,
        window_end,
        tag_code,
        tag_value,
        count(*) as holders,
        sum(case when purchases_in_window > 0 then 1 else 0 end) as repurchasers,
        sum(net_sales_in_window) as net_sales
    from holdings
    group by backtest_date, window_end, tag_code, tag_value
),

valued as (
    select
        value_stats.backtest_date,
        value_stats.window_end,
        value_stats.tag_code,
        value_stats.tag_value,
        value_stats.holders,
        value_stats.repurchasers,
        {{ safe_share('value_stats.repurchasers', 'value_stats.holders') }} as repurchase_rate,
        {{ safe_share('value_stats.net_sales', 'value_stats.holders') }} as net_sales_per_customer,
        baseline.base_customers,
        baseline.base_repurchase_rate,
        baseline.base_net_sales_per_customer,
        value_stats.holders >= params.min_holders as is_in_spread
    from value_stats
    inner join baseline on value_stats.backtest_date = baseline.backtest_date
    cross join params
),

lifted as (
    select
        *,
        repurchase_rate / nullif(base_repurchase_rate, 0) as repurchase_lift,
        net_sales_per_customer / nullif(base_net_sales_per_customer, 0) as net_sales_lift
    from valued
),

spreads as (
    select
        backtest_date,
        tag_code,
        count(*) as values_in_spread,
        max(repurchase_lift) - min(repurchase_lift) as lift_spread
    from lifted
    where is_in_spread and repurchase_lift is not null
    group by backtest_date, tag_code
),

final as (
    select
        lifted.backtest_date,
        lifted.window_end,
        lifted.tag_code,
        lifted.tag_value,
        lifted.holders,
        lifted.repurchasers,
        lifted.repurchase_rate,
        lifted.net_sales_per_customer,
        lifted.base_customers,
        lifted.base_repurchase_rate,
        lifted.base_net_sales_per_customer,
        lifted.repurchase_lift,
        lifted.net_sales_lift,
        lifted.is_in_spread,
        spreads.values_in_spread,
        spreads.lift_spread,
        coalesce(
            spreads.values_in_spread >= 2 and spreads.lift_spread < params.max_lift_spread, false
        ) as is_uninformative
    from lifted
    cross join params
    left join spreads
        on lifted.backtest_date = spreads.backtest_date and lifted.tag_code = spreads.tag_code
)

select * from final
