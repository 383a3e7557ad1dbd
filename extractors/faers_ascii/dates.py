"""FAERS dates: YYYYMMDD, or partial YYYYMM / YYYY where FDA allows it, parsed column-wise.

FAERS stores dates as digit strings. Event and therapy dates are often partial ("2003",
"201507"), so a partial value is kept as the first day of its period plus a precision
('year', 'month', 'day') instead of being guessed or dropped. FDA's own dates (fda_dt,
init_fda_dt) are always full dates, so a shorter value there is malformed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PRECISION_BY_LENGTH = {4: "year", 6: "month", 8: "day"}
MIN_YEAR = 1900


@dataclass(frozen=True)
class ParsedDates:
    """Column-wise result: `date` is the period start (NaT when empty or invalid)."""

    date: pd.Series  # datetime64[s]
    precision: pd.Series  # string: day | month | year | <NA>
    problem: pd.Series  # string: why the value is not a date, <NA> when fine or empty


def parse_dates(values: pd.Series, *, partial: bool) -> ParsedDates:
    """Parse FAERS date strings; `partial` allows YYYY and YYYYMM as well as YYYYMMDD."""
    text = values.astype("string").str.strip()
    present = text.notna() & (text != "")
    length = text.str.len()
    digits = text.str.fullmatch(r"\d+").fillna(False).astype(bool)
    allowed = (4, 6, 8) if partial else (8,)
    good_length = digits & length.isin(allowed).fillna(False).astype(bool)

    padded = text.where(length != 4, text + "0101").where(length != 6, text + "01")
    padded = padded.where(good_length & present)
    date = pd.to_datetime(padded, format="%Y%m%d", errors="coerce")
    too_early = date.dt.year < MIN_YEAR
    date = date.where(~too_early.fillna(False))
    date = date.astype("datetime64[s]")

    problem = pd.Series(pd.NA, index=values.index, dtype="string")
    expected = "YYYYMMDD, YYYYMM or YYYY" if partial else "YYYYMMDD"
    bad_shape = present & ~good_length
    if bad_shape.any():
        shown = text[bad_shape]
        problem[bad_shape] = np.where(
            digits[bad_shape],
            "has " + shown.str.len().astype("string") + " digits, expected " + expected,
            "is not a date, expected " + expected,
        )
    not_calendar = present & good_length & date.isna()
    problem[not_calendar] = "is not a date"
    problem[not_calendar & too_early.fillna(False)] = f"is before {MIN_YEAR}"

    precision = length.map(PRECISION_BY_LENGTH).astype("string").where(date.notna())
    return ParsedDates(date=date, precision=precision, problem=problem)


def period_end(date: pd.Series, precision: pd.Series) -> pd.Series:
    """Last day of the period a partial date stands for (the date itself at day precision)."""
    month_end = date + pd.offsets.MonthEnd(0)
    year_end = date + pd.offsets.YearEnd(0)
    out = date.where(precision != "month", month_end).where(precision != "year", year_end)
    return out.astype("datetime64[s]")
