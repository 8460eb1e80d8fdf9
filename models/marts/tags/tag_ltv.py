"""ltv: predicted net sales over the next horizon_years (seed tag_thresholds, default 3) from a
BG/NBD x Gamma-Gamma model fitted on int_customers_ltv_summary at every build (time in days; one
year = 365 days; undiscounted). > high_min_exclusive -> high, >= medium_min -> medium, else low;
evidence = the predicted value. Customers who never purchased are not in the summary and get no
tag. The maths is crm_tags.ltv.ltv_tag_run (covered by tests/test_ltv.py): maximum likelihood
where the seed's mle_* rows trust it, else a regularised (MAP) fit; fit_method and fit_reason
record which and why, and one line on stderr says it for every run.

Config meta `on_degenerate_fit` (set in _ltv__models.yml from var `ltv_on_degenerate_fit`) says
what happens when not even the regularised fit can give a prediction (every first purchase on
the run date, no positive spend) or the summary is invalid: `no_tags` (default) emits no ltv
tags for that run and prints the reason as a warning, so one unfittable model does not stop
every other tag; `error` fails the build instead.
"""

import sys

import pyarrow as pa

from crm_tags.ltv import (
    DAYS_PER_YEAR,
    METHOD_NONE,
    LtvFitError,
    LtvFitPolicy,
    empty_ltv_table,
    ltv_tag_run,
)


def _ltv_thresholds(thresholds) -> dict[str, float]:
    rows = thresholds.filter("tag_code = 'ltv'").project("parameter, value").fetchall()
    params = {str(parameter): float(value) for parameter, value in rows}
    missing = {"horizon_years", "high_min_exclusive", "medium_min"} - params.keys()
    if missing:
        raise RuntimeError(
            f"tag_ltv: seed tag_thresholds has no ltv row(s) for {', '.join(sorted(missing))}"
        )
    return params


def model(dbt, session):
    dbt.config(materialized="table")
    meta = dbt.config.get("meta") or {}
    on_degenerate_fit = str(meta.get("on_degenerate_fit") or "no_tags").strip().lower()
    if on_degenerate_fit not in ("error", "no_tags"):
        raise RuntimeError(
            f"tag_ltv: on_degenerate_fit must be 'error' or 'no_tags', got '{on_degenerate_fit}'"
        )
    params = _ltv_thresholds(dbt.ref("tag_thresholds"))
    try:
        policy = LtvFitPolicy.from_thresholds(params)
    except LtvFitError as exc:
        raise RuntimeError(f"tag_ltv: {exc}") from exc
    # In key order: the fit sums floats, and the same customers in another physical order (an
    # incremental warehouse vs a full rebuild) could move a prediction by a cent.
    summary_relation = dbt.ref("int_customers_ltv_summary")
    # the run date the summary (and so this tag) was computed as of, as every tag model records
    as_of = summary_relation.aggregate("max(as_of_date)").fetchone()[0]
    summary = summary_relation.order("customer_id").arrow()
    try:
        run = ltv_tag_run(
            summary,
            horizon_days=params["horizon_years"] * DAYS_PER_YEAR,
            high_min_exclusive=params["high_min_exclusive"],
            medium_min=params["medium_min"],
            policy=policy,
        )
        failure = run.fit.reason if run.fit.method == METHOD_NONE and run.fit.customers else None
        tags = run.tags
    except LtvFitError as exc:
        failure, tags = str(exc), empty_ltv_table()
    if failure is not None:
        if on_degenerate_fit == "error":
            raise RuntimeError(
                f"tag_ltv: no LTV prediction is possible on int_customers_ltv_summary: {failure}"
            )
        print(f"tag_ltv: WARNING: no ltv tags this run (on_degenerate_fit = no_tags): {failure}",
              file=sys.stderr)
    else:
        print(f"tag_ltv: fit_method = {run.fit.method} ({run.fit.customers} customers): "
              f"{run.fit.reason}", file=sys.stderr)
    return tags.append_column("as_of_date", pa.array([as_of] * tags.num_rows, type=pa.date32()))
