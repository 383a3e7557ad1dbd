"""A local openFDA drug/event server over real sockets, with configurable faults.

It serves GET /drug/event.json from the engine (the same bytes the offline client gets, with the
Link host of this server) and plays the API gateway's part: it accepts and strips `api_key`.
Faults come from a repeating pattern (one entry per request) and/or a seeded random mix:

    ok         normal answer
    429        OVER_RATE_LIMIT with Retry-After
    500, 503   SERVER_ERROR (503 with Retry-After)
    reset      the connection is reset without an answer (TCP RST)
    slow       the answer is delayed by slow_seconds (a timeout when above the client's)
    truncate   full Content-Length announced, half the body sent, connection closed
    badjson    200 with half the body and a matching Content-Length: invalid JSON
    hang       the request blocks until the server stops (to kill a client mid-run)

    python -m extractors.openfda.testserver --data FILE --port N [--faults 429,429,ok,500,reset]
        [--mix 0.3 --seed 1] [--retry-after 1] [--slow-seconds 2] [--synthetic 30000]
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from extractors.openfda.engine import DRUG_EVENT_PATH, Engine, render_json

FAULT_KINDS = ("ok", "429", "500", "503", "reset", "slow", "truncate", "badjson", "hang")
MIX_KINDS = ("429", "500", "503", "reset", "slow", "truncate", "badjson")


@dataclass
class FaultPlan:
    """Which fault request number n gets: pattern[(n-1) % len(pattern)], else the random mix."""

    pattern: list[str] = field(default_factory=list)
    mix_rate: float = 0.0
    mix_kinds: tuple[str, ...] = MIX_KINDS
    seed: int = 0
    retry_after: int | None = 0
    slow_seconds: float = 1.0
    only_first: int | None = None  # apply the pattern to the first N requests only

    def __post_init__(self) -> None:
        for kind in [*self.pattern, *self.mix_kinds]:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault {kind!r}; expected one of {FAULT_KINDS}")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str, **kwargs) -> FaultPlan:
        return cls(pattern=[p.strip() for p in text.split(",") if p.strip()], **kwargs)

    def fault_for(self, number: int) -> str:
        if self.pattern and (self.only_first is None or number <= self.only_first):
            kind = self.pattern[(number - 1) % len(self.pattern)]
            if kind != "ok":
                return kind
        if self.mix_rate:
            with self._lock:
                if self._rng.random() < self.mix_rate:
                    return self._rng.choice(self.mix_kinds)
        return "ok"


@dataclass
class ServedRequest:
    """One request as it arrived (`at`, monotonic); `status` is None when no answer was sent."""

    number: int
    params: dict[str, str]  # without api_key
    had_api_key: bool
    fault: str
    at: float
    status: int | None = None


class _QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # injected resets end requests abruptly
        return


class OpenFDATestServer:
    """ThreadingHTTPServer on 127.0.0.1:<ephemeral> in a background thread; use as a context manager."""

    def __init__(self, engine: Engine, faults: FaultPlan | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.engine = engine
        self.faults = faults or FaultPlan()
        self.requests: list[ServedRequest] = []
        self.statuses: Counter[str] = Counter()
        self.keys_seen: Counter[str] = Counter()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._httpd = _QuietHTTPServer((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def start(self) -> OpenFDATestServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="openfda-testserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> OpenFDATestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for_requests(self, n: int, timeout: float = 30.0) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.requests) >= n, timeout)

    def _arrived(self, request: ServedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            self._lock.notify_all()

    def _answered(self, request: ServedRequest, status: int | None) -> None:
        with self._lock:
            request.status = status
            self.statuses[request.fault if status is None or request.fault != "ok" else str(status)] += 1

    def _next_number(self) -> int:
        with self._lock:
            self._counter = getattr(self, "_counter", 0) + 1
            return self._counter

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "open.fda.gov"
            sys_version = ""

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the request line holds the key
                return

            def _send(self, status: int, headers: dict[str, str], body: bytes, *, declared: int | None = None) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body) if declared is None else declared))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                number = server._next_number()
                split = urlsplit(self.path)
                pairs = parse_qsl(split.query, keep_blank_values=True)
                key = next((v for k, v in pairs if k == "api_key"), None)
                params = {k: v for k, v in pairs if k != "api_key"}
                if key:
                    with server._lock:
                        server.keys_seen[key] += 1
                fault = server.faults.fault_for(number)
                served = ServedRequest(number, params, key is not None, fault, time.monotonic())
                server._arrived(served)

                def record(status: int | None) -> None:
                    server._answered(served, status)
                if split.path != DRUG_EVENT_PATH:
                    record(404)
                    body = render_json({"error": {"code": "NOT_FOUND", "message": "Not found"}})
                    self._send(404, {"Content-Type": "application/json; charset=utf-8"}, body)
                    return
                if len({k for k, _ in pairs}) != len(pairs):  # Express turns repeats into arrays
                    record(400)
                    body = render_json({"error": {"code": "BAD_REQUEST", "message": ""}})
                    self._send(400, {"Content-Type": "application/json; charset=utf-8"}, body)
                    return
                if fault == "hang":
                    record(None)
                    server._stopping.wait()
                    self.close_connection = True
                    return
                if fault == "reset":
                    record(None)
                    self.close_connection = True
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                if fault in ("429", "500", "503"):
                    status = int(fault)
                    code = "OVER_RATE_LIMIT" if status == 429 else "SERVER_ERROR"
                    message = (
                        "You have exceeded your rate limit. Try again later or contact us at "
                        "https://api.data.gov/contact/ for assistance" if status == 429 else "Check your request and try again"
                    )
                    headers = {"Content-Type": "application/json; charset=utf-8"}
                    if status != 500 and server.faults.retry_after is not None:
                        headers["Retry-After"] = str(server.faults.retry_after)
                    record(status)
                    self._send(status, headers, render_json({"error": {"code": code, "message": message}}))
                    return
                if fault == "slow":
                    server._stopping.wait(server.faults.slow_seconds)
                host = self.headers.get("Host") or server.url.removeprefix("http://")
                status, headers, body = server.engine.handle(params, origin=f"http://{host}")
                record(status)
                if fault == "truncate":
                    self.close_connection = True
                    self._send(status, headers, body[: len(body) // 2], declared=len(body))
                    return
                if fault == "badjson":
                    self._send(status, headers, body[: len(body) // 2])
                    return
                self._send(status, headers, body)

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="openFDA bulk file (.json, .json.gz or .json.zip)")
    source.add_argument("--synthetic", type=int, help="serve N synthetic isotretinoin reports (week of 2024-01-01)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--faults", default="", help=f"comma-separated pattern of {FAULT_KINDS}")
    parser.add_argument("--mix", type=float, default=0.0, help="probability of a random fault per request")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.data:
        engine = Engine.from_file(args.data)
    else:
        from extractors.openfda.synthetic import synthetic_reports

        engine = Engine(synthetic_reports(args.synthetic, date(2024, 1, 1), n_background=args.synthetic // 10), "2026-01-02")
    plan = FaultPlan.parse(args.faults, mix_rate=args.mix, seed=args.seed, retry_after=args.retry_after,
                           slow_seconds=args.slow_seconds)
    server = OpenFDATestServer(engine, plan, port=args.port).start()
    print(json.dumps({"url": server.url, "reports": len(engine.reports), "last_updated": engine.last_updated}), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
