"""Golden tests: FDA's deduplication across quarters, deleted cases, and the per-step tally."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from faers_builders import demo, drug, outc, reac, write_quarter

from extractors.faers_ascii.dedup import deduplicate
from extractors.faers_ascii.normalize import normalize_faers
from extractors.faers_ascii.reader import read_quarter
from extractors.faers_ascii.stage import ingest, read_deleted_case_files


def _report(pid: int, version: int, **demo_values: str) -> dict[str, list]:
    return {
        "DEMO": [demo(pid, version, **demo_values)],
        "DRUG": [drug(pid, 1, "ACCUTANE"), drug(pid, 2, "ASPIRIN", role="C")],
        "REAC": [reac(pid, "Back pain")],
        "OUTC": [outc(pid)],
    }


def _merge(*parts: dict[str, list]) -> dict[str, list]:
    out: dict[str, list] = {}
    for part in parts:
        for table, rows in part.items():
            out.setdefault(table, []).extend(rows)
    return out


@pytest.fixture
def two_quarters(tmp_path):
    """Case 1000: v1 (Q1), v2 (Q2). Case 2000: v1 twice with different fda_dt (Q1, Q2).
    Case 3000: v3 and v3 on the same day (ties -> highest primaryid). Case 4000: deleted in Q2.
    Primaryid 50001 published in Q1 and again in Q2. Case 6000: only in Q1."""
    q1 = _merge(
        _report(10001, 1),
        _report(20001, 1, fda_dt="20170105"),
        _report(30003, 3, caseid=3000),
        _report(40001, 1),
        _report(50001, 1),
        _report(60001, 1),
    )
    q2 = _merge(
        _report(10002, 2),
        _report(20009, 1, caseid=2000, fda_dt="20170401"),
        _report(30013, 3, caseid=3000),
        _report(50001, 1),
    )
    return [
        write_quarter(tmp_path / "faers_ascii_2017q1.zip", "2017Q1", q1),
        write_quarter(tmp_path / "faers_ascii_2017q2.zip", "2017Q2", q2, deleted=[4000]),
    ]


def test_latest_version_per_case_across_quarters(two_quarters, drug_config):
    quarters = [read_quarter(p) for p in reversed(two_quarters)]  # order of loading does not matter
    result = deduplicate(quarters)
    kept = result.table("DEMO", ["primaryid", "caseid"])
    assert dict(zip(kept["caseid"], kept["primaryid"], strict=True)) == {
        1000: 10002,  # higher caseversion wins
        2000: 20009,  # same version: later fda_dt wins
        3000: 30013,  # same version and day: higher primaryid wins
        5000: 50001,  # republished primaryid kept once, from the later quarter
        6000: 60001,
    }
    assert kept.set_index("primaryid").loc[50001, "quarter"] == "2017Q2"
    assert result.removed["duplicate_primaryid"] == {
        "DEMO": 1, "DRUG": 2, "REAC": 1, "OUTC": 1, "RPSR": 0, "THER": 0, "INDI": 0,
    }  # fmt: skip
    assert result.removed["superseded_versions"] == {
        "DEMO": 3, "DRUG": 6, "REAC": 3, "OUTC": 3, "RPSR": 0, "THER": 0, "INDI": 0,
    }  # fmt: skip
    assert result.removed["deleted_cases"] == {
        "DEMO": 1, "DRUG": 2, "REAC": 1, "OUTC": 1, "RPSR": 0, "THER": 0, "INDI": 0,
    }  # fmt: skip
    assert result.loaded["DRUG"] == 20 and result.kept()["DRUG"] == 10
    assert result.loaded["DEMO"] == sum(s["DEMO"] for s in result.removed.values()) + result.kept()["DEMO"]

    batch = normalize_faers(result, drug_config=drug_config)
    assert sorted(batch.reports["safetyreportid"]) == ["10002", "20009", "30013", "50001", "60001"]
    assert set(batch.drugs["safetyreportid"]) == set(batch.reports["safetyreportid"])
    assert batch.reports.set_index("safetyreportid").loc["10002", "safetyreportversion"] == 2


def test_deleted_cases_given_separately(two_quarters, tmp_path):
    deleted_file = tmp_path / "DELETE17Q3.txt"
    deleted_file.write_text("caseid\r\n6000\r\n\r\n", encoding="latin-1")
    ids = read_deleted_case_files([deleted_file])
    assert ids == [6000]
    result = deduplicate([read_quarter(p) for p in two_quarters], deleted_caseids=ids)
    assert result.removed["deleted_cases"]["DEMO"] == 2  # 4000 from the zip, 6000 from the file
    assert 6000 not in set(result.table("DEMO", ["caseid"])["caseid"])
    assert result.deleted_caseids == 2


def test_legacy_report_ranks_below_any_faers_version(tmp_path):
    legacy = tmp_path / "aers_ascii_2012q3.zip"
    with zipfile.ZipFile(legacy, "w") as archive:
        tables = {
            "DEMO": "ISR$CASE$I_F_COD$EVENT_DT$FDA_DT$AGE$AGE_COD$GNDR_COD$WT$WT_COD$REPT_COD$\r\n"
            "7000123$7000$I$20120101$20120701$30$YR$M$$$EXP$\r\n",
            "DRUG": "ISR$DRUG_SEQ$ROLE_COD$DRUGNAME$\r\n7000123$1000000001$PS$ACCUTANE$\r\n",
            "REAC": "ISR$PT$\r\n7000123$ACNE$\r\n",
            "OUTC": "ISR$OUTC_COD$\r\n",
            "RPSR": "ISR$RPSR_COD$\r\n",
            "THER": "ISR$DRUG_SEQ$START_DT$END_DT$DUR$DUR_COD$\r\n",
            "INDI": "ISR$DRUG_SEQ$INDI_PT$\r\n",
        }
        for table, text in tables.items():
            archive.writestr(f"ascii/{table}12Q3.TXT", text)
    current = write_quarter(tmp_path / "faers_ascii_2012q4.zip", "2012Q4", _report(70001, 1, caseid=7000))
    result = deduplicate([read_quarter(legacy), read_quarter(current)])
    assert result.table("DEMO", ["primaryid"])["primaryid"].tolist() == [70001]
    assert result.removed["superseded_versions"]["DRUG"] == 1


def test_ingest_writes_one_partition_per_quarter(two_quarters, tmp_path, drug_config):
    quarters = [read_quarter(p) for p in two_quarters]
    staged = ingest(quarters, tmp_path / "var", drug_config=drug_config)
    q1, q2 = (pd.read_parquet(f"{d}/reports.parquet") for d in staged)
    assert sorted(q1["safetyreportid"]) == ["60001"]
    assert sorted(q2["safetyreportid"]) == ["10002", "20009", "30013", "50001"]
    first, second = (json.loads(Path(d, "accounting.json").read_text()) for d in staged)
    # each quarter accounts for its own lines; versions removed are counted where they were read
    assert first["tables"]["DEMO"] == {
        "data_lines": 6, "blank": 0, "quarantined": 0, "repaired": 0, "loaded": 6, "orphan_rows": 0,
        "duplicate_primaryid": 1, "superseded_versions": 3, "deleted_cases": 1, "kept": 1, "balanced": 1,
    }  # fmt: skip
    assert second["tables"]["DEMO"]["kept"] == second["tables"]["DEMO"]["data_lines"] == 4
    assert second["tables"]["DRUG"]["kept"] == 8 and first["tables"]["DRUG"]["superseded_versions"] == 6
    assert first["deduplicated_with"] == ["2017Q1", "2017Q2"] and first["deleted_caseids"] == 1


def test_staging_from_raw_partitions_matches_in_memory(two_quarters, tmp_path, drug_config):
    from extractors.faers_ascii.stage import extract_quarter, stage_quarters

    raw = [extract_quarter(p, tmp_path / "a") for p in two_quarters]
    from_raw = stage_quarters(list(reversed(raw)), tmp_path / "a", drug_config=drug_config)
    in_memory = ingest([read_quarter(p) for p in two_quarters], tmp_path / "b", drug_config=drug_config)
    for left, right in zip(from_raw, in_memory, strict=True):
        for name in ("reports", "drugs", "reactions", "quarantine", "therapies", "outcomes"):
            pd.testing.assert_frame_equal(
                pd.read_parquet(f"{left}/{name}.parquet"), pd.read_parquet(f"{right}/{name}.parquet")
            )
