"""Validation of drug x event count tables before scoring.

A bad count silently turns into a wrong 2x2 table (negative cell d, double-counted pair), so
every problem is reported with the row and column it was found in; the CLI turns rows into
file line numbers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from signals.contingency import COUNT_COLUMNS

MARGIN_COLUMNS: tuple[str, ...] = ("drug_total", "event_total", "total")


class CountsError(ValueError):
    """A problem in a count table at 0-based row position ``row`` (if any).

    ``message`` may contain ``{other}``, the place of a related earlier row (``other_row``),
    so that callers can name it as a row or as a file line.
    """

    def __init__(
        self, message: str, *, row: int | None = None, column: str | None = None, other_row: int | None = None
    ) -> None:
        self.message = message
        self.row = row
        self.column = column
        self.other_row = other_row
        super().__init__(self.describe())

    def describe(self, line_offset: int | None = None) -> str:
        """Message with the related row named as 'row R' or, given an offset, 'line R + offset'."""
        if self.other_row is None:
            return self.message
        other = f"row {self.other_row}" if line_offset is None else f"line {self.other_row + line_offset}"
        return self.message.format(other=other)


def as_counts(values: pd.Series, column: str) -> npt.NDArray[np.int64]:
    """Coerce one column to non-negative int64, naming the first row that is not a count."""
    raw = values.to_numpy()
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_extension_array_dtype(
        values.dtype
    ):
        arr = raw.astype(np.int64)
        bad = arr < 0
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise CountsError(f"negative count {arr[row]}", row=row, column=column)
        return arr
    if pd.api.types.is_bool_dtype(values.dtype):
        raise CountsError(
            "counts must be integers, not booleans", row=0 if len(values) else None, column=column
        )
    text = values.astype("string").str.strip() if not pd.api.types.is_numeric_dtype(values.dtype) else None
    num = pd.to_numeric(text if text is not None else values, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad_num = ~np.isfinite(num)
    if bad_num.any():
        row = int(np.flatnonzero(bad_num)[0])
        shown = raw[row]
        raise CountsError(f"not a count: {shown!r}", row=row, column=column)
    bad_int = num != np.round(num)
    if bad_int.any():
        row = int(np.flatnonzero(bad_int)[0])
        raise CountsError(f"non-integer count {raw[row]!r}", row=row, column=column)
    bad_neg = num < 0
    if bad_neg.any():
        row = int(np.flatnonzero(bad_neg)[0])
        raise CountsError(f"negative count {raw[row]!r}", row=row, column=column)
    if (num >= 2.0**53).any():
        row = int(np.flatnonzero(num >= 2.0**53)[0])
        raise CountsError(f"count too large {raw[row]!r}", row=row, column=column)
    return num.astype(np.int64)


def complete_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Return columns drug, event, n, drug_total, event_total, total as validated integers.

    When the margin columns are all absent they are the sums of n over the table (each pair
    row is one count of the drug, the event and the background); when present they are used
    as given (e.g. openFDA report counts). Giving only some of them is an error.
    """
    for col in ("drug", "event", "n"):
        if col not in frame.columns:
            raise CountsError(f"missing required column '{col}'", column=col)
    present = [c for c in MARGIN_COLUMNS if c in frame.columns]
    if present and len(present) != len(MARGIN_COLUMNS):
        absent = [c for c in MARGIN_COLUMNS if c not in frame.columns]
        raise CountsError(
            f"margin columns must be given together: have {present}, missing {absent}", column=absent[0]
        )
    _check_names(frame)
    _check_unique_pairs(frame)
    n = as_counts(frame["n"], "n")
    out = pd.DataFrame({"drug": frame["drug"].to_numpy(), "event": frame["event"].to_numpy(), "n": n})
    if present:
        for col in MARGIN_COLUMNS:
            out[col] = as_counts(frame[col], col)
    else:
        out["drug_total"] = out.groupby("drug", sort=False)["n"].transform("sum").to_numpy(dtype=np.int64)
        out["event_total"] = out.groupby("event", sort=False)["n"].transform("sum").to_numpy(dtype=np.int64)
        out["total"] = np.int64(n.sum())
    out.index = frame.index
    check_counts(out)
    return out


def check_counts(counts: pd.DataFrame) -> None:
    """Raise ``CountsError`` unless every row is a coherent 2x2 table and pairs are unique."""
    for col in COUNT_COLUMNS:
        if col not in counts.columns:
            raise CountsError(f"missing required column '{col}'", column=col)
    _check_names(counts)
    _check_unique_pairs(counts)
    n = as_counts(counts["n"], "n")
    dt = as_counts(counts["drug_total"], "drug_total")
    et = as_counts(counts["event_total"], "event_total")
    tot = as_counts(counts["total"], "total")
    checks = (
        (n > dt, "n", "n {n} exceeds drug_total {dt}"),
        (n > et, "n", "n {n} exceeds event_total {et}"),
        (dt > tot, "drug_total", "drug_total {dt} exceeds total {tot}"),
        (et > tot, "event_total", "event_total {et} exceeds total {tot}"),
        (dt + et - n > tot, "total", "drug_total + event_total - n = {u} exceeds total {tot} (cell d < 0)"),
    )
    for bad, col, template in checks:
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            msg = template.format(n=n[r], dt=dt[r], et=et[r], tot=tot[r], u=dt[r] + et[r] - n[r])
            raise CountsError(msg, row=r, column=col)
    if "e" in counts.columns:
        e = pd.to_numeric(counts["e"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(e) | (e < 0) | ((e == 0) & (n > 0))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise CountsError(
                f"expected count e must be finite, >= 0 and > 0 when n > 0; got {e[r]!r} with n {n[r]}",
                row=r,
                column="e",
            )

    _check_constant(counts["drug"], dt, "drug_total", "drug")
    _check_constant(counts["event"], et, "event_total", "event")
    if len(tot) and (tot != tot[0]).any():
        r = int(np.flatnonzero(tot != tot[0])[0])
        raise CountsError(f"total {tot[r]} differs from {tot[0]} in the first row", row=r, column="total")


def _check_unique_pairs(counts: pd.DataFrame) -> None:
    """Each pair once: a repeated pair would be scored twice and inflate derived margins."""
    keys = counts[["drug", "event"]].reset_index(drop=True)
    repeated = keys.duplicated(keep="first").to_numpy()
    if repeated.any():
        second = int(np.flatnonzero(repeated)[0])
        drug, event = keys.iloc[second, 0], keys.iloc[second, 1]
        first = int(np.flatnonzero(((keys["drug"] == drug) & (keys["event"] == event)).to_numpy())[0])
        raise CountsError(
            f"duplicated pair (drug {drug!r}, event {event!r}), first on {{other}}",
            row=second,
            column="event",
            other_row=first,
        )


def _check_names(frame: pd.DataFrame) -> None:
    for col in ("drug", "event"):
        values = frame[col]
        blank = values.isna().to_numpy() | (values.astype("string").str.strip() == "").fillna(True).to_numpy()
        if blank.any():
            raise CountsError(f"empty {col} name", row=int(np.flatnonzero(blank)[0]), column=col)


def _check_constant(keys: pd.Series, margin: np.ndarray, column: str, what: str) -> None:
    """A drug (event) has one margin; differing values mean the table is incoherent."""
    frame = pd.DataFrame({"k": keys.to_numpy(), "m": margin})
    first = frame.groupby("k", sort=False)["m"].transform("first").to_numpy()
    bad = first != margin
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        k = frame["k"].iloc[r]
        r0 = int(np.flatnonzero((frame["k"] == k).to_numpy())[0])
        raise CountsError(
            f"{what} {k!r} has {column} {margin[r]} here but {margin[r0]} on {{other}}",
            row=r,
            column=column,
            other_row=r0,
        )
