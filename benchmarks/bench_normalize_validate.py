"""Benchmark of normalization plus Great Expectations validation.

Builds about 1,000,000 reactions' worth of openFDA records from the 100 real records in
tests/data/normalization (new ids; some reactions respelled in legacy UPPERCASE, US spelling and lay
terms; some records defective), normalizes them, then validates reports, drugs and reactions with
their suites. Prints a figures table and writes var/benchmarks/normalize_validate.json.

    .venv/bin/python benchmarks/bench_normalize_validate.py [--reactions 1000000] [--seed 7]

Targets (issue 5): normalization plus validation >= 100,000 reactions/s; GX validation adds no more
than 50% over normalization time. Wall times depend on what else runs on the machine: the CPU times
and the load average before the run are recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from expectations.runner import validate_dataset  # noqa: E402
from normalization.openfda import normalize_openfda_reports  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "normalization" / "drug-event-limit100-results.json"
OUT = ROOT / "var" / "benchmarks" / "normalize_validate.json"
VARIANTS = ("BACK PAIN", "backache", "Low back pain", "joint pain", "Diarrhea", "muscle pain", "Sacroilitis",
            "Achilles tendonitis", "edema peripheral", "Some new term")  # fmt: skip


def synthetic_records(n_reactions: int, seed: int) -> list[dict[str, Any]]:
    """Real records under new ids until `n_reactions` reactions; nested parts are shared, not copied."""
    rng = random.Random(seed)
    base = json.loads(SAMPLE.read_text())
    patients = []
    for rec in base:
        patients.append(rec["patient"])
        for _ in range(3):  # respelled variants of the same patient
            reactions = [
                {**r, "reactionmeddrapt": rng.choice(VARIANTS)} if rng.random() < 0.3 else r
                for r in rec["patient"]["reaction"]
            ]
            patients.append({**rec["patient"], "reaction": reactions})
    records: list[dict[str, Any]] = []
    total, i = 0, 0
    while total < n_reactions:
        rec = base[i % len(base)]
        patient = patients[(i % len(base)) * 4 + rng.randrange(4)]
        new = {**rec, "safetyreportid": str(20_000_000 + i), "patient": patient}
        if i % 5000 == 17:
            new["receivedate"] = "20171340"  # quarantined
        if i % 7000 == 3:
            new["safetyreportid"] = str(20_000_000 + i - 1)  # duplicate id, older version
            new["safetyreportversion"] = "0"
        records.append(new)
        total += len(patient["reaction"])
        i += 1
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reactions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    config = yaml.safe_load((ROOT / "pv" / "drugs.yaml").read_text())["drugs"]["isotretinoin"]

    records = synthetic_records(args.reactions, args.seed)
    load_before = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    batch = normalize_openfda_reports(
        records, source="openfda_bulk", data_version="bench", drug_config=config
    )
    normalize_s = time.perf_counter() - start
    normalize_cpu_s = time.process_time() - cpu_start
    del records

    stats = batch.stats
    validate_s: dict[str, float] = {}
    outcomes = {}
    cpu_start = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        expected = {
            "reports": stats["records_in"] - stats["duplicates_removed"] - stats["quarantined"],
            "drugs": stats["drugs_in"],
            "reactions": stats["reactions_in"] - stats["reactions_quarantined"],
        }
        for name in ("reports", "drugs", "reactions"):
            frame = getattr(batch, name)
            t0 = time.perf_counter()
            outcomes[name] = validate_dataset(
                name, frame, context={"expected_rows": expected[name]}, result_dir=Path(tmp)
            )
            validate_s[name] = time.perf_counter() - t0
    validation_cpu_s = time.process_time() - cpu_start
    validation_s = sum(validate_s.values())
    total_s = normalize_s + validation_s
    n = stats["reactions"]
    figures = {
        "reactions": n,
        "reports": stats["reports_out"],
        "drugs": stats["drugs"],
        "records_in": stats["records_in"],
        "quarantined": stats["quarantined"],
        "duplicates_removed": stats["duplicates_removed"],
        "pt_known_share": round(stats["pt_known"] / n, 4),
        "normalize_s": round(normalize_s, 3),
        "validate_s": {k: round(v, 3) for k, v in validate_s.items()},
        "validation_s": round(validation_s, 3),
        "total_s": round(total_s, 3),
        "normalize_reactions_per_s": round(n / normalize_s),
        "total_reactions_per_s": round(n / total_s),
        "validation_overhead_pct": round(100 * validation_s / normalize_s, 1),
        "critical_failures": {k: len(o.critical_failures) for k, o in outcomes.items()},
        "normalize_cpu_s": round(normalize_cpu_s, 3),
        "validation_cpu_s": round(validation_cpu_s, 3),
        "load_average_before": round(load_before, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "targets": {"total_reactions_per_s": 100_000, "validation_overhead_pct_max": 50},
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    figures["meets_targets"] = (
        figures["total_reactions_per_s"] >= 100_000 and figures["validation_overhead_pct"] <= 50
    )
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0 if figures["meets_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
