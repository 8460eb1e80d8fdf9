-- Per-customer summary the LTV model (BG/NBD x Gamma-Gamma, tag_ltv) is fitted on, as of the
-- run date. Time unit: days. A purchase occasion is a distinct purchase day (several purchases
-- on one day are one occasion, their net sales summed), the usual unit for BG/NBD.
--   frequency      = purchase days - 1 (repeat purchases)
--   recency        = last purchase day - first purchase day, in days (0 when frequency = 0)
--   t              = as-of date - first purchase day, in days (the BG/NBD "T")
--   monetary_value = mean net sales of the repeat purchase days (0 when frequency = 0)
--   first_purchase_value = net sales of the first purchase day (tag_ltv values customers
--                    without a repeat purchase by it)
-- Only customers with at least one purchase appear (never purchased = no row, no ltv tag).
with

purchase_days as (
    select
        customer_id,
        order_date as purchase_date,
        net_sales,
    from {{ ref('int_customer_daily_purchases') }}
    where order_date <= {{ as_of_date() }}
),

purchase_days_with_first as (
    select
        *,
        min(purchase_date) over (partition by customer_id) as first_purchase_date,
    from purchase_days
),

customer_days as (
    select
        customer_id,
        first_purchase_date,
        max(purchase_date) as last_purchase_date,
        count(*) as purchase_days,
        sum(net_sales) filter (where purchase_date = first_purchase_date) as first_day_net_sales,
        coalesce(
            sum(net_sales) filter (where purchase_date > first_purchase_date), 0
        ) as repeat_net_sales,
    from purchase_days_with_first
    group by customer_id, first_purchase_date
),

final as (
    select
        customer_id,
        first_purchase_date,
        last_purchase_date,
        purchase_days,
        cast(purchase_days - 1 as integer) as frequency,
        cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} as integer) as recency,
        cast({{ dbt.datediff('first_purchase_date', as_of_date(), 'day') }} as integer) as t,
        case
            when purchase_days > 1 then cast(repeat_net_sales as double) / (purchase_days - 1)
            else 0
        end as monetary_value,
        cast(first_day_net_sales as double) as first_purchase_value,
        cast(repeat_net_sales as decimal(18, 2)) as repeat_net_sales,
        {{ as_of_date() }} as as_of_date,
    from customer_days
)

select * from final
