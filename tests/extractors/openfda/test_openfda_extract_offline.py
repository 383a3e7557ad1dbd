"""The three extractions over the offline client: raw pages as received, manifests, reuse, counts."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from extractors.openfda.client import OfflineClient, make_client
from extractors.openfda.extract import (
    ExtractionError,
    extract_background_counts,
    extract_history,
    extract_window,
)

# The 100 real reports: 97 received 2014-03-12, one each on 2014-03-06, 2014-02-28 and 2008-07-07.
MARCH_START = datetime(2014, 3, 10, 6, tzinfo=UTC)  # Monday
MARCH_END = datetime(2014, 3, 17, 6, tzinfo=UTC)


def is_ambrisentan(report) -> bool:
    return any(
        "AMBRISENTAN" in (d.get("openfda") or {}).get("generic_name", [])
        or d.get("medicinalproduct") == "LETAIRIS"
        or (d.get("activesubstance") or {}).get("activesubstancename") == "AMBRISENTAN"
        for d in report["patient"]["drug"]
    )


def stored_reports(directory) -> list[dict]:
    manifest = json.loads((directory / "manifest.json").read_text())
    out = []
    for page in manifest["pages"]:
        raw = gzip.decompress((directory / page["file"]).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == page["sha256"]
        results = json.loads(raw)["results"]
        assert len(results) == page["records"]
        out += results
    return out


class CountingOffline(OfflineClient):
    def __init__(self, path):
        super().__init__(path)
        self.calls: list[dict] = []

    def get(self, params):
        self.calls.append(dict(params))
        return super().get(params)


def test_make_client_offline_for_sample(offline_settings):
    assert isinstance(make_client(offline_settings), OfflineClient)


def test_window_stores_exactly_the_drugs_reports_in_the_window(offline_settings, real_reports):
    client = CountingOffline(offline_settings.sample_path)
    directory = extract_window(offline_settings, MARCH_START, MARCH_END, client=client)
    expected = {r["safetyreportid"] for r in real_reports if is_ambrisentan(r) and "20140310" <= r["receivedate"] <= "20140316"}
    stored = stored_reports(directory)
    assert {r["safetyreportid"] for r in stored} == expected and len(stored) == len(expected) > 0
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["total"] == len(expected) and manifest["complete"] is True
    assert manifest["last_updated"] == "2026-01-02"
    assert manifest["receivedate"] == {"first": "20140310", "last": "20140316"}
    assert directory.name == "window=2014-03-10T0600_2014-03-17T0600"
    assert len(client.calls) == 1 and client.calls[0]["limit"] == "1000"
    # stored bytes are the response body exactly
    assert gzip.decompress((directory / "pages/page-00001.json.gz").read_bytes()) == client.get(client.calls[0]).body


def test_window_paging_follows_link_until_total(offline_settings, real_reports, monkeypatch):
    monkeypatch.setattr("extractors.openfda.extract.PAGE_LIMIT", 7)
    client = CountingOffline(offline_settings.sample_path)
    start, end = datetime(2014, 2, 24, 6, tzinfo=UTC), datetime(2014, 3, 31, 6, tzinfo=UTC)
    directory = extract_window(offline_settings, start, end, client=client)
    expected = sorted(r["safetyreportid"] for r in real_reports if is_ambrisentan(r) and "20140224" <= r["receivedate"] <= "20140330")
    stored = [r["safetyreportid"] for r in stored_reports(directory)]
    assert stored == expected  # default order, no duplicates, none lost
    assert len(client.calls) == -(-len(expected) // 7)
    assert all("search_after" in c for c in client.calls[1:])


def test_empty_window_is_zero_pages_total_zero(offline_settings):
    directory = extract_window(offline_settings, datetime(2020, 1, 6, 6, tzinfo=UTC), datetime(2020, 1, 13, 6, tzinfo=UTC))
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["total"] == 0 and manifest["pages"] == [] and manifest["complete"] is True
    assert not list((directory / "pages").iterdir())


def test_completed_window_is_reused_unless_refresh(offline_settings):
    client = CountingOffline(offline_settings.sample_path)
    first = extract_window(offline_settings, MARCH_START, MARCH_END, client=client)
    stamp = json.loads((first / "manifest.json").read_text())["retrieved_at"]
    calls = len(client.calls)
    again = extract_window(offline_settings, MARCH_START, MARCH_END, client=client)
    assert again == first and client.calls[calls:] == []  # data version remembered: no request at all
    assert json.loads((again / "manifest.json").read_text())["retrieved_at"] == stamp
    stale = dataclasses.replace(offline_settings, data_version_ttl_hours=0)
    assert extract_window(stale, MARCH_START, MARCH_END, client=client) == first
    assert client.calls[calls:] == [{"limit": "0"}]  # memo expired: one version probe, still no pages
    extract_window(offline_settings, MARCH_START, MARCH_END, client=client, refresh=True)
    assert client.calls[-1]["limit"] == "1000"


def test_history_is_cached_per_data_version(offline_settings, real_reports):
    client = CountingOffline(offline_settings.sample_path)
    directory = extract_history(offline_settings, datetime(2014, 3, 10, 6, tzinfo=UTC), client=client)
    assert directory.name == "history=2026-01-02"
    assert {r["safetyreportid"] for r in stored_reports(directory)} == {r["safetyreportid"] for r in real_reports if is_ambrisentan(r)}
    assert client.calls[0]["limit"] == "0"
    calls = len(client.calls)
    again = extract_history(offline_settings, datetime(2014, 3, 17, 6, tzinfo=UTC), client=client)
    assert again == directory and len(client.calls) == calls  # version remembered: no request
    stale = dataclasses.replace(offline_settings, data_version_ttl_hours=0)
    assert extract_history(stale, datetime(2014, 3, 24, 6, tzinfo=UTC), client=client) == directory
    assert len(client.calls) == calls + 1 and client.calls[-1] == {"limit": "0"}


def test_background_counts_exact_for_top_and_batched_terms(offline_settings, real_reports, monkeypatch):
    monkeypatch.setattr("extractors.openfda.extract.COUNT_LIMIT", 5)  # force most terms out of the top list
    monkeypatch.setattr("extractors.openfda.extract.TERM_BATCH", 4)
    end = datetime(2014, 3, 10, 6, tzinfo=UTC)
    before = [r for r in real_reports if r["receivedate"] <= "20140309"]
    truth = Counter()
    for r in before:
        truth.update({x["reactionmeddrapt"] for x in r["patient"]["reaction"]})
    terms = sorted(truth)[:25] + ["Not a reported term"]
    path = extract_background_counts(offline_settings, end, terms)
    summary = json.loads(path.read_text())
    assert summary["total_reports"] == len(before)
    assert summary["drug_total"] == sum(is_ambrisentan(r) for r in before)
    assert summary["event_counts"] == {t: truth.get(t, 0) for t in terms}
    assert summary["last_updated"] == "2026-01-02"
    names = [item["file"] for item in summary["responses"]]
    for item in summary["responses"]:
        assert (path.parent / item["file"]).exists()
    # crowded batches were split down to single-term searches, and the counts stayed exact
    assert any("-batch-" in n for n in names) and any("-term-" in n for n in names)
    # cached per (end, last_updated)
    client = CountingOffline(offline_settings.sample_path)
    assert extract_background_counts(offline_settings, end, terms[:3], client=client) == path
    assert client.calls == []  # data version remembered: no request
    stale = dataclasses.replace(offline_settings, data_version_ttl_hours=0)
    assert extract_background_counts(stale, end, terms[:3], client=client) == path
    assert len(client.calls) == 1  # the totals request tells the version; the counts are reused


def test_mismatched_total_raises_naming_the_numbers(offline_settings, monkeypatch):
    from extractors.openfda import extract

    real = OfflineClient(offline_settings.sample_path)

    class DroppingClient:
        def get(self, params):
            response = real.get(params)
            document = json.loads(response.body)
            document["results"] = document["results"][:-1]
            return type(response)(response.status, response.headers, json.dumps(document).encode(), response.url_redacted)

    with pytest.raises(ExtractionError, match=r"fetched \d+ reports for .* but meta.results.total is \d+"):
        extract.extract_window(offline_settings, MARCH_START, MARCH_END, client=DroppingClient())


def test_concurrent_history_extractions_fetch_once(offline_settings):
    import threading

    clients = [CountingOffline(offline_settings.sample_path) for _ in range(3)]
    results = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(extract_history(offline_settings, MARCH_END, client=c)))
        for c in clients
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1
    page_requests = [call for c in clients for call in c.calls if call["limit"] == "1000"]
    assert len(page_requests) == 1  # one fetched, the others waited on the lock and reused it
