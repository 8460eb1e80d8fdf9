-- The LTV model card's run: the run date and the hold-out check's cut date, one row, so the
-- Python models (ltv_model_fits, tag_ltv, ltv_calibration) know the run date even when nobody
-- has purchased, and the cut date has one home. cut = run date - calibration_holdout_days.
with

holdout as (
    select cast({{ tag_param('ltv', 'calibration_holdout_days') }} as integer) as calibration_holdout_days
)

select
    {{ as_of_date() }} as as_of_date,
    calibration_holdout_days,
    cast({{ dbt.dateadd('day', '-calibration_holdout_days', as_of_date()) }} as date) as calibration_cut_date
from holdout
