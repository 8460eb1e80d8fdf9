-- The LTV hold-out check's data (Fader, Hardie & Lee 2005): per customer who purchased on or
-- before the cut date (int_ltv_run), the summary the model is fitted on as of the cut
-- (macros/ltv_summary.sql, days), and what the customer did after it up to the run date:
-- purchase days (occasions, as the model counts them) and their net sales.
with

run as (
    select * from {{ ref('int_ltv_run') }}
),

calibration as (
    {{ ltv_customer_summary('(select calibration_cut_date from ' ~ ref('int_ltv_run') ~ ')') }}
),

holdout as (
    select
        purchases.customer_id,
        count(*) as holdout_purchase_days,
        sum(purchases.net_sales) as holdout_net_sales
    from {{ ref('int_customer_daily_purchases') }} as purchases
    cross join run
    where purchases.order_date > run.calibration_cut_date
        and purchases.order_date <= run.as_of_date
    group by purchases.customer_id
)

select
    calibration.customer_id,
    calibration.first_purchase_date,
    calibration.last_purchase_date,
    calibration.frequency,
    calibration.recency,
    calibration.t,
    calibration.monetary_value,
    calibration.first_purchase_value,
    run.calibration_cut_date,
    cast(coalesce(holdout.holdout_purchase_days, 0) as integer) as holdout_purchase_days,
    cast(coalesce(holdout.holdout_net_sales, 0) as {{ type_double() }}) as holdout_net_sales,
    run.as_of_date
from calibration
cross join run
left join holdout on calibration.customer_id = holdout.customer_id
