"""`pv backfill`: rerun the weekly DAG over past weeks through Airflow's own backfill.

Airflow does the work (scheduler, executor, pool `openfda_api`, retries, failure notifier); this module
is a thin wrapper for analysts:

1. picks a driver: the REST API of a running api-server (`--api-url` / `PV_AIRFLOW_API_URL`, or one
   answering on the local default port), else the `airflow` CLI against the metadata DB;
2. checks that a scheduler is alive and the DAG is parsed, unpauses the DAG (backfill runs of a paused
   DAG stay queued), and waits for a previous backfill of the DAG that Airflow has not closed yet;
3. creates the backfill (`POST /api/v2/backfills` or `airflow backfill create`);
4. polls the runs, printing weeks done/total and an ETA, and ends with the failed runs and where their
   task logs are. The exit code is 0 when every run succeeded, 1 when one failed, 2 when the backfill
   could not be started.

Weeks: `--from 2025-01-06 --to 2025-02-24` covers every weekly data interval that *starts* (Monday
06:00 UTC) on a day from FROM to TO inclusive; Airflow's own `--to-date` stops at midnight.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TextIO

DAG_ID = "isotretinoin_weekly_signals"
REPROCESS_BEHAVIORS = ("none", "failed", "completed")
TERMINAL_STATES = ("success", "failed")
DEFAULT_LOCAL_API_URL = "http://127.0.0.1:8080"
DEFAULT_USERNAME = "admin"
# Airflow 3's default [logging] log_filename_template.
LOG_TEMPLATE = "dag_id={dag_id}/run_id={run_id}/task_id={task_id}/{map_part}attempt={try_number}.log"

EXIT_OK, EXIT_RUN_FAILED, EXIT_NOT_STARTED = 0, 1, 2


class BackfillError(RuntimeError):
    """The backfill could not be started or followed; the message says what to do."""


class BackfillAlreadyRunning(BackfillError):
    """Airflow allows one open backfill per DAG; `backfill_id` is the open one."""

    def __init__(self, message: str, backfill_id: int | None) -> None:
        super().__init__(message)
        self.backfill_id = backfill_id


# ------------------------------------------------------------------------------------------ values


@dataclass(frozen=True)
class BackfillRequest:
    """What the analyst asked for, in Airflow's terms."""

    first_day: datetime  # UTC midnight of --from
    last_day: datetime  # UTC midnight of --to (inclusive)
    max_active_runs: int = 4
    reprocess_behavior: str = "none"
    conf: dict[str, Any] | None = None
    dag_id: str = DAG_ID

    def __post_init__(self) -> None:
        if self.reprocess_behavior not in REPROCESS_BEHAVIORS:
            raise ValueError(f"reprocess behavior must be one of {REPROCESS_BEHAVIORS}, got {self.reprocess_behavior!r}")
        if self.max_active_runs < 1:
            raise ValueError(f"max active runs must be at least 1, got {self.max_active_runs}")
        if self.last_day < self.first_day:
            raise ValueError(f"--to {self.last_day:%Y-%m-%d} is before --from {self.first_day:%Y-%m-%d}")

    @property
    def from_date(self) -> datetime:
        """Airflow's --from-date (inclusive, on the logical date = data interval start)."""
        return self.first_day

    @property
    def to_date(self) -> datetime:
        """Airflow's --to-date (inclusive): the last second of the --to day, so its 06:00 run is in."""
        return self.last_day + timedelta(days=1) - timedelta(seconds=1)

    def api_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "dag_id": self.dag_id,
            "from_date": self.from_date.isoformat(),
            "to_date": self.to_date.isoformat(),
            "run_backwards": False,
            "max_active_runs": self.max_active_runs,
            "reprocess_behavior": self.reprocess_behavior,
        }
        if self.conf:
            body["dag_run_conf"] = self.conf
        return body

    def cli_args(self) -> list[str]:
        args = [
            "backfill", "create", "--dag-id", self.dag_id,
            "--from-date", self.from_date.isoformat(), "--to-date", self.to_date.isoformat(),
            "--max-active-runs", str(self.max_active_runs), "--reprocess-behavior", self.reprocess_behavior,
        ]
        if self.conf:
            args += ["--dag-run-conf", json.dumps(self.conf, sort_keys=True)]
        return args


@dataclass(frozen=True)
class FailedTask:
    task_id: str
    try_number: int
    log_path: str  # where the task's log file is on the machines that ran it
    log_url: str | None = None  # the same log through the api-server, when known


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    logical_date: datetime
    state: str
    data_interval_end: datetime | None = None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def week(self) -> str:
        end = self.data_interval_end or self.logical_date + timedelta(days=7)
        return f"{self.logical_date:%Y-%m-%d} -> {end:%Y-%m-%d}"


@dataclass(frozen=True)
class Progress:
    total: int
    succeeded: int
    failed: int
    running: int
    elapsed: float

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def eta_seconds(self) -> float | None:
        """Remaining time at the pace so far (runs finish in waves of max-active-runs, so it is rough)."""
        if self.done == 0 or self.done >= self.total:
            return None if self.done == 0 else 0.0
        return self.elapsed / self.done * (self.total - self.done)

    def line(self) -> str:
        eta = self.eta_seconds
        eta_text = "ETA --:--" if eta is None else f"ETA {_clock(eta)}"
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"[{_clock(self.elapsed)}] {self.done}/{self.total} weeks done "
            f"({self.succeeded} ok{failed}, {self.running} running), {eta_text}"
        )


@dataclass
class BackfillOutcome:
    backfill_id: int | None
    planned: list[datetime]
    runs: list[RunStatus] = field(default_factory=list)
    failures: dict[str, list[FailedTask]] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def failed_runs(self) -> list[RunStatus]:
        return [r for r in self.runs if r.state == "failed"]

    @property
    def exit_code(self) -> int:
        return EXIT_RUN_FAILED if self.failed_runs else EXIT_OK


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def parse_day(text: str) -> datetime:
    """'2025-01-06' -> 2025-01-06T00:00Z; errors name the offending text."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a day as YYYY-MM-DD, got {text!r}") from None
    return day.replace(tzinfo=UTC)


def _as_utc(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def task_log_path(base_log_folder: str | Path, dag_id: str, run_id: str, task_id: str, try_number: int,
                  map_index: int = -1) -> Path:
    """The task log file under Airflow's default log_filename_template."""
    map_part = f"map_index={map_index}/" if map_index >= 0 else ""
    return Path(base_log_folder) / LOG_TEMPLATE.format(
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_part=map_part, try_number=try_number
    )


def progress_of(runs: Sequence[RunStatus], total: int, elapsed: float) -> Progress:
    return Progress(
        total=total,
        succeeded=sum(r.state == "success" for r in runs),
        failed=sum(r.state == "failed" for r in runs),
        running=sum(r.state == "running" for r in runs),
        elapsed=elapsed,
    )


# ------------------------------------------------------------------------------------------ drivers


class BackfillDriver(Protocol):
    """How pv talks to Airflow: the REST API or the CLI + metadata DB."""

    description: str

    def check_ready(self, dag_id: str, wait_seconds: float) -> None: ...

    def unpause(self, dag_id: str) -> bool: ...  # True when it was paused

    def planned_weeks(self, request: BackfillRequest) -> list[datetime]: ...

    def create(self, request: BackfillRequest) -> int: ...

    def runs(self, request: BackfillRequest, backfill_id: int, planned: Sequence[datetime]) -> list[RunStatus]: ...

    def is_complete(self, backfill_id: int) -> bool: ...

    def unfinished_runs(self, dag_id: str, backfill_id: int) -> int: ...

    def failed_tasks(self, dag_id: str, run_id: str) -> list[FailedTask]: ...


def _base_log_folder() -> str:
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or str(Path(airflow_home) / "logs")


class RestDriver:
    """Airflow's public REST API (`/api/v2`), authenticated with a JWT from `POST /auth/token`."""

    def __init__(self, api_url: str, username: str, password: str | None, *, timeout: float = 30.0,
                 log_folder: str | None = None) -> None:
        import requests

        self.api_url = api_url.rstrip("/")
        self.description = f"Airflow REST API at {self.api_url}"
        self.timeout = timeout
        self.log_folder = log_folder or _base_log_folder()
        self._session = requests.Session()
        self._username, self._password = username, password

    # -- plumbing
    def _login(self) -> None:
        import requests

        try:
            if self._password is not None:
                response = self._session.post(
                    f"{self.api_url}/auth/token", json={"username": self._username, "password": self._password},
                    timeout=self.timeout,
                )
            else:  # simple_auth_manager_all_admins: a token without credentials
                response = self._session.get(f"{self.api_url}/auth/token", timeout=self.timeout)
        except requests.RequestException as error:
            raise BackfillError(f"cannot reach the Airflow api-server at {self.api_url}: {error}") from error
        if response.status_code not in (200, 201):
            hint = "set PV_AIRFLOW_USERNAME / PV_AIRFLOW_PASSWORD" if self._password is None else "check the password"
            raise BackfillError(
                f"login to {self.api_url}/auth/token as {self._username!r} failed with HTTP {response.status_code}: "
                f"{response.text[:200]} ({hint})"
            )
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        url = f"{self.api_url}/api/v2{path}"
        for attempt in range(2):
            if "Authorization" not in self._session.headers:
                self._login()
            try:
                response = self._session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as error:
                raise BackfillError(f"{method} {url} failed: {error}") from error
            if response.status_code == 401 and attempt == 0:  # token expired: log in again once
                self._session.headers.pop("Authorization", None)
                continue
            if response.status_code >= 400:
                raise _api_error(method, url, response.status_code, response.text)
            return response.json() if response.content else None
        raise BackfillError(f"{method} {url}: still unauthorized after logging in again")

    # -- the driver
    def check_ready(self, dag_id: str, wait_seconds: float) -> None:
        health = self._call("GET", "/monitor/health")
        scheduler = (health or {}).get("scheduler", {}).get("status")
        if scheduler != "healthy":
            raise BackfillError(
                f"the scheduler behind {self.api_url} is {scheduler or 'not running'}: backfill runs would stay queued; "
                "start `airflow scheduler` (docs/deployment.md)"
            )
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                self._call("GET", f"/dags/{dag_id}")
                return
            except BackfillError as error:
                if "HTTP 404" not in str(error) or time.monotonic() > deadline:
                    raise BackfillError(
                        f"DAG {dag_id} is not known to {self.api_url} yet ({error}); is the dag-processor running "
                        "and dags/ in its DAGS_FOLDER?"
                    ) from error
            time.sleep(2)

    def unpause(self, dag_id: str) -> bool:
        dag = self._call("GET", f"/dags/{dag_id}")
        if not dag.get("is_paused"):
            return False
        self._call("PATCH", f"/dags/{dag_id}", params={"update_mask": "is_paused"}, json={"is_paused": False})
        return True

    def planned_weeks(self, request: BackfillRequest) -> list[datetime]:
        result = self._call("POST", "/backfills/dry_run", json=request.api_body())
        return sorted(_as_utc(item["logical_date"]) for item in result["backfills"] if item.get("logical_date"))

    def create(self, request: BackfillRequest) -> int:
        try:
            return int(self._call("POST", "/backfills", json=request.api_body())["id"])
        except BackfillError as error:
            if "HTTP 409" not in str(error):
                raise
            open_ids = [b["id"] for b in self._call("GET", "/backfills", params={"dag_id": request.dag_id})["backfills"]
                        if b.get("completed_at") is None]
            raise BackfillAlreadyRunning(str(error), open_ids[0] if open_ids else None) from error

    def runs(self, request: BackfillRequest, backfill_id: int, planned: Sequence[datetime]) -> list[RunStatus]:
        wanted = set(planned)
        found: dict[datetime, RunStatus] = {}
        offset = 0
        while True:
            page = self._call("GET", f"/dags/{request.dag_id}/dagRuns", params={
                "run_type": "backfill", "logical_date_gte": request.from_date.isoformat(),
                "logical_date_lte": request.to_date.isoformat(), "limit": 100, "offset": offset,
                "order_by": "logical_date",
            })
            for item in page["dag_runs"]:
                logical = _as_utc(item["logical_date"])
                if logical in wanted:
                    found[logical] = RunStatus(
                        run_id=item["dag_run_id"], logical_date=logical, state=str(item["state"]),
                        data_interval_end=_as_utc(item["data_interval_end"]) if item.get("data_interval_end") else None,
                    )
            offset += len(page["dag_runs"])
            if not page["dag_runs"] or offset >= int(page.get("total_entries", 0)):
                return [found[d] for d in sorted(found)]

    def is_complete(self, backfill_id: int) -> bool:
        return self._call("GET", f"/backfills/{backfill_id}").get("completed_at") is not None

    def unfinished_runs(self, dag_id: str, backfill_id: int) -> int:
        backfill = self._call("GET", f"/backfills/{backfill_id}")
        page = self._call("GET", f"/dags/{dag_id}/dagRuns", params={
            "run_type": "backfill", "state": ["queued", "running"], "limit": 1,
            "logical_date_gte": backfill["from_date"], "logical_date_lte": backfill["to_date"],
        })
        return int(page.get("total_entries", 0))

    def failed_tasks(self, dag_id: str, run_id: str) -> list[FailedTask]:
        from urllib.parse import quote

        result = self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                            params={"state": "failed", "limit": 100})
        tasks = []
        for ti in result["task_instances"]:
            try_number = int(ti.get("try_number") or 1)
            tasks.append(FailedTask(
                task_id=ti["task_id"], try_number=try_number,
                log_path=str(task_log_path(self.log_folder, dag_id, run_id, ti["task_id"], try_number,
                                           int(ti.get("map_index", -1)))),
                log_url=f"{self.api_url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{ti['task_id']}",
            ))
        return tasks


def _api_error(method: str, url: str, status: int, text: str) -> BackfillError:
    try:
        detail = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    return BackfillError(f"{method} {url} answered HTTP {status}: {str(detail)[:500]}")


class CliDriver:
    """The `airflow` CLI for actions, Airflow's ORM for reading state: both straight to the metadata DB."""

    def __init__(self, airflow_bin: str | None = None) -> None:
        from pv.airflow_runner import airflow_env

        for key, value in airflow_env().items():
            if key.startswith(("AIRFLOW", "GX_")):
                os.environ.setdefault(key, value)
        self.airflow_bin = airflow_bin or str(Path(sys.executable).with_name("airflow"))
        self.description = f"airflow CLI against the metadata DB of AIRFLOW_HOME={os.environ['AIRFLOW_HOME']}"

    def _airflow(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([self.airflow_bin, *args], capture_output=True, text=True, env=dict(os.environ))
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise BackfillError(f"`airflow {' '.join(args)}` exited with {done.returncode}: " + " | ".join(tail))
        return done

    def check_ready(self, dag_id: str, wait_seconds: float) -> None:
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        try:
            self._airflow("jobs", "check", "--job-type", "SchedulerJob", "--allow-multiple", "--limit", "10")
        except BackfillError as error:
            raise BackfillError(
                f"no live scheduler heartbeats in the metadata DB ({os.environ.get('AIRFLOW__DATABASE__SQL_ALCHEMY_CONN', 'default')}):"
                " backfill runs would stay queued; start the deployment (docs/deployment.md) or pass --api-url"
            ) from error
        deadline = time.monotonic() + wait_seconds
        while True:
            with create_session() as session:
                if session.scalar(select(DagModel.dag_id).where(DagModel.dag_id == dag_id)) is not None:
                    return
            if time.monotonic() > deadline:
                raise BackfillError(f"DAG {dag_id} is not in the metadata DB: is the dag-processor running?")
            time.sleep(2)

    def unpause(self, dag_id: str) -> bool:
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            paused = session.scalar(select(DagModel.is_paused).where(DagModel.dag_id == dag_id))
        if not paused:
            return False
        self._airflow("dags", "unpause", dag_id)
        return True

    def planned_weeks(self, request: BackfillRequest) -> list[datetime]:
        from airflow.models.backfill import ReprocessBehavior, _do_dry_run
        from airflow.utils.session import create_session

        with create_session() as session:
            infos = list(_do_dry_run(
                dag_id=request.dag_id, from_date=request.from_date, to_date=request.to_date, reverse=False,
                reprocess_behavior=ReprocessBehavior(request.reprocess_behavior), dag_run_conf=request.conf,
                session=session,
            ))
        return sorted(_as_utc(i.logical_date) for i in infos if i.logical_date is not None)

    def _open_backfill(self, dag_id: str) -> int | None:
        from airflow.models.backfill import Backfill
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            return session.scalar(
                select(Backfill.id).where(Backfill.dag_id == dag_id, Backfill.completed_at.is_(None))
                .order_by(Backfill.id.desc()).limit(1)
            )

    def create(self, request: BackfillRequest) -> int:
        from airflow.models.backfill import Backfill
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        with create_session() as session:
            before = session.scalar(select(func.max(Backfill.id)).where(Backfill.dag_id == request.dag_id)) or 0
        try:
            self._airflow(*request.cli_args())
        except BackfillError as error:
            if "AlreadyRunningBackfill" in str(error) or "Another backfill is running" in str(error):
                raise BackfillAlreadyRunning(str(error), self._open_backfill(request.dag_id)) from error
            raise
        with create_session() as session:
            created = session.scalar(select(func.max(Backfill.id)).where(Backfill.dag_id == request.dag_id))
        if not created or created <= before:
            raise BackfillError(f"`airflow backfill create` for {request.dag_id} succeeded but created no backfill")
        return int(created)

    def runs(self, request: BackfillRequest, backfill_id: int, planned: Sequence[datetime]) -> list[RunStatus]:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(DagRun.run_id, DagRun.logical_date, DagRun.state, DagRun.data_interval_end)
                .where(DagRun.dag_id == request.dag_id, DagRun.backfill_id == backfill_id)
                .order_by(DagRun.logical_date)
            ).all()
        return [RunStatus(r.run_id, _as_utc(r.logical_date), str(r.state),
                          _as_utc(r.data_interval_end) if r.data_interval_end else None) for r in rows]

    def is_complete(self, backfill_id: int) -> bool:
        from airflow.models.backfill import Backfill
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            return session.scalar(select(Backfill.completed_at).where(Backfill.id == backfill_id)) is not None

    def unfinished_runs(self, dag_id: str, backfill_id: int) -> int:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import func, select

        with create_session() as session:
            return int(session.scalar(
                select(func.count()).select_from(DagRun)
                .where(DagRun.dag_id == dag_id, DagRun.backfill_id == backfill_id, DagRun.state.not_in(TERMINAL_STATES))
            ) or 0)

    def failed_tasks(self, dag_id: str, run_id: str) -> list[FailedTask]:
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(TaskInstance.task_id, TaskInstance.try_number, TaskInstance.map_index)
                .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.state == "failed")
            ).all()
        folder = _base_log_folder()
        return [FailedTask(r.task_id, int(r.try_number or 1),
                           str(task_log_path(folder, dag_id, run_id, r.task_id, int(r.try_number or 1), r.map_index)))
                for r in rows]


# ------------------------------------------------------------------------------------------- driving


def _print(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def wait_for_open_backfill(driver: BackfillDriver, backfill_id: int, request: BackfillRequest, *, timeout: float,
                           poll: float, out: TextIO, sleep: Callable[[float], None] = time.sleep) -> None:
    """Airflow closes a finished backfill on a ~30 s timer; wait for that, but never for unfinished runs."""
    unfinished = driver.unfinished_runs(request.dag_id, backfill_id)
    if unfinished:
        raise BackfillError(
            f"backfill #{backfill_id} of {request.dag_id} still has {unfinished} unfinished runs; "
            f"wait for it, or cancel it (PUT /api/v2/backfills/{backfill_id}/cancel) before starting another"
        )
    _print(out, f"waiting for Airflow to close the previous backfill #{backfill_id} (its runs are finished)...")
    deadline = time.monotonic() + timeout
    while not driver.is_complete(backfill_id):
        if time.monotonic() > deadline:
            raise BackfillError(f"backfill #{backfill_id} of {request.dag_id} was not closed within {timeout:.0f} s; "
                                "is the scheduler running?")
        sleep(poll)


def run_backfill(
    driver: BackfillDriver,
    request: BackfillRequest,
    *,
    out: TextIO = sys.stdout,
    poll_seconds: float = 5.0,
    timeout_seconds: float | None = None,
    wait_for_dag_seconds: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillOutcome:
    """Create the backfill and follow it until every run has finished (or `timeout_seconds`)."""
    driver.check_ready(request.dag_id, wait_for_dag_seconds)
    if driver.unpause(request.dag_id):
        _print(out, f"unpaused {request.dag_id} (backfill runs of a paused DAG stay queued; it now also runs weekly)")
    planned = driver.planned_weeks(request)
    span = f"{request.first_day:%Y-%m-%d} .. {request.last_day:%Y-%m-%d}"
    if not planned:
        _print(out, f"nothing to run: every week starting {span} already ran "
                    f"(reprocess behavior {request.reprocess_behavior!r}; use 'failed' or 'completed' to rerun)")
        return BackfillOutcome(backfill_id=None, planned=[])
    _print(out, f"{len(planned)} weeks to run, {planned[0]:%Y-%m-%d} .. {planned[-1]:%Y-%m-%d} "
                f"(max {request.max_active_runs} at once), via {driver.description}")
    try:
        backfill_id = driver.create(request)
    except BackfillAlreadyRunning as error:
        if error.backfill_id is None:
            raise
        wait_for_open_backfill(driver, error.backfill_id, request, timeout=120.0, poll=min(poll_seconds, 5.0),
                               out=out, sleep=sleep)
        backfill_id = driver.create(request)
    _print(out, f"backfill #{backfill_id} created")
    started = clock()
    shown: tuple[int, int, int] | None = None
    shown_at = started
    while True:
        runs = driver.runs(request, backfill_id, planned)
        progress = progress_of(runs, len(planned), clock() - started)
        key = (progress.succeeded, progress.failed, progress.running)
        if key != shown or clock() - shown_at >= 30:
            _print(out, progress.line())
            shown, shown_at = key, clock()
        if len(runs) >= len(planned) and all(r.done for r in runs):
            break
        if timeout_seconds is not None and clock() - started > timeout_seconds:
            raise BackfillError(f"backfill #{backfill_id}: {progress.done}/{progress.total} weeks done after "
                                f"{_clock(timeout_seconds)}; it keeps running in Airflow")
        sleep(poll_seconds)
    outcome = BackfillOutcome(backfill_id=backfill_id, planned=list(planned), runs=runs, elapsed=clock() - started)
    for run in outcome.failed_runs:
        outcome.failures[run.run_id] = driver.failed_tasks(request.dag_id, run.run_id)
    return outcome


def summary_lines(outcome: BackfillOutcome) -> list[str]:
    ok = sum(r.state == "success" for r in outcome.runs)
    lines = [f"backfill #{outcome.backfill_id}: {ok}/{len(outcome.runs)} weeks succeeded in {_clock(outcome.elapsed)}"]
    if outcome.failed_runs:
        lines.append(f"{len(outcome.failed_runs)} failed:")
        for run in outcome.failed_runs:
            lines.append(f"  week {run.week}  run {run.run_id}")
            tasks = outcome.failures.get(run.run_id) or []
            if not tasks:
                lines.append("    (no failed task: the run itself failed, e.g. it was cancelled or timed out)")
            for task in tasks:
                lines.append(f"    task {task.task_id} (try {task.try_number}) log: {task.log_path}")
                if task.log_url:
                    lines.append(f"      {task.log_url}")
    return lines


# ------------------------------------------------------------------------------------------- command


def _username() -> str:
    """PV_AIRFLOW_USERNAME, else the first SimpleAuthManager user ("name:role,..."), else admin."""
    if os.environ.get("PV_AIRFLOW_USERNAME"):
        return os.environ["PV_AIRFLOW_USERNAME"]
    users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "")
    first = users.split(",")[0].split(":")[0].strip()
    return first or DEFAULT_USERNAME


def _password(username: str) -> str | None:
    """PV_AIRFLOW_PASSWORD, else the SimpleAuthManager passwords file (set, or the generated one)."""
    if os.environ.get("PV_AIRFLOW_PASSWORD"):
        return os.environ["PV_AIRFLOW_PASSWORD"]
    candidates = [os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")]
    if os.environ.get("AIRFLOW_HOME"):
        candidates.append(str(Path(os.environ["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            try:
                passwords = json.loads(Path(candidate).read_text(encoding="utf-8"))
            except ValueError as error:
                raise BackfillError(f"{candidate} is not JSON like {{\"admin\": \"...\"}}: {error}") from error
            if username in passwords:
                return str(passwords[username])
    return None


def _api_answers(url: str) -> bool:
    import requests

    try:
        return requests.get(f"{url.rstrip('/')}/api/v2/version", timeout=2).status_code in (200, 401, 403)
    except requests.RequestException:
        return False


def choose_driver(api_url: str | None, *, force_cli: bool = False) -> BackfillDriver:
    """--api-url / PV_AIRFLOW_API_URL, else an api-server on the local default port, else the CLI."""
    if force_cli:
        return CliDriver()
    url = api_url or os.environ.get("PV_AIRFLOW_API_URL")
    if not url and _api_answers(DEFAULT_LOCAL_API_URL):
        url = DEFAULT_LOCAL_API_URL
    if url:
        username = _username()
        return RestDriver(url, username, _password(username))
    return CliDriver()


def _conf(args: argparse.Namespace) -> dict[str, Any] | None:
    conf: dict[str, Any] = {}
    if args.drug:
        conf["drug"] = args.drug
    if args.source:
        conf["source"] = args.source
    if args.refresh:
        conf["refresh"] = True
    return conf or None


def _command(args: argparse.Namespace) -> int:
    try:
        request = BackfillRequest(
            first_day=args.from_day, last_day=args.to_day, max_active_runs=args.max_active_runs,
            reprocess_behavior=args.reprocess_behavior, conf=_conf(args),
        )
        outcome = run_backfill(choose_driver(args.api_url, force_cli=args.cli), request, poll_seconds=args.poll_seconds,
                               timeout_seconds=args.timeout)
    except (BackfillError, ValueError) as error:
        print(f"pv backfill: {error}", file=sys.stderr)
        return EXIT_NOT_STARTED
    if outcome.backfill_id is not None:
        for line in summary_lines(outcome):
            print(line)
    return outcome.exit_code


def add_subparser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "backfill", help="rerun the weekly DAG over past weeks through Airflow's backfill",
        description="Run isotretinoin_weekly_signals for every week starting (Monday 06:00 UTC) from --from to --to "
                    "inclusive, through Airflow: the REST API of a running api-server, else the airflow CLI.",
    )
    parser.add_argument("--from", dest="from_day", type=parse_day, required=True, metavar="YYYY-MM-DD",
                        help="first day a week may start on")
    parser.add_argument("--to", dest="to_day", type=parse_day, required=True, metavar="YYYY-MM-DD",
                        help="last day a week may start on (inclusive)")
    parser.add_argument("--max-active-runs", type=int, default=4, help="weeks running at once (default 4)")
    parser.add_argument("--reprocess-behavior", choices=REPROCESS_BEHAVIORS, default="none",
                        help="weeks that already ran: skip them (none), rerun failed ones, or rerun all (completed)")
    parser.add_argument("--api-url", help="Airflow api-server, e.g. http://127.0.0.1:8080 (or PV_AIRFLOW_API_URL); "
                                          "credentials from PV_AIRFLOW_USERNAME / PV_AIRFLOW_PASSWORD")
    parser.add_argument("--cli", action="store_true",
                        help="use the airflow CLI against the metadata DB even when an api-server answers")
    parser.add_argument("--drug", help="Param drug for every run (default: the DAG's)")
    parser.add_argument("--source", choices=("sample", "openfda"), help="Param source for every run")
    parser.add_argument("--refresh", action="store_true", help="Param refresh: refetch raw data")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=None, help="give up following after this many seconds")
    parser.set_defaults(handler=_command)
    return parser
