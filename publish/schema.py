"""The dashboard tables' schema: column names, Arrow types and meanings, in order.

docs/outputs.md documents the same columns (a test keeps the two in step). Bump SCHEMA_VERSION when a
column is renamed, removed or changes type; adding a column at the end is a minor change that BI views
absorb (union_by_name), still noted in the changelog.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SCHEMA_VERSION = 2

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # a key of ARROW_TYPES
    description: str


def _c(name: str, type_: str, description: str) -> Column:
    if type_ not in ARROW_TYPES:
        raise ValueError(f"column {name}: unknown type {type_!r}")
    return Column(name, type_, description)


_WINDOW = [
    _c("period", "string", "data interval key '<start>_<end>' (e.g. 2025-06-02T0600_2025-06-09T0600)"),
    _c("window_start", "timestamp", "data interval start (inclusive), UTC"),
    _c("window_end", "timestamp", "data interval end (exclusive), UTC; statistics cover reports received before it"),
    _c("drug", "string", "watched drug (pv/drugs.yaml key)"),
]
_SCORES = [
    _c("n", "int64", "drug reports with the event (cell a), cumulative"),
    _c("n_new", "int64", "of n, reports received in the window"),
    _c("e", "double", "expected count (a+b)(a+c)/N"),
    _c("drug_total", "int64", "drug reports (a+b)"),
    _c("event_total", "int64", "reports of the event, all drugs (a+c)"),
    _c("total", "int64", "all reports (N)"),
    _c("prr", "double", "proportional reporting ratio"),
    _c("prr_lower", "double", "PRR lower 95% bound"),
    _c("prr_upper", "double", "PRR upper 95% bound (may be +inf)"),
    _c("chi2", "double", "Yates chi-square"),
    _c("ror", "double", "reporting odds ratio"),
    _c("ror_lower", "double", "ROR lower 95% bound"),
    _c("ror_upper", "double", "ROR upper 95% bound (may be +inf)"),
    _c("ic", "double", "information component log2((a+0.5)/(E+0.5))"),
    _c("ic025", "double", "IC lower 95% bound"),
    _c("ic975", "double", "IC upper 95% bound"),
    _c("ebgm", "double", "empirical Bayes geometric mean (MGPS)"),
    _c("eb05", "double", "EBGM 5th percentile"),
    _c("eb95", "double", "EBGM 95th percentile"),
    _c("signal_evans", "bool", "Evans rule fires (PRR >= 2, chi2 >= 4, n >= 3)"),
    _c("signal_ema", "bool", "EMA rule fires (ROR lower bound > 1, n >= 3)"),
    _c("signal_who_umc", "bool", "WHO-UMC rule fires (IC025 > 0)"),
    _c("signal_fda", "bool", "FDA MGPS rule fires (EB05 >= 2)"),
]

SIGNALS: tuple[Column, ...] = (
    *_WINDOW,
    _c("level", "string", "'pt' (one MedDRA preferred term) or 'claim_group' (a claim's PT group)"),
    _c("pt", "string", "preferred term (level pt); null for claim groups"),
    _c("claim_id", "string", "the claim whose PT group this row scores (level claim_group); null for PTs"),
    _c("claim_ids", "string", "claims whose PT group names this PT, ';'-joined (empty: no claim covers it)"),
    _c("is_musculoskeletal", "bool", "the PT is in the musculoskeletal list (claims/data/musculoskeletal_pts.csv)"),
    *_SCORES,
    _c("event_total_missing", "bool", "openFDA returned no background count for the PT (event_total set to n)"),
    _c("any_signal", "bool", "at least one of the four rules fires"),
    _c("new_signal", "bool", "any_signal now and not in the previous report (false when there is none)"),
    _c("previous_period", "string", "period of the report compared with (null: no previous report)"),
    _c("data_version", "string", "source data version (openFDA meta.last_updated)"),
    _c("schema_version", "int64", "this schema's version"),
)

CLAIMS: tuple[Column, ...] = (
    *_WINDOW,
    _c("claim_id", "string", "claim id (claims/claims.yaml)"),
    _c("kind", "string", "disproportionality, time_to_onset, on_treatment, dose_response or proportion"),
    _c("statement", "string", "the claim as assessed"),
    _c("citation", "string", "source the article cites for it"),
    _c("pts", "string", "the claim's evidence PTs, '; '-joined"),
    _c("verdict", "string", "one of: supported, not supported, insufficient data, not testable with this source"),
    _c("reason", "string", "the numbers that decided the verdict, in words"),
    _c("verdict_rule", "string", "the rule applied for this kind of claim"),
    *_SCORES,
    _c("rules_fired", "string", "labels of the rules firing on the claim group, '; '-joined"),
    _c("first_signal_quarter", "string", "first quarter (e.g. 2016Q3) any rule fired on the cumulative group counts"),
    _c("first_signal_quarter_evans", "string", "first quarter the Evans rule fired"),
    _c("first_signal_quarter_ema", "string", "first quarter the EMA rule fired"),
    _c("first_signal_quarter_who_umc", "string", "first quarter the WHO-UMC rule fired"),
    _c("first_signal_quarter_fda", "string", "first quarter the FDA rule fired"),
    _c("tto_events", "int64", "events with a known time to onset >= 0 (time_to_onset claims)"),
    _c("tto_share_within", "double", "share of onsets within the claim's threshold"),
    _c("tto_share_lower", "double", "its 95% Wilson lower bound"),
    _c("tto_share_upper", "double", "its 95% Wilson upper bound"),
    _c("tto_median_days", "double", "median time to onset, days"),
    _c("weibull_shape", "double", "Weibull shape of time to onset (< 1: decreasing hazard, early onset)"),
    _c("weibull_shape_lower", "double", "shape lower 95% bound"),
    _c("weibull_shape_upper", "double", "shape upper 95% bound"),
    _c("on_treatment_share", "double", "share of events dated while on drug (on_treatment claims)"),
    _c("on_treatment_lower", "double", "its 95% Wilson lower bound"),
    _c("on_treatment_upper", "double", "its 95% Wilson upper bound"),
    _c("dose_reports_with", "int64", "reports with a cumulative dose and the PTs (dose_response claims)"),
    _c("dose_reports_without", "int64", "reports with a cumulative dose and without the PTs"),
    _c("dose_median_with_mg", "double", "median cumulative dose with the PTs, mg"),
    _c("dose_median_without_mg", "double", "median cumulative dose without the PTs, mg"),
    _c("dose_p_value", "double", "one-sided Mann-Whitney p-value"),
    _c("reporting_proportion", "double", "share of the drug's musculoskeletal reports with the PTs (not a prevalence)"),
    _c("proportion_lower", "double", "its 95% Wilson lower bound"),
    _c("proportion_upper", "double", "its 95% Wilson upper bound"),
    _c("study_prevalence", "double", "the prevalence the cited study reports, for comparison only"),
    _c("previous_verdict", "string", "verdict in the previous report (null: no previous report or new claim)"),
    _c("verdict_changed", "bool", "verdict differs from previous_verdict"),
    _c("evidence_json", "string", "all evidence as JSON (distributions, subgroup-independent details)"),
    _c("claims_version", "string", "claims file version"),
    _c("data_version", "string", "source data version"),
    _c("schema_version", "int64", "this schema's version"),
)

RUNS: tuple[Column, ...] = (
    *_WINDOW,
    _c("run_id", "string", "Airflow run id"),
    _c("source", "string", "sample or openfda_api"),
    _c("data_version", "string", "source data version"),
    _c("claims_version", "string", "claims file version"),
    _c("generated_at", "timestamp", "when the report was rendered, UTC"),
    _c("published_at", "timestamp", "when these tables were written, UTC"),
    _c("previous_period", "string", "period compared with (null: no previous report)"),
    _c("previous_data_version", "string", "data version of the previous report"),
    _c("data_version_changed", "bool", "the data version moved since the previous report"),
    _c("raw_window_reports", "int64", "extract: reports openFDA listed for the window"),
    _c("new_reports", "int64", "normalize: window reports staged"),
    _c("cumulative_reports", "int64", "normalize: drug reports received before the window end, staged"),
    _c("quarantined_rows", "int64", "normalize: rows quarantined (window + cumulative)"),
    _c("validation_datasets", "int64", "GX validations run (raw + normalized)"),
    _c("validation_failed", "int64", "GX validations with a critical failure (the run stops before publish)"),
    _c("validation_warnings", "int64", "GX warning-level expectation failures"),
    _c("pt_pairs_scored", "int64", "signals: PTs scored"),
    _c("claim_groups_scored", "int64", "signals: claim PT groups scored"),
    _c("pt_signals", "int64", "PTs with at least one rule firing"),
    _c("new_signals", "int64", "signals not in the previous report (PTs and claim groups)"),
    _c("signals_lost", "int64", "signals of the previous report no longer firing"),
    _c("verdict_changes", "int64", "claims whose verdict changed"),
    _c("claims_supported", "int64", "claims with verdict supported"),
    _c("claims_not_supported", "int64", "claims with verdict not supported"),
    _c("claims_insufficient_data", "int64", "claims with verdict insufficient data"),
    _c("claims_not_testable", "int64", "claims with verdict not testable with this source"),
    _c("background_requests", "int64", "openFDA requests made for the trend and subgroup backgrounds (0: cached)"),
    _c("report_html", "string", "path of the report"),
    _c("lineage", "string", "JSON: every stage's returned paths and counts"),
    _c("schema_version", "int64", "this schema's version"),
)

TABLES: dict[str, tuple[Column, ...]] = {"signals": SIGNALS, "claims": CLAIMS, "runs": RUNS}


def arrow_schema(table: str) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in TABLES[table]])


def column_names(table: str) -> list[str]:
    return [c.name for c in TABLES[table]]
