{#
    The per-customer purchase summary the LTV model (BG/NBD x Gamma-Gamma) is fitted on, as of
    the date `as_of` (a SQL date expression), from int_customer_daily_purchases. Time unit: days.
    A purchase occasion is a distinct purchase day (several purchases on one day are one
    occasion, their net sales summed), the usual unit for BG/NBD.
      frequency      = purchase days - 1 (repeat purchases)
      recency        = last purchase day - first purchase day, in days (0 when frequency = 0)
      t              = as_of - first purchase day, in days (the BG/NBD "T")
      monetary_value = mean net sales of the repeat purchase days (0 when frequency = 0)
      first_purchase_value = net sales of the first purchase day (customers without a repeat
                       purchase are valued by it)
    Only customers with a purchase on or before `as_of` appear. One home for both uses: the
    tag's summary as of the run date (int_customers_ltv_summary) and the hold-out check's as
    of its cut date (int_ltv_calibration_summary).
#}
{% macro ltv_customer_summary(as_of) %}
with

purchase_days as (
    select
        customer_id,
        order_date as purchase_date,
        net_sales
    from {{ ref('int_customer_daily_purchases') }}
    where order_date <= {{ as_of }}
),

purchase_days_with_first as (
    select
        *,
        min(purchase_date) over (partition by customer_id) as first_purchase_date
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
        ) as repeat_net_sales
    from purchase_days_with_first
    group by customer_id, first_purchase_date
)

select
    customer_id,
    first_purchase_date,
    last_purchase_date,
    purchase_days,
    cast(purchase_days - 1 as integer) as frequency,
    cast({{ dbt.datediff('first_purchase_date', 'last_purchase_date', 'day') }} as integer) as recency,
    cast({{ dbt.datediff('first_purchase_date', as_of, 'day') }} as integer) as t,
    case
        when purchase_days > 1 then cast(repeat_net_sales as {{ type_double() }}) / (purchase_days - 1)
        else 0
    end as monetary_value,
    cast(first_day_net_sales as {{ type_double() }}) as first_purchase_value,
    cast(repeat_net_sales as decimal(18, 2)) as repeat_net_sales,
    {{ as_of }} as as_of_date
from customer_days
{% endmacro %}
