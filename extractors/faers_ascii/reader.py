"""Read one FAERS/AERS quarterly ASCII release (the zip FDA publishes, or its extracted folder).

The fast path is pyarrow's CSV reader over the whole member ('$'-delimited, no quoting). Lines
it cannot parse (wrong field count, usually an embedded '$' or a line break inside a field)
are handed to a small Python fallback that repairs only the harmless case (a missing or extra
trailing '$') and quarantines the rest with file, line number and reason. Keys and the dates the
pipeline uses are then checked column-wise; a line failing them is quarantined whole, so every
data line ends up either loaded, blank or quarantined, and `TableLoad` says how many of each.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from extractors.faers_ascii.dates import parse_dates
from extractors.faers_ascii.layout import (
    DATE_COLUMNS,
    DELETED_PATTERN,
    KEY_COLUMNS,
    MEMBER_PATTERN,
    REQUIRED_TEXT,
    TABLE_NAMES,
    canonical_column,
    quarter_from_member,
    quarter_from_text,
)
from normalization.model import QUARANTINE_COLUMNS, conform

STAGE = "extract"
BadDates = Literal["reject", "null"]
TRAILING = "_trailing"
_PLACEHOLDER = re.compile(r"^(|v\d+)$", re.IGNORECASE)  # '' or re-serialized 'v23'


class FaersFormatError(ValueError):
    """A file cannot be read at all (no header, missing table, mixed quarters)."""


@dataclass(frozen=True)
class TableLoad:
    """How the data lines of one file were accounted for: data_lines = loaded + blank + quarantined."""

    table: str
    source_file: str
    data_lines: int
    loaded: int
    blank: int
    quarantined: int
    repaired: int  # lines accepted after dropping/adding a trailing '$'
    encoding: str
    line_ending: str
    trailing_separator: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class RawQuarter:
    """The seven tables of one quarter, renamed to current FAERS columns, all values as strings.

    Key columns (primaryid, caseid, caseversion, drug_seq) are int64 / Int64; `line_number`
    points back at the source line.
    """

    quarter: str
    era: str  # 'faers' (2012Q4 on, primaryid/caseversion) | 'aers' (legacy, ISR/CASE)
    source: str
    tables: dict[str, pd.DataFrame]
    loads: dict[str, TableLoad]
    quarantine: pd.DataFrame
    deleted_caseids: list[int] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)


@dataclass
class _Rejects:
    """Quarantine rows collected while reading one file."""

    table: str
    source_file: str
    rows: list[dict[str, object]] = field(default_factory=list)

    def add(
        self,
        line: int,
        record_id: str | None,
        fld: str | None,
        value: str | None,
        reason: str,
        action: str = "rejected",
    ) -> None:
        self.rows.append(
            {
                "stage": STAGE,
                "dataset": f"faers_ascii/{self.table}",
                "record_id": record_id or f"{Path(self.source_file).name}:{line}",
                "field": fld,
                "value": value,
                "reason": reason,
                "source_file": self.source_file,
                "line_number": line,
                "action": action,
            }
        )

    def frame(self) -> pd.DataFrame:
        return quarantine_frame(sorted(self.rows, key=lambda row: int(row["line_number"])))

    def rejected_lines(self) -> int:
        return len({row["line_number"] for row in self.rows if row["action"] == "rejected"})


def quarantine_frame(rows: list[dict[str, object]] | pd.DataFrame) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS))
    return conform(frame, QUARANTINE_COLUMNS)


def _split_header(data: bytes, source_file: str) -> tuple[list[str], bool]:
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    crlf = first.endswith(b"\r")
    header = first.rstrip(b"\r").decode("latin-1").strip()
    if not header or "$" not in header:
        raise FaersFormatError(f"{source_file}: no '$'-delimited header line")
    return [canonical_column(name) for name in header.split("$")], crlf


def _sample_has_trailing(data: bytes, n_columns: int, sample_lines: int = 200) -> bool:
    """True when most data lines end with an extra, empty '$' field (legacy AERS style)."""
    lines = data[: 1 << 20].split(b"\n")[1 : sample_lines + 1]
    with_extra = without = 0
    for raw in lines:
        line = raw.rstrip(b"\r")
        if not line:
            continue
        fields = line.count(b"$") + 1
        if fields == n_columns + 1 and line.endswith(b"$"):
            with_extra += 1
        elif fields == n_columns:
            without += 1
    return with_extra > without


def _is_utf8(data: bytes, chunk: int = 1 << 24) -> bool:
    """ASCII (the usual case) is checked in milliseconds; otherwise validate in bounded slices."""
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(data), chunk):
            decoder.decode(view[start : start + chunk])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_arrow(data: bytes, names: list[str], encoding: str) -> tuple[pa.Table, list[tuple[int, str, int]]]:
    invalid: list[tuple[int, str, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((int(row.number), row.text, int(row.actual_columns)))
        return "skip"

    table = pacsv.read_csv(
        pa.BufferReader(data),
        read_options=pacsv.ReadOptions(
            use_threads=False,  # single-threaded: InvalidRow.number is then the physical line number
            skip_rows=1,
            column_names=names,
            encoding=encoding,
            block_size=1 << 24,
        ),
        parse_options=pacsv.ParseOptions(
            delimiter="$",
            quote_char=False,
            double_quote=False,
            escape_char=False,
            newlines_in_values=False,
            ignore_empty_lines=False,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )
    return table, invalid


def _line_numbers(n_rows: int, skipped: list[int]) -> np.ndarray:
    """Physical line number of each parsed row, given the lines the parser skipped."""
    rows = np.arange(n_rows, dtype=np.int64)
    if not skipped:
        return rows + 2
    bad = np.sort(np.asarray(skipped, dtype=np.int64))
    good_before = bad - 2 - np.arange(len(bad), dtype=np.int64)
    return rows + 2 + np.searchsorted(good_before, rows, side="right")


def _record_id(fields: list[str] | str | None) -> str | None:
    first = fields[0] if isinstance(fields, list) else fields
    if first is None:
        return None
    first = str(first).strip()
    return first if first.isdigit() else None


def read_table(
    data: bytes, *, table: str, source_file: str, bad_dates: BadDates = "reject"
) -> tuple[pd.DataFrame, TableLoad, pd.DataFrame]:
    """Parse one '$'-delimited table; returns (rows, accounting, quarantine records).

    `bad_dates`: 'reject' quarantines a line whose event/therapy/FDA date is not a date (the
    default: such a line is malformed); 'null' keeps the line with that date emptied.
    """
    header, crlf = _split_header(data, source_file)
    columns = header[:-1] if len(header) > 1 and _PLACEHOLDER.match(header[-1]) else header
    if len(set(columns)) != len(columns):
        raise FaersFormatError(f"{source_file}: duplicate column names in header {columns}")
    n = len(columns)
    trailing = _sample_has_trailing(data, n)
    names = [*columns, TRAILING] if trailing else list(columns)

    encoding = "utf8" if _is_utf8(data) else "latin-1"
    arrow, invalid = _read_arrow(data, names, encoding)

    rejects = _Rejects(table, source_file)
    frame = arrow.to_pandas()
    del arrow
    frame.insert(0, "line_number", _line_numbers(len(frame), [line for line, _, _ in invalid]))

    # Fallback path: lines the fast parser skipped.
    repaired_rows: list[list[str | None]] = []
    for line, text, actual in invalid:
        fields = text.split("$")
        if len(fields) == n + 1 and fields[-1] == "" and not trailing:
            fields = fields[:-1]
        elif len(fields) == n and trailing:
            pass
        else:
            shown = actual - 1 if trailing and text.endswith("$") else actual
            hint = "embedded '$'?" if shown > n else "line break inside a field?"
            rid = _record_id(fields)
            prefix = f"primaryid {rid}: " if rid else ""
            rejects.add(
                line,
                rid,
                None,
                text[:500],
                f"{prefix}line has {shown} fields where {n} are expected ({hint})",
            )
            continue
        repaired_rows.append([line, *[value if value != "" else None for value in fields[:n]]])
    repaired = len(repaired_rows)
    if repaired_rows:
        extra = pd.DataFrame(repaired_rows, columns=["line_number", *columns])
        extra = extra.astype({col: frame[col].dtype for col in columns})
        frame = pd.concat([frame, extra], ignore_index=True).sort_values("line_number", kind="stable")
        frame = frame.reset_index(drop=True)

    # A filled trailing column means one field too many: an embedded '$'.
    if trailing:
        overflow = frame[TRAILING].notna()
        for row in frame.loc[overflow, ["line_number", columns[0]]].itertuples(index=False):
            rid = _record_id(row[1])
            prefix = f"primaryid {rid}: " if rid else ""
            rejects.add(
                int(row[0]),
                rid,
                None,
                None,
                f"{prefix}line has {n + 1} fields where {n} are expected (embedded '$'?)",
            )
        frame = (frame.loc[~overflow] if overflow.any() else frame).drop(columns=TRAILING)

    blank_mask = frame[columns].isna().all(axis=1)
    blank = int(blank_mask.sum())
    if blank:
        frame = frame.loc[~blank_mask]

    frame = _check_keys(frame, table, rejects)
    frame = _check_dates(frame, table, rejects, bad_dates)
    frame = frame.reset_index(drop=True)

    quarantine = rejects.frame()
    data_lines = len(frame) + blank + rejects.rejected_lines()
    load = TableLoad(
        table=table,
        source_file=source_file,
        data_lines=data_lines,
        loaded=len(frame),
        blank=blank,
        quarantined=rejects.rejected_lines(),
        repaired=repaired,
        encoding=encoding,
        line_ending="CRLF" if crlf else "LF",
        trailing_separator=trailing,
    )
    return frame, load, quarantine


def _reject_mask(
    frame: pd.DataFrame,
    mask: pd.Series,
    rejects: _Rejects,
    fld: str,
    describe: Callable[[str | None, str, int], str],
) -> pd.DataFrame:
    """Quarantine the rows where `mask` holds; `describe(primaryid, value, i)` gives the reason."""
    if not mask.any():
        return frame
    bad = frame.loc[mask, ["line_number", frame.columns[1], fld]]
    for i, (line, rid_value, value) in enumerate(bad.itertuples(index=False)):
        rid = _record_id(None if pd.isna(rid_value) else str(rid_value))
        text = None if pd.isna(value) else str(value)
        rejects.add(int(line), rid, fld, text, describe(rid, text or "", i))
    return frame.loc[~mask]


def _check_keys(frame: pd.DataFrame, table: str, rejects: _Rejects) -> pd.DataFrame:
    keys = list(KEY_COLUMNS[table])
    if table == "DEMO" and "caseversion" in frame.columns:
        keys.append("caseversion")
    missing = [key for key in keys if key not in frame.columns]
    if missing:
        raise FaersFormatError(f"{rejects.source_file}: header lacks {missing}")
    for key in keys:
        ok = frame[key].str.strip().str.fullmatch(r"\d{1,18}").fillna(False).astype(bool)

        def why(rid: str | None, value: str, _: int, key: str = key) -> str:
            prefix = f"primaryid {rid}: " if rid and key != "primaryid" else ""
            if value == "":
                return f"{prefix}{key} is empty"
            return f"{prefix}{key} {value!r} is not a whole number"

        frame = _reject_mask(frame, ~ok, rejects, key, why)
        frame[key] = frame[key].str.strip().astype("int64")
    if "caseversion" in frame.columns:
        frame["caseversion"] = frame["caseversion"].astype("Int64")
    for column in REQUIRED_TEXT.get(table, ()):
        if column not in frame.columns:
            raise FaersFormatError(f"{rejects.source_file}: header lacks {column!r}")
        empty = frame[column].isna() | (frame[column].str.strip() == "").fillna(True)
        frame = _reject_mask(
            frame, empty, rejects, column, lambda rid, _v, _i, c=column: f"primaryid {rid}: {c} is empty"
        )
    return frame


def _check_dates(frame: pd.DataFrame, table: str, rejects: _Rejects, bad_dates: BadDates) -> pd.DataFrame:
    for column, partial in DATE_COLUMNS.get(table, ()):
        if column not in frame.columns:
            continue
        problem = parse_dates(frame[column], partial=partial).problem
        bad = problem.notna()
        problems = problem[bad].tolist()

        def why(rid: str | None, value: str, i: int, column: str = column, problems: list = problems) -> str:
            prefix = f"primaryid {rid}: " if rid else ""
            return f"{prefix}{column} {value!r} {problems[i]}"

        if bad_dates == "null":
            start = len(rejects.rows)
            _reject_mask(frame, bad, rejects, column, why)
            for row in rejects.rows[start:]:
                row["action"] = "nulled"
            frame.loc[bad, column] = None
        else:
            frame = _reject_mask(frame, bad, rejects, column, why)
    return frame


def _as_ints(lines: list[str]) -> tuple[list[int], int]:
    ids, skipped = [], 0
    for line in lines:
        text = line.strip().split("$")[0].strip()
        if text.isdigit():
            ids.append(int(text))
        elif text:
            skipped += 1
    return ids, skipped


def read_deleted_cases(data: bytes) -> list[int]:
    """caseids from one deleted-cases file (one per line; a header or blank lines are skipped)."""
    ids, _ = _as_ints(data.decode("latin-1").splitlines())
    return ids


def _members(
    path: Path,
) -> tuple[dict[str, tuple[str, Callable[[], bytes]]], list[tuple[str, Callable[[], bytes]]]]:
    """(table -> (display name, loader)), [(display name, loader) of deleted-case files]."""
    tables: dict[str, tuple[str, Callable[[], bytes]]] = {}
    deleted: list[tuple[str, Callable[[], bytes]]] = []

    def add(name: str, display: str, loader: Callable[[], bytes]) -> None:
        match = MEMBER_PATTERN.search(name)
        if match:
            table = match["table"].upper()
            if table in tables:
                raise FaersFormatError(f"{path}: two {table} files ({tables[table][0]}, {display})")
            tables[table] = (display, loader)
        elif DELETED_PATTERN.search(name):
            deleted.append((display, loader))

    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            add(file.name, str(file), file.read_bytes)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
        for name in names:

            def load(name: str = name) -> bytes:
                with zipfile.ZipFile(path) as archive:
                    return archive.read(name)

            add(name, f"{path.name}/{name}", load)
    else:
        raise FaersFormatError(f"{path}: neither a zip file nor a directory")
    return tables, deleted


def read_quarter(
    path: str | Path, *, quarter: str | None = None, bad_dates: BadDates = "reject"
) -> RawQuarter:
    """Read all seven tables (and any deleted-cases list) of one quarterly release."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"FAERS quarter {path} does not exist")
    members, deleted_members = _members(path)
    missing = [table for table in TABLE_NAMES if table not in members]
    if missing:
        raise FaersFormatError(f"{path}: no {', '.join(missing)} file (expected e.g. ascii/DEMO17Q2.txt)")
    quarters = {quarter_from_member(name) for name, _ in members.values()}
    if len(quarters) > 1:
        raise FaersFormatError(f"{path}: files of several quarters {sorted(q for q in quarters if q)}")
    found = quarters.pop() or quarter_from_text(path.name)
    if quarter and found and quarter != found:
        raise FaersFormatError(f"{path}: files are for {found}, not {quarter}")
    label = quarter or found
    if label is None:
        raise FaersFormatError(f"{path}: cannot tell the quarter; pass quarter='YYYYQn'")

    tables: dict[str, pd.DataFrame] = {}
    loads: dict[str, TableLoad] = {}
    quarantined: list[pd.DataFrame] = []
    for table in TABLE_NAMES:
        display, loader = members[table]
        frame, load, rejects = read_table(loader(), table=table, source_file=display, bad_dates=bad_dates)
        tables[table] = frame
        loads[table] = load
        quarantined.append(rejects)
    era = "faers" if "caseversion" in tables["DEMO"].columns else "aers"

    deleted: list[int] = []
    for _, loader in deleted_members:
        deleted.extend(read_deleted_cases(loader()))
    return RawQuarter(
        quarter=label,
        era=era,
        source=str(path),
        tables=tables,
        loads=loads,
        quarantine=quarantine_frame(pd.concat(quarantined, ignore_index=True)),
        deleted_caseids=sorted(set(deleted)),
        deleted_files=[name for name, _ in deleted_members],
    )


def read_deleted_case_files(paths: list[str | Path]) -> list[int]:
    """caseids from FDA deleted-cases files given separately from the quarterly zips."""
    ids: set[int] = set()
    for path in paths:
        ids.update(read_deleted_cases(Path(path).read_bytes()))
    return sorted(ids)
