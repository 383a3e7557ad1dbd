"""Extraction of raw openFDA responses into the raw stage, resumable and reusable.

Layout (see docs/extractor.md):
    raw/drug=<drug>/window=<start>_<end>/            extract_window
    raw/drug=<drug>/history=<last_updated>/          extract_history
    raw/drug=<drug>/background/end=<end>/last_updated=<v>/   extract_background_counts
each with pages/page-NNNNN.json.gz (the response body exactly as received, gzip with mtime 0) and
manifest.json. Work happens in a sibling `.<name>.inprogress/` directory holding progress.json (the
next-page cursor); a killed task resumes there, and the directory becomes the partition in one
rename when every page is in.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import logging
import math
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from extractors.openfda.client import ApiResponse, DrugEventClient, LiveClient, make_client
from extractors.openfda.query import (
    REACTION_FIELD,
    drug_search,
    load_drug_config,
    reactions_any,
    received_before,
    window_days,
    window_search,
)
from pv.settings import Settings
from pv.storage import atomic_write_bytes, atomic_write_json, partition_dir, promote_dir, window_key

log = logging.getLogger(__name__)

PAGE_LIMIT = 1000
COUNT_LIMIT = 1000
TERM_BATCH = 40
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
FORMAT_VERSION = 1


class ExtractionError(RuntimeError):
    """The raw data fetched does not match what openFDA said it would be."""


class DataVersionChanged(ExtractionError):
    """meta.last_updated changed between pages: the pages belong to two different data versions."""


# ---------------------------------------------------------------------------------------------
# Small helpers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0), so an identical response gives an identical file."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _work_dir(final: Path) -> Path:
    return final.with_name(f".{final.name}.inprogress")


@contextmanager
def partition_lock(final: Path) -> Iterator[None]:
    """One extraction per partition at a time, across processes.

    Concurrent backfill runs share the history partition, and Airflow may start a retry while a
    zombie attempt still runs; both would otherwise write into the same in-progress directory.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.with_name(f".{final.name}.lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _limiter_of(client: DrugEventClient):
    return client.limiter if isinstance(client, LiveClient) else None


def _meta(response: ApiResponse, what: str) -> dict[str, Any]:
    document = response.json()
    meta = document.get("meta")
    if not isinstance(meta, dict) or "last_updated" not in meta:
        raise ExtractionError(f"{what}: response has no meta.last_updated [{response.url_redacted}]")
    return meta


def probe(client: DrugEventClient, search: str | None = None) -> tuple[str | None, int]:
    """(meta.last_updated, meta.results.total) from one limit=0 request; 404 -> (None, 0)."""
    params = {"limit": "0"}
    if search:
        params = {"search": search, "limit": "0"}
    response = client.get(params)
    if response.status == 404:
        return None, 0
    meta = _meta(response, "limit=0 probe")
    return str(meta["last_updated"]), int(meta["results"]["total"])


def _version_memo_path(settings: Settings) -> Path:
    origin = settings.openfda_base_url if settings.is_live else str(settings.sample_path)
    key = hashlib.sha256(f"{settings.source}|{origin}".encode()).hexdigest()[:16]
    return Path(settings.data_dir) / "openfda" / f"data_version-{key}.json"


def known_data_version(settings: Settings) -> str | None:
    """The data version remembered within `data_version_ttl_hours`, or None (costs no request)."""
    ttl_seconds = settings.data_version_ttl_hours * 3600
    if settings.refresh or ttl_seconds <= 0:
        return None
    memo = _read_json(_version_memo_path(settings))
    if memo and time.time() - float(memo.get("checked_at", 0)) < ttl_seconds:
        return str(memo["last_updated"])
    return None


def remember_data_version(settings: Settings, version: str | None) -> None:
    if version:
        atomic_write_json(
            _version_memo_path(settings), {"last_updated": version, "checked_at": time.time(), "checked_at_utc": _now()}
        )


def current_data_version(settings: Settings, client: DrugEventClient) -> str:
    """openFDA's meta.last_updated, asked at most once per `data_version_ttl_hours` across all runs.

    Every reuse decision (window, history, background counts) hinges on the data version; asking for it
    on each reuse would make a backfill over fetched weeks send requests anyway.
    """
    version = known_data_version(settings)
    if version is None:
        version, _ = probe(client)
        if version is None:
            raise ExtractionError("openFDA returned no meta.last_updated for the whole dataset")
        remember_data_version(settings, version)
    return version


def forget_data_version(settings: Settings) -> None:
    """Drop the memo after a page showed another version, so the task's retry asks afresh."""
    _version_memo_path(settings).unlink(missing_ok=True)


@dataclass(frozen=True)
class FetchResult:
    directory: Path
    manifest: dict[str, Any]
    reused: bool


# ---------------------------------------------------------------------------------------------
# Paged search into a partition


def _page_name(number: int) -> str:
    return f"page-{number:05d}.json.gz"


def fetch_search(
    client: DrugEventClient,
    search: str,
    final: Path,
    *,
    describe: dict[str, Any],
    expected_last_updated: str | None = None,
) -> FetchResult:
    """Page through every report matching `search` (limit=1000, Link/search_after) into `final`.

    Resumes from `.inprogress/progress.json` when the query matches; restarts when the data version
    changed underneath. Raises ExtractionError when the reports stored differ from meta.results.total.
    """
    work = _work_dir(final)
    progress = _read_json(work / PROGRESS)
    if progress is not None and (progress.get("query") != search or progress.get("format") != FORMAT_VERSION):
        progress = None
    if progress is not None and expected_last_updated and progress.get("last_updated") not in (None, expected_last_updated):
        progress = None
    if progress is None:
        shutil.rmtree(work, ignore_errors=True)
        (work / "pages").mkdir(parents=True)
        progress = {
            "format": FORMAT_VERSION,
            "query": search,
            "started_at": _now(),
            "last_updated": None,
            "total": None,
            "pages": [],
            "next_params": {"search": search, "limit": str(PAGE_LIMIT)},
            "done": False,
        }
    else:
        log.info("resuming %s after page %d", final, len(progress["pages"]))

    first_url: str | None = progress.get("first_url")
    ids_by_page: dict[str, list[str]] = {}
    while not progress["done"]:
        params = progress["next_params"]
        response = client.get(params)
        number = len(progress["pages"]) + 1
        fetched = sum(p["records"] for p in progress["pages"])
        if response.status == 404:
            if number == 1:
                # An empty window still belongs to a data version: record it, or a rerun could never
                # tell that nothing changed and would fetch the window again.
                version = expected_last_updated or probe(client)[0]
                progress.update(total=0, done=True, first_url=response.url_redacted, last_updated=version)
                first_url = response.url_redacted
                break
            if fetched == progress["total"]:  # a full last page still carries a Link; its target is empty
                progress["done"] = True
                break
            raise ExtractionError(
                f"page {number} of {search!r} answered 404 after {fetched} of {progress['total']} reports "
                f"[{response.url_redacted}]"
            )
        document = response.json()
        meta = document["meta"]
        last_updated = str(meta["last_updated"])
        if progress["last_updated"] is None:
            progress["last_updated"] = last_updated
        elif last_updated != progress["last_updated"]:
            shutil.rmtree(work, ignore_errors=True)
            raise DataVersionChanged(
                f"meta.last_updated changed from {progress['last_updated']} to {last_updated} at page {number} "
                f"of {search!r}; the partial extraction was discarded, rerun to fetch the new version"
            )
        if expected_last_updated and last_updated != expected_last_updated:
            shutil.rmtree(work, ignore_errors=True)
            raise DataVersionChanged(
                f"probe said meta.last_updated {expected_last_updated} but page {number} says {last_updated}"
            )
        total = int(meta["results"]["total"])
        if progress["total"] is None:
            progress["total"] = total
            limiter = _limiter_of(client)
            if limiter is not None:
                limiter.ensure_budget(max(0, math.ceil(total / PAGE_LIMIT) - 1), f"extracting {total} reports")
        elif total != progress["total"]:
            raise ExtractionError(
                f"meta.results.total changed from {progress['total']} to {total} at page {number} of {search!r}"
            )
        records = len(document["results"])
        ids_by_page[_page_name(number)] = _report_ids(document["results"], f"page {number}")
        atomic_write_bytes(work / "pages" / _page_name(number), gzip_bytes(response.body))
        if first_url is None:
            first_url = response.url_redacted
            progress["first_url"] = first_url
        progress["pages"].append(
            {
                "file": f"pages/{_page_name(number)}",
                "records": records,
                "sha256": hashlib.sha256(response.body).hexdigest(),
                "bytes": len(response.body),
                "url": response.url_redacted,
                "retrieved_at": _now(),
            }
        )
        fetched += records
        next_params = response.next_params()
        progress["next_params"] = next_params
        progress["done"] = next_params is None or fetched >= total
        atomic_write_json(work / PROGRESS, progress)

    fetched = sum(p["records"] for p in progress["pages"])
    if fetched != progress["total"]:
        raise ExtractionError(
            f"fetched {fetched} reports for {search!r} but meta.results.total is {progress['total']}"
        )
    ids = _check_unique_ids(work, progress["pages"], ids_by_page)
    manifest = {
        **describe,
        "format": FORMAT_VERSION,
        "query": search,
        "url": first_url,
        "retrieved_at": _now(),
        "started_at": progress["started_at"],
        "last_updated": progress["last_updated"],
        "total": progress["total"],
        "records": fetched,
        "unique_safetyreportids": ids,
        "pages": progress["pages"],
        "complete": True,
    }
    atomic_write_json(work / MANIFEST, manifest)
    (work / PROGRESS).unlink(missing_ok=True)
    promote_dir(work, final)
    return FetchResult(final, manifest, reused=False)


def _report_ids(results: list[dict[str, Any]], where: str) -> list[str]:
    ids = []
    for position, report in enumerate(results):
        rid = report.get("safetyreportid") if isinstance(report, dict) else None
        if rid is None:
            raise ExtractionError(f"{where} results[{position}]: report has no safetyreportid")
        ids.append(str(rid))
    return ids


def _check_unique_ids(work: Path, pages: list[dict[str, Any]], known: dict[str, list[str]]) -> int:
    """No report twice across pages (overlapping cursors would double-count); pages of an earlier
    attempt are read back from disk."""
    seen: dict[str, str] = {}
    for page in pages:
        name = Path(page["file"]).name
        ids = known.get(name)
        if ids is None:
            with gzip.open(work / page["file"], "rb") as handle:
                ids = _report_ids(json.load(handle)["results"], page["file"])
        for rid in ids:
            if rid in seen:
                raise ExtractionError(
                    f"safetyreportid {rid} appears in both {seen[rid]} and {page['file']}; paging overlapped"
                )
            seen[rid] = page["file"]
    return len(seen)


def completed_manifest(final: Path, search: str | None = None) -> dict[str, Any] | None:
    manifest = _read_json(final / MANIFEST)
    if not manifest or not manifest.get("complete"):
        return None
    if search is not None and manifest.get("query") != search:
        return None
    return manifest


# ---------------------------------------------------------------------------------------------
# The three extractions the DAG calls


def extract_window(
    settings: Settings,
    start: datetime,
    end: datetime,
    *,
    refresh: bool = False,
    client: DrugEventClient | None = None,
) -> Path:
    """Every report of the watched drug received in [start, end) (days start.date()..end.date()-1).

    A completed partition for the same query is reused unless `refresh` (or settings.refresh) is set or
    openFDA's meta.last_updated moved on (checked with one limit=0 request).
    """
    client = client or make_client(settings)
    drug = load_drug_config(settings)
    search = window_search(drug, start, end)
    final = partition_dir(settings.data_dir, "raw", settings.drug, start, end)
    first, last = window_days(start, end)
    describe = {
        "kind": "window",
        "drug": settings.drug,
        "source": settings.source,
        "window": {"start": start.isoformat(), "end": end.isoformat(), "key": window_key(start, end)},
        "receivedate": {"first": f"{first:%Y%m%d}", "last": f"{last:%Y%m%d}"},
    }
    with partition_lock(final):
        if not (refresh or settings.refresh):
            manifest = completed_manifest(final, search)
            if manifest is not None and manifest.get("last_updated") == current_data_version(settings, client):
                log.info("reusing %s (last_updated %s)", final, manifest["last_updated"])
                return final
        # A first fetch learns the version from its own pages: no extra request.
        _fetch_in_version(settings, client, search, final, describe, known_data_version(settings))
    return final


def _fetch_in_version(
    settings: Settings, client: DrugEventClient, search: str, final: Path, describe: dict[str, Any], version: str | None
) -> FetchResult:
    try:
        result = fetch_search(client, search, final, describe=describe, expected_last_updated=version)
    except DataVersionChanged:
        forget_data_version(settings)
        raise
    remember_data_version(settings, _read_json(final / "manifest.json").get("last_updated"))
    return result


def history_dir(settings: Settings, last_updated: str) -> Path:
    return Path(settings.data_dir) / "raw" / f"drug={settings.drug}" / f"history={last_updated}"


def extract_history(settings: Settings, end: datetime, *, client: DrugEventClient | None = None) -> Path:
    """All of the drug's reports in the current data version, fetched once per meta.last_updated.

    openFDA refreshes quarterly, so weekly and backfill runs share one download; callers keep the
    reports with receivedate < end (the partition holds every receivedate).
    """
    client = client or make_client(settings)
    search = drug_search(load_drug_config(settings))
    last_updated = current_data_version(settings, client)
    final = history_dir(settings, last_updated)
    describe = {
        "kind": "history",
        "drug": settings.drug,
        "source": settings.source,
        "fetched_for_end": end.isoformat(),
        "note": "every receivedate of this data version; each run keeps the reports received before its "
        "interval end (receivedate <= end.date() - 1 day)",
    }
    with partition_lock(final):
        if not settings.refresh and completed_manifest(final, search) is not None:
            log.info("reusing history %s", final)
            return final
        _fetch_in_version(settings, client, search, final, describe, last_updated)
    return final


def background_dir(settings: Settings, end: datetime, last_updated: str) -> Path:
    return (
        Path(settings.data_dir) / "raw" / f"drug={settings.drug}" / "background"
        / f"end={end:%Y-%m-%dT%H%M}" / f"last_updated={last_updated}"
    )


def _batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class _RecordingCaller:
    """Sends count-phase requests, keeps every response as received, checks one data version."""

    def __init__(self, client: DrugEventClient) -> None:
        self.client = client
        self.responses: list[tuple[str, ApiResponse]] = []
        self.last_updated: str | None = None

    def __call__(self, name: str, params: dict[str, str]) -> ApiResponse:
        response = self.client.get(params)
        self.responses.append((name, response))
        if response.status == 200:
            version = str(_meta(response, name)["last_updated"])
            if self.last_updated is None:
                self.last_updated = version
            elif version != self.last_updated:
                raise DataVersionChanged(
                    f"meta.last_updated changed from {self.last_updated} to {version} during background counts ({name})"
                )
        return response

    def total(self, name: str, search: str) -> int:
        response = self(name, {"search": search, "limit": "0"})
        return 0 if response.status == 404 else int(response.json()["meta"]["results"]["total"])


def extract_background_counts(
    settings: Settings,
    end: datetime,
    terms: Iterable[str],
    *,
    client: DrugEventClient | None = None,
) -> Path:
    """counts.json with total_reports, drug_total and event_counts for reports received before end.

    event_counts come from one count request (top 1000 reaction terms) plus, for requested terms not
    in it, count requests restricted to reports carrying any term of a batch: within that restriction
    a batch term's own bucket counts every report that has it, so it is exact. Terms still missing
    (crowded out of the top 1000 by co-reported terms) are re-batched in halves; a single term falls
    back to a limit=0 search. Raw responses are kept gzip-compressed in counts/. Terms match
    reactionmeddrapt.exact, i.e. case-sensitively, as given.
    """
    client = client or make_client(settings)
    wanted = sorted({str(t) for t in terms if str(t).strip()})
    before = received_before(end)
    known = known_data_version(settings)
    if known is not None:
        cached = _read_json(background_dir(settings, end, known) / "counts.json")
        if cached and cached.get("complete") and set(wanted) <= set(cached["event_counts"]):
            log.info("reusing background counts for %s (data version %s)", end, known)
            return background_dir(settings, end, known) / "counts.json"
    call = _RecordingCaller(client)
    total_reports = call.total("total_reports", before)
    if call.last_updated is None:  # nothing received before end: the version comes from the whole set
        call("version_probe", {"limit": "0"})
    if call.last_updated is None:
        raise ExtractionError("openFDA returned no meta.last_updated for the whole dataset")
    remember_data_version(settings, call.last_updated)
    final = background_dir(settings, end, call.last_updated)
    with partition_lock(final):
        cached = _read_json(final / "counts.json")
        if cached and cached.get("complete") and set(wanted) <= set(cached["event_counts"]) and not settings.refresh:
            log.info("reusing background counts %s", final)
            return final / "counts.json"
        drug_before = f"{drug_search(load_drug_config(settings))} AND {before}"
        drug_total = call.total("drug_total", drug_before)
        top, counts = _event_counts(call, before, wanted)
        summary = {
            "format": FORMAT_VERSION,
            "drug": settings.drug,
            "source": settings.source,
            "end": end.isoformat(),
            "search_total_reports": before,
            "search_drug_total": drug_before,
            "last_updated": call.last_updated,
            "retrieved_at": _now(),
            "total_reports": total_reports,
            "drug_total": drug_total,
            "event_counts": counts,
            "top_terms_returned": len(top),
            # Every spelling in the top 1000, requested or not: a PT's background sums its spellings
            # (".exact" is case- and whitespace-sensitive), including ones the drug never used.
            "top_terms": top,
            "complete": True,
        }
        _write_counts(final, call.responses, summary)
    return final / "counts.json"


def _event_counts(call: _RecordingCaller, before: str, wanted: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    counts: dict[str, int] = {}
    top: dict[str, int] = {}
    response = call("top_terms", {"search": before, "count": REACTION_FIELD, "limit": str(COUNT_LIMIT)})
    if response.status == 200:
        top = {str(r["term"]): int(r["count"]) for r in response.json()["results"]}
    counts.update({t: top[t] for t in wanted if t in top})
    queue = _batches([t for t in wanted if t not in counts], TERM_BATCH)
    number = 0
    while queue:
        batch = queue.pop(0)
        number += 1
        search = f"{before} AND {reactions_any(batch)}"
        if len(batch) == 1:
            counts[batch[0]] = call.total(f"term-{number:04d}", search)
            continue
        response = call(f"batch-{number:04d}", {"search": search, "count": REACTION_FIELD, "limit": str(COUNT_LIMIT)})
        if response.status == 404:
            counts.update(dict.fromkeys(batch, 0))
            continue
        results = response.json()["results"]
        buckets = {str(r["term"]): int(r["count"]) for r in results}
        crowded = len(results) >= COUNT_LIMIT
        missing = []
        for term in batch:
            if term in buckets:
                counts[term] = buckets[term]
            elif crowded:  # cut off by more frequent co-reported terms: ask again in smaller batches
                missing.append(term)
            else:  # every co-reported term fitted, so a batch term absent from the buckets has no reports
                counts[term] = 0
        if missing:
            queue[0:0] = _batches(missing, max(1, math.ceil(len(missing) / 2)))
    return top, {t: counts[t] for t in wanted}


def _write_counts(final: Path, responses: list[tuple[str, ApiResponse]], summary: dict[str, Any]) -> None:
    work = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    (work / "counts").mkdir(parents=True)
    files = []
    for position, (name, response) in enumerate(responses, start=1):
        filename = f"counts/{position:04d}-{name}.json.gz"
        atomic_write_bytes(work / filename, gzip_bytes(response.body))
        files.append({
            "file": filename,
            "status": response.status,
            "url": response.url_redacted,
            "sha256": hashlib.sha256(response.body).hexdigest(),
        })
    atomic_write_json(work / "counts.json", {**summary, "responses": files})
    promote_dir(work, final)
