"""Cumulative scores by quarter, to show when a signal first appeared.

At each quarter every measure is recomputed on everything reported up to and including
that quarter (pair counts and margins are cumulated), which is how a signal would have
looked to a reviewer screening the database then. EBGM uses one prior for all quarters
(by default fitted once on the final cumulative background), so that changes over time
come from the data of the pair, not from a moving prior.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from signals.contingency import count_reports, expected_count
from signals.ebgm import DEFAULT_PRIOR, Prior, fit_prior
from signals.measures import score_arrays
from signals.rules import DEFAULT_RULES, SignalRule, apply_rules
from signals.validation import MARGIN_COLUMNS, CountsError, as_counts


def quarterly_counts(
    reports: pd.DataFrame,
    *,
    quarter_col: str = "quarter",
    report_col: str = "id",
    drug_col: str = "drug",
    event_col: str = "event",
) -> pd.DataFrame:
    """Per-quarter unique-report counts and margins from one row per (report, drug, event).

    A report belongs to the quarter it was received in, so per-quarter margins add up over
    quarters without double counting. Output feeds ``cumulative_trend``.
    """
    frames = []
    for quarter, rows in reports.groupby(quarter_col, sort=True):  # loop over quarters, not pairs
        counted = count_reports(rows, report_col=report_col, drug_col=drug_col, event_col=event_col)
        counted.insert(0, "quarter", quarter)
        frames.append(counted.drop(columns="e"))
    if not frames:
        return pd.DataFrame(columns=["quarter", "drug", "event", "n", *MARGIN_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def cumulative_trend(
    counts: pd.DataFrame,
    *,
    prior: Prior | None = None,
    rules: Sequence[SignalRule] = DEFAULT_RULES,
    n_star: int = 1,
    drugs: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Scores of each pair cumulated up to each quarter, with flags and first signal quarter.

    ``counts`` has columns quarter, drug, event, n and optionally per-quarter (not
    cumulative) margins drug_total, event_total, total; without them the margins are sums
    of n, as in the CLI. Quarters must sort chronologically ('2004Q1' strings or
    pandas Periods). ``drugs`` restricts the output rows (margins still use every row).

    Returns one row per (quarter, pair) from the pair's first report on: quarter, drug,
    event, the SCORES columns, the cumulative margins, ``signal_<rule>`` flags and
    ``first_signal_quarter_<rule>`` (the first quarter the rule fired, or None). The prior
    used is stored in ``result.attrs["prior"]`` (a dict).
    """
    for col in ("quarter", "drug", "event", "n"):
        if col not in counts.columns:
            raise CountsError(f"missing required column '{col}'", column=col)
    present = [c for c in MARGIN_COLUMNS if c in counts.columns]
    if present and len(present) != len(MARGIN_COLUMNS):
        raise CountsError("margin columns must be given together", column=present[0])
    keys = counts[["quarter", "drug", "event"]]
    repeated = keys.duplicated().to_numpy()
    if repeated.any():
        raise CountsError(
            "duplicated (quarter, drug, event)", row=int(np.flatnonzero(repeated)[0]), column="event"
        )

    quarters = np.array(sorted(pd.unique(counts["quarter"])), dtype=object)
    q_idx = pd.Index(quarters).get_indexer(counts["quarter"])
    n_q = len(quarters)
    n = as_counts(counts["n"], "n")
    drug_code, drug_names = pd.factorize(counts["drug"], sort=True)
    event_code, event_names = pd.factorize(counts["event"], sort=True)

    if present:
        drug_q = _margin_by_quarter(
            q_idx, drug_code, as_counts(counts["drug_total"], "drug_total"), n_q, "drug_total"
        )
        event_q = _margin_by_quarter(
            q_idx, event_code, as_counts(counts["event_total"], "event_total"), n_q, "event_total"
        )
        total_q = _margin_by_quarter(
            q_idx, np.zeros_like(q_idx), as_counts(counts["total"], "total"), n_q, "total"
        )[0]
    else:
        drug_q = _sum_by_quarter(q_idx, drug_code, n, len(drug_names), n_q)
        event_q = _sum_by_quarter(q_idx, event_code, n, len(event_names), n_q)
        total_q = np.bincount(q_idx, weights=n, minlength=n_q).astype(np.int64)
    drug_cum, event_cum, total_cum = drug_q.cumsum(axis=1), event_q.cumsum(axis=1), total_q.cumsum()

    pair_code, pair_first = pd.factorize(pd.MultiIndex.from_arrays([drug_code, event_code]), sort=True)
    pair_drug = np.asarray(pair_first.get_level_values(0))
    pair_event = np.asarray(pair_first.get_level_values(1))

    if prior is None:
        final_n = np.bincount(pair_code, weights=n, minlength=len(pair_first))
        final_e = expected_count(drug_cum[pair_drug, -1], event_cum[pair_event, -1], total_cum[-1])
        fit_rows = final_n >= max(n_star, 1)
        prior = (
            fit_prior(final_n[fit_rows], final_e[fit_rows], n_star=n_star)
            if fit_rows.any()
            else DEFAULT_PRIOR
        )

    selected = np.arange(len(pair_first))
    if drugs is not None:
        wanted = pd.Index(list(drugs))
        selected = np.flatnonzero(wanted.get_indexer(np.asarray(drug_names)[pair_drug]) >= 0)
    sel_pos = np.full(len(pair_first), -1)
    sel_pos[selected] = np.arange(len(selected))
    rows = sel_pos[pair_code] >= 0
    pair_q = np.zeros((len(selected), n_q), dtype=np.int64)
    np.add.at(pair_q, (sel_pos[pair_code[rows]], q_idx[rows]), n[rows])
    cum = pair_q.cumsum(axis=1)

    p_i, q_i = np.nonzero(cum > 0)  # a pair enters the trend with its first report
    pd_i, pe_i = pair_drug[selected][p_i], pair_event[selected][p_i]
    n_c = cum[p_i, q_i]
    dt, et, tot = drug_cum[pd_i, q_i], event_cum[pe_i, q_i], total_cum[q_i]
    bad = (n_c > dt) | (n_c > et) | (dt + et - n_c > tot)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise CountsError(
            f"cumulative counts incoherent at {quarters[q_i[k]]} for "
            f"({drug_names[pd_i[k]]!r}, {event_names[pe_i[k]]!r}): n {n_c[k]}, drug_total {dt[k]}, "
            f"event_total {et[k]}, total {tot[k]}"
        )
    scores = score_arrays(n_c, dt, et, tot, prior)
    out = pd.DataFrame(
        {
            "quarter": quarters[q_i],
            "drug": np.asarray(drug_names)[pd_i],
            "event": np.asarray(event_names)[pe_i],
            **scores,
            "drug_total": dt,
            "event_total": et,
            "total": tot,
        }
    )
    out = apply_rules(out, rules)
    for rule in rules:
        fired = np.where(out[rule.column].to_numpy(), q_i, n_q)
        first = np.full(len(selected), n_q)
        np.minimum.at(first, p_i, fired)
        labels = np.append(quarters, None)
        out[f"first_signal_quarter_{rule.name}"] = pd.Series(
            labels[first[p_i]], index=out.index, dtype=object
        )
    out = out.sort_values(["drug", "event"], kind="stable").reset_index(drop=True)
    out.attrs["prior"] = prior.to_dict()
    return out


def first_signal_quarters(trend: pd.DataFrame) -> pd.DataFrame:
    """One row per pair: drug, event and the first quarter each rule fired (None if never)."""
    cols = [c for c in trend.columns if c.startswith("first_signal_quarter_")]
    return trend.drop_duplicates(["drug", "event"])[["drug", "event", *cols]].reset_index(drop=True)


def _sum_by_quarter(q_idx: np.ndarray, code: np.ndarray, n: np.ndarray, size: int, n_q: int) -> np.ndarray:
    out = np.zeros((size, n_q), dtype=np.int64)
    np.add.at(out, (code, q_idx), n)
    return out


def _margin_by_quarter(
    q_idx: np.ndarray, code: np.ndarray, margin: np.ndarray, n_q: int, column: str
) -> np.ndarray:
    """Per-quarter margin per drug (event), which every row of that quarter must agree on."""
    size = int(code.max()) + 1 if len(code) else 0
    key = code.astype(np.int64) * n_q + q_idx
    frame = pd.DataFrame({"k": key, "m": margin})
    first = frame.groupby("k", sort=False)["m"].transform("first").to_numpy()
    if (first != margin).any():
        r = int(np.flatnonzero(first != margin)[0])
        raise CountsError(
            f"{column} {margin[r]} differs from another row of the same quarter", row=r, column=column
        )
    out = np.zeros((size, n_q), dtype=np.int64)
    uniq = frame.drop_duplicates("k")
    out.reshape(-1)[uniq["k"].to_numpy()] = uniq["m"].to_numpy()
    return out
