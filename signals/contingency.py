"""2x2 contingency tables, expected counts and report counting for drug x event pairs.

Every measure in this package starts from the same table, so it is built in one place:

              event   not event
    drug        a         b        a + b = drug_total
    not drug    c         d
              a + c = event_total                 a + b + c + d = total

E = (a + b)(a + c) / N is the count expected if drug and event were reported independently.
Stratified E sums that product over strata (sex, age group, year, ...) as DuMouchel (1999) and
openEBGM's ``processRaw`` do, so that a drug used mostly by one stratum is not flagged merely
because the event is common there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

COUNT_COLUMNS: tuple[str, ...] = ("drug", "event", "n", "drug_total", "event_total", "total")


class TwoByTwo(NamedTuple):
    """Cells of the drug x event 2x2 table, as float arrays (exact for counts below 2**53)."""

    a: FloatArray
    b: FloatArray
    c: FloatArray
    d: FloatArray


def two_by_two(
    n: npt.ArrayLike, drug_total: npt.ArrayLike, event_total: npt.ArrayLike, total: npt.ArrayLike
) -> TwoByTwo:
    """Derive the four cells from the pair count and the margins (openFDA-style counts)."""
    a = np.asarray(n, dtype=np.float64)
    dt = np.asarray(drug_total, dtype=np.float64)
    et = np.asarray(event_total, dtype=np.float64)
    tot = np.asarray(total, dtype=np.float64)
    return TwoByTwo(a, dt - a, et - a, tot - dt - et + a)


def expected_count(drug_total: npt.ArrayLike, event_total: npt.ArrayLike, total: npt.ArrayLike) -> FloatArray:
    """E = drug_total * event_total / total; 0 for an empty background (total = 0)."""
    dt = np.asarray(drug_total, dtype=np.float64)
    et = np.asarray(event_total, dtype=np.float64)
    tot = np.broadcast_to(np.asarray(total, dtype=np.float64), np.broadcast_shapes(dt.shape, et.shape))
    out = np.zeros(np.broadcast_shapes(dt.shape, et.shape, tot.shape))
    np.divide(dt * et, tot, out=out, where=tot > 0)
    return out


def count_reports(
    reports: pd.DataFrame,
    *,
    report_col: str = "id",
    drug_col: str = "drug",
    event_col: str = "event",
    strata: Sequence[str] = (),
    zeroes: bool = False,
) -> pd.DataFrame:
    """Count unique reports per pair and margin, as openEBGM ``processRaw`` does.

    A report naming a drug twice (or an event twice) is counted once, so the margins are
    unique-report counts, not sums over pairs. With ``strata``, column ``e`` is the stratified
    expected count sum_s drug_total_s * event_total_s / total_s (margins stay crude, so PRR,
    ROR and chi-square are unaffected; IC and EBGM use ``e``). ``zeroes`` adds every unseen
    drug x event combination with n = 0 (small tables only).

    Returns columns drug, event, n, drug_total, event_total, total, e sorted by drug, event.
    """
    cols = [report_col, drug_col, event_col, *strata]
    missing = [c for c in cols if c not in reports.columns]
    if missing:
        raise ValueError(f"reports lacks column(s) {missing}")
    data = reports[cols]
    if data.isna().to_numpy().any():
        raise ValueError(f"missing values are not allowed in {cols}")

    drugs = np.sort(data[drug_col].unique())
    events = np.sort(data[event_col].unique())
    drug_code = pd.Index(drugs).get_indexer(data[drug_col])
    event_code = pd.Index(events).get_indexer(data[event_col])
    report_code = pd.factorize(data[report_col])[0]
    total = int(report_code.max()) + 1 if len(report_code) else 0

    drug_total = _unique_count(report_code, drug_code, len(drugs))
    event_total = _unique_count(report_code, event_code, len(events))

    pair_key = drug_code.astype(np.int64) * len(events) + event_code
    if zeroes:
        n_pair = _unique_count(report_code, pair_key, len(drugs) * len(events))
        pair_codes = np.arange(len(drugs) * len(events), dtype=np.int64)
    else:
        uniq = pd.DataFrame({"r": report_code, "k": pair_key}).drop_duplicates()
        pair_codes, n_pair = np.unique(uniq["k"].to_numpy(), return_counts=True)
    di = pair_codes // len(events) if len(events) else pair_codes
    ei = pair_codes % len(events) if len(events) else pair_codes

    out = pd.DataFrame(
        {
            "drug": drugs[di],
            "event": events[ei],
            "n": np.asarray(n_pair, dtype=np.int64),
            "drug_total": drug_total[di],
            "event_total": event_total[ei],
            "total": np.full(len(pair_codes), total, dtype=np.int64),
        }
    )
    if strata:
        stratum = data.groupby(list(strata), sort=True, dropna=False).ngroup().to_numpy()
        out["e"] = _stratified_expected(report_code, drug_code, event_code, stratum, di, ei)
    else:
        out["e"] = expected_count(out["drug_total"], out["event_total"], out["total"])
    return out


def stratified_expected(strata_counts: pd.DataFrame, strata: Sequence[str]) -> pd.DataFrame:
    """Sum E over strata from per-stratum counts (columns drug, event, n and margins per stratum).

    Use when margins come pre-aggregated (e.g. openFDA counts queried per sex or per year):
    each row holds the pair count and the margins within its stratum. Returns one row per
    pair with crude n and margins summed over strata and the stratified ``e``.
    """
    need = [*COUNT_COLUMNS, *strata]
    missing = [c for c in need if c not in strata_counts.columns]
    if missing:
        raise ValueError(f"strata_counts lacks column(s) {missing}")
    work = strata_counts[need].copy()
    work["e"] = expected_count(work["drug_total"], work["event_total"], work["total"])
    pairs = work.groupby(["drug", "event"], sort=True)[["n", "e"]].sum()
    drug_tot = work.drop_duplicates(["drug", *strata]).groupby("drug")["drug_total"].sum()
    event_tot = work.drop_duplicates(["event", *strata]).groupby("event")["event_total"].sum()
    total = int(work.drop_duplicates(list(strata))["total"].sum())
    out = pairs.reset_index()
    out.insert(3, "drug_total", out["drug"].map(drug_tot).to_numpy(dtype=np.int64))
    out.insert(4, "event_total", out["event"].map(event_tot).to_numpy(dtype=np.int64))
    out.insert(5, "total", np.int64(total))
    return out[[*COUNT_COLUMNS, "e"]]


def _unique_count(report_code: np.ndarray, key: np.ndarray, size: int) -> npt.NDArray[np.int64]:
    """Number of distinct reports per key code (0..size-1)."""
    uniq = pd.DataFrame({"r": report_code, "k": key}).drop_duplicates()
    return np.bincount(uniq["k"].to_numpy(), minlength=size).astype(np.int64)


def _stratified_expected(
    report_code: np.ndarray,
    drug_code: np.ndarray,
    event_code: np.ndarray,
    stratum: np.ndarray,
    di: np.ndarray,
    ei: np.ndarray,
) -> FloatArray:
    """E_pair = sum_s drug_s * event_s / total_s with unique-report margins within each stratum."""
    n_strata = int(stratum.max()) + 1 if len(stratum) else 0
    n_drugs = int(drug_code.max()) + 1 if len(drug_code) else 0
    n_events = int(event_code.max()) + 1 if len(event_code) else 0
    drug_s = _unique_count(report_code, drug_code * n_strata + stratum, n_drugs * n_strata).reshape(
        n_drugs, n_strata
    )
    event_s = _unique_count(report_code, event_code * n_strata + stratum, n_events * n_strata).reshape(
        n_events, n_strata
    )
    total_s = _unique_count(report_code, stratum, n_strata).astype(np.float64)
    event_share = event_s / np.where(total_s > 0, total_s, 1.0)
    e = np.zeros(len(di))
    for s in range(n_strata):  # loop over strata (few), vectorized over pairs
        e += drug_s[di, s] * event_share[ei, s]
    return e
