"""Backfills on a real deployment: PostgreSQL metadata DB, Redis, Airflow api-server + scheduler +
dag-processor (+ Celery worker) as processes, openFDA served by the local test server.

1. A manual run with an unknown drug is triggered first: it fails (after the DAG's retries) and the
   DAG's failure notifier writes an alert line.
2. `pv backfill` over 8 weeks through the REST API (unpausing the DAG) completes every run, while the
   same 8 weeks run one by one with `dag.test()` into another data directory: the published signals and
   claims tables are identical.
3. `pv backfill --reprocess-behavior completed --cli` over the same weeks (through the airflow CLI and the
   metadata DB; it waits for Airflow to close the first backfill) reruns every week, sends openFDA no
   request at all (the test server's counter is unchanged) and publishes the same tables again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from deploy.localstack import DAG_ID, LocalDeployment

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1500)]

FIRST_DAY, LAST_DAY = "2025-01-06", "2025-02-24"  # 8 weeks starting on Mondays 06:00 UTC
WEEKS = [datetime(2025, 1, 6, 6, tzinfo=UTC) + timedelta(days=7 * i) for i in range(8)]
FAILING_LOGICAL_DATE = "2024-06-10T06:00:00Z"
# Columns that name a run or a moment of it, not the week's results.
RUN_COLUMNS = {"run_id", "generated_at", "retrieved_at", "report_html", "lineage"}
# "Since the previous report" columns compare with whichever earlier week was published when the run
# ran (pv/stages.changes_since_previous): with 4 weeks running at once that depends on timing. Every
# statistic is compared; these only once every earlier week is published (the rerun).
CHANGE_COLUMNS = {"previous_period", "new_signal", "previous_verdict", "verdict_changed"}


@dataclass
class BackfillPass:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    requests_before: int
    requests_after: int
    new_requests: list[dict[str, str]]
    end_dates_before: dict[str, str] | None = None


class Api:
    """The deployment's REST API with a bearer token."""

    def __init__(self, deployment: LocalDeployment) -> None:
        assert deployment.airflow is not None
        self.base = deployment.airflow.api_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {deployment.airflow.token()}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=30, **kwargs)
        assert response.status_code < 400, f"{method} {path}: HTTP {response.status_code} {response.text[:500]}"
        return response.json()

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        return self("GET", f"/dags/{DAG_ID}/dagRuns", params={"limit": 100, **params})["dag_runs"]


def _pv_backfill(deployment: LocalDeployment, *args: str, cli: bool = False) -> subprocess.Popen:
    assert deployment.airflow is not None
    env = deployment.airflow.env()
    env.update({"PV_AIRFLOW_USERNAME": deployment.airflow.username, "PV_AIRFLOW_PASSWORD": deployment.airflow.password})
    argv = [sys.executable, "-m", "pv.cli", "backfill", "--from", FIRST_DAY, "--to", LAST_DAY,
            "--max-active-runs", "4", "--poll-seconds", "2", "--timeout", "900", *args]
    argv += ["--cli"] if cli else ["--api-url", deployment.airflow.api_url]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, started: float, server, before: int) -> BackfillPass:
    stdout, stderr = process.communicate(timeout=1200)
    after = server.request_count
    new = [{**r.params, "status": str(r.status)} for r in server.requests[before:after]]
    return BackfillPass(process.returncode, stdout, stderr, time.monotonic() - started, before, after, new)


def _published(data_dir: Path, table: str, ignore: set[str] = RUN_COLUMNS) -> pd.DataFrame:
    """The table of the 8 weeks (the deployment also publishes the latest week, scheduled by the unpause)."""
    from pv.storage import window_key

    periods = [window_key(start, start + timedelta(days=7)) for start in WEEKS]
    base = data_dir / "published" / table / "drug=isotretinoin"
    files = [base / f"period={period}" / f"{table}.parquet" for period in periods]
    missing = [str(f) for f in files if not f.exists()]
    assert not missing, f"published {table} tables missing: {missing}"
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    frame = frame.drop(columns=[c for c in frame.columns if c in ignore])
    keys = [c for c in ("period", "level", "event", "claim_id") if c in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _run_reference_weeks(data_dir: Path, server_url: str) -> float:
    """The same weeks one by one through dag.test() (SQLite metadata DB of the test session)."""
    from pv.airflow_runner import run_week

    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"PV_DATA_DIR": str(data_dir), "PV_SOURCE": "openfda", "OPENFDA_BASE_URL": server_url,
                            "PV_RATE_LIMIT_PER_MINUTE": "60000"}.items():
            patch.setenv(name, value)
        for start in WEEKS:
            dag_run = run_week(start, start + timedelta(days=7))
            assert str(dag_run.state).endswith("success"), f"dag.test week {start:%Y-%m-%d}: {dag_run.state}"
    return time.monotonic() - started


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def api(deployment: LocalDeployment) -> Api:
    return Api(deployment)


@pytest.fixture(scope="module")
def failing_run(api: Api) -> str:
    """A manual run whose drug Param is not configured: extract fails on every try, the run fails."""
    run = api("POST", f"/dags/{DAG_ID}/dagRuns",
              json={"logical_date": FAILING_LOGICAL_DATE, "conf": {"drug": "no-such-drug"}})
    return run["dag_run_id"]


@pytest.fixture(scope="module")
def reference_server(openfda_server):
    """A second server on the same engine, so the reference runs' requests are counted apart."""
    from extractors.openfda.testserver import OpenFDATestServer

    server = OpenFDATestServer(openfda_server.engine).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def first_pass(deployment: LocalDeployment, failing_run: str, openfda_server, reference_server, airflow_db,
               deployment_root: Path):
    """pv backfill via REST, with the dag.test() reference computed meanwhile."""
    before = openfda_server.request_count
    started = time.monotonic()
    process = _pv_backfill(deployment)
    try:
        reference_seconds = _run_reference_weeks(deployment_root / "reference", reference_server.url)
    except BaseException:
        process.kill()
        raise
    result = _finish(process, started, openfda_server, before)
    print(f"\nfirst backfill: {result.seconds:.1f} s, {len(result.new_requests)} requests; dag.test reference "
          f"(meanwhile): {reference_seconds:.1f} s, {reference_server.request_count} requests\n{result.stdout}")
    return result


@pytest.fixture(scope="module")
def second_pass(deployment: LocalDeployment, first_pass: BackfillPass, failing_run: str, api: Api, openfda_server):
    """pv backfill --reprocess-behavior completed via the CLI driver, once nothing else is running."""
    deadline = time.monotonic() + 300
    while True:  # the run the unpause scheduled (latest week) must not count against the second pass
        busy = [r for r in api.runs(state=["queued", "running"]) if r["dag_run_id"] != failing_run]
        if not busy:
            break
        assert time.monotonic() < deadline, f"runs still busy: {[r['dag_run_id'] for r in busy]}"
        time.sleep(2)
    end_dates = {logical: run["end_date"] for logical, run in _backfill_runs(api).items()}
    before = openfda_server.request_count
    started = time.monotonic()
    result = _finish(_pv_backfill(deployment, "--reprocess-behavior", "completed", cli=True), started,
                     openfda_server, before)
    result.end_dates_before = end_dates
    print(f"\nsecond backfill: {result.seconds:.1f} s, {len(result.new_requests)} requests\n{result.stdout}")
    return result


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _backfill_runs(api: Api) -> dict[str, dict[str, Any]]:
    runs = api.runs(run_type=["backfill"], logical_date_gte=WEEKS[0].isoformat(), logical_date_lte=WEEKS[-1].isoformat())
    return {r["logical_date"]: r for r in runs}


# ------------------------------------------------------------------------------------------ tests


def test_backfill_through_the_rest_api_runs_every_week(first_pass: BackfillPass, api: Api) -> None:
    assert first_pass.returncode == 0, f"pv backfill failed:\n{first_pass.stdout}\n{first_pass.stderr}"
    assert f"8 weeks to run, {FIRST_DAY} .. {LAST_DAY}" in first_pass.stdout
    assert "unpaused isotretinoin_weekly_signals" in first_pass.stdout
    assert "8/8 weeks succeeded" in first_pass.stdout
    runs = _backfill_runs(api)
    assert len(runs) == 8
    assert {r["state"] for r in runs.values()} == {"success"}
    intervals = sorted((r["data_interval_start"], r["data_interval_end"]) for r in runs.values())
    assert [_moment(start) for start, _ in intervals] == WEEKS
    assert sorted(r["dag_run_id"] for r in runs.values())[0] == "backfill__2025-01-13T06:00:00+00:00"


def test_backfill_outputs_equal_the_weeks_run_one_by_one(first_pass: BackfillPass, deployment_root: Path) -> None:
    for table in ("signals", "claims"):
        backfilled = _published(deployment_root / "data", table, RUN_COLUMNS | CHANGE_COLUMNS)
        reference = _published(deployment_root / "reference", table, RUN_COLUMNS | CHANGE_COLUMNS)
        assert sorted(backfilled["period"].unique()) == sorted(reference["period"].unique())
        assert backfilled["period"].nunique() == 8
        pd.testing.assert_frame_equal(backfilled, reference, check_like=True, obj=f"published {table}")


def test_reprocessing_a_range_reruns_every_week(second_pass: BackfillPass, api: Api) -> None:
    assert second_pass.returncode == 0, f"pv backfill failed:\n{second_pass.stdout}\n{second_pass.stderr}"
    assert "8 weeks to run" in second_pass.stdout and "8/8 weeks succeeded" in second_pass.stdout
    assert "airflow CLI" in second_pass.stdout
    runs = _backfill_runs(api)
    assert {r["state"] for r in runs.values()} == {"success"} and len(runs) == 8
    assert second_pass.end_dates_before is not None and set(second_pass.end_dates_before) == set(runs)
    not_rerun = [k for k, r in runs.items() if _moment(r["end_date"]) <= _moment(second_pass.end_dates_before[k])]
    assert not not_rerun, f"weeks not rerun: {not_rerun}"


def test_reprocessing_a_range_publishes_the_same_tables(second_pass: BackfillPass, deployment_root: Path) -> None:
    for table in ("signals", "claims"):  # every earlier week is published now: the change columns agree too
        pd.testing.assert_frame_equal(_published(deployment_root / "data", table),
                                      _published(deployment_root / "reference", table), check_like=True,
                                      obj=f"published {table} after the rerun")


def test_reprocessing_a_fetched_range_downloads_no_data(second_pass: BackfillPass) -> None:
    """No request answered with data: at most data-version probes (limit=0) and empty answers (404)."""
    downloads = [r for r in second_pass.new_requests if r.get("limit") != "0" and r["status"] != "404"]
    assert not downloads, f"the rerun downloaded data again: {downloads[:3]}"


def test_reprocessing_a_fetched_range_makes_no_source_request(second_pass: BackfillPass) -> None:
    """The extractor remembers the data version (PV_DATA_VERSION_TTL_HOURS): not even a limit=0 probe."""
    assert second_pass.requests_after == second_pass.requests_before, (
        f"{len(second_pass.new_requests)} requests: {second_pass.new_requests[:6]}"
    )


def test_a_failed_run_alerts_through_the_dag_notifier(
    deployment: LocalDeployment, failing_run: str, second_pass: BackfillPass, api: Api, deployment_root: Path
) -> None:
    alerts = deployment_root / "data" / "alerts" / "alerts.jsonl"
    deadline = time.monotonic() + 300
    lines: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        if alerts.exists():
            lines = [json.loads(line) for line in alerts.read_text(encoding="utf-8").splitlines() if line.strip()]
            if any(a["details"].get("run_id") == failing_run for a in lines):
                break
        time.sleep(3)
    run = api("GET", f"/dags/{DAG_ID}/dagRuns/{failing_run}")
    assert run["state"] == "failed", f"the run with drug no-such-drug ended {run['state']}"
    matching = [a for a in lines if a["details"].get("run_id") == failing_run]
    assert matching, f"no alert for {failing_run} in {alerts} (lines: {lines})"
    assert matching[0]["kind"] == "run_failed" and DAG_ID in matching[0]["subject"]
    assert not [a for a in lines if a["details"].get("run_id", "").startswith("backfill__")], "a backfill run alerted"


def test_every_component_stayed_up(deployment: LocalDeployment, second_pass: BackfillPass) -> None:
    assert deployment.airflow is not None
    deployment.airflow.check_alive()
    assert os.path.exists(deployment.airflow.home / "logs")
