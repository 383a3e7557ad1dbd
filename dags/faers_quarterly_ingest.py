"""
### FAERS quarterly files and openFDA bulk downloads -> staged canonical tables

Triggered by hand (FDA publishes each quarter a few months after it ends) with the files to load:

- **faers_quarters**: FAERS/AERS quarterly ASCII zips, local paths or URLs such as
  `https://fis.fda.gov/content/Exports/faers_ascii_2024q1.zip` (downloaded once, with requests,
  only when a URL is given). Each is read by its own mapped task into
  `raw/source=faers_ascii/quarter=YYYYQn/`; then all of them are deduplicated **together** (latest
  caseversion per caseid, FDA's deleted cases removed) and written to
  `staged/source=faers_ascii/quarter=YYYYQn/` with an `accounting.json` that adds up every line.
- **deleted_case_files**: extra FDA deleted-cases lists (those inside the zips are always used).
- **openfda_manifest** + **openfda_quarters**: openFDA bulk drug/event partitions of those quarters
  (`https://api.fda.gov/download.json` or a local copy); **openfda_files**: bulk zips given directly.
  Each is streamed into `staged/source=openfda_bulk/quarter=YYYYQn/part=NNNN-of-NNNN/`.
- **background_counts**: also write `staged/background/drug_event_counts.csv`, drug x PT report
  counts over every drug in the partitions staged by this run (the `pv signals --counts` format,
  for EBGM's prior).

Every task is one call into `extractors.faers_ascii` / `extractors.openfda_bulk`; tasks pass paths.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task

STAGED_QUARTERS = Asset("pv_staged_quarters")


def _data_dir(params: dict | None) -> str:
    from pv.settings import load_settings

    given = (params or {}).get("data_dir")
    return str(given) if given else str(load_settings().data_dir)


def _paths(values) -> list[str]:
    """Mapped tasks' outputs as a list (indexing by len() avoids probing past the end of the XComs)."""
    if not values:
        return []
    return [str(values[i]) for i in range(len(values)) if values[i]]


def _drug_config(params: dict | None) -> dict:
    from extractors.faers_ascii.stage import drug_config_mapping
    from pv.settings import load_settings

    return drug_config_mapping(load_settings().drugs_file, (params or {}).get("drug") or "isotretinoin")


@dag(
    dag_id="faers_quarterly_ingest",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["pharmacovigilance", "faers", "openfda", "ingest"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
    params={
        "faers_quarters": Param(
            [],
            type="array",
            items={"type": "string"},
            description="FAERS/AERS quarterly ASCII zips (paths or URLs)",
        ),
        "deleted_case_files": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Extra FDA deleted-cases files (paths or URLs)",
        ),
        "openfda_manifest": Param(
            None, type=["null", "string"], description="openFDA download.json (path or URL)"
        ),
        "openfda_quarters": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Bulk drug/event quarters to stage from the manifest, e.g. 2004Q1",
        ),
        "openfda_files": Param(
            [],
            type="array",
            items={"type": "string"},
            description="openFDA bulk drug-event-*.json.zip files (paths or URLs)",
        ),
        "background_counts": Param(True, type="boolean", description="Write drug x PT background counts"),
        "bad_dates": Param(
            "reject",
            type="string",
            enum=["reject", "null"],
            description="A FAERS line with an impossible date: quarantine it, or null the date",
        ),
        "drug": Param("isotretinoin", type="string", description="Watched drug (an entry of pv/drugs.yaml)"),
        "data_dir": Param(None, type=["null", "string"], description="Override PV_DATA_DIR"),
    },  # fmt: skip
)
def faers_quarterly_ingest():
    @task
    def faers_locations(params=None) -> list[str]:
        return list((params or {}).get("faers_quarters") or [])

    @task(max_active_tis_per_dagrun=2)
    def extract_faers_quarter(location: str, params=None) -> str:
        from extractors.faers_ascii.stage import extract_quarter

        return extract_quarter(
            location, _data_dir(params), bad_dates=(params or {}).get("bad_dates") or "reject"
        )

    @task(trigger_rule="none_failed")
    def stage_faers(raw_dirs: list[str] | None, params=None) -> list[str]:
        from extractors.faers_ascii.stage import stage_quarters

        raw = _paths(raw_dirs)
        if not raw:
            return []
        return stage_quarters(
            raw, _data_dir(params), deleted_case_files=list((params or {}).get("deleted_case_files") or []),
            drug_config=_drug_config(params),
        )  # fmt: skip

    @task
    def bulk_partitions(params=None) -> list[dict]:
        from extractors.openfda_bulk.stage import plan_partitions

        params = params or {}
        return plan_partitions(params.get("openfda_manifest"), params.get("openfda_quarters") or [],
                               params.get("openfda_files") or [])  # fmt: skip

    @task(max_active_tis_per_dagrun=2)
    def stage_bulk_partition(partition: dict, params=None) -> str:
        from extractors.openfda_bulk.stage import stage_planned

        return stage_planned(partition, _data_dir(params), drug_config=_drug_config(params))

    @task(trigger_rule="none_failed", outlets=[STAGED_QUARTERS])
    def background_counts(faers_dirs: list[str] | None, bulk_dirs: list[str] | None, params=None) -> dict:
        from pathlib import Path

        from extractors.faers_ascii.background import write_background_counts

        staged = [*_paths(faers_dirs), *_paths(bulk_dirs)]
        result: dict = {"staged": staged, "counts_csv": None}
        if staged and (params or {}).get("background_counts", True):
            out = Path(_data_dir(params)) / "staged" / "background" / "drug_event_counts.csv"
            result["counts_csv"] = str(write_background_counts(staged, out))
        return result

    raw_dirs = extract_faers_quarter.expand(location=faers_locations())
    faers_dirs = stage_faers(raw_dirs)
    bulk_dirs = stage_bulk_partition.expand(partition=bulk_partitions())
    background_counts(faers_dirs, bulk_dirs)


faers_quarterly_ingest()
