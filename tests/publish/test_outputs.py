"""Publishing: the dashboard tables per period, the quality gate, the previous-report lookup, alerts."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from publish.outputs import conform, previous_period, published_runs, write_period_table
from publish.schema import SCHEMA_VERSION, TABLES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"


def test_docs_describe_exactly_the_schema() -> None:
    text = DOCS.read_text(encoding="utf-8")
    assert f"Schema version **{SCHEMA_VERSION}**" in text
    for table, columns in TABLES.items():
        section = re.search(rf"^### {table}\n(.*?)(?=^#|\Z)", text, re.MULTILINE | re.DOTALL).group(1)
        rows = re.findall(r"^\| (\w+) \| (\w+) \| (.*) \|$", section, re.MULTILINE)
        assert [(c.name, c.type, c.description) for c in columns] == [r for r in rows if r[0] != "column"]


def test_runs_row_records_lineage_counts_and_changes(world_runs: dict[str, Any]) -> None:
    current = world_runs["current"]
    runs = pd.read_parquet(current["publish"]["tables"]["runs"]["parquet"])
    row = runs.iloc[0]
    assert (row["new_reports"], row["cumulative_reports"], row["quarantined_rows"]) == (5, 100, 1)
    assert (row["new_signals"], row["signals_lost"], row["verdict_changes"]) == (1, 0, 0)
    assert row["previous_period"] == "2024-12-23T0600_2024-12-30T0600" and not row["data_version_changed"]
    assert (row["claims_supported"], row["claims_not_supported"], row["claims_insufficient_data"],
            row["claims_not_testable"]) == (1, 2, 1, 3)  # fmt: skip
    assert row["run_id"] == "scheduled__current" and row["schema_version"] == SCHEMA_VERSION
    lineage = json.loads(row["lineage"])
    assert set(lineage) == {"extract", "normalize", "signals", "claims", "report"}
    assert lineage["signals"]["signals_dir"].endswith("window=2024-12-30T0600_2025-01-06T0600")
    # The trend background is fetched once per data version (previous week), the subgroups per window end:
    # 4 distinct PT groups + all reports, one request per group for the trend, two for the subgroups.
    previous = pd.read_parquet(world_runs["previous"]["publish"]["tables"]["runs"]["parquet"]).iloc[0]
    assert (previous["background_requests"], row["background_requests"]) == (5 + 10, 10)


def test_signals_and_claims_tables_compare_with_the_previous_report(world: Any, world_runs: dict[str, Any]) -> None:
    tables = world_runs["current"]["publish"]["tables"]
    signals = pd.read_parquet(tables["signals"]["parquet"])
    assert signals.loc[signals["new_signal"], "pt"].tolist() == [world.SCRIPT_PT]
    assert set(signals["previous_period"]) == {"2024-12-23T0600_2024-12-30T0600"}
    groups = signals.loc[signals["level"] == "claim_group"]
    assert groups["pt"].isna().all() and set(groups["claim_id"]) == set(world.EXPECTED_API)
    pts = signals.loc[signals["level"] == "pt"].set_index("pt")
    assert pts.loc["Back pain", "claim_ids"] == "strong; onset; during; dose" and pts.loc["Back pain", "is_musculoskeletal"]
    assert pts.loc[world.SCRIPT_PT, "claim_ids"] == "" and pts.loc[world.SCRIPT_PT, "any_signal"]
    claims = pd.read_parquet(tables["claims"]["parquet"])
    assert (claims["previous_verdict"] == claims["verdict"]).all() and not claims["verdict_changed"].any()
    first = pd.read_parquet(world_runs["previous"]["publish"]["tables"]["claims"]["parquet"])
    assert first["previous_verdict"].isna().all()


def test_a_new_signal_sends_one_alert_listing_it(world: Any, world_runs: dict[str, Any]) -> None:
    alerts_file = Path(world_runs["current"]["settings"].data_dir) / "alerts" / "alerts.jsonl"
    alerts = [json.loads(line) for line in alerts_file.read_text(encoding="utf-8").splitlines()]
    assert [a["kind"] for a in alerts] == ["new_signal"]  # none for the first week: no previous report
    alert = alerts[0]
    assert alert["details"]["period"] == "2024-12-30T0600_2025-01-06T0600"
    assert [s["name"] for s in alert["details"]["signals"]] == [world.SCRIPT_PT]
    assert world.SCRIPT_PT in alert["body"] and "report.html" in alert["body"]
    assert world_runs["current"]["publish"]["alerted"] and not world_runs["previous"]["publish"]["alerted"]


def test_gx_results_are_kept_for_each_table(world_runs: dict[str, Any]) -> None:
    checks = world_runs["current"]["publish"]["validation"]
    assert set(checks) == {"signals", "claims", "runs"}
    for check in checks.values():
        assert check["checked"] and check["success"] and Path(check["result_path"]).exists()


def test_rerun_makes_no_background_requests(world: Any, world_runs: dict[str, Any]) -> None:
    from pv import stages

    current = world_runs["current"]
    again = stages.compute_signals(current["settings"], world.WINDOW_START, world.WINDOW_END, current["normalize"])
    assert again["background_requests"] == 0


def test_critical_failure_stops_publish_before_anything_is_written(
    world: Any, world_runs: dict[str, Any], tmp_path: Path
) -> None:
    from expectations.runner import DataQualityError
    from pv import stages

    current = world_runs["current"]
    claims_dir = tmp_path / "claims"
    claims_dir.mkdir()
    bad = pd.read_parquet(Path(current["claims"]["claims_dir"]) / "claims.parquet")
    bad.loc[0, "verdict"] = "probably"
    bad.to_parquet(claims_dir / "claims.parquet", index=False)
    settings = replace(current["settings"], data_dir=tmp_path / "var")
    outputs = {k: current[k] for k in ("extract", "normalize", "signals", "report")} | {"claims": {"claims_dir": str(claims_dir)}}
    with pytest.raises(DataQualityError, match="verdict"):
        stages.publish(settings, world.WINDOW_START, world.WINDOW_END, "bad_run", outputs)
    assert not (tmp_path / "var" / "published").exists()
    assert not (tmp_path / "var" / "alerts").exists()


def _runs_frame(world_runs: dict[str, Any], end: datetime) -> pd.DataFrame:
    runs = pd.read_parquet(world_runs["current"]["publish"]["tables"]["runs"]["parquet"])
    start = end - timedelta(days=7)
    return runs.assign(period=f"{start:%Y-%m-%dT%H%M}_{end:%Y-%m-%dT%H%M}", window_start=start, window_end=end)


def test_previous_report_is_the_latest_window_end_before_this_one(world_runs: dict[str, Any], tmp_path: Path) -> None:
    """Backfills publish out of order: the comparison follows window ends, not publication order."""
    weeks = [datetime(2024, 1, 8, 6, tzinfo=UTC) + timedelta(days=7 * i) for i in range(4)]
    for end in (weeks[3], weeks[0], weeks[2]):  # week 1 not yet published
        frame = _runs_frame(world_runs, end)
        write_period_table(tmp_path, "runs", "isotretinoin", frame["period"].iloc[0], frame)
    assert len(published_runs(tmp_path, "isotretinoin")) == 3
    assert previous_period(tmp_path, "isotretinoin", weeks[0]) is None
    assert previous_period(tmp_path, "isotretinoin", weeks[1]).endswith("2024-01-08T0600")
    assert previous_period(tmp_path, "isotretinoin", weeks[2]).endswith("2024-01-08T0600")
    assert previous_period(tmp_path, "isotretinoin", weeks[3]).endswith("2024-01-22T0600")
    assert previous_period(tmp_path / "nothing", "isotretinoin", weeks[3]) is None


def test_conform_keeps_types_whatever_the_week_holds() -> None:
    frame = pd.DataFrame({c.name: [None] for c in TABLES["runs"] if c.name != "schema_version"})
    frame["window_start"] = datetime(2024, 1, 1, 6, tzinfo=UTC)
    frame["window_end"] = datetime(2024, 1, 8, 6, tzinfo=UTC)
    out = conform(frame, "runs")
    assert str(out["new_reports"].dtype) == "Int64" and str(out["previous_period"].dtype) == "string"
    assert str(out["window_end"].dtype) == "datetime64[us, UTC]" and out["schema_version"].iloc[0] == SCHEMA_VERSION
    with pytest.raises(ValueError, match="missing column"):
        conform(frame.drop(columns=["run_id"]), "runs")
