"""Fixtures over the tiny known world of tests/data/report/fixtures.py (shared by claims, report, publish)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_FIXTURES = Path(__file__).resolve().parents[1] / "data" / "report" / "fixtures.py"


def _load_world() -> Any:
    """The fixture module, loaded once per session whichever test directory asks first."""
    name = "pv_report_world"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _FIXTURES)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def world() -> Any:
    return _load_world()


@pytest.fixture(scope="session")
def world_runs(world: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Stage runs on the fixture world (cached across test directories: publishing runs GX)."""
    return world.world_runs(tmp_path_factory.getbasetemp() / "report-world")
