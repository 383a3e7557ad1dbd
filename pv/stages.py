"""The weekly pipeline's stages as plain functions: extract -> validate -> normalize -> signals -> claims
-> report -> publish.

Each takes Settings and the run's data interval [start, end) plus the paths earlier stages returned,
and returns a dict of plain values (paths as strings, counts), which is what Airflow tasks pass on.
Nothing here imports Airflow, so every stage runs and is tested without a scheduler.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from pv.settings import Settings
from pv.storage import (
    atomic_write_csv,
    atomic_write_json,
    atomic_write_parquet,
    partition_dir,
    replace_partition,
    window_key,
)

log = logging.getLogger(__name__)

TABLE_NAMES = ("reports", "drugs", "reactions")


# ---------------------------------------------------------------------------------------------- raw


def iter_raw_records(raw_dir: Path) -> Iterator[dict]:
    """Records of a raw partition, page by page, exactly as fetched."""
    for page in sorted((Path(raw_dir) / "pages").glob("page-*.json.gz")):
        with gzip.open(page, "rb") as handle:
            yield from json.loads(handle.read()).get("results", [])


def read_manifest(raw_dir: Path) -> dict:
    return json.loads((Path(raw_dir) / "manifest.json").read_text(encoding="utf-8"))


def last_day_before(end: datetime) -> str:
    """receivedate is a day: the interval [.., end) covers days up to end's date minus one."""
    return (end.date() - timedelta(days=1)).strftime("%Y%m%d")


def _receivedate(record: dict) -> str:
    return str(record.get("receivedate") or "")


# ------------------------------------------------------------------------------------------ extract


def extract(settings: Settings, start: datetime, end: datetime) -> dict[str, Any]:
    """Fetch the window's new reports, the drug's history before `end`, and the background counts."""
    from claims.catalog import load_claims
    from claims.evidence_counts import fetch_claim_group_totals
    from extractors.openfda.extract import extract_background_counts, extract_history, extract_window

    window_dir = extract_window(settings, start, end, refresh=settings.refresh)
    history_dir = extract_history(settings, end)
    cutoff = last_day_before(end)
    terms: dict[str, None] = {}
    for record in iter_raw_records(history_dir):
        if _receivedate(record) <= cutoff:
            for reaction in (record.get("patient") or {}).get("reaction") or []:
                term = reaction.get("reactionmeddrapt")
                if term:
                    terms.setdefault(term, None)
    catalog = load_claims(settings.claims_file)
    for pt in catalog.all_pts:
        terms.setdefault(pt, None)
        terms.setdefault(pt.upper(), None)
    counts_path = extract_background_counts(settings, end, list(terms))
    manifest = read_manifest(window_dir)
    data_version = str(read_manifest(history_dir).get("last_updated") or manifest.get("last_updated"))
    groups_path = fetch_claim_group_totals(settings, end, catalog, data_version)
    return {
        "window_dir": str(window_dir),
        "history_dir": str(history_dir),
        "counts_path": str(counts_path),
        "claim_groups_path": str(groups_path),
        "data_version": data_version,
        "new_reports": int(manifest.get("total", 0)),
    }


# ---------------------------------------------------------------------------------------- normalize


def _source_name(settings: Settings) -> str:
    return "openfda_api" if settings.is_live else "sample"


def _staged_dir(settings: Settings, start: datetime, end: datetime) -> Path:
    return partition_dir(settings.data_dir, "staged", settings.drug, start, end)


def read_staged(staged_dir: str | Path, prefix: str) -> dict[str, pd.DataFrame]:
    """The staged tables `{prefix}_{reports,drugs,reactions}.parquet` of a partition."""
    return {name: pd.read_parquet(Path(staged_dir) / f"{prefix}_{name}.parquet") for name in TABLE_NAMES}


def per_pt_counts(
    cumulative: dict[str, pd.DataFrame],
    new: dict[str, pd.DataFrame],
    background: dict[str, Any],
    drug: str,
) -> pd.DataFrame:
    """The 2x2 margins per normalized PT: n, drug_total, event_total, total (the `pv signals` format).

    event_total sums openFDA's per-spelling counts over spellings that normalize to the same PT.
    """
    from normalization.terms import normalize_pt

    reactions = cumulative["reactions"]
    drug_total = int(cumulative["reports"]["safetyreportid"].nunique())
    n_by_pt = reactions.groupby("pt")["safetyreportid"].nunique()
    new_by_pt = new["reactions"].groupby("pt")["safetyreportid"].nunique()
    event_totals: dict[str, int] = {}
    spellings = {**(background.get("top_terms") or {}), **(background.get("event_counts") or {})}
    for term, count in spellings.items():
        pt = normalize_pt(term).pt
        event_totals[pt] = event_totals.get(pt, 0) + int(count)
    frame = pd.DataFrame({"event": n_by_pt.index.astype(str), "n": n_by_pt.to_numpy(dtype="int64")})
    frame.insert(0, "drug", drug)
    frame["n_new"] = frame["event"].map(new_by_pt).fillna(0).astype("int64")
    frame["drug_total"] = drug_total
    reported = frame["event"].map(event_totals)
    frame["event_total_missing"] = reported.isna()
    # A drug report is also a report of the event: the background can never be below n.
    frame["event_total"] = reported.fillna(0).astype("int64").clip(lower=frame["n"])
    frame["total"] = int(background["total_reports"])
    return frame.sort_values("event").reset_index(drop=True)


def claim_group_counts(
    catalog: Any,
    cumulative: dict[str, pd.DataFrame],
    new: dict[str, pd.DataFrame],
    group_totals: dict[str, Any],
    background: dict[str, Any],
    drug: str,
) -> pd.DataFrame:
    """2x2 margins per claim PT group: a drug report counts once however many of the PTs it has."""
    reactions, new_reactions = cumulative["reactions"], new["reactions"]
    drug_total = int(cumulative["reports"]["safetyreportid"].nunique())
    rows = []
    for claim in catalog.claims:
        if claim.id not in group_totals:
            continue
        n = int(reactions.loc[reactions["pt"].isin(claim.pt_list), "safetyreportid"].nunique())
        n_new = int(new_reactions.loc[new_reactions["pt"].isin(claim.pt_list), "safetyreportid"].nunique())
        rows.append(
            {
                "drug": drug,
                "event": f"claim:{claim.id}",
                "claim_id": claim.id,
                "n": n,
                "n_new": n_new,
                "drug_total": drug_total,
                "event_total": max(int(group_totals[claim.id]["event_total"]), n),
                "total": int(background["total_reports"]),
            }
        )
    return pd.DataFrame(rows)


def normalize(settings: Settings, start: datetime, end: datetime, extracted: dict[str, Any]) -> dict[str, Any]:
    """Flatten and normalize the window's new reports and the drug's history before `end`."""
    from claims.catalog import load_claims
    from extractors.openfda.query import load_drug_config
    from normalization.openfda import normalize_openfda_reports

    drug_config = dataclasses.asdict(load_drug_config(settings))
    data_version = str(extracted["data_version"])
    source = _source_name(settings)
    cutoff = last_day_before(end)  # the day before end, as extractors.openfda.query.received_before
    window_batch = normalize_openfda_reports(
        iter_raw_records(Path(extracted["window_dir"])), source=source, data_version=data_version, drug_config=drug_config
    )
    history = (r for r in iter_raw_records(Path(extracted["history_dir"])) if _receivedate(r) <= cutoff)
    cumulative_batch = normalize_openfda_reports(history, source=source, data_version=data_version, drug_config=drug_config)
    background = json.loads(Path(extracted["counts_path"]).read_text(encoding="utf-8"))
    group_totals = json.loads(Path(extracted["claim_groups_path"]).read_text(encoding="utf-8"))
    new = {name: getattr(window_batch, name) for name in TABLE_NAMES}
    cumulative = {name: getattr(cumulative_batch, name) for name in TABLE_NAMES}
    pt_counts = per_pt_counts(cumulative, new, background, settings.drug)
    group_counts = claim_group_counts(load_claims(settings.claims_file), cumulative, new, group_totals, background, settings.drug)
    quarantine = pd.concat([window_batch.quarantine.assign(dataset="window"), cumulative_batch.quarantine.assign(dataset="cumulative")])
    staged = _staged_dir(settings, start, end)
    with replace_partition(staged) as scratch:
        for name in TABLE_NAMES:
            atomic_write_parquet(scratch / f"new_{name}.parquet", new[name])
            atomic_write_parquet(scratch / f"cumulative_{name}.parquet", cumulative[name])
        atomic_write_parquet(scratch / "quarantine.parquet", quarantine)
        atomic_write_csv(scratch / "pt_counts.csv", pt_counts)
        atomic_write_csv(scratch / "claim_group_counts.csv", group_counts)
        atomic_write_json(
            scratch / "stats.json",
            {"new": window_batch.stats, "cumulative": cumulative_batch.stats, "data_version": data_version},
        )
    return {
        "staged_dir": str(staged),
        "data_version": data_version,
        "new_reports": int(len(new["reports"])),
        "cumulative_reports": int(len(cumulative["reports"])),
        "quarantined": int(len(quarantine)),
    }


# ------------------------------------------------------------------------------------------ signals

SIGNAL_ID_COLUMNS = ["period", "window_start", "window_end", "drug", "level", "pt", "claim_id"]


def compute_signals(settings: Settings, start: datetime, end: datetime, normalized: dict[str, Any]) -> dict[str, Any]:
    """Score every PT of the drug and every claim PT group (PRR, ROR, IC, EBGM and the signal rules)."""
    from signals.measures import score_table
    from signals.rules import apply_rules

    staged = Path(normalized["staged_dir"])
    pt_counts = pd.read_csv(staged / "pt_counts.csv")
    group_counts = pd.read_csv(staged / "claim_group_counts.csv")
    columns = ["drug", "event", "n", "drug_total", "event_total", "total"]
    pt_scores, prior = score_table(pt_counts[columns], fit_prior=True)
    # Groups are scored under the prior fitted on the drug's PTs: a group is not a new exchangeable pair.
    group_scores, _ = score_table(group_counts[columns], prior=prior, fit_prior=False) if len(group_counts) else (
        pd.DataFrame(columns=pt_scores.columns),
        None,
    )
    pt_scores = apply_rules(pt_scores).merge(pt_counts[["event", "n_new", "event_total_missing"]], on="event")
    group_scores = apply_rules(group_scores).merge(group_counts[["event", "n_new", "claim_id"]], on="event")
    pt_scores = pt_scores.assign(level="pt", pt=pt_scores["event"], claim_id=pd.NA)
    group_scores = group_scores.assign(level="claim_group", pt=pd.NA)
    scores = pd.concat([pt_scores, group_scores], ignore_index=True)
    scores.insert(0, "period", window_key(start, end))
    scores.insert(1, "window_start", _utc(start))
    scores.insert(2, "window_end", _utc(end))
    scores["data_version"] = normalized["data_version"]
    out = partition_dir(settings.data_dir, "signals", settings.drug, start, end)
    with replace_partition(out) as scratch:
        atomic_write_parquet(scratch / "signals.parquet", scores)
        atomic_write_csv(scratch / "signals.csv", scores)
        atomic_write_json(scratch / "prior.json", prior.to_dict() if prior is not None else None)
    return {
        "signals_dir": str(out),
        "pairs": int((scores["level"] == "pt").sum()),
        "groups": int((scores["level"] == "claim_group").sum()),
    }


# ------------------------------------------------------------------------------------------- claims


def assess(settings: Settings, start: datetime, end: datetime, normalized: dict[str, Any], signals: dict[str, Any]) -> dict[str, Any]:
    """Verdict per claim of the article, with the evidence behind it."""
    from claims.assess import assess_claims
    from claims.catalog import load_claims, musculoskeletal_pts

    catalog = load_claims(settings.claims_file)
    scores = pd.read_parquet(Path(signals["signals_dir"]) / "signals.parquet")
    cumulative = read_staged(normalized["staged_dir"], "cumulative")
    verdicts = assess_claims(
        catalog,
        scores.loc[scores["level"] == "claim_group"],
        cumulative["reports"],
        cumulative["drugs"],
        cumulative["reactions"],
        has_event_dates=bool(cumulative["reports"]["event_date"].notna().any()),
        musculoskeletal_pts=musculoskeletal_pts(),
    )
    rows = pd.DataFrame([v.as_row() for v in verdicts])
    rows["evidence"] = rows["evidence"].map(lambda e: json.dumps(e, sort_keys=True, default=_json_default))
    rows.insert(0, "period", window_key(start, end))
    rows["claims_version"] = catalog.version
    rows["data_version"] = normalized["data_version"]
    out = partition_dir(settings.data_dir, "claims", settings.drug, start, end)
    with replace_partition(out) as scratch:
        atomic_write_parquet(scratch / "claims.parquet", rows)
        atomic_write_json(scratch / "claims.json", [v.__dict__ for v in verdicts])
    return {"claims_dir": str(out), "verdicts": {v.claim_id: v.verdict for v in verdicts}}


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if value is pd.NA:
        return None
    return str(value)


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")


# --------------------------------------------------------------------------------------- validation


def _validation_dir(settings: Settings, start: datetime, end: datetime) -> Path:
    return partition_dir(settings.data_dir, "validation", settings.drug, start, end)


def _outcome_summary(name: str, outcome: Any) -> dict[str, Any]:
    return {
        "dataset": name,
        "success": bool(outcome.success),
        "evaluated": int(outcome.counts.get("evaluated", 0)),
        "rows": int(outcome.counts.get("rows", 0)),
        "critical": [f.describe() for f in outcome.critical_failures],
        "warnings": [w.describe() for w in outcome.warnings],
        "result_path": str(outcome.result_path),
    }


def _window_context(start: datetime, end: datetime) -> dict[str, Any]:
    """receivedate is a day: the window [start, end) holds the days start.date() .. end.date() - 1."""
    from extractors.openfda.query import window_days

    first, last = window_days(start, end)
    return {"window_start": pd.Timestamp(first), "window_end": pd.Timestamp(last) + pd.Timedelta(days=1)}


def validate_raw(settings: Settings, start: datetime, end: datetime, extracted: dict[str, Any]) -> dict[str, Any]:
    """Check the window's raw reports as fetched; a critical failure stops the run here."""
    from expectations.runner import validate_dataset
    from normalization.openfda import raw_reports_frame

    frame = raw_reports_frame(iter_raw_records(Path(extracted["window_dir"])))
    result_dir = _validation_dir(settings, start, end)
    context = {**_window_context(start, end), "expected_rows": int(extracted["new_reports"])}
    outcome = validate_dataset("raw_reports", frame, context=context, result_dir=result_dir)
    summary = _outcome_summary("raw_reports", outcome)
    atomic_write_json(result_dir / "summary.json", summary)
    outcome.raise_for_critical()
    return summary


def validate_normalized(settings: Settings, start: datetime, end: datetime, normalized: dict[str, Any]) -> dict[str, Any]:
    """Check the staged tables (the window's and the cumulative ones) and build GX Data Docs."""
    from expectations.runner import build_data_docs, validate_dataset

    validation_dir = _validation_dir(settings, start, end)
    stats = json.loads((Path(normalized["staged_dir"]) / "stats.json").read_text(encoding="utf-8"))
    expected = {"reports": "reports_out", "drugs": "drugs", "reactions": "reactions"}
    summaries, outcomes = [], []
    # The cumulative tables feed the statistics: their results sit beside raw_reports.json and make up
    # the Data Docs. The window's new tables are checked against the window in new/.
    for prefix, result_dir, window in (
        ("cumulative", validation_dir, {"min_receivedate": pd.Timestamp("1900-01-01"), "max_receivedate": pd.Timestamp(end.date())}),
        ("new", validation_dir / "new", _window_context(start, end)),
    ):
        tables = read_staged(normalized["staged_dir"], prefix)
        for name in TABLE_NAMES:
            context = {**window, "expected_rows": int(stats[prefix][expected[name]])}
            outcome = validate_dataset(name, tables[name], context=context, result_dir=result_dir)
            outcomes.append(outcome)
            summaries.append(_outcome_summary(f"{prefix}_{name}", outcome))
    docs_index = build_data_docs(validation_dir)
    atomic_write_json(validation_dir / "normalized_summary.json", summaries)
    for outcome in outcomes:
        outcome.raise_for_critical()
    return {"summaries": summaries, "data_docs": str(docs_index)}


# -------------------------------------------------------------------------------------------- report


def render_report(
    settings: Settings,
    start: datetime,
    end: datetime,
    extracted: dict[str, Any],
    raw_validation: dict[str, Any],
    normalized: dict[str, Any],
    normalized_validation: dict[str, Any],
    signals: dict[str, Any],
    claims: dict[str, Any],
    generated_at: datetime,
) -> dict[str, Any]:
    """Write report.html and summary.md for the window; return their paths."""
    import os
    import shutil

    from claims.catalog import load_claims
    from reports.render import ReportContext, render_html, render_markdown

    scores = pd.read_parquet(Path(signals["signals_dir"]) / "signals.parquet")
    claim_rows = pd.read_parquet(Path(claims["claims_dir"]) / "claims.parquet")
    quarantine = pd.read_parquet(Path(normalized["staged_dir"]) / "quarantine.parquet")
    out = partition_dir(settings.data_dir, "reports", settings.drug, start, end)
    quarantine_counts = quarantine.groupby("reason").size().to_dict() if len(quarantine) else {}
    with replace_partition(out) as scratch:
        docs_source = Path(normalized_validation["data_docs"]).parent
        shutil.copytree(docs_source, scratch / "data_docs")
        docs_href = os.path.relpath(scratch / "data_docs" / Path(normalized_validation["data_docs"]).name, scratch)
        context = ReportContext(
            drug=settings.drug,
            period=window_key(start, end),
            window_start=f"{start:%Y-%m-%d %H:%M} UTC",
            window_end=f"{end:%Y-%m-%d %H:%M} UTC",
            data_version=str(normalized["data_version"]),
            source=_source_name(settings),
            synthetic=not settings.is_live,
            new_reports=int(normalized["new_reports"]),
            cumulative_reports=int(normalized["cumulative_reports"]),
            claims=claim_rows,
            group_scores=scores.loc[scores["level"] == "claim_group"],
            pt_scores=scores.loc[scores["level"] == "pt"],
            claims_version=load_claims(settings.claims_file).version,
            quality=[raw_validation, *normalized_validation["summaries"]],
            quarantine_counts={str(k): int(v) for k, v in quarantine_counts.items()},
            data_docs_href=docs_href,
            generated_at=f"{generated_at:%Y-%m-%d %H:%M:%S} UTC",
        )
        (scratch / "report.html").write_text(render_html(context), encoding="utf-8")
        (scratch / "summary.md").write_text(render_markdown(context), encoding="utf-8")
    return {"report_html": str(out / "report.html"), "summary_md": str(out / "summary.md"), "report_dir": str(out)}


# ------------------------------------------------------------------------------------------- publish


def publish(
    settings: Settings,
    start: datetime,
    end: datetime,
    run_id: str,
    stage_outputs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Write the dashboard tables for the period and refresh the warehouse views."""
    from publish.outputs import refresh_warehouse_views, write_period_table

    period = window_key(start, end)
    signals = pd.read_parquet(Path(stage_outputs["signals"]["signals_dir"]) / "signals.parquet")
    claims = pd.read_parquet(Path(stage_outputs["claims"]["claims_dir"]) / "claims.parquet")
    normalized = stage_outputs["normalize"]
    runs = pd.DataFrame(
        [
            {
                "period": period,
                "run_id": run_id,
                "drug": settings.drug,
                "window_start": _utc(start),
                "window_end": _utc(end),
                "source": _source_name(settings),
                "data_version": str(normalized["data_version"]),
                "new_reports": int(normalized["new_reports"]),
                "cumulative_reports": int(normalized["cumulative_reports"]),
                "quarantined_rows": int(normalized["quarantined"]),
                "pt_pairs_scored": int(stage_outputs["signals"]["pairs"]),
                "claims_assessed": int(len(claims)),
                "report_html": stage_outputs["report"]["report_html"],
                "lineage": json.dumps(stage_outputs, sort_keys=True, default=str),
            }
        ]
    )
    paths = {
        "signals": write_period_table(settings.data_dir, "signals", settings.drug, period, signals),
        "claims": write_period_table(settings.data_dir, "claims", settings.drug, period, claims),
        "runs": write_period_table(settings.data_dir, "runs", settings.drug, period, runs),
    }
    warehouse = refresh_warehouse_views(settings.data_dir)
    return {"period": period, "tables": paths, "warehouse": str(warehouse), "report_html": stage_outputs["report"]["report_html"]}
