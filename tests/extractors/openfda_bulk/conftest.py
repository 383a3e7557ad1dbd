"""Fixtures for the openFDA bulk tests: real API records wrapped as a bulk partition."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from extractors.faers_ascii.stage import drug_config_mapping

PROJECT_ROOT = Path(__file__).resolve().parents[3]
REAL_RECORDS = PROJECT_ROOT / "tests" / "data" / "openfda" / "drug-event-limit100-results.json"
SAMPLE = PROJECT_ROOT / "sample" / "data" / "drug-event-0001-of-0001.json.zip"
META = {"disclaimer": "test wrapper", "last_updated": "2026-01-02", "results": {"skip": 0, "limit": 100}}


@pytest.fixture(scope="session")
def drug_config() -> dict[str, Any]:
    return drug_config_mapping()


@pytest.fixture(scope="session")
def real_records() -> list[dict[str, Any]]:
    """100 real reports of GET /drug/event.json?limit=100 (tests/data/openfda/PROVENANCE.md)."""
    return json.loads(REAL_RECORDS.read_text(encoding="utf-8"))


def write_bulk(
    path: Path, records: list[dict[str, Any]], meta: dict[str, Any] | None = META, *, indent=None
) -> Path:
    """Zip records as openFDA does: one member, {"meta": ..., "results": [...]}."""
    document = {"meta": meta, "results": records} if meta is not None else {"results": records}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.name.removesuffix(".zip"), json.dumps(document, indent=indent))
    return path


@pytest.fixture
def real_bulk(tmp_path, real_records) -> Path:
    quarter_dir = tmp_path / "2014q1"
    quarter_dir.mkdir()
    return write_bulk(quarter_dir / "drug-event-0001-of-0001.json.zip", real_records, indent=1)
