"""Benchmark of the FAERS quarterly ASCII reader, deduplication and canonical mapping.

Generates a synthetic full quarter in FDA's own shape -- a zip with ascii/DEMO25Q1.txt etc.,
'$'-delimited, CRLF, upper-case headers, latin-1 bytes in drug names, ~400,000 DEMO lines
(5% of cases with two versions), ~1.5 M DRUG, ~1.2 M REAC lines and the other four tables,
plus a few dozen malformed lines -- in a temp dir (generated in a child process so its memory
does not count), then reads, deduplicates and normalizes it. Prints figures and writes
var/benchmarks/faers_ascii.json.

    .venv/bin/python benchmarks/bench_faers_ascii.py [--reports 400000] [--seed 7] [--keep DIR]

Target (issue 4): read + deduplicate in under 60 s with peak RSS under 2 GB.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "var" / "benchmarks" / "faers_ascii.json"
QUARTER = "25Q1"
CHUNK = 100_000

DEMO_COLUMNS = (
    "PRIMARYID$CASEID$CASEVERSION$I_F_CODE$EVENT_DT$MFR_DT$INIT_FDA_DT$FDA_DT$REPT_COD$AUTH_NUM$MFR_NUM$"
    "MFR_SNDR$LIT_REF$AGE$AGE_COD$AGE_GRP$SEX$E_SUB$WT$WT_COD$REPT_DT$TO_MFR$OCCP_COD$REPORTER_COUNTRY$OCCR_COUNTRY"
)
DRUG_COLUMNS = (
    "PRIMARYID$CASEID$DRUG_SEQ$ROLE_COD$DRUGNAME$PROD_AI$VAL_VBM$ROUTE$DOSE_VBM$CUM_DOSE_CHR$CUM_DOSE_UNIT$"
    "DECHAL$RECHAL$LOT_NUM$EXP_DT$NDA_NUM$DOSE_AMT$DOSE_UNIT$DOSE_FORM$DOSE_FREQ"
)
REAC_COLUMNS = "PRIMARYID$CASEID$PT$DRUG_REC_ACT"
OUTC_COLUMNS = "PRIMARYID$CASEID$OUTC_COD"
RPSR_COLUMNS = "PRIMARYID$CASEID$RPSR_COD"
THER_COLUMNS = "PRIMARYID$CASEID$DSG_DRUG_SEQ$START_DT$END_DT$DUR$DUR_COD"
INDI_COLUMNS = "PRIMARYID$CASEID$INDI_DRUG_SEQ$INDI_PT"


def _names(prefix: str, n: int, extra: list[str]) -> np.ndarray:
    return np.array(extra + [f"{prefix} {i:05d}" for i in range(n - len(extra))], dtype=object)


def _zipf_choice(rng: np.random.Generator, values: np.ndarray, size: int, a: float = 1.05) -> np.ndarray:
    weights = 1.0 / np.arange(1, len(values) + 1) ** a
    return values[rng.choice(len(values), size=size, p=weights / weights.sum())]


def _dates(rng: np.random.Generator, size: int, partial: bool) -> np.ndarray:
    days = rng.integers(0, 3650, size=size)
    base = np.datetime64("2015-01-01") + days.astype("timedelta64[D]")
    text = np.datetime_as_string(base, unit="D").astype("U10")
    full = np.char.replace(text, "-", "")
    if not partial:
        return full.astype(object)
    kind = rng.random(size)
    out = full.astype(object)
    out[kind < 0.15] = np.char.ljust(full[kind < 0.15], 6).astype("U6")
    out[kind < 0.15] = [v[:6] for v in full[kind < 0.15]]
    out[kind < 0.07] = [v[:4] for v in full[kind < 0.07]]
    out[kind > 0.75] = ""
    return out


def _write(member: zipfile.ZipFile, name: str, header: str, rows: list[np.ndarray], n: int) -> None:
    with member.open(f"ascii/{name}", "w") as handle:
        handle.write((header + "\r\n").encode("latin-1"))
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            cols = [np.asarray(col[start:stop], dtype=object).astype(str) for col in rows]
            lines = cols[0]
            for col in cols[1:]:
                lines = np.char.add(np.char.add(lines, "$"), col)
            handle.write(("\r\n".join(lines.tolist()) + "\r\n").encode("latin-1"))


def generate_quarter(path: Path, reports: int = 400_000, seed: int = 7) -> dict[str, int]:
    """Write a synthetic FAERS quarter zip at `path`; returns the data-line count of each table."""
    rng = np.random.default_rng(seed)
    n_cases = int(reports / 1.05)
    two_versions = reports - n_cases
    caseids = 10_000_000 + rng.choice(40_000_000, size=n_cases, replace=False)
    versions = np.ones(n_cases, dtype=np.int64)
    demo_case = np.concatenate([caseids, caseids[:two_versions]])
    demo_version = np.concatenate([versions + rng.integers(0, 3, n_cases), np.full(two_versions, 9)])
    order = rng.permutation(reports)
    demo_case, demo_version = demo_case[order], demo_version[order]
    primaryid = demo_case * 10 + demo_version
    fda = _dates(rng, reports, partial=False)
    event = _dates(rng, reports, partial=True)
    empty = np.full(reports, "", dtype=object)
    ages = rng.integers(12, 90, reports).astype(str).astype(object)
    sex = rng.choice(np.array(["F", "M", "UNK", ""], dtype=object), reports, p=[0.55, 0.38, 0.02, 0.05])
    # malformed DEMO lines: impossible dates and 4-digit FDA dates
    bad = rng.choice(reports, 40, replace=False)
    event[bad[:20]] = "20170230"
    fda[bad[20:]] = "2017"
    demo_cols = [
        primaryid, demo_case, demo_version, rng.choice(np.array(["I", "F"], dtype=object), reports), event,
        fda, fda, fda, rng.choice(np.array(["EXP", "PER", "DIR"], dtype=object), reports), empty,
        np.char.add("US-MFR-", demo_case.astype(str)).astype(object), empty, empty, ages,
        np.full(reports, "YR", dtype=object), empty, sex, np.full(reports, "Y", dtype=object),
        rng.integers(40, 120, reports).astype(str).astype(object), np.full(reports, "KG", dtype=object), fda,
        empty, np.full(reports, "MD", dtype=object), np.full(reports, "US", dtype=object),
        np.full(reports, "US", dtype=object),
    ]  # fmt: skip

    n_drugs = 1 + rng.poisson(2.75, reports)
    drug_pid = np.repeat(primaryid, n_drugs)
    drug_case = np.repeat(demo_case, n_drugs)
    starts = np.repeat(np.cumsum(n_drugs) - n_drugs, n_drugs)
    drug_seq = np.arange(len(drug_pid)) - starts + 1
    n_drug_rows = len(drug_pid)
    products = _names("SYNTHDRUG", 6000, ["ACCUTANE", "ISOTRETINOIN", "HUMIRA", "Caf\xe9ine Lab\xe9ratoire"])
    drugname = _zipf_choice(rng, products, n_drug_rows)
    role = np.where(drug_seq == 1, "PS", rng.choice(np.array(["SS", "C", "I"], dtype=object), n_drug_rows))
    cum = np.where(rng.random(n_drug_rows) < 0.05, rng.integers(1, 20000, n_drug_rows).astype(str), "")
    cum_unit = np.where(
        cum != "", rng.choice(np.array(["MG", "G", "UG", "DF"], dtype=object), n_drug_rows), ""
    )
    drugname = drugname.astype(object)
    drugname[rng.choice(n_drug_rows, 30, replace=False)] = "BAD$NAME"  # embedded '$'
    d_empty = np.full(n_drug_rows, "", dtype=object)
    drug_cols = [
        drug_pid, drug_case, drug_seq, role, drugname, drugname, np.full(n_drug_rows, "1", dtype=object),
        np.full(n_drug_rows, "Oral", dtype=object), d_empty, cum, cum_unit, np.full(n_drug_rows, "U", dtype=object),
        d_empty, d_empty, d_empty, d_empty, d_empty, d_empty, d_empty, d_empty,
    ]  # fmt: skip

    n_reac = 1 + rng.poisson(2.0, reports)
    reac_pid = np.repeat(primaryid, n_reac)
    terms = _names("Synthetic reaction", 4000, ["Back pain", "Arthralgia", "Depression", "Myalgia"])
    reac_cols = [
        reac_pid,
        reac_pid // 10,
        _zipf_choice(rng, terms, len(reac_pid)),
        np.full(len(reac_pid), "", dtype=object),
    ]

    outc_mask = rng.random(reports) < 0.7
    outc_cols = [primaryid[outc_mask], demo_case[outc_mask],
                 rng.choice(np.array(["OT", "HO", "DE", "LT"], dtype=object), int(outc_mask.sum()))]  # fmt: skip
    rpsr_mask = rng.random(reports) < 0.03
    rpsr_cols = [
        primaryid[rpsr_mask],
        demo_case[rpsr_mask],
        np.full(int(rpsr_mask.sum()), "HP", dtype=object),
    ]

    ther_mask = rng.random(n_drug_rows) < 0.4
    n_ther = int(ther_mask.sum())
    ther_cols = [drug_pid[ther_mask], drug_case[ther_mask], drug_seq[ther_mask], _dates(rng, n_ther, True),
                 _dates(rng, n_ther, True), np.full(n_ther, "", dtype=object), np.full(n_ther, "", dtype=object)]  # fmt: skip
    indi_mask = rng.random(n_drug_rows) < 0.7
    n_indi = int(indi_mask.sum())
    indi_cols = [drug_pid[indi_mask], drug_case[indi_mask], drug_seq[indi_mask],
                 _zipf_choice(rng, terms, n_indi)]  # fmt: skip

    counts = {}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for table, header, cols in [
            ("DEMO", DEMO_COLUMNS, demo_cols),
            ("DRUG", DRUG_COLUMNS, drug_cols),
            ("REAC", REAC_COLUMNS, reac_cols),
            ("OUTC", OUTC_COLUMNS, outc_cols),
            ("RPSR", RPSR_COLUMNS, rpsr_cols),
            ("THER", THER_COLUMNS, ther_cols),
            ("INDI", INDI_COLUMNS, indi_cols),
        ]:
            n = len(cols[0])
            _write(archive, f"{table}{QUARTER}.txt", header, cols, n)
            counts[table] = n
        archive.writestr("Deleted/DELETE25Q1.txt", "\r\n".join(str(c) for c in caseids[-500:]) + "\r\n")
    return counts


def _generate_in_child(path: Path, reports: int, seed: int) -> dict[str, int]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(generate_quarter, (path, reports, seed))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=400_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated zip in this directory")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    from extractors.faers_ascii.dedup import deduplicate
    from extractors.faers_ascii.normalize import normalize_faers
    from extractors.faers_ascii.reader import read_quarter
    from extractors.faers_ascii.stage import drug_config_mapping

    drug_config = drug_config_mapping()
    workdir = Path(tempfile.mkdtemp(prefix="bench-faers-"))
    try:
        zip_path = workdir / f"faers_ascii_20{QUARTER.lower()}.zip"
        t0 = time.perf_counter()
        generated = _generate_in_child(zip_path, args.reports, args.seed)
        t_gen = time.perf_counter() - t0
        baseline = peak_rss_mb()

        t0, c0 = time.perf_counter(), time.process_time()
        quarter = read_quarter(zip_path)
        t_read, c_read = time.perf_counter() - t0, time.process_time() - c0
        rss_read = peak_rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        result = deduplicate([quarter])
        t_dedup, c_dedup = time.perf_counter() - t0, time.process_time() - c0
        rss_dedup = peak_rss_mb()
        t0, c0 = time.perf_counter(), time.process_time()
        batch = normalize_faers(result, drug_config=drug_config, release_raw=True)
        t_norm, c_norm = time.perf_counter() - t0, time.process_time() - c0
        rss_norm = peak_rss_mb()

        loads = {table: load.to_dict() for table, load in quarter.loads.items()}
        figures: dict[str, object] = {
            "benchmark": "faers_ascii",
            "reports_generated": args.reports,
            "generated_lines": generated,
            "zip_mb": round(zip_path.stat().st_size / 2**20, 1),
            "uncompressed_mb": round(
                sum(i.file_size for i in zipfile.ZipFile(zip_path).infolist()) / 2**20, 1
            ),
            "generate_s": round(t_gen, 2),
            "read_s": round(t_read, 2),
            "dedup_s": round(t_dedup, 2),
            "read_plus_dedup_s": round(t_read + t_dedup, 2),
            "normalize_s": round(t_norm, 2),
            "total_s": round(t_read + t_dedup + t_norm, 2),
            "read_plus_dedup_cpu_s": round(c_read + c_dedup, 2),
            "normalize_cpu_s": round(c_norm, 2),
            "peak_rss_mb_before": round(baseline, 1),
            "peak_rss_mb_after_read": round(rss_read, 1),
            "peak_rss_mb_after_dedup": round(rss_dedup, 1),
            "peak_rss_mb_after_normalize": round(rss_norm, 1),
            "quarantined_lines": int(sum(load.quarantined for load in quarter.loads.values())),
            "dedup_removed": result.removed,
            "kept": result.kept(),
            "canonical": batch.stats,
            "loads": loads,
            "target": {"read_plus_dedup_s": 60, "peak_rss_mb": 2048},
            "passed": bool(t_read + t_dedup < 60 and rss_dedup < 2048),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for file in workdir.glob("*.zip"):
                shutil.copy2(file, args.keep / file.name)
        shutil.rmtree(workdir, ignore_errors=True)

    width = max(len(k) for k in figures)
    for key in ("generated_lines", "zip_mb", "uncompressed_mb", "generate_s", "read_s", "dedup_s",
                "read_plus_dedup_s", "normalize_s", "total_s", "read_plus_dedup_cpu_s", "normalize_cpu_s", "peak_rss_mb_before", "peak_rss_mb_after_read",
                "peak_rss_mb_after_dedup", "peak_rss_mb_after_normalize", "quarantined_lines", "kept", "load_average_1m",
                "passed"):  # fmt: skip
        print(f"{key:<{width}}  {figures[key]}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return figures


if __name__ == "__main__":
    main()
