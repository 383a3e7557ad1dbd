"""Verdicts and the evidence beyond the 2x2 table, on the tiny known world (tests/data/report/fixtures.py)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from claims.assess import (
    INSUFFICIENT,
    NOT_SUPPORTED,
    NOT_TESTABLE,
    SUPPORTED,
    VERDICT_RULES,
    VERDICTS,
    assess_claims,
    bucket_terms,
    claim_trend,
    claim_trend_counts,
    onset_days,
    subgroup_counts,
    subgroup_scores,
    uncovered_signals,
    weibull_fit,
    wilson_interval,
)
from claims.catalog import load_claims, musculoskeletal_pts
from signals.measures import score_table
from signals.rules import apply_rules

COLUMNS = ["drug", "event", "n", "drug_total", "event_total", "total"]


@pytest.fixture(scope="module")
def catalog(world: Any) -> Any:
    return load_claims(world.CLAIMS_FILE)


def scored(world: Any, catalog: Any) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """PT and claim-group scores as compute_signals makes them (one prior, fitted on the PTs)."""
    pt_counts, group_counts = world.counts(catalog, world.WINDOW_END, world.WINDOW_START)
    pts, prior = score_table(pt_counts[COLUMNS], fit_prior=True)
    groups, _ = score_table(group_counts[COLUMNS], prior=prior, fit_prior=False)
    pts = apply_rules(pts).merge(pt_counts[["event", "n_new"]], on="event").assign(pt=lambda f: f["event"])
    groups = apply_rules(groups).merge(group_counts[["event", "n_new", "event_total", "claim_id"]], on="event")
    return pts, groups, prior


def cumulative_drug_reports(world: Any) -> list[Any]:
    return [r for r in world.drug_reports() if r.day < world.WINDOW_END.date()]


def verdicts_for(world: Any, catalog: Any, *, faers_like: bool) -> dict[str, Any]:
    tables = world.canonical_tables(cumulative_drug_reports(world), faers_like=faers_like)
    _, groups, _ = scored(world, catalog)
    results = assess_claims(catalog, groups, tables["reports"], tables["drugs"], tables["reactions"],
                            musculoskeletal_pts=musculoskeletal_pts())  # fmt: skip
    return {v.claim_id: v for v in results}


def test_api_like_tables_give_every_verdict(world: Any, catalog: Any) -> None:
    verdicts = verdicts_for(world, catalog, faers_like=False)
    assert {k: v.verdict for k, v in verdicts.items()} == world.EXPECTED_API
    assert {v.verdict for v in verdicts.values()} == set(VERDICTS)
    assert "no event dates" in verdicts["onset"].reason
    assert "cumulative dose" in verdicts["dose"].reason


def test_faers_like_tables_test_onset_treatment_and_dose(world: Any, catalog: Any) -> None:
    verdicts = verdicts_for(world, catalog, faers_like=True)
    assert {k: v.verdict for k, v in verdicts.items()} == world.EXPECTED_FAERS


def test_disproportionality_verdicts_state_the_deciding_numbers(world: Any, catalog: Any) -> None:
    verdicts = verdicts_for(world, catalog, faers_like=False)
    strong = verdicts["strong"]
    assert strong.n == 20 and strong.evidence["scores"]["ror_lower"] > 1
    assert "ROR 11.62" in strong.reason and strong.rule == VERDICT_RULES["disproportionality"]
    assert verdicts["null_effect"].evidence["scores"]["ror_lower"] <= 1 <= verdicts["null_effect"].evidence["scores"]["ror_upper"]
    assert verdicts["rare"].n == 1 and "at least 3" in verdicts["rare"].reason
    assert set(strong.evidence["scores"]["rules_fired"]) == {"Evans", "EMA", "WHO-UMC", "FDA"}


def test_time_to_onset_share_distribution_and_weibull(world: Any, catalog: Any) -> None:
    onset = verdicts_for(world, catalog, faers_like=True)["onset"].evidence
    assert (onset["events_with_onset"], onset["within_threshold"]) == (20, 17)
    assert onset["share_lower"] == pytest.approx(wilson_interval(17, 20)[0])
    assert sum(band["count"] for band in onset["distribution"]) == 20
    assert [band["count"] for band in onset["distribution"]][:2] == [6, 11]  # 0-30 d, 31-90 d
    weibull = onset["weibull"]
    assert weibull["shape_lower"] < weibull["shape"] < weibull["shape_upper"]
    assert onset["median_days"] == pytest.approx(52.5)


def test_on_treatment_breaks_events_down(world: Any, catalog: Any) -> None:
    during = verdicts_for(world, catalog, faers_like=True)["during"].evidence
    # Back pain reports stop after 180 days; the onset at 200 days is after the end date.
    assert (during["events_with_dates"], during["on_treatment"], during["after_end"]) == (20, 19, 1)
    assert during["before_start"] == 0 and during["during_known_end"] == 19


def test_dose_response_compares_reports_with_and_without_the_pts(world: Any, catalog: Any) -> None:
    dose = verdicts_for(world, catalog, faers_like=True)["dose"].evidence
    # The concomitant IBUPROFEN rows (99,999 mg) are not the watched drug and never count.
    assert (dose["reports_with_pt"], dose["reports_without_pt"]) == (20, 80)
    assert dose["p_value"] < 0.001 and dose["dose_quantiles_with_mg"][-1] == 11000.0


def test_proportion_is_shown_beside_the_study_with_its_caveat(world: Any, catalog: Any) -> None:
    proportion = verdicts_for(world, catalog, faers_like=False)["achilles"].evidence["proportion"]
    # Musculoskeletal drug reports: 20 Back pain (3 of them with Tendonitis) and 1 Sacroiliitis.
    assert (proportion["reports_with_pt"], proportion["musculoskeletal_reports"]) == (3, 21)
    assert proportion["study_prevalence"] == 0.043 and "not the same quantity" in proportion["caveat"]


def test_onset_days_prefers_dates_over_a_broken_staged_value(world: Any) -> None:
    reports = world.canonical_tables(cumulative_drug_reports(world)[:3], faers_like=True)
    drugs = reports["drugs"].copy()
    drugs["tto_days"] = -106751991167300.64  # NaT arithmetic gone wrong upstream
    days = onset_days(reports["reports"], drugs, ["D001", "D002", "D003"])
    assert days.to_dict() == {"D001": 5.0, "D002": 12.0, "D003": 20.0}


def _tto_tables(world: Any, days: list[int]) -> dict[str, pd.DataFrame]:
    chosen = []
    for i, report in enumerate(cumulative_drug_reports(world)[: len(days)]):
        chosen.append(type(report)(**{**report.__dict__, "tto": days[i]}))
    return world.canonical_tables(chosen, faers_like=True)


def test_late_onsets_are_not_supported_and_few_are_insufficient(world: Any, catalog: Any) -> None:
    claim = catalog.by_id("onset")
    late = _tto_tables(world, [100 + 10 * i for i in range(12)] + [10, 20])
    result = assess_claims(catalog, pd.DataFrame(), late["reports"], late["drugs"], late["reactions"],
                           musculoskeletal_pts=[])  # fmt: skip
    assert {v.claim_id: v.verdict for v in result}[claim.id] == NOT_SUPPORTED
    few = _tto_tables(world, [10, 20, 30])
    result = assess_claims(catalog, pd.DataFrame(), few["reports"], few["drugs"], few["reactions"], musculoskeletal_pts=[])
    verdict = {v.claim_id: v for v in result}["onset"]
    assert verdict.verdict == INSUFFICIENT and "5 needed" in verdict.reason


def test_no_group_row_is_insufficient_data(world: Any, catalog: Any) -> None:
    tables = world.canonical_tables(cumulative_drug_reports(world), faers_like=False)
    result = assess_claims(catalog, pd.DataFrame(), tables["reports"], tables["drugs"], tables["reactions"], musculoskeletal_pts=[])
    verdicts = {v.claim_id: v.verdict for v in result}
    assert verdicts["strong"] == INSUFFICIENT and verdicts["onset"] == NOT_TESTABLE


@pytest.mark.parametrize(
    ("shape", "reading"),
    [(0.6, "decreasing hazard"), (1.0, "interval includes 1"), (2.5, "increasing hazard")],
)
def test_weibull_shape_interval_and_reading(shape: float, reading: str) -> None:
    rng = np.random.default_rng(7)
    days = 60 * rng.weibull(shape, size=400)
    fit = weibull_fit(days)
    assert fit is not None and fit["shape_lower"] < shape < fit["shape_upper"]
    assert fit["hazard"].startswith(reading)


def test_weibull_needs_spread_and_enough_events() -> None:
    assert weibull_fit([10, 20]) is None
    assert weibull_fit([30] * 10) is None
    assert weibull_fit([0, 0, 3, 8, 20, 40])["events"] == 6  # same-day onsets enter as half a day


def test_wilson_interval_behaves_at_the_edges() -> None:
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    low, high = wilson_interval(17, 20)
    assert 0.63 < low < 0.65 and 0.94 < high < 0.96
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _daily(world: Any, catalog: Any) -> dict[str, Any]:
    """What openFDA's count=receivedate returns, counted from the world directly."""
    def days(reports: list[Any]) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in reports:
            out[f"{r.day:%Y%m%d}"] = out.get(f"{r.day:%Y%m%d}", 0) + 1
        return out

    everything = world.world()
    groups = {c.id: days([r for r in everything if set(c.pt_list) & set(r.pts)]) for c in catalog.claims}
    return {"total": days(everything), "groups": groups}


def test_trend_ends_on_the_cumulative_group_scores(world: Any, catalog: Any) -> None:
    tables = world.canonical_tables(world.drug_reports(), faers_like=False)  # D101 comes after: filtered out
    last_day = world.WINDOW_END.date() - timedelta(days=1)
    counts = claim_trend_counts(catalog, tables["reports"], tables["reactions"], _daily(world, catalog), last_day, world.DRUG)
    _, groups, prior = scored(world, catalog)
    trend = claim_trend(counts, prior)
    assert trend["quarter"].min() == "2019Q1" and trend["quarter"].max() == "2025Q1"
    last = trend.sort_values("quarter").groupby("claim_id").tail(1).set_index("claim_id")
    for _, group in groups.iterrows():
        row = last.loc[group["claim_id"]]
        # Everything received before the window's end: 100 drug and 1,900 background reports.
        expected = (group["n"], 100, group["event_total"], 2000)
        assert (row["n"], row["drug_total"], row["event_total"], row["total"]) == expected
        for measure in ("ror_lower", "ic025", "eb05"):
            assert row[measure] == pytest.approx(group[measure])
    strong = trend.loc[trend["claim_id"] == "strong"]
    assert strong["first_signal_quarter_fda"].iloc[-1] is not None


def test_subgroups_split_both_sides_of_the_table(world: Any, catalog: Any) -> None:
    tables = world.canonical_tables(cumulative_drug_reports(world), faers_like=False)
    everything = [r for r in world.world() if r.day < world.WINDOW_END.date()]

    def by(reports: list[Any]) -> dict[str, dict[str, int]]:
        sex = bucket_terms("sex", {str(s): sum(r.sex == s for r in reports) for s in (0, 1, 2)})
        ages: dict[str, int] = {}
        for r in reports:
            ages[str(r.age)] = ages.get(str(r.age), 0) + 1
        return {"sex": sex, "age": bucket_terms("age", ages)}

    background = {"total": by(everything),
                  "groups": {c.id: by([r for r in everything if set(c.pt_list) & set(r.pts)]) for c in catalog.claims}}  # fmt: skip
    counts = subgroup_counts(catalog, tables["reports"], tables["reactions"], background, world.DRUG)
    strong = counts.loc[counts["claim_id"] == "strong"].set_index(["subgroup_kind", "subgroup"])
    assert strong.loc[("sex", "male"), "n"] + strong.loc[("sex", "female"), "n"] == 20
    assert strong.xs("age")["drug_total"].sum() == 100
    _, _, prior = scored(world, catalog)
    scores = subgroup_scores(counts, prior)
    assert scores.loc[scores["n"] < 3, "enough"].eq(False).all()
    assert {"ror", "ic025", "eb05", "signal_ema"} <= set(scores.columns)


def test_uncovered_signals_exclude_claim_pts_and_rank_by_eb05(world: Any, catalog: Any) -> None:
    pts, _, _ = scored(world, catalog)
    uncovered = uncovered_signals(pts, catalog)
    assert list(uncovered["pt"]) == [world.SCRIPT_PT]
    assert uncovered["eb05"].is_monotonic_decreasing


def test_claims_table_row_is_flat_and_kind_specific(world: Any, catalog: Any) -> None:
    verdicts = verdicts_for(world, catalog, faers_like=True)
    onset, strong = verdicts["onset"].as_row(), verdicts["strong"].as_row()
    assert onset["tto_events"] == 20 and onset["dose_p_value"] is None and onset["n"] == 20
    assert strong["tto_events"] is None and strong["rules_fired"] == "Evans; EMA; WHO-UMC; FDA"
    assert verdicts["dose"].as_row()["dose_reports_with"] == 20
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in strong.values())
    assert SUPPORTED in {v.verdict for v in verdicts.values()}


def test_an_unbounded_interval_reads_as_infinity_in_the_reason(world: Any, catalog: Any) -> None:
    tables = world.canonical_tables(cumulative_drug_reports(world), faers_like=False)
    _, groups, _ = scored(world, catalog)
    groups = groups.copy()
    groups.loc[groups["claim_id"] == "strong", "ror_upper"] = float("inf")
    result = assess_claims(catalog, groups, tables["reports"], tables["drugs"], tables["reactions"], musculoskeletal_pts=[])
    reason = {v.claim_id: v.reason for v in result}["strong"]
    assert "6.50-∞" in reason and "inf" not in reason
