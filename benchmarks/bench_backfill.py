"""Benchmark of Airflow backfills of the weekly DAG on a real deployment.

A 52-week backfill (2025-01-06 .. 2025-12-29) of the bundled sample served by the local openFDA test
server, through `pv backfill` against PostgreSQL + Airflow (api-server, scheduler, dag-processor,
LocalExecutor with parallelism 4) started by deploy/localstack.py:

- sequential: --max-active-runs 1, on a fresh deployment and data directory;
- parallel:   --max-active-runs 4, on a fresh deployment and data directory;
- rerun:      the parallel range again with --reprocess-behavior completed (everything fetched already).

Before each measurement the DAG is unpaused and the run that schedules (the latest week) is left to
finish, so the figures are the backfill's alone (that warm-up also downloads the drug's history, which
every week reuses).

Prints wall time, weeks per minute and source requests per mode and writes var/benchmarks/backfill.json.

    .venv/bin/python benchmarks/bench_backfill.py [--weeks 52] [--executor LocalExecutor|CeleryExecutor]

Needs Debian's postgresql and redis-server (apt-get install postgresql redis-server); prints why and
exits 0 without them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.localstack import LocalDeployment, missing_binaries  # noqa: E402

OUT = ROOT / "var" / "benchmarks" / "backfill.json"
FIRST_WEEK = datetime(2025, 1, 6, tzinfo=UTC)


def _request_kind(params: dict[str, str]) -> str:
    if "count" in params:
        return "count"
    if params.get("limit") == "0":
        return "probe (limit=0)"
    return "page"


def run_pv_backfill(deployment: LocalDeployment, weeks: int, max_active_runs: int, *extra: str) -> dict[str, Any]:
    assert deployment.airflow is not None
    stack = deployment.airflow
    env = stack.env()
    env.update({"PV_AIRFLOW_USERNAME": stack.username, "PV_AIRFLOW_PASSWORD": stack.password})
    last = FIRST_WEEK + timedelta(days=7 * (weeks - 1))
    argv = [sys.executable, "-m", "pv.cli", "backfill", "--from", f"{FIRST_WEEK:%Y-%m-%d}", "--to", f"{last:%Y-%m-%d}",
            "--max-active-runs", str(max_active_runs), "--api-url", stack.api_url, "--poll-seconds", "2", *extra]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - started
    summary = re.search(r"(\d+)/(\d+) weeks succeeded", done.stdout)
    if done.returncode not in (0, 1) or summary is None:
        raise RuntimeError(f"pv backfill exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "succeeded": int(summary.group(1)), "runs": int(summary.group(2)),
            "exit_code": done.returncode, "output_tail": done.stdout.strip().splitlines()[-3:]}


def warm_up(deployment: LocalDeployment, server, timeout: float = 900) -> dict[str, Any]:
    """Unpause the DAG and let the run it schedules (the latest week, catchup=False) finish first, so it
    neither competes with nor adds requests to the measured backfill. It also downloads the drug's history
    (one download per data version), which every week then reuses."""
    import requests

    assert deployment.airflow is not None
    stack = deployment.airflow
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {stack.token()}"
    api = f"{stack.api_url}/api/v2/dags/isotretinoin_weekly_signals"
    before, started = server.request_count, time.monotonic()
    session.patch(api, params={"update_mask": "is_paused"}, json={"is_paused": False}, timeout=30).raise_for_status()
    while time.monotonic() - started < timeout:
        runs = session.get(f"{api}/dagRuns", params={"run_type": "scheduled"}, timeout=30).json()["dag_runs"]
        if runs and all(r["state"] in ("success", "failed") for r in runs):
            return {"seconds": round(time.monotonic() - started, 1), "source_requests": server.request_count - before,
                    "states": [r["state"] for r in runs]}
        time.sleep(2)
    raise RuntimeError(f"the scheduled run did not finish within {timeout:.0f} s")


def measure(mode: str, weeks: int, max_active_runs: int, executor: str, rerun: bool) -> list[dict[str, Any]]:
    from extractors.openfda.engine import Engine
    from extractors.openfda.testserver import OpenFDATestServer
    from pv.settings import BUNDLED_SAMPLE

    results = []
    root = Path(tempfile.mkdtemp(prefix=f"pv-bench-backfill-{mode}-"))
    with OpenFDATestServer(Engine.from_file(BUNDLED_SAMPLE)) as server:
        extra_env = {"PV_DATA_DIR": str(root / "data"), "PV_SOURCE": "openfda", "OPENFDA_BASE_URL": server.url,
                     "PV_RATE_LIMIT_PER_MINUTE": os.environ.get("PV_RATE_LIMIT_PER_MINUTE", "240"),
                     # The test server is not openFDA: no anonymous 1,000/day quota (a year needs ~2,000).
                     "PV_DAILY_QUOTA": "1000000", "OPENFDA_API_KEY": "", "PV_ALERT_EMAIL": ""}
        deployment = LocalDeployment(root / "stack", executor=executor, extra_env=extra_env)
        print(f"== {mode}: starting PostgreSQL + Airflow ({executor}) ...", flush=True)
        deployment.start(ready_timeout=240)
        try:
            warm = warm_up(deployment, server)
            print(f"   warm-up (latest week, scheduled by the unpause): {warm}", flush=True)
            passes = [(mode, max_active_runs, ())]
            if rerun:
                passes.append((f"{mode}, rerun of fetched range", max_active_runs, ("--reprocess-behavior", "completed")))
            for name, runs_at_once, extra in passes:
                before = server.request_count
                print(f"== {name}: backfill of {weeks} weeks, max {runs_at_once} at once ...", flush=True)
                figures = run_pv_backfill(deployment, weeks, runs_at_once, *extra)
                kinds = Counter(_request_kind(r.params) for r in server.requests[before:])
                figures.update({
                    "mode": name, "weeks": weeks, "max_active_runs": runs_at_once,
                    "source_requests": server.request_count - before, "requests_by_kind": dict(kinds),
                    "weeks_per_minute": round(weeks / figures["seconds"] * 60, 2), "warm_up": warm,
                })
                results.append(figures)
                print(f"   {figures['seconds']:.1f} s, {figures['succeeded']}/{figures['runs']} succeeded, "
                      f"{figures['source_requests']} requests {dict(kinds)}", flush=True)
        finally:
            deployment.stop()
            if not os.environ.get("PV_BENCH_KEEP"):
                shutil.rmtree(root, ignore_errors=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--executor", default="LocalExecutor", choices=("LocalExecutor", "CeleryExecutor"))
    args = parser.parse_args(argv)
    missing = missing_binaries()
    if missing:
        print(f"bench_backfill skipped: needs {', '.join(missing)} (apt-get install postgresql redis-server)")
        return 0
    started = time.monotonic()
    results = measure("sequential", args.weeks, 1, args.executor, rerun=False)
    results += measure("parallel", args.weeks, 4, args.executor, rerun=True)
    sequential, parallel = results[0], results[1]
    report = {
        "benchmark": "backfill",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "executor": args.executor,
        "rate_limit_per_minute": int(os.environ.get("PV_RATE_LIMIT_PER_MINUTE", "240")),
        "source": "bundled sample via extractors.openfda.testserver",
        "results": results,
        "speedup_parallel_vs_sequential": round(sequential["seconds"] / parallel["seconds"], 2),
        "total_seconds": round(time.monotonic() - started, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(f"{'mode':<40} {'weeks':>5} {'seconds':>8} {'weeks/min':>9} {'requests':>8}  ok")
    for row in results:
        print(f"{row['mode']:<40} {row['weeks']:>5} {row['seconds']:>8.1f} {row['weeks_per_minute']:>9.2f} "
              f"{row['source_requests']:>8}  {row['succeeded']}/{row['runs']}")
    print(f"speedup max-active-runs 4 vs 1: {report['speedup_parallel_vs_sequential']}x; written to {OUT}")
    failed = [r["mode"] for r in results if r["succeeded"] != r["runs"]]
    if failed:
        print(f"runs failed in: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
