"""What changed since the previous report: new signals, signals lost, verdict changes, the data version.

A signal here is a PT or claim group on which at least one of the four rules fires (the flags of the
signals table); the rules that fire are listed with it. The previous report is the published period
with the latest window end before this one, so backfills that run out of order still compare with the
preceding week when it has been published.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from claims.assess import RULE_LABELS, SIGNAL_COLUMNS

SIGNAL_DEFINITION = "a PT or claim group on which at least one of the four signal rules fires"


@dataclass
class Changes:
    previous_period: str | None = None
    previous_data_version: str | None = None
    data_version: str | None = None
    new_signals: list[dict[str, Any]] = field(default_factory=list)
    lost_signals: list[dict[str, Any]] = field(default_factory=list)
    verdict_changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def has_previous(self) -> bool:
        return self.previous_period is not None

    @property
    def data_version_changed(self) -> bool:
        return self.has_previous and self.previous_data_version != self.data_version

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["has_previous"] = self.has_previous
        out["data_version_changed"] = self.data_version_changed
        return out

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> Changes:
        keys = ("previous_period", "previous_data_version", "data_version", "new_signals", "lost_signals", "verdict_changes")
        return cls(**{k: payload.get(k) for k in keys if k in payload})


def signal_key(row: pd.Series) -> tuple[str, str]:
    if row.get("level") == "claim_group":
        return ("claim_group", str(row.get("claim_id")))
    return ("pt", str(row.get("pt")))


def _flags(row: pd.Series) -> list[str]:
    return [RULE_LABELS[c] for c in SIGNAL_COLUMNS if c in row and _true(row[c])]


def _true(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return bool(value)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _signal_entry(key: tuple[str, str], row: pd.Series, rules: list[str]) -> dict[str, Any]:
    return {
        "level": key[0],
        "name": key[1],
        "rules": rules,
        "n": int(row["n"]) if pd.notna(row.get("n")) else None,
        "ic025": _finite(row.get("ic025")),
        "eb05": _finite(row.get("eb05")),
        "ror_lower": _finite(row.get("ror_lower")),
    }


def signal_map(signals: pd.DataFrame) -> dict[tuple[str, str], tuple[pd.Series, list[str]]]:
    """(level, name) -> (row, rules firing) for the rows with a signal."""
    out = {}
    for _, row in signals.iterrows():
        rules = _flags(row)
        if rules:
            out[signal_key(row)] = (row, rules)
    return out


def compare(
    signals: pd.DataFrame,
    claims: pd.DataFrame,
    data_version: str,
    previous_period: str | None,
    previous_signals: pd.DataFrame | None,
    previous_claims: pd.DataFrame | None,
    previous_data_version: str | None,
) -> Changes:
    """Changes between this report's tables and the previous report's published ones."""
    changes = Changes(data_version=str(data_version))
    if previous_period is None or previous_signals is None:
        return changes
    changes.previous_period = previous_period
    changes.previous_data_version = None if previous_data_version is None else str(previous_data_version)
    now, before = signal_map(signals), signal_map(previous_signals)
    changes.new_signals = sorted(
        (_signal_entry(k, row, rules) for k, (row, rules) in now.items() if k not in before),
        key=lambda e: (e["level"] != "claim_group", -(e["eb05"] or 0.0), e["name"]),
    )
    changes.lost_signals = sorted(
        (_signal_entry(k, row, rules) for k, (row, rules) in before.items() if k not in now),
        key=lambda e: (e["level"] != "claim_group", e["name"]),
    )
    if previous_claims is not None and not previous_claims.empty:
        earlier = dict(zip(previous_claims["claim_id"].astype(str), previous_claims["verdict"].astype(str), strict=False))
        for _, claim in claims.iterrows():
            before_verdict = earlier.get(str(claim["claim_id"]))
            if before_verdict is not None and before_verdict != str(claim["verdict"]):
                changes.verdict_changes.append(
                    {"claim_id": str(claim["claim_id"]), "before": before_verdict, "after": str(claim["verdict"])}
                )
    return changes
