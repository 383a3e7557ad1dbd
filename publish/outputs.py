"""Write the dashboard tables per period (Parquet + CSV) and keep DuckDB views over all periods.

The schema is publish/schema.py (documented in docs/outputs.md): every file is written with that exact
Arrow schema, so a column's type never depends on a week's data (an all-null column stays a string, an
integer column with a missing value stays int64). A period's files are replaced whole on rerun; the views
glob every period, so BI tools (Superset, Metabase, Evidence) read one table per dataset.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from publish.schema import SCHEMA_VERSION, TABLES, arrow_schema

DASHBOARD_TABLES = tuple(TABLES)


def period_paths(data_dir: Path, table: str, drug: str, period: str) -> tuple[Path, Path]:
    base = Path(data_dir) / "published" / table / f"drug={drug}" / f"period={period}"
    return base / f"{table}.parquet", base / f"{table}.csv"


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, pd.Timestamp):
        return _plain(value.item())
    return value


def conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The frame with exactly the table's columns, in order, with pandas dtypes matching the Arrow types.

    schema_version is filled here; any other missing column is an error (the stages build every column).
    """
    frame = frame.assign(schema_version=SCHEMA_VERSION)
    missing = [c.name for c in TABLES[table] if c.name not in frame.columns]
    if missing:
        raise ValueError(f"dashboard table {table}: missing column(s) {missing}")
    out = pd.DataFrame(index=frame.index)
    for column in TABLES[table]:
        values = frame[column.name]
        if column.type == "string":
            out[column.name] = pd.array([None if (v := _plain(x)) is None else str(v) for x in values], dtype="string")
        elif column.type == "int64":
            out[column.name] = pd.array([_plain(x) for x in values], dtype="Int64")
        elif column.type == "double":
            out[column.name] = pd.array([_plain(x) for x in values], dtype="Float64").astype("float64")
        elif column.type == "bool":
            out[column.name] = pd.array([None if (v := _plain(x)) is None else bool(v) for x in values], dtype="boolean")
        else:
            out[column.name] = pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")
    return out.reset_index(drop=True)


def to_arrow(frame: pd.DataFrame, table: str) -> pa.Table:
    return pa.Table.from_pandas(conform(frame, table), schema=arrow_schema(table), preserve_index=False)


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a sibling temp file and rename. The file gets the process umask's permissions (not
    mkstemp's 0600), so dashboards running as another user can read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_period_table(data_dir: Path, table: str, drug: str, period: str, frame: pd.DataFrame) -> dict[str, str]:
    """Write one period's table as Parquet (typed per the schema) and CSV; return both paths."""
    if table not in DASHBOARD_TABLES:
        raise ValueError(f"unknown dashboard table {table!r}; expected one of {DASHBOARD_TABLES}")
    parquet_path, csv_path = period_paths(data_dir, table, drug, period)
    conformed = conform(frame, table)
    arrow = pa.Table.from_pandas(conformed, schema=arrow_schema(table), preserve_index=False)
    _atomic_write(parquet_path, lambda tmp: pq.write_table(arrow, tmp))
    _atomic_write(csv_path, lambda tmp: conformed.to_csv(tmp, index=False, lineterminator="\n"))
    return {"parquet": str(parquet_path), "csv": str(csv_path)}


def warehouse_path(data_dir: Path) -> Path:
    return Path(data_dir) / "warehouse.duckdb"


def refresh_warehouse_views(data_dir: Path, attempts: int = 60) -> Path:
    """(Re)create one view per dashboard table over all periods' Parquet files.

    DuckDB admits one writing process at a time; concurrent backfill runs retry until the lock frees.
    """
    import duckdb

    data_dir = Path(data_dir).resolve()
    path = warehouse_path(data_dir)
    statements = []
    for table in DASHBOARD_TABLES:
        pattern = (data_dir / "published" / table / "*" / "*" / f"{table}.parquet").as_posix()
        if not list((data_dir / "published" / table).glob(f"*/*/{table}.parquet")):
            continue
        statements.append(
            f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
            "hive_partitioning = true, union_by_name = true)"
        )
    for attempt in range(attempts):
        try:
            with duckdb.connect(str(path)) as connection:
                for statement in statements:
                    connection.execute(statement)
            return path
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.5)
    return path


# ------------------------------------------------------------------------------- earlier periods


def published_runs(data_dir: Path, drug: str) -> pd.DataFrame:
    """One row per published period of the drug: period, window_start, window_end, data_version."""
    rows = []
    for path in sorted((Path(data_dir) / "published" / "runs" / f"drug={drug}").glob("period=*/runs.parquet")):
        names = set(pq.read_schema(path).names)
        wanted = [c for c in ("period", "window_start", "window_end", "data_version") if c in names]
        frame = pq.read_table(path, columns=wanted).to_pandas()
        frame["period"] = path.parent.name.removeprefix("period=")
        rows.append(frame)
    if not rows:
        return pd.DataFrame(columns=["period", "window_start", "window_end", "data_version"])
    runs = pd.concat(rows, ignore_index=True)
    runs["window_end"] = pd.to_datetime(runs["window_end"], utc=True)
    return runs


def previous_period(data_dir: Path, drug: str, window_end: Any) -> str | None:
    """The published period with the latest window end strictly before this one (backfills run out of order)."""
    runs = published_runs(data_dir, drug)
    if runs.empty:
        return None
    end = pd.Timestamp(window_end)
    end = end.tz_convert("UTC") if end.tzinfo else end.tz_localize("UTC")
    earlier = runs.loc[runs["window_end"] < end].sort_values("window_end")
    return None if earlier.empty else str(earlier.iloc[-1]["period"])


def read_period_table(data_dir: Path, table: str, drug: str, period: str) -> pd.DataFrame | None:
    parquet_path, _ = period_paths(data_dir, table, drug, period)
    return pq.read_table(parquet_path).to_pandas() if parquet_path.exists() else None
