"""Golden tests: malformed lines go to quarantine with file, line and reason; the rest loads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from faers_builders import demo, drug, line, reac, table_text, write_quarter

from extractors.faers_ascii.dedup import deduplicate
from extractors.faers_ascii.reader import FaersFormatError, read_quarter, read_table


def _demo_bytes(rows, *, trailing=False, encoding="latin-1") -> bytes:
    return table_text("DEMO", rows, trailing=trailing).encode(encoding)


def test_fda_shape_crlf_upper_case_latin1():
    data = _demo_bytes([demo(1001, 1, mfr_sndr="LABORATOIRES PIERRE FABRE \xc9TUDE")])
    frame, load, quarantine = read_table(data, table="DEMO", source_file="DEMO17Q2.txt")
    assert (load.encoding, load.line_ending, load.loaded) == ("latin-1", "CRLF", 1)
    assert frame.loc[0, "mfr_sndr"] == "LABORATOIRES PIERRE FABRE ÉTUDE"
    assert frame.loc[0, "primaryid"] == 1001 and frame.loc[0, "caseversion"] == 1
    assert quarantine.empty


def test_utf8_files_stay_utf8():
    data = _demo_bytes([demo(1001, 1, mfr_sndr="ÉTUDE")], encoding="utf-8")
    frame, load, _ = read_table(data, table="DEMO", source_file="DEMO17Q2.txt")
    assert load.encoding == "utf8" and frame.loc[0, "mfr_sndr"] == "ÉTUDE"


def test_malformed_lines_are_quarantined_and_the_rest_loads():
    rows = [
        demo(1001, 1),  # line 2: fine
        demo(1002, 1, event_dt="20170230"),  # 3: impossible date
        demo(1003, 1, fda_dt="2017"),  # 4: 4-digit year where YYYYMMDD is required
        line("DEMO", demo(1004, 1, lit_ref="COST $5")),  # 5: embedded '$' -> 26 fields
        "",  # 6: blank
        line("DEMO", demo(1005, 1))[:30],  # 7: cut short (line break inside a field)
        line("DEMO", demo(1006, 1)) + "$",  # 8: one harmless trailing '$' -> repaired
        "abc$" + line("DEMO", demo(1007, 1)).split("$", 1)[1],  # 9: primaryid not a number
        demo(1008, 1, event_dt="201702"),  # 10: partial event date is fine
        demo(1009, 1, init_fda_dt="20171301"),  # 11: month 13
        {**demo(1010, 1), "caseversion": ""},  # 12: no caseversion
    ]
    frame, load, quarantine = read_table(
        _demo_bytes(rows), table="DEMO", source_file="q.zip/ascii/DEMO17Q2.txt"
    )
    assert frame["primaryid"].tolist() == [1001, 1006, 1008]
    assert frame["line_number"].tolist() == [2, 8, 10]
    assert (load.data_lines, load.loaded, load.blank, load.quarantined, load.repaired) == (11, 3, 1, 7, 1)
    assert load.data_lines == load.loaded + load.blank + load.quarantined
    got = (
        quarantine[["line_number", "record_id", "field", "reason"]]
        .astype(object)
        .where(quarantine.notna(), None)
    )
    assert got.values.tolist() == [
        [3, "1002", "event_dt", "primaryid 1002: event_dt '20170230' is not a date"],
        [4, "1003", "fda_dt", "primaryid 1003: fda_dt '2017' has 4 digits, expected YYYYMMDD"],
        [5, "1004", None, "primaryid 1004: line has 26 fields where 25 are expected (embedded '$'?)"],
        [
            7,
            "1005",
            None,
            "primaryid 1005: line has 7 fields where 25 are expected (line break inside a field?)",
        ],
        [9, "DEMO17Q2.txt:9", "primaryid", "primaryid 'abc' is not a whole number"],
        [11, "1009", "init_fda_dt", "primaryid 1009: init_fda_dt '20171301' is not a date"],
        [12, "1010", "caseversion", "primaryid 1010: caseversion is empty"],
    ]
    assert set(quarantine["source_file"]) == {"q.zip/ascii/DEMO17Q2.txt"}
    assert set(quarantine["action"]) == {"rejected"} and set(quarantine["stage"]) == {"extract"}
    assert quarantine.loc[quarantine["line_number"] == 5, "value"].iat[0].startswith("1004$")


def test_bad_dates_can_be_nulled_instead():
    rows = [demo(1001, 1, event_dt="20170230"), demo(1002, 1)]
    frame, load, quarantine = read_table(
        _demo_bytes(rows), table="DEMO", source_file="DEMO17Q2.txt", bad_dates="null"
    )
    assert frame["primaryid"].tolist() == [1001, 1002] and pd.isna(frame.loc[0, "event_dt"])
    assert (load.loaded, load.quarantined) == (2, 0)
    assert quarantine[["field", "value", "action"]].values.tolist() == [["event_dt", "20170230", "nulled"]]


def test_legacy_trailing_separator_with_exceptions():
    """AERS lines end in '$'; a line without it is accepted, one with an extra field is not."""
    text = (
        "ISR$PT$\r\n4001$NAUSEA$\r\n4002$VOMITING\r\n4003$HEADACHE$EXTRA$\r\n4004$RASH$X\r\n4005$FEVER$\r\n"
    )
    frame, load, quarantine = read_table(text.encode(), table="REAC", source_file="REAC04Q1.TXT")
    assert frame["primaryid"].tolist() == [4001, 4002, 4005]
    assert frame["pt"].tolist() == ["NAUSEA", "VOMITING", "FEVER"]
    assert load.trailing_separator and load.repaired == 1
    assert quarantine["line_number"].tolist() == [4, 5]
    assert quarantine["reason"].tolist() == [
        "primaryid 4003: line has 3 fields where 2 are expected (embedded '$'?)",
        "primaryid 4004: line has 3 fields where 2 are expected (embedded '$'?)",
    ]


def test_reaction_without_term_is_quarantined():
    text = "primaryid$caseid$pt$drug_rec_act\n10011$1001$Nausea$\n10011$1001$$\n"
    frame, _, quarantine = read_table(text.encode(), table="REAC", source_file="REAC17Q2.txt")
    assert frame["pt"].tolist() == ["Nausea"]
    assert quarantine["reason"].tolist() == ["primaryid 10011: pt is empty"]


def test_header_problems_fail_loudly():
    with pytest.raises(FaersFormatError, match="no '\\$'-delimited header"):
        read_table(b"", table="DEMO", source_file="DEMO17Q2.txt")
    with pytest.raises(FaersFormatError, match="header lacks"):
        read_table(b"primaryid$pt\n1$x\n", table="DEMO", source_file="DEMO17Q2.txt")


def test_missing_table_and_unknown_quarter(tmp_path):
    import zipfile

    broken = tmp_path / "faers_ascii_2017q2.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("ascii/DEMO17Q2.txt", table_text("DEMO", []))
    with pytest.raises(FaersFormatError, match="no DRUG, REAC, OUTC, RPSR, THER, INDI file"):
        read_quarter(broken)
    with pytest.raises(FileNotFoundError):
        read_quarter(tmp_path / "nope.zip")


def test_children_of_a_quarantined_report_are_quarantined_too(tmp_path):
    path = write_quarter(
        tmp_path / "faers_ascii_2017q2.zip",
        "2017Q2",
        {
            "DEMO": [demo(1001, 1), demo(1002, 1, event_dt="20170230")],
            "DRUG": [drug(1001, 1, "ACCUTANE"), drug(1002, 1, "ACCUTANE"), drug(1003, 1, "ASPIRIN")],
            "REAC": [reac(1001, "Back pain"), reac(1002, "Arthralgia")],
        },
    )
    quarter = read_quarter(path)
    result = deduplicate([quarter])
    assert result.removed["orphan_rows"] == {
        "DEMO": 0, "DRUG": 2, "REAC": 1, "OUTC": 0, "RPSR": 0, "THER": 0, "INDI": 0,
    }  # fmt: skip
    assert result.quarantine[["dataset", "line_number", "reason"]].values.tolist() == [
        ["faers_ascii/DRUG", 3, "primaryid 1002: its DEMO line 3 was quarantined"],
        ["faers_ascii/DRUG", 4, "primaryid 1003: no DEMO line in 2017Q2"],
        ["faers_ascii/REAC", 3, "primaryid 1002: its DEMO line 3 was quarantined"],
    ]
    assert result.kept()["DRUG"] == 1


def test_extracted_folder_with_upper_case_names(tmp_path):
    folder = tmp_path / "faers_ascii_2012q4" / "ASCII"
    folder.mkdir(parents=True)
    rows = {"DEMO": [demo(1001, 1)], "DRUG": [drug(1001, 1, "ACCUTANE")], "REAC": [reac(1001, "Acne")]}
    for table in ("DEMO", "DRUG", "REAC", "OUTC", "RPSR", "THER", "INDI"):
        (folder / f"{table}12Q4.TXT").write_text(table_text(table, rows.get(table, [])), encoding="latin-1")
    quarter = read_quarter(folder.parent)
    assert (quarter.quarter, quarter.era) == ("2012Q4", "faers")
    assert quarter.loads["DRUG"].source_file.endswith("DRUG12Q4.TXT")
    assert quarter.tables["REAC"]["pt"].tolist() == ["Acne"]


def test_staged_quarantine_holds_every_rejected_line(tmp_path, drug_config):
    import json

    from extractors.faers_ascii.stage import ingest

    path = write_quarter(
        tmp_path / "faers_ascii_2017q2.zip",
        "2017Q2",
        {
            "DEMO": [demo(10011, 1), demo(10021, 1, event_dt="20170230"), "broken$line"],
            "DRUG": [
                drug(10011, 1, "ACCUTANE", cum_dose_chr="1,2", cum_dose_unit="MG"),
                drug(10021, 1, "ACCUTANE"),
            ],
            "REAC": [reac(10011, "Back pain"), reac(10021, "Back pain")],
        },
    )
    (staged,) = ingest([read_quarter(path)], tmp_path / "var", drug_config=drug_config)
    quarantine = pd.read_parquet(f"{staged}/quarantine.parquet")
    assert sorted(
        zip(quarantine["dataset"], quarantine["line_number"], quarantine["action"], strict=True)
    ) == [
        ("faers_ascii/DEMO", 3, "rejected"),
        ("faers_ascii/DEMO", 4, "rejected"),
        ("faers_ascii/DRUG", 2, "nulled"),  # cum_dose_chr '1,2' is not a number; the drug row stays
        ("faers_ascii/DRUG", 3, "rejected"),  # its report's DEMO line was quarantined
        ("faers_ascii/REAC", 3, "rejected"),
    ]
    accounting = json.loads(Path(staged, "accounting.json").read_text())["tables"]
    assert accounting["DEMO"]["data_lines"] == 3 and accounting["DEMO"]["quarantined"] == 2
    assert accounting["DRUG"]["orphan_rows"] == 1 and accounting["DRUG"]["kept"] == 1
    assert all(row["balanced"] for row in accounting.values())
