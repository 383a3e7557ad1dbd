"""Golden tests: partial dates, time to onset and its precision, therapy periods, cumulative dose units."""

from __future__ import annotations

import pandas as pd
import pytest
from faers_builders import demo, drug, reac, ther, write_quarter

from extractors.faers_ascii.dates import parse_dates, period_end
from extractors.faers_ascii.dedup import deduplicate
from extractors.faers_ascii.normalize import normalize_faers
from extractors.faers_ascii.reader import read_quarter


def test_parse_partial_dates():
    values = pd.Series(
        ["20170215", "201702", "2017", "", None, "20170230", "2017021", "17", "abcd", "18991231"]
    )
    parsed = parse_dates(values, partial=True)
    assert parsed.date.tolist()[:3] == [
        pd.Timestamp("2017-02-15"),
        pd.Timestamp("2017-02-01"),
        pd.Timestamp("2017-01-01"),
    ]
    assert parsed.precision.tolist()[:3] == ["day", "month", "year"]
    assert parsed.date.iloc[3:].isna().all()
    assert parsed.problem.fillna("").tolist() == [
        "", "", "", "", "", "is not a date", "has 7 digits, expected YYYYMMDD, YYYYMM or YYYY",
        "has 2 digits, expected YYYYMMDD, YYYYMM or YYYY", "is not a date, expected YYYYMMDD, YYYYMM or YYYY",
        "is before 1900",
    ]  # fmt: skip
    strict = parse_dates(pd.Series(["2017", "20170215"]), partial=False)
    assert strict.problem.fillna("").tolist() == ["has 4 digits, expected YYYYMMDD", ""]
    ends = period_end(parsed.date.iloc[:3], parsed.precision.iloc[:3])
    assert ends.tolist() == [
        pd.Timestamp("2017-02-15"),
        pd.Timestamp("2017-02-28"),
        pd.Timestamp("2017-12-31"),
    ]


@pytest.fixture
def batch(tmp_path, drug_config):
    tables = {
        "DEMO": [
            demo(1001, 1, caseid=1001, event_dt="20170301", wt="70", wt_cod="KG"),
            demo(1002, 1, caseid=1002, event_dt="201703"),
            demo(1003, 1, caseid=1003, event_dt="2017"),
            demo(1004, 1, caseid=1004, event_dt=""),
            demo(1005, 1, caseid=1005, event_dt="20170301", wt="154", wt_cod="LBS"),
        ],
        "DRUG": [
            drug(1001, 1, "ACCUTANE", cum_dose_chr="8400", cum_dose_unit="MG"),
            drug(1001, 2, "ABSORICA", role="SS", cum_dose_chr="8.4", cum_dose_unit="G"),
            drug(1002, 1, "CLARAVIS", cum_dose_chr="120", cum_dose_unit="MG/KG"),  # report weight 60 kg
            drug(1003, 1, "ISOTRETINOIN", cum_dose_chr="250", cum_dose_unit="DF"),
            drug(1004, 1, "MYORISAN", cum_dose_chr="lots", cum_dose_unit="MG"),
            drug(1005, 1, "ZENATANE", cum_dose_chr="120", cum_dose_unit="MG/KG"),
            drug(1005, 2, "DOXYCYCLINE", role="C", cum_dose_chr="500000", cum_dose_unit="UG"),
        ],
        "REAC": [reac(p, "Back pain") for p in (1001, 1002, 1003, 1004, 1005)],
        "THER": [
            ther(1001, 1, "20170101", "20170228"),
            ther(1001, 2, "2016", "201612"),
            ther(1002, 1, "20170115", "", "30", "DAY"),
            ther(
                1002, 1, "20161101", "20161130"
            ),  # second course: earliest start, latest end, durations summed
            ther(1003, 1, "201701"),
            ther(1005, 1, "20170301"),
        ],
    }
    path = write_quarter(tmp_path / "faers_ascii_2017q2.zip", "2017Q2", tables)
    return normalize_faers(deduplicate([read_quarter(path)]), drug_config=drug_config)


def _drug(batch, pid: str, seq: int) -> pd.Series:
    drugs = batch.drugs
    rows = drugs[(drugs["safetyreportid"] == pid) & (drugs["drug_seq"] == seq)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_time_to_onset_and_precision(batch):
    accutane = _drug(batch, "1001", 1)
    assert (accutane["tto_days"], accutane["tto_precision"]) == (59, "day")  # 2017-01-01 -> 2017-03-01
    assert (accutane["start_date_precision"], accutane["end_date_precision"]) == ("day", "day")
    assert accutane["treatment_duration_days"] == 59  # inclusive
    absorica = _drug(batch, "1001", 2)  # start '2016' -> 2016-01-01, year precision
    assert (absorica["start_date"], absorica["start_date_precision"]) == (pd.Timestamp("2016-01-01"), "year")
    assert (absorica["tto_days"], absorica["tto_precision"]) == (425, "year")
    assert pd.isna(absorica["treatment_duration_days"])  # partial dates: no day count

    claravis = _drug(batch, "1002", 1)  # event '201703' (month), earliest start 2016-11-01
    assert claravis["start_date"] == pd.Timestamp("2016-11-01")
    assert claravis["end_date"] == pd.Timestamp("2016-11-30")
    assert claravis["treatment_duration_days"] == 60  # 30 DAY + 30 days from dates
    assert (claravis["tto_days"], claravis["tto_precision"]) == (120, "month")

    iso = _drug(batch, "1003", 1)  # event '2017' (year) vs start '201701' (month)
    assert (iso["tto_days"], iso["tto_precision"]) == (0, "year")
    myorisan = _drug(batch, "1004", 1)  # no event date, no THER row
    assert pd.isna(myorisan["tto_days"]) and pd.isna(myorisan["tto_precision"])
    assert (_drug(batch, "1005", 1)["tto_days"], _drug(batch, "1005", 1)["tto_precision"]) == (0, "day")
    assert set(batch.drugs.loc[batch.drugs["is_target_drug"].astype(bool), "safetyreportid"]) == {
        "1001", "1002", "1003", "1004", "1005",
    }  # fmt: skip


def test_cumulative_dose_in_mg(batch):
    assert _drug(batch, "1001", 1)["cum_dose_mg"] == 8400
    assert _drug(batch, "1001", 2)["cum_dose_mg"] == 8400  # 8.4 G
    assert _drug(batch, "1002", 1)["cum_dose_mg"] == 120 * 60  # MG/KG x the report's 60 kg
    assert pd.isna(_drug(batch, "1003", 1)["cum_dose_mg"])  # DF: dosage forms are not a mass
    assert pd.isna(_drug(batch, "1004", 1)["cum_dose_mg"])
    assert _drug(batch, "1005", 1)["cum_dose_mg"] == pytest.approx(120 * 154 * 0.45359237)
    assert _drug(batch, "1005", 2)["cum_dose_mg"] == 500  # 500000 UG
    nulled = batch.quarantine[
        ["record_id", "field", "value", "reason", "action", "line_number"]
    ].values.tolist()
    assert nulled == [
        ["1004", "cum_dose_chr", "lots", "primaryid 1004: cum_dose_chr 'lots' is not a number", "nulled", 6]
    ]
    assert batch.quarantine["source_file"].tolist() == ["faers_ascii_2017q2.zip/ascii/DRUG17Q2.txt"]
