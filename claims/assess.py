"""Claim-by-claim verdicts from the signal results and the drug's staged reports.

Verdicts and their rules (stated verbatim in every report, see VERDICT_RULES):
- supported / not supported / insufficient data / not testable with this source.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from claims.catalog import Claim, ClaimCatalog

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INSUFFICIENT = "insufficient data"
NOT_TESTABLE = "not testable with this source"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INSUFFICIENT, NOT_TESTABLE)

MIN_CASES = 3
MIN_TTO_EVENTS = 5
MIN_DOSE_REPORTS = 5

VERDICT_RULES: dict[str, str] = {
    "disproportionality": (
        f"Group 2x2 over reports with any of the claim's PTs. Fewer than {MIN_CASES} drug reports: "
        "insufficient data. Otherwise supported when the EMA rule fires (lower 95% bound of ROR > 1), "
        "not supported when it does not."
    ),
    "time_to_onset": (
        "Share of events with time to onset <= threshold, 95% Wilson CI. Supported when the CI's lower "
        "bound exceeds 50% ('typically'), not supported when its upper bound is below 50%, otherwise "
        f"insufficient data; fewer than {MIN_TTO_EVENTS} events with a known onset: insufficient data. "
        "Sources without event dates (openFDA API) cannot test it."
    ),
    "on_treatment": (
        "Share of events with onset on or before the drug's end date (or no end date), 95% Wilson CI; "
        "same thresholds as time to onset. Sources without event dates cannot test it."
    ),
    "dose_response": (
        "Cumulative dose (mg) in drug reports with the claim's PTs versus without, one-sided "
        "Mann-Whitney U test. Supported when p < 0.05, not supported otherwise; fewer than "
        f"{MIN_DOSE_REPORTS} reports with a dose in either group: insufficient data."
    ),
    "proportion": "Reporting proportion with 95% Wilson CI, shown beside the study's prevalence.",
}


@dataclass
class ClaimVerdict:
    claim_id: str
    kind: str
    verdict: str
    reason: str
    statement: str
    citation: str
    pts: list[str]
    n: int | None = None
    n_new: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["pts"] = "; ".join(self.pts)
        return row


def wilson_interval(successes: int, trials: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval: well-behaved at 0 and n, unlike the Wald interval."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def weibull_shape(tto_days: np.ndarray) -> float | None:
    """Weibull shape parameter of time to onset (< 1: hazard falls with time, i.e. early onset)."""
    values = np.asarray(tto_days, dtype=float)
    values = values[values > 0]
    if len(values) < MIN_TTO_EVENTS:
        return None
    shape, _, _ = stats.weibull_min.fit(values, floc=0)
    return float(shape)


def _disproportionality(claim: Claim, group_scores: pd.DataFrame) -> ClaimVerdict:
    row = group_scores.loc[group_scores["claim_id"] == claim.id]
    base = dict(claim_id=claim.id, kind=claim.kind, statement=claim.statement, citation=claim.citation, pts=claim.pt_list)
    if row.empty:
        return ClaimVerdict(**base, verdict=INSUFFICIENT, reason="no reports of the claim's PTs for this drug", n=0)
    rec = row.iloc[0].to_dict()
    n = int(rec["n"])
    evidence = {k: rec[k] for k in rec if k not in {"claim_id", "drug", "event"}}
    if n < MIN_CASES:
        verdict, reason = INSUFFICIENT, f"{n} drug report(s) with the claim's PTs; at least {MIN_CASES} needed"
    elif rec["ror_lower"] > 1:
        verdict = SUPPORTED
        reason = f"ROR {rec['ror']:.2f} (95% CI {rec['ror_lower']:.2f}-{rec['ror_upper']:.2f}) over {n} reports"
    else:
        verdict = NOT_SUPPORTED
        reason = f"ROR {rec['ror']:.2f} (95% CI {rec['ror_lower']:.2f}-{rec['ror_upper']:.2f}) includes or is below 1"
    return ClaimVerdict(**base, verdict=verdict, reason=reason, n=n, n_new=int(rec.get("n_new", 0)), evidence=evidence)


def _share_verdict(share_ci: tuple[float, float]) -> str:
    if share_ci[0] > 0.5:
        return SUPPORTED
    if share_ci[1] < 0.5:
        return NOT_SUPPORTED
    return INSUFFICIENT


def _claim_reactions(claim: Claim, reactions: pd.DataFrame) -> pd.DataFrame:
    return reactions.loc[reactions["pt"].isin(claim.pt_list)]


def _time_to_onset(claim: Claim, reactions: pd.DataFrame, drugs: pd.DataFrame, has_event_dates: bool) -> ClaimVerdict:
    base = dict(claim_id=claim.id, kind=claim.kind, statement=claim.statement, citation=claim.citation, pts=claim.pt_list)
    if not has_event_dates:
        return ClaimVerdict(**base, verdict=NOT_TESTABLE, reason="the source has no event dates, so no time to onset")
    reports = set(_claim_reactions(claim, reactions)["safetyreportid"])
    target = drugs.loc[drugs["is_target_drug"].fillna(False) & drugs["safetyreportid"].isin(reports)]
    tto = target.dropna(subset=["tto_days"]).groupby("safetyreportid")["tto_days"].min()
    tto = tto[tto >= 0]
    threshold = claim.threshold_days or 90
    n = int(len(tto))
    if n < MIN_TTO_EVENTS:
        return ClaimVerdict(**base, verdict=INSUFFICIENT, reason=f"{n} event(s) with a known onset; {MIN_TTO_EVENTS} needed", n=n)
    within = int((tto <= threshold).sum())
    ci = wilson_interval(within, n)
    evidence = {
        "events_with_onset": n,
        "within_threshold": within,
        "share_within": within / n,
        "share_lower": ci[0],
        "share_upper": ci[1],
        "median_tto_days": float(tto.median()),
        "weibull_shape": weibull_shape(tto.to_numpy()),
        "threshold_days": threshold,
    }
    verdict = _share_verdict(ci)
    reason = f"{within}/{n} ({within / n:.0%}, 95% CI {ci[0]:.0%}-{ci[1]:.0%}) began within {threshold} days"
    return ClaimVerdict(**base, verdict=verdict, reason=reason, n=n, evidence=evidence)


def _on_treatment(claim: Claim, reactions: pd.DataFrame, drugs: pd.DataFrame, reports: pd.DataFrame, has_event_dates: bool) -> ClaimVerdict:
    base = dict(claim_id=claim.id, kind=claim.kind, statement=claim.statement, citation=claim.citation, pts=claim.pt_list)
    if not has_event_dates:
        return ClaimVerdict(**base, verdict=NOT_TESTABLE, reason="the source has no event dates, so onset cannot be placed in treatment")
    ids = set(_claim_reactions(claim, reactions)["safetyreportid"])
    target = drugs.loc[drugs["is_target_drug"].fillna(False) & drugs["safetyreportid"].isin(ids)]
    merged = target.merge(reports[["safetyreportid", "event_date"]], on="safetyreportid").dropna(subset=["event_date", "start_date"])
    merged = merged.drop_duplicates("safetyreportid")
    n = int(len(merged))
    if n < MIN_TTO_EVENTS:
        return ClaimVerdict(**base, verdict=INSUFFICIENT, reason=f"{n} event(s) with onset and start dates; {MIN_TTO_EVENTS} needed", n=n)
    on_drug = (merged["event_date"] >= merged["start_date"]) & (merged["end_date"].isna() | (merged["event_date"] <= merged["end_date"]))
    k = int(on_drug.sum())
    ci = wilson_interval(k, n)
    evidence = {"events_with_dates": n, "on_treatment": k, "share": k / n, "share_lower": ci[0], "share_upper": ci[1]}
    reason = f"{k}/{n} ({k / n:.0%}, 95% CI {ci[0]:.0%}-{ci[1]:.0%}) began while on drug"
    return ClaimVerdict(**base, verdict=_share_verdict(ci), reason=reason, n=n, evidence=evidence)


def _dose_response(claim: Claim, reactions: pd.DataFrame, drugs: pd.DataFrame) -> ClaimVerdict:
    base = dict(claim_id=claim.id, kind=claim.kind, statement=claim.statement, citation=claim.citation, pts=claim.pt_list)
    target = drugs.loc[drugs["is_target_drug"].fillna(False)].dropna(subset=["cum_dose_mg"])
    dose = target.groupby("safetyreportid")["cum_dose_mg"].max()
    if dose.empty:
        return ClaimVerdict(**base, verdict=NOT_TESTABLE, reason="no report carries a cumulative dose", n=0)
    with_pt = set(_claim_reactions(claim, reactions)["safetyreportid"])
    in_group = dose.index.isin(list(with_pt))
    cases, controls = dose[in_group].to_numpy(float), dose[~in_group].to_numpy(float)
    evidence: dict[str, Any] = {
        "reports_with_pt": len(cases),
        "reports_without_pt": len(controls),
        "median_dose_mg_with": float(np.median(cases)) if len(cases) else None,
        "median_dose_mg_without": float(np.median(controls)) if len(controls) else None,
    }
    if len(cases) < MIN_DOSE_REPORTS or len(controls) < MIN_DOSE_REPORTS:
        reason = f"{len(cases)} reports with and {len(controls)} without the PTs carry a dose; {MIN_DOSE_REPORTS} each needed"
        return ClaimVerdict(**base, verdict=INSUFFICIENT, reason=reason, n=len(cases), evidence=evidence)
    test = stats.mannwhitneyu(cases, controls, alternative="greater")
    evidence.update({"mann_whitney_u": float(test.statistic), "p_value": float(test.pvalue)})
    verdict = SUPPORTED if test.pvalue < 0.05 else NOT_SUPPORTED
    reason = (
        f"median cumulative dose {evidence['median_dose_mg_with']:.0f} mg with vs {evidence['median_dose_mg_without']:.0f} mg "
        f"without (Mann-Whitney one-sided p = {test.pvalue:.3g})"
    )
    return ClaimVerdict(**base, verdict=verdict, reason=reason, n=len(cases), evidence=evidence)


def reporting_proportion(claim: Claim, reactions: pd.DataFrame, musculoskeletal_pts: list[str]) -> dict[str, Any]:
    """Share of the drug's musculoskeletal reports that carry the claim's PTs (not a prevalence)."""
    msk_reports = set(reactions.loc[reactions["pt"].isin(musculoskeletal_pts), "safetyreportid"])
    claim_reports = set(_claim_reactions(claim, reactions)["safetyreportid"]) & msk_reports
    k, n = len(claim_reports), len(msk_reports)
    lower, upper = wilson_interval(k, n)
    return {
        "reports_with_pt": k,
        "musculoskeletal_reports": n,
        "reporting_proportion": k / n if n else None,
        "proportion_lower": lower if n else None,
        "proportion_upper": upper if n else None,
        "study_prevalence": claim.study_prevalence,
        "caveat": "a share of spontaneous reports is not a prevalence among treated patients",
    }


def assess_claims(
    catalog: ClaimCatalog,
    group_scores: pd.DataFrame,
    reports: pd.DataFrame,
    drugs: pd.DataFrame,
    reactions: pd.DataFrame,
    *,
    has_event_dates: bool,
    musculoskeletal_pts: list[str],
) -> list[ClaimVerdict]:
    """One verdict per claim, in the claims file's order."""
    verdicts = []
    for claim in catalog.claims:
        if claim.kind == "disproportionality":
            verdict = _disproportionality(claim, group_scores)
            if claim.study_prevalence is not None:
                verdict.evidence["proportion"] = reporting_proportion(claim, reactions, musculoskeletal_pts)
        elif claim.kind == "time_to_onset":
            verdict = _time_to_onset(claim, reactions, drugs, has_event_dates)
        elif claim.kind == "on_treatment":
            verdict = _on_treatment(claim, reactions, drugs, reports, has_event_dates)
        elif claim.kind == "dose_response":
            verdict = _dose_response(claim, reactions, drugs)
        else:  # proportion-only claims
            base = dict(claim_id=claim.id, kind=claim.kind, statement=claim.statement, citation=claim.citation, pts=claim.pt_list)
            evidence = reporting_proportion(claim, reactions, musculoskeletal_pts)
            verdict = ClaimVerdict(**base, verdict=INSUFFICIENT, reason="a reporting proportion cannot confirm a prevalence", evidence=evidence)
        verdicts.append(verdict)
    return verdicts
