"""The two real FAERS/AERS sample quarters load with every line accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from extractors.faers_ascii.background import background_counts, write_background_counts
from extractors.faers_ascii.dedup import DEDUP_STEPS, deduplicate
from extractors.faers_ascii.normalize import normalize_faers
from extractors.faers_ascii.reader import read_quarter
from extractors.faers_ascii.stage import extract_quarter, stage_quarters
from normalization import model

DATA = Path(__file__).resolve().parents[2] / "data" / "faers_ascii"
AERS_2004Q1 = DATA / "aers_ascii_2004q1.zip"
FAERS_2017Q2 = DATA / "faers_ascii_2017q2.zip"

LINES = {
    "2004Q1": {"DEMO": 100, "DRUG": 386, "REAC": 416, "OUTC": 93, "RPSR": 119, "THER": 145, "INDI": 124},
    "2017Q2": {"DEMO": 100, "DRUG": 328, "REAC": 286, "OUTC": 75, "RPSR": 2, "THER": 142, "INDI": 232},
}


@pytest.fixture(scope="module")
def quarters():
    return [read_quarter(AERS_2004Q1), read_quarter(FAERS_2017Q2)]


@pytest.fixture(scope="module")
def batch(quarters, drug_config):
    result = deduplicate(quarters)
    return result, normalize_faers(result, drug_config=drug_config)


def test_quarters_and_eras_are_recognised(quarters):
    legacy, current = quarters
    assert (legacy.quarter, legacy.era) == ("2004Q1", "aers")
    assert (current.quarter, current.era) == ("2017Q2", "faers")
    assert "caseversion" not in legacy.tables["DEMO"].columns
    assert current.tables["DEMO"]["caseversion"].dtype == "Int64"
    # legacy lines end in an extra empty field (named v3, v23, ... by the re-serialization)
    assert legacy.loads["DEMO"].trailing_separator and not current.loads["DEMO"].trailing_separator
    assert list(legacy.tables["REAC"].columns) == ["line_number", "primaryid", "pt"]


def test_every_line_is_loaded(quarters):
    for quarter in quarters:
        for table, expected in LINES[quarter.quarter].items():
            load = quarter.loads[table]
            assert (load.data_lines, load.loaded, load.quarantined, load.blank) == (expected, expected, 0, 0)
        assert quarter.quarantine.empty


def test_dedup_and_mapping_account_for_every_row(batch):
    result, normalized = batch
    assert all(count == 0 for step in DEDUP_STEPS for count in result.removed[step].values())
    assert result.kept() == {t: LINES["2004Q1"][t] + LINES["2017Q2"][t] for t in LINES["2004Q1"]}
    assert (len(normalized.reports), len(normalized.drugs), len(normalized.reactions)) == (200, 714, 702)
    assert normalized.quarantine.empty
    assert normalized.reports["safetyreportid"].is_unique
    for name, columns in model.TABLES.items():
        frame = getattr(normalized, name)
        assert list(frame.columns) == list(columns)
        pd.testing.assert_frame_equal(frame, model.conform(frame, columns))
    assert set(normalized.reports["data_version"]) == {"2004Q1", "2017Q2"}
    assert set(normalized.reports["source"]) == {"faers_ascii"}


def test_isr_4311749_is_accutane_primary_suspect_with_three_reactions(batch):
    _, normalized = batch
    report = normalized.reports.set_index("safetyreportid").loc["4311749"]
    assert report["caseid"] == "4103026"
    assert pd.isna(report["safetyreportversion"])
    assert report["event_date"] == pd.Timestamp("1994-10-01") and report["event_date_precision"] == "day"
    assert report["receiptdate"] == pd.Timestamp("2004-03-04")
    assert (report["patientsex"], report["age_years"], report["age_group"]) == (1, 16.0, "12-17")
    assert report["weight_kg"] == pytest.approx(200 * 0.45359237)
    assert report["serious"] == 1  # one OUTC row (OT)

    drugs = normalized.drugs[normalized.drugs["safetyreportid"] == "4311749"]
    assert len(drugs) == 1
    accutane = drugs.iloc[0]
    assert accutane["medicinalproduct"] == "ACCUTANE"
    assert (accutane["role"], accutane["drugcharacterization"]) == ("PS", 1)
    assert accutane["active_substance"] == "ISOTRETINOIN" and bool(accutane["is_target_drug"])
    assert accutane["start_date"] == pd.Timestamp("1994-10-01")
    assert accutane["end_date"] == pd.Timestamp("1996-09-30")
    assert (accutane["tto_days"], accutane["tto_precision"]) == (0, "day")
    assert accutane["treatment_duration_days"] == 731  # 1994-10-01 .. 1996-09-30 inclusive

    reactions = normalized.reactions[normalized.reactions["safetyreportid"] == "4311749"]
    assert reactions["pt_verbatim"].tolist() == ["ARTHRITIS", "DEPRESSION", "PSORIASIS"]
    assert reactions["reaction_seq"].tolist() == [1, 2, 3]
    assert reactions["pt"].tolist() == ["Arthritis", "Depression", "Psoriasis"]


def test_current_faers_fields(batch):
    _, normalized = batch
    reports = normalized.reports.set_index("safetyreportid")
    first = reports.loc["109792364"]  # caseversion 4, event_dt '2003'
    assert (first["caseid"], first["safetyreportversion"]) == ("10979236", 4)
    assert (first["event_date"], first["event_date_precision"]) == (pd.Timestamp("2003-01-01"), "year")
    assert first["receivedate"] == pd.Timestamp("2015-04-02")  # init_fda_dt
    assert first["receiptdate"] == pd.Timestamp("2017-04-06")  # fda_dt
    assert first["occurcountry"] == "US" and first["reporttype"] == "PER"
    doses = normalized.drugs.dropna(subset=["cum_dose_mg"]).set_index("medicinalproduct")["cum_dose_mg"]
    assert doses["ZYVOX"] == 2000.0  # cum_dose_chr 2, unit G
    assert doses["SOLIRIS"].tolist() == [1200.0, 6600.0, 6600.0]  # unit MG


def test_staged_partitions_and_accounting(tmp_path, drug_config):
    raw = [extract_quarter(AERS_2004Q1, tmp_path), extract_quarter(FAERS_2017Q2, tmp_path)]
    staged = stage_quarters(raw, tmp_path)
    assert staged == [
        str(tmp_path / "staged" / "source=faers_ascii" / "quarter=2004Q1"),
        str(tmp_path / "staged" / "source=faers_ascii" / "quarter=2017Q2"),
    ]
    totals = {"reports": 0, "drugs": 0, "reactions": 0}
    for directory, quarter in zip(map(Path, staged), ("2004Q1", "2017Q2"), strict=True):
        for name in totals:
            totals[name] += len(pd.read_parquet(directory / f"{name}.parquet"))
        accounting = json.loads((directory / "accounting.json").read_text())
        assert all(row["balanced"] for row in accounting["tables"].values())
        for table, lines in LINES[quarter].items():
            assert accounting["tables"][table]["data_lines"] == accounting["tables"][table]["kept"] == lines
        assert {p.name for p in directory.iterdir()} >= {
            "outcomes.parquet",
            "therapies.parquet",
            "quarantine.parquet",
        }
    assert totals == {"reports": 200, "drugs": 714, "reactions": 702}
    # rerun replaces the partitions whole
    assert stage_quarters(raw, tmp_path) == staged

    out = write_background_counts(staged, tmp_path / "counts.csv")
    counts = pd.read_csv(out)
    assert list(counts.columns) == ["drug", "event", "n", "drug_total", "event_total", "total"]
    iso = counts[counts["drug"] == "ISOTRETINOIN"].set_index("event")
    assert iso["n"].to_dict() == {"Arthritis": 1, "Depression": 1, "Psoriasis": 1}
    assert set(iso["drug_total"]) == {1}
    assert set(counts["total"]) == {200}


def test_background_counts_match_brute_force(batch):
    _, normalized = batch
    counts = background_counts(normalized.drugs, normalized.reactions).set_index(["drug", "event"])
    drugs = normalized.drugs.assign(
        drug=normalized.drugs["active_substance"]
        .fillna(normalized.drugs["medicinalproduct"])
        .str.strip()
        .str.upper()
    )
    pairs = drugs[["safetyreportid", "drug"]].merge(normalized.reactions[["safetyreportid", "pt"]])
    pairs = pairs.dropna().drop_duplicates()
    expected_n = pairs.groupby(["drug", "pt"])["safetyreportid"].nunique()
    assert counts["n"].sum() == expected_n.sum()
    assert counts.loc[("ISOTRETINOIN", "Depression"), "event_total"] == (
        pairs.loc[pairs["pt"] == "Depression", "safetyreportid"].nunique()
    )
    assert counts["total"].iat[0] == pairs["safetyreportid"].nunique()
    drug_total = pairs.groupby("drug")["safetyreportid"].nunique()
    assert (
        counts["drug_total"] == drug_total.reindex(counts.index.get_level_values("drug")).to_numpy()
    ).all()
