"""ltv: predicted net sales over the next horizon_years (seed tag_thresholds, default 3) from the
BG/NBD x Gamma-Gamma model of the run, as marts.ltv_model_fits stored it for the run date (the
fit step: fitted on int_customers_ltv_summary, time in days, one year = 365 days;
undiscounted). This model only scores: it predicts with the stored parameters and horizon and
never refits, so the tags and the model card always agree. > high_min_exclusive -> high,
>= medium_min -> medium, else low; evidence = the predicted value. Customers who never
purchased are not in the summary and get no tag. The maths is crm_tags.ltv (tests/test_ltv.py);
fit_method and fit_reason are the stored fit's, and one line on stderr says them every run.

Config meta `on_degenerate_fit` (set in _ltv__models.yml from var `ltv_on_degenerate_fit`) says
what happens when the stored fit gives no prediction (method "none": every first purchase on
the run date, no positive spend, invalid input): `no_tags` (default) emits no ltv tags for that
run and prints the reason as a warning, so one unfittable model does not stop every other tag;
`error` fails the build instead.
"""

import sys

import pyarrow as pa

from crm_tags.ltv import (
    METHOD_NONE,
    LtvFitError,
    empty_ltv_table,
    model_from_fit_row,
    tags_from_model,
)


def _ltv_thresholds(thresholds) -> dict[str, float]:
    rows = thresholds.filter("tag_code = 'ltv'").project("parameter, value").fetchall()
    params = {str(parameter): float(value) for parameter, value in rows}
    missing = {"high_min_exclusive", "medium_min"} - params.keys()
    if missing:
        raise RuntimeError(
            f"tag_ltv: seed tag_thresholds has no ltv row(s) for {', '.join(sorted(missing))}"
        )
    return params


def _stored_fit(fits, as_of) -> dict:
    """The ltv_model_fits row of the run date, as a dict."""
    relation = fits.filter(f"as_of_date = DATE '{as_of.isoformat()}'")
    columns = relation.columns
    rows = relation.fetchall()
    if len(rows) != 1:
        raise RuntimeError(
            f"tag_ltv: marts.ltv_model_fits has {len(rows)} rows for the run date {as_of} "
            "(expected exactly one: build ltv_model_fits before tag_ltv)"
        )
    return dict(zip(columns, rows[0], strict=True))


def model(dbt, session):
    dbt.config(materialized="table")
    meta = dbt.config.get("meta") or {}
    on_degenerate_fit = str(meta.get("on_degenerate_fit") or "no_tags").strip().lower()
    if on_degenerate_fit not in ("error", "no_tags"):
        raise RuntimeError(
            f"tag_ltv: on_degenerate_fit must be 'error' or 'no_tags', got '{on_degenerate_fit}'"
        )
    params = _ltv_thresholds(dbt.ref("tag_thresholds"))
    as_of = dbt.ref("int_ltv_run").project("as_of_date").fetchone()[0]
    fit = _stored_fit(dbt.ref("ltv_model_fits"), as_of)
    tags, failure = empty_ltv_table(), None
    if fit["method"] == METHOD_NONE:  # no customers is no failure: nobody to tag
        failure = fit["reason"] if fit["customers"] else None
    else:
        summary = dbt.ref("int_customers_ltv_summary").order("customer_id").arrow()
        try:
            tags = tags_from_model(summary, model_from_fit_row(fit), fit["method"],
                                   fit["reason"], fit["horizon_days"],
                                   params["high_min_exclusive"], params["medium_min"])
        except LtvFitError as exc:
            failure, tags = str(exc), empty_ltv_table()
    if failure is not None:
        if on_degenerate_fit == "error":
            raise RuntimeError(
                f"tag_ltv: no LTV prediction is possible on int_customers_ltv_summary: {failure}"
            )
        print(f"tag_ltv: WARNING: no ltv tags this run (on_degenerate_fit = no_tags): {failure}",
              file=sys.stderr)
    elif fit["method"] != METHOD_NONE:
        print(f"tag_ltv: fit_method = {fit['method']} ({fit['customers']} customers): "
              f"{fit['reason']}", file=sys.stderr)
    return tags.append_column("as_of_date", pa.array([as_of] * tags.num_rows, type=pa.date32()))
