from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from expectations.runner import (
    DataQualityError,
    build_data_docs,
    build_suite,
    quarantine_failed_rows,
    validate_dataset,
)
from normalization import model
from normalization.openfda import normalize_openfda_reports, raw_reports_frame

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = PROJECT_ROOT / "tests" / "data" / "normalization"

EXPECTED_COUNTS = {"raw_reports": 12, "reports": 19, "drugs": 17, "reactions": 10}


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return json.loads((DATA / "drug-event-limit100-results.json").read_text())


@pytest.fixture(scope="module")
def batch(records):
    config = yaml.safe_load((PROJECT_ROOT / "pv" / "drugs.yaml").read_text())["drugs"]["isotretinoin"]
    return normalize_openfda_reports(
        records, source="openfda_api", data_version="2024-02-01", drug_config=config
    )


def test_optional_expectations_are_skipped_without_their_context() -> None:
    suite, skipped = build_suite("reports", {})
    assert len(suite.expectations) == EXPECTED_COUNTS["reports"] - 2
    assert skipped == [
        "expect_table_row_count_to_equal (expected_rows not in context)",
        "expect_column_values_to_be_between (window_end, window_start not in context)",
    ]


def test_real_sample_passes_every_critical_expectation(tmp_path: Path, records, batch) -> None:
    frames = {"raw_reports": raw_reports_frame(records), "reports": batch.reports, "drugs": batch.drugs,
              "reactions": batch.reactions}  # fmt: skip
    expected = {"raw_reports": 100, "reports": 100, "drugs": 265, "reactions": 247}
    for name, frame in frames.items():
        context = {"expected_rows": expected[name], "window_start": "2008-01-01", "window_end": "2014-06-01"}
        outcome = validate_dataset(name, frame, context=context, result_dir=tmp_path)
        assert outcome.success, (name, outcome.critical_failures)
        assert outcome.counts["evaluated"] == EXPECTED_COUNTS[name]
        assert json.loads(outcome.result_path.read_text())["meta"]["pv_dataset"] == name
    reports = validate_dataset("reports", batch.reports, context={}, result_dir=tmp_path)
    assert [(w.expectation, w.column, w.examples) for w in reports.warnings] == [
        ("expect_column_pair_values_a_to_be_greater_than_b", "receiptdate,receivedate",
         [["2008-06-25T00:00:00", "2008-07-07T00:00:00"]]),
    ]  # fmt: skip
    index = build_data_docs(tmp_path)
    assert index == tmp_path / "data_docs" / "index.html"
    assert len(list((tmp_path / "data_docs" / "validations").rglob("*.html"))) == 4
    assert not list(tmp_path.glob(".gx_docs_*"))


def defective_reports(batch) -> pd.DataFrame:
    reports = batch.reports.head(6).copy()
    reports.loc[1, "patientsex"] = 7
    reports.loc[2, "age_years"] = 150.0
    reports.loc[3, "receivedate"] = pd.Timestamp("2030-01-01")
    reports.loc[4, "safetyreportid"] = reports.loc[5, "safetyreportid"]
    return model.conform(reports, model.REPORT_COLUMNS)


def test_each_defect_fails_its_expectation_and_lands_in_quarantine(tmp_path: Path, batch) -> None:
    reports = defective_reports(batch)
    context = {"window_start": "2008-01-01", "window_end": "2015-01-01", "expected_rows": 6}
    outcome = validate_dataset("reports", reports, context=context, result_dir=tmp_path)
    assert not outcome.success
    failed = {(f.expectation, f.column): f for f in outcome.critical_failures}
    assert set(failed) == {
        ("expect_column_values_to_be_in_set", "patientsex"),
        ("expect_column_values_to_be_between", "age_years"),
        ("expect_column_values_to_be_between", "receivedate"),
        ("expect_compound_columns_to_be_unique", "source,safetyreportid"),
    }
    assert failed[("expect_column_values_to_be_in_set", "patientsex")].examples == [7]
    assert failed[("expect_column_values_to_be_between", "age_years")].rows == (2,)
    with pytest.raises(
        DataQualityError, match=r"dataset reports: 5 critical.*patientsex: 1 unexpected, e.g. \[7\]"
    ):
        outcome.raise_for_critical()

    valid, quarantine = quarantine_failed_rows(reports, outcome)
    assert valid["safetyreportid"].tolist() == [reports.loc[0, "safetyreportid"]]
    assert dict(quarantine.dtypes.astype(str)) == model.QUARANTINE_COLUMNS
    reasons = dict(zip(quarantine["field"], quarantine["reason"], strict=True))
    sex_id = reports.loc[1, "safetyreportid"]
    assert reasons["patientsex"] == (
        f"reports: expect_column_values_to_be_in_set failed on patientsex ({sex_id}: '7')"
    )
    assert set(quarantine["record_id"]) == set(reports.loc[1:5, "safetyreportid"])
    assert set(quarantine["stage"]) == {"validate_normalized"} and set(quarantine["action"]) == {"rejected"}
    outcome.raise_for_critical(row_failures_quarantined=True)


def test_stage_count_mismatch_is_a_table_level_failure_quarantine_cannot_hide(tmp_path: Path, batch) -> None:
    outcome = validate_dataset(
        "reactions", batch.reactions, context={"expected_rows": 250}, result_dir=tmp_path
    )
    [failure] = outcome.critical_failures
    assert (failure.expectation, failure.observed, failure.row_level) == (
        "expect_table_row_count_to_equal",
        247,
        False,
    )
    with pytest.raises(DataQualityError, match="expect_table_row_count_to_equal: observed 247"):
        outcome.raise_for_critical(row_failures_quarantined=True)


def test_low_share_of_known_pts_is_only_a_warning(tmp_path: Path, batch) -> None:
    reactions = batch.reactions.copy()
    reactions["pt_known"] = pd.array([False] * len(reactions), dtype="boolean")
    outcome = validate_dataset("reactions", reactions, context={}, result_dir=tmp_path)
    assert outcome.success
    assert [(w.expectation, w.observed) for w in outcome.warnings] == [
        ("expect_column_mean_to_be_between", 0.0)
    ]


def test_batch_with_each_defect_class_end_to_end(tmp_path: Path) -> None:
    """Raw checks flag the bad records, the normalizer quarantines them with a reason, the staged
    tables pass their critical checks, and the valid rows are all there."""
    case = json.loads((DATA / "golden" / "defects-each-class.json").read_text())
    records = case["input"]
    raw = validate_dataset(
        "raw_reports", raw_reports_frame(records), context={"expected_rows": 12}, result_dir=tmp_path
    )
    assert raw.success
    assert {(w.expectation, w.column) for w in raw.warnings} == {
        ("expect_column_values_to_not_be_null", "safetyreportid"),
        ("expect_column_values_to_not_be_null", "receivedate"),  # the non-object and broken records
        ("expect_column_values_to_be_between", "n_drugs"),
        ("expect_column_values_to_be_between", "n_reactions"),
        ("expect_column_values_to_match_regex", "receivedate"),
        ("expect_column_values_to_be_in_set", "patientsex"),
        ("expect_column_values_to_be_in_set", "patientonsetageunit"),
    }
    config = yaml.safe_load((PROJECT_ROOT / "pv" / "drugs.yaml").read_text())["drugs"]["isotretinoin"]
    batch = normalize_openfda_reports(records, source="openfda_api", data_version="v", drug_config=config)
    stats = batch.stats
    assert stats["records_in"] == stats["reports_out"] + stats["duplicates_removed"] + stats["quarantined"]
    expected_rows = {"reports": stats["records_in"] - stats["duplicates_removed"] - stats["quarantined"],
                     "drugs": stats["drugs_in"], "reactions": stats["reactions_in"] - stats["reactions_quarantined"]}  # fmt: skip
    for name, rows in expected_rows.items():
        outcome = validate_dataset(
            name, getattr(batch, name), context={"expected_rows": rows}, result_dir=tmp_path
        )
        assert outcome.success, [f.describe() for f in outcome.critical_failures]
    assert batch.reports["safetyreportid"].tolist() == [f"9000000{i}" for i in (1, 4, 5, 6, 7, 8, 9)]
    reasons = set(batch.quarantine["reason"])
    assert "safetyreportid 90000002: receivedate '20171340' is not a YYYYMMDD date" in reasons
    assert "safetyreportid 90000008: reaction 2 has no reactionmeddrapt" in reasons

    # a defect the normalizer cannot see (a bad row from another source) is caught by GX and quarantined
    reactions = batch.reactions.copy()
    reactions.loc[0, "pt"] = pd.NA
    reactions.loc[1, "mapping_rule"] = "guess"
    outcome = validate_dataset("reactions", reactions, context={}, result_dir=tmp_path)
    valid, quarantine = quarantine_failed_rows(reactions, outcome)
    assert len(valid) == len(reactions) - 2
    assert sorted(quarantine["reason"]) == [
        "reactions: expect_column_values_to_be_in_set failed on mapping_rule (90000004: 'guess')",
        "reactions: expect_column_values_to_not_be_null failed on pt (90000001: '<NA>')",
    ]
    outcome.raise_for_critical(row_failures_quarantined=True)
