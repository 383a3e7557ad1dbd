"""Render the weekly signal report: one self-contained HTML file and a Markdown summary for email.

Everything that comes from data is HTML-escaped; numbers are formatted here and nowhere else, so the
reader never sees `nan` or `None` (missing values print as an em dash with the reason nearby).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from claims.assess import VERDICT_RULES

DISCLAIMER = (
    "Adverse event reports do not establish that a drug caused the reported event. FAERS/openFDA data "
    "are spontaneous reports: they are incomplete, duplicated in places, subject to reporting biases, "
    "and cannot give incidence. Disproportionality is a screening signal, not evidence of causation. "
    "Do not rely on openFDA to make decisions regarding medical care."
)
MISSING = "—"


@dataclass
class ReportContext:
    drug: str
    period: str
    window_start: str
    window_end: str
    data_version: str
    source: str
    synthetic: bool
    new_reports: int
    cumulative_reports: int
    claims: pd.DataFrame  # one row per claim: claim_id, verdict, reason, n, n_new, statement, citation, pts
    group_scores: pd.DataFrame  # level == claim_group rows of the signals table
    pt_scores: pd.DataFrame  # level == pt rows
    claims_version: str
    quality: list[dict[str, Any]] = field(default_factory=list)  # {dataset, success, critical, warnings}
    quarantine_counts: dict[str, int] = field(default_factory=dict)
    data_docs_href: str | None = None
    generated_at: str = ""


def esc(value: Any) -> str:
    return html.escape(fmt(value))


def fmt(value: Any, digits: int = 2) -> str:
    """Reader-facing text of a value: no nan/None/inf leaks."""
    if value is None or value is pd.NA or value is pd.NaT:
        return MISSING
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}f}"
    if hasattr(value, "item"):
        return fmt(value.item(), digits)
    return str(value)


def interval(point: Any, lower: Any, upper: Any) -> str:
    if fmt(point) == MISSING:
        return MISSING
    return f"{fmt(point)} ({fmt(lower)}–{fmt(upper)})"


def _rules_fired(row: pd.Series) -> str:
    names = {"signal_evans": "Evans", "signal_ema": "EMA", "signal_who_umc": "WHO-UMC", "signal_fda": "FDA EB05"}
    fired = [label for column, label in names.items() if column in row and bool(row[column])]
    return ", ".join(fired) if fired else "none"


def _verdict_class(verdict: str) -> str:
    return {"supported": "ok", "not supported": "no", "insufficient data": "na"}.get(verdict, "nt")


CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1.5rem;color:#1b1f24}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;border-bottom:1px solid #ccd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.9rem}th,td{border:1px solid #d5d9e0;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f1f3f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.banner{background:#fff3cd;border:1px solid #e0c060;padding:.6rem .8rem;border-radius:4px;margin:.6rem 0}
.notice{background:#e8f1fb;border:1px solid #9cc0e8;padding:.6rem .8rem;border-radius:4px}
.verdict{font-weight:600;padding:.1rem .35rem;border-radius:3px;white-space:nowrap}
.ok{background:#d7f2dc}.no{background:#f8d7da}.na{background:#eceff3}.nt{background:#fbeacc}
.small{font-size:.85rem;color:#4a5260}
@media print{body{max-width:none;padding:0}.banner,.notice{break-inside:avoid}h2{break-after:avoid}}
"""


def render_html(ctx: ReportContext) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(ctx.drug.title())} signal report {esc(ctx.period)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    if ctx.synthetic:
        parts.append(
            '<div class="banner" role="alert"><strong>SYNTHETIC DATA.</strong> This report was produced from the '
            "bundled synthetic sample, generated from published marginal rates. It exercises the pipeline and says "
            "nothing about the drug.</div>"
        )
    parts.append(f"<h1>{esc(ctx.drug.title())}: weekly adverse-event signal report</h1>")
    parts.append(
        f'<p class="small">Window [{esc(ctx.window_start)}, {esc(ctx.window_end)}) · source {esc(ctx.source)} · '
        f"data version (meta.last_updated) {esc(ctx.data_version)} · claims file {esc(ctx.claims_version)} · "
        f"generated {esc(ctx.generated_at)}</p>"
    )
    parts.append(_executive_summary(ctx))
    parts.append(_claims_table(ctx))
    parts.append(_pt_table(ctx))
    parts.append(_quality_section(ctx))
    parts.append(_methods_section())
    parts.append(f'<h2 id="disclaimer">Disclaimer</h2><p>{html.escape(DISCLAIMER)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _executive_summary(ctx: ReportContext) -> str:
    counts = ctx.claims["verdict"].value_counts().to_dict() if len(ctx.claims) else {}
    summary = ", ".join(f"{n} {esc(v)}" for v, n in sorted(counts.items()))
    if ctx.new_reports == 0:
        news = (
            '<p class="notice"><strong>No new reports in this window.</strong> openFDA refreshes quarterly and lags '
            f"by months; the latest data version is {esc(ctx.data_version)}. The statistics below are cumulative over "
            "all reports received before the window's end. An empty week is not evidence of no signal.</p>"
        )
    else:
        news = f"<p><strong>{ctx.new_reports}</strong> new {esc(ctx.drug)} report(s) received in this window.</p>"
    return (
        '<h2 id="summary">Executive summary</h2>'
        + news
        + f"<p>Cumulative {esc(ctx.drug)} reports received before the window's end: <strong>{ctx.cumulative_reports}</strong>. "
        f"Claims assessed: {len(ctx.claims)} ({summary}).</p>"
    )


def _claims_table(ctx: ReportContext) -> str:
    groups = ctx.group_scores.set_index("claim_id") if len(ctx.group_scores) else pd.DataFrame()
    rows = []
    for _, claim in ctx.claims.iterrows():
        score = groups.loc[claim["claim_id"]] if claim["claim_id"] in groups.index else None
        cells = [
            f"<td><strong>{esc(claim['claim_id'])}</strong><br>{esc(claim['statement'])}"
            f'<br><span class="small">{esc(claim["citation"])}</span></td>',
            f'<td><span class="verdict {_verdict_class(claim["verdict"])}">{esc(claim["verdict"])}</span>'
            f'<br><span class="small">{esc(claim["reason"])}</span></td>',
            f'<td class="num">{esc(score["n"]) if score is not None else MISSING}</td>',
            f'<td class="num">{esc(score["n_new"]) if score is not None else MISSING}</td>',
        ]
        if score is not None:
            cells += [
                f'<td class="num">{esc(interval(score["prr"], score["prr_lower"], score["prr_upper"]))}</td>',
                f'<td class="num">{esc(interval(score["ror"], score["ror_lower"], score["ror_upper"]))}</td>',
                f'<td class="num">{esc(interval(score["ic"], score["ic025"], score["ic975"]))}</td>',
                f'<td class="num">{esc(interval(score["ebgm"], score["eb05"], score["eb95"]))}</td>',
                f"<td>{esc(_rules_fired(score))}</td>",
            ]
        else:
            cells += [f"<td>{MISSING}</td>"] * 5
        cells.append(f'<td class="small">{esc(claim["pts"])}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = (
        "<tr><th>Claim</th><th>Verdict</th><th>n (cumulative)</th><th>n (new)</th><th>PRR (95% CI)</th>"
        "<th>ROR (95% CI)</th><th>IC (IC025–IC975)</th><th>EBGM (EB05–EB95)</th><th>Rules firing</th><th>Evidence PTs</th></tr>"
    )
    return '<h2 id="claims">Claims of the article</h2><table id="claims-table">' + head + "".join(rows) + "</table>"


def _pt_table(ctx: ReportContext) -> str:
    scores = ctx.pt_scores.sort_values(["n"], ascending=False)
    rows = []
    for _, s in scores.iterrows():
        rows.append(
            "<tr>"
            f"<td>{esc(s['pt'])}</td><td class='num'>{esc(s['n'])}</td><td class='num'>{esc(s['n_new'])}</td>"
            f"<td class='num'>{esc(s['e'])}</td>"
            f"<td class='num'>{esc(interval(s['prr'], s['prr_lower'], s['prr_upper']))}</td>"
            f"<td class='num'>{esc(interval(s['ror'], s['ror_lower'], s['ror_upper']))}</td>"
            f"<td class='num'>{esc(interval(s['ic'], s['ic025'], s['ic975']))}</td>"
            f"<td class='num'>{esc(interval(s['ebgm'], s['eb05'], s['eb95']))}</td>"
            f"<td>{esc(_rules_fired(s))}</td></tr>"
        )
    head = (
        "<tr><th>PT</th><th>n</th><th>new</th><th>E</th><th>PRR</th><th>ROR</th><th>IC</th><th>EBGM</th>"
        "<th>Rules firing</th></tr>"
    )
    return (
        f'<h2 id="pts">All preferred terms reported with {esc(ctx.drug)}</h2>'
        f'<table id="pt-table">{head}{"".join(rows)}</table>'
    )


def _quality_section(ctx: ReportContext) -> str:
    rows = []
    for item in ctx.quality:
        status = "passed" if item.get("success") else "FAILED"
        warnings = "; ".join(str(w) for w in item.get("warnings", [])) or MISSING
        rows.append(
            f"<tr><td>{esc(item.get('dataset'))}</td><td>{esc(status)}</td>"
            f"<td class='num'>{esc(item.get('evaluated'))}</td><td>{esc(warnings)}</td></tr>"
        )
    quarantine = ", ".join(f"{esc(k)}: {v}" for k, v in sorted(ctx.quarantine_counts.items())) or "none"
    docs = f'<p><a href="{html.escape(ctx.data_docs_href)}">Great Expectations Data Docs</a></p>' if ctx.data_docs_href else ""
    return (
        '<h2 id="quality">Data quality</h2><table id="quality-table"><tr><th>Dataset</th><th>Critical checks</th>'
        "<th>Expectations</th><th>Warnings</th></tr>" + "".join(rows) + "</table>"
        f"<p>Quarantined rows: {quarantine}.</p>{docs}"
    )


def _methods_section() -> str:
    rules = "".join(f"<li><strong>{esc(kind)}</strong>: {esc(rule)}</li>" for kind, rule in VERDICT_RULES.items())
    return (
        '<h2 id="methods">Methods and thresholds</h2>'
        "<p>For each preferred term (PT) and each claim's PT group, a 2x2 table over reports received before the "
        "window's end: a = drug reports with the PT, a+b = all drug reports, a+c = all reports with the PT, "
        "N = all reports. E = (a+b)(a+c)/N. PRR and ROR with 95% log-normal CIs and the Yates chi-square; "
        "IC = log2((a+0.5)/(E+0.5)) with gamma-quantile bounds; EBGM with EB05/EB95 under DuMouchel's "
        "two-gamma prior.</p>"
        "<p>Signal rules: Evans (PRR ≥ 2, χ² ≥ 4, n ≥ 3); EMA (ROR lower 95% bound &gt; 1, n ≥ 3); WHO-UMC "
        "(IC025 &gt; 0); FDA (EB05 ≥ 2).</p>"
        f"<p>Verdict rules:</p><ul>{rules}</ul>"
    )


def render_markdown(ctx: ReportContext) -> str:
    lines = [f"# {ctx.drug.title()} signal report, {ctx.window_start} to {ctx.window_end}", ""]
    if ctx.synthetic:
        lines += ["> **SYNTHETIC DATA** from the bundled sample: it says nothing about the drug.", ""]
    if ctx.new_reports == 0:
        lines.append(
            f"No new reports in this window (data version {ctx.data_version}); cumulative statistics below. "
            "An empty week is not evidence of no signal."
        )
    else:
        lines.append(f"{ctx.new_reports} new report(s) in this window; data version {ctx.data_version}.")
    lines += ["", f"Cumulative reports: {ctx.cumulative_reports}.", "", "| Claim | Verdict | n | ROR (95% CI) |", "|---|---|---|---|"]
    groups = ctx.group_scores.set_index("claim_id") if len(ctx.group_scores) else pd.DataFrame()
    for _, claim in ctx.claims.iterrows():
        if claim["claim_id"] in groups.index:
            s = groups.loc[claim["claim_id"]]
            n, ror = fmt(s["n"]), interval(s["ror"], s["ror_lower"], s["ror_upper"])
        else:
            n, ror = MISSING, MISSING
        lines.append(f"| {claim['claim_id']} | {claim['verdict']} | {n} | {ror} |")
    lines += ["", DISCLAIMER, ""]
    return "\n".join(lines)
