"""openFDA bulk partitions -> staged canonical tables, streamed in chunks with bounded memory.

The records are exactly the API's, so they go through the same normalizer
(normalization.openfda.normalize_openfda_reports) with source 'openfda_bulk', `chunk_records` at a
time; each chunk's tables are appended to Parquet files as row groups, so neither the JSON nor the
tables are ever held whole. Layout:
  staged/source=openfda_bulk/quarter=2004Q1/part=0001-of-0003/{reports,drugs,reactions,quarantine}.parquet
                                                              stats.json
The normalizer deduplicates versions within a chunk. openFDA publishes one version per
safetyreportid, so repeats across chunks are not expected; they are counted in stats.json
(`repeated_ids_across_chunks`) rather than silently merged.
"""

from __future__ import annotations

import gc
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from extractors.openfda_bulk.manifest import Partition
from extractors.openfda_bulk.stream import BulkFile
from normalization import model
from pv.storage import atomic_write_json, replace_partition

SOURCE = "openfda_bulk"
TABLES = ("reports", "drugs", "reactions", "quarantine")
_QUARTER_DIR = re.compile(r"(?P<year>(?:19|20)\d{2})q(?P<q>[1-4])", re.IGNORECASE)
_PART = re.compile(r"(\d{4}-of-\d{4})")

Normalizer = Callable[..., Any]


def staged_dir(data_dir: str | Path, quarter: str, part: str) -> Path:
    return Path(data_dir) / "staged" / f"source={SOURCE}" / f"quarter={quarter}" / f"part={part}"


def _labels(path: Path) -> tuple[str, str]:
    """('2004Q1', '0001-of-0003') from .../2004q1/drug-event-0001-of-0003.json.zip, else 'unknown'."""
    quarter = next(
        (
            f"{m['year']}Q{m['q']}"
            for text in (path.parent.name, path.name)
            if (m := _QUARTER_DIR.search(text))
        ),
        "unknown",
    )
    part = _PART.search(path.name)
    return quarter, part.group(1) if part else path.name.split(".")[0]


class _TableWriter:
    """Append DataFrames with one schema to a Parquet file as row groups."""

    def __init__(self, path: Path, columns: dict[str, str]) -> None:
        self.path = path
        self.schema = pa.Schema.from_pandas(model.conform(pd.DataFrame(), columns), preserve_index=False)
        self.writer = pq.ParquetWriter(path, self.schema)
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        self.writer.write_table(table)
        self.rows += len(frame)

    def close(self) -> None:
        self.writer.close()


def _chunks(records: Iterable[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    """Lists of `size` records. The cyclic GC is paused while a chunk is decoded: JSON records hold
    no cycles, and with a chunk of live dicts around, collections triggered by the decoder's
    allocations otherwise cost more than the decoding itself."""
    iterator = iter(records)
    while True:
        enabled = gc.isenabled()
        gc.disable()
        try:
            chunk = list(itertools.islice(iterator, size))
        finally:
            if enabled:
                gc.enable()
        if not chunk:
            return
        yield chunk


def stage_bulk_file(
    path: str | Path,
    data_dir: str | Path,
    *,
    drug_config: Mapping[str, Any],
    quarter: str | None = None,
    part: str | None = None,
    data_version: str | None = None,
    chunk_records: int = 5_000,
    normalizer: Normalizer | None = None,
) -> str:
    """Stream one partition through the normalizer into its staged directory; returns the directory.

    data_version is the file's meta.last_updated (as on the API path); `data_version` is used only
    when the file has none (e.g. the manifest's export_date).
    """
    if normalizer is None:
        from normalization.openfda import normalize_openfda_reports as normalizer
    path = Path(path)
    found_quarter, found_part = _labels(path)
    final = staged_dir(data_dir, quarter or found_quarter, part or found_part)
    bulk = BulkFile(path)
    totals: dict[str, int] = {}
    seen: set[str] = set()
    repeated = chunks = 0
    version: str | None = None
    with replace_partition(final) as scratch:
        writers = {
            name: _TableWriter(scratch / f"{name}.parquet", model.TABLES.get(name, model.QUARANTINE_COLUMNS))
            for name in TABLES
        }
        try:
            for chunk in _chunks(bulk, chunk_records):
                version = version or bulk.last_updated or data_version or "unknown"
                batch = normalizer(chunk, source=SOURCE, data_version=version, drug_config=drug_config)
                chunks += 1
                for name in TABLES:
                    writers[name].write(getattr(batch, name))
                ids = batch.reports["safetyreportid"].dropna().tolist()
                repeated += sum(1 for i in ids if i in seen)
                seen.update(ids)
                for key, value in (batch.stats or {}).items():
                    if isinstance(value, int | float):
                        totals[key] = totals.get(key, 0) + int(value)
        finally:
            for writer in writers.values():
                writer.close()
        atomic_write_json(
            scratch / "stats.json",
            {
                "source": SOURCE,
                "file": str(path),
                "data_version": version or bulk.last_updated or data_version or "unknown",
                "records_read": bulk.records_read,
                "chunks": chunks,
                "chunk_records": chunk_records,
                "rows": {name: writers[name].rows for name in TABLES},
                "repeated_ids_across_chunks": repeated,
                "normalizer": totals,
            },
        )
    return str(final)


def stage_partition(
    partition: Partition,
    data_dir: str | Path,
    *,
    drug_config: Mapping[str, Any],
    export_date: str | None = None,
    chunk_records: int = 5_000,
) -> str:
    """Fetch (when the manifest gives a URL) and stage one manifest partition."""
    from extractors.faers_ascii.stage import fetch

    dest = Path(data_dir) / "downloads" / f"source={SOURCE}" / (partition.quarter or "unknown")
    local = fetch(partition.file, dest)
    return stage_bulk_file(
        local,
        data_dir,
        drug_config=drug_config,
        quarter=partition.quarter or "unknown",
        part=partition.part,
        data_version=export_date,
        chunk_records=chunk_records,
    )


def plan_partitions(
    manifest: str | Path | None, quarters: Iterable[str] = (), files: Iterable[str | Path] = ()
) -> list[dict[str, Any]]:
    """The partitions a run stages, as plain dicts (XCom-friendly): the manifest's partitions of
    `quarters` (none when `quarters` is empty, so nobody downloads all of openFDA by accident) plus
    bulk files given directly."""
    from dataclasses import asdict

    from extractors.openfda_bulk.manifest import read_manifest

    planned: list[dict[str, Any]] = []
    wanted = [q for q in quarters if q]
    if manifest and wanted:
        parsed = read_manifest(manifest)
        selected = parsed.select(wanted)
        missing = sorted({q.upper() for q in wanted} - {p.quarter for p in selected})
        if missing:
            raise ValueError(f"manifest {manifest} has no drug/event partitions for {missing}")
        planned += [{**asdict(p), "export_date": parsed.export_date} for p in selected]
    for file in files:
        quarter, part = _labels(Path(file))
        planned.append({"file": str(file), "display_name": Path(file).name, "size_mb": None, "records": None,
                        "quarter": quarter, "part": part, "export_date": None})  # fmt: skip
    return planned


def stage_planned(planned: Mapping[str, Any], data_dir: str | Path, *, drug_config: Mapping[str, Any]) -> str:
    """DAG step: stage one entry of `plan_partitions`."""
    fields = {k: planned[k] for k in ("file", "display_name", "size_mb", "records", "quarter", "part")}
    return stage_partition(
        Partition(**fields), data_dir, drug_config=drug_config, export_date=planned.get("export_date")
    )
