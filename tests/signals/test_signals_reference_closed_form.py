"""Closed-form measures against published values (faers README, Gould 2003, Norén, DiAna, FDA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.contingency import expected_count
from signals.measures import Z95, chi2_yates, ic, ic_bcpnn_norm, ic_shrinkage, prr, ror

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"


def table_from_margins(n11: int, n1_: int, n_1: int, n__: int) -> tuple[int, int, int, int]:
    """pharmsignal's convention: a = n11, b = n1. - n11, c = n.1 - n11, d = rest."""
    return n11, n1_ - n11, n_1 - n11, n__ - n1_ - n_1 + n11


@pytest.fixture(scope="module")
def faers_readme() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "faers-readme-insulin-soc-signals.csv")


def cells(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(frame[k].to_numpy(dtype=float) for k in "abcd")


def test_faers_readme_ror_prr_and_intervals(faers_readme: pd.DataFrame) -> None:
    """Every printed ROR/PRR with CI (7-8 significant digits) is reproduced; a = 0 rows give
    0 with upper limit inf where R prints NaN."""
    a, b, c, d = cells(faers_readme)
    r = ror(a, b, c, d)
    p = prr(a, b, c, d)
    pos = a > 0
    for got, col in [
        (r.estimate, "ror"),
        (r.lower, "ror_ci_low"),
        (r.upper, "ror_ci_high"),
        (p.estimate, "prr"),
        (p.lower, "prr_ci_low"),
        (p.upper, "prr_ci_high"),
    ]:
        np.testing.assert_allclose(got[pos], faers_readme[col].to_numpy()[pos], rtol=1e-6)
    assert np.all(r.estimate[~pos] == 0) and np.all(r.lower[~pos] == 0)
    assert np.all(np.isinf(r.upper[~pos])) and np.all(np.isinf(p.upper[~pos]))
    assert faers_readme.loc[~pos, "ror_ci_high"].isna().all()  # R's NaN, our documented inf
    # row 2 (Cardiac disorders) printed values, spelled out
    row = faers_readme.index[faers_readme["soc_name"] == "Cardiac disorders"][0]
    assert r.estimate[row] == pytest.approx(13.5714286, abs=1e-7)
    assert r.lower[row] == pytest.approx(1.09612571, abs=1e-8)
    assert r.upper[row] == pytest.approx(168.031524, abs=1e-6)
    assert p.lower[row] == pytest.approx(1.6173190, abs=1e-7)
    assert p.upper[row] == pytest.approx(54.412435, abs=1e-6)


def test_faers_readme_yates_chi_square(faers_readme: pd.DataFrame) -> None:
    a, b, c, d = cells(faers_readme)
    chi = chi2_yates(a, b, c, d)
    ref = faers_readme["chisq"].to_numpy()
    # printed to 7 significant digits; the a = 0 rows are R's rounding noise (~1e-31) around 0
    np.testing.assert_allclose(chi, ref, rtol=1e-6, atol=1e-6)
    row = faers_readme.index[faers_readme["soc_name"] == "Metabolism and nutrition disorders"][0]
    assert chi[row] == pytest.approx(10.45469, rel=1e-6)


def test_faers_readme_bcpnn_norm_ic(faers_readme: pd.DataFrame) -> None:
    """faers' bcpnn_norm is Gould's exact digamma/trigamma IC (all rows, a = 0 included)."""
    a, b, c, d = cells(faers_readme)
    got = ic_bcpnn_norm(a, b, c, d)
    np.testing.assert_allclose(got.estimate, faers_readme["bcpnn_norm_ic"], atol=5e-8)
    np.testing.assert_allclose(got.lower, faers_readme["bcpnn_norm_ic_ci_low"], atol=5e-7)
    np.testing.assert_allclose(got.upper, faers_readme["bcpnn_norm_ic_ci_high"], atol=5e-7)


def test_faers_readme_shrinkage_oe_ratio(faers_readme: pd.DataFrame) -> None:
    """faers' oe_ratio is the Norén 2013 shrinkage IC; its CI for a = 0 rows is MCMC-based
    (not the closed form), so limits are compared where a > 0."""
    a, b, c, d = cells(faers_readme)
    e = expected_count(a + b, a + c, a + b + c + d)
    np.testing.assert_allclose(e, faers_readme["expected"], atol=5e-4)  # printed to 3 dp
    got = ic_shrinkage(a, e)
    np.testing.assert_allclose(got.estimate, faers_readme["oe_ratio"], atol=5e-8)
    pos = a > 0
    np.testing.assert_allclose(got.lower[pos], faers_readme["oe_ratio_ci_low"][pos], atol=5e-7)
    np.testing.assert_allclose(got.upper[pos], faers_readme["oe_ratio_ci_high"][pos], atol=5e-7)
    np.testing.assert_allclose(got.upper[~pos], got.estimate[~pos] + 2.4 / 0.5**0.5 - 0.5 / 0.5**1.5)


@pytest.mark.parametrize(
    ("margins", "expected"),
    [
        # Gould 2003 Table 1 via pharmsignal test_bcpnn_norm_signal.R (tol 1e-6): haloperidol
        ((1614, 85304, 71209, 4640498), (0.301503, 0.001341455, 0.2297176, 0.3732884)),  # headache
        ((328, 85304, 3001, 4640498), (2.547888, 0.007052478, 2.383292, 2.712484)),  # akathisia
    ],
)
def test_gould_2003_bcpnn_norm(margins: tuple[int, ...], expected: tuple[float, ...]) -> None:
    est, var, lo, hi = expected
    got = ic_bcpnn_norm(*table_from_margins(*margins))
    assert float(got.estimate) == pytest.approx(est, abs=1e-6)
    sd = (float(got.upper) - float(got.lower)) / (2 * Z95)
    assert sd**2 == pytest.approx(var, abs=1e-9)
    assert float(got.lower) == pytest.approx(lo, abs=1e-6)
    assert float(got.upper) == pytest.approx(hi, abs=1e-6)


@pytest.mark.parametrize(
    ("margins", "estimate", "lower"),
    [
        # Norén et al. 2006 Table III strata, shrinkage O/E of Norén et al. 2013 (pharmsignal)
        ((25, 1126, 87, 572573), 5.247845, 4.578816),
        ((203, 30068, 508, 155209), 1.0408, 0.8087816),
    ],
)
def test_noren_shrinkage_ic(margins: tuple[int, ...], estimate: float, lower: float) -> None:
    a, b, c, d = table_from_margins(*margins)
    got = ic_shrinkage(a, expected_count(a + b, a + c, a + b + c + d))
    assert float(got.estimate) == pytest.approx(estimate, abs=1e-6)
    assert float(got.lower) == pytest.approx(lower, abs=1e-6)


def test_noren_stratum_with_zero_count_point_estimate() -> None:
    """Stratum 4 (n11 = 0) of Norén 2006: the point estimate is closed form (-0.4768633);
    its lower limit in pharmsignal is MCMC, so only the estimate is a target."""
    a, b, c, d = table_from_margins(0, 5232, 3, 80140)
    got = ic_shrinkage(a, expected_count(a + b, a + c, a + b + c + d))
    assert float(got.estimate) == pytest.approx(-0.4768633, abs=1e-6)
    stratum7 = ic_shrinkage(0, expected_count(10, 0, 453481))
    assert float(stratum7.estimate) == 0.0


def test_diana_ic_gamma_limits() -> None:
    """DiAna IC_gamma '2.08 (0.17-3.42)' (rounded to 2 dp): limits are log2 gamma quantiles
    with shape a + 0.5 and rate E + 0.5; DiAna's printed centre is the log2 median, ours is
    IC = log2((a + .5)/(E + .5)) = 2.22, DiAna's 'IC' column."""
    e = expected_count(100, 50, 20000)
    got = ic(3, e)
    assert round(float(got.estimate), 2) == 2.22
    assert round(float(got.lower), 2) == 0.17
    assert round(float(got.upper), 2) == 3.42
    assert float(got.lower) == pytest.approx(0.171949065, abs=1e-8)
    assert float(got.upper) == pytest.approx(3.416187975, abs=1e-8)
    # DiAna's Norén-2013 IC "2.22 (0.15-3.42)" is floored to 2 dp
    shrink = ic_shrinkage(3, e)
    assert np.floor(float(shrink.lower) * 100) / 100 == 0.15
    assert np.floor(float(shrink.upper) * 100) / 100 == 3.42


def test_diana_prr() -> None:
    """DiAna PRR '12.7 (4.02-40.14)' for the same table (rounded to 2 dp)."""
    a, b, c, d = table_from_margins(3, 100, 50, 20000)
    got = prr(a, b, c, d)
    assert round(float(got.estimate), 2) == 12.7
    assert round(float(got.lower), 2) == 4.02
    assert round(float(got.upper), 2) == 40.14


@pytest.fixture(scope="module")
def fda_rows() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "isotretinoin-2004q1-prr-rows-fda.csv")


def test_fda_2004q1_isotretinoin_prr_rows(fda_rows: pd.DataFrame) -> None:
    """FDA's table: C = AC - A, CD = ABCD - AB (ABCD = 6,145,409), z = 1.96 exactly."""
    a = fda_rows["A"].to_numpy()
    b = fda_rows["AB"].to_numpy() - a
    c = fda_rows["C"].to_numpy()
    d = fda_rows["CD"].to_numpy() - c
    assert np.all(a + b + c + d == 6_145_409)
    got = prr(a, b, c, d, z=1.96)
    np.testing.assert_allclose(got.estimate, fda_rows["PRR"], rtol=1e-12)
    np.testing.assert_allclose(got.lower, fda_rows["lb"], rtol=1e-12)
    np.testing.assert_allclose(got.upper, fda_rows["ub"], rtol=1e-12)
    se = np.log(got.upper / got.estimate) / 1.96
    np.testing.assert_allclose(se, fda_rows["s"], rtol=1e-10)


@pytest.mark.parametrize(
    ("event", "a", "ac", "prr_", "s", "lb", "ub"),
    [  # printed in the reference compilation, section 6
        ("ARTHRALGIA", 5, 783, 145.1954719869953, 0.444532, 60.75188829799737, 347.0134949899374),
        ("MYALGIA", 5, 677, 168.09832917542016, 0.444760, 70.30335286710583, 401.93030800368933),
        ("MUSCLE SPASMS", 3, 197, 349.36724909035786, 0.578629, 112.39406394786873, 1085.9779462514807),
        ("DEPRESSION", 23, 816, 655.265517, 0.202639, 440.481133, 974.781588),
    ],
)
def test_fda_printed_isotretinoin_rows(
    event: str, a: int, ac: int, prr_: float, s: float, lb: float, ub: float
) -> None:
    ab, total = 272, 6_145_409
    got = prr(a, ab - a, ac - a, total - ab - (ac - a), z=1.96)
    assert float(got.estimate) == pytest.approx(prr_, abs=1e-6)
    assert float(got.lower) == pytest.approx(lb, abs=1e-6)
    assert float(got.upper) == pytest.approx(ub, abs=1e-6)
    assert float(np.log(got.upper / got.estimate) / 1.96) == pytest.approx(s, abs=1e-6)


def test_fda_first_row_of_table() -> None:
    """ABASIA / PAROXETINE: A=4 AB=1907 AC=141 C=137 CD=6143502 -> PRR 94.059948."""
    got = prr(4, 1907 - 4, 137, 6143502 - 137, z=1.96)
    assert float(got.estimate) == pytest.approx(94.05994817, abs=1e-6)
    assert float(got.lower) == pytest.approx(34.839180, abs=1e-6)
    assert float(got.upper) == pytest.approx(253.946096, abs=1e-6)


@pytest.mark.parametrize("cells_", [(28, 942, 17, 31435), (122, 1320, 381, 31341)])
def test_singhal_tables_closed_form(cells_: tuple[int, int, int, int]) -> None:
    """Singhal et al. table 16 inputs (pharmsignal): the closed forms, written out."""
    a, b, c, d = cells_
    r = ror(a, b, c, d)
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    assert float(r.estimate) == pytest.approx(a * d / (b * c), rel=1e-14)
    assert float(r.lower) == pytest.approx(a * d / (b * c) * np.exp(-1.959963984540054 * se), rel=1e-12)
    p = prr(a, b, c, d)
    assert float(p.estimate) == pytest.approx((a / (a + b)) / (c / (c + d)), rel=1e-14)
