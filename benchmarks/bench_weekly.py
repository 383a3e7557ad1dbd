"""Wall time of the main job (`pv weekly`) on an already set-up environment.

Runs the weekly DAG through Airflow (`dag.test()`, SQLite) for the most recent complete week on the
bundled sample: once into an empty data directory (everything fetched and computed), then again
(the rerun reuses the raw data). Target: under 60 s on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60.0


def run_weekly(data_dir: Path) -> float:
    env = {**os.environ, "PV_DATA_DIR": str(data_dir), "PV_SOURCE": "sample"}
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("pv")), "weekly"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pv-bench-weekly-") as tmp:
        data_dir = Path(tmp) / "var"
        first = run_weekly(data_dir)
        rerun = run_weekly(data_dir)
    figures = {"first_run_seconds": round(first, 1), "rerun_seconds": round(rerun, 1), "target_seconds": TARGET_SECONDS,
               "cores": os.cpu_count()}
    print(f"pv weekly, empty data dir: {first:.1f} s; rerun: {rerun:.1f} s (target < {TARGET_SECONDS:.0f} s)")
    out = ROOT / "var" / "benchmarks" / "weekly.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if first < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
