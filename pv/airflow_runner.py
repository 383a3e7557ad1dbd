"""Run the weekly DAG in-process with Airflow's own `dag.test()` (real task runner, SQLite metadata DB)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from pv.settings import PROJECT_ROOT

DAG_ID = "isotretinoin_weekly_signals"
OPENFDA_POOL = ("openfda_api", "4", "openFDA API requests: sized so concurrent runs stay under 240 requests/min")


def airflow_env() -> dict[str, str]:
    """The project-local Airflow environment (also in scripts/airflow-env.sh for shells)."""
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(PROJECT_ROOT / ".airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("GX_ANALYTICS_ENABLED", "False")
    return env


def _airflow_cli(*args: str) -> subprocess.CompletedProcess:
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run([str(airflow), *args], env=airflow_env(), check=True, capture_output=True, text=True)


def prepare_metadata_db() -> None:
    """Migrate the metadata DB and create the openFDA pool (both idempotent)."""
    os.environ.update({k: v for k, v in airflow_env().items() if k.startswith(("AIRFLOW", "GX_"))})
    _airflow_cli("db", "migrate")
    _airflow_cli("pools", "set", *OPENFDA_POOL)


def run_week(start: datetime, end: datetime, conf: dict | None = None):
    """Run the DAG for the week [start, end) and return the DagRun.

    A manual run's data interval is the last complete interval before its logical date (Airflow's
    `infer_manual_data_interval`), so the week [start, end) is the run whose logical date is `end`.
    """
    os.environ.update({k: v for k, v in airflow_env().items() if k.startswith(("AIRFLOW", "GX_"))})
    from airflow.dag_processing.dagbag import DagBag

    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags[DAG_ID]
    dag_run = dag.test(logical_date=end, run_conf=conf or None)
    interval = (dag_run.data_interval_start, dag_run.data_interval_end)
    if interval != (start, end):
        raise RuntimeError(f"Airflow ran the interval {interval}, not the requested [{start}, {end})")
    return dag_run
