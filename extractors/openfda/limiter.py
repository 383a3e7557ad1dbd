"""A request limiter shared by every process on the machine: token bucket plus daily quota in one file.

Concurrent Airflow backfill runs each hold their own client, so an in-memory limiter would let N runs
send N times the allowed rate. The state lives in `<data_dir>/openfda/ratelimit.json`, read and
rewritten under an exclusive `fcntl.flock` on a sibling lock file; waiting happens outside the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DAILY_QUOTA_WITHOUT_KEY = 1_000
DAILY_QUOTA_WITH_KEY = 120_000


class DailyQuotaExceeded(RuntimeError):
    """The shared daily request budget is spent; retrying today would only earn 429s."""


def default_daily_quota(has_key: bool, override: int | None) -> int:
    if override is not None:
        return override
    return DAILY_QUOTA_WITH_KEY if has_key else DAILY_QUOTA_WITHOUT_KEY


class SharedRateLimiter:
    """`acquire()` blocks until a request may be sent and counts it against the day's quota.

    The bucket holds a single token: requests are paced evenly (250 ms apart at 240/min) and never
    burst, because openFDA answers 429 to parallel bursts below 240/min (FDA/openfda#111); any 60 s
    window then sees at most rate + 1 requests. Days are UTC calendar days.
    """

    def __init__(
        self,
        state_dir: Path,
        per_minute: int,
        daily_quota: int,
        *,
        scope: str = "default",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError(f"rate_limit_per_minute must be positive, got {per_minute}")
        self.state_dir = Path(state_dir)
        self.per_second = per_minute / 60.0
        self.capacity = 1.0
        self.daily_quota = daily_quota
        self.scope = scope
        self._clock = clock
        self._sleep = sleep
        self.state_path = self.state_dir / "ratelimit.json"
        self.lock_path = self.state_dir / "ratelimit.lock"

    @contextmanager
    def _locked_state(self) -> Iterator[dict[str, Any]]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                try:
                    state = json.loads(self.state_path.read_text(encoding="utf-8"))
                except (FileNotFoundError, json.JSONDecodeError):
                    state = {}
                yield state
                tmp = self.state_path.with_name(f".ratelimit.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
                os.replace(tmp, self.state_path)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _today(self, now: float) -> str:
        return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")

    def acquire(self) -> None:
        while True:
            with self._locked_state() as state:
                now = self._clock()
                bucket = state.setdefault("bucket", {"tokens": self.capacity, "updated": now})
                elapsed = max(0.0, now - float(bucket["updated"]))
                tokens = min(self.capacity, float(bucket["tokens"]) + elapsed * self.per_second)
                day = self._today(now)
                daily = state.setdefault("daily", {})
                used = daily.get(self.scope, {}).get(day, 0)
                if used >= self.daily_quota:
                    raise DailyQuotaExceeded(
                        f"openFDA daily quota reached: {used} of {self.daily_quota} requests used on {day} (UTC) "
                        f"by all runs on this machine ({self.state_path}); set an API key or PV_DAILY_QUOTA, "
                        "or rerun tomorrow"
                    )
                if tokens >= 1.0:
                    bucket.update(tokens=tokens - 1.0, updated=now)
                    daily[self.scope] = {day: used + 1}
                    return
                bucket.update(tokens=tokens, updated=now)
                wait = (1.0 - tokens) / self.per_second
            self._sleep(wait)

    def used_today(self) -> int:
        with self._locked_state() as state:
            return int(state.get("daily", {}).get(self.scope, {}).get(self._today(self._clock()), 0))

    def ensure_budget(self, needed: int, what: str) -> None:
        """Stop before a run that cannot finish within today's quota, rather than halfway through it."""
        used = self.used_today()
        if used + needed > self.daily_quota:
            raise DailyQuotaExceeded(
                f"{what} needs {needed} more openFDA requests but only {self.daily_quota - used} of the daily "
                f"quota of {self.daily_quota} remain today (UTC); set an API key or PV_DAILY_QUOTA, or rerun tomorrow"
            )
