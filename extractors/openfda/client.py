"""Clients for GET /drug/event.json: live over HTTP, or offline over the bundled bulk file.

Both return the same `ApiResponse` and apply the same response policy:
- 200 and 404 NOT_FOUND are answers (404 means "no reports"), returned to the caller;
- 400 fails at once with openFDA's own message (retrying a bad request cannot help);
- 429, 5xx, connection errors, timeouts and truncated or non-JSON bodies are transient: the live
  client retries them with exponential backoff and full jitter, honouring Retry-After.

The API key is added to every live request and never leaves this module: URLs are redacted before
they reach a response, an exception or a log line (including urllib3's debug log of the request).
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import requests

from extractors.openfda.engine import DRUG_EVENT_PATH, Engine, qs_stringify
from extractors.openfda.limiter import SharedRateLimiter, default_daily_quota
from pv.settings import Settings

log = logging.getLogger(__name__)

AIRFLOW_CONN_ID = "openfda_default"
REDACTED = "REDACTED"
_API_KEY_IN_URL = re.compile(r"(api_key=)[^&\s#'\"]+")


# ---------------------------------------------------------------------------------------------
# Errors


class OpenFDAError(RuntimeError):
    """An openFDA request that could not be answered; the message names the (redacted) URL."""


class OpenFDABadRequest(OpenFDAError):
    """400: openFDA refused the request itself; its message says why."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(f"openFDA rejected the request (400): {message} [{url}]")
        self.api_message = message
        self.url = url


class OpenFDAUnavailable(OpenFDAError):
    """Transient failures outlasted the retry budget."""


# ---------------------------------------------------------------------------------------------
# Secrets and redaction


_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def register_secret(secret: str) -> None:
    with _SECRETS_LOCK:
        _SECRETS.add(secret)
    _install_log_redaction()


def redact(text: str) -> str:
    """Remove api_key values and every registered secret from text."""
    text = _API_KEY_IN_URL.sub(r"\1" + REDACTED, text)
    for secret in list(_SECRETS):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()


def _install_log_redaction() -> None:
    """urllib3 logs each request line (with its query string) at DEBUG; scrub it at the source."""
    for name in ("urllib3.connectionpool", "requests", __name__):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def resolve_api_key(settings: Settings) -> str | None:
    """Settings (env OPENFDA_API_KEY), else the Airflow connection `openfda_default` (password)."""
    key = settings.openfda_api_key or os.environ.get("OPENFDA_API_KEY") or _airflow_api_key()
    if key:
        register_secret(key)
    return key or None


def _airflow_api_key() -> str | None:
    """Only inside Airflow: importing it elsewhere would cost seconds and configure its logging."""
    if "airflow" not in sys.modules and not os.environ.get("AIRFLOW_CONN_" + AIRFLOW_CONN_ID.upper()):
        return None
    try:
        from airflow.sdk import BaseHook  # type: ignore[attr-defined]

        connection = BaseHook.get_connection(AIRFLOW_CONN_ID)
    except Exception:  # noqa: BLE001 - no Airflow, no connection, or no task context: no key
        return None
    return connection.password or None


# ---------------------------------------------------------------------------------------------
# The interface


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url_redacted: str

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        """The parsed body, parsed once (pages are ~1 MB)."""
        cached = self.__dict__.get("_parsed")
        if cached is None:
            cached = json.loads(self.body)
            object.__setattr__(self, "_parsed", cached)
        return cached

    def next_params(self) -> dict[str, str] | None:
        """Query parameters of the `Link: <...>; rel="next"` URL, without any api_key."""
        link = self.header("Link")
        if not link:
            return None
        match = re.search(r'<([^>]*)>\s*;\s*rel="?next"?', link)
        if not match:
            return None
        pairs = parse_qsl(urlsplit(match.group(1)).query, keep_blank_values=True)
        return {k: v for k, v in pairs if k != "api_key"}


class DrugEventClient(Protocol):
    def get(self, params: dict[str, str]) -> ApiResponse: ...


def _error_message(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return str(error.get("message") or error.get("code") or "")
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def _is_answer(response: ApiResponse) -> bool:
    """A complete JSON answer: 200 with meta, or a 404 NOT_FOUND error body."""
    status = response.status
    try:
        document = response.json()
    except ValueError:
        return False
    if not isinstance(document, dict):
        return False
    if status == 200:
        return isinstance(document.get("meta"), dict) and "results" in document
    return isinstance(document.get("error"), dict) and document["error"].get("code") == "NOT_FOUND"


# ---------------------------------------------------------------------------------------------
# Offline


_ENGINES: dict[tuple[str, int, int], Engine] = {}
_ENGINES_LOCK = threading.Lock()
OFFLINE_ORIGIN = "http://offline.openfda.invalid"


def engine_for(path: Path) -> Engine:
    """One parsed engine per file version per process (the bundled sample takes ~1 s to load)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES.clear()
            _ENGINES[key] = Engine.from_file(path, origin=OFFLINE_ORIGIN)
        return _ENGINES[key]


class OfflineClient:
    """The engine in-process over a bulk file: same bodies as the local server, no network."""

    def __init__(self, sample_path: Path) -> None:
        self.sample_path = Path(sample_path)
        self.engine = engine_for(self.sample_path)
        self.requests_made = 0

    def get(self, params: dict[str, str]) -> ApiResponse:
        self.requests_made += 1
        status, headers, body = self.engine.handle(params)
        url = f"{OFFLINE_ORIGIN}{DRUG_EVENT_PATH}?{qs_stringify(params)}"
        if status == 400:
            raise OpenFDABadRequest(_error_message(body), url)
        if status not in (200, 404):
            raise OpenFDAError(f"offline engine answered {status}: {_error_message(body)} [{url}]")
        return ApiResponse(status, headers, body, url)


# ---------------------------------------------------------------------------------------------
# Live


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter; Retry-After wins when the server sends one."""

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0
    timeout: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


@dataclass
class LiveClient:
    """requests against `<base_url>/drug/event.json`, through the shared limiter, with retries."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    limiter: SharedRateLimiter | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    session: requests.Session = field(default_factory=requests.Session)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    requests_made: int = 0
    retries: int = 0

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        if self.api_key:
            register_secret(self.api_key)
        _install_log_redaction()

    def _url(self, params: Mapping[str, str]) -> str:
        return f"{self.base_url}{DRUG_EVENT_PATH}?{qs_stringify(params)}"

    def get(self, params: dict[str, str]) -> ApiResponse:
        query = {k: v for k, v in params.items() if k != "api_key"}
        shown = redact(self._url(query))
        if self.api_key:
            query["api_key"] = self.api_key
        reason = "no attempt made"
        for attempt in range(1, self.retry.max_attempts + 1):
            if self.limiter is not None:
                self.limiter.acquire()
            self.requests_made += 1
            wait: float | None = None
            try:
                response = self.session.get(
                    f"{self.base_url}{DRUG_EVENT_PATH}", params=query, timeout=self.retry.timeout
                )
                body = response.content
            except requests.RequestException as exc:
                reason = redact(f"{type(exc).__name__}: {exc}")
            else:
                status = response.status_code
                answer = ApiResponse(status, dict(response.headers), body, shown)
                if status in (200, 404) and _is_answer(answer):
                    return answer
                if status == 400:
                    raise OpenFDABadRequest(redact(_error_message(body)), shown) from None
                if status in (200, 404):
                    reason = f"HTTP {status} with a truncated or invalid JSON body ({len(body)} bytes)"
                elif status == 429 or status >= 500:
                    reason = f"HTTP {status}: {redact(_error_message(body))}"
                    wait = parse_retry_after(response.headers.get("Retry-After"))
                else:
                    raise OpenFDAError(f"openFDA answered HTTP {status}: {redact(_error_message(body))} [{shown}]")
            if attempt == self.retry.max_attempts:
                break
            delay = self.retry.backoff(attempt, self.rng)
            if wait is not None:
                delay = max(delay, min(wait, self.retry.max_retry_after))
            self.retries += 1
            log.warning("openFDA attempt %d/%d failed (%s); retrying in %.2fs: %s",
                        attempt, self.retry.max_attempts, reason, delay, brief_url(shown))
            self.sleep(delay)
        raise OpenFDAUnavailable(
            f"openFDA request failed after {self.retry.max_attempts} attempts, last: {reason} [{shown}]"
        )


def brief_url(url: str, keep: int = 160) -> str:
    """A log-sized URL: the drug query is ~3 kB, the cursor at its end is what tells pages apart."""
    if len(url) <= 2 * keep:
        return url
    return f"{url[:keep]}...[{len(url) - 2 * keep} chars]...{url[-keep:]}"


def make_live_client(settings: Settings, *, retry: RetryPolicy | None = None) -> LiveClient:
    key = resolve_api_key(settings)
    limiter = SharedRateLimiter(
        Path(settings.data_dir) / "openfda",
        settings.rate_limit_per_minute,
        default_daily_quota(bool(key), settings.daily_quota),
        scope="key" if key else "anonymous",
    )
    return LiveClient(settings.openfda_base_url, api_key=key, limiter=limiter, retry=retry or RetryPolicy())


def make_client(settings: Settings) -> DrugEventClient:
    """'sample' -> OfflineClient over settings.sample_path; 'openfda' -> LiveClient."""
    if settings.source == "sample":
        return OfflineClient(settings.sample_path)
    if settings.source == "openfda":
        return make_live_client(settings)
    raise ValueError(f"unknown source {settings.source!r}")
