"""A tiny, fully known world for the claims, report and publish tests (not the 24,000-report sample).

2,000 background reports and 100 reports of the watched drug, all listed below by rule, so every count
in the expected results can be worked out by hand:

- drug reports D001-D020 carry Back pain (D001-D003 also Tendonitis), D021-D030 Headache, D031
  Sacroiliitis, D032-D036 the PT `<script>alert(1)</script>` (all received in the last window), the rest
  Nausea; D101 is received after the last window and must never count;
- background B0001-B1900: 40 Back pain, 190 Headache, 5 Sacroiliitis, 2 `<script>`, 30 Tendonitis, the
  rest Nausea, days spread over 2019-2024, plus B1901-B1905 after the window.

Expected verdicts, API-like tables (no event dates, no doses): strong supported, null_effect not
supported, rare insufficient data, achilles not supported, onset / during / dose not testable with this
source. FAERS-like tables (event dates, start/end dates, cumulative doses): onset, during and dose
supported, the others unchanged.

The world is written as canonical staged tables plus a bulk openFDA file that the offline client answers
background count requests from, exactly as the pipeline does with the bundled sample.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
CLAIMS_FILE = HERE / "claims.yaml"
DRUG = "isotretinoin"
DATA_VERSION = "2025-01-03"
SCRIPT_PT = "<script>alert(1)</script>"
WEEK = timedelta(days=7)
WINDOW_END = datetime(2025, 1, 6, 6, tzinfo=UTC)  # the week with the 5 <script> reports
WINDOW_START = WINDOW_END - WEEK
PREVIOUS_END = WINDOW_START  # an empty week: no drug report received in it
PREVIOUS_START = PREVIOUS_END - WEEK
EXPECTED_API = {
    "strong": "supported",
    "null_effect": "not supported",
    "rare": "insufficient data",
    "achilles": "not supported",
    "onset": "not testable with this source",
    "during": "not testable with this source",
    "dose": "not testable with this source",
}
EXPECTED_FAERS = {**EXPECTED_API, "onset": "supported", "during": "supported", "dose": "supported"}
BACK_PAIN_TTO = (5, 12, 20, 25, 30, 33, 40, 45, 50, 55, 60, 65, 70, 75, 80, 88, 120, 150, 200, 10)
AGE_LABELS = ((0, "0-11"), (12, "12-17"), (18, "18-29"), (30, "30-44"), (45, "45-64"), (65, "65+"))


@dataclass(frozen=True)
class Report:
    id: str
    day: date
    pts: tuple[str, ...]
    sex: int
    age: int
    drug: bool
    tto: int | None = None  # time to onset for the FAERS-like tables
    dose: float | None = None


def _spread(index: int, count: int, first: date = date(2019, 1, 10), span_days: int = 2170) -> date:
    return first + timedelta(days=(index * span_days) // count)


def drug_reports() -> list[Report]:
    out = []
    for i in range(1, 102):
        if i <= 20:
            pts: tuple[str, ...] = ("Back pain", "Tendonitis") if i <= 3 else ("Back pain",)
        elif i <= 30:
            pts = ("Headache",)
        elif i == 31:
            pts = ("Sacroiliitis",)
        elif i <= 36:
            pts = (SCRIPT_PT,)
        else:
            pts = ("Nausea",)
        if 32 <= i <= 36:
            day = WINDOW_START.date() + timedelta(days=i - 32)
        elif i == 101:
            day = WINDOW_END.date() + timedelta(days=2)
        else:
            day = _spread(i, 100)
        tto = BACK_PAIN_TTO[i - 1] if i <= 20 else 30
        dose = 9000.0 + 100 * i if i <= 20 else 4000.0 + 37 * (i % 40)
        out.append(Report(f"D{i:03d}", day, pts, sex=1 + i % 2, age=14 + i % 20, drug=True, tto=tto, dose=dose))
    return out


def background_reports() -> list[Report]:
    out = []
    for i in range(1, 1906):
        k = (i * 7919) % 1900  # a fixed shuffle, so that each PT's reports spread over the years
        if k < 40:
            pt = "Back pain"
        elif k < 230:
            pt = "Headache"
        elif k < 235:
            pt = "Sacroiliitis"
        elif k < 237:
            pt = SCRIPT_PT
        elif k < 267:
            pt = "Tendonitis"
        else:
            pt = "Nausea"
        day = _spread(i, 1900) if i <= 1900 else WINDOW_END.date() + timedelta(days=4)
        out.append(Report(f"B{i:04d}", day, (pt,), sex=1 + (i // 3) % 2, age=20 + i % 50, drug=False))
    return out


def world() -> list[Report]:
    return drug_reports() + background_reports()


# ------------------------------------------------------------------------------- openFDA bulk file


def bulk_document(reports: list[Report]) -> dict[str, Any]:
    results = []
    for r in reports:
        product = "ISOTRETINOIN" if r.drug else "OTHERDRUG"
        results.append(
            {
                "safetyreportid": r.id,
                "receivedate": f"{r.day:%Y%m%d}",
                "patient": {
                    "patientsex": str(r.sex),
                    "patientonsetage": str(r.age),
                    "patientonsetageunit": "801",
                    "reaction": [{"reactionmeddrapt": pt} for pt in r.pts],
                    "drug": [{"medicinalproduct": product, "drugcharacterization": "1"}],
                },
            }
        )
    return {"meta": {"last_updated": DATA_VERSION, "results": {"total": len(results)}}, "results": results}


def write_bulk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(bulk_document(world())), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- canonical tables


def _age_group(age: int) -> str:
    label = "unknown"
    for low, name in AGE_LABELS:
        if age >= low:
            label = name
    return label


def canonical_tables(reports: list[Report], *, faers_like: bool) -> dict[str, pd.DataFrame]:
    """The drug's reports as the canonical staged tables (normalization/model.py)."""
    from normalization.model import DRUG_COLUMNS, REACTION_COLUMNS, REPORT_COLUMNS, conform

    source = "faers_ascii" if faers_like else "sample"
    rep, drg, rea = [], [], []
    for r in reports:
        start = event = end = None
        if faers_like:
            event = r.day - timedelta(days=20)
            start = event - timedelta(days=r.tto or 0)
            end = start + timedelta(days=180) if r.pts[0] == "Back pain" else None
        rep.append({
            "source": source, "safetyreportid": r.id, "caseid": r.id, "safetyreportversion": 1,
            "receivedate": pd.Timestamp(r.day), "receiptdate": pd.Timestamp(r.day),
            "event_date": pd.Timestamp(event) if event else pd.NaT, "event_date_precision": "day" if event else None,
            "serious": 2, "reporttype": "1", "occurcountry": "US", "patientsex": r.sex, "age_years": float(r.age),
            "age_group": _age_group(r.age), "weight_kg": None, "is_duplicate_flagged": False, "data_version": DATA_VERSION,
        })  # fmt: skip
        drg.append({
            "source": source, "safetyreportid": r.id, "drug_seq": 1, "medicinalproduct": "ISOTRETINOIN",
            "active_substance": "ISOTRETINOIN", "substance_match": "activesubstance", "role": "PS",
            "drugcharacterization": 1, "is_target_drug": True,
            "start_date": pd.Timestamp(start) if start else pd.NaT, "start_date_precision": "day" if start else None,
            "end_date": pd.Timestamp(end) if end else pd.NaT, "end_date_precision": "day" if end else None,
            "treatment_duration_days": None, "cum_dose_mg": r.dose if faers_like else None,
            # The staged tto as the normalizer computes it; the broken value of a missing date is ignored.
            "tto_days": float(r.tto) if faers_like else -106751991167300.64,
            "tto_precision": "day" if faers_like else None,
        })  # fmt: skip
        if r.id in ("D001", "D002", "D003", "D004", "D005"):  # a concomitant drug: never the watched one
            drg.append({**drg[-1], "drug_seq": 2, "medicinalproduct": "IBUPROFEN", "active_substance": "IBUPROFEN",
                        "role": "C", "drugcharacterization": 2, "is_target_drug": False, "cum_dose_mg": 99999.0})  # fmt: skip
        for seq, pt in enumerate(r.pts, start=1):
            rea.append({"source": source, "safetyreportid": r.id, "reaction_seq": seq, "pt_verbatim": pt, "pt": pt,
                        "pt_known": pt != SCRIPT_PT, "mapping_rule": "exact", "reactionoutcome": 6})  # fmt: skip
    return {
        "reports": conform(pd.DataFrame(rep), REPORT_COLUMNS),
        "drugs": conform(pd.DataFrame(drg), DRUG_COLUMNS),
        "reactions": conform(pd.DataFrame(rea), REACTION_COLUMNS),
    }


def received_between(reports: list[Report], first: date, last: date) -> list[Report]:
    return [r for r in reports if first <= r.day <= last]


def counts(catalog: Any, end: datetime, start: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """pt_counts.csv and claim_group_counts.csv as normalize writes them, counted from the world."""
    last = end.date() - timedelta(days=1)
    everything = [r for r in world() if r.day <= last]
    drug = [r for r in everything if r.drug]
    new_ids = {r.id for r in drug if r.day >= start.date()}
    total, drug_total = len(everything), len(drug)
    pts = sorted({pt for r in drug for pt in r.pts})
    pt_rows = []
    for pt in pts:
        cases = [r for r in drug if pt in r.pts]
        pt_rows.append({"drug": DRUG, "event": pt, "n": len(cases), "n_new": sum(r.id in new_ids for r in cases),
                        "drug_total": drug_total, "event_total_missing": False,
                        "event_total": sum(pt in r.pts for r in everything), "total": total})  # fmt: skip
    group_rows = []
    for claim in catalog.claims:
        group = set(claim.pt_list)
        cases = [r for r in drug if group & set(r.pts)]
        group_rows.append({"drug": DRUG, "event": f"claim:{claim.id}", "claim_id": claim.id, "n": len(cases),
                           "n_new": sum(r.id in new_ids for r in cases), "drug_total": drug_total,
                           "event_total": sum(bool(group & set(r.pts)) for r in everything), "total": total})  # fmt: skip
    return pd.DataFrame(pt_rows), pd.DataFrame(group_rows)


# ----------------------------------------------------------------------------- stage runs


def settings_for(data_dir: Path, bulk_path: Path) -> Any:
    from pv.settings import Settings

    return Settings(data_dir=data_dir, source="sample", sample_path=bulk_path, drug=DRUG, claims_file=CLAIMS_FILE)


def stage_inputs(settings: Any, start: datetime, end: datetime, *, faers_like: bool) -> dict[str, Any]:
    """Write the staged partition and validation outputs the later stages read; return their dicts."""
    from claims.catalog import load_claims
    from normalization.model import QUARANTINE_COLUMNS, conform  # noqa: I001
    from pv.storage import partition_dir

    drug = [r for r in drug_reports() if r.day < end.date()]
    new = [r for r in drug if r.day >= start.date()]
    staged = partition_dir(settings.data_dir, "staged", DRUG, start, end)
    staged.mkdir(parents=True, exist_ok=True)
    for prefix, chosen in (("cumulative", drug), ("new", new)):
        for name, table in canonical_tables(chosen, faers_like=faers_like).items():
            table.to_parquet(staged / f"{prefix}_{name}.parquet", index=False)
    quarantine = conform(pd.DataFrame([{"stage": "normalize", "dataset": "reports", "record_id": "D999",
                                        "field": "receivedate", "value": "2019-02-30", "reason": "receivedate <is> not a date",
                                        "action": "rejected"}]), QUARANTINE_COLUMNS)  # fmt: skip
    quarantine.to_parquet(staged / "quarantine.parquet", index=False)
    pt_counts, group_counts = counts(load_claims(CLAIMS_FILE), end, start)
    pt_counts.to_csv(staged / "pt_counts.csv", index=False)
    group_counts.to_csv(staged / "claim_group_counts.csv", index=False)
    validation = partition_dir(settings.data_dir, "validation", DRUG, start, end)
    (validation / "data_docs").mkdir(parents=True, exist_ok=True)
    (validation / "data_docs" / "index.html").write_text("<html><body>Data Docs</body></html>", encoding="utf-8")
    summary = {"success": True, "evaluated": 10, "critical": [], "result_path": ""}
    raw = {**summary, "dataset": "raw_reports", "rows": len(new), "warnings": []}
    normalized_validation = {
        "summaries": [{**summary, "dataset": "cumulative_reports", "rows": len(drug), "warnings": ["a <warning> & more"]}],
        "data_docs": str(validation / "data_docs" / "index.html"),
    }
    normalized = {"staged_dir": str(staged), "data_version": DATA_VERSION, "new_reports": len(new),
                  "cumulative_reports": len(drug), "quarantined": 1}  # fmt: skip
    return {"extract": {"new_reports": len(new)}, "raw_validation": raw, "normalize": normalized,
            "normalized_validation": normalized_validation}  # fmt: skip


def run_week(
    settings: Any, start: datetime, end: datetime, *, faers_like: bool, run_id: str = "test_run", publish: bool = True
) -> dict[str, Any]:
    """compute_signals -> assess -> render_report (-> publish) on the fixture world for [start, end)."""
    from pv import stages

    inputs = stage_inputs(settings, start, end, faers_like=faers_like)
    signals = stages.compute_signals(settings, start, end, inputs["normalize"])
    claims = stages.assess(settings, start, end, inputs["normalize"], signals)
    report = stages.render_report(
        settings, start, end, inputs["extract"], inputs["raw_validation"], inputs["normalize"],
        inputs["normalized_validation"], signals, claims, generated_at=datetime(2025, 1, 6, 7, tzinfo=UTC),
    )  # fmt: skip
    outputs = {"extract": inputs["extract"], "normalize": inputs["normalize"], "signals": signals, "claims": claims, "report": report}
    if not publish:
        return {**outputs, "settings": settings, "inputs": inputs}
    published = stages.publish(settings, start, end, run_id, outputs)
    return {**outputs, "publish": published, "settings": settings, "inputs": inputs}


_RUNS: dict[str, dict[str, Any]] = {}


def world_runs(base: Path) -> dict[str, Any]:
    """The runs every report/publish test reads, made once per test session (publishing runs GX).

    api: the empty week before (published) then the week with the <script> reports (published, compares
    with it); faers: the same week on FAERS-like tables (event dates, doses), rendered but not published.
    """
    key = str(base)
    if key not in _RUNS:
        bulk = write_bulk(base / "bulk.json")
        api = settings_for(base / "api" / "var", bulk)
        previous = run_week(api, PREVIOUS_START, PREVIOUS_END, faers_like=False, run_id="scheduled__previous")
        current = run_week(api, WINDOW_START, WINDOW_END, faers_like=False, run_id="scheduled__current")
        faers = run_week(settings_for(base / "faers" / "var", bulk), WINDOW_START, WINDOW_END, faers_like=True, publish=False)
        _RUNS[key] = {"previous": previous, "current": current, "faers": faers, "bulk": bulk}
    return _RUNS[key]
