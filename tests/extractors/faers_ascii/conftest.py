"""Fixtures for the FAERS quarterly ASCII tests."""

from __future__ import annotations

from typing import Any

import pytest

from extractors.faers_ascii.stage import drug_config_mapping


@pytest.fixture(scope="session")
def drug_config() -> dict[str, Any]:
    """The watched drug's entry of pv/drugs.yaml, as normalize_drugs reads it."""
    return drug_config_mapping()
