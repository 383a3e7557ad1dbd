"""FDA's standard FAERS deduplication, across every quarter loaded together, with a tally per step.

A case (caseid) is re-sent as a new version (caseversion, with a new primaryid) whenever the
manufacturer or FDA learns more, and each version appears in the quarter it arrived in. Counting
every version would count one patient several times, so FDA recommends keeping only the latest
version of each case and dropping cases FDA has since deleted. The steps, in order:

1. orphan_rows: DRUG/REAC/... lines whose primaryid has no DEMO line in the same quarter
   (usually because that DEMO line was quarantined) are quarantined too.
2. duplicate_primaryid: the same primaryid in several DEMO lines (re-published in a later
   quarter, or repeated within one): the line from the latest quarter, last in file, is kept.
3. superseded_versions: per caseid, keep the highest caseversion; ties go to the latest fda_dt,
   then the highest primaryid. Legacy AERS reports have no caseversion and rank below any
   FAERS version of the same case.
4. deleted_cases: cases listed in FDA's deleted-cases files are removed.

Child rows follow their report: a report removed at step k removes its DRUG/REAC/... rows at
step k, so every loaded line ends up kept, quarantined or counted against exactly one step.
The result holds keep-masks over the quarters' own frames rather than copies, so a full quarter
is not held twice; `DedupResult.table` materializes only the columns a caller asks for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from extractors.faers_ascii.dates import parse_dates
from extractors.faers_ascii.layout import CHILD_TABLES, TABLE_NAMES
from extractors.faers_ascii.reader import RawQuarter, quarantine_frame

DEDUP_STEPS: tuple[str, ...] = ("orphan_rows", "duplicate_primaryid", "superseded_versions", "deleted_cases")
_FATES = ("kept", *DEDUP_STEPS)
KEPT, ORPHAN, DUPLICATE, SUPERSEDED, DELETED = range(5)


@dataclass
class DedupResult:
    """Which rows of each quarter's tables survive, and what each step removed."""

    quarters: list[RawQuarter]  # sorted by quarter
    keep: dict[str, list[np.ndarray]]  # table -> one bool mask per quarter
    removed: dict[str, dict[str, int]]  # step -> table -> rows removed
    loaded: dict[str, int]  # table -> rows that entered deduplication
    quarantine: pd.DataFrame  # orphan rows (step 1)
    deleted_caseids: int  # distinct caseids on the deleted-cases lists
    released: dict[str, int] = field(default_factory=dict)  # table -> kept rows, once freed

    def table(self, name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Kept rows of one table over all quarters, with a `quarter` column; only `columns` if given."""
        if name in self.released:
            raise ValueError(f"table {name} was released after use")
        parts = []
        for quarter, mask in zip(self.quarters, self.keep[name], strict=True):
            frame = quarter.tables[name]
            cols = list(frame.columns) if columns is None else [c for c in columns if c in frame.columns]
            part = frame.loc[mask, cols]
            part.insert(len(part.columns), "quarter", quarter.quarter)
            parts.append(part)
        out = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        if columns is not None:
            for missing in (c for c in columns if c not in out.columns):
                out[missing] = pd.Series(pd.NA, index=out.index, dtype="string")
        return out.reset_index(drop=True)

    def release(self, *names: str) -> None:
        """Free tables from the quarters once materialized; their kept counts stay available."""
        for name in names:
            if name in self.released:
                continue
            self.released[name] = int(sum(int(mask.sum()) for mask in self.keep[name]))
            for quarter in self.quarters:
                frame = quarter.tables[name]
                # a fresh empty frame: an empty slice would keep the Arrow buffers alive
                quarter.tables[name] = pd.DataFrame(
                    {c: pd.Series([], dtype=frame[c].dtype) for c in frame.columns}
                )
            self.keep[name] = [np.zeros(0, dtype=bool) for _ in self.quarters]

    def kept(self) -> dict[str, int]:
        return {
            name: self.released[name] if name in self.released else int(sum(int(m.sum()) for m in masks))
            for name, masks in self.keep.items()
        }

    def summary(self) -> dict[str, object]:
        return {"loaded": self.loaded, "removed": self.removed, "kept": self.kept()}


def _orphan_records(quarter: RawQuarter, table: str, lost: pd.DataFrame) -> pd.DataFrame:
    q = quarter.quarantine
    rejected_demo = q[(q["dataset"] == "faers_ascii/DEMO") & (q["action"] == "rejected")]
    demo_lines = dict(zip(rejected_demo["record_id"], rejected_demo["line_number"], strict=True))
    ids = lost["primaryid"].astype("string")
    demo_line = ids.map(demo_lines).astype("Int64")
    reason = ("primaryid " + ids + f": no DEMO line in {quarter.quarter}").where(
        demo_line.isna(),
        "primaryid " + ids + ": its DEMO line " + demo_line.astype("string") + " was quarantined",
    )
    return pd.DataFrame(
        {
            "stage": "extract",
            "dataset": f"faers_ascii/{table}",
            "record_id": ids,
            "field": "primaryid",
            "value": ids,
            "reason": reason,
            "source_file": quarter.loads[table].source_file,
            "line_number": lost["line_number"],
            "action": "rejected",
        }
    )


DEMO_KEY_COLUMNS = ("line_number", "primaryid", "caseid", "caseversion", "fda_dt")


@dataclass(frozen=True)
class CaseFates:
    """Outcome of steps 2-4 for every DEMO line of every quarter (computed from DEMO keys only)."""

    quarters: tuple[str, ...]  # sorted
    demo: dict[str, np.ndarray]  # quarter -> fate code per DEMO line, in file order
    deleted_caseids: int

    def for_quarter(self, quarter: str) -> np.ndarray:
        return self.demo[quarter]


def _demo_keys(frame: pd.DataFrame, rank: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": rank,
            "line_number": frame["line_number"].to_numpy(),
            "primaryid": frame["primaryid"].to_numpy(),
            "caseid": frame["caseid"].to_numpy(),
            "version": (
                frame["caseversion"].fillna(-1).to_numpy(dtype="int64")
                if "caseversion" in frame.columns
                else np.full(len(frame), -1, dtype="int64")
            ),
            "fda_dt": parse_dates(frame["fda_dt"], partial=False).date.to_numpy(),
        }
    )


def case_fates(demos: Mapping[str, pd.DataFrame], deleted_caseids: Iterable[int] = ()) -> CaseFates:
    """Steps 2-4 over the DEMO tables of all quarters (only DEMO_KEY_COLUMNS are read)."""
    if not demos:
        raise ValueError("deduplication needs at least one quarter")
    labels = sorted(demos)
    deleted = set(deleted_caseids)
    demo = pd.concat([_demo_keys(demos[q], rank) for rank, q in enumerate(labels)], ignore_index=True)
    fate = np.full(len(demo), KEPT, dtype=np.int8)

    # 2. duplicate primaryid: keep the latest quarter's (then the last) line.
    order = demo.sort_values(["rank", "line_number"], kind="stable").index
    dup = demo.loc[order, "primaryid"].duplicated(keep="last")
    fate[dup[dup].index.to_numpy()] = DUPLICATE

    # 3. latest version per case: highest caseversion, then latest fda_dt, then highest primaryid.
    alive = demo[fate == KEPT].sort_values(
        ["version", "fda_dt", "primaryid"], na_position="first", kind="stable"
    )
    superseded = alive["caseid"].duplicated(keep="last")
    fate[superseded[superseded].index.to_numpy()] = SUPERSEDED

    # 4. deleted cases.
    if deleted:
        fate[(fate == KEPT) & demo["caseid"].isin(deleted).to_numpy()] = DELETED

    ranks = demo["rank"].to_numpy()
    return CaseFates(
        quarters=tuple(labels),
        demo={q: fate[ranks == rank] for rank, q in enumerate(labels)},
        deleted_caseids=len(deleted),
    )


def apply_fates(
    quarter: RawQuarter, demo_fate: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]], list[pd.DataFrame]]:
    """Keep-masks, removals per step and orphan quarantine rows of one quarter's tables."""
    removed = {step: dict.fromkeys(TABLE_NAMES, 0) for step in DEDUP_STEPS}
    demo_ids = quarter.tables["DEMO"]["primaryid"].to_numpy()
    if len(demo_ids) != len(demo_fate):
        raise ValueError(f"{quarter.quarter}: {len(demo_fate)} DEMO fates for {len(demo_ids)} DEMO lines")
    keep = {"DEMO": demo_fate == KEPT}
    counts = np.bincount(demo_fate, minlength=len(_FATES))
    for code, step in enumerate(_FATES[1:], start=1):
        removed[step]["DEMO"] += int(counts[code])
    # fate of each primaryid of this quarter: that of its surviving line, if any survived step 2
    survivor = demo_fate != DUPLICATE
    pid_fate = pd.Series(demo_fate[survivor], index=demo_ids[survivor])
    pid_fate = pid_fate[~pid_fate.index.duplicated(keep="last")]
    all_ids = pd.Index(demo_ids)
    orphan_records: list[pd.DataFrame] = []
    for name in CHILD_TABLES:
        frame = quarter.tables[name]
        child_ids = frame["primaryid"]
        child_fate = child_ids.map(pid_fate).fillna(DUPLICATE).to_numpy(dtype=np.int8, copy=True)
        orphan = ~child_ids.isin(all_ids).to_numpy()
        child_fate[orphan] = ORPHAN
        if orphan.any():
            orphan_records.append(
                _orphan_records(quarter, name, frame.loc[orphan, ["primaryid", "line_number"]])
            )
        keep[name] = child_fate == KEPT
        counts = np.bincount(child_fate, minlength=len(_FATES))
        for code, step in enumerate(_FATES[1:], start=1):
            removed[step][name] += int(counts[code])
    return keep, removed, orphan_records


def deleted_caseids_of(quarters: Iterable[RawQuarter], extra: Iterable[int] = ()) -> set[int]:
    deleted = set(extra)
    for quarter in quarters:
        deleted.update(quarter.deleted_caseids)
    return deleted


def dedup_quarter(quarter: RawQuarter, fates: CaseFates) -> DedupResult:
    """The result for one quarter of a multi-quarter deduplication (see `case_fates`)."""
    keep, removed, orphans = apply_fates(quarter, fates.for_quarter(quarter.quarter))
    return DedupResult(
        quarters=[quarter],
        keep={name: [mask] for name, mask in keep.items()},
        removed=removed,
        loaded={name: len(quarter.tables[name]) for name in TABLE_NAMES},
        quarantine=quarantine_frame(pd.concat(orphans, ignore_index=True))
        if orphans
        else quarantine_frame([]),
        deleted_caseids=fates.deleted_caseids,
    )


def deduplicate(quarters: Sequence[RawQuarter], deleted_caseids: Iterable[int] = ()) -> DedupResult:
    """Deduplicate the quarters together; `deleted_caseids` adds to the lists inside the zips."""
    if not quarters:
        raise ValueError("deduplicate needs at least one quarter")
    labels = [q.quarter for q in quarters]
    if len(set(labels)) != len(labels):
        raise ValueError(f"quarter loaded twice: {sorted(labels)}")
    ordered = sorted(quarters, key=lambda q: q.quarter)
    fates = case_fates(
        {q.quarter: q.tables["DEMO"] for q in ordered}, deleted_caseids_of(ordered, deleted_caseids)
    )
    removed = {step: dict.fromkeys(TABLE_NAMES, 0) for step in DEDUP_STEPS}
    keep: dict[str, list[np.ndarray]] = {name: [] for name in TABLE_NAMES}
    orphan_records: list[pd.DataFrame] = []
    for quarter in ordered:
        masks, quarter_removed, orphans = apply_fates(quarter, fates.for_quarter(quarter.quarter))
        for name, mask in masks.items():
            keep[name].append(mask)
        for step, tables in quarter_removed.items():
            for name, count in tables.items():
                removed[step][name] += count
        orphan_records.extend(orphans)
    quarantine = (
        quarantine_frame(pd.concat(orphan_records, ignore_index=True))
        if orphan_records
        else quarantine_frame([])
    )
    return DedupResult(
        quarters=list(ordered),
        keep=keep,
        removed=removed,
        loaded={name: sum(len(q.tables[name]) for q in ordered) for name in TABLE_NAMES},
        quarantine=quarantine,
        deleted_caseids=fates.deleted_caseids,
    )
