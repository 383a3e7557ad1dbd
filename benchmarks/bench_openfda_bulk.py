"""Benchmark of streaming an openFDA bulk partition: memory must not grow with the file.

Generates a drug-event-0001-of-0001.json.zip whose JSON member is --size-mb megabytes (default
1024) by repeating the bundled sample's records with fresh safetyreportids, in a temp dir that is
removed afterwards. Then, each in a fresh process so peak RSS is its own:
  1. parse: stream every record out of the zip (extractors.openfda_bulk.stream);
  2. stage: stream + normalize in chunks + append to Parquet (extractors.openfda_bulk.stage).
Prints figures and writes var/benchmarks/openfda_bulk.json.

    .venv/bin/python benchmarks/bench_openfda_bulk.py [--size-mb 1024] [--chunk-records 5000] [--skip-stage]

Target (issue 4): a 1 GB file streams with peak RSS under 500 MB.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "var" / "benchmarks" / "openfda_bulk.json"
SAMPLE = ROOT / "sample" / "data" / "drug-event-0001-of-0001.json.zip"
TARGET_RSS_MB = 500


def generate(path: Path, size_mb: int) -> dict[str, Any]:
    """Write a bulk-shaped zip whose JSON member is about size_mb MiB; returns its record count."""
    from extractors.openfda_bulk.stream import BulkFile

    source = BulkFile(SAMPLE)
    templates = [json.dumps(r, separators=(",", ":")) for r in source]
    meta = json.dumps({**source.meta, "last_updated": "2026-10-28", "benchmark": True})
    target = size_mb * 2**20
    written = records = 0
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("drug-event-0001-of-0001.json", "w", force_zip64=True) as handle,
    ):
        head = f'{{"meta":{meta},"results":[\n'.encode()
        handle.write(head)
        written += len(head)
        separator = b""
        while written < target:
            lines, size = [], 0
            for template in templates:
                records += 1
                # fresh ids so every record is its own report
                lines.append(template.replace('"safetyreportid":"', f'"safetyreportid":"{records:09d}-', 1))
                size += len(lines[-1]) + 2
                if written + size >= target:
                    break
            block = separator + ",\n".join(lines).encode()
            separator = b",\n"
            handle.write(block)
            written += len(block)
        handle.write(b"\n]}\n")
    return {
        "records": records,
        "json_mb": round(written / 2**20, 1),
        "zip_mb": round(path.stat().st_size / 2**20, 1),
    }


def _parse(path: str) -> dict[str, Any]:
    from extractors.openfda_bulk.stream import BulkFile

    start, cpu = time.perf_counter(), time.process_time()
    bulk = BulkFile(path)
    n = sum(1 for _ in bulk)
    return {"records": n, "seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
            "peak_rss_mb": _peak_rss_mb()}  # fmt: skip


def _stage(path: str, data_dir: str, chunk_records: int) -> dict[str, Any]:
    from extractors.faers_ascii.stage import drug_config_mapping
    from extractors.openfda_bulk.stage import stage_bulk_file

    start, cpu = time.perf_counter(), time.process_time()
    out = stage_bulk_file(path, data_dir, drug_config=drug_config_mapping(), chunk_records=chunk_records)
    stats = json.loads(Path(out, "stats.json").read_text())
    return {"seconds": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
            "peak_rss_mb": _peak_rss_mb(), "rows": stats["rows"]}  # fmt: skip


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(func: Any, *args: Any) -> Any:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(func, args)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the JSON member (MiB)")
    parser.add_argument("--chunk-records", type=int, default=5_000)
    parser.add_argument("--skip-stage", action="store_true", help="only measure parsing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-openfda-bulk-"))
    try:
        path = workdir / "drug-event-0001-of-0001.json.zip"
        start = time.perf_counter()
        generated = _in_child(generate, path, args.size_mb)
        generate_s = time.perf_counter() - start
        parse = _in_child(_parse, str(path))
        stage = (
            None
            if args.skip_stage
            else _in_child(_stage, str(path), str(workdir / "var"), args.chunk_records)
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    peak = max(parse["peak_rss_mb"], stage["peak_rss_mb"] if stage else 0.0)
    figures: dict[str, Any] = {
        "benchmark": "openfda_bulk",
        "json_mb": generated["json_mb"],
        "zip_mb": generated["zip_mb"],
        "records": generated["records"],
        "generate_s": round(generate_s, 1),
        "parse_s": round(parse["seconds"], 1),
        "parse_cpu_s": round(parse["cpu_s"], 1),
        "parse_mb_per_s": round(generated["json_mb"] / parse["seconds"], 1),
        "parse_records": parse["records"],
        "parse_peak_rss_mb": round(parse["peak_rss_mb"], 1),
        "stage_s": round(stage["seconds"], 1) if stage else None,
        "stage_cpu_s": round(stage["cpu_s"], 1) if stage else None,
        "stage_records_per_cpu_s": round(generated["records"] / stage["cpu_s"]) if stage else None,
        "stage_peak_rss_mb": round(stage["peak_rss_mb"], 1) if stage else None,
        "stage_rows": stage["rows"] if stage else None,
        "chunk_records": args.chunk_records,
        "target": {"peak_rss_mb": TARGET_RSS_MB},
        "passed": bool(peak < TARGET_RSS_MB and parse["records"] == generated["records"]),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        if key not in ("target", "python", "cpus", "benchmark"):
            print(f"{key:<{width}}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return figures


if __name__ == "__main__":
    main()
