"""Write the dashboard tables per period (Parquet + CSV) and keep DuckDB views over all periods.

Schema version 1 (docs/outputs.md). A period's files are replaced whole on rerun; the views glob every
period, so BI tools (Superset, Metabase, Evidence) read one table per dataset.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from pv.storage import atomic_write_csv, atomic_write_parquet

SCHEMA_VERSION = 1
DASHBOARD_TABLES = ("signals", "claims", "runs")


def period_paths(data_dir: Path, table: str, drug: str, period: str) -> tuple[Path, Path]:
    base = Path(data_dir) / "published" / table / f"drug={drug}" / f"period={period}"
    return base / f"{table}.parquet", base / f"{table}.csv"


def write_period_table(data_dir: Path, table: str, drug: str, period: str, frame: pd.DataFrame) -> dict[str, str]:
    if table not in DASHBOARD_TABLES:
        raise ValueError(f"unknown dashboard table {table!r}; expected one of {DASHBOARD_TABLES}")
    parquet_path, csv_path = period_paths(data_dir, table, drug, period)
    frame = frame.assign(schema_version=SCHEMA_VERSION)
    atomic_write_parquet(parquet_path, frame)
    atomic_write_csv(csv_path, frame)
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
