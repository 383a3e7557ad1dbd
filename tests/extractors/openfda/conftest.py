"""Fixtures for the openFDA extractor: the 100 real reports as a bulk file, settings, a drugs file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pv.settings import DEFAULT_DRUGS_FILE, Settings

DATA = Path(__file__).resolve().parents[2] / "data" / "openfda"
REAL_100 = DATA / "drug-event-limit100-results.json"
TEST_LAST_UPDATED = "2026-01-02"

DRUGS_YAML = """\
version: 1
drugs:
  ambrisentan:
    active_substance: AMBRISENTAN
    generic_names: [AMBRISENTAN]
    product_names: [LETAIRIS]
  prednisone:
    active_substance: PREDNISONE
    generic_names: [PREDNISONE]
    product_names: [PREDNISONE, DELTASONE]
"""


def write_bulk_zip(path: Path, reports: list[dict], last_updated: str = TEST_LAST_UPDATED) -> Path:
    """An openFDA bulk partition: a zip holding one {"meta", "results"} JSON document."""
    document = {
        "meta": {
            "disclaimer": "test data",
            "terms": "https://open.fda.gov/terms/",
            "license": "https://open.fda.gov/license/",
            "last_updated": last_updated,
            "results": {"skip": 0, "limit": len(reports), "total": len(reports)},
        },
        "results": reports,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(path.name.removesuffix(".zip"), json.dumps(document))
    return path


@pytest.fixture(scope="session")
def real_reports() -> list[dict]:
    return json.loads(REAL_100.read_text(encoding="utf-8"))


@pytest.fixture
def real_bulk(tmp_path: Path, real_reports: list[dict]) -> Path:
    return write_bulk_zip(tmp_path / "sample" / "drug-event-0001-of-0001.json.zip", real_reports)


@pytest.fixture
def test_drugs_file(tmp_path: Path) -> Path:
    path = tmp_path / "drugs.yaml"
    path.write_text(DRUGS_YAML, encoding="utf-8")
    return path


@pytest.fixture
def offline_settings(tmp_path: Path, real_bulk: Path, test_drugs_file: Path) -> Settings:
    """Offline source over the 100 real reports, watching ambrisentan (61 of them)."""
    return Settings(
        data_dir=tmp_path / "var",
        source="sample",
        sample_path=real_bulk,
        drug="ambrisentan",
        drugs_file=test_drugs_file,
    )


@pytest.fixture
def isotretinoin_drugs_file() -> Path:
    return DEFAULT_DRUGS_FILE
