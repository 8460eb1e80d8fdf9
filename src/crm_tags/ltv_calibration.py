"""`crm-tags ltv-calibration`: the LTV model's hold-out check as a table (Fader, Hardie & Lee
2005, figure 4): customers grouped by their repeat purchases in the calibration period (0 .. 7+),
the purchases the model predicted for them in the hold-out period, and what they did.

Three sources:
  --cdnow                  the CDNOW sample's transaction log (from the PyPI package lifetimes),
                           fitted on its first 39 weeks and checked on the next 39, in weeks;
  TRANSACTIONS --cut-date D --end-date E
                           a CSV transaction log (customer_id, order_date, net_sales);
  --warehouse PATH [--as-of D]
                           marts.ltv_calibration of a warehouse (the run date's rows; default
                           the latest run date).
The maths is crm_tags.ltv (calibrate, calibration_from_transactions).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from crm_tags import ltv

COLUMNS = ("frequency", "customers", "predicted", "actual", "predicted/customer",
           "actual/customer", "relative_error")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("transactions", nargs="?", metavar="TRANSACTIONS",
                        help="CSV with customer_id, order_date, net_sales (one row per purchase)")
    parser.add_argument("--cdnow", action="store_true",
                        help="the CDNOW sample of the BG/NBD paper (cut 1997-09-30, hold-out to "
                             "1998-06-30, weeks)")
    parser.add_argument("--cut-date", help="last day of the calibration period (YYYY-MM-DD)")
    parser.add_argument("--end-date", help="last day of the hold-out period (YYYY-MM-DD)")
    parser.add_argument("--weeks", action="store_true",
                        help="fit in weeks (alpha per week, as the CDNOW papers); default days")
    parser.add_argument("--thresholds", metavar="CSV", default=None,
                        help="tag_thresholds CSV whose ltv rows decide when maximum likelihood "
                             "is trusted (default: the project's seed)")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="print marts.ltv_calibration of this warehouse instead of fitting")
    parser.add_argument("--as-of", default=None,
                        help="with --warehouse: the run date (default: the latest one)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _table(rows: list[list[Any]]) -> str:
    cells = [list(COLUMNS)] + [["" if v is None else _cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True))
                     for row in cells)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def calibration_report(calibration: ltv.Calibration) -> dict[str, Any]:
    """A Calibration as JSON-ready data: the fit and one entry per bucket."""
    buckets = [{
        "frequency": b.label, "customers": b.customers,
        "predicted_purchases": b.predicted_purchases, "actual_purchases": b.actual_purchases,
        "predicted_per_customer": ltv._finite_or_none(b.predicted_per_customer),
        "actual_per_customer": ltv._finite_or_none(b.actual_per_customer),
        "relative_error": ltv._finite_or_none(b.relative_error),
        "predicted_net_sales": b.predicted_net_sales, "actual_net_sales": b.actual_net_sales,
    } for b in calibration.buckets]
    return {"holdout": calibration.holdout, "fit": calibration.fit.as_dict(), "buckets": buckets,
            "predicted_purchases": calibration.predicted_purchases,
            "actual_purchases": calibration.actual_purchases}


def _print_calibration(calibration: ltv.Calibration, title: str, unit: str) -> int:
    fit = calibration.fit
    print(title)
    if fit.method == ltv.METHOD_NONE:
        print(f"no model on the calibration period: {fit.reason}", file=sys.stderr)
        return 2
    bg, gg = fit.bgnbd.params, fit.gamma_gamma.params
    print(f"fit: {fit.method} on {fit.customers} customers ({fit.repeat_buyers} repeat buyers); "
          f"BG/NBD r = {bg.r:.3f}, alpha = {bg.alpha:.3f} ({unit}s), a = {bg.a:.3f}, "
          f"b = {bg.b:.3f}, LL = {bg.log_likelihood:.1f}; Gamma-Gamma p = {gg.p:.2f}, "
          f"q = {gg.q:.2f}, gamma = {gg.gamma:.2f}")
    rows = [[b.label, b.customers, b.predicted_purchases, int(b.actual_purchases),
             b.predicted_per_customer, b.actual_per_customer, b.relative_error]
            for b in calibration.buckets]
    total_customers = sum(b.customers for b in calibration.buckets)
    rows.append(["total", total_customers, calibration.predicted_purchases,
                 int(calibration.actual_purchases),
                 calibration.predicted_purchases / total_customers,
                 calibration.actual_purchases / total_customers,
                 calibration.predicted_purchases / calibration.actual_purchases - 1
                 if calibration.actual_purchases else math.nan])
    print(f"hold-out purchases (purchase days) in {calibration.holdout:g} {unit}s, by repeat "
          "purchases in the calibration period:")
    print(_table(rows))
    return 0


def _from_warehouse(args: argparse.Namespace) -> int:
    import duckdb

    if not args.warehouse.exists():
        print(f"crm-tags ltv-calibration: error: no warehouse at {args.warehouse}",
              file=sys.stderr)
        return 2
    with duckdb.connect(str(args.warehouse), read_only=True) as con:
        try:
            date = args.as_of or con.sql(
                "select max(as_of_date) from marts.ltv_calibration").fetchone()[0]
            frame = con.execute(
                "select * from marts.ltv_calibration where as_of_date = cast(? as date) "
                "order by bucket_order", [str(date)]).df()
        except duckdb.CatalogException:
            print(f"crm-tags ltv-calibration: error: {args.warehouse} has no "
                  "marts.ltv_calibration (build the ltv models first)", file=sys.stderr)
            return 2
    if frame.empty:
        print(f"crm-tags ltv-calibration: error: marts.ltv_calibration has no rows for run "
              f"date {date}", file=sys.stderr)
        return 2
    if args.json:
        print(frame.to_json(orient="records", date_format="iso"))
        return 0
    first = frame.iloc[0]
    print(f"{args.warehouse}: run date {first['as_of_date'].date()}, calibration up to "
          f"{first['cut_date'].date()}, hold-out {first['holdout_days']} days")
    if first["status"] != ltv.CALIBRATION_DONE:
        print(f"skipped: {first['status_reason']}")
        return 0
    print(f"fit: {first['fit_method']}: {first['fit_reason']}")
    rows = [[r.frequency_bucket, int(r.customers), r.predicted_purchases,
             int(r.actual_purchases), r.predicted_per_customer, r.actual_per_customer,
             r.relative_error] for r in frame.itertuples()]
    print(_table(rows))
    print("verdicts: " + ", ".join(f"{r.frequency_bucket} {r.verdict}" for r in frame.itertuples()))
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        if args.warehouse is not None:
            return _from_warehouse(args)
        policy = ltv.LtvFitPolicy.from_seed(args.thresholds)
        if args.cdnow:
            transactions = ltv.read_cdnow_transactions()
            cut, end, unit_days = ltv.CDNOW_CUT_DATE, ltv.CDNOW_END_DATE, 7.0
            title = (f"CDNOW sample (Fader, Hardie & Lee 2005): calibration up to {cut}, "
                     f"hold-out to {end}")
        else:
            if not (args.transactions and args.cut_date and args.end_date):
                print("crm-tags ltv-calibration: error: give --cdnow, --warehouse PATH, or "
                      "TRANSACTIONS with --cut-date and --end-date", file=sys.stderr)
                return 2
            import pandas as pd

            try:
                transactions = pd.read_csv(args.transactions)
            except (OSError, ValueError) as exc:
                raise ltv.LtvFitError(f"cannot read {args.transactions}: {exc}") from None
            missing = {"customer_id", "order_date", "net_sales"} - set(transactions.columns)
            if missing:
                raise ltv.LtvFitError(f"{args.transactions}: missing column(s) "
                                      f"{', '.join(sorted(missing))}")
            cut, end, unit_days = args.cut_date, args.end_date, 7.0 if args.weeks else 1.0
            title = f"{args.transactions}: calibration up to {cut}, hold-out to {end}"
        calibration = ltv.calibration_from_transactions(
            transactions, cut, end, time_unit_days=unit_days, policy=policy)
    except ltv.LtvFitError as exc:
        print(f"crm-tags ltv-calibration: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(calibration_report(calibration), allow_nan=False))
        return 0 if calibration.fit.method != ltv.METHOD_NONE else 2
    return _print_calibration(calibration, title, "week" if unit_days == 7.0 else "day")
