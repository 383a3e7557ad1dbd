"""What FDA's quarterly ASCII files look like, across the 2004-2012 AERS and 2012Q4+ FAERS eras.

Column names changed over the years (ISR -> primaryid, CASE -> caseid, gndr_cod -> sex, ...);
every table is renamed to the current FAERS names on read, so later code handles one layout.
"""

from __future__ import annotations

import re

TABLE_NAMES: tuple[str, ...] = ("DEMO", "DRUG", "REAC", "OUTC", "RPSR", "THER", "INDI")

# FDA member names: ascii/DEMO17Q2.txt, ASCII/DRUG12Q4.TXT, ascii/DEMO18Q1_new.txt
MEMBER_PATTERN = re.compile(
    r"(?:^|[/\\])(?P<table>DEMO|DRUG|REAC|OUTC|RPSR|THER|INDI)(?P<yy>\d{2})Q(?P<q>[1-4])(?:_new)?\.txt$",
    re.IGNORECASE,
)
# Deleted-cases lists (2019Q1 on): Deleted/DELETE25Q3.txt, one caseid a line, no header.
DELETED_PATTERN = re.compile(r"(?:^|[/\\])DELE[^/\\]*\.txt$", re.IGNORECASE)
QUARTER_PATTERN = re.compile(r"(?P<year>(?:19|20)\d{2})\s*Q(?P<q>[1-4])", re.IGNORECASE)

# Legacy and early-FAERS header names -> current FAERS names.
COLUMN_ALIASES: dict[str, str] = {
    "isr": "primaryid",
    "case": "caseid",
    "i_f_cod": "i_f_code",
    "gndr_cod": "sex",
    "dsg_drug_seq": "drug_seq",
    "indi_drug_seq": "drug_seq",
    "outc_code": "outc_cod",
}

# Key columns that must be whole numbers for a line to be usable (joins and dedup need them).
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "DEMO": ("primaryid", "caseid"),
    "DRUG": ("primaryid", "drug_seq"),
    "REAC": ("primaryid",),
    "OUTC": ("primaryid",),
    "RPSR": ("primaryid",),
    "THER": ("primaryid", "drug_seq"),
    "INDI": ("primaryid", "drug_seq"),
}

# Text that must be present for a line to mean anything (a reaction without a term).
REQUIRED_TEXT: dict[str, tuple[str, ...]] = {"REAC": ("pt",)}

# Dates that are validated on read: (column, partial dates allowed). Only dates the pipeline
# uses are checked (rept_dt, mfr_dt, exp_dt, death_dt are kept verbatim in the raw tables).
DATE_COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {
    "DEMO": (("event_dt", True), ("fda_dt", False), ("init_fda_dt", False)),
    "THER": (("start_dt", True), ("end_dt", True)),
}

# Lines of a table are dropped by the quarter's own primaryid in these tables.
CHILD_TABLES: tuple[str, ...] = ("DRUG", "REAC", "OUTC", "RPSR", "THER", "INDI")


def quarter_label(year: int, quarter: int) -> str:
    return f"{year:04d}Q{quarter}"


def quarter_from_member(name: str) -> str | None:
    """'ascii/DEMO17Q2.txt' -> '2017Q2' (FAERS starts in 2004, so two-digit years are 20yy)."""
    match = MEMBER_PATTERN.search(name)
    if not match:
        return None
    return quarter_label(2000 + int(match["yy"]), int(match["q"]))


def quarter_from_text(text: str) -> str | None:
    """'faers_ascii_2017q2.zip' -> '2017Q2'."""
    match = QUARTER_PATTERN.search(text)
    return quarter_label(int(match["year"]), int(match["q"])) if match else None


def canonical_column(name: str) -> str:
    name = name.strip().lower()
    return COLUMN_ALIASES.get(name, name)
