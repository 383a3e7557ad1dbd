"""MGPS / EBGM: DuMouchel's two-gamma mixture prior, its fit, and posterior scores.

The true reporting ratio lambda of each pair is given the prior
    p * Gamma(alpha1, beta1) + (1 - p) * Gamma(alpha2, beta2),
so the count N of a pair with expected count E is a mixture of two negative binomials.
Hyperparameters are fitted by maximum likelihood on pairs with N >= N* (N* = 1 by default,
because zero cells are not listed), truncating each negative binomial separately before
mixing them, exactly as openEBGM's ``negLL`` does (DuMouchel & Pregibon 2001):

    L_i = p f1(N_i) / (1 - F1(N*-1)) + (1 - p) f2(N_i) / (1 - F2(N*-1)),
    fk  = NegBin(N; size = alpha_k, prob = beta_k / (beta_k + E_i)).

The posterior of lambda is again a two-gamma mixture (weight Qn, shapes alpha_k + N,
rates beta_k + E); EBGM is its geometric mean and EB05 / EB95 its 5% / 95% quantiles.

Everything is vectorized: terms that depend on N only (log-gamma, digamma, gamma
quantiles) are computed once per distinct N, and identical (N, E) pairs are collapsed into
weights before fitting, which is exact.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

FloatArray = npt.NDArray[np.float64]
Theta = tuple[float, float, float, float, float]


@dataclass(frozen=True)
class Prior:
    """Hyperparameters of the two-gamma mixture prior, with how they were obtained."""

    alpha1: float
    beta1: float
    alpha2: float
    beta2: float
    p: float
    neg_log_likelihood: float | None = None
    n_star: int = 1
    converged: bool = False
    message: str = ""

    @property
    def theta(self) -> Theta:
        """(alpha1, beta1, alpha2, beta2, p) in openEBGM's order."""
        return (self.alpha1, self.beta1, self.alpha2, self.beta2, self.p)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        nll = out["neg_log_likelihood"]
        if nll is not None and not math.isfinite(nll):
            out["neg_log_likelihood"] = None
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prior:
        """Build from a mapping; the five hyperparameters are required, the rest optional."""
        missing = [k for k in ("alpha1", "beta1", "alpha2", "beta2", "p") if k not in data]
        if missing:
            raise ValueError(f"prior lacks key(s) {missing}")
        values = {k: float(data[k]) for k in ("alpha1", "beta1", "alpha2", "beta2", "p")}
        for k, v in values.items():
            if not math.isfinite(v) or v <= 0 or (k == "p" and v >= 1):
                raise ValueError(f"prior {k}={v} is out of range (shapes/rates > 0, 0 < p < 1)")
        nll = data.get("neg_log_likelihood")
        return cls(
            **values,
            neg_log_likelihood=None if nll is None else float(nll),
            n_star=int(data.get("n_star", 1)),
            converged=bool(data.get("converged", False)),
            message=str(data.get("message", "")),
        )

    @classmethod
    def from_json(cls, text: str) -> Prior:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("prior JSON must be an object")
        return cls.from_dict(data)


#: Fallback prior: DuMouchel (1999) starting values as used by PhViD ``GPS()``
#: (PRIOR.INIT = alpha1 0.2, beta1 0.06, alpha2 1.4, beta2 1.8, w 0.1). Not fitted to any
#: data set here; used only when a fit is impossible or fails (see docs/signals.md).
DEFAULT_PRIOR = Prior(
    alpha1=0.2,
    beta1=0.06,
    alpha2=1.4,
    beta2=1.8,
    p=0.1,
    neg_log_likelihood=None,
    n_star=1,
    converged=False,
    message="DEFAULT_PRIOR: DuMouchel (1999) starting values as in PhViD GPS(); not fitted to these data",
)

#: Starting points of the fit: openEBGM vignette theta_init rows plus DuMouchel/PhViD's.
DEFAULT_STARTS: tuple[Theta, ...] = (
    (0.2, 0.1, 2.0, 4.0, 1 / 3),
    (0.1, 0.2, 10.0, 10.0, 0.2),
    (0.3, 0.5, 6.0, 6.0, 0.5),
    (0.2, 0.06, 1.4, 1.8, 0.1),
)

_LOG_BOUND = math.log(1e4)  # shapes and rates searched within [1e-4, 1e4]
_LOGIT_BOUND = 12.0  # p searched within about [6e-6, 1 - 6e-6]


class _Cells(NamedTuple):
    """Distinct (N, E) cells with multiplicities, N indexed into its distinct values."""

    n: FloatArray
    e: FloatArray
    log_e: FloatArray
    weight: FloatArray
    n_values: FloatArray
    n_index: npt.NDArray[np.intp]


def _collapse(n: npt.ArrayLike, e: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> _Cells:
    """Merge identical (N, E) pairs: the likelihood only depends on them, so this is exact."""
    n_arr = np.asarray(n, dtype=np.float64)
    e_arr = np.asarray(e, dtype=np.float64)
    w_arr = np.ones_like(n_arr) if weights is None else np.asarray(weights, dtype=np.float64)
    if n_arr.size:
        order = np.lexsort((e_arr, n_arr))
        ns, es, ws = n_arr[order], e_arr[order], w_arr[order]
        start = np.ones(ns.size, dtype=bool)
        start[1:] = (ns[1:] != ns[:-1]) | (es[1:] != es[:-1])
        idx = np.flatnonzero(start)
        n_arr, e_arr, w_arr = ns[idx], es[idx], np.add.reduceat(ws, idx)
    n_values, n_index = np.unique(n_arr, return_inverse=True)
    with np.errstate(divide="ignore"):
        log_e = np.log(e_arr)
    return _Cells(n_arr, e_arr, log_e, w_arr, n_values, n_index)


def _theta_from_free(u: FloatArray) -> Theta:
    a1, b1, a2, b2 = np.exp(u[:4])
    return (float(a1), float(b1), float(a2), float(b2), float(special.expit(u[4])))


def _free_from_theta(theta: Sequence[float]) -> FloatArray:
    a1, b1, a2, b2, p = theta
    return np.array([math.log(a1), math.log(b1), math.log(a2), math.log(b2), math.log(p / (1 - p))])


def _component(
    alpha: float, beta: float, cells: _Cells, n_star: int, grad: bool
) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """Log of the zero-truncated NB pmf of one component, and d/dalpha, d/dbeta if asked."""
    n, e, log_e = cells.n, cells.e, cells.log_e
    log_bpe = np.log(beta + e)
    log_r = math.log(beta) - log_bpe  # log prob, prob = beta / (beta + E)
    log_x = log_e - log_bpe  # log (1 - prob)
    lg = (
        special.gammaln(cells.n_values + alpha) - special.gammaln(cells.n_values + 1) - special.gammaln(alpha)
    )
    log_f = lg[cells.n_index] + alpha * log_r + n * log_x

    if n_star <= 0:
        log_s = np.zeros_like(e)
    elif n_star == 1:
        t = alpha * log_r  # log P(N = 0)
        s = -np.expm1(t)
        log_s = np.log(s)
    else:
        x = np.exp(log_x)
        s = special.betainc(float(n_star), alpha, x)  # P(N >= N*)
        log_s = np.log(s)
    log_g = log_f - log_s
    if not grad:
        return log_g, None, None

    dig = special.digamma(cells.n_values + alpha) - special.digamma(alpha)
    d_alpha = dig[cells.n_index] + log_r
    inv_bpe = 1.0 / (beta + e)
    d_beta = alpha / beta - (alpha + n) * inv_bpe
    if n_star == 1:
        p0 = np.exp(t)
        d_alpha -= -p0 * log_r / s
        d_beta -= -alpha * p0 * (e / (beta * (beta + e))) / s
    elif n_star > 1:
        # dS/dprob from the incomplete beta density; dS/dalpha as minus the sum of the
        # alpha-derivatives of P(N = m), m < N*.
        dens = np.exp((n_star - 1) * log_x + (alpha - 1) * log_r - special.betaln(float(n_star), alpha))
        d_prob = -dens * e * inv_bpe**2
        d_beta -= d_prob / s
        ds_alpha = np.zeros_like(e)
        dig0 = special.digamma(alpha)
        for m in range(n_star):  # N* is a small integer: loop over it, vectorized over pairs
            log_pm = (
                special.gammaln(m + alpha)
                - special.gammaln(m + 1.0)
                - special.gammaln(alpha)
                + alpha * log_r
                + (m * log_x if m else 0.0)
            )
            ds_alpha -= np.exp(log_pm) * (special.digamma(m + alpha) - dig0 + log_r)
        d_alpha -= ds_alpha / s
    return log_g, d_alpha, d_beta


def _dot(x: FloatArray, y: FloatArray) -> float:
    """Inner product without BLAS: threaded BLAS on two contended cores costs more than it saves."""
    return float(np.einsum("i,i->", x, y))


def _nll(u: FloatArray, cells: _Cells, n_star: int, grad: bool = True) -> tuple[float, FloatArray] | float:
    """Weighted negative log-likelihood (and gradient) in log-shape/log-rate/logit-p space."""
    a1, b1, a2, b2, p = _theta_from_free(u)
    g1, da1, db1 = _component(a1, b1, cells, n_star, grad)
    g2, da2, db2 = _component(a2, b2, cells, n_star, grad)
    lp1 = g1 + special.log_expit(u[4])
    lp2 = g2 + special.log_expit(-u[4])
    log_l = np.logaddexp(lp1, lp2)
    w = cells.weight
    value = -float(_dot(w, log_l))
    if not grad:
        return value
    r1 = np.exp(lp1 - log_l)  # posterior weight of component 1 given N >= N*
    wr1 = w * r1
    wr2 = w - wr1
    g = -np.array(
        [
            a1 * _dot(wr1, da1),
            b1 * _dot(wr1, db1),
            a2 * _dot(wr2, da2),
            b2 * _dot(wr2, db2),
            float(wr1.sum()) - p * float(w.sum()),
        ]
    )
    if not math.isfinite(value) or not np.all(np.isfinite(g)):
        return math.inf, np.zeros(5)
    return value, g


def neg_log_likelihood(
    theta: Sequence[float] | Prior,
    n: npt.ArrayLike,
    e: npt.ArrayLike,
    n_star: int = 1,
    weights: npt.ArrayLike | None = None,
) -> float:
    """openEBGM ``negLL`` / ``negLLsquash``: pairs with N < N* are ignored, as they must be."""
    th = theta.theta if isinstance(theta, Prior) else tuple(float(t) for t in theta)
    n_arr, e_arr, w_arr = _select(n, e, weights, n_star)
    cells = _collapse(n_arr, e_arr, w_arr)
    return float(_nll(_free_from_theta(th), cells, n_star, grad=False))


def _select(
    n: npt.ArrayLike, e: npt.ArrayLike, weights: npt.ArrayLike | None, n_star: int
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    n_arr = np.asarray(n, dtype=np.float64)
    e_arr = np.asarray(e, dtype=np.float64)
    if n_arr.shape != e_arr.shape:
        raise ValueError("n and e must have the same shape")
    keep = n_arr >= n_star
    w = None if weights is None else np.asarray(weights, dtype=np.float64)[keep]
    n_arr, e_arr = n_arr[keep], e_arr[keep]
    if np.any(~np.isfinite(e_arr)) or np.any(e_arr <= 0):
        raise ValueError("expected counts must be finite and > 0 for pairs used in the fit")
    return n_arr, e_arr, w


def fit_prior(
    n: npt.ArrayLike,
    e: npt.ArrayLike,
    n_star: int = 1,
    starts: Sequence[Sequence[float]] | None = None,
    *,
    weights: npt.ArrayLike | None = None,
    fallback: Prior = DEFAULT_PRIOR,
    min_pairs: int = 50,
    screen_above: int = 50_000,
) -> Prior:
    """Maximum-likelihood prior on pairs with N >= N*; the best of several starts is kept.

    Optimizes in log-shape/log-rate/logit-p space with an analytic gradient (L-BFGS-B), so
    the parameters stay valid without constraints. Identical (N, E) pairs are merged first
    (exact). With more than ``screen_above`` distinct cells, the starts are screened on a
    squashed copy (E averaged in bins of equal size within each N, DuMouchel et al. 2001)
    and the best one is then polished on the full data, so the reported likelihood and
    estimates are those of the full data.

    A fit that cannot be used -- fewer than ``min_pairs`` pairs, or no start converging to
    a finite likelihood -- returns ``fallback`` with ``converged=False`` and the reason in
    ``message``; the caller never receives a silently bad prior. An estimate on the search
    box edge (shape or rate at 1e-4 or 1e4, p within 6e-6 of 0 or 1) is a limit model, e.g.
    a log-series component when a shape goes to 0; it is kept and named in ``message``.
    """
    if n_star < 0:
        raise ValueError("n_star must be >= 0")
    n_arr, e_arr, w_arr = _select(n, e, weights, n_star)
    cells = _collapse(n_arr, e_arr, w_arr)
    n_pairs = float(cells.weight.sum())
    if n_pairs < min_pairs:
        return _fallback(
            fallback, cells, n_star, f"only {n_pairs:.0f} pairs with N >= {n_star}, need {min_pairs}"
        )

    starts = DEFAULT_STARTS if starts is None else starts
    screen = _squash(cells, bins_per_n=2000) if cells.n.size > screen_above else cells
    results = [_minimize(_clip(_free_from_theta(start)), screen, n_star) for start in starts]
    finite = [r for r in results if math.isfinite(r[0])]
    if not finite:
        return _fallback(fallback, cells, n_star, "likelihood not finite at any start")
    n_ok = sum(1 for r in finite if r[2])
    best_value, best_u, best_ok, best_msg = min(finite, key=lambda r: (not r[2], r[0]))
    spread = max(r[0] for r in finite if r[2]) - best_value if n_ok else math.nan
    screened = ""
    if screen is not cells:
        best_value, best_u, best_ok, best_msg = _minimize(best_u, cells, n_star)
        screened = f"; starts screened on {screen.n.size} squashed points, best polished on full data"
    if not best_ok or not math.isfinite(best_value):
        return _fallback(fallback, cells, n_star, f"optimizer did not converge: {best_msg}")

    a1, b1, a2, b2, p = _theta_from_free(best_u)
    on_edge = (np.abs(best_u - _LOWER) < 1e-3) | (np.abs(best_u - _UPPER) < 1e-3)
    edge = ""
    if on_edge.any():
        names = ", ".join(np.array(["alpha1", "beta1", "alpha2", "beta2", "p"])[on_edge])
        edge = f"; {names} at the search box edge (limit model)"
    return Prior(
        alpha1=a1,
        beta1=b1,
        alpha2=a2,
        beta2=b2,
        p=p,
        neg_log_likelihood=best_value,
        n_star=n_star,
        converged=True,
        message=(
            f"ML fit on {n_pairs:.0f} pairs with N >= {n_star}; {n_ok}/{len(starts)} starts converged, "
            f"spread {spread:.3g} in neg log-likelihood{screened}{edge}"
        ),
    )


_LOWER = np.array([-_LOG_BOUND] * 4 + [-_LOGIT_BOUND])
_UPPER = np.array([_LOG_BOUND] * 4 + [_LOGIT_BOUND])


def _clip(u: FloatArray) -> FloatArray:
    return np.clip(u, _LOWER, _UPPER)


def _minimize(u0: FloatArray, cells: _Cells, n_star: int) -> tuple[float, FloatArray, bool, str]:
    """One L-BFGS-B run; a stop with a tiny projected gradient also counts as converged."""
    try:
        res = optimize.minimize(
            _nll,
            u0,
            args=(cells, n_star),
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(_LOWER, _UPPER, strict=True)),
            options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-8, "maxcor": 20},
        )
    except (ValueError, ArithmeticError) as exc:  # pragma: no cover - defensive
        return math.inf, u0, False, str(exc)
    u = np.asarray(res.x)
    value = float(res.fun)
    ok = bool(res.success)
    if not ok and math.isfinite(value):
        _, g = _nll(u, cells, n_star)
        free = ~(((u <= _LOWER + 1e-9) & (g > 0)) | ((u >= _UPPER - 1e-9) & (g < 0)))
        ok = bool(np.max(np.abs(g[free]), initial=0.0) <= 1e-4 * max(1.0, float(cells.weight.sum())) ** 0.5)
    return value, u, ok, str(res.message)


def _squash(cells: _Cells, bins_per_n: int) -> _Cells:
    """Average E within equal-count bins of consecutive E for each N (cells sorted by N, E)."""
    n = cells.n
    group_start = np.flatnonzero(np.r_[True, n[1:] != n[:-1]])
    group_size = np.diff(np.r_[group_start, n.size])
    group = np.repeat(np.arange(group_start.size), group_size)
    rank = np.arange(n.size) - group_start[group]
    size = group_size[group]
    bins = np.minimum(size, bins_per_n)
    local = (rank * bins) // size
    offsets = np.r_[0, np.cumsum(np.minimum(group_size, bins_per_n))[:-1]]
    key = offsets[group] + local
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    w = np.add.reduceat(cells.weight, starts)
    e = np.add.reduceat(cells.weight * cells.e, starts) / w
    n_sq = n[starts]
    n_values, n_index = np.unique(n_sq, return_inverse=True)
    return _Cells(n_sq, e, np.log(e), w, n_values, n_index)


def _fallback(fallback: Prior, cells: _Cells, n_star: int, reason: str) -> Prior:
    nll = float(_nll(_free_from_theta(fallback.theta), cells, n_star, grad=False)) if cells.n.size else None
    return replace(
        fallback,
        neg_log_likelihood=nll,
        n_star=n_star,
        converged=False,
        message=f"prior fit failed ({reason}); fell back to: {fallback.message or 'given fallback prior'}",
    )


class Posterior(NamedTuple):
    """Two-gamma posterior of lambda for each pair: weight of component 1, shapes, rates.

    ``n_values``/``n_index`` give the distinct counts and each pair's position among them,
    so that functions of the shape alone are evaluated once per distinct N.
    """

    qn: FloatArray
    shape1: FloatArray
    rate1: FloatArray
    shape2: FloatArray
    rate2: FloatArray
    alpha1: float
    alpha2: float
    n_values: FloatArray
    n_index: npt.NDArray[np.intp]


def _count_index(n: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Distinct values of N and each pair's index into them; O(len) for ordinary counts."""
    flat = n.reshape(-1)
    if (
        flat.size
        and flat.min() >= 0
        and flat.max() <= 4 * flat.size + 1000
        and np.all(flat == np.floor(flat))
    ):
        idx = flat.astype(np.intp)
        present = np.flatnonzero(np.bincount(idx))
        lookup = np.zeros(int(idx.max()) + 1, dtype=np.intp)
        lookup[present] = np.arange(present.size)
        return present.astype(np.float64), lookup[idx].reshape(n.shape)
    values, index = np.unique(flat, return_inverse=True)
    return values, index.reshape(n.shape)


def posterior(prior: Prior, n: npt.ArrayLike, e: npt.ArrayLike) -> Posterior:
    """Posterior mixture; Qn uses the untruncated NB densities (DuMouchel 1999 eq. 6)."""
    n_arr = np.asarray(n, dtype=np.float64)
    e_arr = np.asarray(e, dtype=np.float64)
    n_values, n_index = _count_index(n_arr)
    a1, b1, a2, b2, p = prior.theta
    lg1 = special.gammaln(n_values + a1) - special.gammaln(a1)
    lg2 = special.gammaln(n_values + a2) - special.gammaln(a2)
    log_bpe1 = np.log(b1 + e_arr)
    log_bpe2 = np.log(b2 + e_arr)
    # log f1 - log f2; the N! and N log E terms cancel
    diff = (lg1 - lg2)[n_index] + a1 * (math.log(b1) - log_bpe1) - a2 * (math.log(b2) - log_bpe2)
    diff -= n_arr * (log_bpe1 - log_bpe2)
    qn = special.expit(math.log(p) - math.log1p(-p) + diff)
    return Posterior(qn, a1 + n_arr, b1 + e_arr, a2 + n_arr, b2 + e_arr, a1, a2, n_values, n_index)


def ebgm(prior: Prior, n: npt.ArrayLike, e: npt.ArrayLike) -> FloatArray:
    """Empirical Bayes geometric mean: exp of the posterior mean of log lambda."""
    post = posterior(prior, n, e)
    return _ebgm_from_posterior(post)


def _ebgm_from_posterior(post: Posterior) -> FloatArray:
    dig1 = special.digamma(post.n_values + post.alpha1)[post.n_index]
    dig2 = special.digamma(post.n_values + post.alpha2)[post.n_index]
    log1 = dig1 - np.log(post.rate1)
    log2 = dig2 - np.log(post.rate2)
    return np.exp(post.qn * log1 + (1 - post.qn) * log2)


def posterior_quantile(
    prior: Prior, n: npt.ArrayLike, e: npt.ArrayLike, prob: float, *, rtol: float = 1e-10
) -> FloatArray:
    """Quantile of the posterior of lambda (EB05 for prob = 0.05), to relative ``rtol``."""
    return _mixture_quantile(posterior(prior, n, e), prob, rtol=rtol)


def _mixture_quantile(
    post: Posterior, prob: float, *, rtol: float = 1e-10, max_iter: int = 100
) -> FloatArray:
    """Solve Qn G1(x) + (1 - Qn) G2(x) = prob by safeguarded Newton in log x.

    The root lies between the two components' own quantiles, which bracket it; Newton steps
    that leave the bracket are replaced by bisection, so convergence is guaranteed and
    usually takes 3-6 iterations. Only unconverged pairs are iterated.
    """
    if not 0 < prob < 1:
        raise ValueError("prob must be in (0, 1)")
    x1 = special.gammaincinv(post.n_values + post.alpha1, prob)[post.n_index] / post.rate1
    x2 = special.gammaincinv(post.n_values + post.alpha2, prob)[post.n_index] / post.rate2
    tiny = np.finfo(np.float64).tiny
    lo = np.log(np.maximum(np.minimum(x1, x2), tiny))
    hi = np.log(np.maximum(np.maximum(x1, x2), tiny))
    q = post.qn
    y = np.log(np.maximum(q * x1 + (1 - q) * x2, tiny))  # start inside the bracket
    y = np.clip(y, lo, hi)
    y = np.where(q >= 1, np.log(np.maximum(x1, tiny)), y)  # a single component left
    y = np.where(q <= 0, np.log(np.maximum(x2, tiny)), y)
    active = np.flatnonzero((hi - lo > rtol) & (q > 0) & (q < 1))
    qa, s1, r1, s2, r2 = (
        q[active],
        post.shape1[active],
        post.rate1[active],
        post.shape2[active],
        post.rate2[active],
    )
    ya, la, ha = y[active], lo[active], hi[active]
    lg1 = special.gammaln(post.n_values + post.alpha1)[post.n_index[active]]
    lg2 = special.gammaln(post.n_values + post.alpha2)[post.n_index[active]]
    for _ in range(max_iter):
        if ya.size == 0:
            break
        x = np.exp(ya)
        t1, t2 = r1 * x, r2 * x
        f = qa * special.gammainc(s1, t1) + (1 - qa) * special.gammainc(s2, t2) - prob
        # dF/dlog x = x * density = Gamma(s, 1) density at t times t
        dens = qa * np.exp(s1 * np.log(t1) - t1 - lg1) + (1 - qa) * np.exp(s2 * np.log(t2) - t2 - lg2)
        la = np.where(f < 0, ya, la)
        ha = np.where(f > 0, ya, ha)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = -f / dens
        newton = ya + step
        inside = np.isfinite(newton) & (newton > la) & (newton < ha)
        small = np.abs(step) <= rtol  # converged: accept even if rounding puts it on the edge
        y_new = np.where(f == 0, ya, np.where(inside | small, newton, 0.5 * (la + ha)))
        done = (f == 0) | small | (ha - la <= rtol)
        y[active] = y_new
        keep = ~done
        active = active[keep]
        qa, s1, r1, s2, r2 = qa[keep], s1[keep], r1[keep], s2[keep], r2[keep]
        lg1, lg2 = lg1[keep], lg2[keep]
        ya, la, ha = y_new[keep], la[keep], ha[keep]
    return np.exp(y)


class EBScores(NamedTuple):
    """EBGM with its 90% credibility limits and Qn, one value per pair."""

    ebgm: FloatArray
    eb05: FloatArray
    eb95: FloatArray
    qn: FloatArray


def eb_scores(prior: Prior, n: npt.ArrayLike, e: npt.ArrayLike, *, rtol: float = 1e-10) -> EBScores:
    """EBGM, EB05 and EB95 for every pair (N = 0 and E = 0 give the prior's values).

    Scores depend on (N, E) only, so they are computed once per distinct (N, E) cell.
    """
    n_arr = np.asarray(n, dtype=np.float64)
    e_arr = np.asarray(e, dtype=np.float64)
    if n_arr.shape != e_arr.shape:
        raise ValueError("n and e must have the same shape")
    n_u, e_u, inverse = _distinct_cells(n_arr.reshape(-1), e_arr.reshape(-1))
    post = posterior(prior, n_u, e_u)
    scores = (
        _ebgm_from_posterior(post),
        _mixture_quantile(post, 0.05, rtol=rtol),
        _mixture_quantile(post, 0.95, rtol=rtol),
        post.qn,
    )
    return EBScores(*(v[inverse].reshape(n_arr.shape) for v in scores))


def _distinct_cells(n: FloatArray, e: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.intp]]:
    """Distinct (N, E) pairs and the inverse map back to the input order."""
    if n.size == 0:
        return n, e, np.zeros(0, dtype=np.intp)
    order = np.lexsort((e, n))
    ns, es = n[order], e[order]
    start = np.ones(n.size, dtype=bool)
    start[1:] = (ns[1:] != ns[:-1]) | (es[1:] != es[:-1])
    group = np.cumsum(start) - 1
    inverse = np.empty(n.size, dtype=np.intp)
    inverse[order] = group
    return ns[start], es[start], inverse
