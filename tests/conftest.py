"""Test-wide setup: a throw-away Airflow home (SQLite) so tests never touch the developer's .airflow/."""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="pv-airflow-home-"))

# Must be set before anything imports airflow.
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
os.environ["GX_ANALYTICS_ENABLED"] = "False"
os.environ.pop("OPENFDA_API_KEY", None)
os.environ.pop("PV_SOURCE", None)
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the test metadata DB once per session and create the openFDA pool."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    subprocess.run(
        [str(airflow), "pools", "set", "openfda_api", "4", "openFDA API requests"], check=True, capture_output=True
    )
    return _AIRFLOW_HOME


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh PV_DATA_DIR for the test (the settings are read from the environment at task run time)."""
    target = tmp_path / "var"
    monkeypatch.setenv("PV_DATA_DIR", str(target))
    return target


_REPORT_WORLD = PROJECT_ROOT / "tests" / "data" / "report" / "fixtures.py"


@pytest.fixture(scope="session")
def world() -> Any:
    """The tiny known world of tests/data/report/fixtures.py (claims, report and publish tests)."""
    name = "pv_report_world"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _REPORT_WORLD)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def world_runs(world: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Stage runs on the fixture world, once per session (publishing runs GX)."""
    return world.world_runs(tmp_path_factory.getbasetemp() / "report-world")
