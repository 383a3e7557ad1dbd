"""Each suite loads whole (GX drops expectations it cannot build, silently) and catches its defects."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from expectations.runner import SUITES, build_suite, load_suite_config, validate_dataset
from publish import schema
from publish.outputs import conform

EXPECTED_COUNTS = {
    "raw_reports": 12,
    "reports": 19,
    "drugs": 17,
    "reactions": 10,
    "signals": 57,
    "dashboard_signals": 62,
    "dashboard_claims": 41,
    "dashboard_runs": 39,
}
FULL_CONTEXT = {"window_start": "2024-01-01", "window_end": "2024-02-01", "expected_rows": 2}


@pytest.mark.parametrize("name", SUITES)
def test_suite_builds_every_expectation(name: str) -> None:
    config = load_suite_config(name)
    assert len(config["expectations"]) == EXPECTED_COUNTS[name]
    suite, skipped = build_suite(name, FULL_CONTEXT)
    assert (len(suite.expectations), skipped) == (EXPECTED_COUNTS[name], [])
    assert all(e.meta["severity"] in ("critical", "warning") and e.meta["why"] for e in suite.expectations)


@pytest.mark.parametrize("table", ["signals", "claims", "runs"])
def test_dashboard_suites_follow_the_published_schema(table: str) -> None:
    [columns] = [
        e["kwargs"]["column_list"]
        for e in load_suite_config(f"dashboard_{table}")["expectations"]
        if e["type"] == "expect_table_columns_to_match_ordered_list"
    ]
    assert columns == schema.column_names(table)
    [versions] = [
        e["kwargs"]["value_set"]
        for e in load_suite_config(f"dashboard_{table}")["expectations"]
        if e["kwargs"].get("column") == "schema_version"
    ]
    assert versions == [schema.SCHEMA_VERSION]


WINDOW = {
    "period": "2024-01-01T0600_2024-01-08T0600",
    "window_start": pd.Timestamp("2024-01-01 06:00", tz="UTC"),
    "window_end": pd.Timestamp("2024-01-08 06:00", tz="UTC"),
    "drug": "isotretinoin",
    "data_version": "2024-01-07",
}
SCORES = {
    "n": 5, "n_new": 1, "e": 1.2, "drug_total": 100, "event_total": 500, "total": 100_000,
    "prr": 4.1, "prr_lower": 1.7, "prr_upper": 9.8, "chi2": 5.0, "ror": 4.2, "ror_lower": 1.7,
    "ror_upper": 10.1, "ic": 1.9, "ic025": 0.5, "ic975": 2.8, "ebgm": 3.0, "eb05": 1.5, "eb95": 5.1,
    "signal_evans": True, "signal_ema": True, "signal_who_umc": True, "signal_fda": False,
}  # fmt: skip
DEFAULTS = {
    "string": "x",
    "int64": 1,
    "double": 0.5,
    "bool": False,
    "timestamp": pd.Timestamp("2024-01-08", tz="UTC"),
}


def table_rows(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    base = {c.name: DEFAULTS[c.type] for c in schema.TABLES[table]}
    return conform(pd.DataFrame([{**base, **WINDOW, **row} for row in rows]), table)


def signal_rows() -> list[dict[str, Any]]:
    pt = {**SCORES, "level": "pt", "pt": "Back pain", "claim_id": None, "claim_ids": "", "is_musculoskeletal": True,
          "event_total_missing": False, "any_signal": True, "new_signal": False, "previous_period": None}  # fmt: skip
    group = {**pt, "level": "claim_group", "pt": None, "claim_id": "back-pain", "is_musculoskeletal": None,
             "prr_upper": math.inf, "ror_upper": math.inf}  # fmt: skip
    return [pt, group]


def claim_rows() -> list[dict[str, Any]]:
    row = {**SCORES, "claim_id": "back-pain", "kind": "disproportionality", "verdict": "supported",
           "reason": "PRR 4.1 (1.7-9.8)", "evidence_json": "{}", "claims_version": "3", "dose_p_value": 0.03,
           "tto_share_within": 0.6, "tto_share_lower": 0.4, "tto_share_upper": 0.8, "on_treatment_share": 0.7,
           "on_treatment_lower": 0.5, "on_treatment_upper": 0.9, "reporting_proportion": 0.2,
           "proportion_lower": 0.1, "proportion_upper": 0.3, "weibull_shape": 0.8, "weibull_shape_lower": 0.6,
           "weibull_shape_upper": 1.1, "dose_median_with_mg": 9000.0}  # fmt: skip
    return [row, {**row, "claim_id": "sacroiliitis", "kind": "time_to_onset", "verdict": "insufficient data"}]


def run_rows() -> list[dict[str, Any]]:
    return [{"run_id": "scheduled__2024-01-08", "source": "sample", "validation_failed": 0, "new_reports": 3,
             "cumulative_reports": 40, "lineage": '{"extract": {}}', "report_html": "var/reports/r.html",
             "generated_at": pd.Timestamp("2024-01-08 07:00", tz="UTC"),
             "published_at": pd.Timestamp("2024-01-08 07:01", tz="UTC")}]  # fmt: skip


def failed(outcome) -> set[tuple[str, str | None]]:
    return {(f.expectation, f.column) for f in outcome.critical_failures}


def test_valid_dashboard_tables_pass(tmp_path: Path) -> None:
    for table, rows in (("signals", signal_rows()), ("claims", claim_rows()), ("runs", run_rows())):
        frame = table_rows(table, rows)
        outcome = validate_dataset(
            f"dashboard_{table}", frame, context={"expected_rows": len(frame)}, result_dir=tmp_path
        )
        assert outcome.success, (table, [f.describe() for f in outcome.critical_failures])
        assert outcome.counts["evaluated"] == EXPECTED_COUNTS[f"dashboard_{table}"]


def test_signal_defects_fail_their_expectations(tmp_path: Path) -> None:
    rows = signal_rows()
    rows[0].update(prr_lower=5.0, ebgm=math.nan, n=101)  # CI disordered, NaN statistic, n > drug_total
    rows[1].update(claim_id=None, level="group")  # unknown level, group without claim
    outcome = validate_dataset(
        "dashboard_signals", table_rows("signals", rows), context={}, result_dir=tmp_path
    )
    assert failed(outcome) == {
        ("expect_column_pair_values_a_to_be_greater_than_b", "prr,prr_lower"),
        (
            "expect_column_values_to_not_be_null",
            "ebgm",
        ),  # NaN: the CI pair checks skip it, this one catches it
        ("expect_column_pair_values_a_to_be_greater_than_b", "drug_total,n"),
        ("expect_column_values_to_be_in_set", "level"),
    }


def test_signals_stage_frame_needs_its_columns_and_finite_statistics(tmp_path: Path) -> None:
    frame = table_rows("signals", signal_rows()).drop(columns=["any_signal", "new_signal", "schema_version"])
    frame.loc[0, "chi2"] = math.inf
    outcome = validate_dataset("signals", frame, context={"expected_rows": 2}, result_dir=tmp_path)
    assert failed(outcome) == {("expect_column_values_to_be_between", "chi2")}
    missing = validate_dataset("signals", frame.drop(columns=["eb05"]), context={}, result_dir=tmp_path)
    assert ("expect_table_columns_to_match_set", None) in failed(missing)


def test_claim_and_run_defects_fail_their_expectations(tmp_path: Path) -> None:
    rows = claim_rows()
    rows[0].update(verdict="probably", tto_share_lower=0.9, dose_p_value=1.5)
    rows[1].update(evidence_json="{not json")
    claims = validate_dataset("dashboard_claims", table_rows("claims", rows), context={}, result_dir=tmp_path)
    assert failed(claims) == {
        ("expect_column_values_to_be_in_set", "verdict"),
        ("expect_column_pair_values_a_to_be_greater_than_b", "tto_share_within,tto_share_lower"),
        ("expect_column_values_to_be_between", "dose_p_value"),
        ("expect_column_values_to_be_json_parseable", "evidence_json"),
    }
    runs = run_rows()
    runs[0].update(validation_failed=1, new_reports=41)
    outcome = validate_dataset("dashboard_runs", table_rows("runs", runs), context={}, result_dir=tmp_path)
    assert failed(outcome) == {
        ("expect_column_values_to_be_in_set", "validation_failed"),
        ("expect_column_pair_values_a_to_be_greater_than_b", "cumulative_reports,new_reports"),
    }
