"""The live path over real sockets: paging, faults, resume after a kill, key hygiene, limiter, quota."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from extractors.openfda.client import (
    LiveClient,
    OfflineClient,
    OpenFDABadRequest,
    OpenFDAUnavailable,
    RetryPolicy,
    make_client,
)
from extractors.openfda.engine import Engine
from extractors.openfda.extract import (
    extract_background_counts,
    extract_history,
    extract_window,
    fetch_search,
)
from extractors.openfda.limiter import DailyQuotaExceeded, SharedRateLimiter
from extractors.openfda.synthetic import synthetic_reports
from extractors.openfda.testserver import FaultPlan
from pv.settings import DEFAULT_DRUGS_FILE, PROJECT_ROOT, Settings
from pv.storage import partition_dir

WEEK_START = datetime(2024, 1, 1, 6, tzinfo=UTC)
WEEK_END = datetime(2024, 1, 8, 6, tzinfo=UTC)
WEEK_IDS = {str(50_000_000 + i) for i in range(4_500)}
SECRET = "pvtest-KEY-9f8e7d6c5b4a3210"


def live_settings(tmp_path: Path, server, **overrides) -> Settings:
    values = {
        "data_dir": tmp_path / "var",
        "source": "openfda",
        "openfda_base_url": server.url,
        "drugs_file": DEFAULT_DRUGS_FILE,
        "rate_limit_per_minute": 600_000,
        **overrides,
    }
    return Settings(**values)


def pages_of(directory: Path) -> list[bytes]:
    manifest = json.loads((directory / "manifest.json").read_text())
    return [gzip.decompress((directory / p["file"]).read_bytes()) for p in manifest["pages"]]


def records_of(directory: Path) -> dict[str, bytes]:
    """safetyreportid -> the record's bytes as served (re-encoded canonically for comparison)."""
    out: dict[str, bytes] = {}
    for page in pages_of(directory):
        for record in json.loads(page)["results"]:
            assert record["safetyreportid"] not in out
            out[record["safetyreportid"]] = json.dumps(record, sort_keys=True).encode()
    return out


@pytest.fixture
def baseline(tmp_path_factory, week_engine, serve, fast_retry):
    """The fault-free extraction of the synthetic week, to compare faulty runs against."""
    server = serve(week_engine)
    settings = live_settings(tmp_path_factory.mktemp("baseline"), server)
    directory = extract_window(settings, WEEK_START, WEEK_END, client=LiveClient(server.url, retry=fast_retry))
    return directory


def test_make_client_live_for_openfda(tmp_path, week_engine, serve):
    server = serve(week_engine)
    client = make_client(live_settings(tmp_path, server))
    assert isinstance(client, LiveClient) and client.base_url == server.url
    assert client.limiter is not None and client.limiter.daily_quota == 1_000


@pytest.mark.slow
def test_window_of_30000_reports_is_fetched_completely_via_search_after(tmp_path, serve):
    engine = Engine(synthetic_reports(30_000, date(2024, 1, 1), n_background=3_000, seed=1), "2026-01-02")
    server = serve(engine)
    settings = live_settings(tmp_path, server)
    directory = extract_window(settings, WEEK_START, WEEK_END)  # through make_client, as the DAG does
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["total"] == manifest["records"] == manifest["unique_safetyreportids"] == 30_000
    assert [p["records"] for p in manifest["pages"]] == [1000] * 30
    assert set(records_of(directory)) == {str(50_000_000 + i) for i in range(30_000)}
    assert server.request_count == 30  # the minimum: ceil(30000 / 1000), no probe, no skip
    assert "skip" not in server.requests[0].params
    assert all(r.params["search_after"].startswith("0=") for r in server.requests[1:])
    assert manifest["url"].startswith(server.url + "/drug/event.json?search=")


FAULTS = {
    "429 burst with Retry-After": FaultPlan(pattern=["429", "429", "429", "ok"], retry_after=0),
    "500": FaultPlan(pattern=["500", "ok"]),
    "503 with Retry-After": FaultPlan(pattern=["503", "ok"], retry_after=0),
    "connection reset": FaultPlan(pattern=["reset", "ok"]),
    "timeout": FaultPlan(pattern=["slow", "ok"], slow_seconds=0.6),
    "truncated body": FaultPlan(pattern=["truncate", "ok"]),
    "invalid JSON": FaultPlan(pattern=["badjson", "ok"]),
    "mix": FaultPlan(mix_rate=0.45, seed=1, slow_seconds=0.6),  # 6 kinds in 14 requests
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_faults_leave_exactly_the_fault_free_records(name, tmp_path, week_engine, serve, baseline):
    plan = FAULTS[name]
    server = serve(week_engine, plan)
    client = LiveClient(server.url, retry=RetryPolicy(max_attempts=10, base_delay=0.005, max_delay=0.05, timeout=0.3))
    directory = extract_window(live_settings(tmp_path, server), WEEK_START, WEEK_END, client=client)
    assert client.retries > 0 and server.request_count == 5 + client.retries
    injected = set(server.statuses) - {"200"}
    assert len(injected) >= (5 if name == "mix" else 1), server.statuses
    assert pages_of(directory) == pages_of(baseline)
    got = records_of(directory)
    assert set(got) == WEEK_IDS
    assert got == records_of(baseline)


def test_retry_after_is_honoured(tmp_path, week_engine, serve):
    server = serve(week_engine, FaultPlan(pattern=["429", "ok"], retry_after=2))
    delays: list[float] = []
    client = LiveClient(server.url, retry=RetryPolicy(base_delay=0.001, max_delay=0.01), sleep=delays.append)
    response = client.get({"search": "receivedate:20240101", "limit": "1"})
    assert response.status == 200 and delays and min(delays) >= 2.0


def test_bad_request_fails_at_once_with_openfdas_message(week_engine, serve, fast_retry):
    server = serve(week_engine)
    client = LiveClient(server.url, retry=fast_retry)
    with pytest.raises(OpenFDABadRequest, match="Limit cannot exceed 1000 results for search requests") as info:
        client.get({"search": "receivedate:20240101", "limit": "5000"})
    assert server.request_count == 1
    assert info.value.api_message.startswith("Limit cannot exceed 1000")


def test_persistent_server_errors_give_up_naming_the_cause(week_engine, serve):
    server = serve(week_engine, FaultPlan(pattern=["500"]))
    client = LiveClient(server.url, retry=RetryPolicy(max_attempts=3, base_delay=0.001))
    with pytest.raises(OpenFDAUnavailable, match="failed after 3 attempts, last: HTTP 500: Check your request"):
        client.get({"limit": "1"})
    assert server.request_count == 3


def test_not_found_window_is_empty_not_an_error(tmp_path, week_engine, serve, fast_retry):
    server = serve(week_engine)
    settings = live_settings(tmp_path, server)
    directory = extract_window(settings, datetime(2019, 1, 7, 6, tzinfo=UTC), datetime(2019, 1, 14, 6, tzinfo=UTC),
                               client=LiveClient(server.url, retry=fast_retry))
    manifest = json.loads((directory / "manifest.json").read_text())
    # The 404, then one limit=0 request to record the data version the empty window belongs to.
    assert manifest["total"] == 0 and manifest["pages"] == [] and server.request_count == 2
    assert manifest["last_updated"] == json.loads(week_engine.handle({"limit": "0"}).body)["meta"]["last_updated"]
    # A rerun reuses the empty window without asking: the data version is remembered.
    extract_window(settings, datetime(2019, 1, 7, 6, tzinfo=UTC), datetime(2019, 1, 14, 6, tzinfo=UTC),
                   client=LiveClient(server.url, retry=fast_retry))
    assert server.request_count == 2


def test_live_and_offline_answer_the_same_bytes(real_bulk, serve, fast_retry):
    server = serve(Engine.from_file(real_bulk))
    live, offline = LiveClient(server.url, retry=fast_retry), OfflineClient(real_bulk)
    for params in (
        {"search": 'patient.drug.openfda.generic_name.exact:"AMBRISENTAN"', "limit": "25"},
        {"count": "patient.reaction.reactionmeddrapt.exact", "limit": "10"},
        {"search": "receivedate:19990101"},
    ):
        a, b = live.get(params), offline.get(params)
        assert (a.status, a.body) == (b.status, b.body)
        assert (a.header("Link") is None) == (b.header("Link") is None)
        if a.header("Link"):
            assert a.next_params() == b.next_params()


def test_the_100_real_reports_lose_no_report_reaction_or_drug(tmp_path, real_bulk, real_reports, serve, fast_retry):
    server = serve(Engine.from_file(real_bulk))
    result = fetch_search(LiveClient(server.url, retry=fast_retry), "receivedate:[19000101 TO 20991231]",
                          tmp_path / "all", describe={"kind": "test"})
    stored = [r for page in pages_of(result.directory) for r in json.loads(page)["results"]]
    by_id = {r["safetyreportid"]: r for r in real_reports}
    assert len(stored) == len(by_id) == 100
    assert sum(len(r["patient"]["reaction"]) for r in stored) == 247
    assert sum(len(r["patient"]["drug"]) for r in stored) == 265
    for record in stored:
        assert record == by_id[record["safetyreportid"]]


# ---------------------------------------------------------------------------------------------
# Resume after a kill

_RUN_WINDOW = """
import json, sys
from datetime import datetime
from pathlib import Path
from extractors.openfda import extract
from extractors.openfda.client import LiveClient, RetryPolicy
from pv.settings import Settings
args = json.loads(sys.argv[1])
extract.PAGE_LIMIT = args.get("page_limit", extract.PAGE_LIMIT)
settings = Settings(data_dir=Path(args["data_dir"]), source="openfda", openfda_base_url=args["url"],
                    rate_limit_per_minute=args.get("rate", 600000))
client = extract.make_client(settings) if args.get("make_client") else LiveClient(args["url"], retry=RetryPolicy(timeout=60))
path = extract.extract_window(settings, datetime.fromisoformat(args["start"]), datetime.fromisoformat(args["end"]),
                              client=client)
print(path)
"""


def spawn_extraction(**args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-c", _RUN_WINDOW, json.dumps(args)], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_run_resumes_at_the_next_page(tmp_path, week_engine, serve, baseline, fast_retry):
    k = 2
    server = serve(week_engine, FaultPlan(pattern=["ok"] * k + ["hang"], only_first=k + 1))
    data_dir = tmp_path / "var"
    proc = spawn_extraction(url=server.url, data_dir=str(data_dir), start=WEEK_START.isoformat(), end=WEEK_END.isoformat())
    try:
        assert server.wait_for_requests(k + 1, timeout=30), proc.stderr.read() if proc.poll() is not None else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    settings = live_settings(tmp_path, server)
    final = partition_dir(data_dir, "raw", "isotretinoin", WEEK_START, WEEK_END)
    work = final.with_name(f".{final.name}.inprogress")
    progress = json.loads((work / "progress.json").read_text())
    assert [p["file"] for p in progress["pages"]] == ["pages/page-00001.json.gz", "pages/page-00002.json.gz"]
    stored_before = {p: (work / p).stat().st_ino for p in ("pages/page-00001.json.gz", "pages/page-00002.json.gz")}
    assert not final.exists()

    seen_before = server.request_count
    directory = extract_window(settings, WEEK_START, WEEK_END, client=LiveClient(server.url, retry=fast_retry))
    resumed = server.requests[seen_before:]
    assert resumed[0].params == progress["next_params"]  # page k+1, straight from the stored cursor
    assert len(resumed) == 5 - k
    assert pages_of(directory) == pages_of(baseline)
    assert {p: (directory / p).stat().st_ino for p in stored_before} == stored_before  # pages 1..k kept
    assert not work.exists()


def test_changed_data_version_discards_partial_progress(tmp_path, week_engine, serve, fast_retry):
    server = serve(week_engine, FaultPlan(pattern=["ok", "500"], only_first=2))
    settings = live_settings(tmp_path, server)
    with pytest.raises(OpenFDAUnavailable):
        extract_window(settings, WEEK_START, WEEK_END, client=LiveClient(server.url, retry=RetryPolicy(max_attempts=1)))
    week_engine_v2 = Engine(week_engine.reports, "2026-04-01")
    server2 = serve(week_engine_v2)
    from extractors.openfda.extract import DataVersionChanged

    with pytest.raises(DataVersionChanged, match="changed from 2026-01-02 to 2026-04-01 at page 2"):
        extract_window(live_settings(tmp_path, server2), WEEK_START, WEEK_END, client=LiveClient(server2.url, retry=fast_retry))
    directory = extract_window(live_settings(tmp_path, server2), WEEK_START, WEEK_END,
                               client=LiveClient(server2.url, retry=fast_retry))
    assert json.loads((directory / "manifest.json").read_text())["last_updated"] == "2026-04-01"


def test_rerun_refetches_when_last_updated_changes(tmp_path, week_engine, serve, fast_retry):
    server = serve(week_engine)
    settings = live_settings(tmp_path, server)
    extract_window(settings, WEEK_START, WEEK_END, client=LiveClient(server.url, retry=fast_retry))
    server2 = serve(Engine(week_engine.reports, "2026-04-01"))
    directory = extract_window(live_settings(tmp_path, server2), WEEK_START, WEEK_END,
                               client=LiveClient(server2.url, retry=fast_retry))
    assert server2.requests[0].params == {"limit": "0"} and server2.request_count == 1 + 5
    assert json.loads((directory / "manifest.json").read_text())["last_updated"] == "2026-04-01"


# ---------------------------------------------------------------------------------------------
# The API key


def all_bytes_under(root: Path) -> list[tuple[Path, bytes]]:
    out = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out.append((path, data))
            if path.suffix == ".gz":
                out.append((path, gzip.decompress(data)))
    return out


def test_api_key_is_sent_but_never_stored_or_logged(tmp_path, week_engine, serve, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")  # whatever logging config ran before
    monkeypatch.setenv("OPENFDA_API_KEY", SECRET)
    server = serve(week_engine, FaultPlan(pattern=["429", "ok", "reset", "ok", "500", "ok", "ok"], retry_after=0))
    settings = live_settings(tmp_path, server, openfda_api_key=None)
    client = make_client(settings)
    assert isinstance(client, LiveClient) and client.limiter.daily_quota == 120_000
    client.retry = RetryPolicy(base_delay=0.001, max_delay=0.01, timeout=2.0)
    extract_window(settings, WEEK_START, WEEK_END, client=client)
    extract_history(settings, WEEK_END, client=client)
    extract_background_counts(settings, WEEK_END, ["Depression", "Headache", "Not a term"], client=client)
    assert server.keys_seen[SECRET] == server.request_count > 10
    assert "urllib3" in caplog.text and "api_key=REDACTED" in caplog.text  # the request lines were logged...
    assert SECRET not in caplog.text  # ...without the key
    for path, data in all_bytes_under(settings.data_dir):
        assert SECRET.encode() not in data, path


def test_api_key_is_redacted_from_connection_errors(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connection refused
    client = LiveClient(f"http://127.0.0.1:{port}", api_key=SECRET, retry=RetryPolicy(max_attempts=2, base_delay=0.001))
    with pytest.raises(OpenFDAUnavailable) as info:
        client.get({"search": "receivedate:20240101", "limit": "1"})
    text = str(info.value)
    assert "ConnectionError" in text and "api_key=REDACTED" in text and SECRET not in text
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert SECRET not in repr(client)


def test_api_key_from_airflow_connection(tmp_path):
    script = (
        "import airflow.sdk\n"
        "from extractors.openfda.client import resolve_api_key\n"
        "from pv.settings import Settings\n"
        "print(resolve_api_key(Settings(openfda_api_key=None)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENFDA_API_KEY"}
    env.update(PYTHONPATH=str(PROJECT_ROOT), AIRFLOW_CONN_OPENFDA_DEFAULT=json.dumps({"conn_type": "http", "password": SECRET}),
               AIRFLOW_HOME=str(tmp_path / "airflow"))
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == SECRET, out.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Limiter and quota


def test_token_bucket_holds_the_rate_with_a_fake_clock(tmp_path):
    now = [1000.0]
    limiter = SharedRateLimiter(tmp_path, per_minute=120, daily_quota=10_000, clock=lambda: now[0],
                                sleep=lambda s: now.__setitem__(0, now[0] + s))
    stamps = []
    for _ in range(20):
        limiter.acquire()
        stamps.append(now[0])
    # one token: the first request at once, then one every 0.5 s, never a burst
    assert stamps[0] == 1000.0
    assert [round(b - a, 6) for a, b in zip(stamps, stamps[1:], strict=False)] == [0.5] * 19
    assert limiter.used_today() == 20


def test_daily_quota_stops_with_a_clear_message(tmp_path):
    limiter = SharedRateLimiter(tmp_path, per_minute=6000, daily_quota=3)
    for _ in range(3):
        limiter.acquire()
    with pytest.raises(DailyQuotaExceeded, match=r"daily quota reached: 3 of 3 requests used on \d{4}-\d\d-\d\d \(UTC\)"):
        limiter.acquire()


def test_run_that_would_exceed_the_quota_stops_before_paging(tmp_path, week_engine, serve, monkeypatch):
    server = serve(week_engine)
    settings = live_settings(tmp_path, server, daily_quota=3)
    with pytest.raises(DailyQuotaExceeded, match="extracting 4500 reports needs 4 more openFDA requests but only 2"):
        extract_window(settings, WEEK_START, WEEK_END)
    assert server.request_count == 1


@pytest.mark.slow
def test_limiter_holds_two_concurrent_processes_under_the_rate(tmp_path, serve):
    rate = 600  # per minute: 10/s, one request every 100 ms
    engine = Engine(
        synthetic_reports(2_000, date(2024, 1, 1), seed=5)
        + synthetic_reports(2_000, date(2024, 1, 8), seed=6, id_offset=60_000_000),
        "2026-01-02",
    )
    server = serve(engine)
    data_dir = tmp_path / "var"  # shared, as concurrent backfill runs share it
    procs = [
        spawn_extraction(url=server.url, data_dir=str(data_dir), start=s.isoformat(), end=e.isoformat(),
                         page_limit=100, rate=rate, make_client=True)
        for s, e in ((WEEK_START, WEEK_END), (WEEK_END, datetime(2024, 1, 15, 6, tzinfo=UTC)))
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]
    stamps = sorted(r.at for r in server.requests)
    assert len(stamps) == 40
    per_second, capacity = rate / 60, 1
    for i in range(len(stamps)):
        for j in range(i, len(stamps)):
            assert j - i + 1 <= capacity + per_second * (stamps[j] - stamps[i]) + 1, (i, j)
    assert stamps[-1] - stamps[0] >= (40 - capacity - 1) / per_second * 0.95
    assert SharedRateLimiter(data_dir / "openfda", rate, 1000, scope="anonymous").used_today() == 40


def test_testserver_runs_as_a_module(real_bulk):
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "extractors.openfda.testserver", "--data", str(real_bulk), "--port", "0"],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    try:
        info = json.loads(proc.stdout.readline())
        assert info["reports"] == 100 and info["last_updated"] == "2026-01-02"
        with urllib.request.urlopen(info["url"] + "/drug/event.json?limit=0") as response:
            assert json.loads(response.read())["meta"]["results"]["total"] == 100
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_page_sha256_in_manifest_matches_stored_bytes(baseline):
    manifest = json.loads((baseline / "manifest.json").read_text())
    for page in manifest["pages"]:
        raw = gzip.decompress((baseline / page["file"]).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == page["sha256"] and len(raw) == page["bytes"]
    assert time.strptime(manifest["retrieved_at"], "%Y-%m-%dT%H:%M:%SZ")
