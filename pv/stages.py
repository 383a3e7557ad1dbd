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
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pv.settings import Settings
from pv.storage import (
    atomic_write_bytes,
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
    """receivedate cutoff (YYYYMMDD) of the reports received before `end`: the day the API query ends on."""
    from extractors.openfda.query import last_day_before as last_receivedate

    return f"{last_receivedate(end):%Y%m%d}"


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
    cutoff = last_day_before(end)
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
    # Which table a row came from stays in `dataset`; which batch (window or history) goes into `stage`.
    quarantine = pd.concat(
        [
            window_batch.quarantine.assign(stage=lambda q: q["stage"].fillna("normalize") + ":new"),
            cumulative_batch.quarantine.assign(stage=lambda q: q["stage"].fillna("normalize") + ":cumulative"),
        ],
        ignore_index=True,
    )
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


def _read_counts(path: Path) -> pd.DataFrame:
    """A staged counts CSV with names kept as text: a PT called 'NA' or 'None' stays a PT."""
    return pd.read_csv(path, keep_default_na=False, na_values={"n": [""], "n_new": [""]})


def compute_signals(settings: Settings, start: datetime, end: datetime, normalized: dict[str, Any]) -> dict[str, Any]:
    """Score every PT of the drug and every claim PT group (PRR, ROR, IC, EBGM and the signal rules), and
    each claim group's cumulative trend by quarter and its sex and age subgroups."""
    from claims.assess import (
        claim_coverage,
        claim_trend,
        claim_trend_counts,
        subgroup_counts,
        subgroup_scores,
    )
    from claims.catalog import load_claims, musculoskeletal_pts
    from extractors.openfda.query import window_days
    from signals.measures import score_table
    from signals.rules import apply_rules

    staged = Path(normalized["staged_dir"])
    pt_counts = _read_counts(staged / "pt_counts.csv")
    group_counts = _read_counts(staged / "claim_group_counts.csv")
    pt_counts["event_total_missing"] = pt_counts["event_total_missing"].astype(str).str.lower().eq("true")
    columns = ["drug", "event", "n", "drug_total", "event_total", "total"]
    pt_scores, prior = score_table(pt_counts[columns], fit_prior=True)
    # Groups are scored under the prior fitted on the drug's PTs: a group is not a new exchangeable pair.
    group_scores, _ = score_table(group_counts[columns], prior=prior, fit_prior=False) if len(group_counts) else (
        pd.DataFrame(columns=pt_scores.columns),
        None,
    )
    catalog = load_claims(settings.claims_file)
    coverage = claim_coverage(catalog)
    msk = set(musculoskeletal_pts())
    pt_scores = apply_rules(pt_scores).merge(pt_counts[["event", "n_new", "drug_total", "event_total", "total",
                                                        "event_total_missing"]], on="event")  # fmt: skip
    group_scores = apply_rules(group_scores).merge(
        group_counts[["event", "n_new", "drug_total", "event_total", "total", "claim_id"]], on="event"
    )
    pt_scores = pt_scores.assign(
        level="pt", pt=pt_scores["event"], claim_id=None,
        claim_ids=pt_scores["event"].map(lambda pt: "; ".join(coverage.get(pt, []))),
        is_musculoskeletal=pt_scores["event"].isin(msk),
    )  # fmt: skip
    group_scores = group_scores.assign(level="claim_group", pt=None, claim_ids=group_scores["claim_id"],
                                       is_musculoskeletal=None, event_total_missing=False)  # fmt: skip
    scores = pd.concat([pt_scores, group_scores], ignore_index=True)
    scores.insert(0, "period", window_key(start, end))
    scores.insert(1, "window_start", _utc(start))
    scores.insert(2, "window_end", _utc(end))
    scores.insert(3, "drug", scores.pop("drug"))
    scores["data_version"] = normalized["data_version"]

    cumulative = read_staged(staged, "cumulative")
    last_day = window_days(start, end)[1]
    data_version = str(normalized["data_version"])
    daily, trend_requests = fetch_trend_background(settings, catalog, data_version)
    trend_counts = claim_trend_counts(catalog, cumulative["reports"], cumulative["reactions"], daily, last_day, settings.drug)
    trend = claim_trend(trend_counts, prior)
    by_subgroup, subgroup_requests = fetch_subgroup_background(settings, end, catalog, data_version)
    subgroups = subgroup_scores(
        subgroup_counts(catalog, cumulative["reports"], cumulative["reactions"], by_subgroup, settings.drug), prior
    )
    out = partition_dir(settings.data_dir, "signals", settings.drug, start, end)
    with replace_partition(out) as scratch:
        atomic_write_parquet(scratch / "signals.parquet", scores)
        atomic_write_csv(scratch / "signals.csv", scores)
        atomic_write_parquet(scratch / "trend.parquet", trend)
        atomic_write_parquet(scratch / "subgroups.parquet", subgroups)
        atomic_write_json(scratch / "prior.json", prior.to_dict() if prior is not None else None)
        atomic_write_json(
            scratch / "background.json",
            {"trend_requests": trend_requests, "subgroup_requests": subgroup_requests,
             "trend_source": daily.get("source"), "subgroup_source": by_subgroup.get("source")},
        )  # fmt: skip
    return {
        "signals_dir": str(out),
        "pairs": int((scores["level"] == "pt").sum()),
        "groups": int((scores["level"] == "claim_group").sum()),
        "pt_signals": int(_any_signal(scores.loc[scores["level"] == "pt"]).sum()),
        "background_requests": int(trend_requests + subgroup_requests),
    }


def _any_signal(scores: pd.DataFrame) -> pd.Series:
    from claims.assess import any_signal

    return any_signal(scores)


# ------------------------------------------------------------------------------------------- claims


def assess(settings: Settings, start: datetime, end: datetime, normalized: dict[str, Any], signals: dict[str, Any]) -> dict[str, Any]:
    """Verdict per claim of the article, with the evidence behind it."""
    from claims.assess import assess_claims
    from claims.catalog import load_claims, musculoskeletal_pts

    catalog = load_claims(settings.claims_file)
    signals_dir = Path(signals["signals_dir"])
    scores = pd.read_parquet(signals_dir / "signals.parquet")
    trend_path = signals_dir / "trend.parquet"
    trend = pd.read_parquet(trend_path) if trend_path.exists() else None
    cumulative = read_staged(normalized["staged_dir"], "cumulative")
    verdicts = assess_claims(
        catalog,
        scores.loc[scores["level"] == "claim_group"],
        cumulative["reports"],
        cumulative["drugs"],
        cumulative["reactions"],
        musculoskeletal_pts=musculoskeletal_pts(),
        trend=trend,
    )
    rows = pd.DataFrame([v.as_row() for v in verdicts])
    rows.insert(0, "period", window_key(start, end))
    rows.insert(1, "window_start", _utc(start))
    rows.insert(2, "window_end", _utc(end))
    rows.insert(3, "drug", settings.drug)
    rows["evidence_json"] = [json.dumps(_json_safe(v.evidence), sort_keys=True, allow_nan=False) for v in verdicts]
    rows["claims_version"] = catalog.version
    rows["data_version"] = normalized["data_version"]
    out = partition_dir(settings.data_dir, "claims", settings.drug, start, end)
    with replace_partition(out) as scratch:
        atomic_write_parquet(scratch / "claims.parquet", rows)
        atomic_write_json(scratch / "claims.json", _json_safe([v.__dict__ for v in verdicts]))
    return {"claims_dir": str(out), "verdicts": {v.claim_id: v.verdict for v in verdicts}}


def _json_safe(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN and infinities as null (JSON has neither)."""
    import math

    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
    """Write report.html, summary.md and changes.json (vs the previous published report) for the window."""
    import os
    import shutil

    from claims.assess import musculoskeletal_scores, uncovered_signals
    from claims.catalog import load_claims, musculoskeletal_pts
    from reports.render import ReportContext, render_html, render_markdown

    signals_dir = Path(signals["signals_dir"])
    scores = pd.read_parquet(signals_dir / "signals.parquet")
    claim_rows = pd.read_parquet(Path(claims["claims_dir"]) / "claims.parquet")
    verdicts = json.loads((Path(claims["claims_dir"]) / "claims.json").read_text(encoding="utf-8"))
    quarantine = pd.read_parquet(Path(normalized["staged_dir"]) / "quarantine.parquet")
    catalog = load_claims(settings.claims_file)
    pt_scores = scores.loc[scores["level"] == "pt"].reset_index(drop=True)
    changes = changes_since_previous(settings, end, scores, claim_rows, str(normalized["data_version"]))
    quality = [raw_validation, *normalized_validation["summaries"]]
    background = _read_json_file(signals_dir / "background.json") or {}
    out = partition_dir(settings.data_dir, "reports", settings.drug, start, end)
    quarantine_counts = quarantine.groupby("reason").size().to_dict() if len(quarantine) else {}
    rendered_in = 0.0
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
            pt_scores=pt_scores,
            claims_version=catalog.version,
            quality=quality,
            quarantine_counts={str(k): int(v) for k, v in quarantine_counts.items()},
            data_docs_href=docs_href,
            generated_at=f"{generated_at:%Y-%m-%d %H:%M:%S} UTC",
            evidence={str(v["claim_id"]): v.get("evidence") or {} for v in verdicts},
            catalog=catalog,
            trend=_read_parquet_or_empty(signals_dir / "trend.parquet"),
            subgroups=_read_parquet_or_empty(signals_dir / "subgroups.parquet"),
            musculoskeletal=musculoskeletal_scores(pt_scores, musculoskeletal_pts(), catalog),
            uncovered=uncovered_signals(pt_scores, catalog),
            changes=changes,
            background_note=_background_note(background),
        )
        began = time.perf_counter()
        page = render_html(context)
        rendered_in = time.perf_counter() - began
        (scratch / "report.html").write_text(page, encoding="utf-8")
        (scratch / "summary.md").write_text(render_markdown(context), encoding="utf-8")
        (scratch / "changes.json").write_text(json.dumps(_json_safe(changes.as_dict()), indent=2, sort_keys=True), encoding="utf-8")
    log.info("report %s: %d bytes, rendered in %.2f s", out / "report.html", len(page.encode("utf-8")), rendered_in)
    return {
        "report_html": str(out / "report.html"),
        "summary_md": str(out / "summary.md"),
        "changes_json": str(out / "changes.json"),
        "report_dir": str(out),
        "report_bytes": len(page.encode("utf-8")),
        "generated_at": _utc(generated_at).isoformat(),
        "previous_period": changes.previous_period,
        "new_signals": len(changes.new_signals),
        "signals_lost": len(changes.lost_signals),
        "verdict_changes": len(changes.verdict_changes),
        "validation": {
            "datasets": len(quality),
            "failed": sum(1 for q in quality if not q.get("success")),
            "warnings": sum(len(q.get("warnings") or []) for q in quality),
        },
    }


def changes_since_previous(
    settings: Settings, end: datetime, scores: pd.DataFrame, claim_rows: pd.DataFrame, data_version: str
) -> Any:
    """Compare with the published period whose window ends last before `end` (none: 'no previous report')."""
    from publish.outputs import previous_period, published_runs, read_period_table
    from reports.changes import compare

    period = previous_period(settings.data_dir, settings.drug, end)
    previous_signals = previous_claims = None
    previous_version = None
    if period is not None:
        previous_signals = read_period_table(settings.data_dir, "signals", settings.drug, period)
        previous_claims = read_period_table(settings.data_dir, "claims", settings.drug, period)
        runs = published_runs(settings.data_dir, settings.drug)
        match = runs.loc[runs["period"] == period, "data_version"]
        previous_version = None if match.empty else str(match.iloc[0])
    return compare(scores, claim_rows, data_version, period, previous_signals, previous_claims, previous_version)


def _read_parquet_or_empty(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def _read_json_file(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _background_note(background: dict[str, Any]) -> str:
    """Where the backgrounds came from; the request count of this very run goes to the runs table, so
    that a rerun renders the same page."""
    names = {"sample": "the bundled sample (answered by the offline openFDA engine)", "openfda": "the openFDA API"}
    source = names.get(str(background.get("subgroup_source")), "openFDA")
    return f"Background counts from {source}, cached per window end and data version."


# ------------------------------------------------------------------------------------------- publish


def publish(
    settings: Settings,
    start: datetime,
    end: datetime,
    run_id: str,
    stage_outputs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Validate and write the dashboard tables for the period, refresh the warehouse views, and notify new
    signals. A critical expectation failure on any table stops before anything is written."""
    from publish.outputs import read_period_table, refresh_warehouse_views, write_period_table
    from reports.changes import Changes, signal_key

    period = window_key(start, end)
    report = stage_outputs["report"]
    changes = Changes.from_dict(json.loads(Path(report["changes_json"]).read_text(encoding="utf-8")))
    signals = pd.read_parquet(Path(stage_outputs["signals"]["signals_dir"]) / "signals.parquet")
    claims = pd.read_parquet(Path(stage_outputs["claims"]["claims_dir"]) / "claims.parquet")
    new_keys = {(e["level"], e["name"]) for e in changes.new_signals}
    signals["any_signal"] = _any_signal(signals)
    signals["new_signal"] = [signal_key(row) in new_keys for _, row in signals.iterrows()]
    signals["previous_period"] = changes.previous_period
    previous = (
        read_period_table(settings.data_dir, "claims", settings.drug, changes.previous_period)
        if changes.previous_period
        else None
    )
    earlier = {} if previous is None else dict(zip(previous["claim_id"], previous["verdict"], strict=False))
    claims["previous_verdict"] = claims["claim_id"].map(earlier)
    claims["verdict_changed"] = claims["previous_verdict"].notna() & (claims["previous_verdict"] != claims["verdict"])
    runs = pd.DataFrame([_run_row(settings, start, end, run_id, stage_outputs, claims, changes)])
    tables = {"signals": signals, "claims": claims, "runs": runs}
    checks = validate_dashboard_tables(settings, start, end, tables)
    paths = {name: write_period_table(settings.data_dir, name, settings.drug, period, frame) for name, frame in tables.items()}
    warehouse = refresh_warehouse_views(settings.data_dir)
    alert = notify_new_signals(settings, period, changes, report["report_html"])
    return {
        "period": period,
        "tables": paths,
        "warehouse": str(warehouse),
        "report_html": report["report_html"],
        "data_version": changes.data_version,
        "new_signals": len(changes.new_signals),
        "validation": checks,
        "alerted": alert is not None,
    }


def _run_row(
    settings: Settings, start: datetime, end: datetime, run_id: str, outputs: dict[str, dict[str, Any]],
    claims: pd.DataFrame, changes: Any,
) -> dict[str, Any]:
    from claims.assess import INSUFFICIENT, NOT_SUPPORTED, NOT_TESTABLE, SUPPORTED
    from claims.catalog import load_claims

    normalized, signals, report = outputs["normalize"], outputs["signals"], outputs["report"]
    validation = report.get("validation") or {}
    verdicts = claims["verdict"].value_counts().to_dict()
    return {
        "period": window_key(start, end),
        "window_start": _utc(start),
        "window_end": _utc(end),
        "drug": settings.drug,
        "run_id": run_id,
        "source": _source_name(settings),
        "data_version": str(normalized["data_version"]),
        "claims_version": load_claims(settings.claims_file).version,
        "generated_at": report.get("generated_at"),
        "published_at": pd.Timestamp.now(tz="UTC"),
        "previous_period": changes.previous_period,
        "previous_data_version": changes.previous_data_version,
        "data_version_changed": changes.data_version_changed,
        "raw_window_reports": int(outputs.get("extract", {}).get("new_reports", 0)),
        "new_reports": int(normalized["new_reports"]),
        "cumulative_reports": int(normalized["cumulative_reports"]),
        "quarantined_rows": int(normalized["quarantined"]),
        "validation_datasets": int(validation.get("datasets", 0)),
        "validation_failed": int(validation.get("failed", 0)),
        "validation_warnings": int(validation.get("warnings", 0)),
        "pt_pairs_scored": int(signals["pairs"]),
        "claim_groups_scored": int(signals["groups"]),
        "pt_signals": int(signals.get("pt_signals", 0)),
        "new_signals": len(changes.new_signals),
        "signals_lost": len(changes.lost_signals),
        "verdict_changes": len(changes.verdict_changes),
        "claims_supported": int(verdicts.get(SUPPORTED, 0)),
        "claims_not_supported": int(verdicts.get(NOT_SUPPORTED, 0)),
        "claims_insufficient_data": int(verdicts.get(INSUFFICIENT, 0)),
        "claims_not_testable": int(verdicts.get(NOT_TESTABLE, 0)),
        "background_requests": int(signals.get("background_requests", 0)),
        "report_html": report["report_html"],
        "lineage": json.dumps(outputs, sort_keys=True, default=str),
    }


def validate_dashboard_tables(
    settings: Settings, start: datetime, end: datetime, tables: dict[str, pd.DataFrame]
) -> dict[str, Any]:
    """Run each table's GX suite (dashboard_<table>) on the conformed frame; raise on a critical failure."""
    from expectations.runner import suite_path, validate_dataset
    from publish.outputs import conform

    result_dir = _validation_dir(settings, start, end) / "published"
    outcomes, summaries = [], {}
    for name, frame in tables.items():
        suite = f"dashboard_{name}"
        if not suite_path(suite).exists():
            log.warning("no GX suite %s yet: the %s table is published unchecked", suite, name)
            summaries[name] = {"suite": suite, "checked": False}
            continue
        outcome = validate_dataset(suite, conform(frame, name), context={"expected_rows": len(frame)}, result_dir=result_dir)
        outcomes.append(outcome)
        summaries[name] = {**_outcome_summary(suite, outcome), "checked": True}
    for outcome in outcomes:
        outcome.raise_for_critical()
    return summaries


def notify_new_signals(settings: Settings, period: str, changes: Any, report_html: str) -> dict[str, Any] | None:
    """One alert per run listing the signals new since the previous report (none without a previous one)."""
    from pv.notify import send_alert

    if not changes.new_signals:
        log.info("no new signal since %s", changes.previous_period or "(no previous report)")
        return None
    names = [f"claim group {e['name']}" if e["level"] == "claim_group" else str(e["name"]) for e in changes.new_signals]
    subject = f"[pv] {settings.drug}: {len(names)} new signal(s) in {period}"
    lines = [
        f"{name}: {', '.join(e['rules'])} (n {e['n']}, IC025 {_num(e.get('ic025'))}, EB05 {_num(e.get('eb05'))})"
        for name, e in zip(names, changes.new_signals, strict=True)
    ]
    body = (
        f"New signals for {settings.drug} in {period} compared with {changes.previous_period} "
        f"(data version {changes.data_version}):\n" + "\n".join(lines) + f"\n\nReport: {report_html}"
    )
    details = {"period": period, "previous_period": changes.previous_period, "data_version": changes.data_version,
               "signals": changes.new_signals, "report_html": report_html}  # fmt: skip
    return send_alert(settings, "new_signal", subject, body, _json_safe(details))


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"


# ------------------------------------------------------------------ background counts (trend, subgroups)


class _CountFetcher:
    """Sends openFDA count requests, keeps every response body, checks the data version did not move."""

    def __init__(self, client: Any, responses_dir: Path, data_version: str) -> None:
        self.client = client
        self.responses_dir = responses_dir
        self.data_version = data_version
        self.requests = 0

    def _get(self, name: str, params: dict[str, str]) -> dict[str, Any] | None:
        response = self.client.get(params)
        self.requests += 1
        atomic_write_bytes(self.responses_dir / f"{name}.json.gz", gzip.compress(response.body, mtime=0))
        if response.status == 404:
            return None  # openFDA's "No matches found" / "Nothing to count"
        if response.status != 200:
            raise RuntimeError(f"openFDA answered {response.status} to {name} [{response.url_redacted}]")
        document = response.json()
        version = str(document["meta"]["last_updated"])
        if version != self.data_version:
            raise RuntimeError(
                f"openFDA data version is {version} but this run's data is {self.data_version}; rerun the DAG "
                "so that every stage reads the same version"
            )
        return document

    def days(self, name: str, params: dict[str, str]) -> dict[str, int]:
        document = self._get(name, params)
        return {} if document is None else {str(r["time"]): int(r["count"]) for r in document["results"]}

    def terms(self, name: str, params: dict[str, str]) -> dict[str, int]:
        document = self._get(name, params)
        return {} if document is None else {str(r["term"]): int(r["count"]) for r in document["results"]}


def _unique_pt_groups(catalog: Any) -> list[tuple[str, list[str], list[str]]]:
    """(name, PTs, claim ids) per distinct PT set: claims sharing a group cost one request."""
    groups: dict[tuple[str, ...], list[str]] = {}
    pts_of: dict[tuple[str, ...], list[str]] = {}
    for claim in catalog.claims:
        key = tuple(sorted(claim.pt_list))
        groups.setdefault(key, []).append(claim.id)
        pts_of.setdefault(key, claim.pt_list)
    return [(ids[0], pts_of[key], ids) for key, ids in groups.items()]


def _background_cache(settings: Settings, kind: str, key: str) -> Path:
    return Path(settings.data_dir) / "raw" / f"drug={settings.drug}" / kind / key


def fetch_trend_background(settings: Settings, catalog: Any, data_version: str) -> tuple[dict[str, Any], int]:
    """Daily report counts of the data version: all reports, and reports with any PT of each claim group.

    openFDA's count on receivedate returns every day in one response, so the whole quarterly trend costs
    one request per distinct claim group plus one, once per data version (cached under raw/; later runs and
    every backfill week of the same version make none).
    """
    from claims.evidence_counts import pt_spellings
    from extractors.openfda.client import make_client
    from extractors.openfda.query import reactions_any

    out_dir = _background_cache(settings, "claim_trend", f"version={data_version}_claims={catalog.version}")
    summary_path = out_dir / "daily_counts.json"
    if summary_path.exists() and not settings.refresh:
        return json.loads(summary_path.read_text(encoding="utf-8")), 0
    fetch = _CountFetcher(make_client(settings), out_dir / "responses", data_version)
    summary: dict[str, Any] = {"data_version": data_version, "source": settings.source, "groups": {}}
    summary["total"] = fetch.days("total", {"count": "receivedate"})
    for name, pts, claim_ids in _unique_pt_groups(catalog):
        days = fetch.days(name, {"search": reactions_any(pt_spellings(pts)), "count": "receivedate"})
        for claim_id in claim_ids:
            summary["groups"][claim_id] = days
    summary["requests"] = fetch.requests
    atomic_write_json(summary_path, summary)
    return summary, fetch.requests


def fetch_subgroup_background(
    settings: Settings, end: datetime, catalog: Any, data_version: str
) -> tuple[dict[str, Any], int]:
    """Background counts by sex and age group for all reports and each claim group, before `end`.

    Two count requests per distinct claim group (patient.patientsex; patient.patientonsetage among ages
    given in years) plus two for all reports, cached per window end and data version.
    """
    from claims.assess import bucket_terms
    from claims.evidence_counts import pt_spellings
    from extractors.openfda.client import make_client
    from extractors.openfda.query import reactions_any, received_before

    key = f"end={end:%Y-%m-%dT%H%M}_version={data_version}_claims={catalog.version}"
    out_dir = _background_cache(settings, "claim_subgroups", key)
    summary_path = out_dir / "subgroup_counts.json"
    if summary_path.exists() and not settings.refresh:
        return json.loads(summary_path.read_text(encoding="utf-8")), 0
    fetch = _CountFetcher(make_client(settings), out_dir / "responses", data_version)
    before = received_before(end)

    def by_subgroup(name: str, search: str) -> dict[str, dict[str, int]]:
        sex = fetch.terms(f"{name}-sex", {"search": search, "count": "patient.patientsex", "limit": "10"})
        age = fetch.terms(
            f"{name}-age",
            {"search": f"{search} AND patient.patientonsetageunit:801", "count": "patient.patientonsetage", "limit": "1000"},
        )
        return {"sex": bucket_terms("sex", sex), "age": bucket_terms("age", age)}

    summary: dict[str, Any] = {"data_version": data_version, "source": settings.source, "end": end.isoformat(), "groups": {}}
    summary["total"] = by_subgroup("total", before)
    for name, pts, claim_ids in _unique_pt_groups(catalog):
        counts = by_subgroup(name, f"{before} AND {reactions_any(pt_spellings(pts))}")
        for claim_id in claim_ids:
            summary["groups"][claim_id] = counts
    summary["requests"] = fetch.requests
    atomic_write_json(summary_path, summary)
    return summary, fetch.requests
