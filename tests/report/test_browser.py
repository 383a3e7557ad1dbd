"""The report in a real browser: headless Chromium loads it with no console error and no request beyond
the file itself, draws the SVG charts, and leaves a full-page screenshot for CI (var/artifacts/report.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cdp_browser import find_chromium, visit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_ROOT / "var" / "artifacts"
PAGE_FACTS = """(() => ({
  svgs: document.querySelectorAll('svg.chart').length,
  forest: document.querySelectorAll('svg.forest').length,
  trends: document.querySelectorAll('svg.trend').length,
  histograms: document.querySelectorAll('svg.histogram').length,
  forestWidth: Math.round((document.querySelector('svg.forest') || {getBoundingClientRect: () => ({width: 0})}).getBoundingClientRect().width),
  claims: document.querySelectorAll('#claims-table tr[data-claim]').length,
  scripts: document.scripts.length,
  title: document.title,
  pageWidth: document.documentElement.scrollWidth,
}))()"""

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it in CI)")
    return path


@pytest.mark.timeout(120)
def test_report_loads_offline_without_errors_and_draws_its_charts(chromium: str, world_runs: dict[str, Any]) -> None:
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    visit_ = visit(Path(world_runs["faers"]["report"]["report_html"]), chromium=chromium, screenshot=screenshot,
                   expression=PAGE_FACTS)  # fmt: skip
    assert visit_.loaded
    assert visit_.errors == []
    assert visit_.other_requests == []
    facts = visit_.evaluated
    assert facts["forest"] == 1 and facts["trends"] == 7 and facts["histograms"] == 1
    assert facts["claims"] == 7 and facts["scripts"] == 0
    assert facts["forestWidth"] > 600
    assert facts["pageWidth"] <= 1280 + 1  # readable on a laptop: nothing overflows sideways
    assert screenshot.exists() and screenshot.stat().st_size > 50_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(120)
def test_empty_week_report_also_renders_cleanly(chromium: str, world_runs: dict[str, Any]) -> None:
    visit_ = visit(Path(world_runs["previous"]["report"]["report_html"]), chromium=chromium, expression=PAGE_FACTS)
    assert visit_.loaded and visit_.errors == [] and visit_.other_requests == []
    assert visit_.evaluated["svgs"] >= 8
