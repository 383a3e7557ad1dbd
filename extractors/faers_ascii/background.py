"""Full-background drug x PT report counts from staged tables of any source (FAERS ASCII, openFDA bulk).

EBGM's prior is fitted on the whole database, not on the watched drug's reports, so the counts
cover every drug: n = unique reports naming the drug and the PT, drug_total / event_total = unique
reports naming the drug / the PT, total = unique reports with at least one drug and one PT. This is
the `pv signals --counts` CSV (signals.contingency.COUNT_COLUMNS). DuckDB does the grouping straight
from the Parquet files, so a multi-quarter background never has to fit in pandas.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pandas as pd

COUNT_COLUMNS: tuple[str, ...] = ("drug", "event", "n", "drug_total", "event_total", "total")
ALL_ROLES: tuple[str, ...] = ("PS", "SS", "S", "C", "I")

_QUERY = """
WITH d AS (
    SELECT DISTINCT source || '|' || safetyreportid AS rid,
           upper(trim(coalesce(active_substance, medicinalproduct))) AS drug
    FROM drugs
    WHERE trim(coalesce(active_substance, medicinalproduct, '')) <> ''
      AND (role IS NULL OR upper(role) IN ({roles}))
),
r AS (
    SELECT DISTINCT source || '|' || safetyreportid AS rid, pt AS event
    FROM reactions
    WHERE trim(coalesce(pt, '')) <> ''
),
pairs AS (SELECT d.rid, d.drug, r.event FROM d JOIN r USING (rid)),
drug_totals AS (SELECT drug, count(DISTINCT rid) AS drug_total FROM pairs GROUP BY drug),
event_totals AS (SELECT event, count(DISTINCT rid) AS event_total FROM pairs GROUP BY event),
total AS (SELECT count(DISTINCT rid) AS total FROM pairs)
SELECT p.drug, p.event, count(*) AS n, dt.drug_total, et.event_total, total.total
FROM pairs p
JOIN drug_totals dt USING (drug)
JOIN event_totals et USING (event)
CROSS JOIN total
GROUP BY p.drug, p.event, dt.drug_total, et.event_total, total.total
ORDER BY p.drug, p.event
"""


def _roles_sql(roles: Sequence[str]) -> str:
    clean = [r.strip().upper() for r in roles if r.strip()]
    if not clean or any(not r.isalpha() for r in clean):
        raise ValueError(f"roles must be letter codes such as PS, SS, C, I; got {list(roles)}")
    return ", ".join(f"'{r}'" for r in clean)


def background_counts(
    drugs: pd.DataFrame, reactions: pd.DataFrame, *, roles: Sequence[str] = ALL_ROLES
) -> pd.DataFrame:
    """Counts from in-memory canonical drugs and reactions tables."""
    con = duckdb.connect()
    try:
        con.register(
            "drugs", drugs[["source", "safetyreportid", "active_substance", "medicinalproduct", "role"]]
        )
        con.register("reactions", reactions[["source", "safetyreportid", "pt"]])
        return _finish(con.execute(_QUERY.format(roles=_roles_sql(roles))).df())
    finally:
        con.close()


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _staged_connection(staged_dirs: Iterable[str | Path], memory_limit: str) -> duckdb.DuckDBPyConnection:
    dirs = [Path(d) for d in staged_dirs]
    if not dirs:
        raise ValueError("no staged partitions given")
    drug_files = [str(d / "drugs.parquet") for d in dirs]
    reaction_files = [str(d / "reactions.parquet") for d in dirs]
    missing = [f for f in [*drug_files, *reaction_files] if not Path(f).exists()]
    if missing:
        raise FileNotFoundError(f"staged partition incomplete: {missing}")
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute(
        "CREATE VIEW drugs AS SELECT source, safetyreportid, active_substance, medicinalproduct, role "
        f"FROM read_parquet({_sql_list(drug_files)}, union_by_name = true)"
    )
    con.execute(
        "CREATE VIEW reactions AS SELECT source, safetyreportid, pt "
        f"FROM read_parquet({_sql_list(reaction_files)}, union_by_name = true)"
    )
    return con


def background_counts_from_staged(
    staged_dirs: Iterable[str | Path], *, roles: Sequence[str] = ALL_ROLES, memory_limit: str = "1GB"
) -> pd.DataFrame:
    """Counts over the drugs.parquet / reactions.parquet of staged partitions (any source)."""
    con = _staged_connection(staged_dirs, memory_limit)
    try:
        return _finish(con.execute(_QUERY.format(roles=_roles_sql(roles))).df())
    finally:
        con.close()


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(COUNT_COLUMNS)].copy()
    for col in ("n", "drug_total", "event_total", "total"):
        out[col] = out[col].astype("int64")
    return out.reset_index(drop=True)


def write_background_counts(
    staged_dirs: Iterable[str | Path],
    out_csv: str | Path,
    *,
    roles: Sequence[str] = ALL_ROLES,
    memory_limit: str = "1GB",
) -> Path:
    """Write the counts CSV (written by DuckDB to a temp file, then renamed into place)."""
    out = Path(out_csv)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex}.tmp")
    con = _staged_connection(staged_dirs, memory_limit)
    try:
        query = _QUERY.format(roles=_roles_sql(roles))
        con.execute(
            f"COPY ({query}) TO '{tmp.as_posix().replace(chr(39), chr(39) * 2)}' (HEADER, DELIMITER ',')"
        )
        os.replace(tmp, out)
    finally:
        con.close()
        tmp.unlink(missing_ok=True)
    return out
