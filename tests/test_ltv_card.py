"""The LTV model card: every fit stored (marts.ltv_model_fits, one row per run date, what
tag_ltv scores with) and the hold-out check of Fader, Hardie & Lee (2005, figure 4) per
calibration-frequency bucket: on simulated customers, on the CDNOW transaction log of the paper
(and the shared CDNOW summary), on a generated landing zone through dbt, with a planted
mismatch, and from the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from test_ltv import (
    CDNOW_CSV,
    SMALL_SHOP,
    TRUE_BGNBD,
    TRUE_GG,
    UNTRUSTED_SMALL_SHOP_MLE,
    _summary_table,
    simulate_bgnbd,
    simulate_spend,
    skip_without_cdnow,
)

from crm_tags import ltv
from crm_tags.cli import main as cli_main

LAX = ltv.LtvFitPolicy(mle_min_customers=2, mle_min_repeat_buyers=2, mle_max_log_se=1.0,
                       prior_sd_log=1.0)
CHECK = ltv.CalibrationPolicy(calibration_holdout_days=365, calibration_min_history_days=365,
                              calibration_max_relative_error=0.3,
                              calibration_min_bucket_customers=50)


# --------------------------------------------------------------------------------------------
# The stored fit row
# --------------------------------------------------------------------------------------------


def test_fit_row_holds_the_fit_and_gives_back_its_model():
    summary = _summary_table(SMALL_SHOP)
    fit = ltv.fit_ltv(summary, LAX, first_purchase_value=summary["first_purchase_value"])
    row = ltv.fit_row(fit, "2024-06-30", 1095.0)
    assert list(row) == ltv.fit_row_schema().names
    assert (row["method"], row["reason"], row["customers"], row["repeat_buyers"]) == (
        "regularised", fit.reason, 35, 11)
    assert row["horizon_days"] == 1095.0
    for name, value in {**fit.bgnbd.params.as_dict(), **fit.gamma_gamma.params.as_dict()}.items():
        assert row[name] == value, name  # exactly: the tags are scored from these
    assert row["bgnbd_method"] == row["gamma_gamma_method"] == "regularised"
    assert row["bgnbd_log_likelihood"] == fit.bgnbd.log_likelihood
    assert row["se_log_alpha"] == fit.bgnbd.log_standard_errors["alpha"]
    assert row["bgnbd_converged"] is True and row["bgnbd_at_bound"] == ""
    # both maximum-likelihood attempts were rejected: recorded, with why
    assert UNTRUSTED_SMALL_SHOP_MLE.search(row["rejected_bgnbd_reason"])
    assert row["rejected_bgnbd_converged"] is fit.rejected[0].converged
    assert "standard error of log gamma" in row["rejected_gamma_gamma_reason"]
    assert row["rejected_gamma"] == fit.rejected[1].params.gamma
    assert row["mle_min_customers"] == 2 and row["prior_sd_log"] == 1.0
    assert json.loads(row["fit_record"]) == json.loads(json.dumps(fit.as_dict()))
    assert ltv.model_from_fit_row(row) == ltv.LtvModel(
        ltv.BgNbdParams(*(fit.bgnbd.params.as_dict().values())),
        ltv.GammaGammaParams(*(fit.gamma_gamma.params.as_dict().values())))
    table = ltv.fit_rows_table([row])
    assert table.schema == ltv.fit_row_schema() and table.num_rows == 1


def test_tags_from_the_stored_model_equal_the_tags_of_a_fit_and_score():
    summary = _summary_table(SMALL_SHOP)
    run = ltv.ltv_tag_run(summary, 1095, 100_000, 50_000)
    row = ltv.fit_row(ltv.fit_for_tag(summary), "2024-06-30", 1095.0)
    stored = ltv.tags_from_model(summary, ltv.model_from_fit_row(row), row["method"],
                                 row["reason"], row["horizon_days"], 100_000, 50_000)
    assert stored.equals(run.tags)


def test_a_run_without_a_model_is_recorded_with_its_reason():
    summary = _summary_table([("a", 0, 0, 0, 0.0, 10.0), ("b", 0, 0, 0, 0.0, 20.0)])
    fit = ltv.fit_for_tag(summary)
    row = ltv.fit_row(fit, "2024-06-30", 1095.0)
    assert row["method"] == "none" and "run date" in row["reason"] and row["customers"] == 2
    assert row["r"] is None and row["rejected_bgnbd_reason"] is None
    with pytest.raises(ltv.LtvFitError, match="the stored fit has no model"):
        ltv.model_from_fit_row(row)
    assert ltv.fit_for_tag(summary.iloc[:0]).reason == "no customers: nobody has purchased yet"


# --------------------------------------------------------------------------------------------
# The hold-out check on simulated customers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated_holdout():
    """15,000 BG/NBD x Gamma-Gamma customers in days, a calibration period of 30-730 days and
    the 365 days after it."""
    rng = np.random.default_rng(5)
    n = 15_000
    x, t_x, T, actual = simulate_bgnbd(rng, n, **TRUE_BGNBD, T=rng.integers(30, 731, n),
                                       holdout=365.0)
    t_x = np.minimum(np.ceil(t_x), T)
    monetary = simulate_spend(rng, x, **TRUE_GG)
    first = simulate_spend(rng, np.ones(n), **TRUE_GG)
    # each hold-out purchase day spends like the customer's mean (noise is not the point here)
    summary = pd.DataFrame({"customer_id": [f"C{i:05d}" for i in range(n)], "frequency": x,
                            "recency": t_x, "T": T, "monetary_value": monetary,
                            "first_purchase_value": first, "holdout_purchase_days": actual,
                            "holdout_net_sales": actual * np.where(x > 0, monetary, first)})
    return summary


def test_calibration_predicts_each_frequency_bucket(simulated_holdout):
    s = simulated_holdout
    calibration = ltv.calibrate(s, s["holdout_purchase_days"], s["holdout_net_sales"], 365.0,
                                first_purchase_value=s["first_purchase_value"])
    assert calibration.fit.method == "mle"
    assert [b.label for b in calibration.buckets] == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert sum(b.customers for b in calibration.buckets) == len(s)
    assert calibration.buckets[7].customers == int((s["frequency"] >= 7).sum())
    assert calibration.actual_purchases == s["holdout_purchase_days"].sum()
    assert calibration.predicted_purchases == pytest.approx(calibration.actual_purchases,
                                                            rel=0.03)
    for bucket in calibration.buckets:
        # sampling noise of a few hundred customers' purchases: well inside 15%
        assert bucket.customers > 300
        assert abs(bucket.relative_error) < 0.15, (bucket.label, bucket.relative_error)
        assert bucket.verdict(CHECK) == "close"
    predicted_value = sum(b.predicted_net_sales for b in calibration.buckets)
    actual_value = sum(b.actual_net_sales for b in calibration.buckets)
    assert predicted_value == pytest.approx(actual_value, rel=0.1)


def test_calibration_detects_a_planted_mismatch(simulated_holdout):
    s = simulated_holdout.copy()
    # customers with 2 calibration purchases come back twice as often as the model can know
    planted = s["frequency"] == 2
    s.loc[planted, "holdout_purchase_days"] *= 2
    calibration = ltv.calibrate(s, s["holdout_purchase_days"], s["holdout_net_sales"], 365.0,
                                first_purchase_value=s["first_purchase_value"])
    verdicts = {b.label: b.verdict(CHECK) for b in calibration.buckets}
    assert verdicts == {"0": "close", "1": "close", "2": "off", "3": "close", "4": "close",
                        "5": "close", "6": "close", "7+": "close"}
    assert calibration.buckets[2].relative_error < -0.4  # predicted half of what happened


def test_bucket_verdicts_follow_the_policy():
    bucket = ltv.CalibrationBucket(3, 60, 80.0, 100.0, 0.0, 0.0)
    assert bucket.relative_error == pytest.approx(-0.2)
    assert bucket.verdict(CHECK) == "close"  # 20% under, 30% allowed
    strict = ltv.CalibrationPolicy(365, 365, 0.1, 50)
    assert bucket.verdict(strict) == "off"
    few = ltv.CalibrationPolicy(365, 365, 0.1, 61)
    assert bucket.verdict(few) == "too_few_customers"
    nothing = ltv.CalibrationBucket(6, 60, 5.0, 0.0, 0.0, 0.0)
    assert math.isnan(nothing.relative_error) and nothing.verdict(CHECK) == "off"


def test_warehouse_calibration_rows_and_skips(simulated_holdout):
    s = simulated_holdout.rename(columns={"T": "t"})
    table = ltv.warehouse_calibration(s, "2024-12-31", "2024-01-01", LAX, CHECK)
    assert table.schema == ltv.calibration_row_schema()
    rows = table.to_pylist()
    assert [r["bucket_order"] for r in rows] == list(range(8))
    assert {r["status"] for r in rows} == {"done"} and {r["verdict"] for r in rows} == {"close"}
    assert sum(r["customers"] for r in rows) == len(s)
    assert all(r["predicted_per_customer"] == r["predicted_purchases"] / r["customers"]
               for r in rows)

    # a history of 200 days before the cut: too short to fit on, skipped with the reason
    short = s[s["t"] <= 200]
    rows = ltv.warehouse_calibration(short, "2024-12-31", "2024-01-01", LAX, CHECK).to_pylist()
    assert len(rows) == 8 and {r["status"] for r in rows} == {"skipped"}
    assert {r["verdict"] for r in rows} == {"skipped"}
    assert all(r["customers"] is None and r["predicted_purchases"] is None for r in rows)
    assert rows[0]["status_reason"].startswith(
        "the order history before the cut date 2024-01-01 spans only 200 days "
        "(calibration_min_history_days = 365")
    # nobody had purchased by the cut
    rows = ltv.warehouse_calibration(s.iloc[:0], "2024-12-31", "2024-01-01", LAX,
                                     CHECK).to_pylist()
    assert rows[0]["status"] == "skipped" and rows[0]["status_reason"].startswith(
        "no customer had purchased by the cut date 2024-01-01")
    # invalid data is reported, not raised: a check does not stop the build
    bad = s.copy()
    bad.loc[bad.index[0], "recency"] = bad.loc[bad.index[0], "t"] + 5
    rows = ltv.warehouse_calibration(bad, "2024-12-31", "2024-01-01", LAX, CHECK).to_pylist()
    assert "invalid calibration data" in rows[0]["status_reason"]
    assert "recency > T" in rows[0]["status_reason"]


def test_calibration_policy_comes_from_the_seed(tmp_path):
    assert ltv.CalibrationPolicy.from_seed() == ltv.CalibrationPolicy(365, 365, 0.3, 50)
    with pytest.raises(ltv.LtvFitError, match="no ltv row.*calibration_min_bucket_customers"):
        ltv.CalibrationPolicy.from_thresholds({"calibration_holdout_days": 365,
                                               "calibration_min_history_days": 365,
                                               "calibration_max_relative_error": 0.3})
    with pytest.raises(ltv.LtvFitError, match="calibration_holdout_days must be a whole number"):
        ltv.CalibrationPolicy.from_thresholds({"calibration_holdout_days": 0.5,
                                               "calibration_min_history_days": 365,
                                               "calibration_max_relative_error": 0.3,
                                               "calibration_min_bucket_customers": 50})


# --------------------------------------------------------------------------------------------
# CDNOW: the paper's data
# --------------------------------------------------------------------------------------------

# The CDNOW sample, 39 weeks of calibration and 39 of hold-out (Fader, Hardie & Lee 2005), per
# calibration-period repeat purchases 0 .. 7+: customers, their hold-out purchase days (counts
# of the data), and the BG/NBD conditional expectation per customer at the published estimates
# (r 0.243, alpha 4.414, a 0.793, b 2.426), to the three decimals the rounding of those
# estimates leaves unchanged (our MLE gives the same three decimals).
CDNOW_CUSTOMERS = [1411, 439, 214, 100, 62, 38, 29, 64]
CDNOW_ACTUAL = [334, 306, 298, 156, 157, 112, 112, 407]
CDNOW_EXPECTED = [0.225, 0.523, 1.044, 1.520, 2.164, 2.654, 3.504, 6.157]
PUBLISHED_BGNBD = ltv.BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426)


@pytest.fixture(scope="module")
def cdnow_calibration():
    transactions = ltv.read_cdnow_transactions()  # fails (never skips) without lifetimes
    return transactions, ltv.calibration_from_transactions(
        transactions, ltv.CDNOW_CUT_DATE, ltv.CDNOW_END_DATE, time_unit_days=7)


def test_cdnow_transaction_log_is_the_papers_data(cdnow_calibration):
    transactions, calibration = cdnow_calibration
    assert (len(transactions), transactions["customer_id"].nunique()) == (6919, 2357)
    assert transactions["order_date"].min() == pd.Timestamp("1997-01-01")
    assert transactions["order_date"].max() == pd.Timestamp("1998-06-30")
    # fitted on the first 39 weeks: the published estimates (FHL 2005; Gamma-Gamma: Fader &
    # Hardie 2013), gamma to its published 15.44 here (the spend is not rounded to cents)
    fit = calibration.fit
    assert fit.method == "mle" and (fit.customers, fit.repeat_buyers) == (2357, 946)
    bg, gg = fit.bgnbd.params, fit.gamma_gamma.params
    assert (round(bg.r, 3), round(bg.alpha, 3), round(bg.a, 3), round(bg.b, 3)) == (
        0.243, 4.414, 0.793, 2.426)
    assert round(bg.log_likelihood, 1) == -9582.4
    assert (round(gg.p, 2), round(gg.q, 2), round(gg.gamma, 2)) == (6.25, 3.74, 15.44)
    assert calibration.holdout == 39.0


def test_cdnow_summary_from_the_log_is_the_shared_summary(cdnow_calibration):
    skip_without_cdnow()
    transactions, _ = cdnow_calibration
    shared = pd.read_csv(CDNOW_CSV).set_index("customer_id").sort_index()
    ours = ltv.rfm_summary_from_transactions(transactions, ltv.CDNOW_CUT_DATE).set_index(
        "customer_id").sort_index()
    assert list(ours.index) == list(shared.index)
    assert (ours["frequency"] == shared["frequency"]).all()
    np.testing.assert_array_equal(np.round(ours["recency"] / 7, 2), shared["recency"])
    np.testing.assert_array_equal(np.round(ours["T"] / 7, 2), shared["T"])
    np.testing.assert_allclose(ours["monetary_value"], shared["monetary_value"], atol=0.0051)


def test_cdnow_holdout_reproduces_the_papers_picture(cdnow_calibration):
    _, calibration = cdnow_calibration
    buckets = calibration.buckets
    assert [b.customers for b in buckets] == CDNOW_CUSTOMERS
    assert [b.actual_purchases for b in buckets] == CDNOW_ACTUAL
    assert [round(b.predicted_per_customer, 3) for b in buckets] == CDNOW_EXPECTED
    assert (round(calibration.predicted_purchases, 1), calibration.actual_purchases) == (
        1653.4, 1882)
    # the paper's own expectation, at its published (rounded) estimates, to the same digits
    transactions, _ = cdnow_calibration
    summary = ltv.rfm_summary_from_transactions(transactions, ltv.CDNOW_CUT_DATE)
    expected = ltv.bgnbd_expected_purchases(PUBLISHED_BGNBD, 39.0, summary["frequency"],
                                            summary["recency"] / 7, summary["T"] / 7)
    bucket = np.minimum(summary["frequency"].to_numpy(), 7)
    assert [round(expected[bucket == k].mean(), 3) for k in range(8)] == CDNOW_EXPECTED
    # the paper's shape: the model tracks the steep rise with calibration purchases, a little
    # under the actual everywhere (most at 1-2 repeat purchases, about a quarter)
    per_customer = [b.predicted_per_customer for b in buckets]
    assert per_customer == sorted(per_customer)
    assert all(-0.26 < b.relative_error < 0 for b in buckets)


def test_cdnow_conditional_expectation_on_the_shared_summary(cdnow_calibration):
    # from the shared calibration summary alone (no hold-out data): the same expectations
    skip_without_cdnow()
    shared = pd.read_csv(CDNOW_CSV)
    fit = ltv.fit_ltv(shared)
    expected = ltv.bgnbd_expected_purchases(fit.bgnbd.params, 39.0, shared["frequency"],
                                            shared["recency"], shared["T"])
    bucket = np.minimum(shared["frequency"].to_numpy(), 7)
    assert [int((bucket == k).sum()) for k in range(8)] == CDNOW_CUSTOMERS
    assert [round(expected[bucket == k].mean(), 3) for k in range(8)] == CDNOW_EXPECTED


def test_cli_ltv_calibration_on_cdnow(capsys):
    assert cli_main(["ltv-calibration", "--cdnow"]) == 0
    out = capsys.readouterr().out
    assert "r = 0.243, alpha = 4.414 (weeks), a = 0.793, b = 2.426, LL = -9582.4" in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["frequency",
                                                                            "customers"])
    rows = [line.split() for line in lines[header + 1:]]
    assert [r[0] for r in rows] == ["0", "1", "2", "3", "4", "5", "6", "7+", "total"]
    assert [int(r[3]) for r in rows[:8]] == CDNOW_ACTUAL
    assert [float(r[4]) for r in rows[:8]] == CDNOW_EXPECTED
    assert rows[8][1:4] == ["2357", "1653.4", "1882"]
    assert cli_main(["ltv-calibration", "--cdnow", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [b["customers"] for b in report["buckets"]] == CDNOW_CUSTOMERS


def test_cli_ltv_calibration_on_a_transaction_csv(tmp_path, capsys):
    transactions = ltv.read_cdnow_transactions()
    path = tmp_path / "transactions.csv"
    transactions.to_csv(path, index=False)
    assert cli_main(["ltv-calibration", str(path), "--cut-date", "1997-09-30", "--end-date",
                     "1998-06-30", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)  # in days: the same predictions
    assert report["holdout"] == 273.0
    assert [round(b["predicted_per_customer"], 3) for b in report["buckets"]] == CDNOW_EXPECTED
    assert round(report["fit"]["bgnbd"]["params"]["alpha"] / 7, 3) == 4.414
    assert cli_main(["ltv-calibration", str(path)]) == 2
    assert "--cut-date and --end-date" in capsys.readouterr().err
    assert cli_main(["ltv-calibration", str(path), "--cut-date", "1998-06-30", "--end-date",
                     "1997-09-30"]) == 2
    assert "must be after the cut date" in capsys.readouterr().err
    no_column = tmp_path / "no_column.csv"
    no_column.write_text("customer_id,order_date\na,2024-01-01\n")
    assert cli_main(["ltv-calibration", str(no_column), "--cut-date", "2024-01-01",
                     "--end-date", "2024-02-01"]) == 2
    assert "missing column(s) net_sales" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# In the warehouse: a generated landing zone through dbt (slow)
# --------------------------------------------------------------------------------------------

RUN_DATE, EARLIER_DATE = "2024-12-31", "2024-11-30"


def _fits(warehouse) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql("select * from marts.ltv_model_fits order by as_of_date").df()


def _calibration(warehouse) -> pd.DataFrame:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql("select * from marts.ltv_calibration order by as_of_date, bucket_order"
                       ).df()


def _plant_holdout_purchases(landing_root, warehouse, run_date: str) -> int:
    """A new orders delivery: every customer with no repeat purchase before the cut buys on
    three more days in the hold-out period (what no model fitted before the cut can know).
    Returns how many customers."""
    import datetime as dt
    from decimal import Decimal

    import duckdb

    from crm_tags.contract import write_delivery

    with duckdb.connect(str(warehouse), read_only=True) as con:
        customers = [r[0] for r in con.sql(
            "select customer_id from intermediate.int_ltv_calibration_summary "
            "where frequency = 0 order by customer_id").fetchall()]
        product = con.sql("select product_id from core.dim_products limit 1").fetchone()[0]
    end = dt.datetime.fromisoformat(run_date)
    orders, items = [], []
    for i, customer in enumerate(customers):
        for k, days_before in enumerate((40, 120, 200)):
            stamp = end - dt.timedelta(days=days_before + i % 7, hours=-11)
            order_id = f"PLANT{i:06d}{k}"
            orders.append({"order_id": order_id, "account_id": customer, "order_ts": stamp,
                           "status": "completed", "sales_channel": "online",
                           "_ingested_at": stamp + dt.timedelta(hours=1)})
            items.append({"order_id": order_id, "line_no": 1, "product_id": product,
                          "quantity": 1, "unit_price": Decimal("100.00"),
                          "discount_amount": Decimal("0.00"), "unit_cost": Decimal("50.00")})
    write_delivery(landing_root, "orders/orders", orders, "planted_orders.parquet")
    write_delivery(landing_root, "orders/order_items", items, "planted_order_items.parquet")
    return len(customers)


@pytest.fixture(scope="module")
def card_builds(tmp_path_factory):
    """One generated landing zone (3,000 customers, three years of orders) built four times
    into one warehouse: the run date; the same run date again after planting hold-out
    purchases; an earlier run date; the run date with --full-refresh. The tables after each."""
    import datetime as dt

    from crm_tags.build import run_dbt
    from crm_tags.generate import generate_landing_zone

    root = tmp_path_factory.mktemp("ltv_card")
    landing = root / "raw"
    generate_landing_zone(landing, 3000, seed=42, as_of=dt.date.fromisoformat(RUN_DATE))
    warehouse = root / "wh.duckdb"
    target = root / "dbt_target"
    states = {}

    def run(name: str, as_of: str, full_refresh: bool = False, data_tests: bool = False):
        # dbt's data tests in the first build only: the later ones change the LTV card's rows,
        # which the tests below check row by row (one fit per run date, 8 calibration rows)
        run_dbt(["build", "--select", "+tag_ltv", "+ltv_calibration", "--indirect-selection",
                 "cautious", "--exclude-resource-type", "unit_test",
                 *([] if data_tests else ["--exclude-resource-type", "test"]),
                 *(["--full-refresh"] if full_refresh else [])],
                landing, warehouse, as_of, target, quiet=True)
        import duckdb

        with duckdb.connect(str(warehouse), read_only=True) as con:
            states[name] = {
                "fits": _fits(warehouse), "calibration": _calibration(warehouse),
                "tags": con.sql("select * from tags.tag_ltv order by customer_id").arrow(
                    ).read_all(),
                "summary": con.sql("select * from intermediate.int_customers_ltv_summary "
                                   "order by customer_id").df(),
            }

    run("first", RUN_DATE, data_tests=True)
    states["planted_customers"] = _plant_holdout_purchases(landing, warehouse, RUN_DATE)
    run("planted", RUN_DATE)
    run("earlier", EARLIER_DATE)
    run("full_refresh", RUN_DATE, full_refresh=True)
    states["manifest"] = json.loads((target / "manifest.json").read_text())
    return states


@pytest.mark.slow
def test_the_tags_are_scored_with_the_stored_fit(card_builds):
    first = card_builds["first"]
    fits, tags, summary = first["fits"], first["tags"], first["summary"]
    assert len(fits) == 1
    row = fits.iloc[0].to_dict()
    assert str(row["as_of_date"].date()) == RUN_DATE and row["method"] == "mle"
    assert row["horizon_days"] == 3 * 365 and row["customers"] == len(summary)
    # the stored parameters are the fit of the run's summary, to the last bit ...
    fit = ltv.fit_for_tag(summary)
    for name, value in {**fit.bgnbd.params.as_dict(), **fit.gamma_gamma.params.as_dict()}.items():
        assert row[name] == value, name
    assert row["reason"] == fit.reason
    # ... and the tags are what they predict (as the fit-and-score of before gave)
    assert set(tags.column("fit_method").to_pylist()) == {row["method"]}
    assert tags.drop_columns(["as_of_date"]).equals(
        ltv.tags_from_model(summary, ltv.model_from_fit_row(row), row["method"], row["reason"],
                            row["horizon_days"], 100_000, 50_000))
    assert tags.drop_columns(["as_of_date"]).equals(ltv.score_ltv(summary, 1095, 100_000,
                                                                  50_000))


@pytest.mark.slow
def test_one_fit_row_per_run_date_a_rerun_replaces_history_is_kept(card_builds):
    first, planted = card_builds["first"]["fits"], card_builds["planted"]["fits"]
    earlier, refreshed = card_builds["earlier"]["fits"], card_builds["full_refresh"]["fits"]
    # the same run date again (new data delivered): its row replaced, not added
    assert len(planted) == 1 and planted["customers"][0] == first["customers"][0]
    assert planted["repeat_buyers"][0] > first["repeat_buyers"][0]
    assert planted["r"][0] != first["r"][0]
    # another run date: a second row; the first date's row untouched
    assert [str(d.date()) for d in earlier["as_of_date"]] == [EARLIER_DATE, RUN_DATE]
    pd.testing.assert_frame_equal(earlier.iloc[[1]].reset_index(drop=True), planted)
    # --full-refresh keeps the history (the run date's row is rewritten, the earlier kept)
    assert [str(d.date()) for d in refreshed["as_of_date"]] == [EARLIER_DATE, RUN_DATE]
    pd.testing.assert_frame_equal(refreshed.iloc[[0]], earlier.iloc[[0]])


@pytest.mark.slow
def test_calibration_on_the_generated_landing_zone(card_builds):
    table = card_builds["first"]["calibration"]
    assert list(table["frequency_bucket"]) == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert set(table["status"]) == {"done"} and set(table["fit_method"]) == {"mle"}
    assert {str(d.date()) for d in table["cut_date"]} == {"2024-01-01"}  # 365 days before
    assert set(table["holdout_days"]) == {365}
    # the generator draws purchases from a BG/NBD-like process (on a seasonal clock, with a
    # few VIPs): predicted and actual agree within 10% overall and 30% in every bucket of
    # 50 customers or more
    assert (table["customers"] >= 50).all()
    total = table["predicted_purchases"].sum() / table["actual_purchases"].sum() - 1
    assert abs(total) < 0.1, total
    assert (table["relative_error"].abs() < 0.3).all(), table[["frequency_bucket",
                                                                "relative_error"]]
    assert set(table["verdict"]) == {"close"}
    np.testing.assert_allclose(table["predicted_per_customer"],
                               table["predicted_purchases"] / table["customers"])


@pytest.mark.slow
def test_a_planted_mismatch_is_detected_and_the_rerun_replaces_the_check(card_builds):
    first = card_builds["first"]["calibration"]
    planted = card_builds["planted"]["calibration"]
    assert len(planted) == 8  # the run date's rows replaced
    customers = card_builds["planted_customers"]
    assert customers == first["customers"][0] > 100
    # three more hold-out purchase days for every one-time buyer of the calibration period (a
    # planted order on a day the customer bought anyway is no new purchase day: a few)
    added = planted["actual_purchases"][0] - first["actual_purchases"][0]
    assert 0.98 * 3 * customers <= added <= 3 * customers
    assert planted["verdict"][0] == "off" and planted["relative_error"][0] < -0.3
    # nothing before the cut changed: the same calibration fit, the other buckets unchanged
    pd.testing.assert_frame_equal(planted.iloc[1:], first.iloc[1:])
    # an earlier run date adds its eight rows; --full-refresh keeps them
    earlier = card_builds["earlier"]["calibration"]
    assert [str(d.date()) for d in earlier["as_of_date"].unique()] == [EARLIER_DATE, RUN_DATE]
    assert len(card_builds["full_refresh"]["calibration"]) == 16


@pytest.mark.slow
def test_the_ltv_cadence_rebuilds_the_model_card(card_builds):
    from crm_tags.catalog import Cadences, DbtGraph, read_catalog

    cadences = Cadences(read_catalog(), DbtGraph(card_builds["manifest"]))
    monthly = cadences.models("monthly")
    assert {"ltv_model_fits", "tag_ltv", "ltv_calibration", "int_ltv_calibration_summary",
            "int_ltv_run"} <= monthly
    for cadence in ("daily", "weekly"):
        assert not {"ltv_model_fits", "ltv_calibration"} & cadences.models(cadence), cadence


@pytest.mark.slow
def test_cli_prints_the_warehouse_calibration(card_builds, tmp_path, capsys):
    import duckdb

    warehouse = tmp_path / "wh.duckdb"
    frame = card_builds["earlier"]["calibration"]
    with duckdb.connect(str(warehouse)) as con:
        con.sql("create schema marts")
        con.register("frame", frame)
        con.sql("create table marts.ltv_calibration as select * from frame")
    assert cli_main(["ltv-calibration", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert f"run date {RUN_DATE}, calibration up to 2024-01-01, hold-out 365 days" in out
    assert "verdicts: 0 off, 1 close" in out
    assert cli_main(["ltv-calibration", "--warehouse", str(warehouse), "--as-of",
                     EARLIER_DATE, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 8
    assert cli_main(["ltv-calibration", "--warehouse", str(tmp_path / "none.duckdb")]) == 2
