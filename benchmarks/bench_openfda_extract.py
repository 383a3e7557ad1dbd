"""Benchmark of the openFDA extractor against the local test server (real sockets, no api.fda.gov).

Serves 30,000 synthetic isotretinoin reports in the week of Mon 2024-01-01 (plus 3,000 that must not
match), then measures, for each extraction the DAG runs:
- requests used against the minimum possible (ceil(n / 1000) pages, plus the limit=0 / count calls
  the operation needs), on a fault-free run, on a rerun (reuse), and under a 30% fault mix;
- records per second, unthrottled and with the default 240 requests/minute limiter.
Prints a figures table and writes var/benchmarks/openfda_extract.json.

    .venv/bin/python benchmarks/bench_openfda_extract.py [--reports 30000] [--skip-limited]

Target (issue 3): requests used == minimum on a fault-free run.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from extractors.openfda.client import LiveClient, RetryPolicy, make_client  # noqa: E402
from extractors.openfda.engine import Engine  # noqa: E402
from extractors.openfda.extract import (  # noqa: E402
    COUNT_LIMIT,
    PAGE_LIMIT,
    TERM_BATCH,
    extract_background_counts,
    extract_history,
    extract_window,
)
from extractors.openfda.synthetic import REACTIONS, synthetic_reports  # noqa: E402
from extractors.openfda.testserver import FaultPlan, OpenFDATestServer  # noqa: E402
from pv.settings import Settings  # noqa: E402

OUT = ROOT / "var" / "benchmarks" / "openfda_extract.json"
START = datetime(2024, 1, 1, 6, tzinfo=UTC)
END = datetime(2024, 1, 8, 6, tzinfo=UTC)
MISSING_TERMS = [f"Unreported term {i}" for i in range(50)]


def pages(n: int) -> int:
    return max(1, math.ceil(n / PAGE_LIMIT))


def run(label: str, server: OpenFDATestServer, client: LiveClient, minimum: int, fn) -> dict[str, Any]:
    before_server, before_client = server.request_count, client.requests_made
    began = time.perf_counter()
    path = fn()
    elapsed = time.perf_counter() - began
    manifest_path = path / "manifest.json" if path.is_dir() else path
    manifest = json.loads(manifest_path.read_text())
    records = int(manifest.get("records", 0))
    used = server.request_count - before_server
    assert used == client.requests_made - before_client
    return {
        "run": label,
        "requests_used": used,
        "requests_minimum": minimum,
        "retries": client.retries,
        "records": records,
        "seconds": round(elapsed, 3),
        "records_per_second": round(records / elapsed) if records and "reused" not in label else None,
        "requests_per_minute": round(used / elapsed * 60, 1) if elapsed else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=30_000)
    parser.add_argument("--skip-limited", action="store_true", help="skip the run at the default 240/min")
    args = parser.parse_args(argv)

    built = time.perf_counter()
    background = args.reports // 10
    reports = synthetic_reports(args.reports, date(2024, 1, 1), n_background=background, seed=1)
    engine = Engine(reports, "2026-01-02")
    history_n = args.reports + len(range(0, background, 4))  # background ids with extra % 4 == 0 are the drug
    terms = [*REACTIONS, *MISSING_TERMS]
    setup_seconds = time.perf_counter() - built

    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, OpenFDATestServer(engine) as server:
        settings = Settings(data_dir=Path(tmp) / "var", source="openfda", openfda_base_url=server.url,
                            rate_limit_per_minute=1_000_000, daily_quota=1_000_000)
        client = make_client(settings)
        assert isinstance(client, LiveClient)
        count_minimum = 3 + math.ceil(len(MISSING_TERMS) / TERM_BATCH)  # totals, drug total, top terms, batches
        results.append(run("window (fresh)", server, client, pages(args.reports),
                           lambda: extract_window(settings, START, END, client=client)))
        results.append(run("window (rerun, reused)", server, client, 1,
                           lambda: extract_window(settings, START, END, client=client)))
        results.append(run("history (fresh)", server, client, 1 + pages(history_n),
                           lambda: extract_history(settings, END, client=client)))
        results.append(run("history (next week, reused)", server, client, 1,
                           lambda: extract_history(settings, datetime(2024, 1, 15, 6, tzinfo=UTC), client=client)))
        results.append(run(f"background counts ({len(terms)} terms)", server, client, count_minimum,
                           lambda: extract_background_counts(settings, END, terms, client=client)))

    plan = FaultPlan(mix_rate=0.3, seed=2, retry_after=0, slow_seconds=0.5)
    with tempfile.TemporaryDirectory() as tmp, OpenFDATestServer(engine, plan) as server:
        settings = Settings(data_dir=Path(tmp) / "var", source="openfda", openfda_base_url=server.url)
        client = LiveClient(server.url, retry=RetryPolicy(base_delay=0.01, max_delay=0.1, timeout=0.25))
        results.append(run("window under a 30% fault mix", server, client, pages(args.reports),
                           lambda: extract_window(settings, START, END, client=client)))
        faults = dict(server.statuses)

    if not args.skip_limited:
        with tempfile.TemporaryDirectory() as tmp, OpenFDATestServer(engine) as server:
            settings = Settings(data_dir=Path(tmp) / "var", source="openfda", openfda_base_url=server.url)
            client = make_client(settings)
            assert isinstance(client, LiveClient)
            results.append(run(f"window at the default {settings.rate_limit_per_minute}/min limiter", server,
                               client, pages(args.reports), lambda: extract_window(settings, START, END, client=client)))

    report = {
        "benchmark": "openfda_extract",
        "reports_in_window": args.reports,
        "reports_served": len(reports),
        "page_limit": PAGE_LIMIT,
        "count_limit": COUNT_LIMIT,
        "dataset_build_seconds": round(setup_seconds, 3),
        "fault_mix_statuses": faults,
        "runs": results,
        "fault_free_at_minimum": all(r["requests_used"] == r["requests_minimum"] for r in results
                                     if "fault" not in r["run"]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": __import__("os").cpu_count(),
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print(f"{'run':<44} {'requests':>9} {'minimum':>8} {'records':>8} {'seconds':>8} {'rec/s':>8} {'req/min':>8}")
    for r in results:
        print(f"{r['run']:<44} {r['requests_used']:>9} {r['requests_minimum']:>8} {r['records']:>8} "
              f"{r['seconds']:>8} {r['records_per_second'] or '-':>8} {r['requests_per_minute']:>8}")
    print(f"fault-free runs at the minimum: {report['fault_free_at_minimum']}; fault mix statuses: {faults}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    if not report["fault_free_at_minimum"]:
        raise SystemExit("requests used exceed the minimum on a fault-free run")
    return report


if __name__ == "__main__":
    main()
