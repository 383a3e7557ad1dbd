"""Bulk partitions land in the canonical tables exactly as the API path's records do."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from conftest import write_bulk

from extractors.faers_ascii.background import background_counts, write_background_counts
from extractors.faers_ascii.stage import extract_quarter, stage_quarters
from extractors.openfda_bulk.manifest import Partition
from extractors.openfda_bulk.stage import stage_bulk_file, stage_partition
from normalization import model
from normalization.openfda import normalize_openfda_reports

FAERS_2017Q2 = Path(__file__).resolve().parents[2] / "data" / "faers_ascii" / "faers_ascii_2017q2.zip"


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_chunked_bulk_equals_the_api_path(real_bulk, real_records, drug_config, tmp_path):
    out = Path(stage_bulk_file(real_bulk, tmp_path / "var", drug_config=drug_config, chunk_records=7))
    assert out == tmp_path / "var" / "staged" / "source=openfda_bulk" / "quarter=2014Q1" / "part=0001-of-0001"
    api = normalize_openfda_reports(
        real_records, source="openfda_bulk", data_version="2026-01-02", drug_config=drug_config
    )
    keys = {"reports": ["safetyreportid"], "drugs": ["safetyreportid", "drug_seq"],
            "reactions": ["safetyreportid", "reaction_seq"]}  # fmt: skip
    for name, columns in model.TABLES.items():
        staged = model.conform(pd.read_parquet(out / f"{name}.parquet"), columns)
        pd.testing.assert_frame_equal(_sorted(staged, keys[name]), _sorted(getattr(api, name), keys[name]))
    stats = json.loads((out / "stats.json").read_text())
    assert stats["records_read"] == 100 and stats["chunks"] == 15
    assert stats["data_version"] == "2026-01-02"  # the file's meta.last_updated
    assert stats["rows"]["reports"] == len(api.reports) and stats["repeated_ids_across_chunks"] == 0
    reports = pd.read_parquet(out / "reports.parquet")
    assert set(reports["source"]) == {"openfda_bulk"}


def test_manifest_partition_with_local_file_and_fallback_version(tmp_path, real_records, drug_config):
    path = write_bulk(tmp_path / "drug-event-0002-of-0003.json.zip", real_records[:10], meta=None)
    partition = Partition(file=str(path), display_name="2004 Q1 (part 2 of 3)", size_mb=None, records=10,
                          quarter="2004Q1", part="0002-of-0003")  # fmt: skip
    out = Path(
        stage_partition(partition, tmp_path / "var", drug_config=drug_config, export_date="2024-07-26")
    )
    assert out.parts[-2:] == ("quarter=2004Q1", "part=0002-of-0003")
    assert json.loads((out / "stats.json").read_text())["data_version"] == "2024-07-26"
    assert set(pd.read_parquet(out / "reports.parquet")["data_version"]) == {"2024-07-26"}


def test_all_sources_share_one_model_and_one_background(real_bulk, drug_config, tmp_path):
    bulk_dir = stage_bulk_file(real_bulk, tmp_path, drug_config=drug_config)
    faers_dirs = stage_quarters([extract_quarter(FAERS_2017Q2, tmp_path)], tmp_path)
    frames = {d: pd.read_parquet(Path(d) / "reports.parquet") for d in [bulk_dir, *faers_dirs]}
    assert all(list(f.columns) == list(model.REPORT_COLUMNS) for f in frames.values())
    out = write_background_counts([bulk_dir, *faers_dirs], tmp_path / "background.csv")
    counts = pd.read_csv(out)
    assert counts["total"].iat[0] == 100 + 100  # reports of both sources with a drug and a PT
    drugs = pd.concat([pd.read_parquet(Path(d) / "drugs.parquet") for d in [bulk_dir, *faers_dirs]])
    reactions = pd.concat([pd.read_parquet(Path(d) / "reactions.parquet") for d in [bulk_dir, *faers_dirs]])
    in_memory = background_counts(drugs, reactions)
    pd.testing.assert_frame_equal(counts, in_memory, check_dtype=False)
