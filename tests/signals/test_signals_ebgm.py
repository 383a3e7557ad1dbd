"""MGPS internals: likelihood, gradient, fit, fallback, posterior quantiles, Prior JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from signals import ebgm
from signals.ebgm import DEFAULT_PRIOR, Prior, eb_scores, fit_prior, neg_log_likelihood, posterior_quantile
from signals.measures import score_table

THETA = (3.25379356, 0.39988854, 2.02612692, 1.90807970, 0.06534557)


def simulate(prior: tuple[float, ...], e: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts from the MGPS model: lambda from the two-gamma prior, N ~ Poisson(lambda E)."""
    a1, b1, a2, b2, p = prior
    first = rng.random(e.size) < p
    lam = np.where(first, rng.gamma(a1, 1 / b1, e.size), rng.gamma(a2, 1 / b2, e.size))
    return rng.poisson(lam * e)


def openebgm_negll(theta: tuple[float, ...], n: np.ndarray, e: np.ndarray, n_star: int) -> float:
    """openEBGM negLL written with scipy.stats, component-wise truncation then mixing."""
    a1, b1, a2, b2, p = theta
    f1 = stats.nbinom.pmf(n, a1, b1 / (b1 + e)) / stats.nbinom.sf(n_star - 1, a1, b1 / (b1 + e))
    f2 = stats.nbinom.pmf(n, a2, b2 / (b2 + e)) / stats.nbinom.sf(n_star - 1, a2, b2 / (b2 + e))
    return float(-np.sum(np.log(p * f1 + (1 - p) * f2)))


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    e = rng.lognormal(-2.0, 1.5, 20_000)
    n = simulate((0.4, 0.15, 3.0, 3.0, 0.1), e, rng)
    return n.astype(float), e


@pytest.mark.parametrize("n_star", [1, 2, 3])
def test_likelihood_matches_openebgm_formula(sample: tuple[np.ndarray, np.ndarray], n_star: int) -> None:
    n, e = sample
    keep = n >= n_star
    assert neg_log_likelihood(THETA, n, e, n_star=n_star) == pytest.approx(
        openebgm_negll(THETA, n[keep], e[keep], n_star), rel=1e-11
    )


def test_truncating_the_mixture_as_a_whole_is_a_different_model(
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    n, e = sample
    keep = n >= 1
    a1, b1, a2, b2, p = THETA
    f1 = stats.nbinom.pmf(n[keep], a1, b1 / (b1 + e[keep]))
    f2 = stats.nbinom.pmf(n[keep], a2, b2 / (b2 + e[keep]))
    z1 = stats.nbinom.pmf(0, a1, b1 / (b1 + e[keep]))
    z2 = stats.nbinom.pmf(0, a2, b2 / (b2 + e[keep]))
    whole = -np.sum(np.log((p * f1 + (1 - p) * f2) / (1 - p * z1 - (1 - p) * z2)))
    assert abs(whole - neg_log_likelihood(THETA, n, e)) > 1.0


@pytest.mark.parametrize("n_star", [1, 2])
def test_analytic_gradient_matches_finite_differences(
    sample: tuple[np.ndarray, np.ndarray], n_star: int
) -> None:
    n, e = sample
    keep = n >= n_star
    cells = ebgm._collapse(n[keep], e[keep])
    for theta in (THETA, (0.2, 0.06, 1.4, 1.8, 0.1), (0.7, 2.0, 9.0, 4.0, 0.6)):
        u = ebgm._free_from_theta(theta)
        _, grad = ebgm._nll(u, cells, n_star)
        numeric = optimize.approx_fprime(u, lambda x: ebgm._nll(x, cells, n_star, grad=False), 1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=2e-4, atol=1e-2)


def test_collapsing_identical_cells_is_exact(sample: tuple[np.ndarray, np.ndarray]) -> None:
    n, e = sample
    doubled = neg_log_likelihood(THETA, np.r_[n, n], np.r_[e, e])
    assert doubled == pytest.approx(2 * neg_log_likelihood(THETA, n, e), rel=1e-12)
    weighted = neg_log_likelihood(THETA, n, e, weights=np.full(n.size, 2.0))
    assert weighted == pytest.approx(doubled, rel=1e-12)


def test_fit_recovers_simulated_prior_and_beats_truth(sample: tuple[np.ndarray, np.ndarray]) -> None:
    n, e = sample
    prior = fit_prior(n, e)
    assert prior.converged, prior.message
    assert prior.neg_log_likelihood is not None
    assert prior.neg_log_likelihood <= neg_log_likelihood((0.4, 0.15, 3.0, 3.0, 0.1), n, e) + 1e-6
    # the frequent component is well identified
    big = max(
        (prior.alpha1, prior.beta1, prior.p), (prior.alpha2, prior.beta2, 1 - prior.p), key=lambda c: c[2]
    )
    assert big[0] / big[1] == pytest.approx(1.0, abs=0.1)
    assert "4/4 starts converged" in prior.message


def test_fit_with_n_star_2_is_a_minimum(sample: tuple[np.ndarray, np.ndarray]) -> None:
    n, e = sample
    p2 = fit_prior(n, e, n_star=2)
    p1 = fit_prior(n, e, n_star=1)
    assert p2.converged and p2.n_star == 2
    assert p2.neg_log_likelihood is not None
    assert p2.neg_log_likelihood <= neg_log_likelihood(p1, n, e, n_star=2) + 1e-6


def test_fit_screens_on_squashed_data_then_polishes(sample: tuple[np.ndarray, np.ndarray]) -> None:
    n, e = sample
    direct = fit_prior(n, e)
    screened = fit_prior(n, e, screen_above=100)
    assert "squashed" in screened.message
    assert screened.neg_log_likelihood == pytest.approx(direct.neg_log_likelihood, abs=1e-4)


def test_too_few_pairs_fall_back_explicitly() -> None:
    prior = fit_prior([1, 2, 1], [0.5, 0.2, 1.0])
    assert prior.converged is False
    assert prior.theta == DEFAULT_PRIOR.theta
    assert "fell back" in prior.message and "only 3 pairs" in prior.message
    assert prior.neg_log_likelihood is not None and math.isfinite(prior.neg_log_likelihood)


def test_optimizer_failure_falls_back(
    monkeypatch: pytest.MonkeyPatch, sample: tuple[np.ndarray, np.ndarray]
) -> None:
    n, e = sample
    custom = Prior(1.0, 1.0, 2.0, 2.0, 0.5, message="custom fallback")

    def broken(*args: object, **kwargs: object) -> optimize.OptimizeResult:
        return optimize.OptimizeResult(x=np.zeros(5), fun=math.inf, success=False, message="boom")

    monkeypatch.setattr(ebgm.optimize, "minimize", broken)
    prior = fit_prior(n, e, fallback=custom)
    assert not prior.converged
    assert prior.theta == custom.theta
    assert "custom fallback" in prior.message


def test_fit_rejects_non_positive_expected_counts() -> None:
    with pytest.raises(ValueError, match="expected counts"):
        fit_prior([1, 2], [0.0, 1.0])


def mixture_cdf_minus(x: float, q: float, s1: float, r1: float, s2: float, r2: float, prob: float) -> float:
    return q * special.gammainc(s1, r1 * x) + (1 - q) * special.gammainc(s2, r2 * x) - prob


def test_posterior_quantiles_match_brentq() -> None:
    rng = np.random.default_rng(3)
    n = np.r_[rng.integers(0, 30, 300), [0, 1, 500, 5000]].astype(float)
    e = np.r_[rng.lognormal(-1, 2, 300), [1e-6, 1e-4, 3.0, 4000.0]]
    prior = Prior(*THETA)
    for prob in (0.05, 0.5, 0.95):
        got = posterior_quantile(prior, n, e, prob)
        post = ebgm.posterior(prior, n, e)
        for i in range(0, n.size, 7):
            args = tuple(float(v[i]) for v in (post.qn, post.shape1, post.rate1, post.shape2, post.rate2))
            ref = optimize.brentq(mixture_cdf_minus, 1e-300, 1e9, args=(*args, prob), xtol=1e-300, rtol=1e-14)
            assert got[i] == pytest.approx(ref, rel=1e-9)


def test_quantile_when_qn_rounds_to_one_at_the_bracket_edge() -> None:
    """Regression (found by hypothesis): F = prob exactly at the start must not bisect away."""
    prior = Prior(*THETA)
    got = eb_scores(prior, np.array([272, 292]), np.array([10.0, 10.0]))
    np.testing.assert_allclose(got.eb95, [29.14452079478848, 31.16131723909286], rtol=1e-10)


def test_eb_scores_are_ordered_and_finite_at_zero_cells() -> None:
    prior = Prior(*THETA)
    n = np.array([0, 0, 1, 3, 40])
    e = np.array([0.0, 2.5, 0.0001, 1.0, 3.0])
    s = eb_scores(prior, n, e)
    assert np.all(np.isfinite(np.c_[s.ebgm, s.eb05, s.eb95, s.qn]))
    assert np.all((s.eb05 < s.ebgm) & (s.ebgm < s.eb95))
    # N = 0, E = 0: the posterior is the prior
    a1, b1, a2, b2, p = THETA
    prior_gm = math.exp(
        p * (special.digamma(a1) - math.log(b1)) + (1 - p) * (special.digamma(a2) - math.log(b2))
    )
    assert s.ebgm[0] == pytest.approx(prior_gm, rel=1e-12)
    assert s.qn[0] == pytest.approx(p, rel=1e-12)


def test_eb_scores_follow_input_order_with_repeated_cells() -> None:
    prior = Prior(*THETA)
    n = np.array([3, 1, 3, 1, 2])
    e = np.array([0.5, 0.1, 0.5, 0.2, 0.1])
    s = eb_scores(prior, n, e)
    single = [eb_scores(prior, n[i : i + 1], e[i : i + 1]).eb05[0] for i in range(5)]
    np.testing.assert_allclose(s.eb05, single, rtol=1e-12)
    assert s.eb05[0] == s.eb05[2]


def test_prior_json_round_trip_and_keys() -> None:
    prior = Prior(1.5, 0.5, 2.5, 3.5, 0.25, neg_log_likelihood=12.5, n_star=2, converged=True, message="m")
    text = prior.to_json()
    data = json.loads(text)
    for key in ("alpha1", "beta1", "alpha2", "beta2", "p", "neg_log_likelihood", "n_star", "converged"):
        assert key in data
    assert Prior.from_json(text) == prior
    assert Prior.from_json(DEFAULT_PRIOR.to_json()).neg_log_likelihood is None


@pytest.mark.parametrize(
    "payload",
    [
        '{"alpha1": 1, "beta1": 1, "alpha2": 1, "beta2": 1}',
        '{"alpha1": 1, "beta1": 1, "alpha2": 1, "beta2": 1, "p": 1.5}',
        "[1, 2]",
    ],
)
def test_prior_from_json_rejects_bad_input(payload: str) -> None:
    with pytest.raises(ValueError):
        Prior.from_json(payload)


def test_default_prior_is_dumouchel_phvid_start() -> None:
    assert DEFAULT_PRIOR.theta == (0.2, 0.06, 1.4, 1.8, 0.1)
    assert DEFAULT_PRIOR.converged is False
    assert "DuMouchel" in DEFAULT_PRIOR.message


def test_score_table_prior_choices() -> None:
    counts = pd.DataFrame(
        {
            "drug": ["A", "A", "B"],
            "event": ["x", "y", "x"],
            "n": [3, 1, 2],
            "drug_total": [4, 4, 5],
            "event_total": [5, 1, 5],
            "total": [20, 20, 20],
        }
    )
    fixed = Prior(*THETA)
    _, used = score_table(counts, prior=fixed)
    assert used is fixed
    _, used = score_table(counts, fit_prior=False)
    assert used == DEFAULT_PRIOR
    _, used = score_table(counts)  # 3 pairs: fit impossible, explicit fallback
    assert used is not None and not used.converged and "fell back" in used.message
