"""Closed-form disproportionality measures on 2x2 tables, and ``score_table``.

All functions take arrays of cell counts (a, b, c, d) or (a, E) and return arrays, one value
per pair, without a Python loop per pair. Zero cells never produce NaN; the conventions
(documented in docs/signals.md) are:

* estimate with a = 0                   -> 0, interval [0, inf]
* estimate x / 0 with x > 0             -> inf
* Wald interval whose log-scale standard error involves 1/0 -> [0, inf] (uninformative)
* chi-square with an empty row or column margin -> 0 (no evidence of association)
* IC and EBGM are always finite (the +0.5 and the prior keep them defined).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special

from signals import ebgm as _ebgm
from signals.contingency import COUNT_COLUMNS, FloatArray, expected_count, two_by_two
from signals.ebgm import DEFAULT_PRIOR, Prior, eb_scores
from signals.validation import check_counts

#: Columns of a scores table (SCORES.csv), in order.
SCORE_COLUMNS: tuple[str, ...] = (
    "drug",
    "event",
    "n",
    "e",
    "prr",
    "prr_lower",
    "prr_upper",
    "chi2",
    "ror",
    "ror_lower",
    "ror_upper",
    "ic",
    "ic025",
    "ic975",
    "ebgm",
    "eb05",
    "eb95",
)

#: Two-sided 95% normal quantile, as R's qnorm(0.975); FDA's PRR tables use 1.96 exactly.
Z95: float = float(special.ndtri(0.975))


class Interval(NamedTuple):
    """Point estimate with lower and upper limits, one value per pair."""

    estimate: FloatArray
    lower: FloatArray
    upper: FloatArray


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _safe_ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den with x / 0 = inf for x > 0 and 0 / 0 = 0."""
    out = np.zeros(np.broadcast_shapes(num.shape, den.shape))
    np.divide(num, den, out=out, where=den != 0)
    return np.where((den == 0) & (num > 0), np.inf, out)


def _wald(estimate: FloatArray, var: FloatArray, defined: npt.NDArray[np.bool_], z: float) -> Interval:
    """Log-scale Wald interval; [0, inf] where the standard error is undefined (a zero cell)."""
    se = np.sqrt(np.where(defined, var, 0.0))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        lower = np.where(defined, estimate * np.exp(-z * se), 0.0)
        upper = np.where(defined, estimate * np.exp(z * se), np.inf)
    return Interval(estimate, lower, upper)


def prr(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike, d: npt.ArrayLike, z: float = Z95) -> Interval:
    """Proportional reporting ratio (a/(a+b)) / (c/(c+d)) with its log-scale Wald interval.

    SE(log PRR) = sqrt(1/a - 1/(a+b) + 1/c - 1/(c+d)) (Evans et al. 2001).
    """
    a, b, c, d = _f(a), _f(b), _f(c), _f(d)
    drug_rate = _safe_ratio(a, a + b)
    other_rate = _safe_ratio(c, c + d)
    est = np.where(a == 0, 0.0, _safe_ratio(drug_rate, other_rate))
    defined = (a > 0) & (c > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
    return _wald(est, var, defined, z)


def ror(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike, d: npt.ArrayLike, z: float = Z95) -> Interval:
    """Reporting odds ratio (a d) / (b c) with its log-scale Wald interval (Woolf).

    SE(log ROR) = sqrt(1/a + 1/b + 1/c + 1/d); any zero cell leaves it undefined.
    """
    a, b, c, d = _f(a), _f(b), _f(c), _f(d)
    est = np.where(a == 0, 0.0, np.where((b == 0) | (c == 0), np.inf, 0.0))
    regular = (a > 0) & (b > 0) & (c > 0)
    np.divide(a * d, b * c, out=est, where=regular)
    defined = regular & (d > 0)
    with np.errstate(divide="ignore"):
        var = 1 / a + 1 / b + 1 / c + 1 / d
    return _wald(est, var, defined, z)


def chi2_yates(a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike, d: npt.ArrayLike) -> FloatArray:
    """Pearson chi-square with Yates' correction, as R's chisq.test(correct = TRUE).

    R applies min(0.5, |a - E|) as the correction, so a table that matches expectation
    exactly scores 0. An empty margin (chi-square undefined, 0/0) scores 0.
    """
    a, b, c, d = _f(a), _f(b), _f(c), _f(d)
    r1, r2, c1, c2 = a + b, c + d, a + c, b + d
    n = r1 + r2
    denom = r1 * r2 * c1 * c2
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape, c.shape, d.shape))
    ok = denom > 0
    dev = np.abs(a * d - b * c) / np.where(n > 0, n, 1.0)  # |a - E|, same in every cell
    corrected = dev - np.minimum(0.5, dev)
    np.divide(corrected**2 * n**3, denom, out=out, where=ok)
    return out


def relative_reporting_ratio(a: npt.ArrayLike, e: npt.ArrayLike) -> FloatArray:
    """RR = N / E (openEBGM's RR); 0 when N = 0, inf when N > 0 with E = 0."""
    return _safe_ratio(_f(a), _f(e))


def ic(a: npt.ArrayLike, e: npt.ArrayLike, level: float = 0.95) -> Interval:
    """Information component IC = log2((a + 0.5)/(E + 0.5)) with exact gamma limits.

    The limits are log2 of the gamma quantiles with shape a + 0.5 and rate E + 0.5, as
    DiAna's IC_gamma (Norén et al. 2013): no normal approximation, defined for a = 0.
    """
    a_, e_ = _f(a), _f(e)
    tail = (1 - level) / 2
    est = np.log2((a_ + 0.5) / (e_ + 0.5))
    shape_values, index = np.unique(a_ + 0.5, return_inverse=True)
    index = index.reshape(a_.shape)
    lo = special.gammaincinv(shape_values, tail)[index]
    hi = special.gammaincinv(shape_values, 1 - tail)[index]
    return Interval(est, np.log2(lo / (e_ + 0.5)), np.log2(hi / (e_ + 0.5)))


def ic_shrinkage(a: npt.ArrayLike, e: npt.ArrayLike) -> Interval:
    """Shrinkage observed-to-expected IC with Norén et al. (2013)'s closed-form 95% limits.

    IC025 = IC - 3.3 (a+.5)^-1/2 - 2 (a+.5)^-3/2 ; IC975 = IC + 2.4 (a+.5)^-1/2 - 0.5 (a+.5)^-3/2.
    An approximation of the gamma limits of ``ic``; kept because faers / pharmsignal report it.
    """
    a_, e_ = _f(a), _f(e)
    s = a_ + 0.5
    est = np.log2(s / (e_ + 0.5))
    return Interval(est, est - 3.3 * s**-0.5 - 2 * s**-1.5, est + 2.4 * s**-0.5 - 0.5 * s**-1.5)


def ic_bcpnn_norm(
    a: npt.ArrayLike, b: npt.ArrayLike, c: npt.ArrayLike, d: npt.ArrayLike, level: float = 0.95
) -> Interval:
    """BCPNN IC with exact digamma/trigamma moments and a normal interval (Gould 2003, A3/A4).

    The WHO-UMC variant used by pharmsignal and the R faers package; it shrinks towards 0
    differently from ``ic`` (Beta priors on the marginal probabilities).
    """
    a_, b_, c_, d_ = _f(a), _f(b), _f(c), _f(d)
    n = a_ + b_ + c_ + d_
    p1 = 1 + a_ + b_
    p2 = 1 + n - (a_ + b_)
    q1 = 1 + a_ + c_
    q2 = 1 + n - (a_ + c_)
    r1 = 1 + a_
    r2b = n - a_ - 1 + (2 + n) ** 2 / (q1 * p1)
    dg, tg = special.digamma, special.polygamma
    mean = (dg(r1) - dg(r1 + r2b) - (dg(p1) - dg(p1 + p2) + dg(q1) - dg(q1 + q2))) / math.log(2)
    var = (
        tg(1, r1) - tg(1, r1 + r2b) + (tg(1, p1) - tg(1, p1 + p2) + tg(1, q1) - tg(1, q1 + q2))
    ) / math.log(2) ** 2
    z = float(special.ndtri(1 - (1 - level) / 2))
    sd = np.sqrt(var)
    return Interval(mean, mean - z * sd, mean + z * sd)


def score_table(
    counts: pd.DataFrame,
    prior: Prior | None = None,
    fit_prior: bool = True,
    n_star: int = 1,
) -> tuple[pd.DataFrame, Prior | None]:
    """Score every drug x event pair: PRR, chi2, ROR, IC and EBGM with their limits.

    ``counts`` has columns drug, event, n, drug_total, event_total, total (non-negative
    integers, margins consistent); an optional column ``e`` (stratified expected count, see
    ``contingency.count_reports``) replaces the crude E for IC and EBGM. The prior is
    ``prior`` if given, else fitted on these pairs (``fit_prior=True``; a failed fit falls
    back to ``DEFAULT_PRIOR`` with converged=False), else ``DEFAULT_PRIOR``. Returns the
    scores (SCORE_COLUMNS plus a, b, c, d, in input order) and the prior used.
    """
    check_counts(counts)
    return score_checked(counts, prior=prior, fit_prior=fit_prior, n_star=n_star)


def score_checked(
    counts: pd.DataFrame, *, prior: Prior | None = None, fit_prior: bool = True, n_star: int = 1
) -> tuple[pd.DataFrame, Prior]:
    """``score_table`` without re-validating counts that ``check_counts`` already accepted."""
    n = counts["n"].to_numpy(dtype=np.float64)
    dt = counts["drug_total"].to_numpy(dtype=np.float64)
    et = counts["event_total"].to_numpy(dtype=np.float64)
    tot = counts["total"].to_numpy(dtype=np.float64)
    e = counts["e"].to_numpy(dtype=np.float64) if "e" in counts.columns else expected_count(dt, et, tot)

    if prior is not None:
        used: Prior = prior
    elif fit_prior:
        used = _ebgm.fit_prior(n, e, n_star=n_star)
    else:
        used = DEFAULT_PRIOR

    columns = score_arrays(n, dt, et, tot, used, e=e)
    out = pd.DataFrame(
        {"drug": counts["drug"].to_numpy(), "event": counts["event"].to_numpy(), **columns},
        index=counts.index,
    )
    return out, used


def score_arrays(
    n: npt.ArrayLike,
    drug_total: npt.ArrayLike,
    event_total: npt.ArrayLike,
    total: npt.ArrayLike,
    prior: Prior,
    *,
    e: npt.ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """All measures for already-validated counts, as arrays keyed by SCORES column name.

    The unvalidated core of ``score_table``, for callers (trend) whose rows legitimately
    repeat a pair, e.g. once per quarter.
    """
    table = two_by_two(n, drug_total, event_total, total)
    e_arr = expected_count(drug_total, event_total, total) if e is None else np.asarray(e, dtype=np.float64)
    p = prr(*table)
    r = ror(*table)
    i = ic(table.a, e_arr)
    s = eb_scores(prior, table.a, e_arr)
    return {
        "n": table.a.astype(np.int64),
        "e": e_arr,
        "prr": p.estimate,
        "prr_lower": p.lower,
        "prr_upper": p.upper,
        "chi2": chi2_yates(*table),
        "ror": r.estimate,
        "ror_lower": r.lower,
        "ror_upper": r.upper,
        "ic": i.estimate,
        "ic025": i.lower,
        "ic975": i.upper,
        "ebgm": s.ebgm,
        "eb05": s.eb05,
        "eb95": s.eb95,
        "a": table.a.astype(np.int64),
        "b": table.b.astype(np.int64),
        "c": table.c.astype(np.int64),
        "d": table.d.astype(np.int64),
    }


__all__ = [
    "COUNT_COLUMNS",
    "Interval",
    "SCORE_COLUMNS",
    "Z95",
    "chi2_yates",
    "ic",
    "ic_bcpnn_norm",
    "ic_shrinkage",
    "prr",
    "relative_reporting_ratio",
    "ror",
    "score_arrays",
    "score_checked",
    "score_table",
]
