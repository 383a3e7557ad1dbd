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

from extractors.faers_ascii.dedup import DEDUP_STEPS, DedupResult, deduplicate
from extractors.faers_ascii.layout import TABLE_NAMES
from extractors.faers_ascii.normalize import SOURCE, FaersBatch, normalize_faers
from extractors.faers_ascii.reader import (
    BadDates,
    RawQuarter,
    TableLoad,
    read_deleted_case_files,
    read_quarter,
)
from pv.settings import DEFAULT_DRUGS_FILE
from pv.storage import atomic_write_json, atomic_write_parquet, replace_partition

CANONICAL_TABLES = ("reports", "drugs", "reactions")


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


def read_raw_quarter(raw_dir: str | Path) -> RawQuarter:
    raw_dir = Path(raw_dir)
    meta = json.loads((raw_dir / "load.json").read_text(encoding="utf-8"))
    return RawQuarter(
        quarter=meta["quarter"],
        era=meta["era"],
        source=meta["source"],
        tables={table: pd.read_parquet(raw_dir / f"{table.lower()}.parquet") for table in TABLE_NAMES},
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


def accounting(quarters: Sequence[RawQuarter], result: DedupResult, batch: FaersBatch) -> dict[str, Any]:
    """Per table: every data line is blank, quarantined, removed by one dedup step, or kept."""
    tables: dict[str, dict[str, int]] = {}
    for table in TABLE_NAMES:
        loads = [q.loads[table] for q in quarters]
        row = {
            "data_lines": sum(load.data_lines for load in loads),
            "blank": sum(load.blank for load in loads),
            "quarantined": sum(load.quarantined for load in loads),
            "repaired": sum(load.repaired for load in loads),
            "loaded": sum(load.loaded for load in loads),
        }
        for step in DEDUP_STEPS:
            row[step] = result.removed[step][table]
        row["kept"] = result.kept()[table]
        accounted = row["blank"] + row["quarantined"] + sum(row[s] for s in DEDUP_STEPS) + row["kept"]
        row["balanced"] = int(accounted == row["data_lines"])
        tables[table] = row
    return {
        "quarters": [q.quarter for q in quarters],
        "deleted_caseids": result.deleted_caseids,
        "tables": tables,
        "canonical": batch.stats,
    }


def ingest(
    quarters: Sequence[RawQuarter],
    data_dir: str | Path,
    *,
    deleted_caseids: Iterable[int] = (),
    drug_config: Mapping[str, Any] | None = None,
) -> list[str]:
    """Deduplicate and normalize the quarters together; write one staged partition per quarter."""
    result = deduplicate(quarters, deleted_caseids)
    files = {(q.quarter, table): load.source_file for q in quarters for table, load in q.loads.items()}
    batch = normalize_faers(
        result, drug_config=drug_config or drug_config_mapping(), source_files=files, release_raw=True
    )
    summary = accounting(quarters, result, batch)

    ids_by_quarter = {
        q.quarter: pd.Index(batch.reports.loc[batch.reports["data_version"] == q.quarter, "safetyreportid"])
        for q in quarters
    }
    quarter_of_file = {source_file: q for (q, _), source_file in files.items()}
    quarantine = pd.concat(
        [*(q.quarantine for q in quarters), result.quarantine, batch.quarantine], ignore_index=True
    )
    quarantine_quarter = quarantine["source_file"].map(quarter_of_file)
    out: list[str] = []
    for q in quarters:
        final = source_dir(data_dir, "staged", q.quarter)
        with replace_partition(final) as scratch:
            for name in CANONICAL_TABLES:
                frame = getattr(batch, name)
                part = frame[frame["safetyreportid"].isin(ids_by_quarter[q.quarter])].reset_index(drop=True)
                atomic_write_parquet(scratch / f"{name}.parquet", part)
            for name, frame in batch.extras.items():
                part = frame[frame["quarter"] == q.quarter].reset_index(drop=True)
                atomic_write_parquet(scratch / f"{name}.parquet", part)
            atomic_write_parquet(
                scratch / "quarantine.parquet",
                quarantine[quarantine_quarter == q.quarter].reset_index(drop=True),
            )
            atomic_write_json(
                scratch / "accounting.json",
                {
                    **summary,
                    "quarter": q.quarter,
                    "loads": {t: load.to_dict() for t, load in q.loads.items()},
                },
            )
        out.append(str(final))
    return out


def stage_quarters(
    raw_dirs: Sequence[str | Path],
    data_dir: str | Path,
    *,
    deleted_case_files: Sequence[str | Path] = (),
    drug_config: Mapping[str, Any] | None = None,
) -> list[str]:
    """DAG step: raw partitions -> staged partitions (dedup across all of them)."""
    quarters = [read_raw_quarter(d) for d in raw_dirs]
    downloads = Path(data_dir) / "downloads" / f"source={SOURCE}"
    deleted = read_deleted_case_files([fetch(str(f), downloads) for f in deleted_case_files])
    return ingest(quarters, data_dir, deleted_caseids=deleted, drug_config=drug_config)
