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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from extractors.faers_ascii.dates import parse_dates
from extractors.faers_ascii.layout import CHILD_TABLES, TABLE_NAMES
from extractors.faers_ascii.reader import RawQuarter, quarantine_frame

DEDUP_STEPS: tuple[str, ...] = ("orphan_rows", "duplicate_primaryid", "superseded_versions", "deleted_cases")
KEPT = "kept"


@dataclass
class DedupResult:
    """Kept rows of every table (with a `quarter` column) and what each step removed."""

    tables: dict[str, pd.DataFrame]
    removed: dict[str, dict[str, int]]  # step -> table -> rows removed
    loaded: dict[str, int]  # table -> rows that entered deduplication
    quarantine: pd.DataFrame  # orphan rows (step 1)
    deleted_caseids: int  # distinct caseids on the deleted-cases lists

    def kept(self) -> dict[str, int]:
        return {table: len(frame) for table, frame in self.tables.items()}

    def summary(self) -> dict[str, object]:
        return {"loaded": self.loaded, "removed": self.removed, "kept": self.kept()}


def _orphans(quarter: RawQuarter) -> tuple[dict[str, pd.DataFrame], list[pd.DataFrame]]:
    """Split each child table of one quarter into rows with a DEMO line and quarantined orphans."""
    demo_ids = quarter.tables["DEMO"]["primaryid"]
    q = quarter.quarantine
    rejected_demo = q[(q["dataset"] == "faers_ascii/DEMO") & (q["action"] == "rejected")]
    demo_lines = dict(zip(rejected_demo["record_id"], rejected_demo["line_number"], strict=True))
    kept: dict[str, pd.DataFrame] = {}
    records: list[pd.DataFrame] = []
    for table in CHILD_TABLES:
        frame = quarter.tables[table]
        orphan = ~frame["primaryid"].isin(demo_ids)
        kept[table] = frame[~orphan] if orphan.any() else frame
        if not orphan.any():
            continue
        lost = frame.loc[orphan, ["primaryid", "line_number"]]
        ids = lost["primaryid"].astype("string")
        demo_line = ids.map(demo_lines)
        reason = ("primaryid " + ids + f": no DEMO line in {quarter.quarter}").where(
            demo_line.isna(),
            "primaryid " + ids + ": its DEMO line " + demo_line.astype("string") + " was quarantined",
        )
        records.append(
            pd.DataFrame(
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
        )
    return kept, records


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def deduplicate(quarters: Sequence[RawQuarter], deleted_caseids: Iterable[int] = ()) -> DedupResult:
    """Deduplicate the quarters together; `deleted_caseids` adds to the lists inside the zips."""
    if not quarters:
        raise ValueError("deduplicate needs at least one quarter")
    labels = [q.quarter for q in quarters]
    if len(set(labels)) != len(labels):
        raise ValueError(f"quarter loaded twice: {sorted(labels)}")
    ordered = sorted(quarters, key=lambda q: q.quarter)
    deleted = set(deleted_caseids)
    for quarter in ordered:
        deleted.update(quarter.deleted_caseids)

    removed = {step: dict.fromkeys(TABLE_NAMES, 0) for step in DEDUP_STEPS}
    loaded = dict.fromkeys(TABLE_NAMES, 0)
    children: dict[str, list[pd.DataFrame]] = {table: [] for table in CHILD_TABLES}
    orphan_records: list[pd.DataFrame] = []
    demos: list[pd.DataFrame] = []
    for rank, quarter in enumerate(ordered):
        for table in TABLE_NAMES:
            loaded[table] += len(quarter.tables[table])
        kept, records = _orphans(quarter)
        orphan_records.extend(records)
        for table in CHILD_TABLES:
            removed["orphan_rows"][table] += len(quarter.tables[table]) - len(kept[table])
            children[table].append(kept[table].assign(quarter=quarter.quarter))
        demo = quarter.tables["DEMO"]
        demos.append(demo.assign(quarter=quarter.quarter, _rank=rank))

    demo = _concat(demos)
    if "caseversion" not in demo.columns:
        demo["caseversion"] = pd.array([pd.NA] * len(demo), dtype="Int64")
    fate = pd.Series(KEPT, index=demo.index, dtype="object")

    # 2. duplicate primaryid: keep the latest quarter's (then the last) line.
    order = demo.sort_values(["_rank", "line_number"], kind="stable").index
    dup = demo.loc[order, "primaryid"].duplicated(keep="last")
    fate[dup[dup].index] = "duplicate_primaryid"

    # 3. latest version per case.
    alive = fate == KEPT
    ranking = pd.DataFrame(
        {
            "caseid": demo["caseid"],
            "version": demo["caseversion"].fillna(-1).astype("int64"),
            "fda_dt": parse_dates(demo["fda_dt"], partial=False).date,
            "primaryid": demo["primaryid"],
        }
    )[alive]
    ranking = ranking.sort_values(["version", "fda_dt", "primaryid"], na_position="first", kind="stable")
    superseded = ranking["caseid"].duplicated(keep="last")
    fate[superseded[superseded].index] = "superseded_versions"

    # 4. deleted cases.
    if deleted:
        gone = (fate == KEPT) & demo["caseid"].isin(deleted)
        fate[gone] = "deleted_cases"

    for step in DEDUP_STEPS[1:]:
        removed[step]["DEMO"] = int((fate == step).sum())

    # Child rows follow the fate of their report's surviving DEMO line in the same quarter.
    pair_fate = pd.DataFrame({"quarter": demo["quarter"], "primaryid": demo["primaryid"], "fate": fate})
    pair_fate = pair_fate[pair_fate["fate"] != "duplicate_primaryid"].drop_duplicates(
        ["quarter", "primaryid"]
    )
    tables: dict[str, pd.DataFrame] = {
        "DEMO": demo.loc[fate == KEPT].drop(columns="_rank").reset_index(drop=True)
    }
    for table in CHILD_TABLES:
        kept_parts = []
        for part in children[table]:
            label = part["quarter"].iat[0] if len(part) else None
            lookup = pair_fate[pair_fate["quarter"] == label].set_index("primaryid")["fate"]
            child_fate = part["primaryid"].map(lookup).fillna("duplicate_primaryid")
            for step, count in child_fate.value_counts().items():
                if step != KEPT:
                    removed[str(step)][table] += int(count)
            kept_parts.append(part[child_fate == KEPT])
        tables[table] = _concat(kept_parts).reset_index(drop=True) if kept_parts else pd.DataFrame()

    quarantine = (
        quarantine_frame(pd.concat(orphan_records, ignore_index=True))
        if orphan_records
        else quarantine_frame([])
    )
    return DedupResult(
        tables=tables, removed=removed, loaded=loaded, quarantine=quarantine, deleted_caseids=len(deleted)
    )
