"""marts.ltv_model_fits: the LTV model of every run, one row per run date - the fit step of the
ltv tag. It fits BG/NBD x Gamma-Gamma on int_customers_ltv_summary (crm_tags.ltv.fit_for_tag:
maximum likelihood where the seed's mle_* rows trust it, else regularised) and stores the
record (crm_tags.ltv.fit_row); tag_ltv scores the customers with the stored parameters of its
run date and never refits.

Incremental history: a run replaces the row of its own run date (delete+insert on as_of_date)
and keeps every other date. full_refresh=False: `dbt build --full-refresh` keeps the history too
(past fits cannot be recomputed from today's data: the orders change); to start it over, drop
the table. A run whose data give no model (method "none": nobody purchased, every first
purchase on the run date, no positive spend, or invalid input) is recorded too, with the
reason and no parameters.
"""

from crm_tags.ltv import (
    DAYS_PER_YEAR,
    METHOD_NONE,
    LtvFit,
    LtvFitError,
    LtvFitPolicy,
    fit_for_tag,
    fit_row,
    fit_rows_table,
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
    if "horizon_years" not in params:
        raise RuntimeError("ltv_model_fits: seed tag_thresholds has no ltv row for horizon_years")
    try:
        policy = LtvFitPolicy.from_thresholds(params)
    except LtvFitError as exc:
        raise RuntimeError(f"ltv_model_fits: {exc}") from exc
    as_of = dbt.ref("int_ltv_run").project("as_of_date").fetchone()[0]
    # In key order: the fit sums floats, and the same customers in another physical order (an
    # incremental warehouse vs a full rebuild) could move a parameter in its last digits.
    summary = dbt.ref("int_customers_ltv_summary").order("customer_id").arrow().read_all()
    try:
        fit = fit_for_tag(summary, policy)
    except LtvFitError as exc:  # invalid input: recorded, and tag_ltv says it
        fit = LtvFit(METHOD_NONE, f"invalid input: {exc}", summary.num_rows, 0, policy)
    return fit_rows_table([fit_row(fit, as_of, params["horizon_years"] * DAYS_PER_YEAR)])
