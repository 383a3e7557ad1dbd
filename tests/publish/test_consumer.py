"""A dashboard's view of the published outputs: only duckdb, pyarrow and docs/outputs.md, no project code.

The files come from the fixture world's published weeks (conftest); this module imports nothing from
the project, as a BI tool would not.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "outputs.md"
TABLES = ("signals", "claims", "runs")
ARROW = {
    "string": pa.string(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
DUCKDB = {"string": "VARCHAR", "int64": "BIGINT", "double": "DOUBLE", "bool": "BOOLEAN", "timestamp": "TIMESTAMP WITH TIME ZONE"}
VERDICTS = {"supported", "not supported", "insufficient data", "not testable with this source"}


def documented_columns() -> dict[str, list[tuple[str, str]]]:
    """(column, type) per table from the '### <table>' sections of docs/outputs.md."""
    text = DOCS.read_text(encoding="utf-8")
    out: dict[str, list[tuple[str, str]]] = {}
    for table in TABLES:
        section = re.search(rf"^### {table}\n(.*?)(?=^#|\Z)", text, re.MULTILINE | re.DOTALL)
        assert section, f"docs/outputs.md has no '### {table}' section"
        rows = re.findall(r"^\| (\w+) \| (\w+) \| .* \|$", section.group(1), re.MULTILINE)
        out[table] = [(name, type_) for name, type_ in rows if name != "column"]
    return out


@pytest.fixture(scope="module")
def docs() -> dict[str, list[tuple[str, str]]]:
    return documented_columns()


@pytest.fixture(scope="module")
def data_dir(world_runs: dict[str, Any]) -> Path:
    return Path(world_runs["current"]["publish"]["warehouse"]).parent


def test_documented_schema_version(docs: dict[str, list[tuple[str, str]]]) -> None:
    assert "Schema version **2**" in DOCS.read_text(encoding="utf-8")
    for table, columns in docs.items():
        assert columns[-1] == ("schema_version", "int64"), table
        assert {t for _, t in columns} <= set(ARROW), table


@pytest.mark.parametrize("table", TABLES)
def test_parquet_files_have_the_documented_columns_and_types(table: str, docs: dict[str, Any], data_dir: Path) -> None:
    files = sorted((data_dir / "published" / table).glob(f"drug=*/period=*/{table}.parquet"))
    assert len(files) == 2  # the empty week and the week after it
    for path in files:
        schema = pq.read_schema(path)
        assert [(f.name, f.type) for f in schema] == [(name, ARROW[type_]) for name, type_ in docs[table]], path
        header = next(csv.reader(path.with_suffix(".csv").open(encoding="utf-8")))
        assert header == [name for name, _ in docs[table]]


@pytest.mark.parametrize("table", TABLES)
def test_duckdb_views_span_every_period_with_the_documented_types(table: str, docs: dict[str, Any], data_dir: Path) -> None:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        described = con.execute(f"DESCRIBE {table}").fetchall()
        periods = con.execute(f"SELECT DISTINCT period FROM {table} ORDER BY 1").fetchall()
    assert [(row[0], row[1]) for row in described] == [(name, DUCKDB[type_]) for name, type_ in docs[table]]
    assert [p[0] for p in periods] == ["2024-12-23T0600_2024-12-30T0600", "2024-12-30T0600_2025-01-06T0600"]


def test_a_dashboard_query_reads_verdicts_and_new_signals(data_dir: Path) -> None:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        verdicts = con.execute("SELECT DISTINCT verdict FROM claims").fetchall()
        new = con.execute(
            "SELECT period, pt, eb05 FROM signals WHERE new_signal ORDER BY window_end, eb05 DESC"
        ).fetchall()
        runs = con.execute(
            "SELECT period, new_reports, new_signals, previous_period FROM runs ORDER BY window_end"
        ).fetchall()
        bounds = con.execute(
            "SELECT count(*) FROM signals WHERE ror_lower > ror OR ror > ror_upper OR window_end <= window_start"
        ).fetchone()
    assert {v[0] for v in verdicts} == VERDICTS
    assert [(p, pt) for p, pt, _ in new] == [("2024-12-30T0600_2025-01-06T0600", "<script>alert(1)</script>")]
    assert runs == [
        ("2024-12-23T0600_2024-12-30T0600", 0, 0, None),
        ("2024-12-30T0600_2025-01-06T0600", 5, 1, "2024-12-23T0600_2024-12-30T0600"),
    ]
    assert bounds == (0,)
