"""marts.ltv_calibration: the LTV model's hold-out check of every run (Fader, Hardie & Lee 2005,
figure 4), one row per run date and calibration-frequency bucket 0, 1, ..., 6, 7+.

The model is fitted as the tag's is (same trust policy) on the history up to the cut date
(int_ltv_run: calibration_holdout_days before the run date), predicts each customer's purchase
days and net sales in the hold-out period after it, and is set against what the customers did
there (int_ltv_calibration_summary); crm_tags.ltv.warehouse_calibration. Skipped, with the
reason on every bucket row, when the history before the cut is shorter than
calibration_min_history_days or the calibration period gives no model.

Incremental history like ltv_model_fits: a run replaces its own run date's rows, other dates
are kept, and --full-refresh keeps them (full_refresh=False). Built with the ltv tag
(meta refresh_with_tag: the Dagster cadence job that rebuilds tag_ltv rebuilds this).
"""

from crm_tags.ltv import (
    CalibrationPolicy,
    LtvFitError,
    LtvFitPolicy,
    warehouse_calibration,
)


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        incremental_strategy="delete+insert",
        unique_key="as_of_date",
        full_refresh=False,
        on_schema_change="append_new_columns",
    )
    rows = dbt.ref("tag_thresholds").filter("tag_code = 'ltv'").project("parameter, value")
    params = {str(parameter): float(value) for parameter, value in rows.fetchall()}
    try:
        fit_policy = LtvFitPolicy.from_thresholds(params)
        policy = CalibrationPolicy.from_thresholds(params)
    except LtvFitError as exc:
        raise RuntimeError(f"ltv_calibration: {exc}") from exc
    as_of, cut = dbt.ref("int_ltv_run").project("as_of_date, calibration_cut_date").fetchone()
    summary = dbt.ref("int_ltv_calibration_summary").order("customer_id").arrow()
    return warehouse_calibration(summary, as_of, cut, fit_policy, policy)
