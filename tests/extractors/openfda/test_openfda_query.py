"""Search strings: the drug under all its names, and windows that tile the calendar."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from extractors.openfda.query import (
    drug_search,
    load_drug_config,
    read_drug_config,
    received_before,
    receivedate_window,
    window_days,
)
from pv.settings import DEFAULT_DRUGS_FILE, Settings

VARIANTS = Path(__file__).resolve().parents[2] / "data" / "openfda" / "isotretinoin_medicinalproduct_variants.csv"


def test_weekly_interval_maps_to_monday_through_sunday():
    start = datetime(2024, 1, 1, 6, tzinfo=UTC)  # Monday 06:00
    end = start + timedelta(days=7)
    assert receivedate_window(start, end) == "receivedate:[20240101 TO 20240107]"


def test_consecutive_windows_tile_without_overlap():
    start = datetime(2023, 12, 25, 6, tzinfo=UTC)
    days: list = []
    for _ in range(10):
        end = start + timedelta(days=7)
        first, last = window_days(start, end)
        days += [first + timedelta(days=i) for i in range((last - first).days + 1)]
        start = end
    assert len(days) == len(set(days)) == 70
    assert all(b - a == timedelta(days=1) for a, b in zip(days, days[1:], strict=False))


def test_aware_datetimes_are_taken_in_utc():
    from zoneinfo import ZoneInfo

    start = datetime(2024, 1, 1, 1, tzinfo=ZoneInfo("America/New_York"))  # 06:00 UTC
    assert receivedate_window(start, start + timedelta(days=7)) == "receivedate:[20240101 TO 20240107]"


def test_interval_shorter_than_a_day_is_refused():
    with pytest.raises(ValueError, match="covers no whole receivedate day"):
        receivedate_window(datetime(2024, 1, 1, 6), datetime(2024, 1, 1, 12))


def test_received_before_ends_the_day_before_end():
    assert received_before(datetime(2024, 1, 8, 6, tzinfo=UTC)) == "receivedate:[19000101 TO 20240107]"


def test_drug_search_names_every_field_and_variant():
    config = load_drug_config(Settings())
    search = drug_search(config)
    assert 'patient.drug.openfda.generic_name.exact:"ISOTRETINOIN"' in search
    assert 'patient.drug.activesubstance.activesubstancename.exact:"ISOTRETINOIN"' in search
    with VARIANTS.open(encoding="utf-8") as handle:
        variants = [row["medicinalproduct"] for row in csv.DictReader(handle)]
    assert len(variants) == 42
    for name in variants:
        assert f'patient.drug.medicinalproduct.exact:"{name}"' in search, name
    assert search.startswith("(") and search.endswith(")") and search.count(" OR ") == len(config.product_names) + 1


def test_unknown_drug_names_the_file(tmp_path):
    with pytest.raises(KeyError, match="drug 'nope' is not configured"):
        read_drug_config(DEFAULT_DRUGS_FILE, "nope")


def test_names_the_server_cannot_search_are_refused(tmp_path):
    path = tmp_path / "drugs.yaml"
    path.write_text('drugs:\n  x:\n    active_substance: X\n    product_names: ["X*"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="'X\\*' contains characters"):
        drug_search(read_drug_config(path, "x"))
