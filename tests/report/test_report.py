"""The evidence report's contents, on the fixture world's runs (tests/data/report/fixtures.py)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from claims.assess import VERDICTS
from reports.render import MISSING, fmt, interval, md

LEAKS = re.compile(r"\b(nan|NaN|None|inf|Infinity|null|NaT|undefined)\b")


class _Page(HTMLParser):
    """Visible text, the claims table cells and every element id of a report."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.rows: dict[str, dict[str, str]] = {}
        self._skip = 0
        self._row: str | None = None
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if values.get("id"):
            self.ids.add(str(values["id"]))
        if tag in ("style", "title") and not self._row:
            self._skip += 1
        if tag == "tr" and values.get("data-claim"):
            self._row = str(values["data-claim"])
            self.rows[self._row] = {}
        if tag == "td" and self._row and values.get("data-field"):
            self._field = str(values["data-field"])
            self.rows[self._row][self._field] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title") and self._skip:
            self._skip -= 1
        if tag == "td":
            self._field = None
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._row and self._field:
            self.rows[self._row][self._field] += data


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(Path(path).read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def current(world_runs: dict[str, Any]) -> dict[str, Any]:
    return world_runs["current"]


@pytest.fixture(scope="module")
def page(current: dict[str, Any]) -> _Page:
    return parse(Path(current["report"]["report_html"]))


@pytest.fixture(scope="module")
def claims_table(current: dict[str, Any]) -> pd.DataFrame:
    return pd.read_parquet(Path(current["claims"]["claims_dir"]) / "claims.parquet")


def test_every_claim_is_in_the_table_summary_and_details(world: Any, page: _Page, claims_table: pd.DataFrame) -> None:
    from claims.catalog import load_claims

    ids = [c.id for c in load_claims(world.CLAIMS_FILE).claims]
    assert list(claims_table["claim_id"]) == ids
    assert set(page.rows) == set(ids)
    for claim_id in ids:
        assert f"claim-{claim_id}" in page.ids and f"claim-row-{claim_id}" in page.ids
    assert set(claims_table["verdict"]) == set(VERDICTS)


def test_numbers_in_the_claims_table_equal_the_results_table(page: _Page, claims_table: pd.DataFrame) -> None:
    for _, row in claims_table.iterrows():
        cells = page.rows[row["claim_id"]]
        assert cells["verdict"].startswith(row["verdict"])
        assert cells["n"] == fmt(row["n"]) and cells["n_new"] == fmt(row["n_new"])
        for field, (point, lower, upper) in {
            "ror": ("ror", "ror_lower", "ror_upper"), "prr": ("prr", "prr_lower", "prr_upper"),
            "ic": ("ic", "ic025", "ic975"), "ebgm": ("ebgm", "eb05", "eb95"),
        }.items():  # fmt: skip
            assert cells[field] == interval(row[point], row[lower], row[upper]).replace(" (", "("), (row["claim_id"], field)
        assert cells["first_signal_quarter"] == fmt(row["first_signal_quarter"])
    strong = page.rows["strong"]
    assert (strong["n"], strong["ror"]) == ("20", "11.62(6.50–20.79)")


def test_no_missing_or_infinite_value_reaches_the_reader(world_runs: dict[str, Any]) -> None:
    for name in ("previous", "current", "faers"):
        report = world_runs[name]["report"]
        text = " ".join(parse(Path(report["report_html"])).text)
        assert not LEAKS.findall(text), (name, LEAKS.findall(text)[:5])
        summary = Path(report["summary_md"]).read_text(encoding="utf-8")
        assert not LEAKS.findall(summary), (name, LEAKS.findall(summary)[:5])


def test_data_from_reports_and_claims_is_escaped(world: Any, current: dict[str, Any], page: _Page) -> None:
    html = Path(current["report"]["report_html"]).read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert world.SCRIPT_PT in " ".join(page.text)  # shown as text to the reader
    assert "<b>occurs</b>" not in html and "Headache &lt;b&gt;occurs&lt;/b&gt; &amp; &quot;persists&quot;" in html
    assert "receivedate &lt;is&gt; not a date" in html and "a &lt;warning&gt; &amp; more" in html
    assert set(page.tags) <= {
        "html", "head", "meta", "title", "style", "body", "div", "h1", "h2", "h3", "p", "nav", "ol", "ul", "li", "a",
        "section", "table", "tr", "th", "td", "span", "strong", "em", "br", "blockquote", "svg", "text", "line", "rect",
        "circle", "path", "polyline",
    }  # fmt: skip
    summary = Path(current["report"]["summary_md"]).read_text(encoding="utf-8")
    assert md(world.SCRIPT_PT) in summary and "<script>" not in summary


def test_summary_and_sections_come_in_reading_order(page: _Page, current: dict[str, Any]) -> None:
    html = Path(current["report"]["report_html"]).read_text(encoding="utf-8")
    order = ["synthetic-banner", "summary", "claims", "forest", "details", "subgroups", "beyond", "changes", "quality",
             "methods", "version", "pts"]  # fmt: skip
    positions = [html.index(f'id="{anchor}"') for anchor in order]
    assert positions == sorted(positions)
    assert {"claims-table", "subgroups-table", "musculoskeletal-table", "uncovered-table", "rules-table"} <= page.ids


def test_charts_are_inline_svg(current: dict[str, Any], page: _Page) -> None:
    html = Path(current["report"]["report_html"]).read_text(encoding="utf-8")
    assert html.count('class="chart forest"') == 1
    assert html.count('class="chart trend"') == 7  # one per claim
    assert "ROR, 95% CI (log scale)" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<link" not in html and "<img" not in html and "<script" not in html


def test_changes_list_new_signals_and_verdicts_since_the_previous_week(world: Any, current: dict[str, Any]) -> None:
    changes = json.loads(Path(current["report"]["changes_json"]).read_text(encoding="utf-8"))
    assert changes["previous_period"] == "2024-12-23T0600_2024-12-30T0600"
    assert [s["name"] for s in changes["new_signals"]] == [world.SCRIPT_PT]
    assert changes["lost_signals"] == [] and changes["data_version_changed"] is False
    page = parse(Path(current["report"]["report_html"]))
    assert {"new-signals", "summary-new-signals"} <= page.ids
    assert "no previous report" not in " ".join(page.text).lower()


def test_empty_week_says_no_new_reports_never_no_signal(world_runs: dict[str, Any]) -> None:
    previous = world_runs["previous"]
    assert previous["normalize"]["new_reports"] == 0
    page = parse(Path(previous["report"]["report_html"]))
    text = "".join(page.text)
    assert "No new reports in this window" in text and "not evidence of no signal" in text
    assert not re.search(r"\bno signals?\b(?! *\.)", text.replace("not evidence of no signal", ""), re.IGNORECASE)
    assert "no-previous-report" in page.ids and "No previous report" in text
    summary = Path(previous["report"]["summary_md"]).read_text(encoding="utf-8")
    assert "No new reports in this window" in summary


def test_time_to_onset_dose_and_proportion_evidence_are_shown(world_runs: dict[str, Any]) -> None:
    faers = parse(Path(world_runs["faers"]["report"]["report_html"]))
    text = "".join(faers.text)
    assert "17/20 (85%, 95% CI 64%-95%) began within 90 days" in text
    assert "Weibull shape (95% CI)" in text and "Time to onset (days from start of the drug)" in text
    assert "one-sided Mann-Whitney" in text and "Cumulative dose in the drug's reports" in text
    api = "".join(parse(Path(world_runs["current"]["report"]["report_html"])).text)
    assert "not testable with this source" in api and "no event dates" in api
    assert "4.3% of 94 treated patients" in api and "not the same quantity" in api


def test_report_carries_banner_versions_quality_and_disclaimers(current: dict[str, Any], page: _Page, world: Any) -> None:
    text = "".join(page.text)
    assert "SYNTHETIC DATA" in text
    assert f"data version (openFDA meta.last_updated): {world.DATA_VERSION}" in text
    assert "claims file version test.1" in text
    assert "reports do not establish causation" in text.lower() and "Do not rely on openFDA" in text
    for label in ("Evans (MHRA)", "EMA (ROR025 > 1, N >= 3)", "WHO-UMC (IC025 > 0)", "FDA MGPS (EB05 >= 2)"):
        assert label in text
    assert "Pharmacoepidemiol Drug Saf 2001" in text  # rule sources
    report_dir = Path(current["report"]["report_dir"])
    assert (report_dir / "data_docs" / "index.html").exists()
    assert 'href="data_docs/index.html"' in Path(current["report"]["report_html"]).read_text(encoding="utf-8")
    assert MISSING not in page.rows["strong"].values()


def test_markdown_summary_for_email(current: dict[str, Any]) -> None:
    summary = Path(current["report"]["summary_md"]).read_text(encoding="utf-8")
    assert summary.startswith("# Isotretinoin: claim-by-claim evidence")
    assert "| strong | supported | 20 | 11.62 (6.50–20.79) |" in summary
    assert "new signal: **\\<script\\>alert(1)\\</script\\>**" in summary
    assert "report.html" in summary and "SYNTHETIC DATA" in summary
