"""Predicted customer lifetime value: BG/NBD (purchases) x Gamma-Gamma (spend).

The `ltv` tag is a prediction: a customer's expected net sales over the next `horizon` time units.

* BG/NBD (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24)
  models repeat purchases: while alive a customer buys as a Poisson process with rate
  lambda ~ Gamma(r, alpha); after each purchase she drops out with probability p ~ Beta(a, b).
* Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV", JMR 42; Fader & Hardie 2013 note "The
  Gamma-Gamma Model of Monetary Value") models the mean spend per repeat purchase. Its likelihood
  is only defined for repeat buyers (frequency > 0 and mean spend > 0), so it is fitted on them.
  Customers without a repeat purchase get, in the textbook version, the population mean spend
  p * gamma / (q - 1); the warehouse (score_ltv) instead conditions on their first purchase,
  p * (gamma + m1) / (p + q - 1), because on our heavy-tailed spend the fitted q can be < 1,
  where the population mean is infinite (and the first purchase is informative anyway).
* predicted value = E[purchases in (T, T + horizon] | history] x E[spend per purchase | history].
  No discounting: the business spec asks for the net sales of the next three years, undiscounted.

Input is the per-customer summary the BG/NBD literature uses: `frequency` (repeat purchases =
distinct purchase occasions - 1), `recency` (time from the first to the last purchase), `T` (time
from the first purchase to the as-of date), `monetary_value` (mean spend of the repeat purchases;
0 when frequency is 0). Recency, T and the horizon must share one time unit; the warehouse uses
days (see int_customers_ltv_summary), the CDNOW benchmark uses weeks.

Maximum likelihood: vectorised log-likelihoods (gammaln and log-sum-exp, never raw products of
powers), analytic gradients, L-BFGS-B in log-parameter space on data rescaled to unit mean
(time by mean T, spend by mean spend: both are pure scale parameters, alpha and gamma, so the
rescaling is undone exactly). Customers with identical summaries are collapsed into weighted
rows first, so a warehouse in whole days with a million customers fits in seconds.

Which fit (fit_ltv; docs/design.md, "The LTV model"): each submodel is fitted by maximum
likelihood where that can be trusted - enough customers and repeat buyers, converged, no
parameter at a bound, the observed information pinning every log-parameter down (standard
error <= mle_max_log_se), and for Gamma-Gamma p + q > 1 - with the numbers in the `ltv` rows
of seeds/tag_thresholds.csv (LtvFitPolicy). Otherwise it is fitted by maximum a posteriori:
the same likelihood plus independent normal priors (sd prior_sd_log) on the log-parameters,
centred scale-free on the shop's own mean T and mean net sales per purchase day, so a small
shop or a first month of data still gets a finite prediction, and with plenty of data the
prior fades and the fit approaches the MLE. A run's model is one LtvFit record: method, a
reason sentence, parameters, log-likelihoods, convergence, standard errors and the MLE fits
that were tried and rejected (LtvFit.as_dict(), JSON-ready). Only when the data give even the
regularised fit nothing to stand on - every first purchase on the run date (no time observed),
or no purchase day with positive net sales - is there no prediction: method "none", with the
reason. fit_bgnbd, fit_gamma_gamma, fit_ltv_model and the `crm-tags ltv-fit` CLI are the plain
MLE: degenerate inputs (no customers, one customer, no repeat buyers, every T == 0 ...) raise
LtvFitError with a message saying what is wrong. Invalid input (nulls, non-finite values,
recency > T, negative values) raises everywhere. Predictions are checked finite before they
are returned, so a NaN never reaches a tag.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from scipy import integrate, optimize, special

TAG_CODE = "ltv"
DAYS_PER_YEAR = 365
SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")

# Bounds of the log-parameters (on the rescaled data). An optimum there is a limit of the model
# family (e.g. b -> inf: nobody drops out); the fit warns and records it in `at_bound`.
_LOG_BOUND = 20.0
# The fit is accepted when no interior log-parameter has |d mean log-likelihood| above this.
_CONVERGED_GRADIENT = 1e-5
# Near a == 1 the closed form of E[Y(t)] is 0/0; it is evaluated at 1 +/- this and averaged.
_A_NEAR_ONE = 1e-4
# Step in log-parameter space of the central differences that give the observed information.
_HESSIAN_STEP = 1e-4


class LtvFitError(ValueError):
    """The input cannot identify the LTV model (empty, degenerate, non-finite, ...). `fit` is the
    run's LtvFit (method "none", with the reason) where the failure is the data's, not the
    input's."""

    def __init__(self, message: str, fit: LtvFit | None = None):
        super().__init__(message)
        self.fit = fit


# --------------------------------------------------------------------------------------------
# Fitted parameters
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbdParams:
    """BG/NBD parameters; alpha is in the time unit of the data it was fitted on."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = math.nan
    n_customers: int = 0
    at_bound: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class GammaGammaParams:
    """Gamma-Gamma parameters; gamma is in the currency of the data it was fitted on."""

    p: float
    q: float
    gamma: float
    log_likelihood: float = math.nan
    n_customers: int = 0
    at_bound: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "gamma": self.gamma}

    @property
    def population_mean_spend(self) -> float:
        """E[spend per purchase] of a random customer: p * gamma / (q - 1), infinite if q <= 1."""
        return self.p * self.gamma / (self.q - 1.0) if self.q > 1.0 else math.inf


@dataclass(frozen=True)
class LtvModel:
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {"bgnbd": self.bgnbd.as_dict(), "gamma_gamma": self.gamma_gamma.as_dict()}


@dataclass(frozen=True)
class RfmSummary:
    """Validated per-customer summary as float64 arrays (one element per customer)."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.frequency.shape[0])


@dataclass(frozen=True)
class ClvPrediction:
    """Per-customer predictions over `horizon` (same order as the input summary)."""

    model: LtvModel
    horizon: float
    predicted_purchases: np.ndarray
    probability_alive: np.ndarray
    expected_spend: np.ndarray
    predicted_value: np.ndarray


# --------------------------------------------------------------------------------------------
# Input: any table-like summary -> validated arrays
# --------------------------------------------------------------------------------------------


def _column(summary: Any, name: str) -> np.ndarray:
    """Column `name` (matched case-insensitively) of a pyarrow table, pandas frame or mapping."""
    if hasattr(summary, "column_names"):  # pyarrow Table / RecordBatch
        names = list(summary.column_names)
        getter = summary.column
    elif hasattr(summary, "columns") and hasattr(summary, "__getitem__"):  # pandas DataFrame
        names = [str(c) for c in summary.columns]
        getter = summary.__getitem__
    elif isinstance(summary, Mapping):
        names = [str(c) for c in summary]
        getter = summary.__getitem__
    else:
        raise TypeError(f"unsupported summary type {type(summary).__name__}")
    matches = [n for n in names if n == name] or [n for n in names if n.lower() == name.lower()]
    if not matches:
        raise LtvFitError(f"summary has no column '{name}' (columns: {', '.join(names)})")
    values = getter(matches[0])
    if hasattr(values, "to_numpy") and hasattr(values, "null_count"):  # pyarrow (Chunked)Array
        import pyarrow as pa
        import pyarrow.compute as pc

        values = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise LtvFitError(f"column '{name}' is not numeric: {exc}") from None


def _check_finite(name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise LtvFitError(
            f"column '{name}' has {int(bad.sum())} null or non-finite value(s) (first at row {first})"
        )


def summary_arrays(summary: Any, *, require_monetary: bool = True) -> RfmSummary:
    """Validate a summary (pyarrow Table, pandas DataFrame, mapping or RfmSummary) into arrays."""
    if isinstance(summary, RfmSummary):
        arrays = summary
        frequency, recency, T = arrays.frequency, arrays.recency, arrays.T
        monetary = arrays.monetary_value
    else:
        frequency = _column(summary, "frequency")
        recency = _column(summary, "recency")
        T = _column(summary, "T")
        monetary = _column(summary, "monetary_value") if require_monetary else None
    if require_monetary and monetary is None:
        raise LtvFitError("summary has no column 'monetary_value'")
    n = frequency.shape[0]
    for name, values in (("recency", recency), ("T", T), ("monetary_value", monetary)):
        if values is not None and values.shape[0] != n:
            raise LtvFitError(f"column '{name}' has {values.shape[0]} rows, frequency has {n}")
    for name, values in (("frequency", frequency), ("recency", recency), ("T", T)):
        _check_finite(name, values)
        if (values < 0).any():
            raise LtvFitError(f"column '{name}' has negative values (min {values.min():g})")
    if (frequency != np.round(frequency)).any():
        raise LtvFitError("column 'frequency' must hold whole numbers of repeat purchases")
    too_late = recency > T * (1 + 1e-9) + 1e-12
    if too_late.any():
        first = int(np.flatnonzero(too_late)[0])
        raise LtvFitError(
            f"{int(too_late.sum())} customer(s) have recency > T (first at row {first}: "
            f"recency {recency[first]:g} > T {T[first]:g}); both must be measured from the first "
            "purchase, in the same time unit"
        )
    if monetary is not None:
        _check_finite("monetary_value", monetary)
        if (monetary < 0).any():
            raise LtvFitError(
                f"column 'monetary_value' has negative values (min {monetary.min():g}); "
                "mean spend per repeat purchase must be >= 0"
            )
    return RfmSummary(frequency, np.minimum(recency, T), T, monetary)


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------


def _bgnbd_terms(r, alpha, a, b, x, t_x, T):
    """Per-row log-likelihood pieces: (ln A1 + ln A2, ln A3, ln A4 with -inf where x == 0)."""
    ln_a12 = (
        special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
        + special.gammaln(a + b) + special.gammaln(b + x)
        - special.gammaln(b) - special.gammaln(a + b + x)
    )
    ln_a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    ln_a4 = np.full_like(ln_a3, -np.inf)
    xr = x[repeat]
    ln_a4[repeat] = (
        np.log(a) - np.log(b + xr - 1.0) - (r + xr) * np.log(alpha + t_x[repeat])
    )
    return ln_a12, ln_a3, ln_a4


def bgnbd_log_likelihood_per_customer(params, frequency, recency, T) -> np.ndarray:
    """ln L_i of FHL (2005) eq. (6) for each customer; params = (r, alpha, a, b)."""
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    ln_a12, ln_a3, ln_a4 = _bgnbd_terms(r, alpha, a, b, x, t_x, T)
    return ln_a12 + np.logaddexp(ln_a3, ln_a4)


def bgnbd_log_likelihood(params, frequency, recency, T) -> float:
    """Total BG/NBD log-likelihood of a summary; params = (r, alpha, a, b)."""
    return float(bgnbd_log_likelihood_per_customer(params, frequency, recency, T).sum())


def _unique_rows(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Unique rows of equal-length columns, sorted (so results do not depend on input order),
    with the inverse index and the counts. A lexsort: much faster than np.unique(axis=0)."""
    n = columns[0].shape[0]
    if n == 0:
        return [c[:0] for c in columns], np.zeros(0, dtype=np.int64), np.zeros(0)
    order = np.lexsort(columns[::-1])
    sorted_cols = [c[order] for c in columns]
    new_row = np.zeros(n, dtype=bool)
    new_row[0] = True
    for c in sorted_cols:
        new_row[1:] |= c[1:] != c[:-1]
    group = np.cumsum(new_row) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group
    counts = np.bincount(group).astype(np.float64)
    return [c[new_row] for c in sorted_cols], inverse, counts


@dataclass(frozen=True)
class _Values:
    """A column as unique values + per-row index, so special functions run once per value
    (frequencies and whole-day times repeat a lot)."""

    unique: np.ndarray
    index: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> _Values:
        unique, index = np.unique(values, return_inverse=True)
        return cls(unique, index.reshape(-1))

    def map(self, f) -> np.ndarray:
        return f(self.unique)[self.index]


@dataclass(frozen=True)
class _BgNbdData:
    """Collapsed BG/NBD input: unique (x, t_x, T) rows with weights."""

    x: np.ndarray
    w: np.ndarray
    xv: _Values
    tv: _Values
    Tv: _Values
    w_by_x: np.ndarray  # total weight of each unique x
    repeat: np.ndarray  # x > 0
    w_total: float

    @classmethod
    def of(cls, frequency, recency, T) -> _BgNbdData:
        (x, t_x, T), _, w = _unique_rows(frequency, recency, T)
        xv = _Values.of(x)
        return cls(x, w, xv, _Values.of(t_x), _Values.of(T),
                   np.bincount(xv.index, weights=w, minlength=xv.unique.size), x > 0,
                   float(w.sum()))


def _bgnbd_neg_mean_ll_and_grad(log_params, d: _BgNbdData):
    """-mean log-likelihood and its gradient w.r.t. log(r, alpha, a, b); terms that depend on
    x only are summed per unique x."""
    r, alpha, a, b = np.exp(log_params)
    x, w, xs, W, Wx = d.x, d.w, d.xv.unique, d.w_total, d.w_by_x
    gl, dg = special.gammaln, special.digamma
    ll_x = Wx @ (gl(r + xs) + gl(b + xs) - gl(a + b + xs))
    ll_const = W * (r * math.log(alpha) - gl(r) + gl(a + b) - gl(b))
    ln_aT = d.Tv.map(lambda v: np.log(alpha + v))
    ln_atx = d.tv.map(lambda v: np.log(alpha + v))
    # b + x - 1 only matters for repeat buyers (x >= 1, so it is >= b > 0); 1 elsewhere
    bx1 = d.xv.map(lambda v: np.where(v > 0, b + v - 1.0, 1.0))
    ln_bx1 = np.log(bx1)
    rx = r + x
    ln_a3 = -rx * ln_aT
    ln_a4 = np.where(d.repeat, math.log(a) - ln_bx1 - rx * ln_atx, -np.inf)
    ln_sum = np.logaddexp(ln_a3, ln_a4)
    ll = ll_x + ll_const + w @ ln_sum
    w3 = w * np.exp(ln_a3 - ln_sum)  # weights x softmax of the two branches
    w4 = w * np.exp(ln_a4 - ln_sum)
    d_r = Wx @ dg(r + xs) + W * (math.log(alpha) - dg(r)) - w3 @ ln_aT - w4 @ ln_atx
    inv_aT = d.Tv.map(lambda v: 1.0 / (alpha + v))
    inv_atx = d.tv.map(lambda v: 1.0 / (alpha + v))
    d_alpha = W * r / alpha - (w3 * rx) @ inv_aT - (w4 * rx) @ inv_atx
    psi_abx = Wx @ dg(a + b + xs)
    w4_sum = w4.sum()
    d_a = W * dg(a + b) - psi_abx + w4_sum / a
    d_b = W * (dg(a + b) - dg(b)) + Wx @ dg(b + xs) - psi_abx - w4 @ (1.0 / bx1)
    grad = np.array([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return -ll / W, -grad / W


@dataclass(frozen=True)
class _Optimum:
    """The best L-BFGS-B optimum over the start values, in log-parameter space."""

    log_params: np.ndarray
    objective: float  # minimised mean objective (per customer)
    at_bound: tuple[str, ...]
    interior_gradient: float  # largest |gradient| of a log-parameter not at a bound
    iterations: int
    message: str

    @property
    def converged(self) -> bool:
        return bool(self.interior_gradient < _CONVERGED_GRADIENT)


def _minimise(fun, x0s, names) -> _Optimum:
    """L-BFGS-B from each start in log-parameter space; the best optimum and its bound hits."""
    bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(names)
    best = None
    for x0 in x0s:
        with np.errstate(all="ignore"):
            res = optimize.minimize(
                fun, np.asarray(x0, dtype=np.float64), jac=True, method="L-BFGS-B", bounds=bounds,
                options={"maxiter": 5000, "maxfun": 20000, "ftol": 1e-15, "gtol": 1e-9},
            )
        if np.isfinite(res.fun) and np.all(np.isfinite(res.x)) and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise LtvFitError("the likelihood could not be evaluated at any start value")
    bound_hit = np.abs(best.x) >= _LOG_BOUND - 1e-3
    at_bound = tuple(n for n, hit in zip(names, bound_hit, strict=True) if hit)
    interior_gradient = float(np.abs(np.where(bound_hit, 0.0, best.jac)).max())
    return _Optimum(best.x, float(best.fun), at_bound, interior_gradient, int(best.nit),
                    str(best.message))


def _require_convergence(optimum: _Optimum, what: str) -> None:
    if not optimum.converged:
        raise LtvFitError(
            f"the {what} likelihood has no stable maximum (the optimiser stopped with gradient "
            f"{optimum.interior_gradient:.2g} per customer: {optimum.message}); the data are too "
            "few or too uniform to identify the model"
        )


def _log_standard_errors(fun, log_params: np.ndarray, weight: float) -> np.ndarray:
    """Standard errors of the log-parameters from the observed information (the Hessian of the
    total negative log-likelihood, by central differences of the analytic gradient); inf where
    the information is not positive definite (a direction the data do not pin down)."""
    k = log_params.size
    hessian = np.empty((k, k))
    for j in range(k):
        step = np.zeros(k)
        step[j] = _HESSIAN_STEP
        with np.errstate(all="ignore"):
            hessian[:, j] = (fun(log_params + step)[1] - fun(log_params - step)[1]) / (
                2 * _HESSIAN_STEP)
    hessian = 0.5 * (hessian + hessian.T) * weight
    if not np.isfinite(hessian).all():
        return np.full(k, math.inf)
    eigenvalues, eigenvectors = np.linalg.eigh(hessian)
    if eigenvalues.min() <= 0:
        return np.full(k, math.inf)
    covariance = (eigenvectors / eigenvalues) @ eigenvectors.T
    return np.sqrt(np.diag(covariance))


def _check_bgnbd_input(s: RfmSummary) -> None:
    n = len(s)
    if n == 0:
        raise LtvFitError("empty summary: no customers to fit the BG/NBD model on")
    if n == 1:
        raise LtvFitError(
            "only one customer: BG/NBD describes a population; one customer cannot identify it"
        )
    if not (s.T > 0).any():
        raise LtvFitError(
            "every customer has T == 0 (all first purchases fall on the as-of date): "
            "there is no observation period to fit the purchase process on"
        )
    if not (s.frequency > 0).any():
        raise LtvFitError(
            "no repeat buyers (frequency == 0 for every customer, e.g. all purchases on one day): "
            "the purchase rate and the dropout process cannot be estimated"
        )
    if ((s.frequency == s.frequency[0]) & (s.recency == s.recency[0]) & (s.T == s.T[0])).all():
        raise LtvFitError(
            "every customer has the same (frequency, recency, T): there is no heterogeneity "
            "between customers for BG/NBD to fit"
        )


@dataclass(frozen=True)
class _Prior:
    """Independent normal priors on the log-parameters of the rescaled data (the regularised
    fit): log theta_k ~ N(centre_k, sd^2)."""

    centre: np.ndarray
    sd: float

    def penalty_and_grad(self, log_params: np.ndarray) -> tuple[float, np.ndarray]:
        """-log prior density (up to a constant) and its gradient."""
        z = (log_params - self.centre) / self.sd
        return 0.5 * float(z @ z), z / self.sd

    def log_density(self, log_params: np.ndarray) -> float:
        z = (log_params - self.centre) / self.sd
        return float(-0.5 * z @ z - z.size * math.log(self.sd * math.sqrt(2 * math.pi)))


@dataclass(frozen=True)
class _Estimate:
    """One optimisation of a submodel: its parameters (in data units), the optimum, and the
    objectives (mean per customer, in log-parameter space of the rescaled data) that the
    standard errors are taken from."""

    params: Any  # BgNbdParams | GammaGammaParams
    optimum: _Optimum
    likelihood: Any  # log_params -> (-mean log-likelihood, gradient)
    objective: Any  # what was minimised: the likelihood, plus the prior if any
    weight: float  # customers the mean is taken over
    prior: _Prior | None

    @cached_property
    def likelihood_standard_errors(self) -> np.ndarray:
        """Of the log-parameters, from the likelihood alone (what trusts an MLE)."""
        return _log_standard_errors(self.likelihood, self.optimum.log_params, self.weight)

    @cached_property
    def posterior_standard_errors(self) -> np.ndarray:
        """Of the log-parameters, from what was minimised (likelihood and prior)."""
        return _log_standard_errors(self.objective, self.optimum.log_params, self.weight)


def _penalised(likelihood, prior: _Prior | None, weight: float):
    if prior is None:
        return likelihood

    def objective(log_params):
        value, grad = likelihood(log_params)
        penalty, penalty_grad = prior.penalty_and_grad(log_params)
        return value + penalty / weight, grad + penalty_grad / weight

    return objective


_BGNBD_NAMES = ("r", "alpha", "a", "b")
_GAMMA_GAMMA_NAMES = ("p", "q", "gamma")


def _estimate_bgnbd(s: RfmSummary, prior: _Prior | None = None) -> _Estimate:
    """BG/NBD by maximum likelihood (prior None) or maximum a posteriori; needs some T > 0."""
    n = len(s)
    scale = float(s.T.mean())
    data = _BgNbdData.of(s.frequency, s.recency / scale, s.T / scale)

    def likelihood(log_params):
        return _bgnbd_neg_mean_ll_and_grad(log_params, data)

    objective = _penalised(likelihood, prior, data.w_total)
    starts = [np.zeros(4), np.log([0.5, 2.0, 0.5, 2.0])]
    if prior is not None:
        starts.insert(0, prior.centre)
    optimum = _minimise(objective, starts, _BGNBD_NAMES)
    r, alpha, a, b = (float(v) for v in np.exp(optimum.log_params))
    alpha *= scale
    ll = bgnbd_log_likelihood((r, alpha, a, b), s.frequency, s.recency, s.T)
    if not all(math.isfinite(v) for v in (r, alpha, a, b, ll)):
        raise LtvFitError(f"BG/NBD fit is not finite: r={r}, alpha={alpha}, a={a}, b={b}")
    return _Estimate(BgNbdParams(r, alpha, a, b, ll, n, optimum.at_bound), optimum, likelihood,
                     objective, data.w_total, prior)


def fit_bgnbd(summary: Any) -> BgNbdParams:
    """Maximum-likelihood BG/NBD on a summary with frequency, recency, T (any one time unit)."""
    s = summary_arrays(summary, require_monetary=False)
    _check_bgnbd_input(s)
    estimate = _estimate_bgnbd(s)
    _require_convergence(
        estimate.optimum,
        f"BG/NBD ({len(s)} customers, {int((s.frequency > 0).sum())} repeat buyers)",
    )
    if estimate.optimum.at_bound:
        warnings.warn(
            f"BG/NBD fit ran to the bound of {', '.join(estimate.optimum.at_bound)}: the data sit "
            "at a limit of the model (e.g. no visible dropout or no rate heterogeneity)",
            RuntimeWarning,
            stacklevel=2,
        )
    return estimate.params


def bgnbd_probability_alive(params: BgNbdParams, frequency, recency, T) -> np.ndarray:
    """P(alive at T | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T)/(alpha + t_x))^(r + x))."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    log_odds_dead = np.full_like(x, -np.inf)
    repeat = x > 0
    xr = x[repeat]
    log_odds_dead[repeat] = (
        math.log(a) - np.log(b + xr - 1.0)
        + (r + xr) * (np.log(alpha + T[repeat]) - np.log(alpha + t_x[repeat]))
    )
    return special.expit(-log_odds_dead)


def _conditional_purchases_if_alive(r, alpha, a, b, x, T, t):
    """E[Y(t) | alive at T] = (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(...)]."""
    z = t / (alpha + T + t)
    with np.errstate(all="ignore"):
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        tail = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        return (a + b + x - 1.0) / (a - 1.0) * (1.0 - hyp * tail)


def _conditional_purchases_quad(r, alpha, a, b, x, T, t) -> float:
    """The same expectation by quadrature over the posterior p ~ Beta(a, b + x):
    E[(1 - (1 + p t / (alpha + T))^-(r + x)) / p]; a fallback where 2F1 overflows."""
    log_norm = -special.betaln(a, b + x)
    scale = t / (alpha + T)

    def integrand(p: float) -> float:
        if p <= 0.0:
            return 0.0 if a >= 1.0 else math.inf
        if p >= 1.0:  # a node rounded onto the end point (a, b at their bounds): measure zero
            return 0.0
        gain = -math.expm1(-(r + x) * math.log1p(p * scale)) / p
        return gain * math.exp(log_norm + (a - 1.0) * math.log(p) + (b + x - 1.0) * math.log1p(-p))

    mean = a / (a + b + x)
    sd = math.sqrt(a * (b + x) / ((a + b + x) ** 2 * (a + b + x + 1.0)))
    points = sorted({min(max(v, 1e-12), 1 - 1e-12) for v in (mean, mean + 5 * sd, mean + 20 * sd)})
    value, _ = integrate.quad(integrand, 0.0, 1.0, points=points, limit=400, epsrel=1e-10)
    return value


def bgnbd_expected_purchases(params: BgNbdParams, t: float, frequency, recency, T) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. (10)), one value per customer."""
    if not (t >= 0 and math.isfinite(t)):
        raise LtvFitError(f"horizon must be a finite number >= 0, got {t}")
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (frequency, recency, T))
    if t == 0 or x.size == 0:
        return np.zeros_like(x)
    if abs(a - 1.0) < _A_NEAR_ONE:  # removable singularity at a == 1: average both sides
        if_alive = 0.5 * (
            _conditional_purchases_if_alive(r, alpha, 1.0 - _A_NEAR_ONE, b, x, T, t)
            + _conditional_purchases_if_alive(r, alpha, 1.0 + _A_NEAR_ONE, b, x, T, t)
        )
    else:
        if_alive = _conditional_purchases_if_alive(r, alpha, a, b, x, T, t)
    for i in np.flatnonzero(~np.isfinite(if_alive) | (if_alive < 0)):
        if_alive[i] = _conditional_purchases_quad(r, alpha, a, b, x[i], T[i], t)
    result = bgnbd_probability_alive(params, x, t_x, T) * if_alive
    if not np.isfinite(result).all():
        raise LtvFitError("expected purchases could not be evaluated (non-finite) for some customers")
    return np.maximum(result, 0.0)


# --------------------------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------------------------


def gamma_gamma_log_likelihood(params, frequency, monetary_value) -> float:
    """Gamma-Gamma log-likelihood of the mean spends m of customers with x > 0 purchases."""
    p, q, gamma = (float(v) for v in params)
    x, m = (np.asarray(v, dtype=np.float64) for v in (frequency, monetary_value))
    px = p * x
    ll = (
        special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
        + q * math.log(gamma) + (px - 1.0) * np.log(m) + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )
    return float(ll.sum())


@dataclass(frozen=True)
class _GammaGammaData:
    """Collapsed Gamma-Gamma input: unique (x, m) rows with weights and data-only constants."""

    x: np.ndarray
    m: np.ndarray
    w: np.ndarray
    xs: np.ndarray  # unique x
    w_by_x: np.ndarray
    wx: np.ndarray  # w * x
    sum_wx_ln_mx: float  # sum w x (ln m + ln x)
    sum_w_ln_m: float
    w_total: float

    @classmethod
    def of(cls, frequency, monetary_value) -> _GammaGammaData:
        (x, m), _, w = _unique_rows(frequency, monetary_value)
        xv = _Values.of(x)
        return cls(x, m, w, xv.unique, np.bincount(xv.index, weights=w, minlength=xv.unique.size),
                   w * x, float((w * x) @ (np.log(m) + np.log(x))), float(w @ np.log(m)),
                   float(w.sum()))


def _gg_neg_mean_ll_and_grad(log_params, d: _GammaGammaData):
    """-mean log-likelihood and its gradient w.r.t. log(p, q, gamma)."""
    p, q, gamma = np.exp(log_params)
    xs, Wx, W = d.xs, d.w_by_x, d.w_total
    gl, dg = special.gammaln, special.digamma
    pxs = p * xs
    g_mx = gamma + d.m * d.x
    ln_gmx = np.log(g_mx)
    weighted_pxq = p * d.wx + q * d.w  # w (p x + q)
    ll = (Wx @ (gl(pxs + q) - gl(pxs)) + W * (q * math.log(gamma) - gl(q))
          + p * d.sum_wx_ln_mx - d.sum_w_ln_m - weighted_pxq @ ln_gmx)
    psi_pxq = dg(pxs + q)
    d_p = (Wx * xs) @ (psi_pxq - dg(pxs)) + d.sum_wx_ln_mx - d.wx @ ln_gmx
    d_q = Wx @ psi_pxq + W * (math.log(gamma) - dg(q)) - d.w @ ln_gmx
    d_gamma = W * q / gamma - weighted_pxq @ (1.0 / g_mx)
    grad = np.array([d_p * p, d_q * q, d_gamma * gamma])
    return -ll / W, -grad / W


def _check_gamma_gamma_input(s: RfmSummary) -> np.ndarray:
    """The mask of the customers the Gamma-Gamma model is fitted on (x > 0 and m > 0)."""
    if len(s) == 0:
        raise LtvFitError("empty summary: no customers to fit the Gamma-Gamma model on")
    used = (s.frequency > 0) & (s.monetary_value > 0)
    if not used.any():
        raise LtvFitError(
            "no repeat buyers with positive spend: the Gamma-Gamma spend model is fitted on "
            "customers with frequency > 0 and monetary_value > 0, and there are none"
        )
    if used.sum() == 1:
        raise LtvFitError(
            "only one repeat buyer: the Gamma-Gamma spend model needs at least two to separate "
            "between-customer from within-customer variation"
        )
    x, m = s.frequency[used], s.monetary_value[used]
    if ((x == x[0]) & (m == m[0])).all():
        raise LtvFitError(
            "every repeat buyer has the same (frequency, monetary_value): there is no spend "
            "heterogeneity for the Gamma-Gamma model to fit"
        )
    return used


def _estimate_gamma_gamma(x: np.ndarray, m: np.ndarray, scale: float,
                         prior: _Prior | None = None) -> _Estimate:
    """Gamma-Gamma on repeat buyers' (x > 0, m > 0) by maximum likelihood (prior None) or maximum
    a posteriori, on spend divided by `scale`; with a prior, `x` may be empty (the prior mode)."""
    data = _GammaGammaData.of(x, m / scale) if x.size else None
    weight = data.w_total if data is not None else 1.0

    def likelihood(log_params):
        if data is None:
            return 0.0, np.zeros(3)
        return _gg_neg_mean_ll_and_grad(log_params, data)

    objective = _penalised(likelihood, prior, weight)
    starts = [np.log([1.0, 2.0, 1.0]), np.log([5.0, 5.0, 4.0])]
    if prior is not None:
        starts.insert(0, prior.centre)
    optimum = _minimise(objective, starts, _GAMMA_GAMMA_NAMES)
    p, q, gamma = (float(v) for v in np.exp(optimum.log_params))
    gamma *= scale
    ll = gamma_gamma_log_likelihood((p, q, gamma), x, m)
    if not all(math.isfinite(v) for v in (p, q, gamma, ll)):
        raise LtvFitError(f"Gamma-Gamma fit is not finite: p={p}, q={q}, gamma={gamma}")
    return _Estimate(GammaGammaParams(p, q, gamma, ll, int(x.size), optimum.at_bound), optimum,
                     likelihood, objective, weight, prior)


def fit_gamma_gamma(summary: Any) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma on the repeat buyers (frequency > 0, monetary_value > 0)."""
    s = summary_arrays(summary, require_monetary=True)
    used = _check_gamma_gamma_input(s)
    x, m = s.frequency[used], s.monetary_value[used]
    estimate = _estimate_gamma_gamma(x, m, float(m.mean()))
    _require_convergence(estimate.optimum, f"Gamma-Gamma ({x.size} repeat buyers)")
    if estimate.optimum.at_bound:
        warnings.warn(
            f"Gamma-Gamma fit ran to the bound of {', '.join(estimate.optimum.at_bound)}: the "
            "spend data show (almost) no heterogeneity",
            RuntimeWarning,
            stacklevel=2,
        )
    return estimate.params


def gamma_gamma_expected_spend(params: GammaGammaParams, frequency, monetary_value,
                               first_purchase_value=None) -> np.ndarray:
    """E[spend per purchase | x, m] = p (gamma + x m) / (p x + q - 1): a weighted mean of the
    population mean p gamma / (q - 1) and the customer's own mean m of x repeat purchases.

    Customers with x = 0: the population mean p gamma / (q - 1) (the textbook choice; infinite
    when q <= 1), or, with `first_purchase_value`, the same posterior given the one purchase
    that was seen: p (gamma + m1) / (p + q - 1), finite whenever p + q > 1."""
    p, q, gamma = params.p, params.q, params.gamma
    x, m = (np.asarray(v, dtype=np.float64) for v in (frequency, monetary_value))
    m = np.where(x > 0, np.maximum(m, 0.0), 0.0)
    if first_purchase_value is not None:
        first = np.maximum(np.asarray(first_purchase_value, dtype=np.float64), 0.0)
        if first.shape != x.shape:
            raise LtvFitError("first_purchase_value must have one value per customer")
        _check_finite("first_purchase_value", first)
        seen = np.where(x > 0, x, 1.0)
        m = np.where(x > 0, m, first)
        x = seen
    denominator = p * x + q - 1.0
    if (denominator <= 0).any():
        raise LtvFitError(
            f"Gamma-Gamma p = {p:.4g}, q = {q:.4g}: p x + q <= 1 for some customers, so their "
            "expected spend is infinite (q <= 1 means the population mean spend is infinite: "
            "value customers without repeat purchases by their first purchase)"
        )
    return p * (gamma + x * m) / denominator


# --------------------------------------------------------------------------------------------
# Both models: fit, predict, score the tag
# --------------------------------------------------------------------------------------------


def fit_ltv_model(summary: Any) -> LtvModel:
    """Fit BG/NBD on every customer and Gamma-Gamma on the repeat buyers."""
    s = summary_arrays(summary, require_monetary=True)
    _check_bgnbd_input(s)  # every precondition before any (slower) fit
    _check_gamma_gamma_input(s)
    return LtvModel(fit_bgnbd(s), fit_gamma_gamma(s))


# --------------------------------------------------------------------------------------------
# Which fit a run uses: maximum likelihood where it can be trusted, else regularised (MAP)
# --------------------------------------------------------------------------------------------

METHOD_MLE = "mle"
METHOD_REGULARISED = "regularised"
METHOD_NONE = "none"  # no prediction this run; LtvFit.reason says why

# Centres of the regularised fit's normal priors on the log-parameters, on data rescaled to a
# mean T of 1 (time) and to the shop's mean net sales per purchase day (spend); scale-free, so
# one set fits any shop and any time unit. BG/NBD r = alpha = 1: a customer buys again about
# once per mean observed span, rates exponentially spread; a = b = 1: the dropout probability
# after a purchase is uniform on (0, 1). Gamma-Gamma p = 2, q = 3, gamma = 1: the population
# mean spend p gamma / (q - 1) is the shop's own mean. Why: docs/design.md, "The LTV model".
_BGNBD_PRIOR_CENTRE = (1.0, 1.0, 1.0, 1.0)
_GAMMA_GAMMA_PRIOR_CENTRE = (2.0, 3.0, 1.0)


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class LtvFitPolicy:
    """When a maximum-likelihood fit is trusted, and how strong the regularised fit's prior is.
    The numbers live in the `ltv` rows of seeds/tag_thresholds.csv (tag_ltv reads them through
    dbt, so a deployment's seed decides)."""

    mle_min_customers: int  # BG/NBD by MLE needs at least this many customers ...
    mle_min_repeat_buyers: int  # ... and repeat buyers (Gamma-Gamma: with positive spend)
    mle_max_log_se: float  # ... and no log-parameter with a larger standard error
    prior_sd_log: float  # the regularised fit's prior sd of every log-parameter

    @classmethod
    def from_thresholds(cls, thresholds: Mapping[str, Any]) -> LtvFitPolicy:
        """From {parameter: value} of the `ltv` rows of tag_thresholds (extra keys ignored)."""
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in thresholds]
        if missing:
            raise LtvFitError(
                f"seed tag_thresholds has no ltv row(s) for {', '.join(missing)}"
            )
        values = {name: float(thresholds[name]) for name in names}
        for name in ("mle_min_customers", "mle_min_repeat_buyers"):
            if not (values[name] >= 2 and values[name] == int(values[name])):
                raise LtvFitError(
                    f"ltv threshold {name} must be a whole number >= 2 (a maximum-likelihood fit "
                    f"needs two customers at least), got {values[name]:g}"
                )
        for name in ("mle_max_log_se", "prior_sd_log"):
            if not (math.isfinite(values[name]) and values[name] > 0):
                raise LtvFitError(f"ltv threshold {name} must be > 0, got {values[name]:g}")
        return cls(int(values["mle_min_customers"]), int(values["mle_min_repeat_buyers"]),
                   values["mle_max_log_se"], values["prior_sd_log"])

    @classmethod
    def from_seed(cls, path: str | Path | None = None) -> LtvFitPolicy:
        """From a tag_thresholds CSV; by default the project's seeds/tag_thresholds.csv."""
        return cls.from_thresholds(_ltv_seed_rows(path))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class SubmodelFit:
    """One fit of BG/NBD or Gamma-Gamma, with what decided whether it is trusted."""

    submodel: str  # "bgnbd" or "gamma_gamma"
    method: str  # "mle" or "regularised"
    params: BgNbdParams | GammaGammaParams  # in the data's units; log_likelihood included
    converged: bool
    gradient: float  # largest |d objective / d log-parameter| per customer, off the bounds
    iterations: int
    at_bound: tuple[str, ...]
    # standard errors of the log-parameters: of the likelihood (MLE), of the posterior (MAP)
    log_standard_errors: dict[str, float]
    log_prior: float  # log prior density at the estimate (regularised; nan for MLE)
    customers: int  # customers fitted (Gamma-Gamma: repeat buyers with positive spend)
    trusted: bool  # used for the prediction
    reason: str  # a sentence: the method and why

    @property
    def log_likelihood(self) -> float:
        return self.params.log_likelihood

    def as_dict(self) -> dict[str, Any]:
        return {
            "submodel": self.submodel, "method": self.method, "params": self.params.as_dict(),
            "log_likelihood": _json_number(self.log_likelihood),
            "log_prior": _json_number(self.log_prior), "converged": self.converged,
            "gradient": _json_number(self.gradient), "iterations": self.iterations,
            "at_bound": list(self.at_bound),
            "log_standard_errors": {k: _json_number(v)
                                    for k, v in self.log_standard_errors.items()},
            "customers": self.customers, "trusted": self.trusted, "reason": self.reason,
        }


@dataclass(frozen=True)
class LtvFit:
    """The LTV model of one run as one record: the method, why, the fits used and the
    maximum-likelihood fits that were tried and not trusted."""

    method: str  # "mle" (both submodels), "regularised" (at least one) or "none"
    reason: str
    customers: int
    repeat_buyers: int
    policy: LtvFitPolicy
    bgnbd: SubmodelFit | None = None
    gamma_gamma: SubmodelFit | None = None
    rejected: tuple[SubmodelFit, ...] = ()
    time_scale: float = math.nan  # mean T: the time unit the BG/NBD prior is centred in
    spend_scale: float = math.nan  # mean net sales per purchase day: the spend prior's unit

    @property
    def model(self) -> LtvModel:
        if self.bgnbd is None or self.gamma_gamma is None:
            raise LtvFitError(self.reason, fit=self)
        return LtvModel(self.bgnbd.params, self.gamma_gamma.params)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (non-finite numbers as None)."""
        return {
            "method": self.method, "reason": self.reason, "customers": self.customers,
            "repeat_buyers": self.repeat_buyers, "policy": self.policy.as_dict(),
            "bgnbd": self.bgnbd.as_dict() if self.bgnbd else None,
            "gamma_gamma": self.gamma_gamma.as_dict() if self.gamma_gamma else None,
            "rejected": [fit.as_dict() for fit in self.rejected],
            "time_scale": _json_number(self.time_scale),
            "spend_scale": _json_number(self.spend_scale),
        }


_SUBMODEL_LABEL = {"bgnbd": "BG/NBD", "gamma_gamma": "Gamma-Gamma"}


def _submodel_fit(submodel: str, method: str, estimate: _Estimate, customers: int,
                  trusted: bool, reason: str) -> SubmodelFit:
    names = _BGNBD_NAMES if submodel == "bgnbd" else _GAMMA_GAMMA_NAMES
    optimum = estimate.optimum
    prior = estimate.prior
    standard_errors = (estimate.posterior_standard_errors if prior is not None
                       else estimate.likelihood_standard_errors)
    return SubmodelFit(
        submodel, method, estimate.params, optimum.converged, optimum.interior_gradient,
        optimum.iterations, optimum.at_bound,
        {n: float(v) for n, v in zip(names, standard_errors, strict=True)},
        prior.log_density(optimum.log_params) if prior is not None else math.nan,
        customers, trusted, reason,
    )


def _mle_distrust(estimate: _Estimate, names: tuple[str, ...], policy: LtvFitPolicy) -> str | None:
    """Why a maximum-likelihood estimate is not trusted (None: it is)."""
    optimum = estimate.optimum
    if not optimum.converged:
        return (f"the maximum-likelihood fit did not converge (gradient "
                f"{optimum.interior_gradient:.2g} per customer at the optimiser's stop)")
    if optimum.at_bound:
        return (f"the maximum-likelihood fit ran to the bound of {', '.join(optimum.at_bound)} "
                "(a limit of the model the data cannot tell from a finite value)")
    params = estimate.params
    if isinstance(params, GammaGammaParams) and params.p + params.q <= 1:
        return (f"the maximum-likelihood p + q = {params.p + params.q:.3g} <= 1, so a customer "
                "with one purchase day would have an infinite expected spend")
    standard_errors = estimate.likelihood_standard_errors
    if not np.isfinite(standard_errors).all():
        return ("the likelihood is flat along some direction at its maximum (the observed "
                "information is singular), so the data do not pin the estimate down")
    worst = int(np.argmax(standard_errors))
    if not standard_errors[worst] <= policy.mle_max_log_se:
        return (f"the data do not pin the maximum-likelihood estimate down (standard error of "
                f"log {names[worst]} = {standard_errors[worst]:.2g} > mle_max_log_se = "
                f"{policy.mle_max_log_se:g})")
    return None


def _choose(submodel: str, policy: LtvFitPolicy, counts: str, too_few: str | None,
            mle, regularised, customers: int) -> tuple[SubmodelFit | None, tuple, str]:
    """The trusted MLE of a submodel, else its regularised fit (None if that fails too), the
    rejected MLE, and the reason. `mle` and `regularised` are thunks returning an _Estimate."""
    label = _SUBMODEL_LABEL[submodel]
    names = _BGNBD_NAMES if submodel == "bgnbd" else _GAMMA_GAMMA_NAMES
    rejected: tuple[SubmodelFit, ...] = ()
    why_not = too_few
    if why_not is None:
        try:
            estimate = mle()
        except LtvFitError as exc:
            why_not = str(exc)
        else:
            why_not = _mle_distrust(estimate, names, policy)
            if why_not is None:
                se = max(estimate.likelihood_standard_errors)
                reason = (f"{label} by maximum likelihood ({counts}; largest standard error of a "
                          f"log-parameter {se:.2g}).")
                return _submodel_fit(submodel, METHOD_MLE, estimate, customers, True, reason), (), ""
            rejected = (_submodel_fit(submodel, METHOD_MLE, estimate, customers, False,
                                      f"{label} maximum likelihood not trusted: {why_not}."),)
    estimate = regularised()
    if not estimate.optimum.converged:
        return None, rejected, (
            f"{label}: maximum likelihood is not trusted ({why_not}) and the regularised fit did "
            f"not converge either (gradient {estimate.optimum.interior_gradient:.2g} per "
            "customer)")
    params = estimate.params
    if isinstance(params, GammaGammaParams) and params.p + params.q <= 1:
        return None, rejected, (
            f"{label}: maximum likelihood is not trusted ({why_not}) and the regularised fit "
            f"has p + q = {params.p + params.q:.3g} <= 1 (infinite expected spend)")
    reason = (f"{label} regularised (maximum a posteriori, normal priors of sd "
              f"{policy.prior_sd_log:g} on the log-parameters): {why_not}.")
    return _submodel_fit(submodel, METHOD_REGULARISED, estimate, customers, True, reason), \
        rejected, ""


def _few(count: int, noun: str) -> str:
    """'no repeat buyer', 'only 1 repeat buyer', 'only 12 repeat buyers'."""
    return f"no {noun}" if count == 0 else f"only {count} {noun}{'s' if count != 1 else ''}"


def _spend_scale(s: RfmSummary, first_purchase_value: np.ndarray | None) -> float:
    """Mean net sales per purchase day (negative days count as 0): the unit of the spend
    prior. Without first purchases, over the repeat days only."""
    repeat_sales = float(s.frequency @ np.where(s.frequency > 0,
                                                np.maximum(s.monetary_value, 0.0), 0.0))
    if first_purchase_value is None:
        days = float(s.frequency.sum())
        return repeat_sales / days if days > 0 else 0.0
    return (float(np.maximum(first_purchase_value, 0.0).sum()) + repeat_sales) / float(
        (s.frequency + 1).sum())


def fit_ltv(summary: Any, policy: LtvFitPolicy | None = None, *,
            first_purchase_value=None) -> LtvFit:
    """The LTV model a run uses, per submodel: the maximum-likelihood fit where `policy` trusts
    it, else the regularised (maximum a posteriori) fit; method "none", with the reason, when
    the data give even the regularised fit nothing to stand on (no customers; every first
    purchase on the run date; no positive spend).

    `policy` defaults to the project's seeds/tag_thresholds.csv. `first_purchase_value` (one per
    customer), if given, enters the spend prior's unit (mean net sales per purchase day).
    Raises LtvFitError only for invalid input (nulls, negatives, recency > T ...)."""
    s = summary_arrays(summary, require_monetary=True)
    policy = policy if policy is not None else LtvFitPolicy.from_seed()
    first = None
    if first_purchase_value is not None:
        first = np.asarray(first_purchase_value, dtype=np.float64).reshape(-1)
        if first.shape[0] != len(s):
            raise LtvFitError("first_purchase_value must have one value per customer")
        _check_finite("first_purchase_value", first)
    n = len(s)
    repeat = int((s.frequency > 0).sum())
    run = {"customers": n, "repeat_buyers": repeat, "policy": policy}
    if n == 0:
        return LtvFit(METHOD_NONE, "no customers: nobody has purchased yet", **run)
    if not (s.T > 0).any():
        return LtvFit(METHOD_NONE, (
            f"every first purchase is on the run date (T == 0 for all {n} customers): no time "
            "has passed in which anyone could buy again, so a purchase rate would come from "
            "the prior alone"), **run)
    spend_scale = _spend_scale(s, first)
    if not spend_scale > 0:
        return LtvFit(METHOD_NONE, (
            "no purchase day with positive net sales: there is no spend to value the predicted "
            "purchases by"), **run)

    customers = (f"{n} customer{'s' if n != 1 else ''}, "
                 f"{repeat} repeat buyer{'s' if repeat != 1 else ''}")
    too_few = None
    if n < policy.mle_min_customers:
        too_few = (f"only {n} customer{'s' if n != 1 else ''} (maximum likelihood needs "
                   f"mle_min_customers = {policy.mle_min_customers})")
    elif repeat < policy.mle_min_repeat_buyers:
        too_few = (f"{_few(repeat, 'repeat buyer')} (maximum likelihood needs "
                   f"mle_min_repeat_buyers = {policy.mle_min_repeat_buyers})")

    def bgnbd_mle():
        _check_bgnbd_input(s)
        return _estimate_bgnbd(s)

    bgnbd, bgnbd_rejected, bgnbd_failure = _choose(
        "bgnbd", policy, customers, too_few, bgnbd_mle,
        lambda: _estimate_bgnbd(s, _Prior(np.log(_BGNBD_PRIOR_CENTRE), policy.prior_sd_log)), n)

    used = (s.frequency > 0) & (s.monetary_value > 0)
    x, m = s.frequency[used], s.monetary_value[used]
    spenders = int(used.sum())
    counts = f"{spenders} repeat buyer{'s' if spenders != 1 else ''} with positive spend"
    too_few = None
    if spenders < policy.mle_min_repeat_buyers:
        too_few = (f"{_few(spenders, 'repeat buyer')} with positive spend (maximum likelihood "
                   f"needs mle_min_repeat_buyers = {policy.mle_min_repeat_buyers})")

    def gamma_gamma_mle():
        _check_gamma_gamma_input(s)
        return _estimate_gamma_gamma(x, m, float(m.mean()))

    gamma_gamma, gamma_gamma_rejected, gamma_gamma_failure = _choose(
        "gamma_gamma", policy, counts, too_few, gamma_gamma_mle,
        lambda: _estimate_gamma_gamma(
            x, m, spend_scale, _Prior(np.log(_GAMMA_GAMMA_PRIOR_CENTRE), policy.prior_sd_log)),
        spenders)

    rejected = bgnbd_rejected + gamma_gamma_rejected
    scales = {"time_scale": float(s.T.mean()), "spend_scale": spend_scale}
    if bgnbd is None or gamma_gamma is None:
        reason = "; ".join(r for r in (bgnbd_failure, gamma_gamma_failure) if r)
        return LtvFit(METHOD_NONE, reason, **run, bgnbd=bgnbd, gamma_gamma=gamma_gamma,
                      rejected=rejected, **scales)
    method = METHOD_MLE if bgnbd.method == gamma_gamma.method == METHOD_MLE else METHOD_REGULARISED
    return LtvFit(method, f"{bgnbd.reason} {gamma_gamma.reason}", **run, bgnbd=bgnbd,
                  gamma_gamma=gamma_gamma, rejected=rejected, **scales)


def predict_clv(summary: Any, horizon: float, model: LtvModel | None = None, *,
                first_purchase_value=None) -> ClvPrediction:
    """Expected purchases over (T, T + horizon] x expected spend per purchase, undiscounted.

    `horizon` is in the time unit of recency and T. With `model=None` both models are fitted on
    `summary` first. `first_purchase_value` (one per customer), if given, values customers
    without repeat purchases by their first purchase (see gamma_gamma_expected_spend) instead
    of the population mean. Every returned array is finite (else LtvFitError)."""
    s = summary_arrays(summary, require_monetary=True)
    model = model if model is not None else fit_ltv_model(s)
    # Customers with the same (x, t_x, T) share E[Y(t)] and P(alive): evaluate each tuple once.
    (x, t_x, T), inverse, _ = _unique_rows(s.frequency, s.recency, s.T)
    purchases = bgnbd_expected_purchases(model.bgnbd, float(horizon), x, t_x, T)
    alive = bgnbd_probability_alive(model.bgnbd, x, t_x, T)
    purchases, alive = purchases[inverse], alive[inverse]
    spend = gamma_gamma_expected_spend(model.gamma_gamma, s.frequency, s.monetary_value,
                                       first_purchase_value)
    value = purchases * spend
    for name, values in (("purchases", purchases), ("P(alive)", alive), ("spend", spend),
                         ("value", value)):
        if not np.isfinite(values).all():
            raise LtvFitError(f"predicted {name} is not finite for some customers")
    return ClvPrediction(model, float(horizon), purchases, alive, spend, value)


def horizon_label(horizon_days: float) -> str:
    """'3y' for 1095 days, else '<n>d' (used in the evidence text)."""
    days = float(horizon_days)
    if days > 0 and days % DAYS_PER_YEAR == 0:
        return f"{int(days // DAYS_PER_YEAR)}y"
    return f"{days:g}d"


def band_ltv(values: np.ndarray, high_min_exclusive: float, medium_min: float) -> np.ndarray:
    """value > high_min_exclusive -> high; >= medium_min -> medium; else low."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(
        values > high_min_exclusive, "high", np.where(values >= medium_min, "medium", "low")
    ).astype(object)


def _ltv_schema():
    import pyarrow as pa

    return pa.schema([
        ("customer_id", pa.string()),
        ("tag_code", pa.string()),
        ("tag_value", pa.string()),
        ("evidence", pa.string()),
        ("predicted_net_sales", pa.decimal128(18, 2)),
        ("predicted_purchases", pa.float64()),
        ("probability_alive", pa.float64()),
        ("fit_method", pa.string()),
        ("fit_reason", pa.string()),
    ])


def empty_ltv_table():
    """The tag_ltv columns with no rows."""
    return _ltv_schema().empty_table()


def _as_arrow_table(summary: Any):
    """pyarrow Table from a Table, RecordBatch(Reader), DuckDB relation, pandas frame or mapping."""
    import pyarrow as pa

    if isinstance(summary, pa.Table):
        return summary
    if isinstance(summary, pa.RecordBatch):
        return pa.Table.from_batches([summary])
    if isinstance(summary, pa.RecordBatchReader):
        return summary.read_all()
    if hasattr(summary, "fetch_arrow_table"):  # duckdb.DuckDBPyRelation
        return summary.fetch_arrow_table()
    if hasattr(summary, "columns") and hasattr(summary, "iloc"):  # pandas DataFrame
        return pa.Table.from_pandas(summary, preserve_index=False)
    if isinstance(summary, Mapping):
        return pa.table({str(k): np.asarray(v) if not isinstance(v, list) else v
                         for k, v in summary.items()})
    raise TypeError(f"unsupported summary type {type(summary).__name__}")


@dataclass(frozen=True)
class LtvTagRun:
    """What one run of the ltv tag produced: the fit record and the tag rows."""

    fit: LtvFit
    tags: Any  # pyarrow.Table with tag_ltv's columns; no rows when fit.method == "none"


@dataclass(frozen=True)
class _TagInput:
    """A validated per-customer summary in days, as the tag is scored from it."""

    customer_id: Any  # pyarrow string array
    summary: RfmSummary  # monetary_value < 0 taken as 0
    first_purchase_value: np.ndarray


def _tag_input(summary_table: Any) -> _TagInput | None:
    """The summary's columns, validated; None when it has no rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _as_arrow_table(summary_table)
    if table.num_rows == 0:
        return None
    id_columns = [n for n in table.column_names if n.lower() == "customer_id"]
    if not id_columns:
        raise LtvFitError(f"summary has no column 'customer_id' (columns: {table.column_names})")
    customer_id = pc.cast(table.column(id_columns[0]), pa.string())
    if customer_id.null_count:
        raise LtvFitError(f"summary has {customer_id.null_count} null customer_id value(s)")
    if pc.count_distinct(customer_id).as_py() != table.num_rows:
        raise LtvFitError("summary has duplicate customer_id values; expected one row per customer")
    # A customer whose repeat purchase days net to < 0 (discounts beyond the price) carries no
    # spend information: mean spend 0 (excluded from the Gamma-Gamma fit, shrunk in prediction).
    summary = RfmSummary(
        _column(table, "frequency"), _column(table, "recency"), _column(table, "T"),
        np.maximum(_column(table, "monetary_value"), 0.0),  # NaN stays NaN (and is rejected)
    )
    return _TagInput(customer_id, summary, _column(table, "first_purchase_value"))


def _check_horizon(horizon_days: float) -> None:
    if not (math.isfinite(float(horizon_days)) and float(horizon_days) > 0):
        raise LtvFitError(f"horizon_days must be a positive number, got {horizon_days}")


def _tag_rows(data: _TagInput, model: LtvModel, method: str, reason: str, horizon_days: float,
              high_min_exclusive: float, medium_min: float):
    """The tag_ltv rows of `data` predicted by `model`, sorted by customer_id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    prediction = predict_clv(data.summary, float(horizon_days), model,
                             first_purchase_value=data.first_purchase_value)
    cents = np.round(prediction.predicted_value, 2)
    if (cents >= 1e16).any():
        raise LtvFitError("predicted net sales exceed DECIMAL(18,2)")
    predicted = pa.array(cents, pa.float64()).cast(pa.decimal128(18, 2))
    evidence = pc.binary_join_element_wise(
        f"predicted_net_sales_{horizon_label(horizon_days)} = ", pc.cast(predicted, pa.string()), ""
    )
    rows = len(data.summary)
    result = pa.table(
        [
            data.customer_id,
            pa.array(np.full(rows, TAG_CODE, dtype=object), pa.string()),
            pa.array(band_ltv(cents, float(high_min_exclusive), float(medium_min)), pa.string()),
            evidence,
            predicted,
            pa.array(prediction.predicted_purchases, pa.float64()),
            pa.array(prediction.probability_alive, pa.float64()),
            pa.array(np.full(rows, method, dtype=object), pa.string()),
            pa.array(np.full(rows, reason, dtype=object), pa.string()),
        ],
        schema=_ltv_schema(),
    )
    return result.sort_by([("customer_id", "ascending")])


def _fit_tag_input(data: _TagInput | None, policy: LtvFitPolicy | None) -> LtvFit:
    policy = policy if policy is not None else LtvFitPolicy.from_seed()
    if data is None:
        return LtvFit(METHOD_NONE, "no customers: nobody has purchased yet", 0, 0, policy)
    return fit_ltv(data.summary, policy, first_purchase_value=data.first_purchase_value)


def fit_for_tag(summary_table: Any, policy: LtvFitPolicy | None = None) -> LtvFit:
    """The LTV model of one run of the tag: fit_ltv on the tag's per-customer summary in days
    (columns as ltv_tag_run's), maximum likelihood where `policy` (default: the project's seed)
    trusts it, else regularised; method "none" with the reason when nothing can be predicted.
    Raises LtvFitError on invalid input."""
    return _fit_tag_input(_tag_input(summary_table), policy)


def ltv_tag_run(summary_table: Any, horizon_days: float, high_min_exclusive: float,
                medium_min: float, policy: LtvFitPolicy | None = None) -> LtvTagRun:
    """The `ltv` tag rows for a per-customer summary in days (what tag_ltv materialises), with
    the fit they come from: fit_for_tag, then tags_from_model.

    `summary_table` has customer_id, frequency, recency, T (or t), monetary_value and
    first_purchase_value (net sales of the first purchase day), one row per customer who
    purchased. The model is fit_ltv's (policy: default the project's seed): maximum likelihood
    where trusted, else regularised; fit_method and fit_reason record which and why on every
    row. Customers without a repeat purchase are valued by the Gamma-Gamma posterior given
    their first purchase (our spend is so heavy-tailed that the fitted q can be < 1, where the
    textbook population mean p gamma / (q - 1) is infinite). The predicted net sales over
    `horizon_days` are rounded to cents and the rounded value is banded (so the evidence and
    the band always agree): > high_min_exclusive high, >= medium_min medium, else low.
    A negative monetary_value (repeat days netting below zero) is taken as 0.
    Returns the tags sorted by customer_id; no rows (same columns) when there are no
    customers or fit.method is "none". Raises LtvFitError on invalid input."""
    data = _tag_input(summary_table)
    if data is not None:
        _check_horizon(horizon_days)
    fit = _fit_tag_input(data, policy)
    if fit.method == METHOD_NONE:
        return LtvTagRun(fit, empty_ltv_table())
    return LtvTagRun(fit, _tag_rows(data, fit.model, fit.method, fit.reason, horizon_days,
                                    high_min_exclusive, medium_min))


def tags_from_model(summary_table: Any, model: LtvModel, method: str, reason: str,
                    horizon_days: float, high_min_exclusive: float, medium_min: float):
    """The `ltv` tag rows of a summary predicted by a given model (a stored fit: tag_ltv scores
    with the parameters marts.ltv_model_fits recorded for the run, never refitting), with
    `method` and `reason` on every row. No rows when the summary has none."""
    _check_horizon(horizon_days)
    data = _tag_input(summary_table)
    if data is None:
        return empty_ltv_table()
    return _tag_rows(data, model, method, reason, horizon_days, high_min_exclusive, medium_min)


def score_ltv(summary_table: Any, horizon_days: float, high_min_exclusive: float,
              medium_min: float, policy: LtvFitPolicy | None = None):
    """The tag rows of ltv_tag_run; LtvFitError (with .fit) when customers purchased but no
    prediction is possible (fit method "none"). No customers -> an empty table."""
    run = ltv_tag_run(summary_table, horizon_days, high_min_exclusive, medium_min, policy)
    if run.fit.method == METHOD_NONE and run.fit.customers:
        raise LtvFitError(run.fit.reason, fit=run.fit)
    return run.tags


# --------------------------------------------------------------------------------------------
# The stored fit: one row of marts.ltv_model_fits per run date
# --------------------------------------------------------------------------------------------

# (column, arrow type name) of a fit row, in order; docs in models/marts/ltv/_ltv_card__models.yml.
_SUBMODEL_COLUMNS = {"bgnbd": _BGNBD_NAMES, "gamma_gamma": _GAMMA_GAMMA_NAMES}


def _fit_row_fields() -> list[tuple[str, str]]:
    fields_ = [("as_of_date", "date32"), ("method", "string"), ("reason", "string"),
               ("horizon_days", "float64"), ("customers", "int64"), ("repeat_buyers", "int64")]
    for submodel, names in _SUBMODEL_COLUMNS.items():
        fields_ += [(f"{submodel}_method", "string")]
        fields_ += [(name, "float64") for name in names]
        fields_ += [(f"{submodel}_log_likelihood", "float64"),
                    (f"{submodel}_log_prior", "float64"), (f"{submodel}_customers", "int64"),
                    (f"{submodel}_converged", "bool_"), (f"{submodel}_gradient", "float64"),
                    (f"{submodel}_iterations", "int64"), (f"{submodel}_at_bound", "string")]
        fields_ += [(f"se_log_{name}", "float64") for name in names]
    for submodel, names in _SUBMODEL_COLUMNS.items():
        fields_ += [(f"rejected_{submodel}_reason", "string")]
        fields_ += [(f"rejected_{name}", "float64") for name in names]
        fields_ += [(f"rejected_{submodel}_log_likelihood", "float64"),
                    (f"rejected_{submodel}_converged", "bool_")]
    fields_ += [("time_scale", "float64"), ("spend_scale", "float64")]
    fields_ += [(name, "float64") for name in ("mle_min_customers", "mle_min_repeat_buyers",
                                               "mle_max_log_se", "prior_sd_log")]
    fields_ += [("fit_record", "string")]
    return fields_


def fit_row_schema():
    """The arrow schema of a marts.ltv_model_fits row."""
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in _fit_row_fields()])


def _as_date(value: Any):
    """A date from a date, a datetime or 'YYYY-MM-DD' (None stays None)."""
    import datetime as dt

    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _finite_or_none(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def fit_row(fit: LtvFit, as_of_date: Any, horizon_days: float) -> dict[str, Any]:
    """The LtvFit of a run as one flat row of marts.ltv_model_fits (non-finite numbers None):
    method and reason, both submodels' parameters (alpha in days where the fit was on days),
    log-likelihoods, convergence and the standard errors of the log-parameters, the
    maximum-likelihood fit each submodel tried and rejected (None when it did not), the policy,
    and the whole record as JSON (fit_record: LtvFit.as_dict())."""
    row: dict[str, Any] = {name: None for name, _ in _fit_row_fields()}
    row.update(as_of_date=_as_date(as_of_date), method=fit.method, reason=fit.reason,
               horizon_days=float(horizon_days), customers=fit.customers,
               repeat_buyers=fit.repeat_buyers, time_scale=_finite_or_none(fit.time_scale),
               spend_scale=_finite_or_none(fit.spend_scale), **fit.policy.as_dict(),
               fit_record=json.dumps(fit.as_dict(), allow_nan=False, sort_keys=True))
    for part in (fit.bgnbd, fit.gamma_gamma):
        if part is None:
            continue
        s = part.submodel
        row.update({name: _finite_or_none(v) for name, v in part.params.as_dict().items()})
        row.update({
            f"{s}_method": part.method, f"{s}_log_likelihood": _finite_or_none(part.log_likelihood),
            f"{s}_log_prior": _finite_or_none(part.log_prior), f"{s}_customers": part.customers,
            f"{s}_converged": part.converged, f"{s}_gradient": _finite_or_none(part.gradient),
            f"{s}_iterations": part.iterations, f"{s}_at_bound": ",".join(part.at_bound),
        })
        row.update({f"se_log_{name}": _finite_or_none(v)
                    for name, v in part.log_standard_errors.items()})
    for part in fit.rejected:
        s = part.submodel
        row.update({f"rejected_{name}": _finite_or_none(v)
                    for name, v in part.params.as_dict().items()})
        row.update({f"rejected_{s}_reason": part.reason,
                    f"rejected_{s}_log_likelihood": _finite_or_none(part.log_likelihood),
                    f"rejected_{s}_converged": part.converged})
    return row


def fit_rows_table(rows: list[dict[str, Any]]):
    """Fit rows as an arrow table of fit_row_schema()."""
    import pyarrow as pa

    schema = fit_row_schema()
    return pa.table({name: pa.array([row[name] for row in rows], schema.field(name).type)
                     for name in schema.names}, schema=schema)


def model_from_fit_row(row: Mapping[str, Any]) -> LtvModel:
    """The LtvModel a stored fit row describes (what tag_ltv predicts with). LtvFitError when
    the row has no model (method "none") or a parameter is missing."""
    if row.get("method") not in (METHOD_MLE, METHOD_REGULARISED):
        raise LtvFitError(f"the stored fit has no model (method {row.get('method')!r}): "
                          f"{row.get('reason')}")
    missing = [n for n in (*_BGNBD_NAMES, *_GAMMA_GAMMA_NAMES) if row.get(n) is None]
    if missing:
        raise LtvFitError(f"the stored fit has no value for {', '.join(missing)}")
    return LtvModel(BgNbdParams(*(float(row[n]) for n in _BGNBD_NAMES)),
                    GammaGammaParams(*(float(row[n]) for n in _GAMMA_GAMMA_NAMES)))


# --------------------------------------------------------------------------------------------
# Calibration / hold-out check on transaction data
# --------------------------------------------------------------------------------------------


# The calibration check of Fader, Hardie & Lee (2005), figure 4: customers grouped by their
# repeat purchases in the calibration period, 0, 1, ..., 6 and 7 or more.
CALIBRATION_TOP_BUCKET = 7
CALIBRATION_DONE = "done"
CALIBRATION_SKIPPED = "skipped"


def frequency_bucket_label(bucket: int) -> str:
    return f"{bucket}+" if bucket == CALIBRATION_TOP_BUCKET else str(bucket)


@dataclass(frozen=True)
class CalibrationPolicy:
    """The hold-out check's settings: the `ltv` rows calibration_* of seeds/tag_thresholds.csv."""

    calibration_holdout_days: int  # the cut date is this many days before the run date
    calibration_min_history_days: int  # the history before the cut must span at least this
    calibration_max_relative_error: float  # a bucket is "off" beyond this |predicted/actual - 1|
    calibration_min_bucket_customers: int  # a bucket with fewer customers is not judged

    @classmethod
    def from_thresholds(cls, thresholds: Mapping[str, Any]) -> CalibrationPolicy:
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in thresholds]
        if missing:
            raise LtvFitError(f"seed tag_thresholds has no ltv row(s) for {', '.join(missing)}")
        values = {name: float(thresholds[name]) for name in names}
        for name in ("calibration_holdout_days", "calibration_min_history_days",
                     "calibration_min_bucket_customers"):
            if not (values[name] >= 1 and values[name] == int(values[name])):
                raise LtvFitError(f"ltv threshold {name} must be a whole number >= 1, got "
                                  f"{values[name]:g}")
        if not (math.isfinite(values["calibration_max_relative_error"])
                and values["calibration_max_relative_error"] > 0):
            raise LtvFitError("ltv threshold calibration_max_relative_error must be > 0, got "
                              f"{values['calibration_max_relative_error']:g}")
        return cls(int(values["calibration_holdout_days"]),
                   int(values["calibration_min_history_days"]),
                   values["calibration_max_relative_error"],
                   int(values["calibration_min_bucket_customers"]))

    @classmethod
    def from_seed(cls, path: str | Path | None = None) -> CalibrationPolicy:
        return cls.from_thresholds(_ltv_seed_rows(path))


def _ltv_seed_rows(path: str | Path | None) -> dict[str, str]:
    import csv

    from crm_tags import PROJECT_DIR

    path = Path(path) if path is not None else PROJECT_DIR / "seeds" / "tag_thresholds.csv"
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return {row["parameter"]: row["value"] for row in csv.DictReader(handle)
                    if row.get("tag_code") == TAG_CODE}
    except OSError as exc:
        raise LtvFitError(f"cannot read {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class CalibrationBucket:
    """Customers with `bucket` repeat purchases in the calibration period (7+: seven or more):
    the hold-out purchases (purchase occasions) and net sales the model predicted for them,
    and what they did."""

    bucket: int  # 0 .. CALIBRATION_TOP_BUCKET
    customers: int
    predicted_purchases: float  # summed over the bucket's customers
    actual_purchases: float
    predicted_net_sales: float
    actual_net_sales: float

    @property
    def label(self) -> str:
        return frequency_bucket_label(self.bucket)

    @property
    def predicted_per_customer(self) -> float:
        return self.predicted_purchases / self.customers if self.customers else math.nan

    @property
    def actual_per_customer(self) -> float:
        return self.actual_purchases / self.customers if self.customers else math.nan

    @property
    def relative_error(self) -> float:
        """predicted / actual - 1 (nan when nothing was bought): -0.2 is 20% under."""
        return self.predicted_purchases / self.actual_purchases - 1 if self.actual_purchases \
            else math.nan

    def verdict(self, policy: CalibrationPolicy) -> str:
        """close | off (|predicted - actual| > calibration_max_relative_error x actual) |
        too_few_customers (fewer than calibration_min_bucket_customers: not judged)."""
        if self.customers < policy.calibration_min_bucket_customers:
            return "too_few_customers"
        gap = abs(self.predicted_purchases - self.actual_purchases)
        return "close" if gap <= policy.calibration_max_relative_error * self.actual_purchases \
            else "off"


@dataclass(frozen=True)
class Calibration:
    """A hold-out check: the model fitted on the calibration period (fit), its predictions over
    the `holdout` that followed against what happened, per calibration-frequency bucket."""

    fit: LtvFit
    holdout: float  # in the summary's time unit
    buckets: tuple[CalibrationBucket, ...]  # 0 .. 7+, every bucket (customers may be 0)

    @property
    def predicted_purchases(self) -> float:
        return float(sum(b.predicted_purchases for b in self.buckets))

    @property
    def actual_purchases(self) -> float:
        return float(sum(b.actual_purchases for b in self.buckets))


def calibrate(summary: Any, actual_purchases, actual_net_sales, holdout: float,
              policy: LtvFitPolicy | None = None, *, first_purchase_value=None) -> Calibration:
    """Fit on a calibration-period summary (fit_ltv: the procedure the tag uses, `policy`
    default the seed's), predict each customer's purchases and net sales over the `holdout`
    that followed (in the summary's time unit), and set them against `actual_purchases` /
    `actual_net_sales` (one per customer), summed per calibration-frequency bucket 0 .. 7+.
    When fit.method is "none" the buckets are empty (no prediction); LtvFitError on invalid
    input."""
    s = summary_arrays(summary, require_monetary=True)
    s = RfmSummary(s.frequency, s.recency, s.T, np.maximum(s.monetary_value, 0.0))
    actual = np.asarray(actual_purchases, dtype=np.float64).reshape(-1)
    actual_value = np.asarray(actual_net_sales, dtype=np.float64).reshape(-1)
    for name, values in (("actual_purchases", actual), ("actual_net_sales", actual_value)):
        if values.shape[0] != len(s):
            raise LtvFitError(f"{name} has {values.shape[0]} values for {len(s)} customers")
        _check_finite(name, values)
    if not (math.isfinite(float(holdout)) and float(holdout) > 0):
        raise LtvFitError(f"the hold-out period must be a positive length, got {holdout}")
    first = None
    if first_purchase_value is not None:
        first = np.asarray(first_purchase_value, dtype=np.float64).reshape(-1)
    policy = policy if policy is not None else LtvFitPolicy.from_seed()
    fit = fit_ltv(s, policy, first_purchase_value=first)
    if fit.method == METHOD_NONE:
        return Calibration(fit, float(holdout), ())
    prediction = predict_clv(s, float(holdout), fit.model, first_purchase_value=first)
    bucket = np.minimum(s.frequency, CALIBRATION_TOP_BUCKET).astype(np.int64)
    n = CALIBRATION_TOP_BUCKET + 1

    def per_bucket(values: np.ndarray) -> np.ndarray:
        return np.bincount(bucket, weights=values, minlength=n)

    counts = np.bincount(bucket, minlength=n)
    sums = [per_bucket(v) for v in (prediction.predicted_purchases, actual,
                                    prediction.predicted_value, actual_value)]
    buckets = tuple(
        CalibrationBucket(k, int(counts[k]), *(float(v[k]) for v in sums)) for k in range(n)
    )
    return Calibration(fit, float(holdout), buckets)


def rfm_summary_from_transactions(transactions: Any, as_of: Any, *,
                                  customer_col: str = "customer_id", date_col: str = "order_date",
                                  value_col: str = "net_sales"):
    """Per-customer summary in days as of `as_of`, built like int_customers_ltv_summary.

    Purchase occasions are distinct days (a day's sales are summed); frequency = days - 1,
    recency = last day - first day, T = as_of - first day, monetary_value = mean sales of the
    repeat days (0 when frequency is 0), first_purchase_value = sales of the first day.
    Transactions after `as_of` are ignored."""
    import pandas as pd

    frame = pd.DataFrame({
        "customer_id": np.asarray(transactions[customer_col]),
        "day": pd.to_datetime(np.asarray(transactions[date_col])).normalize(),
        "sales": np.asarray(transactions[value_col], dtype=np.float64),
    })
    as_of = pd.Timestamp(as_of).normalize()
    frame = frame[frame["day"] <= as_of]
    days = frame.groupby(["customer_id", "day"], as_index=False, sort=True)["sales"].sum()
    first = days.groupby("customer_id")["day"].transform("min")
    days["is_repeat"] = days["day"] > first
    grouped = days.groupby("customer_id", sort=True)
    summary = pd.DataFrame({
        "first_day": grouped["day"].min(),
        "last_day": grouped["day"].max(),
        "frequency": grouped["is_repeat"].sum().astype(np.int64),
        "repeat_sales": days[days["is_repeat"]].groupby("customer_id")["sales"].sum(),
        "first_purchase_value": days[~days["is_repeat"]].set_index("customer_id")["sales"],
    }).fillna({"repeat_sales": 0.0})
    summary["recency"] = (summary["last_day"] - summary["first_day"]).dt.days.astype(np.float64)
    summary["T"] = (as_of - summary["first_day"]).dt.days.astype(np.float64)
    summary["monetary_value"] = np.where(
        summary["frequency"] > 0, summary["repeat_sales"] / summary["frequency"].clip(lower=1), 0.0
    )
    summary = summary.reset_index()
    return summary[["customer_id", "frequency", "recency", "T", "monetary_value",
                    "first_purchase_value"]]


def holdout_evaluation(transactions: Any, calibration_end: Any, holdout_end: Any, *,
                       customer_col: str = "customer_id", date_col: str = "order_date",
                       value_col: str = "net_sales") -> dict[str, Any]:
    """Fit on the purchases up to `calibration_end`, predict (calibration_end, holdout_end].

    Returns the aggregate and per-customer errors of predicted vs actual purchase days (and
    net sales) in the hold-out period for the customers known at calibration_end, plus the
    mean predicted vs actual hold-out purchases by calibration frequency (0 .. 7+)."""
    import pandas as pd

    calibration_end = pd.Timestamp(calibration_end).normalize()
    holdout_end = pd.Timestamp(holdout_end).normalize()
    horizon = float((holdout_end - calibration_end).days)
    if horizon <= 0:
        raise LtvFitError("holdout_end must be after calibration_end")
    summary = rfm_summary_from_transactions(
        transactions, calibration_end,
        customer_col=customer_col, date_col=date_col, value_col=value_col,
    )
    prediction = predict_clv(summary, horizon,
                             first_purchase_value=summary["first_purchase_value"].to_numpy())
    frame = pd.DataFrame({
        "customer_id": np.asarray(transactions[customer_col]),
        "day": pd.to_datetime(np.asarray(transactions[date_col])).normalize(),
        "sales": np.asarray(transactions[value_col], dtype=np.float64),
    })
    later = frame[(frame["day"] > calibration_end) & (frame["day"] <= holdout_end)]
    actual_days = later.groupby("customer_id")["day"].nunique()
    actual_sales = later.groupby("customer_id")["sales"].sum()
    actual = actual_days.reindex(summary["customer_id"]).fillna(0).to_numpy(np.float64)
    actual_value = actual_sales.reindex(summary["customer_id"]).fillna(0).to_numpy(np.float64)
    predicted = prediction.predicted_purchases
    bucket = np.minimum(summary["frequency"].to_numpy(), 7).astype(int)
    by_frequency = [
        {
            "frequency": f"{k}+" if k == 7 else str(k),
            "customers": int((bucket == k).sum()),
            "predicted_mean": float(predicted[bucket == k].mean()),
            "actual_mean": float(actual[bucket == k].mean()),
        }
        for k in range(8) if (bucket == k).any()
    ]
    return {
        "customers": len(summary),
        "holdout_days": horizon,
        "model": prediction.model.as_dict(),
        "predicted_purchases": float(predicted.sum()),
        "actual_purchases": float(actual.sum()),
        "purchases_relative_error": float(predicted.sum() / actual.sum() - 1.0)
        if actual.sum() > 0 else math.nan,
        "purchases_mae": float(np.abs(predicted - actual).mean()),
        "purchases_rmse": float(np.sqrt(((predicted - actual) ** 2).mean())),
        "purchases_correlation": float(np.corrcoef(predicted, actual)[0, 1])
        if actual.std() > 0 and predicted.std() > 0 else math.nan,
        "predicted_net_sales": float(prediction.predicted_value.sum()),
        "actual_net_sales": float(actual_value.sum()),
        "net_sales_relative_error": float(prediction.predicted_value.sum() / actual_value.sum() - 1)
        if actual_value.sum() > 0 else math.nan,
        "by_frequency": by_frequency,
    }


def _calibration_row_fields() -> list[tuple[str, str]]:
    return [("as_of_date", "date32"), ("cut_date", "date32"), ("holdout_days", "int64"),
            ("frequency_bucket", "string"), ("bucket_order", "int64"), ("status", "string"),
            ("status_reason", "string"), ("fit_method", "string"), ("fit_reason", "string"),
            ("customers", "int64"), ("predicted_purchases", "float64"),
            ("actual_purchases", "float64"), ("predicted_per_customer", "float64"),
            ("actual_per_customer", "float64"), ("relative_error", "float64"),
            ("predicted_net_sales", "float64"), ("actual_net_sales", "float64"),
            ("verdict", "string")]


def calibration_row_schema():
    """The arrow schema of marts.ltv_calibration (docs: models/marts/ltv/_ltv_card__models.yml)."""
    import pyarrow as pa

    return pa.schema([(name, getattr(pa, kind)()) for name, kind in _calibration_row_fields()])


def calibration_skip_reason(T_days, cut_date: Any, policy: CalibrationPolicy) -> str | None:
    """Why the warehouse's hold-out check cannot run (None: it can): nobody had purchased by the
    cut date, or the purchase history before it is shorter than calibration_min_history_days
    (`T_days`: each calibration customer's days from the first purchase to the cut)."""
    T_days = np.asarray(T_days, dtype=np.float64)
    holdout = policy.calibration_holdout_days
    if T_days.size == 0:
        return (f"no customer had purchased by the cut date {cut_date} (calibration_holdout_days "
                f"= {holdout} before the run date): the order history is too short for a "
                "hold-out check")
    span = int(T_days.max())
    if span < policy.calibration_min_history_days:
        return (f"the order history before the cut date {cut_date} spans only {span} day"
                f"{'s' if span != 1 else ''} (calibration_min_history_days = "
                f"{policy.calibration_min_history_days}; the cut is calibration_holdout_days = "
                f"{holdout} before the run date): too short to fit the model on")
    return None


def warehouse_calibration(summary_table: Any, as_of_date: Any, cut_date: Any,
                          fit_policy: LtvFitPolicy, policy: CalibrationPolicy):
    """The rows of marts.ltv_calibration for one run date: one per frequency bucket 0 .. 7+.

    `summary_table`: int_ltv_calibration_summary (the tag's summary columns as of the cut date,
    in days, plus holdout_purchase_days and holdout_net_sales after it, up to the run date).
    The model is fitted on it as the tag's is (fit_ltv, `fit_policy`) and predicts the
    calibration_holdout_days after the cut. Skipped (status "skipped", the reason, no numbers)
    when the history is too short (calibration_skip_reason), the fit gives no prediction, or
    the data are invalid (a check reports, it does not stop the build)."""
    import pyarrow as pa

    table = _as_arrow_table(summary_table)
    holdout = policy.calibration_holdout_days
    T_days = _column(table, "T") if table.num_rows else np.zeros(0)
    skip = (calibration_skip_reason(T_days, cut_date, policy) if cut_date is not None else
            "no cut date: seed tag_thresholds has no ltv calibration_holdout_days row")
    calibration = None
    if skip is None:
        try:
            calibration = calibrate(
                table, _column(table, "holdout_purchase_days"),
                _column(table, "holdout_net_sales"), float(holdout), fit_policy,
                first_purchase_value=_column(table, "first_purchase_value"))
        except LtvFitError as exc:  # what the tag's fit would refuse too: said, not raised
            skip = f"invalid calibration data: {exc}"
        else:
            if calibration.fit.method == METHOD_NONE:
                skip = f"the calibration period gives no model: {calibration.fit.reason}"
    rows = []
    for k in range(CALIBRATION_TOP_BUCKET + 1):
        row: dict[str, Any] = {name: None for name, _ in _calibration_row_fields()}
        row.update(as_of_date=_as_date(as_of_date), cut_date=_as_date(cut_date),
                   holdout_days=holdout,
                   frequency_bucket=frequency_bucket_label(k), bucket_order=k)
        if skip is not None:
            row.update(status=CALIBRATION_SKIPPED, status_reason=skip, verdict=CALIBRATION_SKIPPED)
        else:
            b = calibration.buckets[k]
            row.update(
                status=CALIBRATION_DONE, fit_method=calibration.fit.method,
                fit_reason=calibration.fit.reason, customers=b.customers,
                predicted_purchases=b.predicted_purchases, actual_purchases=b.actual_purchases,
                predicted_per_customer=_finite_or_none(b.predicted_per_customer),
                actual_per_customer=_finite_or_none(b.actual_per_customer),
                relative_error=_finite_or_none(b.relative_error),
                predicted_net_sales=b.predicted_net_sales, actual_net_sales=b.actual_net_sales,
                verdict=b.verdict(policy))
        rows.append(row)
    schema = calibration_row_schema()
    return pa.table({name: pa.array([row[name] for row in rows], schema.field(name).type)
                     for name in schema.names}, schema=schema)


def calibration_from_transactions(transactions: Any, cut_date: Any, end_date: Any, *,
                                  time_unit_days: float = 1.0,
                                  policy: LtvFitPolicy | None = None,
                                  customer_col: str = "customer_id", date_col: str = "order_date",
                                  value_col: str = "net_sales") -> Calibration:
    """The hold-out check on a transaction log: the customers who purchased on or before
    `cut_date`, summarised as of it (rfm_summary_from_transactions: purchase occasions are
    distinct days), fitted (calibrate), predicted over (cut_date, end_date] and set against the
    purchase days and net sales they had there. Time in units of `time_unit_days` days (7:
    weeks, as in the CDNOW papers; the predictions do not depend on the unit)."""
    import pandas as pd

    cut = pd.Timestamp(cut_date).normalize()
    end = pd.Timestamp(end_date).normalize()
    if end <= cut:
        raise LtvFitError(f"the hold-out end {end.date()} must be after the cut date {cut.date()}")
    summary = rfm_summary_from_transactions(transactions, cut, customer_col=customer_col,
                                            date_col=date_col, value_col=value_col)
    summary["recency"] = summary["recency"] / time_unit_days
    summary["T"] = summary["T"] / time_unit_days
    frame = pd.DataFrame({
        "customer_id": np.asarray(transactions[customer_col]),
        "day": pd.to_datetime(np.asarray(transactions[date_col])).normalize(),
        "sales": np.asarray(transactions[value_col], dtype=np.float64),
    })
    later = frame[(frame["day"] > cut) & (frame["day"] <= end)]
    ids = summary["customer_id"]
    actual = later.groupby("customer_id")["day"].nunique().reindex(ids).fillna(0)
    actual_value = later.groupby("customer_id")["sales"].sum().reindex(ids).fillna(0)
    return calibrate(summary, actual.to_numpy(np.float64), actual_value.to_numpy(np.float64),
                     (end - cut).days / time_unit_days, policy,
                     first_purchase_value=summary["first_purchase_value"].to_numpy())


# The CDNOW sample of Fader, Hardie & Lee (2005): 2,357 customers of the cohort that first
# purchased in the first quarter of 1997, 78 weeks of transactions; the papers fit on the first
# 39 weeks (to 1997-09-30) and check against the next 39 (to 1998-06-30).
CDNOW_CUT_DATE = "1997-09-30"
CDNOW_END_DATE = "1998-06-30"
CDNOW_SAMPLE_FILE = "lifetimes/datasets/CDNOW_sample.txt"


def cdnow_sample_path() -> Path:
    """CDNOW_sample.txt, the CDNOW transaction log as the PyPI package `lifetimes` ships it
    (only its data file is read; the package is never imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("lifetimes")
    except metadata.PackageNotFoundError:
        raise LtvFitError("the CDNOW transaction log comes with the PyPI package lifetimes "
                          "(requirements.lock; `make install`), which is not installed") from None
    path = Path(str(dist.locate_file(CDNOW_SAMPLE_FILE)))
    if not path.is_file():
        raise LtvFitError(f"lifetimes {dist.version} has no {CDNOW_SAMPLE_FILE} at {path}")
    return path


def read_cdnow_transactions(path: str | Path | None = None):
    """The CDNOW sample's transactions: customer_id (the sample's 1..2357, as in the shared
    cdnow_rfm_summary.csv), order_date, net_sales (dollars); one row per transaction."""
    import pandas as pd

    path = Path(path) if path is not None else cdnow_sample_path()
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype={2: str},
                            names=["master_id", "customer_id", "date", "cds", "net_sales"])
    except (OSError, ValueError) as exc:
        raise LtvFitError(f"cannot read the CDNOW transactions {path}: {exc}") from None
    frame["order_date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame[["customer_id", "order_date", "net_sales"]]


# --------------------------------------------------------------------------------------------
# CLI: crm-tags ltv-fit CSV
# --------------------------------------------------------------------------------------------


def read_summary_csv(path: str | Path, optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Columns frequency, recency, T, monetary_value of a CSV, and those of `optional` it has
    (other columns are ignored)."""
    import csv

    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise LtvFitError(f"{path}: empty file (expected a header row)")
            header = [h.strip() for h in header]
            lower = [h.lower() for h in header]
            index = {}
            for name in SUMMARY_COLUMNS:
                exact = [i for i, h in enumerate(header) if h == name]
                loose = [i for i, h in enumerate(lower) if h == name.lower()]
                if not (exact or loose):
                    raise LtvFitError(
                        f"{path}: missing column '{name}' (need {', '.join(SUMMARY_COLUMNS)})"
                    )
                index[name] = (exact or loose)[0]
            for name in optional:
                if name in lower:
                    index[name] = lower.index(name)
            columns: dict[str, list[float]] = {name: [] for name in index}
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                for name, i in index.items():
                    cell = row[i].strip() if i < len(row) else ""
                    try:
                        columns[name].append(float(cell))
                    except ValueError:
                        raise LtvFitError(
                            f"{path}:{line_no}: column '{name}' is not a number: {cell!r}"
                        ) from None
    except OSError as exc:
        raise LtvFitError(f"cannot read {path}: {exc.strerror or exc}") from None
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "csv", metavar="CSV",
        help="customer summary with columns frequency, recency, T, monetary_value "
             "(recency and T in one time unit; alpha comes out in that unit)",
    )
    parser.add_argument(
        "--record", action="store_true",
        help="print the fit record the ltv tag would use (maximum likelihood where trusted, "
             "else regularised; method, reason, parameters, log-likelihoods, convergence) "
             "instead of the maximum-likelihood parameters; reads first_purchase_value too if "
             "the CSV has it",
    )
    parser.add_argument(
        "--thresholds", metavar="CSV", default=None,
        help="with --record: the tag_thresholds CSV whose ltv rows decide when maximum "
             "likelihood is trusted (default: the project's seeds/tag_thresholds.csv)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if getattr(args, "record", False):
            summary = read_summary_csv(args.csv, optional=("first_purchase_value",))
            fit = fit_ltv(summary, LtvFitPolicy.from_seed(args.thresholds),
                          first_purchase_value=summary.get("first_purchase_value"))
            print(json.dumps(fit.as_dict(), allow_nan=False))
            if fit.method == METHOD_NONE:
                print(f"crm-tags ltv-fit: error: no prediction possible: {fit.reason}",
                      file=sys.stderr)
                return 2
            return 0
        model = fit_ltv_model(read_summary_csv(args.csv))
    except LtvFitError as exc:
        print(f"crm-tags ltv-fit: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(model.as_dict()))
    return 0
