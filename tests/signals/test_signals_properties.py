"""Property-based checks on random 2x2 tables: ordered limits, monotone in a, never NaN."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from signals.ebgm import DEFAULT_PRIOR, Prior, eb_scores
from signals.measures import chi2_yates, ic, ic_bcpnn_norm, ic_shrinkage, prr, ror, score_arrays

PRIORS = [DEFAULT_PRIOR, Prior(3.25379356, 0.39988854, 2.02612692, 1.90807970, 0.06534557)]

counts = st.integers(min_value=0, max_value=2_000)
big_counts = st.integers(min_value=0, max_value=10_000_000)
tables = st.tuples(counts, st.integers(0, 200_000), st.integers(0, 200_000), big_counts)


def measures(a: int, b: int, c: int, d: int, prior: Prior) -> dict[str, np.ndarray]:
    return score_arrays(np.array([a]), np.array([a + b]), np.array([a + c]), np.array([a + b + c + d]), prior)


@settings(max_examples=150, deadline=None)
@given(tables, st.sampled_from(PRIORS))
def test_no_nan_and_limits_ordered(table: tuple[int, int, int, int], prior: Prior) -> None:
    a, b, c, d = table
    s = {k: float(v[0]) for k, v in measures(a, b, c, d, prior).items()}
    assert not any(np.isnan(v) for v in s.values()), s
    for lo, est, hi in (("prr_lower", "prr", "prr_upper"), ("ror_lower", "ror", "ror_upper")):
        assert 0 <= s[lo] <= s[est] <= s[hi], (lo, s)
    assert s["ic025"] <= s["ic"] <= s["ic975"]
    assert np.isfinite([s["ic"], s["ic025"], s["ic975"], s["ebgm"], s["eb05"], s["eb95"]]).all()
    assert 0 < s["eb05"] <= s["ebgm"] <= s["eb95"]
    assert s["chi2"] >= 0 and np.isfinite(s["chi2"])
    assert s["a"] + s["b"] + s["c"] + s["d"] == a + b + c + d


@settings(max_examples=100, deadline=None)
@given(tables)
def test_other_ic_variants_are_finite_and_ordered(table: tuple[int, int, int, int]) -> None:
    a, b, c, d = table
    for got in (ic_bcpnn_norm(a, b, c, d), ic_shrinkage(a, (a + b) * (a + c) / max(a + b + c + d, 1))):
        lo, est, hi = float(got.lower), float(got.estimate), float(got.upper)
        assert np.isfinite([lo, est, hi]).all()
        assert lo <= est <= hi


@settings(max_examples=150, deadline=None)
@given(tables, st.integers(min_value=1, max_value=50))
def test_prr_ror_and_limits_grow_with_a(table: tuple[int, int, int, int], step: int) -> None:
    """More reports of the pair, other cells fixed: PRR, ROR and their lower limits do not fall."""
    a, b, c, d = table
    lo = np.array([a, b, c, d], dtype=float)
    hi = np.array([a + step, b, c, d], dtype=float)
    for fn in (prr, ror):
        r0, r1 = fn(*lo), fn(*hi)
        assert r1.estimate >= r0.estimate
        assert r1.lower >= r0.lower * (1 - 1e-12)  # the upper limit may fall as the SE shrinks


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 5_000),
    st.integers(1, 5_000),
    st.integers(0, 10_000_000),
    st.integers(1, 20),
    st.sampled_from(PRIORS),
)
def test_all_estimates_grow_with_a_at_fixed_margins(
    drug_total: int, event_total: int, extra: int, step: int, prior: Prior
) -> None:
    """Same drug, event and background totals, more of them together: every measure rises."""
    total = drug_total + event_total + extra
    a0 = min(drug_total, event_total) - step
    if a0 < 0:
        return
    s0 = measures(a0, drug_total - a0, event_total - a0, total - drug_total - event_total + a0, prior)
    a1 = a0 + step
    s1 = measures(a1, drug_total - a1, event_total - a1, total - drug_total - event_total + a1, prior)
    assert s1["e"][0] == s0["e"][0]
    for key in ("prr", "ror", "ic", "ic025", "ic975", "ebgm", "eb05", "eb95"):
        assert s1[key][0] > s0[key][0], key


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 5_000), st.integers(1, 30), st.floats(min_value=0.0, max_value=1e5, allow_nan=False))
def test_ic_and_limits_grow_with_a_at_fixed_expected(a: int, step: int, e: float) -> None:
    i0, i1 = ic(a, e), ic(a + step, e)
    assert i1.estimate > i0.estimate and i1.lower > i0.lower and i1.upper > i0.upper


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 500),
    st.integers(1, 30),
    st.floats(min_value=1e-6, max_value=1e4, allow_nan=False),
    st.sampled_from(PRIORS),
)
def test_eb_scores_grow_with_n_at_fixed_expected(n: int, step: int, e: float, prior: Prior) -> None:
    s = eb_scores(prior, np.array([n, n + step]), np.array([e, e]))
    assert s.ebgm[1] > s.ebgm[0]
    assert s.eb05[1] > s.eb05[0]
    assert s.eb95[1] > s.eb95[0]


@settings(max_examples=100, deadline=None)
@given(tables)
def test_chi_square_symmetry(table: tuple[int, int, int, int]) -> None:
    """Yates chi-square does not depend on which margin is called the drug."""
    a, b, c, d = table
    assert np.isclose(chi2_yates(a, b, c, d), chi2_yates(a, c, b, d), rtol=1e-9, atol=1e-12)
    assert np.isclose(chi2_yates(a, b, c, d), chi2_yates(d, c, b, a), rtol=1e-9, atol=1e-12)
