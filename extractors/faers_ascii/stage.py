"""File-level steps of quarterly ingestion; each DAG task is one call here, passing paths only.

Layout under data_dir:
  raw/source=faers_ascii/quarter=2017Q2/      the seven tables as read (strings), quarantine, load.json
  staged/source=faers_ascii/quarter=2017Q2/   reports, drugs, reactions (canonical model),
                                              outcomes, therapies, indications, report_sources,
                                              quarantine, accounting.json
Each partition is replaced whole (pv.storage.replace_partition), so a rerun never leaves a mix.
Deduplication runs over the quarters staged together in one call: stage every quarter you want
counted in the same run, or older partitions keep versions a newer quarter supersedes.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pyarrow.parquet as pq

from extractors.faers_ascii.dedup import (
    DEDUP_STEPS,
    DEMO_KEY_COLUMNS,
    CaseFates,
    DedupResult,
    case_fates,
    dedup_quarter,
    deleted_caseids_of,
)
from extractors.faers_ascii.layout import TABLE_NAMES
from extractors.faers_ascii.normalize import (
    DEMO_COLUMNS,
    DRUG_COLUMNS,
    REAC_COLUMNS,
    SOURCE,
    FaersBatch,
    normalize_faers,
)
from extractors.faers_ascii.reader import (
    BadDates,
    RawQuarter,
    TableLoad,
    quarantine_frame,
    read_deleted_case_files,
    read_quarter,
)
from pv.settings import DEFAULT_DRUGS_FILE
from pv.storage import atomic_write_json, atomic_write_parquet, replace_partition

CANONICAL_TABLES = ("reports", "drugs", "reactions")
# Columns the canonical mapping reads (OUTC, RPSR, THER, INDI are staged whole).
PIPELINE_COLUMNS = {"DEMO": DEMO_COLUMNS, "DRUG": DRUG_COLUMNS, "REAC": REAC_COLUMNS}


def source_dir(data_dir: str | Path, stage: str, quarter: str, source: str = SOURCE) -> Path:
    return Path(data_dir) / stage / f"source={source}" / f"quarter={quarter}"


def drug_config_mapping(
    drugs_file: str | Path = DEFAULT_DRUGS_FILE, drug: str = "isotretinoin"
) -> dict[str, Any]:
    """The pv/drugs.yaml entry as the plain mapping normalize_drugs reads."""
    from extractors.openfda.query import read_drug_config

    return asdict(read_drug_config(Path(drugs_file), drug))


def fetch(location: str, dest_dir: str | Path, *, timeout: float = 600.0) -> Path:
    """A local path is returned as is; an http(s) URL is downloaded (streamed) into dest_dir once."""
    scheme = urlparse(location).scheme
    if scheme not in ("http", "https"):
        path = Path(location).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"{location} does not exist")
        return path.resolve()
    import requests

    dest = Path(dest_dir) / Path(urlparse(location).path).name
    if dest.exists() and dest.stat().st_size > 0:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", delete=False) as handle:
        tmp = Path(handle.name)
        try:
            with requests.get(location, stream=True, timeout=timeout) as response:
                response.raise_for_status()
                for chunk in response.iter_content(chunk_size=1 << 20):
                    handle.write(chunk)
        except BaseException:
            handle.close()
            tmp.unlink(missing_ok=True)
            raise
    tmp.replace(dest)
    return dest


# ---------------------------------------------------------------------------------------------- raw


def write_raw_quarter(quarter: RawQuarter, data_dir: str | Path) -> Path:
    final = source_dir(data_dir, "raw", quarter.quarter)
    with replace_partition(final) as scratch:
        for table, frame in quarter.tables.items():
            atomic_write_parquet(scratch / f"{table.lower()}.parquet", frame)
        atomic_write_parquet(scratch / "quarantine.parquet", quarter.quarantine)
        atomic_write_json(
            scratch / "load.json",
            {
                "quarter": quarter.quarter,
                "era": quarter.era,
                "source": quarter.source,
                "loads": {table: load.to_dict() for table, load in quarter.loads.items()},
                "deleted_caseids": quarter.deleted_caseids,
                "deleted_files": quarter.deleted_files,
            },
        )
    return final


def read_raw_quarter(
    raw_dir: str | Path, *, columns: Mapping[str, Sequence[str]] | None = None
) -> RawQuarter:
    """A raw partition back in memory; `columns` limits the columns read per table (others: all)."""
    raw_dir = Path(raw_dir)
    meta = json.loads((raw_dir / "load.json").read_text(encoding="utf-8"))
    tables = {}
    for table in TABLE_NAMES:
        path = raw_dir / f"{table.lower()}.parquet"
        wanted = (columns or {}).get(table)
        present = None if wanted is None else [c for c in wanted if c in pq.read_schema(path).names]
        tables[table] = pd.read_parquet(path, columns=present)
    return RawQuarter(
        quarter=meta["quarter"],
        era=meta["era"],
        source=meta["source"],
        tables=tables,
        loads={table: TableLoad(**load) for table, load in meta["loads"].items()},
        quarantine=pd.read_parquet(raw_dir / "quarantine.parquet"),
        deleted_caseids=list(meta["deleted_caseids"]),
        deleted_files=list(meta["deleted_files"]),
    )


def extract_quarter(location: str | Path, data_dir: str | Path, *, bad_dates: BadDates = "reject") -> str:
    """Fetch (if a URL) and read one quarterly release; returns its raw partition directory."""
    path = fetch(str(location), Path(data_dir) / "downloads" / f"source={SOURCE}")
    return str(write_raw_quarter(read_quarter(path, bad_dates=bad_dates), data_dir))


# ------------------------------------------------------------------------------------------- staged


def accounting(quarter: RawQuarter, result: DedupResult, batch: FaersBatch) -> dict[str, Any]:
    """Per table of one quarter: every data line is blank, quarantined, removed by one dedup step, or kept."""
    tables: dict[str, dict[str, int]] = {}
    kept = result.kept()
    for table in TABLE_NAMES:
        load = quarter.loads[table]
        row = {
            "data_lines": load.data_lines,
            "blank": load.blank,
            "quarantined": load.quarantined,
            "repaired": load.repaired,
            "loaded": load.loaded,
        }
        for step in DEDUP_STEPS:
            row[step] = result.removed[step][table]
        row["kept"] = kept[table]
        accounted = row["blank"] + row["quarantined"] + sum(row[s] for s in DEDUP_STEPS) + row["kept"]
        row["balanced"] = int(accounted == row["data_lines"])
        tables[table] = row
    return {"quarter": quarter.quarter, "tables": tables, "canonical": batch.stats}


def _stage_one(
    quarter: RawQuarter, fates: CaseFates, data_dir: str | Path, drug_config: Mapping[str, Any]
) -> str:
    """Apply the run's case fates to one quarter, map it, write its partition (its tables are consumed)."""
    result = dedup_quarter(quarter, fates)
    batch = normalize_faers(result, drug_config=drug_config, release_raw=True)
    summary = accounting(quarter, result, batch)
    final = source_dir(data_dir, "staged", quarter.quarter)
    with replace_partition(final) as scratch:
        for name in CANONICAL_TABLES:
            atomic_write_parquet(scratch / f"{name}.parquet", getattr(batch, name))
        for name, frame in batch.extras.items():
            atomic_write_parquet(scratch / f"{name}.parquet", frame)
        quarantine = pd.concat([quarter.quarantine, result.quarantine, batch.quarantine], ignore_index=True)
        atomic_write_parquet(scratch / "quarantine.parquet", quarantine_frame(quarantine))
        atomic_write_json(
            scratch / "accounting.json",
            {
                **summary,
                "deduplicated_with": list(fates.quarters),
                "deleted_caseids": fates.deleted_caseids,
                "loads": {t: load.to_dict() for t, load in quarter.loads.items()},
            },
        )
    return str(final)


def ingest(
    quarters: Sequence[RawQuarter],
    data_dir: str | Path,
    *,
    deleted_caseids: Iterable[int] = (),
    drug_config: Mapping[str, Any] | None = None,
) -> list[str]:
    """Deduplicate the quarters together and write one staged partition per quarter.

    The quarters' tables are consumed (emptied) as each partition is written.
    """
    labels = [q.quarter for q in quarters]
    if len(set(labels)) != len(labels):
        raise ValueError(f"quarter loaded twice: {sorted(labels)}")
    config = drug_config or drug_config_mapping()
    fates = case_fates(
        {q.quarter: q.tables["DEMO"] for q in quarters}, deleted_caseids_of(quarters, deleted_caseids)
    )
    return [_stage_one(q, fates, data_dir, config) for q in sorted(quarters, key=lambda q: q.quarter)]


def stage_quarters(
    raw_dirs: Sequence[str | Path],
    data_dir: str | Path,
    *,
    deleted_case_files: Sequence[str | Path] = (),
    drug_config: Mapping[str, Any] | None = None,
) -> list[str]:
    """DAG step: raw partitions -> staged partitions, deduplicated across all of them.

    Two passes keep memory at one quarter plus the DEMO keys of all: the case fates are decided
    from DEMO keys, then each quarter is loaded (only the columns the mapping needs), mapped and
    written in turn.
    """
    dirs = [Path(d) for d in raw_dirs]
    metas = {d: json.loads((d / "load.json").read_text(encoding="utf-8")) for d in dirs}
    labels = [m["quarter"] for m in metas.values()]
    if len(set(labels)) != len(labels):
        raise ValueError(f"quarter given twice: {sorted(labels)}")
    downloads = Path(data_dir) / "downloads" / f"source={SOURCE}"
    deleted = set(read_deleted_case_files([fetch(str(f), downloads) for f in deleted_case_files]))
    for meta in metas.values():
        deleted.update(meta["deleted_caseids"])
    demos = {}
    for d, meta in metas.items():
        path = d / "demo.parquet"
        names = pq.read_schema(path).names
        demos[meta["quarter"]] = pd.read_parquet(path, columns=[c for c in DEMO_KEY_COLUMNS if c in names])
    fates = case_fates(demos, deleted)
    del demos
    config = drug_config or drug_config_mapping()
    ordered = sorted(dirs, key=lambda d: metas[d]["quarter"])
    return [
        _stage_one(read_raw_quarter(d, columns=PIPELINE_COLUMNS), fates, data_dir, config) for d in ordered
    ]
