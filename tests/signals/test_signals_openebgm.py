"""openEBGM reproduction: processRaw counts (toy examples) and MGPS on the caers data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.contingency import count_reports
from signals.ebgm import Prior, eb_scores, fit_prior, neg_log_likelihood, posterior
from signals.measures import prr, relative_reporting_ratio, score_table

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference"

# --- 1a. vignette02 toy example ------------------------------------------------------------
_PAIRS = [
    "B/e1",
    "A/e1",
    "B/e2",
    "A/e1",
    "A/e1",
    "A/e1",
    "A/e2",
    "A/e2",
    "A/e1",
    "A/e2",
    "A/e2",
    "B/e2",
    "B/e1",
    "B/e2",
    "B/e1",
    "B/e2",
    "C/e1",
]
_STRATA = [
    "F/age_cat2",
    "M/age_cat1",
    "M/age_cat1",
    "M/age_cat1",
    "F/age_cat1",
    "F/age_cat1",
    "F/age_cat1",
    "F/age_cat1",
    "M/age_cat2",
    "M/age_cat1",
    "M/age_cat1",
    "M/age_cat2",
    "M/age_cat1",
    "M/age_cat1",
    "M/age_cat1",
    "F/age_cat1",
    "M/age_cat1",
]


def vignette02() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(1, 18),
            "var1": [f"product_{p.split('/')[0]}" for p in _PAIRS],
            "var2": [f"event_{p.split('/')[1][1]}" for p in _PAIRS],
            "strat1": [s.split("/")[0] for s in _STRATA],
            "strat2": [s.split("/")[1] for s in _STRATA],
        }
    )


def process_raw(raw: pd.DataFrame, *, strata: tuple[str, ...] = (), zeroes: bool = False) -> pd.DataFrame:
    """Our equivalent of openEBGM processRaw: N, E, RR and PRR (unrounded)."""
    counted = count_reports(
        raw, report_col="id", drug_col="var1", event_col="var2", strata=strata, zeroes=zeroes
    )
    a = counted["n"].to_numpy()
    b = counted["drug_total"].to_numpy() - a
    c = counted["event_total"].to_numpy() - a
    d = counted["total"].to_numpy() - a - b - c
    counted["RR"] = relative_reporting_ratio(a, counted["e"])
    counted["PRR"] = prr(a, b, c, d).estimate
    return counted


def test_vignette02_unstratified() -> None:
    got = process_raw(vignette02())
    assert got["drug"].tolist() == ["product_A", "product_A", "product_B", "product_B", "product_C"]
    assert got["event"].tolist() == ["event_1", "event_2", "event_1", "event_2", "event_1"]
    assert got["n"].tolist() == [5, 4, 3, 4, 1]
    np.testing.assert_allclose(got["e"], [4.7647059, 4.2352941, 3.7058824, 3.2941176, 0.5294118], atol=5e-8)
    np.testing.assert_array_equal(got["RR"].round(2), [1.05, 0.94, 0.81, 1.21, 1.89])
    np.testing.assert_array_equal(got["PRR"].round(2), [1.11, 0.89, 0.71, 1.43, 2.00])


def test_vignette02_zeroes_row() -> None:
    got = process_raw(vignette02(), zeroes=True)
    row = got[(got["drug"] == "product_C") & (got["event"] == "event_2")].iloc[0]
    assert row["n"] == 0
    assert row["e"] == pytest.approx(0.4705882, abs=5e-8)
    assert row["RR"] == 0 and row["PRR"] == 0


def test_vignette02_stratified() -> None:
    got = process_raw(vignette02(), strata=("strat1", "strat2"))
    np.testing.assert_allclose(got["e"], [4.3222222, 4.6777778, 4.1222222, 2.8777778, 0.5555556], atol=5e-8)
    np.testing.assert_array_equal(got["RR"].round(2), [1.16, 0.86, 0.73, 1.39, 1.80])
    np.testing.assert_array_equal(got["PRR"].round(2), [1.11, 0.89, 0.71, 1.43, 2.00])  # crude, unchanged


# --- 1b. testA_Counts.R hand-calculated example (digits = 4) ---------------------------------
def hand_example_raw() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(1, 11),
            "var1": [f"product_{x}" for x in ["A", "B", "B", "B", "C", "A", "A", "B", "B", "C"]],
            "var2": [f"event_{x}" for x in ["1", "2", "2", "3", "3", "2", "3", "3", "3", "1"]],
            "strat1": ["Male"] * 5 + ["Female"] * 3 + ["Male"] * 2,
            "strat2": ["age_cat1"] * 8 + ["age_cat2"] * 2,
        }
    )


def test_testA_counts_unstratified() -> None:
    got = process_raw(hand_example_raw(), zeroes=True)
    assert got["n"].tolist() == [1, 1, 1, 0, 2, 3, 1, 0, 1]
    np.testing.assert_allclose(got["e"], [0.6, 0.9, 1.5, 1, 1.5, 2.5, 0.4, 0.6, 1], rtol=1e-12)
    np.testing.assert_array_equal(got["RR"].round(4), [1.6667, 1.1111, 0.6667, 0, 1.3333, 1.2, 2.5, 0, 1])
    np.testing.assert_array_equal(got["PRR"].round(4), [2.3333, 1.1667, 0.5833, 0, 2, 1.5, 4, 0, 1])


def test_testA_counts_stratified() -> None:
    got = process_raw(hand_example_raw(), strata=("strat1", "strat2"), zeroes=True)
    expected_e = [0.2, 0.4 + 2 / 3, 0.4 + 4 / 3, 1.1, 1.2 + 1 / 3, 1.7 + 2 / 3, 0.7, 0.4, 0.9]
    np.testing.assert_allclose(got["e"], expected_e, rtol=1e-12)
    np.testing.assert_array_equal(
        got["RR"].round(4), [5, 0.9375, 0.5769, 0, 1.3043, 1.2676, 1.4286, 0, 1.1111]
    )
    np.testing.assert_array_equal(got["PRR"].round(4), [2.3333, 1.1667, 0.5833, 0, 2, 1.5, 4, 0, 1])


def test_stratified_e_flows_into_score_table() -> None:
    """score_table uses column e (stratified) for IC and EBGM, crude margins for PRR/ROR."""
    counted = count_reports(
        hand_example_raw(), report_col="id", drug_col="var1", event_col="var2", strata=("strat1", "strat2")
    )
    scores, _ = score_table(counted, prior=Prior(0.2, 0.1, 2.0, 4.0, 1 / 3))
    np.testing.assert_allclose(scores["e"], counted["e"])
    np.testing.assert_allclose(scores["ic"], np.log2((counted["n"] + 0.5) / (counted["e"] + 0.5)))
    assert scores.loc[0, "prr"] == pytest.approx(7 / 3)


# --- 1c-1d. caers -----------------------------------------------------------------------------
#: vignette04 theta_hat (autoHyper on squashed data, 5 starts)
THETA_V04 = Prior(3.25379356, 0.39988854, 2.02612692, 1.90807970, 0.06534557)


@pytest.fixture(scope="module")
def caers() -> pd.DataFrame:
    raw = pd.read_csv(REFERENCE / "openebgm-caers.csv")
    counted = count_reports(raw, report_col="id", drug_col="var1", event_col="var2")
    scores = eb_scores(THETA_V04, counted["n"], counted["e"])
    counted["ebgm"], counted["q05"], counted["q95"], counted["qn"] = scores
    return counted


def pair(frame: pd.DataFrame, drug: str, event: str) -> pd.Series:
    hit = frame[(frame["drug"] == drug) & (frame["event"] == event)]
    assert len(hit) == 1, (drug, event)
    return hit.iloc[0]


def test_caers_process_raw_shape_and_first_rows(caers: pd.DataFrame) -> None:
    assert len(caers) == 17189
    assert caers["total"].iloc[0] == 3356
    head = caers.head(4)
    assert head["drug"].tolist() == ["1-PHENYLALANINE"] + ["11 UNSPECIFIED VITAMINS"] * 3
    assert head["event"].tolist() == ["HEART RATE INCREASED", "ASTHMA", "CARDIAC FUNCTION TEST", "CHEST PAIN"]
    np.testing.assert_allclose(
        head["e"], [0.0360548272, 0.0038736591, 0.0002979738, 0.0360548272], atol=5e-11
    )


# vignette04 head(processed): var1, var2, N, E, RR, PRR, ebgm, QUANT_05, QUANT_95
V04_HEAD = [
    ("1-PHENYLALANINE", "HEART RATE INCREASED", 1, 0.0360548272, 27.74, 27.96, 2.23, 0.49, 13.85),
    ("11 UNSPECIFIED VITAMINS", "ASTHMA", 1, 0.0038736591, 258.15, 279.58, 2.58, 0.52, 15.78),
    ("11 UNSPECIFIED VITAMINS", "CARDIAC FUNCTION TEST", 1, 0.0002979738, 3356.00, np.inf, 2.63, 0.52, 16.02),
    ("11 UNSPECIFIED VITAMINS", "CHEST PAIN", 1, 0.0360548272, 27.74, 27.96, 2.23, 0.49, 13.85),
    ("11 UNSPECIFIED VITAMINS", "DYSPNOEA", 1, 0.0765792610, 13.06, 13.11, 1.92, 0.47, 11.77),
    ("11 UNSPECIFIED VITAMINS", "HYPERSENSITIVITY", 1, 0.0527413588, 18.96, 19.06, 2.09, 0.48, 12.95),
]
# vignette04 top 5 by QUANT_05 (N, E, QUANT_05, ebgm, QUANT_95); vignette05 top EBGM rows
V04_TOP = [
    ("REUMOFAN PLUS", "WEIGHT INCREASED", 16, 0.40643623, 15.68, 23.26, 33.48),
    ("HYDROXYCUT REGULAR RAPID RELEASE CAPLETS", "EMOTIONAL DISTRESS", 19, 0.89690107, 11.65, 16.78, 23.55),
    ("REUMOFAN PLUS", "IMMOBILE", 6, 0.07866508, 10.16, 18.28, 30.83),
    ("HYDROXYCUT HARDCORE CAPSULES", "CARDIO-RESPIRATORY DISTRESS", 8, 0.30482718, 9.00, 15.25, 24.52),
    ("HYDROXYCUT REGULAR RAPID RELEASE CAPLETS", "INJURY", 11, 0.56317044, 8.98, 14.28, 21.78),
]


@pytest.mark.parametrize("row", V04_HEAD, ids=[f"{r[0]}|{r[1]}" for r in V04_HEAD])
def test_caers_vignette04_head(caers: pd.DataFrame, row: tuple) -> None:
    drug, event, n, e, rr, prr_, ebgm, q05, q95 = row
    got = pair(caers, drug, event)
    a = got["n"]
    assert a == n
    assert got["e"] == pytest.approx(e, abs=5e-11)
    assert round(a / got["e"], 2) == rr
    p = prr(
        a,
        got["drug_total"] - a,
        got["event_total"] - a,
        got["total"] - got["drug_total"] - got["event_total"] + a,
    )
    assert round(float(p.estimate), 2) == prr_
    assert round(got["ebgm"], 2) == ebgm  # every printed digit
    assert abs(got["q05"] - q05) <= 0.01  # openEBGM's bisection tolerance is 0.005 + rounding
    assert abs(got["q95"] - q95) <= 0.01


@pytest.mark.parametrize("row", V04_TOP, ids=[f"{r[0]}|{r[1]}" for r in V04_TOP])
def test_caers_vignette04_top_quant05(caers: pd.DataFrame, row: tuple) -> None:
    drug, event, n, e, q05, ebgm, q95 = row
    got = pair(caers, drug, event)
    assert got["n"] == n
    assert got["e"] == pytest.approx(e, abs=5e-9)
    assert round(got["ebgm"], 2) == ebgm
    assert abs(got["q05"] - q05) <= 0.01
    assert abs(got["q95"] - q95) <= 0.01


def test_caers_top5_order_and_count_eb05_ge_2(caers: pd.DataFrame) -> None:
    top = caers.sort_values("q05", ascending=False, kind="stable").head(5)
    assert list(zip(top["drug"], top["event"], strict=True)) == [(r[0], r[1]) for r in V04_TOP]
    assert (top.index + 1).tolist() == [13924, 8187, 13886, 7793, 8220]  # openEBGM's row numbers
    assert int((caers["q05"] >= 2).sum()) == 131  # 0.007621153 of 17189
    assert (caers["q05"] >= 2).mean() == pytest.approx(0.007621153, abs=5e-10)


@pytest.mark.parametrize(
    ("row", "drug_prefix", "event", "n", "e", "ebgm"),
    [  # vignette05 top EBGM rows not already above (row = 1-based position in sorted table)
        (4093, "EMERGEN-C (ASCORBIC ACID, B-COMPLEX, ELECTROLYTE,", "COUGH", 6, 0.14481526, 16.03),
        (7832, "HYDROXYCUT HARDCORE CAPSULES", "MULTIPLE INJURIES", 5, 0.09237187, 15.63),
    ],
)
def test_caers_vignette05_top_ebgm(
    caers: pd.DataFrame, row: int, drug_prefix: str, event: str, n: int, e: float, ebgm: float
) -> None:
    """vignette05's theta is not printed; with vignette04's theta the EBGM still matches."""
    got = caers.iloc[row - 1]
    assert str(got["drug"]).startswith(drug_prefix)
    assert got["event"] == event and got["n"] == n
    assert got["e"] == pytest.approx(e, abs=5e-9)
    assert round(got["ebgm"], 2) == ebgm


def test_caers_qn_head_and_summary(caers: pd.DataFrame) -> None:
    np.testing.assert_allclose(
        caers["qn"].head(6), [0.2819737, 0.3409653, 0.3482317, 0.2819737, 0.2226356, 0.2556670], atol=5e-8
    )
    qn = caers["qn"].to_numpy()
    assert qn.min() == pytest.approx(0.0001205, abs=5e-8)
    assert np.quantile(qn, 0.25) == pytest.approx(0.2340248, abs=5e-8)
    assert np.median(qn) == pytest.approx(0.3089649, abs=5e-8)
    assert qn.mean() == pytest.approx(0.2846021, abs=5e-8)
    assert np.quantile(qn, 0.75) == pytest.approx(0.3397685, abs=5e-8)
    assert qn.max() == pytest.approx(0.9999997, abs=5e-8)


def test_caers_posterior_quantiles_are_exact_roots(caers: pd.DataFrame) -> None:
    """Our EB05/EB95 solve the mixture CDF equation to ~1e-10, far inside the 1e-6 target."""
    from scipy import special

    post = posterior(THETA_V04, caers["n"], caers["e"])
    for col, prob in (("q05", 0.05), ("q95", 0.95)):
        x = caers[col].to_numpy()
        cdf = post.qn * special.gammainc(post.shape1, post.rate1 * x) + (1 - post.qn) * special.gammainc(
            post.shape2, post.rate2 * x
        )
        assert np.max(np.abs(cdf - prob)) < 1e-9


def test_caers_full_data_fit_meets_autohyper_minimum(caers: pd.DataFrame) -> None:
    """autoHyper(processed, squashed = FALSE): minimum 4162.456 at
    (3.25596685, 0.39998994, 2.02376139, 1.90614108, 0.06530755)."""
    prior = fit_prior(caers["n"], caers["e"])
    assert prior.converged
    assert prior.neg_log_likelihood is not None
    assert prior.neg_log_likelihood <= 4162.456
    assert prior.neg_log_likelihood == pytest.approx(4162.45571, abs=5e-6)
    np.testing.assert_allclose(
        prior.theta, (3.25596685, 0.39998994, 2.02376139, 1.90614108, 0.06530755), rtol=2e-4
    )
    at_autohyper = neg_log_likelihood(
        (3.25596685, 0.39998994, 2.02376139, 1.90614108, 0.06530755), caers["n"], caers["e"]
    )
    assert round(at_autohyper, 3) == 4162.456


def test_caers_score_table_end_to_end(caers: pd.DataFrame) -> None:
    """The public API on the caers counts with the vignette04 prior gives the same 131."""
    counts = caers[["drug", "event", "n", "drug_total", "event_total", "total"]]
    scores, used = score_table(counts, prior=THETA_V04)
    assert used is THETA_V04
    assert int((scores["eb05"] >= 2).sum()) == 131
    assert not scores.drop(columns=["drug", "event"]).isna().any().any()
    assert np.isinf(pair(scores, "11 UNSPECIFIED VITAMINS", "CARDIAC FUNCTION TEST")["prr"])
