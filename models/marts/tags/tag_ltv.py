"""ltv: predicted net sales over the next horizon_years (seed tag_thresholds, default 3) from a
BG/NBD x Gamma-Gamma model fitted by maximum likelihood on int_customers_ltv_summary (time in
days; one year = 365 days; undiscounted). > high_min_exclusive -> high, >= medium_min -> medium,
else low; evidence = the predicted value. Customers who never purchased are not in the summary
and get no tag. The maths is crm_tags.ltv.score_ltv (covered by tests/test_ltv.py); a summary the
model cannot be fitted on (one customer, no repeat buyers, ...) yields no ltv tags, with the reason.

Config meta `on_degenerate_fit` (set in _ltv__models.yml from var `ltv_on_degenerate_fit`):
`no_tags` (default) emits no ltv tags for that run and prints the reason as a warning, so one
unfittable model (a tiny landing zone, a first week of data) does not stop every other tag;
`error` fails the build instead.
"""

import sys

import pyarrow as pa

from crm_tags.ltv import DAYS_PER_YEAR, LtvFitError, empty_ltv_table, score_ltv


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
    # In key order: the fit sums floats, and the same customers in another physical order (an
    # incremental warehouse vs a full rebuild) could move a prediction by a cent.
    summary_relation = dbt.ref("int_customers_ltv_summary")
    # the run date the summary (and so this tag) was computed as of, as every tag model records
    as_of = summary_relation.aggregate("max(as_of_date)").fetchone()[0]
    summary = summary_relation.order("customer_id").arrow()
    try:
        tags = score_ltv(
            summary,
            horizon_days=params["horizon_years"] * DAYS_PER_YEAR,
            high_min_exclusive=params["high_min_exclusive"],
            medium_min=params["medium_min"],
        )
    except LtvFitError as exc:
        if on_degenerate_fit == "error":
            raise RuntimeError(
                f"tag_ltv: the LTV model cannot be fitted on int_customers_ltv_summary: {exc}"
            ) from exc
        print(f"tag_ltv: WARNING: no ltv tags this run (on_degenerate_fit = no_tags): {exc}",
              file=sys.stderr)
        tags = empty_ltv_table()
    return tags.append_column("as_of_date", pa.array([as_of] * tags.num_rows, type=pa.date32()))
