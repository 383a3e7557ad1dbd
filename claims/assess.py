"""Claim-by-claim verdicts, and the evidence a 2x2 table cannot give, from the canonical tables.

Everything here reads only the canonical staged tables (normalization/model.py) and score tables, so a
source with event dates (FAERS ASCII) gets time-to-onset evidence and a source without them (openFDA API,
the sample) gets "not testable with this source" from the same code.

Verdicts are exactly the four strings of VERDICTS; the rule behind each kind is VERDICT_RULES, printed in
every report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from claims.catalog import Claim, ClaimCatalog
from signals.rules import DEFAULT_RULES

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
INSUFFICIENT = "insufficient data"
NOT_TESTABLE = "not testable with this source"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INSUFFICIENT, NOT_TESTABLE)

MIN_CASES = 3
MIN_TTO_EVENTS = 5
MIN_DOSE_REPORTS = 5
MIN_SUBGROUP_CASES = 3
TYPICAL_SHARE = 0.5  # "typically": more than half of the events
MAX_PLAUSIBLE_DAYS = 36525.0  # a time to onset beyond 100 years is a broken date, not an onset
ZERO_DAY_ONSET = 0.5  # onset on the start day enters the Weibull fit as half a day (the fit needs t > 0)
WEIBULL_SHAPE_VARIANCE = 6 / math.pi**2  # asymptotic Var(shape_hat) = (6/pi^2) shape^2 / n, complete data
Z95 = 1.959963984540054
TTO_BINS: tuple[tuple[str, float, float], ...] = (
    ("0-30 d", 0, 30),
    ("31-90 d", 30, 90),
    ("91-180 d", 90, 180),
    ("181-365 d", 180, 365),
    ("> 1 year", 365, math.inf),
)
SIGNAL_COLUMNS: tuple[str, ...] = tuple(rule.column for rule in DEFAULT_RULES)
SCORE_KEYS: tuple[str, ...] = ("e", "drug_total", "event_total", "total", "prr", "prr_lower", "prr_upper", "chi2", "ror",
                               "ror_lower", "ror_upper", "ic", "ic025", "ic975", "ebgm", "eb05", "eb95")  # fmt: skip
SHORT_RULE_NAMES: dict[str, str] = {"evans": "Evans", "ema": "EMA", "who_umc": "WHO-UMC", "fda": "FDA"}
RULE_LABELS: dict[str, str] = {rule.column: SHORT_RULE_NAMES.get(rule.name, rule.label) for rule in DEFAULT_RULES}
SEX_LABELS: dict[int, str] = {1: "male", 2: "female"}
AGE_BINS: tuple[tuple[str, float, float], ...] = (
    ("0-11", 0, 12),
    ("12-17", 12, 18),
    ("18-29", 18, 30),
    ("30-44", 30, 45),
    ("45-64", 45, 65),
    ("65+", 65, math.inf),
)

VERDICT_RULES: dict[str, str] = {
    "disproportionality": (
        "2x2 table of the claim's PT group (a drug report counts once whatever number of the PTs it carries), "
        f"over every report received before the window's end. Fewer than {MIN_CASES} drug reports: insufficient "
        "data. Otherwise supported when the EMA rule fires (lower 95% bound of the ROR above 1), not supported "
        "when it does not. The other rules (Evans, WHO-UMC, FDA) are shown beside it, not voted."
    ),
    "time_to_onset": (
        "Time to onset = event date minus the drug's start date, per report (earliest start of the drug). Share of "
        "events with onset within the claim's threshold, 95% Wilson interval: supported when the lower bound is above "
        f"{TYPICAL_SHARE:.0%} ('typically'), not supported when the upper bound is below {TYPICAL_SHARE:.0%}, "
        f"otherwise insufficient data; fewer than {MIN_TTO_EVENTS} events with a known onset: insufficient data. "
        "The Weibull shape is shown with its 95% interval (shape < 1: hazard falling with time, i.e. early onset) "
        "but does not decide the verdict. A source without event dates (openFDA) cannot test the claim."
    ),
    "on_treatment": (
        "Share of events whose date falls on or after the drug's start date and on or before its end date (no end "
        "date recorded: counted as still on drug), 95% Wilson interval; supported when the lower bound is above "
        f"{TYPICAL_SHARE:.0%}, not supported when the upper bound is below it, otherwise insufficient data; fewer "
        f"than {MIN_TTO_EVENTS} events with both dates: insufficient data. A source without event dates cannot test it."
    ),
    "dose_response": (
        "Cumulative dose (mg) of the drug in its reports with any of the claim's PTs versus its reports without them, "
        "one-sided Mann-Whitney U test (higher with the PTs). Supported when p < 0.05, not supported otherwise; "
        f"fewer than {MIN_DOSE_REPORTS} reports with a dose in either group: insufficient data; no report with a "
        "cumulative dose: not testable with this source."
    ),
    "proportion": (
        "Reporting proportion (share of the drug's musculoskeletal reports carrying the PTs, 95% Wilson interval) "
        "shown beside the study's prevalence. The two are different quantities, so the verdict is insufficient data."
    ),
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
    rule: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        """The claims table row: the verdict, the group's scores and each kind's key numbers, flat."""
        ev = self.evidence
        scores = ev.get("scores") or {}
        trend = ev.get("trend") or {}
        firsts = trend.get("first_signal_quarter_by_rule") or {}
        weibull = ev.get("weibull") or {}
        proportion = ev.get("proportion") or {}
        tto = self.kind == "time_to_onset"
        on_drug = self.kind == "on_treatment"
        dose = self.kind == "dose_response"
        row: dict[str, Any] = {
            "claim_id": self.claim_id,
            "kind": self.kind,
            "statement": self.statement,
            "citation": self.citation,
            "pts": "; ".join(self.pts),
            "verdict": self.verdict,
            "reason": self.reason,
            "verdict_rule": self.rule,
            "n": scores.get("n", self.n if self.kind == "disproportionality" else None),
            "n_new": scores.get("n_new", self.n_new if self.kind == "disproportionality" else None),
            **{key: scores.get(key) for key in SCORE_KEYS},
            **{column: scores.get(column) for column in SIGNAL_COLUMNS},
            "rules_fired": "; ".join(scores.get("rules_fired") or []),
            "first_signal_quarter": trend.get("first_signal_quarter"),
            **{f"first_signal_quarter_{rule.name}": firsts.get(rule.name) for rule in DEFAULT_RULES},
            "tto_events": ev.get("events_with_onset") if tto else None,
            "tto_share_within": ev.get("share_within") if tto else None,
            "tto_share_lower": ev.get("share_lower") if tto else None,
            "tto_share_upper": ev.get("share_upper") if tto else None,
            "tto_median_days": ev.get("median_days") if tto else None,
            "weibull_shape": weibull.get("shape"),
            "weibull_shape_lower": weibull.get("shape_lower"),
            "weibull_shape_upper": weibull.get("shape_upper"),
            "on_treatment_share": ev.get("share") if on_drug else None,
            "on_treatment_lower": ev.get("share_lower") if on_drug else None,
            "on_treatment_upper": ev.get("share_upper") if on_drug else None,
            "dose_reports_with": ev.get("reports_with_pt") if dose else None,
            "dose_reports_without": ev.get("reports_without_pt") if dose else None,
            "dose_median_with_mg": ev.get("median_dose_mg_with") if dose else None,
            "dose_median_without_mg": ev.get("median_dose_mg_without") if dose else None,
            "dose_p_value": ev.get("p_value") if dose else None,
            "reporting_proportion": proportion.get("reporting_proportion"),
            "proportion_lower": proportion.get("proportion_lower"),
            "proportion_upper": proportion.get("proportion_upper"),
            "study_prevalence": proportion.get("study_prevalence"),
        }
        return row


# ------------------------------------------------------------------------------------ statistics


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval: well-behaved at 0 and n, unlike the Wald interval."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def weibull_fit(tto_days: Iterable[float]) -> dict[str, Any] | None:
    """Weibull shape and scale of time to onset by maximum likelihood, with the shape's 95% interval.

    The interval is exp(log shape +/- 1.96 sqrt(6/pi^2 / n)), the asymptotic (Fisher information)
    interval for complete data. Shape < 1 with the upper bound below 1: the hazard falls with time (onset
    concentrated early after start); lower bound above 1: it rises; otherwise no time pattern is shown.
    """
    values = np.asarray(list(tto_days), dtype=float)
    values = values[np.isfinite(values) & (values >= 0)]
    if len(values) < MIN_TTO_EVENTS:
        return None
    values = np.where(values == 0, ZERO_DAY_ONSET, values)
    if np.allclose(values, values[0]):
        return None  # every onset on the same day: no spread to fit
    shape, _, scale = stats.weibull_min.fit(values, floc=0)
    half = Z95 * math.sqrt(WEIBULL_SHAPE_VARIANCE / len(values))
    lower, upper = shape * math.exp(-half), shape * math.exp(half)
    return {
        "shape": float(shape),
        "shape_lower": float(lower),
        "shape_upper": float(upper),
        "scale_days": float(scale),
        "events": int(len(values)),
        "hazard": weibull_hazard(lower, upper),
    }


def weibull_hazard(lower: float, upper: float) -> str:
    """The standard reading of the shape interval (Cornelius et al., Drug Saf 2012)."""
    if upper < 1:
        return "decreasing hazard: onset concentrated early after the start of treatment"
    if lower > 1:
        return "increasing hazard: risk grows with time on treatment"
    return "interval includes 1: consistent with a constant hazard, no time pattern shown"


def tto_distribution(tto_days: pd.Series) -> list[dict[str, Any]]:
    """Counts of onsets per time band (the histogram the report draws)."""
    values = tto_days.to_numpy(dtype=float)
    bands = []
    for label, low, high in TTO_BINS:
        inside = (values > low) & (values <= high) if low > 0 else (values >= low) & (values <= high)
        bands.append({"band": label, "count": int(inside.sum())})
    return bands


# ------------------------------------------------------------------------------- table helpers


def _target_rows(drugs: pd.DataFrame) -> pd.DataFrame:
    return drugs.loc[drugs["is_target_drug"].fillna(False).astype(bool)]


def _claim_report_ids(claim: Claim, reactions: pd.DataFrame) -> set[str]:
    return set(reactions.loc[reactions["pt"].isin(claim.pt_list), "safetyreportid"].astype(str))


def source_has_event_dates(reports: pd.DataFrame) -> bool:
    """Whether the source carries event dates at all (FAERS ASCII does, openFDA does not)."""
    return bool(reports["event_date"].notna().any()) if "event_date" in reports else False


def onset_days(reports: pd.DataFrame, drugs: pd.DataFrame, report_ids: Iterable[str]) -> pd.Series:
    """Time to onset in days per report: event date minus the drug's earliest start date.

    Uses the staged tto_days when it is a plausible number and both dates are present, otherwise the
    difference of the dates, so any source's canonical tables give the same answer.
    """
    wanted = set(map(str, report_ids))
    target = _target_rows(drugs)
    target = target.loc[target["safetyreportid"].astype(str).isin(wanted)]
    events = reports[["safetyreportid", "event_date"]].astype({"safetyreportid": str})
    merged = target.astype({"safetyreportid": str}).merge(events, on="safetyreportid", how="inner")
    merged = merged.loc[merged["event_date"].notna() & merged["start_date"].notna()]
    if merged.empty:
        return pd.Series(dtype=float, name="tto_days")
    staged = pd.to_numeric(merged["tto_days"], errors="coerce").astype(float)
    computed = (merged["event_date"] - merged["start_date"]).dt.total_seconds().astype(float) / 86400.0
    plausible = staged.notna() & np.isfinite(staged) & (staged.abs() <= MAX_PLAUSIBLE_DAYS)
    days = staged.where(plausible, computed)
    per_report = pd.Series(days.to_numpy(), index=merged["safetyreportid"].to_numpy())
    # The earliest start gives the longest exposure: max(event - start) over the drug's rows.
    return per_report.groupby(level=0).max().rename("tto_days")


# ----------------------------------------------------------------------------------- by kind


def plain(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unwrapped, missing values None (infinities kept)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, pd.Timestamp):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _base(claim: Claim) -> dict[str, Any]:
    return {
        "claim_id": claim.id,
        "kind": claim.kind,
        "statement": claim.statement,
        "citation": claim.citation,
        "pts": claim.pt_list,
        "rule": VERDICT_RULES.get(claim.kind, ""),
    }


def _group_row(claim: Claim, group_scores: pd.DataFrame) -> dict[str, Any] | None:
    if group_scores is None or group_scores.empty or "claim_id" not in group_scores:
        return None
    row = group_scores.loc[group_scores["claim_id"] == claim.id]
    return None if row.empty else row.iloc[0].to_dict()


def rules_fired(row: Mapping[str, Any]) -> list[str]:
    """Labels of the signal rules that fire on a score row."""
    return [RULE_LABELS[c] for c in SIGNAL_COLUMNS if c in row and bool(row[c])]


def _disproportionality_evidence(group: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("n", "n_new", *SCORE_KEYS, *SIGNAL_COLUMNS)
    evidence = {k: plain(group[k]) for k in keep if k in group}
    evidence["rules_fired"] = rules_fired(group)
    return evidence


def _ratio(value: Any) -> str:
    """A ratio as the reason text shows it: an unbounded interval end is ∞, never 'inf'."""
    number = float(value)
    if math.isnan(number):
        return "not estimable"
    return "∞" if math.isinf(number) else f"{number:.2f}"


def _disproportionality(claim: Claim, group: Mapping[str, Any] | None) -> ClaimVerdict:
    if group is None:
        return ClaimVerdict(**_base(claim), verdict=INSUFFICIENT, reason="no reports of the claim's PTs for this drug", n=0, n_new=0)
    n, n_new = int(group["n"]), int(group.get("n_new", 0) or 0)
    evidence = {"scores": _disproportionality_evidence(group)}
    ror = f"ROR {_ratio(group['ror'])} (95% CI {_ratio(group['ror_lower'])}-{_ratio(group['ror_upper'])})"
    if n < MIN_CASES:
        verdict, reason = INSUFFICIENT, f"{n} drug report(s) with the claim's PTs; at least {MIN_CASES} needed"
    elif group["ror_lower"] > 1:
        verdict, reason = SUPPORTED, f"{ror} over {n} reports: the lower bound is above 1"
    else:
        verdict, reason = NOT_SUPPORTED, f"{ror} over {n} reports: the interval includes or is below 1"
    return ClaimVerdict(**_base(claim), verdict=verdict, reason=reason, n=n, n_new=n_new, evidence=evidence)


def _share_verdict(lower: float, upper: float) -> str:
    if lower > TYPICAL_SHARE:
        return SUPPORTED
    if upper < TYPICAL_SHARE:
        return NOT_SUPPORTED
    return INSUFFICIENT


def _time_to_onset(claim: Claim, reports: pd.DataFrame, drugs: pd.DataFrame, reactions: pd.DataFrame) -> ClaimVerdict:
    if not source_has_event_dates(reports):
        return ClaimVerdict(
            **_base(claim), verdict=NOT_TESTABLE,
            reason="the source has no event dates (openFDA carries none), so time to onset cannot be measured",
        )  # fmt: skip
    tto = onset_days(reports, drugs, _claim_report_ids(claim, reactions))
    before_start = int((tto < 0).sum())
    tto = tto[tto >= 0]
    threshold = int(claim.threshold_days or 90)
    n = int(len(tto))
    evidence: dict[str, Any] = {
        "events_with_onset": n,
        "onset_before_start": before_start,
        "threshold_days": threshold,
        "distribution": tto_distribution(tto),
    }
    if n < MIN_TTO_EVENTS:
        reason = f"{n} event(s) with a known onset on or after the start date; {MIN_TTO_EVENTS} needed"
        return ClaimVerdict(**_base(claim), verdict=INSUFFICIENT, reason=reason, n=n, evidence=evidence)
    within = int((tto <= threshold).sum())
    lower, upper = wilson_interval(within, n)
    evidence.update(
        within_threshold=within,
        share_within=within / n,
        share_lower=lower,
        share_upper=upper,
        median_days=float(tto.median()),
        quartiles_days=[float(tto.quantile(0.25)), float(tto.quantile(0.75))],
        weibull=weibull_fit(tto.to_numpy()),
    )
    reason = f"{within}/{n} ({within / n:.0%}, 95% CI {lower:.0%}-{upper:.0%}) began within {threshold} days"
    return ClaimVerdict(**_base(claim), verdict=_share_verdict(lower, upper), reason=reason, n=n, evidence=evidence)


def _on_treatment(claim: Claim, reports: pd.DataFrame, drugs: pd.DataFrame, reactions: pd.DataFrame) -> ClaimVerdict:
    if not source_has_event_dates(reports):
        return ClaimVerdict(
            **_base(claim), verdict=NOT_TESTABLE,
            reason="the source has no event dates (openFDA carries none), so onset cannot be placed in treatment",
        )  # fmt: skip
    ids = _claim_report_ids(claim, reactions)
    target = _target_rows(drugs).astype({"safetyreportid": str})
    target = target.loc[target["safetyreportid"].isin(ids) & target["start_date"].notna()]
    events = reports[["safetyreportid", "event_date"]].astype({"safetyreportid": str}).dropna(subset=["event_date"])
    merged = target.merge(events, on="safetyreportid")
    per_report = merged.groupby("safetyreportid").agg(
        event_date=("event_date", "first"), start=("start_date", "min"), end=("end_date", "max"),
        end_missing=("end_date", lambda s: bool(s.isna().any())),
    )  # fmt: skip
    n = int(len(per_report))
    if n < MIN_TTO_EVENTS:
        reason = f"{n} event(s) with both an event and a start date; {MIN_TTO_EVENTS} needed"
        return ClaimVerdict(**_base(claim), verdict=INSUFFICIENT, reason=reason, n=n, evidence={"events_with_dates": n})
    started = per_report["event_date"] >= per_report["start"]
    open_ended = per_report["end_missing"] | per_report["end"].isna()
    before_end = per_report["end"].notna() & (per_report["event_date"] <= per_report["end"])
    during_known = started & ~open_ended & before_end
    during_open = started & open_ended
    after_end = started & ~open_ended & ~before_end
    k = int((during_known | during_open).sum())
    lower, upper = wilson_interval(k, n)
    known_n = int((~open_ended).sum())
    evidence = {
        "events_with_dates": n,
        "on_treatment": k,
        "share": k / n,
        "share_lower": lower,
        "share_upper": upper,
        "before_start": int((~started).sum()),
        "during_known_end": int(during_known.sum()),
        "during_no_end_date": int(during_open.sum()),
        "after_end": int(after_end.sum()),
        "strict_share": int(during_known.sum()) / known_n if known_n else None,
    }
    reason = f"{k}/{n} ({k / n:.0%}, 95% CI {lower:.0%}-{upper:.0%}) began while on drug"
    return ClaimVerdict(**_base(claim), verdict=_share_verdict(lower, upper), reason=reason, n=n, evidence=evidence)


def _quantiles(values: np.ndarray) -> list[float] | None:
    if not len(values):
        return None
    return [float(np.quantile(values, q)) for q in (0.0, 0.25, 0.5, 0.75, 1.0)]


def _dose_response(claim: Claim, drugs: pd.DataFrame, reactions: pd.DataFrame) -> ClaimVerdict:
    target = _target_rows(drugs)
    dosed = target.loc[pd.to_numeric(target["cum_dose_mg"], errors="coerce").notna()]
    dose = dosed.astype({"safetyreportid": str}).groupby("safetyreportid")["cum_dose_mg"].max().astype(float)
    dose = dose[np.isfinite(dose) & (dose > 0)]
    if dose.empty:
        return ClaimVerdict(**_base(claim), verdict=NOT_TESTABLE, reason="no report of the drug carries a cumulative dose", n=0)
    with_pt = dose.index.isin(list(_claim_report_ids(claim, reactions)))
    cases, controls = dose[with_pt].to_numpy(float), dose[~with_pt].to_numpy(float)
    evidence: dict[str, Any] = {
        "reports_with_pt": int(len(cases)),
        "reports_without_pt": int(len(controls)),
        "dose_quantiles_with_mg": _quantiles(cases),
        "dose_quantiles_without_mg": _quantiles(controls),
        "median_dose_mg_with": float(np.median(cases)) if len(cases) else None,
        "median_dose_mg_without": float(np.median(controls)) if len(controls) else None,
    }
    if len(cases) < MIN_DOSE_REPORTS or len(controls) < MIN_DOSE_REPORTS:
        reason = (
            f"{len(cases)} report(s) with and {len(controls)} without the PTs carry a cumulative dose; "
            f"{MIN_DOSE_REPORTS} in each needed"
        )
        return ClaimVerdict(**_base(claim), verdict=INSUFFICIENT, reason=reason, n=len(cases), evidence=evidence)
    test = stats.mannwhitneyu(cases, controls, alternative="greater")
    evidence.update(mann_whitney_u=float(test.statistic), p_value=float(test.pvalue))
    verdict = SUPPORTED if test.pvalue < 0.05 else NOT_SUPPORTED
    reason = (
        f"median cumulative dose {evidence['median_dose_mg_with']:,.0f} mg with vs "
        f"{evidence['median_dose_mg_without']:,.0f} mg without (n = {len(cases)} vs {len(controls)}; "
        f"one-sided Mann-Whitney p = {test.pvalue:.3g})"
    )
    return ClaimVerdict(**_base(claim), verdict=verdict, reason=reason, n=len(cases), evidence=evidence)


def reporting_proportion(claim: Claim, reactions: pd.DataFrame, musculoskeletal_pts: list[str]) -> dict[str, Any]:
    """Share of the drug's musculoskeletal reports that carry the claim's PTs (not a prevalence)."""
    msk_reports = set(reactions.loc[reactions["pt"].isin(musculoskeletal_pts) | reactions["pt"].isin(claim.pt_list),
                                    "safetyreportid"].astype(str))  # fmt: skip
    claim_reports = _claim_report_ids(claim, reactions) & msk_reports
    k, n = len(claim_reports), len(msk_reports)
    lower, upper = wilson_interval(k, n)
    return {
        "reports_with_pt": k,
        "musculoskeletal_reports": n,
        "reporting_proportion": k / n if n else None,
        "proportion_lower": lower if n else None,
        "proportion_upper": upper if n else None,
        "study_prevalence": claim.study_prevalence,
        "study_n": claim.study_n,
        "caveat": (
            "not the same quantity: the study's figure is a prevalence among treated patients examined for it; "
            "this is the share of spontaneous musculoskeletal reports naming the PTs, shaped by what gets reported"
        ),
    }


def assess_claims(
    catalog: ClaimCatalog,
    group_scores: pd.DataFrame,
    reports: pd.DataFrame,
    drugs: pd.DataFrame,
    reactions: pd.DataFrame,
    *,
    has_event_dates: bool | None = None,
    musculoskeletal_pts: list[str],
    trend: pd.DataFrame | None = None,
) -> list[ClaimVerdict]:
    """One verdict per claim, in the claims file's order, each with its group's 2x2 scores and trend.

    has_event_dates is read from the reports table when not given (kept as a parameter for callers that
    know better, e.g. a source whose event dates were all quarantined).
    """
    if has_event_dates is not None and not has_event_dates:
        reports = reports.assign(event_date=pd.NaT)
    verdicts = []
    for claim in catalog.claims:
        group = _group_row(claim, group_scores)
        if claim.kind == "disproportionality":
            verdict = _disproportionality(claim, group)
        elif claim.kind == "time_to_onset":
            verdict = _time_to_onset(claim, reports, drugs, reactions)
        elif claim.kind == "on_treatment":
            verdict = _on_treatment(claim, reports, drugs, reactions)
        elif claim.kind == "dose_response":
            verdict = _dose_response(claim, drugs, reactions)
        else:  # proportion: a reporting share cannot confirm a prevalence
            verdict = ClaimVerdict(
                **_base(claim), verdict=INSUFFICIENT, reason="a reporting proportion cannot confirm a prevalence",
                evidence={"proportion": reporting_proportion(claim, reactions, musculoskeletal_pts)},
            )  # fmt: skip
        if claim.study_prevalence is not None and "proportion" not in verdict.evidence:
            verdict.evidence["proportion"] = reporting_proportion(claim, reactions, musculoskeletal_pts)
        if group is not None:
            verdict.evidence.setdefault("scores", _disproportionality_evidence(group))
            verdict.n_new = int(group.get("n_new", 0) or 0) if verdict.n_new is None else verdict.n_new
        if trend is not None and not trend.empty:
            verdict.evidence["trend"] = trend_summary(trend, claim.id)
        verdicts.append(verdict)
    return verdicts


# ------------------------------------------------------------------------ trend (by quarter)


def quarter_of(day: pd.Series) -> pd.Series:
    """'2025Q2' labels: strings sort chronologically, as signals.trend requires."""
    stamps = pd.to_datetime(day)
    return stamps.dt.year.astype(str) + "Q" + stamps.dt.quarter.astype(str)


def _day_series(days: Mapping[str, int], last_day: date) -> pd.DataFrame:
    frame = pd.DataFrame({"day": list(days), "count": [int(v) for v in days.values()]})
    if frame.empty:
        return frame.assign(quarter=pd.Series(dtype=str))
    frame["day"] = pd.to_datetime(frame["day"], format="%Y%m%d")
    frame = frame.loc[frame["day"] <= pd.Timestamp(last_day)]
    return frame.assign(quarter=quarter_of(frame["day"]))


def claim_trend_counts(
    catalog: ClaimCatalog,
    reports: pd.DataFrame,
    reactions: pd.DataFrame,
    background_days: Mapping[str, Any],
    last_day: date,
    drug: str,
) -> pd.DataFrame:
    """Per-quarter (not cumulative) counts per claim group: n and the three margins.

    Drug side from the staged reports by receivedate quarter; background from openFDA's daily report counts
    (all reports, and reports with any of the group's PTs). Every quarter from the first background report
    gets a row, so the cumulative margins start at the beginning of the database, not at the drug's first
    report. Per-quarter margins are raised to stay coherent (a drug report is a report of the event too).
    """
    total = _day_series(background_days["total"], last_day).groupby("quarter")["count"].sum()
    received = reports[["safetyreportid", "receivedate"]].astype({"safetyreportid": str}).dropna()
    received = received.loc[received["receivedate"] <= pd.Timestamp(last_day)]
    received = received.assign(quarter=quarter_of(received["receivedate"]))
    drug_q = received.groupby("quarter")["safetyreportid"].nunique()
    quarters = sorted(set(total.index) | set(drug_q.index))
    rows = []
    for claim in catalog.claims:
        days = (background_days.get("groups") or {}).get(claim.id)
        if days is None:
            continue
        event_q = _day_series(days, last_day).groupby("quarter")["count"].sum()
        ids = _claim_report_ids(claim, reactions)
        n_q = received.loc[received["safetyreportid"].isin(ids)].groupby("quarter")["safetyreportid"].nunique()
        for quarter in quarters:
            n = int(n_q.get(quarter, 0))
            dt = int(drug_q.get(quarter, 0))
            et = max(int(event_q.get(quarter, 0)), n)
            tot = max(int(total.get(quarter, 0)), dt + et - n)
            rows.append({"quarter": quarter, "drug": drug, "event": claim.id, "n": n, "drug_total": dt,
                         "event_total": et, "total": tot})  # fmt: skip
    return pd.DataFrame(rows, columns=["quarter", "drug", "event", "n", "drug_total", "event_total", "total"])


def claim_trend(counts: pd.DataFrame, prior: Any) -> pd.DataFrame:
    """Cumulative scores per claim group and quarter (signals.trend), one prior for every quarter."""
    from signals.trend import cumulative_trend

    if counts.empty:
        return pd.DataFrame()
    trend = cumulative_trend(counts, prior=prior)
    return trend.rename(columns={"event": "claim_id"})


def trend_summary(trend: pd.DataFrame, claim_id: str) -> dict[str, Any]:
    """When each rule first fired for the claim's group, and the latest IC025 and EB05."""
    rows = trend.loc[trend["claim_id"] == claim_id].sort_values("quarter")
    if rows.empty:
        return {"quarters": 0}
    last = rows.iloc[-1]
    firsts = {c.removeprefix("first_signal_quarter_"): last[c] for c in rows.columns if c.startswith("first_signal_quarter_")}
    firsts = {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)) for k, v in firsts.items()}
    fired = sorted(v for v in firsts.values() if v)
    return {
        "quarters": int(len(rows)),
        "first_quarter": str(rows.iloc[0]["quarter"]),
        "last_quarter": str(last["quarter"]),
        "first_signal_quarter": fired[0] if fired else None,
        "first_signal_quarter_by_rule": firsts,
        "ic025_last": float(last["ic025"]),
        "eb05_last": float(last["eb05"]),
    }


# ------------------------------------------------------------------------------ subgroups


def age_group_of(age_years: float) -> str | None:
    for label, low, high in AGE_BINS:
        if low <= age_years < high:
            return label
    return None


def subgroup_of(kind: str, value: Any) -> str | None:
    """The subgroup label of a patientsex code or an age in years (None: not a subgroup we report)."""
    if kind == "sex":
        try:
            return SEX_LABELS.get(int(value))
        except (TypeError, ValueError):
            return None
    try:
        age = float(value)
    except (TypeError, ValueError):
        return None
    return age_group_of(age) if math.isfinite(age) else None


def bucket_terms(kind: str, buckets: Mapping[str, int]) -> dict[str, int]:
    """openFDA count buckets (patientsex codes or ages) summed into our subgroup labels."""
    out: dict[str, int] = {}
    for term, count in buckets.items():
        label = subgroup_of(kind, term)
        if label is not None:
            out[label] = out.get(label, 0) + int(count)
    return out


def subgroup_counts(
    catalog: ClaimCatalog,
    reports: pd.DataFrame,
    reactions: pd.DataFrame,
    background: Mapping[str, Any],
    drug: str,
) -> pd.DataFrame:
    """2x2 margins per claim group within each sex and age group.

    Drug side from the staged cumulative tables (patientsex, age_group); background from openFDA count
    requests per claim group ({"total": {"sex": {...}, "age": {...}}, "groups": {claim_id: {...}}}, already
    bucketed into our labels). Margins are raised to stay coherent, as in the trend.
    """
    reps = reports.astype({"safetyreportid": str})
    labels = {
        "sex": reps["patientsex"].map(lambda v: subgroup_of("sex", v) if pd.notna(v) else None),
        "age": reps["age_group"].where(reps["age_group"].isin([b[0] for b in AGE_BINS]), None),
    }
    rows = []
    for claim in catalog.claims:
        group_bg = (background.get("groups") or {}).get(claim.id)
        if group_bg is None:
            continue
        ids = _claim_report_ids(claim, reactions)
        has_pt = reps["safetyreportid"].isin(ids)
        for kind, label_of in labels.items():
            for label in ([*SEX_LABELS.values()] if kind == "sex" else [b[0] for b in AGE_BINS]):
                in_group = (label_of == label).fillna(False).astype(bool)
                n, dt = int((in_group & has_pt).sum()), int(in_group.sum())
                et = max(int(group_bg.get(kind, {}).get(label, 0)), n)
                tot = max(int(background["total"].get(kind, {}).get(label, 0)), dt + et - n)
                if dt == 0 and et == 0:
                    continue
                rows.append({"claim_id": claim.id, "subgroup_kind": kind, "subgroup": label, "drug": drug,
                             "event": f"{claim.id}|{kind}|{label}", "n": n, "drug_total": dt,
                             "event_total": et, "total": tot})  # fmt: skip
    columns = ["claim_id", "subgroup_kind", "subgroup", "drug", "event", "n", "drug_total", "event_total", "total"]
    return pd.DataFrame(rows, columns=columns)


def subgroup_scores(counts: pd.DataFrame, prior: Any) -> pd.DataFrame:
    """Scores per claim group x subgroup under the PTs' prior; `enough` marks n >= MIN_SUBGROUP_CASES."""
    from signals.measures import score_arrays
    from signals.rules import apply_rules

    if counts.empty:
        return counts.assign(enough=pd.Series(dtype=bool))
    # Each subgroup is its own 2x2 universe (its own drug and overall totals), so rows are scored directly
    # rather than through score_table, which requires one drug_total per drug and one total per table.
    margins = [counts[c].to_numpy(dtype=np.int64) for c in ("n", "drug_total", "event_total", "total")]
    scores = pd.DataFrame(score_arrays(*margins, prior), index=counts.index).drop(columns=["a", "b", "c", "d"])
    out = apply_rules(counts[["claim_id", "subgroup_kind", "subgroup", "drug_total", "event_total", "total"]].join(scores))
    out["enough"] = out["n"] >= MIN_SUBGROUP_CASES
    return out


# ------------------------------------------------------------------------ beyond the article


def claim_coverage(catalog: ClaimCatalog) -> dict[str, list[str]]:
    """PT -> ids of the claims whose group names it."""
    coverage: dict[str, list[str]] = {}
    for claim in catalog.claims:
        for pt in claim.pt_list:
            coverage.setdefault(pt, []).append(claim.id)
    return coverage


def any_signal(scores: pd.DataFrame) -> pd.Series:
    present = [c for c in SIGNAL_COLUMNS if c in scores]
    if not present:
        return pd.Series(False, index=scores.index)
    return scores[present].fillna(False).astype(bool).any(axis=1)


def musculoskeletal_scores(pt_scores: pd.DataFrame, msk_pts: list[str], catalog: ClaimCatalog) -> pd.DataFrame:
    """The drug's musculoskeletal PTs with their scores and the claims covering them, by EB05."""
    coverage = claim_coverage(catalog)
    rows = pt_scores.loc[pt_scores["pt"].isin(set(msk_pts))].copy()
    rows["claim_ids"] = rows["pt"].map(lambda pt: "; ".join(coverage.get(pt, [])))
    rows["any_signal"] = any_signal(rows)
    return rows.sort_values(["eb05", "n"], ascending=[False, False]).reset_index(drop=True)


def uncovered_signals(pt_scores: pd.DataFrame, catalog: ClaimCatalog) -> pd.DataFrame:
    """PTs with a signal (at least one rule fires) that no claim's PT group names, ranked by EB05."""
    coverage = claim_coverage(catalog)
    rows = pt_scores.loc[any_signal(pt_scores) & ~pt_scores["pt"].isin(set(coverage))].copy()
    return rows.sort_values(["eb05", "n"], ascending=[False, False]).reset_index(drop=True)
