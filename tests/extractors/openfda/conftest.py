"""Fixtures for the openFDA extractor: the 100 real reports as a bulk file, settings, a drugs file."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

# tests/conftest.py puts tests/ on sys.path, where tests/extractors/ (no __init__) would be imported as a
# namespace package `extractors` ahead of the editable install's finder under a bare `pytest`. Put the
# project first and drop any such shadow so `extractors.openfda` is the real package.
_PROJECT = str(Path(__file__).resolve().parents[3])
if _PROJECT not in sys.path[:1]:
    sys.path.insert(0, _PROJECT)
if getattr(sys.modules.get("extractors"), "__file__", "") is None:
    for _name in [m for m in sys.modules if m == "extractors" or m.startswith("extractors.")]:
        del sys.modules[_name]

from pv.settings import DEFAULT_DRUGS_FILE, Settings  # noqa: E402

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


# ---------------------------------------------------------------------------------------------
# Live-path fixtures: a real HTTP server on 127.0.0.1 and fast retry settings


@pytest.fixture
def fast_retry():
    from extractors.openfda.client import RetryPolicy

    return RetryPolicy(max_attempts=8, base_delay=0.005, max_delay=0.05, timeout=2.0)


@pytest.fixture
def serve():
    """serve(engine, faults=None) -> a started OpenFDATestServer, stopped at teardown."""
    from extractors.openfda.testserver import OpenFDATestServer

    servers = []

    def start(engine, faults=None):
        server = OpenFDATestServer(engine, faults).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def week_engine():
    """4,500 isotretinoin reports in the week of Mon 2024-01-01 plus 1,000 that must not match."""
    from datetime import date

    from extractors.openfda.engine import Engine
    from extractors.openfda.synthetic import synthetic_reports

    return Engine(synthetic_reports(4_500, date(2024, 1, 1), n_background=1_000, seed=3), TEST_LAST_UPDATED)


@pytest.fixture(autouse=True)
def no_ambient_api_key(monkeypatch):
    """Tests decide the key themselves: none from the environment or an Airflow imported elsewhere."""
    monkeypatch.delenv("OPENFDA_API_KEY", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_OPENFDA_DEFAULT", raising=False)
    monkeypatch.setattr("extractors.openfda.client._airflow_api_key", lambda: None)
