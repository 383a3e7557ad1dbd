"""Signal rules: named, cited threshold sets applied to score tables.

Each regulator screens with its own measure and thresholds; keeping them as data (not
code) lets a report list the rule, its source and thresholds next to the flags, and lets
reviewers see where the methods disagree on the same pair.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

_OPS: dict[str, Callable[[pd.Series, float], pd.Series]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Threshold:
    """One condition on a score column, e.g. Threshold("prr", ">=", 2)."""

    column: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"unknown comparison {self.op!r}; use one of {sorted(_OPS)}")

    def holds(self, scores: pd.DataFrame) -> pd.Series:
        return _OPS[self.op](scores[self.column], self.value)

    def __str__(self) -> str:
        return f"{self.column} {self.op} {self.value:g}"


@dataclass(frozen=True)
class SignalRule:
    """A screening rule: all thresholds must hold for a pair to be flagged."""

    name: str
    label: str
    source: str
    thresholds: tuple[Threshold, ...]

    @property
    def column(self) -> str:
        """Name of the boolean flag column added by ``apply_rules``."""
        return f"signal_{self.name}"

    def flags(self, scores: pd.DataFrame) -> pd.Series:
        flag = pd.Series(True, index=scores.index)
        for threshold in self.thresholds:
            flag &= threshold.holds(scores).to_numpy(dtype=bool)
        return flag.astype(bool)

    def describe(self) -> str:
        return f"{self.label}: " + ", ".join(str(t) for t in self.thresholds)


EVANS = SignalRule(
    name="evans",
    label="Evans (MHRA)",
    source=(
        "Evans SJW, Waller PC, Davis S. Use of proportional reporting ratios (PRRs) for signal "
        "generation from spontaneous adverse drug reaction reports. Pharmacoepidemiol Drug Saf "
        "2001;10:483-486."
    ),
    thresholds=(Threshold("prr", ">=", 2), Threshold("chi2", ">=", 4), Threshold("n", ">=", 3)),
)


def ema_rule(min_n: int = 3) -> SignalRule:
    """EMA/EudraVigilance ROR rule; the case-count floor (3 or 5) is a screening choice."""
    return SignalRule(
        name="ema",
        label=f"EMA (ROR025 > 1, N >= {min_n})",
        source=(
            "European Medicines Agency. Guideline on the use of statistical signal detection methods "
            "in the EudraVigilance data analysis system (EMEA/106464/2006 rev. 1), 2008: lower 95% "
            "limit of the ROR above 1 with a minimum number of cases."
        ),
        thresholds=(Threshold("ror_lower", ">", 1), Threshold("n", ">=", min_n)),
    )


EMA = ema_rule(3)

WHO_UMC = SignalRule(
    name="who_umc",
    label="WHO-UMC (IC025 > 0)",
    source=(
        "Bate A et al. A Bayesian neural network method for adverse drug reaction signal generation. "
        "Eur J Clin Pharmacol 1998;54:315-321; Noren GN, Hopstadius J, Bate A. Shrinkage "
        "observed-to-expected ratios for robust and transparent large-scale pattern discovery. "
        "Stat Methods Med Res 2013;22:57-69."
    ),
    thresholds=(Threshold("ic025", ">", 0),),
)

FDA = SignalRule(
    name="fda",
    label="FDA MGPS (EB05 >= 2)",
    source=(
        "Szarfman A, Machado SG, O'Neill RT. Use of screening algorithms and computer systems to "
        "efficiently signal higher-than-expected combinations of drugs and events in the US FDA's "
        "spontaneous reports database. Drug Saf 2002;25:381-392; DuMouchel W. Bayesian data mining "
        "in large frequency tables. Am Stat 1999;53:177-190."
    ),
    thresholds=(Threshold("eb05", ">=", 2),),
)

DEFAULT_RULES: tuple[SignalRule, ...] = (EVANS, EMA, WHO_UMC, FDA)


def apply_rules(scores: pd.DataFrame, rules: Sequence[SignalRule] = DEFAULT_RULES) -> pd.DataFrame:
    """Return a copy of ``scores`` with one boolean ``signal_<rule>`` column per rule."""
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ValueError(f"rule names must be unique, got {names}")
    needed = {t.column for r in rules for t in r.thresholds}
    missing = sorted(needed - set(scores.columns))
    if missing:
        raise ValueError(f"scores lack column(s) {missing} needed by the rules")
    out = scores.copy()
    for rule in rules:
        out[rule.column] = rule.flags(scores).to_numpy(dtype=bool)
    return out


def disagreements(flagged: pd.DataFrame, rules: Sequence[SignalRule] = DEFAULT_RULES) -> pd.DataFrame:
    """Pairs flagged by some rules but not all, with which rules flag them.

    Adds ``n_rules`` (how many rules flag the pair) and ``flagged_by`` (names, ';'-joined);
    sorted by n_rules descending so the near-consensus signals come first.
    """
    cols = [r.column for r in rules]
    flags = flagged[cols].to_numpy(dtype=bool)
    count = flags.sum(axis=1)
    mask = (count > 0) & (count < len(rules))
    names = np.array([r.name for r in rules])
    out = flagged.loc[mask].copy()
    out["n_rules"] = count[mask]
    out["flagged_by"] = [";".join(names[row]) for row in flags[mask]]
    return out.sort_values("n_rules", ascending=False, kind="stable")


def agreement_matrix(flagged: pd.DataFrame, rules: Sequence[SignalRule] = DEFAULT_RULES) -> pd.DataFrame:
    """Number of pairs flagged by both rule i and rule j (diagonal: by rule i at all)."""
    flags = flagged[[r.column for r in rules]].to_numpy(dtype=np.int64)
    both = flags.T @ flags
    names = [r.name for r in rules]
    return pd.DataFrame(both, index=names, columns=names)
