"""Signal rules, disagreement views and the cumulative quarterly trend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from signals.ebgm import DEFAULT_PRIOR, Prior
from signals.measures import score_arrays
from signals.rules import (
    DEFAULT_RULES,
    EVANS,
    FDA,
    WHO_UMC,
    SignalRule,
    Threshold,
    agreement_matrix,
    apply_rules,
    disagreements,
    ema_rule,
)
from signals.trend import cumulative_trend, first_signal_quarters, quarterly_counts
from signals.validation import CountsError

PRIOR = Prior(3.25379356, 0.39988854, 2.02612692, 1.90807970, 0.06534557)


def scores_frame(**columns: list[float]) -> pd.DataFrame:
    base = {"n": [3], "prr": [2.0], "chi2": [4.0], "ror_lower": [1.01], "ic025": [0.01], "eb05": [2.0]}
    base.update(columns)
    return pd.DataFrame(base)


def test_default_rules_are_the_four_cited_rules() -> None:
    assert [r.name for r in DEFAULT_RULES] == ["evans", "ema", "who_umc", "fda"]
    assert all(r.source and r.thresholds for r in DEFAULT_RULES)
    assert EVANS.describe() == "Evans (MHRA): prr >= 2, chi2 >= 4, n >= 3"
    assert str(FDA.thresholds[0]) == "eb05 >= 2"


def test_thresholds_at_their_boundaries() -> None:
    at = apply_rules(scores_frame())
    assert at[["signal_evans", "signal_ema", "signal_who_umc", "signal_fda"]].iloc[0].tolist() == [True] * 4
    below = apply_rules(scores_frame(n=[2], ror_lower=[1.0], ic025=[0.0], eb05=[1.999]))
    assert (
        below[["signal_evans", "signal_ema", "signal_who_umc", "signal_fda"]].iloc[0].tolist() == [False] * 4
    )
    assert not apply_rules(scores_frame(chi2=[3.99]))["signal_evans"].iloc[0]
    assert not apply_rules(scores_frame(prr=[1.99]))["signal_evans"].iloc[0]


def test_ema_case_floor_is_configurable() -> None:
    frame = scores_frame(n=[4])
    assert apply_rules(frame, [ema_rule(3)])["signal_ema"].iloc[0]
    assert not apply_rules(frame, [ema_rule(5)])["signal_ema"].iloc[0]


def test_infinite_estimates_compare_as_numbers() -> None:
    flagged = apply_rules(scores_frame(prr=[np.inf], ror_lower=[0.0]))
    assert flagged["signal_evans"].iloc[0] and not flagged["signal_ema"].iloc[0]


def test_custom_rule_and_validation() -> None:
    rule = SignalRule("strict_ic", "IC025 > 1", "in-house", (Threshold("ic025", ">", 1.0),))
    assert apply_rules(scores_frame(ic025=[1.5]), [rule])["signal_strict_ic"].iloc[0]
    with pytest.raises(ValueError, match="unknown comparison"):
        Threshold("ic025", "=>", 1)
    with pytest.raises(ValueError, match="lack column"):
        apply_rules(pd.DataFrame({"n": [1]}), [FDA])
    with pytest.raises(ValueError, match="unique"):
        apply_rules(scores_frame(), [FDA, FDA])


def test_disagreements_and_agreement_matrix() -> None:
    frame = pd.DataFrame(
        {
            "drug": ["A", "B", "C"],
            "n": [3, 10, 1],
            "prr": [2.5, 5.0, 1.0],
            "chi2": [5.0, 30.0, 0.0],
            "ror_lower": [0.8, 3.0, 0.5],
            "ic025": [0.2, 1.5, -2.0],
            "eb05": [1.2, 2.5, 0.3],
        }
    )
    flagged = apply_rules(frame)
    diff = disagreements(flagged)
    assert diff["drug"].tolist() == ["A"]  # B: all four agree, C: none
    assert diff["flagged_by"].iloc[0] == "evans;who_umc" and diff["n_rules"].iloc[0] == 2
    matrix = agreement_matrix(flagged)
    assert matrix.loc["evans", "evans"] == 2 and matrix.loc["fda", "evans"] == 1
    assert matrix.loc["who_umc", "ema"] == 1


# --- trend --------------------------------------------------------------------------------
QUARTERLY = pd.DataFrame(
    [
        ("2004Q1", "A", "x", 1),
        ("2004Q1", "A", "y", 2),
        ("2004Q1", "B", "x", 5),
        ("2004Q1", "B", "z", 10),
        ("2004Q1", "C", "y", 20),
        ("2004Q2", "A", "x", 3),
        ("2004Q2", "B", "x", 5),
        ("2004Q2", "C", "z", 20),
        ("2004Q3", "A", "x", 4),
        ("2004Q3", "B", "y", 1),
        ("2004Q3", "C", "y", 20),
        ("2004Q3", "C", "x", 2),
    ],
    columns=["quarter", "drug", "event", "n"],
)


def cumulative_by_hand(frame: pd.DataFrame, quarter: str) -> pd.DataFrame:
    upto = frame[frame["quarter"] <= quarter]
    pairs = upto.groupby(["drug", "event"], as_index=False)["n"].sum()
    pairs["drug_total"] = pairs["drug"].map(upto.groupby("drug")["n"].sum())
    pairs["event_total"] = pairs["event"].map(upto.groupby("event")["n"].sum())
    pairs["total"] = upto["n"].sum()
    return pairs


def test_trend_equals_scoring_each_cumulative_table() -> None:
    trend = cumulative_trend(QUARTERLY, prior=PRIOR)
    assert trend.attrs["prior"]["alpha1"] == PRIOR.alpha1
    for quarter in ("2004Q1", "2004Q2", "2004Q3"):
        hand = cumulative_by_hand(QUARTERLY, quarter)
        expected = score_arrays(hand["n"], hand["drug_total"], hand["event_total"], hand["total"], PRIOR)
        got = (
            trend[trend["quarter"] == quarter]
            .set_index(["drug", "event"])
            .loc[list(zip(hand["drug"], hand["event"], strict=True))]
        )
        for key in ("n", "e", "prr", "ror_lower", "chi2", "ic025", "eb05", "ebgm"):
            np.testing.assert_allclose(
                got[key].to_numpy(dtype=float), expected[key], rtol=1e-12, err_msg=f"{quarter} {key}"
            )
    ax = trend[(trend["drug"] == "A") & (trend["event"] == "x")]
    assert ax["quarter"].tolist() == ["2004Q1", "2004Q2", "2004Q3"]
    assert ax["n"].tolist() == [1, 4, 8]
    assert ax["total"].tolist() == [38, 66, 93]
    by = trend[(trend["drug"] == "B") & (trend["event"] == "y")]
    assert by["quarter"].tolist() == ["2004Q3"]  # a pair enters with its first report


def test_first_signal_quarter_per_rule() -> None:
    rules = (WHO_UMC, SignalRule("n4", "n >= 4", "test", (Threshold("n", ">=", 4),)))
    trend = cumulative_trend(QUARTERLY, prior=PRIOR, rules=rules)
    firsts = first_signal_quarters(trend).set_index(["drug", "event"])
    assert firsts.loc[("A", "x"), "first_signal_quarter_n4"] == "2004Q2"
    assert firsts.loc[("B", "x"), "first_signal_quarter_n4"] == "2004Q1"
    assert firsts.loc[("B", "y"), "first_signal_quarter_n4"] is None
    # the first quarter is the earliest flagged row of the pair
    for (drug, event), first in firsts["first_signal_quarter_who_umc"].items():
        rows = trend[(trend["drug"] == drug) & (trend["event"] == event)]
        flagged = rows.loc[rows["signal_who_umc"], "quarter"]
        assert first == (flagged.min() if len(flagged) else None)


def test_trend_with_per_quarter_margins_and_drug_filter() -> None:
    frame = QUARTERLY.copy()
    quarter_total = {"2004Q1": 100, "2004Q2": 120, "2004Q3": 150}
    drug_total = frame.groupby(["quarter", "drug"])["n"].transform("sum") + 5
    event_total = frame.groupby(["quarter", "event"])["n"].transform("sum") + 7
    frame["drug_total"] = drug_total
    frame["event_total"] = event_total
    frame["total"] = frame["quarter"].map(quarter_total)
    trend = cumulative_trend(frame, prior=PRIOR, drugs=["A"])
    assert set(trend["drug"]) == {"A"}
    q2 = trend[(trend["quarter"] == "2004Q2") & (trend["event"] == "x")].iloc[0]
    assert q2["n"] == 4
    assert q2["drug_total"] == (3 + 5) + (3 + 5)  # A: Q1 n 1+2 (+5), Q2 n 3 (+5)
    assert q2["event_total"] == (6 + 7) + (8 + 7)
    assert q2["total"] == 220
    assert q2["e"] == pytest.approx(16 * 28 / 220)


def test_trend_fits_one_prior_on_final_background_with_fallback() -> None:
    trend = cumulative_trend(QUARTERLY)
    assert trend.attrs["prior"]["converged"] is False  # 8 pairs cannot support a fit
    assert "fell back" in trend.attrs["prior"]["message"]
    assert not trend.select_dtypes("number").isna().any().any()


def test_trend_rejects_incoherent_input() -> None:
    dup = pd.concat([QUARTERLY, QUARTERLY.iloc[[0]]], ignore_index=True)
    with pytest.raises(CountsError, match="duplicated"):
        cumulative_trend(dup, prior=PRIOR)
    bad = QUARTERLY.assign(drug_total=1, event_total=1, total=1)
    with pytest.raises(CountsError):
        cumulative_trend(bad, prior=PRIOR)


def test_quarterly_counts_from_reports_count_unique_reports() -> None:
    reports = pd.DataFrame(
        {
            "id": [1, 1, 1, 2, 3, 4, 4],
            "quarter": ["2004Q1", "2004Q1", "2004Q1", "2004Q1", "2004Q2", "2004Q2", "2004Q2"],
            "drug": ["A", "A", "B", "A", "A", "B", "B"],
            "event": ["x", "x", "x", "y", "x", "x", "y"],
        }
    )
    counts = quarterly_counts(reports)
    q1 = counts[counts["quarter"] == "2004Q1"].set_index(["drug", "event"])
    assert q1.loc[("A", "x"), "n"] == 1  # report 1 names A/x twice
    assert q1.loc[("A", "x"), "drug_total"] == 2 and q1.loc[("A", "x"), "total"] == 2
    trend = cumulative_trend(counts, prior=DEFAULT_PRIOR)
    ax = trend[(trend["drug"] == "A") & (trend["event"] == "x")]
    assert ax["n"].tolist() == [1, 2] and ax["total"].tolist() == [2, 4]


def test_trend_accepts_pandas_periods() -> None:
    periods = QUARTERLY.assign(quarter=pd.PeriodIndex(QUARTERLY["quarter"], freq="Q"))
    by_period = cumulative_trend(periods, prior=PRIOR)
    by_text = cumulative_trend(QUARTERLY, prior=PRIOR)
    np.testing.assert_allclose(by_period["eb05"], by_text["eb05"])
    assert [str(q) for q in by_period["quarter"]] == by_text["quarter"].tolist()
