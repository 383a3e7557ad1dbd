"""Fixtures for normalization tests: the real openFDA sample and the watched drug's config."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DATA = PROJECT_ROOT / "tests" / "data" / "normalization"


@pytest.fixture(scope="session")
def drug_config() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "pv" / "drugs.yaml").read_text())["drugs"]["isotretinoin"]


@pytest.fixture(scope="session")
def _real_records() -> list[dict[str, Any]]:
    return json.loads((DATA / "drug-event-limit100-results.json").read_text())


@pytest.fixture
def real_records(_real_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(_real_records)
