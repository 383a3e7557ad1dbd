"""The weekly DAG end to end on real Airflow (`dag.test()`, SQLite metadata DB) over the bundled sample.

Expected numbers are recomputed here straight from the sample file with plain json, not with the
pipeline's code, so a wrong join or filter in the pipeline cannot agree with itself.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pv.settings import BUNDLED_SAMPLE, PROJECT_ROOT

DAG_ID = "isotretinoin_weekly_signals"
WEEK_START = datetime(2025, 6, 2, 6, tzinfo=UTC)
WEEK_END = datetime(2025, 6, 9, 6, tzinfo=UTC)
PERIOD = "window=2025-06-02T0600_2025-06-09T0600"
EXPECTED_NEW_IDS = {"90020527", "90020535", "90020540", "90020549", "90020562"}
VERDICTS = {"supported", "not supported", "insufficient data", "not testable with this source"}


def _sample_reports() -> list[dict]:
    with zipfile.ZipFile(BUNDLED_SAMPLE) as archive:
        return json.loads(archive.read(archive.namelist()[0]))["results"]


def _isotretinoin_names() -> set[str]:
    config = yaml.safe_load((PROJECT_ROOT / "pv" / "drugs.yaml").read_text())["drugs"]["isotretinoin"]
    return {n.upper() for n in config["product_names"] + config["generic_names"]}


def _is_isotretinoin(report: dict, names: set[str]) -> bool:
    for drug in report["patient"]["drug"]:
        generic = {g.upper() for g in (drug.get("openfda") or {}).get("generic_name", [])}
        substance = (drug.get("activesubstance") or {}).get("activesubstancename", "").upper()
        if drug["medicinalproduct"].upper() in names or "ISOTRETINOIN" in generic or substance == "ISOTRETINOIN":
            return True
    return False


def _has_pt(report: dict, pt: str) -> bool:
    return any(r["reactionmeddrapt"].strip().lower() == pt.lower() for r in report["patient"]["reaction"])


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


@pytest.fixture(scope="module")
def weekly_run(airflow_db, tmp_path_factory):
    """One real run of the week [2025-06-02 06:00, 2025-06-09 06:00) UTC."""
    from pv.airflow_runner import run_week

    data_dir = tmp_path_factory.mktemp("weekly") / "var"
    os.environ["PV_DATA_DIR"] = str(data_dir)
    try:
        dag_run = run_week(WEEK_START, WEEK_END)
    finally:
        os.environ.pop("PV_DATA_DIR", None)
    return dag_run, data_dir


def test_dagbag_imports_every_dag_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags"))
    assert bag.import_errors == {}
    assert DAG_ID in bag.dag_ids


def test_dag_shape(dag):
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.catchup is False
    assert dag.doc_md and "isotretinoin" in dag.doc_md.lower()
    order = ["extract", "validate_raw", "normalize", "validate_normalized", "compute_signals", "assess_claims",
             "render_report", "publish"]
    assert sorted(t.task_id for t in dag.tasks) == sorted(order)
    for upstream, downstream in zip(order, order[1:], strict=False):
        assert upstream in dag.get_task(downstream).upstream_task_ids or upstream in {
            t for t in dag.get_task(downstream).get_flat_relative_ids(upstream=True)
        }
    assert all(t.retries >= 1 for t in dag.tasks)
    assert [a.name for a in dag.get_task("publish").outlets] == ["isotretinoin_signal_outputs"]
    assert dag.get_task("extract").pool == "openfda_api"


def test_run_window_is_previous_monday_to_monday_0600_utc(weekly_run):
    dag_run, data_dir = weekly_run
    assert str(dag_run.state).endswith("success")
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (WEEK_START, WEEK_END)
    manifest = json.loads((data_dir / "raw" / "drug=isotretinoin" / PERIOD / "manifest.json").read_text())
    assert "receivedate:[20250602 TO 20250608]" in manifest["query"]
    assert manifest["total"] == 5 and manifest["complete"] is True


def test_new_reports_are_exactly_the_sample_reports_received_in_the_window(weekly_run):
    _, data_dir = weekly_run
    names = _isotretinoin_names()
    expected = {r["safetyreportid"] for r in _sample_reports()
                if "20250602" <= r["receivedate"] <= "20250608" and _is_isotretinoin(r, names)}
    assert expected == EXPECTED_NEW_IDS
    staged = data_dir / "staged" / "drug=isotretinoin" / PERIOD
    new_reports = pd.read_parquet(staged / "new_reports.parquet")
    assert set(new_reports["safetyreportid"]) == expected
    new_reactions = pd.read_parquet(staged / "new_reactions.parquet")
    assert sorted(new_reactions.loc[new_reactions["safetyreportid"] == "90020527", "pt"]) == [
        "Blood triglycerides increased", "Dizziness", "Pregnancy"]


def test_cumulative_counts_and_measures_match_the_sample(weekly_run):
    _, data_dir = weekly_run
    reports = [r for r in _sample_reports() if r["receivedate"] <= "20250608"]
    names = _isotretinoin_names()
    drug_reports = [r for r in reports if _is_isotretinoin(r, names)]
    signals = pd.read_parquet(data_dir / "signals" / "drug=isotretinoin" / PERIOD / "signals.parquet")
    for pt in ("Arthralgia", "Myalgia", "Back pain", "Headache"):
        a = sum(_has_pt(r, pt) for r in drug_reports)
        event_total = sum(_has_pt(r, pt) for r in reports)
        n_drug, n_all = len(drug_reports), len(reports)
        b, c = n_drug - a, event_total - a
        d = n_all - n_drug - c
        row = signals.loc[(signals["level"] == "pt") & (signals["pt"] == pt)].iloc[0]
        margins = (row["n"], row["a"] + row["b"], row["a"] + row["c"], row["a"] + row["b"] + row["c"] + row["d"])
        assert margins == (a, n_drug, event_total, n_all), pt
        assert row["prr"] == pytest.approx((a / (a + b)) / (c / (c + d)), rel=1e-9)
        assert row["ror"] == pytest.approx((a * d) / (b * c), rel=1e-9)
        se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        assert row["ror_lower"] == pytest.approx(math.exp(math.log(a * d / (b * c)) - 1.959963984540054 * se), rel=1e-9)


def test_claims_table_has_one_verdict_per_claim(weekly_run):
    _, data_dir = weekly_run
    claims = pd.read_parquet(data_dir / "claims" / "drug=isotretinoin" / PERIOD / "claims.parquet")
    catalog = yaml.safe_load((PROJECT_ROOT / "claims" / "claims.yaml").read_text())
    assert list(claims["claim_id"]) == [c["id"] for c in catalog["claims"]]
    assert set(claims["verdict"]) <= VERDICTS
    by_id = claims.set_index("claim_id")
    # openFDA records carry no event date: onset claims cannot be tested on this source.
    assert by_id.loc["onset_first_three_months", "verdict"] == "not testable with this source"
    # Back pain group: reports with Back pain or Spinal pain, counted once each.
    reports = [r for r in _sample_reports() if r["receivedate"] <= "20250608"]
    names = _isotretinoin_names()
    n_back = sum(1 for r in reports if _is_isotretinoin(r, names) and (_has_pt(r, "Back pain") or _has_pt(r, "Spinal pain")))
    assert by_id.loc["back_pain", "n"] == n_back


def test_outputs_land_where_the_readme_says(weekly_run):
    _, data_dir = weekly_run
    report = data_dir / "reports" / "drug=isotretinoin" / PERIOD / "report.html"
    html = report.read_text()
    assert "SYNTHETIC DATA" in html and "5</strong> new isotretinoin report" in html
    assert (report.parent / "summary.md").exists()
    assert (report.parent / "data_docs" / "index.html").exists()
    assert (data_dir / "validation" / "drug=isotretinoin" / PERIOD / "raw_reports.json").exists()
    assert (data_dir / "signals" / "drug=isotretinoin" / PERIOD / "signals.csv").exists()
    assert (data_dir / "warehouse.duckdb").exists()


def _outputs(data_dir: Path) -> dict[str, object]:
    base = {stage: data_dir / stage / "drug=isotretinoin" / PERIOD for stage in ("staged", "signals", "claims", "reports")}
    html = (base["reports"] / "report.html").read_text()
    html = "\n".join(line for line in html.splitlines() if "generated" not in line)
    return {
        "signals": pd.read_parquet(base["signals"] / "signals.parquet"),
        "claims": pd.read_parquet(base["claims"] / "claims.parquet"),
        "reactions": pd.read_parquet(base["staged"] / "cumulative_reactions.parquet"),
        "html": html,
        "raw_pages": sorted(p.read_bytes() for p in (data_dir / "raw" / "drug=isotretinoin" / PERIOD / "pages").glob("*.gz")),
    }


def test_rerun_of_the_same_week_is_idempotent(weekly_run):
    import duckdb

    from pv.airflow_runner import run_week

    _, data_dir = weekly_run
    before = _outputs(data_dir)
    os.environ["PV_DATA_DIR"] = str(data_dir)
    try:
        dag_run = run_week(WEEK_START, WEEK_END)
    finally:
        os.environ.pop("PV_DATA_DIR", None)
    assert str(dag_run.state).endswith("success")
    after = _outputs(data_dir)
    pd.testing.assert_frame_equal(before["signals"], after["signals"])
    pd.testing.assert_frame_equal(before["claims"], after["claims"])
    pd.testing.assert_frame_equal(before["reactions"], after["reactions"])
    assert before["html"] == after["html"]
    assert before["raw_pages"] == after["raw_pages"]
    # One partition per week: the rerun replaced it, the warehouse holds the week once.
    assert len(list((data_dir / "signals" / "drug=isotretinoin").iterdir())) == 1
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from runs").fetchone()[0] == 1
