"""Benchmark of the signal statistics engine.

Scores a synthetic FAERS-sized background -- 1,000,000 drug x event pairs over about
10,000 PTs and 20,000 drugs, most pairs seen 1 to 3 times -- with the prior fit and every
measure (score_table, as the CLI and pipeline call it), then the openEBGM caers table. Prints a figures table and writes
var/benchmarks/signals.json.

    .venv/bin/python benchmarks/bench_signals.py [--pairs 1000000] [--seed 20240601]

Targets (issue 6): under 20 s and under 2 GB peak RSS on 2 cores for 1,000,000 pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signals import ebgm  # noqa: E402
from signals.contingency import count_reports, expected_count, two_by_two  # noqa: E402
from signals.measures import chi2_yates, ic, prr, ror, score_table  # noqa: E402
from signals.validation import check_counts  # noqa: E402

CAERS = ROOT / "tests" / "data" / "reference" / "openebgm-caers.csv"
OUT = ROOT / "var" / "benchmarks" / "signals.json"
T = TypeVar("T")


#: Prior the synthetic counts are drawn from (alpha1, beta1, alpha2, beta2, p): 5% of pairs
#: from a wide component (mean RR 3), the rest around RR 1.
TRUE_PRIOR = (0.3, 0.1, 4.0, 4.0, 0.05)


def synthetic_background(
    n_pairs: int,
    n_drugs: int = 20_000,
    n_events: int = 10_000,
    seed: int = 20240601,
    mass_per_pair: float = 1.62,
) -> pd.DataFrame:
    """Sparse drug x PT counts shaped like FAERS, drawn from the MGPS model itself.

    Drug and PT popularity are Zipf-like, mu = M w_drug v_event; each cell's count is
    NegBin (Poisson with a two-gamma rate, TRUE_PRIOR). Only non-zero cells are drawn, by
    thinning a Poisson stream of candidate cells (rate M * E[lambda]) with acceptance
    P(N >= 1) / (1 - exp(-E[lambda] mu)) and then sampling the zero-truncated count, so the
    200 million possible cells are never enumerated. Most pairs end up with n = 1 to 3.
    Margins are the sums over the table, as the CLI does for files without margins.
    """
    rng = np.random.default_rng(seed)
    a1, b1, a2, b2, p = TRUE_PRIOR
    mean_rr = p * a1 / b1 + (1 - p) * a2 / b2
    drug_w = 1.0 / np.arange(1, n_drugs + 1) ** 1.0
    event_w = 1.0 / np.arange(1, n_events + 1) ** 0.8
    drug_w /= drug_w.sum()
    event_w /= event_w.sum()
    mass = mass_per_pair * n_pairs * 1.05
    k = rng.poisson(mass * mean_rr)
    cand = rng.choice(n_drugs, size=k, p=drug_w).astype(np.int64) * n_events + rng.choice(
        n_events, size=k, p=event_w
    )
    codes = np.unique(cand)
    del cand
    mu = mass * drug_w[codes // n_events] * event_w[codes % n_events]
    s1 = -np.expm1(a1 * np.log(b1 / (b1 + mu)))  # P(N >= 1) per component
    s2 = -np.expm1(a2 * np.log(b2 / (b2 + mu)))
    seen = p * s1 + (1 - p) * s2
    accept = rng.random(codes.size) < seen / -np.expm1(-mean_rr * mu)
    codes, mu, s1, seen = codes[accept], mu[accept], s1[accept], seen[accept]
    first = rng.random(codes.size) < p * s1 / seen
    alpha = np.where(first, a1, a2)
    prob = np.where(first, b1, b2) / (np.where(first, b1, b2) + mu)
    p0 = prob**alpha
    n = np.maximum(stats.nbinom.ppf(p0 + rng.random(codes.size) * (1 - p0), alpha, prob), 1).astype(np.int64)
    keep = rng.permutation(codes.size)[:n_pairs]
    codes, n = codes[keep], n[keep]
    frame = pd.DataFrame(
        {
            "drug": pd.Categorical.from_codes(codes // n_events, [f"DRUG{i:05d}" for i in range(n_drugs)]),
            "event": pd.Categorical.from_codes(codes % n_events, [f"PT{i:05d}" for i in range(n_events)]),
            "n": n,
        }
    )
    frame["drug_total"] = frame.groupby("drug", observed=True)["n"].transform("sum").astype(np.int64)
    frame["event_total"] = frame.groupby("event", observed=True)["n"].transform("sum").astype(np.int64)
    frame["total"] = np.int64(frame["n"].sum())
    return frame


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def cpu_timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """Wall and CPU seconds: on a shared machine CPU time shows the cost without the waiting."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_background(n_pairs: int, seed: int) -> dict[str, Any]:
    counts, t_gen = timed(lambda: synthetic_background(n_pairs, seed=seed))
    rss_after_gen = peak_rss_mb()
    (scores, prior), t_total, cpu_total = cpu_timed(lambda: score_table(counts))
    assert prior is not None
    rss_after_score = peak_rss_mb()

    # component timings, re-run separately (the total above is the figure that counts)
    n = counts["n"].to_numpy(dtype=np.float64)
    e = expected_count(counts["drug_total"], counts["event_total"], counts["total"])
    table = two_by_two(n, counts["drug_total"], counts["event_total"], counts["total"])
    _, t_validate = timed(lambda: check_counts(counts))
    _, t_fit = timed(lambda: ebgm.fit_prior(n, e))
    _, t_closed = timed(lambda: (prr(*table), ror(*table), chi2_yates(*table), ic(table.a, e)))
    _, t_eb = timed(lambda: ebgm.eb_scores(prior, n, e))

    values = scores[["prr", "ror", "ic025", "eb05", "eb95", "ebgm"]].to_numpy()
    return {
        "pairs": int(len(counts)),
        "drugs": int(counts["drug"].nunique()),
        "events": int(counts["event"].nunique()),
        "share_n_1_to_3": float(((counts["n"] >= 1) & (counts["n"] <= 3)).mean()),
        "generate_s": t_gen,
        "score_table_s": t_total,
        "score_table_cpu_s": cpu_total,
        "validate_s": t_validate,
        "prior_fit_s": t_fit,
        "closed_form_s": t_closed,
        "eb_scores_s": t_eb,
        "peak_rss_mb_after_generate": rss_after_gen,
        "peak_rss_mb": rss_after_score,
        "nan_values": int(np.isnan(values).sum()),
        "prior": prior.to_dict(),
        "eb05_ge_2": int((scores["eb05"] >= 2).sum()),
    }


def bench_caers() -> dict[str, Any]:
    raw = pd.read_csv(CAERS)
    counted, t_count = timed(lambda: count_reports(raw, report_col="id", drug_col="var1", event_col="var2"))
    (scores, prior), t_score = timed(lambda: score_table(counted))
    assert prior is not None
    return {
        "pairs": int(len(counted)),
        "count_reports_s": t_count,
        "score_table_s": t_score,
        "neg_log_likelihood": prior.neg_log_likelihood,
        "converged": prior.converged,
        "eb05_ge_2": int((scores["eb05"] >= 2).sum()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    caers = bench_caers()
    background = bench_background(args.pairs, args.seed)
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "targets": {"score_table_s": 20.0, "peak_rss_mb": 2048.0, "caers_neg_log_likelihood_max": 4162.456},
        "background": background,
        "caers": caers,
    }
    rows = [
        ("background pairs", f"{background['pairs']:,}"),
        ("  drugs / PTs", f"{background['drugs']:,} / {background['events']:,}"),
        ("  share with n in 1..3", f"{background['share_n_1_to_3']:.1%}"),
        ("  score_table (fit + all measures)", f"{background['score_table_s']:.2f} s   (target < 20 s)"),
        ("    of which CPU time", f"{background['score_table_cpu_s']:.2f} s"),
        ("    validation", f"{background['validate_s']:.2f} s"),
        ("    prior fit", f"{background['prior_fit_s']:.2f} s"),
        ("    PRR/ROR/chi2/IC", f"{background['closed_form_s']:.2f} s"),
        ("    EBGM/EB05/EB95", f"{background['eb_scores_s']:.2f} s"),
        ("  peak RSS", f"{background['peak_rss_mb']:.0f} MB   (target < 2048 MB)"),
        ("  NaN in scores", str(background["nan_values"])),
        ("  prior converged", str(background["prior"]["converged"])),
        ("caers pairs", f"{caers['pairs']:,}"),
        ("  count_reports", f"{caers['count_reports_s']:.3f} s"),
        ("  score_table (fit + all measures)", f"{caers['score_table_s']:.3f} s"),
        ("  neg log-likelihood", f"{caers['neg_log_likelihood']:.5f}   (target <= 4162.456)"),
        ("  EB05 >= 2", f"{caers['eb05_ge_2']}   (openEBGM: 131)"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'figure'.ljust(width)}  value")
    print(f"{'-' * width}  {'-' * 30}")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")
    ok = background["score_table_s"] < 20 and background["peak_rss_mb"] < 2048
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
