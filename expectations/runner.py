"""Run the project's Great Expectations suites (expectations/*.json) against a stage's DataFrame.

Suites live as JSON next to this module so they are reviewed like code. Each expectation says in
`meta.severity` whether a failure stops the run (critical) or is only reported (warning). Row-level
failures can be moved to the quarantine table (`quarantine_failed_rows`) so the valid rows continue and
nothing disappears silently. Every run writes GX's own validation result JSON, from which
`build_data_docs` renders GX Data Docs for the run.

GX runs in an ephemeral context (validation) or a throwaway file context under the run's directory
(Data Docs), never a global one, with analytics off.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
# GX's import logs one line per documented API when imported after Airflow has configured logging.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

import great_expectations as gx  # noqa: E402
from great_expectations.core.expectation_suite import ExpectationSuite  # noqa: E402
from great_expectations.core.expectation_validation_result import (  # noqa: E402
    ExpectationSuiteValidationResult,
    ExpectationSuiteValidationResultSchema,
)
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.data_context.types.resource_identifiers import (  # noqa: E402
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)
from great_expectations.execution_engine import pandas_execution_engine  # noqa: E402

from normalization import model  # noqa: E402
from pv.storage import atomic_write_json  # noqa: E402

SUITES_DIR = Path(__file__).resolve().parent
SUITES = (
    "raw_reports",
    "reports",
    "drugs",
    "reactions",
    "signals",
    "dashboard_signals",
    "dashboard_claims",
    "dashboard_runs",
)
SEVERITIES = ("critical", "warning")
MAX_EXAMPLES = 5
# GX's COMPLETE result keeps every offending value; the stored JSON keeps this many per expectation.
MAX_STORED_UNEXPECTED = 200
_DOCS_SITE = "pv_run"

# GX fingerprints every pandas batch below 1 GB by hashing all of it, twice per validation (get_batch
# and get_validator): about 1 s per million rows, more than the expectations themselves. The
# fingerprint is only a batch marker in the result; the run's lineage already identifies the data.
pandas_execution_engine.HASH_THRESHOLD = 0


class DataQualityError(Exception):
    """A critical expectation failed: the stage's output must not be published."""


@dataclass(frozen=True)
class ExpectationFailure:
    expectation: str
    column: str | None
    severity: str
    unexpected_count: int | None
    examples: list[Any]
    observed: Any = None
    rows: tuple[int, ...] = ()  # positional row numbers (row-level expectations only)
    message: str = ""

    @property
    def row_level(self) -> bool:
        return bool(self.rows)

    def describe(self) -> str:
        target = f" on {self.column}" if self.column else ""
        if self.examples:
            detail = f"{self.unexpected_count} unexpected, e.g. {self.examples}"
        elif self.observed is not None:
            detail = f"observed {self.observed!r}"
        else:
            detail = self.message or "failed"
        return f"{self.expectation}{target}: {detail}"


@dataclass
class ValidationOutcome:
    dataset: str
    success: bool
    critical_failures: list[ExpectationFailure]
    warnings: list[ExpectationFailure]
    counts: dict[str, int]
    result_path: Path | None
    skipped: list[str] = field(default_factory=list)

    def raise_for_critical(self, *, row_failures_quarantined: bool = False) -> None:
        """Raise DataQualityError naming the dataset, expectation and offending values.

        With row_failures_quarantined=True, row-level failures already moved to quarantine by
        `quarantine_failed_rows` no longer stop the run; table-level ones (counts, schema) still do.
        """
        failures = [f for f in self.critical_failures if not (row_failures_quarantined and f.row_level)]
        if failures:
            lines = "; ".join(f.describe() for f in failures)
            raise DataQualityError(
                f"dataset {self.dataset}: {len(failures)} critical expectation(s) failed: {lines}"
            )


def suite_path(name: str) -> Path:
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; expected one of {SUITES}")
    return SUITES_DIR / f"{name}.json"


def load_suite_config(name: str) -> dict[str, Any]:
    """The suite's JSON: name, meta, parameters (defaults for $PARAMETER), expectations."""
    config = json.loads(suite_path(name).read_text(encoding="utf-8"))
    for i, exp in enumerate(config["expectations"]):
        severity = exp.get("meta", {}).get("severity")
        if severity not in SEVERITIES:
            raise ValueError(f"{suite_path(name)}: expectation #{i} {exp['type']} has severity {severity!r}")
    return config


def _parameters_of(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        if "$PARAMETER" in value:
            return {str(value["$PARAMETER"])}
        return set().union(*(_parameters_of(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_parameters_of(v) for v in value)) if value else set()
    return set()


def _resolve(value: Any, params: Mapping[str, Any]) -> Any:
    """Replace {"$PARAMETER": name} with its value (GX 1.x only resolves top-level kwargs itself)."""
    if isinstance(value, Mapping):
        if "$PARAMETER" in value:
            return params[value["$PARAMETER"]]
        return {k: _resolve(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, params) for v in value]
    return value


def _is_date_parameter(name: str) -> bool:
    return name.startswith("window_") or name.endswith("date")


def _gx_value(value: Any, name: str = "") -> Any:
    """Context values as GX compares them: dates become pandas Timestamps (naive, like the tables)."""
    if isinstance(value, str) and _is_date_parameter(name):
        value = pd.Timestamp(value)
    if isinstance(value, (datetime, date, pd.Timestamp)):
        ts = pd.Timestamp(value)
        return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
    return value


def build_suite(name: str, context: Mapping[str, Any] | None = None) -> tuple[ExpectationSuite, list[str]]:
    """ExpectationSuite for `name` with its parameters resolved from `context` (falling back to the
    suite's defaults). Expectations marked meta.optional whose parameters are missing are skipped and
    named in the second value; a missing parameter of a required expectation is an error.
    """
    config = load_suite_config(name)
    defaults = {"max_receivedate": pd.Timestamp.now(tz="UTC").normalize() + pd.Timedelta(days=1)}
    given = {k: v for k, v in (context or {}).items() if v is not None}
    params = {**defaults, **config.get("parameters", {}), **given}
    params = {k: _gx_value(v, k) for k, v in params.items()}
    expectations, skipped = [], []
    for exp in config["expectations"]:
        needed = _parameters_of(exp["kwargs"])
        missing = sorted(needed - params.keys())
        if missing:
            if exp.get("meta", {}).get("optional"):
                skipped.append(f"{exp['type']} ({', '.join(missing)} not in context)")
                continue
            raise ValueError(f"suite {name}: {exp['type']} needs context {missing}")
        entry = copy.deepcopy(exp)
        entry["kwargs"] = _resolve(entry["kwargs"], params)
        entry["severity"] = entry["meta"]["severity"]
        expectations.append(entry)
    suite = ExpectationSuite(name=name, expectations=expectations, meta=config.get("meta", {}))
    if len(suite.expectations) != len(expectations):
        # GX logs and drops an expectation it cannot build (unknown type, bad kwargs): refuse instead.
        kept = {e.expectation_type for e in suite.expectations}
        lost = [e["type"] for e in expectations if e["type"] not in kept]
        raise ValueError(
            f"suite {name}: GX dropped {len(expectations) - len(suite.expectations)} expectation(s) {lost}"
        )
    return suite, skipped


def _context() -> Any:
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _plain(value: Any) -> Any:
    """JSON-friendly example value."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _exception_message(info: Mapping[str, Any]) -> str:
    """GX reports an expectation that could not run (missing column, type error) as exception_info,
    either flat or keyed by metric."""
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "raised an exception")
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return f"could not run: {value.get('exception_message') or 'exception'}"
    return ""


def _failure(res: Any) -> ExpectationFailure:
    config = res.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column")
    if column is None and "column_A" in kwargs:
        column = f"{kwargs['column_A']},{kwargs['column_B']}"
    if column is None and "column_list" in kwargs:
        column = ",".join(kwargs["column_list"])
    result = res.result or {}
    examples = [_plain(v) for v in (result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]]
    rows = result.get("unexpected_index_list") or []
    row_numbers = tuple(int(r) for r in rows if isinstance(r, (int, np.integer)))
    message = _exception_message(res.exception_info or {})
    return ExpectationFailure(
        expectation=config.type,
        column=column,
        severity=(config.meta or {}).get("severity", "critical"),
        unexpected_count=result.get("unexpected_count"),
        examples=examples,
        observed=_plain(result.get("observed_value")),
        rows=row_numbers,
        message=message,
    )


def _trim(payload: dict[str, Any]) -> dict[str, Any]:
    for res in payload.get("results", []):
        result = res.get("result") or {}
        for key in ("unexpected_list", "unexpected_index_list"):
            values = result.get(key)
            if isinstance(values, list) and len(values) > MAX_STORED_UNEXPECTED:
                result[key] = values[:MAX_STORED_UNEXPECTED]
                result.setdefault("details", {})[f"{key}_truncated_from"] = len(values)
    return payload


def _gx_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as GX evaluates it fastest, with the same values.

    GX's pandas between-check is vectorized only for numpy float/int and datetime64[ns] columns; for
    nullable Float64 and datetime64[s] it calls a Python function per row (seconds per million rows).
    So Float64 -> float64 (NA -> NaN) and datetime64[s] -> datetime64[ns] for validation only.
    """
    data = frame.reset_index(drop=True)
    converted = {}
    for column, dtype in data.dtypes.items():
        if str(dtype) == "Float64":
            converted[column] = data[column].to_numpy(dtype="float64", na_value=np.nan)
        elif isinstance(dtype, np.dtype) and dtype.kind == "M" and dtype != np.dtype("datetime64[ns]"):
            try:
                converted[column] = data[column].astype("datetime64[ns]")
            except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
                continue  # dates outside 1677-2262 stay as they are (slower, still checked)
    return data.assign(**converted) if converted else data


def validate_dataset(
    name: str,
    frame: pd.DataFrame,
    *,
    context: Mapping[str, Any],
    result_dir: Path,
) -> ValidationOutcome:
    """Validate `frame` with suite `name`; write GX's result JSON to result_dir/<name>.json atomically.

    context: run facts the suite's $PARAMETERs refer to, e.g. window_start/window_end (the receivedate
    window, optional), expected_rows (stage consistency), min_pt_known_share. Never raises on data
    problems: call raise_for_critical() on the outcome.
    """
    suite, skipped = build_suite(name, context)
    data = _gx_view(frame)
    ctx = _context()
    batch_definition = (
        ctx.data_sources.add_pandas(f"pv_{name}")
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe(name)
    )
    batch = batch_definition.get_batch(batch_parameters={"dataframe": data})
    # Pass 1 keeps only a few examples per expectation: GX's COMPLETE format deep-copies every
    # offending value, which costs seconds when a warning fails on a large share of a big table.
    result = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
    )
    # Pass 2 re-runs only failed critical row-level expectations, for the row numbers quarantine needs.
    rerun = [
        i
        for i, res in enumerate(result.results)
        if not res.success
        and (res.expectation_config.meta or {}).get("severity") == "critical"
        and "unexpected_count" in (res.result or {})
    ]
    if rerun:
        configs = [result.results[i].expectation_config.to_json_dict() for i in rerun]
        for config in configs:
            config.pop("id", None)
            config["kwargs"].pop("batch_id", None)
        detail = batch.validate(
            ExpectationSuite(name=f"{name}_failed_rows", expectations=configs),
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": MAX_EXAMPLES},
        )
        for i, res in zip(rerun, detail.results, strict=True):
            result.results[i] = res
    result.meta["pv_context"] = {
        k: _plain(_gx_value(v, k)) for k, v in context.items() if not isinstance(v, Mapping)
    }
    result.meta["pv_dataset"] = name
    result.meta["pv_skipped_expectations"] = skipped

    critical, warnings = [], []
    for res in result.results:
        if res.success:
            continue
        failure = _failure(res)
        (critical if failure.severity == "critical" else warnings).append(failure)
    stats = result.statistics
    counts = {
        "rows": len(data),
        "evaluated": int(stats["evaluated_expectations"]),
        "successful": int(stats["successful_expectations"]),
        "failed": int(stats["unsuccessful_expectations"]),
        "critical_failed": len(critical),
        "warnings_failed": len(warnings),
        "skipped": len(skipped),
        "rows_failing_critical": len({r for f in critical for r in f.rows}),
    }
    result_path = atomic_write_json(Path(result_dir) / f"{name}.json", _trim(result.to_json_dict()))
    return ValidationOutcome(name, not critical, critical, warnings, counts, result_path, skipped)


def quarantine_failed_rows(
    frame: pd.DataFrame,
    outcome: ValidationOutcome,
    *,
    stage: str = "validate_normalized",
    id_column: str | None = None,
    severities: Iterable[str] = ("critical",),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split `frame` into (rows that passed, quarantine rows for those that failed).

    A row failing a row-level expectation of the given severities gets one quarantine row per failed
    expectation (reason names dataset, expectation and column); it is removed from the valid frame once.
    Warnings do not remove rows by default.
    """
    data = frame.reset_index(drop=True)
    id_column = id_column or load_suite_config(outcome.dataset).get("meta", {}).get("row_id_column")
    wanted = set(severities)
    failures = [
        f for f in [*outcome.critical_failures, *outcome.warnings] if f.severity in wanted and f.row_level
    ]
    pieces = []
    bad = np.zeros(len(data), dtype=bool)
    for failure in failures:
        rows = np.fromiter(failure.rows, dtype=np.int64)
        rows = rows[rows < len(data)]
        bad[rows] = True
        columns = [c for c in (failure.column or "").split(",") if c in data.columns]
        if columns:
            values = data.loc[rows, columns].astype("string").fillna("<NA>")
            value = values.iloc[:, 0] if len(columns) == 1 else values.agg(" | ".join, axis=1)
        else:
            value = pd.Series(pd.NA, index=rows, dtype="string")
        record = (
            data.loc[rows, id_column].astype("string")
            if id_column and id_column in data.columns
            else pd.Series([f"row {r}" for r in rows], index=rows, dtype="string")
        )
        reason = f"{outcome.dataset}: {failure.expectation} failed on {failure.column or 'table'}" + (
            " (" + record.fillna("?") + ": '" + value.fillna("<NA>") + "')"
        )
        pieces.append(
            pd.DataFrame(
                {
                    "stage": stage,
                    "dataset": outcome.dataset,
                    "record_id": record.to_numpy(),
                    "field": failure.column,
                    "value": value.to_numpy(),
                    "reason": reason.to_numpy(),
                    "action": "rejected",
                }
            )
        )
    quarantine = (
        model.conform(pd.concat(pieces, ignore_index=True), model.QUARANTINE_COLUMNS)
        if pieces
        else model.empty_table("quarantine")
    )
    return data.loc[~bad].reset_index(drop=True), quarantine


def build_data_docs(result_dir: Path) -> Path:
    """Render GX Data Docs for every <suite>.json result in result_dir into result_dir/data_docs/.

    Uses a throwaway file-backed GX context inside result_dir (removed afterwards), so nothing is
    written outside the run's directory. Returns the path of index.html.
    """
    result_dir = Path(result_dir).resolve()
    docs_dir = result_dir / "data_docs"
    shutil.rmtree(docs_dir, ignore_errors=True)
    results = [p for p in sorted(result_dir.glob("*.json")) if p.stem in SUITES]
    schema = ExpectationSuiteValidationResultSchema()
    with tempfile.TemporaryDirectory(prefix=".gx_docs_", dir=result_dir) as root:
        ctx = gx.get_context(mode="file", project_root_dir=root)
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
        ctx.variables.data_docs_sites = {
            _DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
        ctx.variables.save()
        for path in results:
            payload = json.loads(path.read_text(encoding="utf-8"))
            validation: ExpectationSuiteValidationResult = schema.load(payload)
            run_time = payload.get("meta", {}).get("run_id", {}).get("run_time") or datetime.now().isoformat()
            run_name = str(payload.get("meta", {}).get("pv_context", {}).get("run_id") or result_dir.name)
            key = ValidationResultIdentifier(
                ExpectationSuiteIdentifier(name=path.stem),
                RunIdentifier(run_name=run_name, run_time=run_time),
                path.stem,
            )
            ctx.validation_results_store.set(key, validation)
        ctx.build_data_docs(site_names=[_DOCS_SITE])
    index = docs_dir / "index.html"
    if not index.exists():
        raise RuntimeError(f"GX did not write Data Docs to {index}")
    return index
