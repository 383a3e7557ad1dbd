"""The quarterly ingestion DAG imports and runs with `dag.test()` on the real sample quarters."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DATA = PROJECT_ROOT / "tests" / "data" / "faers_ascii"
REAL_RECORDS = PROJECT_ROOT / "tests" / "data" / "openfda" / "drug-event-limit100-results.json"
DAG_ID = "faers_quarterly_ingest"


def _dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "faers_quarterly_ingest.py"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def test_dag_imports_with_params():
    dag = _dag()
    assert dag.schedule is None or str(dag.timetable.summary) in ("None", "")
    assert {
        "faers_quarters",
        "deleted_case_files",
        "openfda_manifest",
        "openfda_quarters",
        "openfda_files",
    } <= set(dag.params)
    assert {t.task_id for t in dag.tasks} == {
        "faers_locations", "extract_faers_quarter", "stage_faers", "bulk_partitions", "stage_bulk_partition",
        "background_counts",
    }  # fmt: skip


@pytest.mark.slow
def test_dag_runs_on_the_sample_quarters(airflow_db, tmp_path):
    import zipfile

    bulk_dir = tmp_path / "2014q1"
    bulk_dir.mkdir()
    bulk = bulk_dir / "drug-event-0001-of-0001.json.zip"
    records = json.loads(REAL_RECORDS.read_text())
    with zipfile.ZipFile(bulk, "w") as archive:
        archive.writestr("drug-event-0001-of-0001.json", json.dumps({"meta": {"last_updated": "2026-01-02"},
                                                                       "results": records}))  # fmt: skip
    data_dir = tmp_path / "var"
    conf = {
        "faers_quarters": [str(DATA / "aers_ascii_2004q1.zip"), str(DATA / "faers_ascii_2017q2.zip")],
        "openfda_files": [str(bulk)],
        "data_dir": str(data_dir),
    }
    dag_run = _dag().test(run_conf=conf)
    assert dag_run.state == "success"

    staged = data_dir / "staged"
    for quarter in ("2004Q1", "2017Q2"):
        accounting = json.loads(
            (staged / "source=faers_ascii" / f"quarter={quarter}" / "accounting.json").read_text()
        )
        assert all(row["balanced"] for row in accounting["tables"].values())
        assert accounting["tables"]["DEMO"]["kept"] == 100
    bulk_reports = pd.read_parquet(
        staged / "source=openfda_bulk" / "quarter=2014Q1" / "part=0001-of-0001" / "reports.parquet"
    )
    assert len(bulk_reports) == 100
    counts = pd.read_csv(staged / "background" / "drug_event_counts.csv")
    assert set(counts["total"]) == {300}
    assert counts.loc[
        (counts["drug"] == "ISOTRETINOIN") & (counts["event"] == "Arthritis"), "n"
    ].tolist() == [1]
