"""Render the weekly evidence report: one self-contained HTML file and a Markdown summary for email.

Everything that comes from data is HTML-escaped (Markdown-escaped in the summary); numbers are formatted
here and nowhere else, so the reader never sees `nan`, `None` or `inf` (missing values print as an em
dash with the reason nearby, unbounded interval ends as ∞). No scripts, no external resources: the file
opens offline and prints.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from claims.assess import (
    AGE_BINS,
    MIN_SUBGROUP_CASES,
    RULE_LABELS,
    SEX_LABELS,
    SIGNAL_COLUMNS,
    VERDICT_RULES,
    VERDICTS,
)
from claims.catalog import ClaimCatalog
from reports.changes import SIGNAL_DEFINITION, Changes
from reports.svg import ForestRow, box_plot, forest_plot, histogram, trend_chart

CAUSATION = "Adverse event reports do not establish causation"
DISCLAIMER = (
    f"{CAUSATION}: a report means only that someone suspected the drug, not that the drug caused the event. "
    "FAERS/openFDA data are spontaneous reports: incomplete, duplicated in places, shaped by reporting biases "
    "(publicity, litigation, stimulated reporting), and they cannot give incidence or prevalence. "
    "Disproportionality is a screening signal for review, not evidence of causation."
)
OPENFDA_DISCLAIMER = (
    "openFDA: \"Do not rely on openFDA to make decisions regarding medical care. While we make every effort to "
    "ensure that data is accurate, you should assume all results are unvalidated.\" Reports do not establish "
    "causation; there is no certainty that the reported event was due to the product."
)
MISSING = "—"
UNCOVERED_SHOWN = 40
VERDICT_CLASS = {"supported": "ok", "not supported": "no", "insufficient data": "na", "not testable with this source": "nt"}
SUBGROUP_COLUMNS: tuple[tuple[str, str], ...] = (
    *(("sex", label) for label in SEX_LABELS.values()),
    *(("age", label) for label, _, _ in AGE_BINS),
)


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
    claims: pd.DataFrame  # one row per claim (the claims table: verdict, reason, flattened evidence)
    group_scores: pd.DataFrame  # level == claim_group rows of the signals table
    pt_scores: pd.DataFrame  # level == pt rows
    claims_version: str
    quality: list[dict[str, Any]] = field(default_factory=list)  # {dataset, success, critical, warnings}
    quarantine_counts: dict[str, int] = field(default_factory=dict)
    data_docs_href: str | None = None
    generated_at: str = ""
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)  # claim_id -> evidence (claims.json)
    catalog: ClaimCatalog | None = None
    trend: pd.DataFrame = field(default_factory=pd.DataFrame)  # claim_id x quarter, cumulative scores
    subgroups: pd.DataFrame = field(default_factory=pd.DataFrame)  # claim_id x subgroup scores
    musculoskeletal: pd.DataFrame = field(default_factory=pd.DataFrame)
    uncovered: pd.DataFrame = field(default_factory=pd.DataFrame)
    changes: Changes = field(default_factory=Changes)
    background_note: str = ""


# -------------------------------------------------------------------------------------- format


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (str, list, dict, tuple)) else False
    except (TypeError, ValueError):
        return False


def fmt(value: Any, digits: int = 2) -> str:
    """Reader-facing text of a value: no nan/None/inf leaks."""
    if _is_missing(value):
        return MISSING
    if hasattr(value, "item") and not isinstance(value, (str, pd.Timestamp)):
        return fmt(value.item(), digits)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:,.{digits}f}"
    return str(value)


def fmt_pct(value: Any) -> str:
    return MISSING if _is_missing(value) else f"{float(value):.1%}"


def interval(point: Any, lower: Any, upper: Any, digits: int = 2) -> str:
    if _is_missing(point):
        return MISSING
    return f"{fmt(point, digits)} ({fmt(lower, digits)}–{fmt(upper, digits)})"


def pct_interval(point: Any, lower: Any, upper: Any) -> str:
    if _is_missing(point):
        return MISSING
    return f"{fmt_pct(point)} ({fmt_pct(lower)}–{fmt_pct(upper)})"


def esc(value: Any) -> str:
    return html.escape(fmt(value))


def rules_fired(row: Mapping[str, Any]) -> str:
    fired = [RULE_LABELS[c] for c in SIGNAL_COLUMNS if c in row and not _is_missing(row[c]) and bool(row[c])]
    return ", ".join(fired) if fired else "none"


def _verdict_badge(verdict: str) -> str:
    return f'<span class="verdict {VERDICT_CLASS.get(verdict, "nt")}">{html.escape(verdict)}</span>'


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", str(text).lower()).strip("-") or "x"


CSS = """
:root{--ink:#1b1f24;--muted:#4a5260;--line:#d5d9e0}
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1140px;padding:1.5rem;color:var(--ink)}
h1{font-size:1.6rem;margin:.2rem 0}h2{font-size:1.25rem;border-bottom:1px solid #ccd;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin:1.6rem 0 .4rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.86rem}
th,td{border:1px solid var(--line);padding:.28rem .42rem;text-align:left;vertical-align:top}
th{background:#f1f3f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.banner{background:#fff3cd;border:2px solid #d9a400;padding:.6rem .8rem;border-radius:4px;margin:.6rem 0}
.notice{background:#e8f1fb;border:1px solid #9cc0e8;padding:.6rem .8rem;border-radius:4px}
.verdict{font-weight:600;padding:.08rem .35rem;border-radius:3px;white-space:nowrap}
.ok{background:#d7f2dc}.no{background:#f8d7da}.na{background:#eceff3}.nt{background:#fbeacc}
.sig{color:#b4232f;font-weight:600}.small{font-size:.84rem;color:var(--muted)}
.ci{font-size:.8rem;color:var(--muted)}td.claim-cell{min-width:7rem;max-width:13rem}
#claims-table{font-size:.82rem}#claims-table td:nth-child(2){min-width:10rem}.wide{overflow-x:auto}
.summary{background:#fafbfc;border:1px solid var(--line);border-radius:4px;padding:.4rem 1rem .8rem}
.claim{border-top:1px solid var(--line);margin-top:1.2rem}
blockquote{margin:.3rem 0 .5rem;padding:.1rem .8rem;border-left:3px solid #ccd;color:var(--muted)}
nav ol{columns:3;font-size:.9rem;padding-left:1.2rem}
svg.chart{display:block;margin:.6rem 0;height:auto}
table.evidence{width:auto;min-width:50%}table.evidence th{font-weight:500;width:22rem}
@media (max-width:800px){nav ol{columns:1}}
@media print{body{max-width:none;padding:0;font-size:10pt}nav{display:none}.wide{overflow:visible}
table,#claims-table{font-size:7.5pt}td.num{white-space:normal}td.claim-cell,#claims-table td:nth-child(2){min-width:0}
th,td{padding:.15rem .25rem}td .small,td .ci{font-size:1em}.verdict{white-space:normal}.banner,.notice,.claim,svg,tr{break-inside:avoid}
h2,h3{break-after:avoid}a{color:inherit;text-decoration:none}}
"""


# ---------------------------------------------------------------------------------------- HTML


def render_html(ctx: ReportContext) -> str:
    title = f"{ctx.drug.title()} adverse-event evidence report {ctx.period}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # No network, no scripts: the page may load nothing but itself (data: images excepted).
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    if ctx.synthetic:
        parts.append(
            '<div class="banner" role="alert" id="synthetic-banner"><strong>SYNTHETIC DATA.</strong> This report was '
            "produced from the bundled synthetic sample, generated from published marginal rates. It exercises the "
            "pipeline and says nothing about the drug.</div>"
        )
    parts.append(f"<h1>{esc(ctx.drug.title())}: claim-by-claim adverse-event evidence</h1>")
    parts.append(
        f'<p class="small">Window [{esc(ctx.window_start)}, {esc(ctx.window_end)}) · source {esc(ctx.source)} · '
        f"data version (meta.last_updated) {esc(ctx.data_version)} · claims file {esc(ctx.claims_version)} · "
        f"generated {esc(ctx.generated_at)}</p>"
    )
    parts.append(_toc())
    parts.append(_executive_summary(ctx))
    parts.append(_claims_table(ctx))
    parts.append(_forest_section(ctx))
    parts.append(_claim_details(ctx))
    parts.append(_subgroups_section(ctx))
    parts.append(_beyond_section(ctx))
    parts.append(_changes_section(ctx))
    parts.append(_quality_section(ctx))
    parts.append(_methods_section(ctx))
    parts.append(_version_section(ctx))
    parts.append(_pt_table(ctx))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _toc() -> str:
    items = [
        ("summary", "Executive summary"), ("claims", "Claims and verdicts"), ("forest", "Forest plot"),
        ("details", "Evidence per claim"), ("subgroups", "Sex and age subgroups"), ("beyond", "Beyond the article"),
        ("changes", "Changes since the previous report"), ("quality", "Data quality"), ("methods", "Methods and thresholds"),
        ("version", "Data version and disclaimers"), ("pts", "Appendix: every PT"),
    ]  # fmt: skip
    return "<nav><ol>" + "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in items) + "</ol></nav>"


def _new_reports_text(ctx: ReportContext) -> str:
    if ctx.new_reports == 0:
        return (
            '<p class="notice" id="no-new-reports"><strong>No new reports in this window.</strong> openFDA refreshes '
            f"quarterly and lags by months; the data version is {esc(ctx.data_version)}. Everything below is cumulative "
            "over all reports received before the window's end. An empty week is not evidence of no signal.</p>"
        )
    return f"<p><strong>{fmt(ctx.new_reports)}</strong> new {esc(ctx.drug)} report(s) received in this window.</p>"


def _signal_item(entry: Mapping[str, Any]) -> str:
    name = f"claim group {entry['name']}" if entry.get("level") == "claim_group" else entry["name"]
    return (
        f"<li><strong>{html.escape(str(name))}</strong>: {html.escape(', '.join(entry.get('rules') or []))} "
        f'<span class="small">(n {esc(entry.get("n"))}, IC025 {esc(entry.get("ic025"))}, EB05 {esc(entry.get("eb05"))})</span></li>'
    )


def _executive_summary(ctx: ReportContext) -> str:
    counts = ctx.claims["verdict"].value_counts().to_dict() if len(ctx.claims) else {}
    tally = ", ".join(f"{counts[v]} {html.escape(v)}" for v in VERDICTS if counts.get(v))
    changes = ctx.changes
    if not changes.has_previous:
        since = "<p>There is <strong>no previous report</strong> to compare with.</p>"
    else:
        version = (
            f"the data version moved from <strong>{esc(changes.previous_data_version)}</strong> to "
            f"<strong>{esc(changes.data_version)}</strong>"
            if changes.data_version_changed
            else f"the data version is unchanged ({esc(changes.data_version)})"
        )
        since = (
            f"<p>Since the previous report ({esc(changes.previous_period)}): {version}; "
            f"<strong>{len(changes.new_signals)}</strong> new signal(s), {len(changes.lost_signals)} lost, "
            f"{len(changes.verdict_changes)} verdict change(s).</p>"
        )
        if changes.new_signals:
            since += '<p>New signals:</p><ul id="summary-new-signals">' + "".join(
                _signal_item(e) for e in changes.new_signals[:10]
            ) + "</ul>"
            if len(changes.new_signals) > 10:
                since += f'<p class="small">… and {len(changes.new_signals) - 10} more in <a href="#changes">Changes</a>.</p>'
        if changes.verdict_changes:
            since += "<p>Verdict changes: " + "; ".join(
                f"{html.escape(c['claim_id'])}: {html.escape(c['before'])} → {html.escape(c['after'])}"
                for c in changes.verdict_changes
            ) + ".</p>"
    verdict_items = "".join(
        f"<li>{_verdict_badge(str(row['verdict']))} {esc(row['statement'])} "
        f'<span class="small">— {esc(row["reason"])}</span></li>'
        for _, row in ctx.claims.iterrows()
    )
    top = ""
    if len(ctx.uncovered):
        top = "<p>Strongest signals no claim covers (by EB05): " + ", ".join(
            f"{esc(r['pt'])} (EB05 {esc(r['eb05'])})" for _, r in ctx.uncovered.head(5).iterrows()
        ) + ' — see <a href="#beyond">Beyond the article</a>.</p>'
    return (
        '<section id="summary" class="summary"><h2>Executive summary</h2>'
        + _new_reports_text(ctx)
        + f"<p>Cumulative {esc(ctx.drug)} reports received before the window's end: "
        f"<strong>{fmt(ctx.cumulative_reports)}</strong>. Claims assessed: {len(ctx.claims)} ({tally}).</p>"
        + since
        + f'<p><strong>Verdicts</strong> (rules in <a href="#methods">Methods</a>):</p><ul id="summary-verdicts">{verdict_items}</ul>'
        + top
        + "</section>"
    )


_SCORE_CELLS = (
    ("prr", ("prr", "prr_lower", "prr_upper")),
    ("ror", ("ror", "ror_lower", "ror_upper")),
    ("ic", ("ic", "ic025", "ic975")),
    ("ebgm", ("ebgm", "eb05", "eb95")),
)


def _claims_table(ctx: ReportContext) -> str:
    rows = []
    for _, claim in ctx.claims.iterrows():
        cid = str(claim["claim_id"])
        cells = [
            f'<td class="claim-cell"><a href="#claim-{_slug(cid)}"><strong>{html.escape(cid)}</strong></a>'
            f'<br><span class="small">{esc(claim["statement"])}</span></td>',
            f'<td data-field="verdict">{_verdict_badge(str(claim["verdict"]))}<br><span class="small">{esc(claim["reason"])}</span></td>',
            f'<td class="num" data-field="n">{esc(claim.get("n"))}</td>',
            f'<td class="num" data-field="n_new">{esc(claim.get("n_new"))}</td>',
        ]
        for name, (point, lower, upper) in _SCORE_CELLS:
            cells.append(f'<td class="num" data-field="{name}">{_stacked_interval(claim.get(point), claim.get(lower), claim.get(upper))}</td>')
        cells.append(f'<td data-field="rules">{esc(claim.get("rules_fired") or "none")}</td>')
        cells.append(f'<td data-field="first_signal_quarter">{esc(claim.get("first_signal_quarter"))}</td>')
        rows.append(f'<tr id="claim-row-{_slug(cid)}" data-claim="{html.escape(cid)}">' + "".join(cells) + "</tr>")
    head = (
        "<tr><th>Claim</th><th>Verdict and deciding numbers</th><th>n (cum.)</th><th>n (new)</th>"
        "<th>PRR (95% CI)</th><th>ROR (95% CI)</th><th>IC (IC025–IC975)</th><th>EBGM (EB05–EB95)</th>"
        "<th>Rules firing</th><th>First signal</th></tr>"
    )
    return (
        '<section id="claims"><h2>Claims of the article and verdicts</h2>'
        '<p class="small">Counts and measures are for the claim\'s PT group (a report counts once whatever number of '
        "its PTs it carries), cumulative over reports received before the window's end. The verdict rule for each "
        'kind of claim is in <a href="#methods">Methods</a>; the deciding numbers are under each verdict.</p>'
        f'<div class="wide"><table id="claims-table">{head}{"".join(rows)}</table></div></section>'
    )


def _stacked_interval(point: Any, lower: Any, upper: Any) -> str:
    """Point estimate over its interval, so that narrow columns stay readable."""
    if _is_missing(point):
        return MISSING
    return f'{esc(point)}<br><span class="ci">{html.escape(f"({fmt(lower)}–{fmt(upper)})")}</span>'


def _forest_rows(ctx: ReportContext) -> list[ForestRow]:
    pts = ctx.pt_scores.set_index("pt") if len(ctx.pt_scores) else pd.DataFrame()
    groups = ctx.group_scores.set_index("claim_id") if len(ctx.group_scores) else pd.DataFrame()
    rows: list[ForestRow] = []
    seen_groups: set[tuple[str, ...]] = set()
    for _, claim in ctx.claims.iterrows():
        cid = str(claim["claim_id"])
        pt_list = [p.strip() for p in str(claim.get("pts") or "").split(";") if p.strip()]
        key = tuple(sorted(pt_list))
        if claim.get("kind") != "disproportionality" and key in seen_groups:
            continue  # a dose claim reuses a PT group already drawn
        seen_groups.add(key)
        rows.append(ForestRow(label=f"{cid}: {claim['statement']}", heading=True))
        if cid in groups.index:
            g = groups.loc[cid]
            rows.append(_forest_row("claim PT group", g, group=True))
        if claim.get("kind") != "disproportionality":
            continue  # onset claims pool the PTs drawn under their own claims: the group row is enough
        for pt in pt_list:
            rows.append(_forest_row(pt, pts.loc[pt]) if pt in pts.index else ForestRow(label=pt, n=0))
    return rows


def _forest_row(label: str, s: pd.Series, group: bool = False) -> ForestRow:
    def num(key: str) -> float | None:
        value = s.get(key)
        return None if _is_missing(value) else float(value)

    return ForestRow(
        label=label, group=group, n=int(s["n"]), ror=num("ror"), ror_lower=num("ror_lower"), ror_upper=num("ror_upper"),
        ic=num("ic"), ic025=num("ic025"), ic975=num("ic975"), signal=rules_fired(s) != "none",
    )  # fmt: skip


def _forest_section(ctx: ReportContext) -> str:
    chart = forest_plot(_forest_rows(ctx), title=f"{ctx.drug.title()}: ROR and IC per claim PT")
    return (
        '<section id="forest"><h2>Forest plot: ROR and IC per claim PT</h2>'
        '<p class="small">Each claim\'s PT group (square) and its single PTs (dots), cumulative. ROR on a log scale with '
        "its 95% interval (reference line at 1); IC with IC025–IC975 (reference line at 0). Claims that reuse a group "
        "already drawn are not repeated; onset claims, which pool other claims' PTs, show their group only.</p>"
        f"{chart}</section>"
    )


def _trend_svg(ctx: ReportContext, claim_id: str, statement: str) -> str:
    if ctx.trend.empty or "claim_id" not in ctx.trend:
        return '<p class="small">No trend: the background counts by quarter are not available.</p>'
    rows = ctx.trend.loc[ctx.trend["claim_id"] == claim_id].sort_values("quarter")
    if rows.empty:
        return '<p class="small">No trend: the drug has no report with these PTs.</p>'

    def first(rule: str) -> str | None:
        column = f"first_signal_quarter_{rule}"
        value = rows.iloc[-1].get(column) if column in rows else None
        return None if _is_missing(value) else str(value)

    values = lambda col: [None if _is_missing(v) else float(v) for v in rows[col]]  # noqa: E731
    return trend_chart(
        [str(q) for q in rows["quarter"]], values("ic025"), values("eb05"),
        title=f"{claim_id}: cumulative IC025 and EB05 by quarter", first_who_umc=first("who_umc"), first_fda=first("fda"),
    )  # fmt: skip


def _evidence_table(pairs: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in pairs)
    return f'<table class="evidence">{body}</table>'


def _special_evidence(kind: str, evidence: Mapping[str, Any]) -> str:
    parts = []
    if kind == "time_to_onset" and "events_with_onset" in evidence:
        weibull = evidence.get("weibull") or {}
        threshold = evidence.get("threshold_days")
        pairs = [
            ("events with a known onset", fmt(evidence.get("events_with_onset"))),
            ("onset before the recorded start (excluded)", fmt(evidence.get("onset_before_start"))),
            (f"share within {fmt(threshold)} days (95% CI)", pct_interval(evidence.get("share_within"), evidence.get("share_lower"), evidence.get("share_upper"))),
            ("median time to onset, days (IQR)", f"{fmt(evidence.get('median_days'), 0)} ({' – '.join(fmt(q, 0) for q in evidence.get('quartiles_days') or []) or MISSING})"),
            ("Weibull shape (95% CI)", interval(weibull.get("shape"), weibull.get("shape_lower"), weibull.get("shape_upper"))),
            ("Weibull reading", str(weibull.get("hazard") or "too few distinct onsets to fit")),
        ]  # fmt: skip
        parts.append(_evidence_table(pairs))
        bands = [(b["band"], int(b["count"])) for b in evidence.get("distribution") or []]
        parts.append(histogram(bands, title="Time to onset (days from start of the drug)", highlight=1))
    elif kind == "on_treatment" and "events_with_dates" in evidence:
        pairs = [
            ("events with event and start dates", fmt(evidence.get("events_with_dates"))),
            ("share on drug (95% CI)", pct_interval(evidence.get("share"), evidence.get("share_lower"), evidence.get("share_upper"))),
            ("before the start date", fmt(evidence.get("before_start"))),
            ("between start and end date", fmt(evidence.get("during_known_end"))),
            ("after start, no end date recorded", fmt(evidence.get("during_no_end_date"))),
            ("after the end date", fmt(evidence.get("after_end"))),
            ("share on drug among reports with an end date", fmt_pct(evidence.get("strict_share"))),
        ]  # fmt: skip
        parts.append(_evidence_table(pairs))
    elif kind == "dose_response" and "reports_with_pt" in evidence:
        pairs = [
            ("reports with a cumulative dose, with / without the PTs", f"{fmt(evidence.get('reports_with_pt'))} / {fmt(evidence.get('reports_without_pt'))}"),
            ("median cumulative dose with the PTs, mg", fmt(evidence.get("median_dose_mg_with"), 0)),
            ("median cumulative dose without the PTs, mg", fmt(evidence.get("median_dose_mg_without"), 0)),
            ("Mann-Whitney U (one-sided, higher with the PTs)", fmt(evidence.get("mann_whitney_u"), 1)),
            ("p-value", fmt(evidence.get("p_value"), 4)),
        ]  # fmt: skip
        parts.append(_evidence_table(pairs))
        parts.append(box_plot(
            [("with the PTs", evidence.get("dose_quantiles_with_mg")), ("without the PTs", evidence.get("dose_quantiles_without_mg"))],
            title="Cumulative dose in the drug's reports (min, quartiles, max)", unit="mg",
        ))  # fmt: skip
    proportion = evidence.get("proportion")
    if proportion:
        pairs = [
            ("reports with the PTs / the drug's musculoskeletal reports", f"{fmt(proportion.get('reports_with_pt'))} / {fmt(proportion.get('musculoskeletal_reports'))}"),
            ("reporting proportion (95% CI)", pct_interval(proportion.get("reporting_proportion"), proportion.get("proportion_lower"), proportion.get("proportion_upper"))),
            ("study prevalence (for comparison)", f"{fmt_pct(proportion.get('study_prevalence'))} of {fmt(proportion.get('study_n'))} treated patients"),
            ("caveat", str(proportion.get("caveat") or "")),
        ]  # fmt: skip
        parts.append("<p><strong>Reporting proportion beside the study's prevalence.</strong></p>" + _evidence_table(pairs))
    return "".join(parts)


def _claim_details(ctx: ReportContext) -> str:
    out = ['<section id="details"><h2>Evidence per claim</h2>']
    for _, claim in ctx.claims.iterrows():
        cid = str(claim["claim_id"])
        evidence = ctx.evidence.get(cid, {})
        catalog_claim = next((c for c in ctx.catalog.claims if c.id == cid), None) if ctx.catalog else None
        out.append(f'<div class="claim" id="claim-{_slug(cid)}"><h3>{html.escape(cid)}: {esc(claim["statement"])}</h3>')
        if catalog_claim is not None:
            out.append(f"<blockquote>“{html.escape(catalog_claim.quote)}” — {html.escape(catalog_claim.citation)}</blockquote>")
        out.append(f'<p>{_verdict_badge(str(claim["verdict"]))} {esc(claim["reason"])}</p>')
        out.append(f'<p class="small"><strong>Rule:</strong> {esc(claim.get("verdict_rule") or VERDICT_RULES.get(str(claim["kind"]), ""))}</p>')
        if catalog_claim is not None and catalog_claim.caveat:
            out.append(f'<p class="small"><strong>Caveat:</strong> {html.escape(catalog_claim.caveat)}</p>')
        if catalog_claim is not None:
            out.append('<p class="small"><strong>Evidence PTs:</strong> ' + "; ".join(
                f"{html.escape(pt)} ({html.escape(why)})" for pt, why in catalog_claim.pts.items()
            ) + "</p>")  # fmt: skip
        out.append(_special_evidence(str(claim["kind"]), evidence))
        if not _is_missing(claim.get("n")):
            pairs = [
                ("drug reports with the PTs (new this window)", f"{fmt(claim.get('n'))} ({fmt(claim.get('n_new'))})"),
                ("expected count E", fmt(claim.get("e"))),
                ("PRR (95% CI)", interval(claim.get("prr"), claim.get("prr_lower"), claim.get("prr_upper"))),
                ("ROR (95% CI)", interval(claim.get("ror"), claim.get("ror_lower"), claim.get("ror_upper"))),
                ("IC (IC025–IC975)", interval(claim.get("ic"), claim.get("ic025"), claim.get("ic975"))),
                ("EBGM (EB05–EB95)", interval(claim.get("ebgm"), claim.get("eb05"), claim.get("eb95"))),
                ("rules firing", str(claim.get("rules_fired") or "none")),
                ("first quarter a rule fired", fmt(claim.get("first_signal_quarter"))),
            ]  # fmt: skip
            out.append("<p><strong>Disproportionality of the PT group.</strong></p>" + _evidence_table(pairs))
        out.append(_trend_svg(ctx, cid, str(claim["statement"])))
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


def _subgroups_section(ctx: ReportContext) -> str:
    intro = (
        '<section id="subgroups"><h2>Sex and age subgroups</h2><p class="small">Each claim group\'s 2x2 table within a '
        f"subgroup: drug reports from the staged tables, background from openFDA counts per claim group. Cells with fewer "
        f"than {MIN_SUBGROUP_CASES} drug reports show the count only. Cell: n, ROR (95% CI); red when a rule fires. "
        f"Ages are in years as reported (openFDA reports with age in other units are not in the background). "
        f"{html.escape(ctx.background_note)}</p>"
    )
    if ctx.subgroups.empty:
        return intro + "<p>No subgroup counts for this run.</p></section>"
    head = "<tr><th>Claim</th>" + "".join(f"<th>{html.escape(label)}</th>" for _, label in SUBGROUP_COLUMNS) + "</tr>"
    index = {(r["claim_id"], r["subgroup_kind"], r["subgroup"]): r for _, r in ctx.subgroups.iterrows()}
    rows = []
    for _, claim in ctx.claims.iterrows():
        cid = str(claim["claim_id"])
        cells = [f"<td>{html.escape(cid)}</td>"]
        for kind, label in SUBGROUP_COLUMNS:
            row = index.get((cid, kind, label))
            if row is None:
                cells.append(f'<td class="num">{MISSING}</td>')
            elif not bool(row["enough"]):
                cells.append(f'<td class="num small">n {fmt(int(row["n"]))}</td>')
            else:
                css = "num sig" if rules_fired(row) != "none" else "num"
                ror = _stacked_interval(row["ror"], row["ror_lower"], row["ror_upper"])
                cells.append(f'<td class="{css}">n {fmt(int(row["n"]))}<br>{ror}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return intro + f'<div class="wide"><table id="subgroups-table">{head}{"".join(rows)}</table></div></section>'


def _scores_table(frame: pd.DataFrame, table_id: str, with_claims: bool) -> str:
    head = (
        "<tr><th>PT</th><th>n</th><th>new</th><th>E</th><th>ROR (95% CI)</th><th>IC (IC025–IC975)</th>"
        "<th>EBGM (EB05–EB95)</th><th>Rules firing</th>" + ("<th>Claims covering it</th>" if with_claims else "") + "</tr>"
    )
    rows = []
    for _, s in frame.iterrows():
        claims = f"<td>{esc(s.get('claim_ids') or MISSING)}</td>" if with_claims else ""
        rows.append(
            f"<tr><td>{esc(s['pt'])}</td><td class='num'>{esc(s['n'])}</td><td class='num'>{esc(s.get('n_new'))}</td>"
            f"<td class='num'>{esc(s['e'])}</td>"
            f"<td class='num'>{esc(interval(s['ror'], s['ror_lower'], s['ror_upper']))}</td>"
            f"<td class='num'>{esc(interval(s['ic'], s['ic025'], s['ic975']))}</td>"
            f"<td class='num'>{esc(interval(s['ebgm'], s['eb05'], s['eb95']))}</td>"
            f"<td>{esc(rules_fired(s))}</td>{claims}</tr>"
        )
    return f'<div class="wide"><table id="{table_id}">{head}{"".join(rows)}</table></div>'


def _beyond_section(ctx: ReportContext) -> str:
    msk = (
        _scores_table(ctx.musculoskeletal, "musculoskeletal-table", with_claims=True)
        if len(ctx.musculoskeletal)
        else f"<p>No musculoskeletal PT is reported with {esc(ctx.drug)}.</p>"
    )
    shown = ctx.uncovered.head(UNCOVERED_SHOWN)
    uncovered = (
        _scores_table(shown, "uncovered-table", with_claims=False)
        if len(shown)
        else "<p>Every PT with a signal is covered by a claim.</p>"
    )
    if len(ctx.uncovered) > len(shown):
        uncovered += (
            f'<p class="small">… and {len(ctx.uncovered) - len(shown)} more with a lower EB05: every one is in the '
            'appendix below and in the dashboard signals table (claim_ids empty, any_signal true).</p>'
        )
    return (
        '<section id="beyond"><h2>Beyond the article</h2>'
        f"<h3>Musculoskeletal PTs reported with {esc(ctx.drug)}</h3>"
        '<p class="small">The musculoskeletal list (Chen et al. 2021 group plus the SOC\'s pain PTs), ranked by EB05, '
        "with the claims whose PT group names each one.</p>"
        + msk
        + "<h3>Signals no claim covers</h3>"
        f'<p class="small">Any PT, {html.escape(SIGNAL_DEFINITION)}, that no claim\'s PT group names, ranked by EB05.</p>'
        + uncovered
        + "</section>"
    )


def _signal_list(entries: Sequence[Mapping[str, Any]], list_id: str) -> str:
    if not entries:
        return f'<p id="{list_id}">none</p>'
    return f'<ul id="{list_id}">' + "".join(_signal_item(e) for e in entries) + "</ul>"


def _changes_section(ctx: ReportContext) -> str:
    changes = ctx.changes
    if not changes.has_previous:
        return (
            '<section id="changes"><h2>Changes since the previous report</h2><p id="no-previous-report">'
            "No previous report: no published period ends before this one, so there is nothing to compare with "
            "and no new-signal notification was sent.</p></section>"
        )
    version = (
        f"moved from {esc(changes.previous_data_version)} to {esc(changes.data_version)}"
        if changes.data_version_changed
        else f"unchanged ({esc(changes.data_version)})"
    )
    verdicts = (
        "<ul>" + "".join(
            f"<li>{html.escape(c['claim_id'])}: {_verdict_badge(c['before'])} → {_verdict_badge(c['after'])}</li>"
            for c in changes.verdict_changes
        ) + "</ul>"
        if changes.verdict_changes else "<p>none</p>"
    )  # fmt: skip
    return (
        '<section id="changes"><h2>Changes since the previous report</h2>'
        f"<p>Compared with {esc(changes.previous_period)} (the latest published window ending before this one). "
        f"Data version {version}. A signal is {html.escape(SIGNAL_DEFINITION)}; each new signal was sent as a "
        "notification.</p>"
        f"<h3>New signals ({len(changes.new_signals)})</h3>{_signal_list(changes.new_signals, 'new-signals')}"
        f"<h3>Signals lost ({len(changes.lost_signals)})</h3>{_signal_list(changes.lost_signals, 'lost-signals')}"
        f"<h3>Verdict changes ({len(changes.verdict_changes)})</h3>{verdicts}</section>"
    )


def _quality_section(ctx: ReportContext) -> str:
    rows = []
    for item in ctx.quality:
        status = "passed" if item.get("success") else "FAILED"
        warnings = "; ".join(str(w) for w in item.get("warnings", [])) or MISSING
        rows.append(
            f"<tr><td>{esc(item.get('dataset'))}</td><td>{esc(status)}</td>"
            f"<td class='num'>{esc(item.get('evaluated'))}</td><td class='num'>{esc(item.get('rows'))}</td><td>{esc(warnings)}</td></tr>"
        )
    quarantine = ", ".join(f"{esc(k)}: {fmt(v)}" for k, v in sorted(ctx.quarantine_counts.items())) or "none"
    docs = (
        f'<p>Full results: <a href="{html.escape(ctx.data_docs_href)}">Great Expectations Data Docs</a> (copied beside this report).</p>'
        if ctx.data_docs_href
        else ""
    )
    return (
        '<section id="quality"><h2>Data quality</h2><table id="quality-table"><tr><th>Dataset</th><th>Critical checks</th>'
        "<th>Expectations</th><th>Rows</th><th>Warnings</th></tr>" + "".join(rows) + "</table>"
        f'<p>Quarantined rows (kept out of the statistics, listed in quarantine.parquet): {quarantine}.</p>{docs}</section>'
    )


def _methods_section(ctx: ReportContext) -> str:
    from signals.rules import DEFAULT_RULES

    rules = "".join(
        f"<tr><td>{html.escape(r.label)}</td><td>{html.escape(', '.join(str(t) for t in r.thresholds))}</td>"
        f'<td class="small">{html.escape(r.source)}</td></tr>'
        for r in DEFAULT_RULES
    )
    verdicts = "".join(f"<li><strong>{html.escape(kind)}</strong>: {html.escape(rule)}</li>" for kind, rule in VERDICT_RULES.items())
    return (
        '<section id="methods"><h2>Methods and thresholds</h2>'
        "<p>For each preferred term (PT) and each claim's PT group, a 2x2 table over reports received before the "
        "window's end: a = drug reports with the PT, a+b = all drug reports, a+c = all reports with the PT (all drugs), "
        "N = all reports. E = (a+b)(a+c)/N. PRR and ROR with 95% log-normal intervals and the Yates chi-square; "
        "IC = log2((a+0.5)/(E+0.5)) with gamma-quantile bounds; EBGM with EB05/EB95 under DuMouchel's two-gamma prior, "
        "fitted on the drug's PTs and reused for claim groups, subgroups and every quarter of the trend.</p>"
        f'<h3>Signal rules</h3><table id="rules-table"><tr><th>Rule</th><th>Thresholds</th><th>Source</th></tr>{rules}</table>'
        f"<p>A <em>signal</em> in this report is {html.escape(SIGNAL_DEFINITION)}.</p>"
        f"<h3>Verdict rules</h3><ul>{verdicts}</ul>"
        "<h3>Trend, subgroups, time to onset</h3>"
        "<p><strong>Trend.</strong> For each claim group, every measure recomputed on the counts cumulated to the end of "
        "each quarter of receipt (drug side: the staged reports by receivedate; background: openFDA's daily report "
        "counts, all reports and reports with any of the group's PTs, in the current data version). The last quarter "
        "ends with the window. 'First signal' is the first quarter a rule fired on the cumulative counts.</p>"
        "<p><strong>Subgroups.</strong> Restricted to the claim groups to keep openFDA requests low: per claim group, "
        "one count request by patient sex and one by age (in years), plus the same two for all reports, cached per "
        "window end and data version (reruns make no requests). Drug side from the staged reports.</p>"
        "<p><strong>Time to onset.</strong> Days from the drug's start date to the event date, per report. Weibull shape "
        "by maximum likelihood (onset on the start day counted as half a day) with the asymptotic 95% interval; shape "
        "below 1 with the interval below 1 means a decreasing hazard (events concentrated early), above 1 an increasing "
        "one, an interval spanning 1 shows no time pattern (Cornelius et al., Drug Saf 2012;35:1-10).</p>"
        "</section>"
    )


def _version_section(ctx: ReportContext) -> str:
    synthetic = (
        "<p><strong>The source is the bundled synthetic sample</strong>: numbers illustrate the pipeline only.</p>"
        if ctx.synthetic
        else ""
    )
    return (
        '<section id="version"><h2>Data version and disclaimers</h2>'
        f"<p>Source: {esc(ctx.source)}; data version (openFDA meta.last_updated): <strong>{esc(ctx.data_version)}</strong>; "
        f"claims file version {esc(ctx.claims_version)}; window [{esc(ctx.window_start)}, {esc(ctx.window_end)}); "
        f"report {esc(ctx.period)} generated {esc(ctx.generated_at)}.</p>"
        + synthetic
        + f'<p id="disclaimer">{html.escape(DISCLAIMER)}</p><p>{html.escape(OPENFDA_DISCLAIMER)}</p></section>'
    )


def _pt_table(ctx: ReportContext) -> str:
    scores = ctx.pt_scores.sort_values(["n"], ascending=False) if len(ctx.pt_scores) else ctx.pt_scores
    body = _scores_table(scores, "pt-table", with_claims="claim_ids" in scores) if len(scores) else "<p>No PT.</p>"
    return f'<section id="pts"><h2>Appendix: every PT reported with {esc(ctx.drug)}</h2>{body}</section>'


# ------------------------------------------------------------------------------------ Markdown


_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|~])")
_MD_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md(value: Any) -> str:
    """Markdown-escaped reader text: data never turns into markup, links or HTML in an email client.

    Only the characters that can start markup are escaped ('(' is inert once '[' is), and an underscore
    inside a word (claim ids) stays as it is, since CommonMark never reads it as emphasis.
    """
    text = _MD_SPECIAL.sub(r"\\\1", fmt(value)).replace("\n", " ")
    return _MD_EDGE_UNDERSCORE.sub(r"\\_", text)


def render_markdown(ctx: ReportContext, report_name: str = "report.html") -> str:
    lines = [f"# {md(ctx.drug.title())}: claim-by-claim evidence, {md(ctx.window_start)} to {md(ctx.window_end)}", ""]
    if ctx.synthetic:
        lines += ["> **SYNTHETIC DATA** from the bundled sample: it says nothing about the drug.", ""]
    if ctx.new_reports == 0:
        lines.append(
            f"**No new reports in this window** (data version {md(ctx.data_version)}); the statistics below are cumulative. "
            "An empty week is not evidence of no signal."
        )
    else:
        lines.append(f"**{fmt(ctx.new_reports)}** new report(s) in this window; data version {md(ctx.data_version)}.")
    lines += ["", f"Cumulative reports: {fmt(ctx.cumulative_reports)}.", ""]
    changes = ctx.changes
    if not changes.has_previous:
        lines += ["No previous report to compare with.", ""]
    else:
        moved = (
            f"data version moved from {md(changes.previous_data_version)} to {md(changes.data_version)}"
            if changes.data_version_changed
            else "data version unchanged"
        )
        lines += [f"Since {md(changes.previous_period)}: {moved}; {len(changes.new_signals)} new signal(s), "
                  f"{len(changes.lost_signals)} lost, {len(changes.verdict_changes)} verdict change(s).", ""]  # fmt: skip
        for entry in changes.new_signals[:15]:
            name = f"claim group {entry['name']}" if entry["level"] == "claim_group" else entry["name"]
            lines.append(f"- new signal: **{md(name)}** ({md(', '.join(entry['rules']))}; EB05 {fmt(entry.get('eb05'))})")
        for change in changes.verdict_changes:
            lines.append(f"- verdict: {md(change['claim_id'])} {md(change['before'])} → {md(change['after'])}")
        lines.append("")
    lines += ["| Claim | Verdict | n | ROR (95% CI) | IC025 | EB05 |", "|---|---|---|---|---|---|"]
    for _, claim in ctx.claims.iterrows():
        lines.append(
            f"| {md(claim['claim_id'])} | {md(claim['verdict'])} | {md(claim.get('n'))} | "
            f"{md(interval(claim.get('ror'), claim.get('ror_lower'), claim.get('ror_upper')))} | "
            f"{md(claim.get('ic025'))} | {md(claim.get('eb05'))} |"
        )
    if len(ctx.uncovered):
        lines += ["", "Strongest signals no claim covers: " + ", ".join(
            f"{md(r['pt'])} (EB05 {fmt(r['eb05'])})" for _, r in ctx.uncovered.head(5).iterrows()
        ) + "."]  # fmt: skip
    lines += ["", f"Full report with evidence, charts and methods: {md(report_name)} (same folder).", "", md(DISCLAIMER), ""]
    return "\n".join(lines)
