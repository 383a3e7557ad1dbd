"""`pv backfill` without Airflow: the request it sends, progress, waiting, and the failed-run summary."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pv import backfill
from pv.backfill import (
    BackfillAlreadyRunning,
    BackfillError,
    BackfillRequest,
    FailedTask,
    Progress,
    RunStatus,
    run_backfill,
    summary_lines,
    task_log_path,
)

DAY = datetime(2025, 1, 6, tzinfo=UTC)


def week(n: int) -> datetime:
    return DAY + timedelta(days=7 * n, hours=6)


class FakeDriver:
    """Scripted Airflow: each poll moves the runs one step along `script`."""

    description = "fake Airflow"

    def __init__(self, planned: list[datetime], script: list[dict[datetime, str]], *, already_running: int | None = None,
                 unfinished: int = 0) -> None:
        self.planned, self.script = planned, script
        self.paused = True
        self.created: list[BackfillRequest] = []
        self.already_running = already_running
        self.unfinished = unfinished
        self.complete_after = 2
        self.polls = 0

    def check_ready(self, dag_id: str, wait_seconds: float) -> None:
        assert dag_id == backfill.DAG_ID

    def unpause(self, dag_id: str) -> bool:
        was, self.paused = self.paused, False
        return was

    def planned_weeks(self, request: BackfillRequest) -> list[datetime]:
        return list(self.planned)

    def create(self, request: BackfillRequest) -> int:
        if self.already_running is not None and not self.created:
            self.created.append(request)
            raise BackfillAlreadyRunning("There is already a running backfill", self.already_running)
        self.created.append(request)
        return 7

    def runs(self, request: BackfillRequest, backfill_id: int, planned: Sequence[datetime]) -> list[RunStatus]:
        states = self.script[min(self.polls, len(self.script) - 1)]
        self.polls += 1
        return [RunStatus(f"backfill__{d + timedelta(days=7):%Y-%m-%dT%H:%M:%S}+00:00", d, s) for d, s in states.items()]

    def is_complete(self, backfill_id: int) -> bool:
        self.complete_after -= 1
        return self.complete_after <= 0

    def unfinished_runs(self, dag_id: str, backfill_id: int) -> int:
        return self.unfinished

    def failed_tasks(self, dag_id: str, run_id: str) -> list[FailedTask]:
        return [FailedTask("extract", 3, str(task_log_path("/logs", dag_id, run_id, "extract", 3)))]


def _run(driver: FakeDriver, **kwargs) -> tuple[backfill.BackfillOutcome, str]:
    out = io.StringIO()
    ticks = iter(range(0, 10_000, 10))
    request = BackfillRequest(first_day=DAY, last_day=DAY + timedelta(days=14), **kwargs)
    outcome = run_backfill(driver, request, out=out, poll_seconds=0, clock=lambda: float(next(ticks)), sleep=lambda s: None)
    return outcome, out.getvalue()


def test_request_covers_every_week_starting_on_the_to_day() -> None:
    request = BackfillRequest(first_day=DAY, last_day=DAY + timedelta(days=49), max_active_runs=2,
                              reprocess_behavior="completed", conf={"drug": "isotretinoin"})
    assert request.to_date == datetime(2025, 2, 24, 23, 59, 59, tzinfo=UTC)
    body = request.api_body()
    assert body["from_date"] == "2025-01-06T00:00:00+00:00" and body["to_date"] == "2025-02-24T23:59:59+00:00"
    assert body["reprocess_behavior"] == "completed" and body["max_active_runs"] == 2
    assert body["dag_run_conf"] == {"drug": "isotretinoin"}
    args = request.cli_args()
    assert args[:4] == ["backfill", "create", "--dag-id", "isotretinoin_weekly_signals"]
    assert args[args.index("--to-date") + 1] == "2025-02-24T23:59:59+00:00"
    assert json.loads(args[args.index("--dag-run-conf") + 1]) == {"drug": "isotretinoin"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"reprocess_behavior": "all"}, "reprocess behavior"), ({"max_active_runs": 0}, "max active runs"),
     ({"last_day": DAY - timedelta(days=1)}, "before --from")],
)
def test_request_rejects_what_airflow_would(changes: dict, message: str) -> None:
    fields = {"first_day": DAY, "last_day": DAY + timedelta(days=7), **changes}
    with pytest.raises(ValueError, match=message):
        BackfillRequest(**fields)


def test_progress_line_has_counts_and_eta() -> None:
    progress = Progress(total=8, succeeded=2, failed=0, running=4, elapsed=60.0)
    assert progress.eta_seconds == pytest.approx(180.0)
    assert progress.line() == "[01:00] 2/8 weeks done (2 ok, 4 running), ETA 03:00"
    assert Progress(8, 0, 0, 4, 5.0).line().endswith("ETA --:--")
    assert "1 failed" in Progress(8, 1, 1, 0, 5.0).line()


def test_a_successful_backfill_unpauses_follows_and_exits_zero() -> None:
    planned = [week(0), week(1), week(2)]
    driver = FakeDriver(planned, [
        {week(0): "queued", week(1): "queued", week(2): "queued"},
        {week(0): "running", week(1): "running", week(2): "queued"},
        {week(0): "success", week(1): "running", week(2): "running"},
        {week(0): "success", week(1): "success", week(2): "success"},
    ])
    outcome, printed = _run(driver)
    assert outcome.exit_code == 0 and outcome.backfill_id == 7
    assert "unpaused isotretinoin_weekly_signals" in printed
    assert "3 weeks to run, 2025-01-06 .. 2025-01-20 (max 4 at once), via fake Airflow" in printed
    assert "3/3 weeks done (3 ok, 0 running)" in printed
    assert summary_lines(outcome)[0].startswith("backfill #7: 3/3 weeks succeeded in ")


def test_failed_runs_are_listed_with_their_task_logs_and_exit_one() -> None:
    planned = [week(0), week(1)]
    driver = FakeDriver(planned, [{week(0): "success", week(1): "failed"}])
    outcome, _ = _run(driver)
    assert outcome.exit_code == backfill.EXIT_RUN_FAILED
    lines = "\n".join(summary_lines(outcome))
    assert "1 failed:" in lines
    assert "week 2025-01-13 -> 2025-01-20  run backfill__2025-01-20T06:00:00+00:00" in lines
    assert ("task extract (try 3) log: /logs/dag_id=isotretinoin_weekly_signals/"
            "run_id=backfill__2025-01-20T06:00:00+00:00/task_id=extract/attempt=3.log") in lines


def test_nothing_to_run_creates_no_backfill() -> None:
    driver = FakeDriver([], [{}])
    outcome, printed = _run(driver)
    assert outcome.exit_code == 0 and outcome.backfill_id is None and not driver.created
    assert "nothing to run" in printed and "'completed'" in printed


def test_a_finished_but_unclosed_backfill_is_waited_for() -> None:
    driver = FakeDriver([week(0)], [{week(0): "success"}], already_running=3)
    outcome, printed = _run(driver, reprocess_behavior="completed")
    assert outcome.exit_code == 0 and len(driver.created) == 2
    assert "waiting for Airflow to close the previous backfill #3" in printed


def test_a_backfill_still_running_is_not_waited_for() -> None:
    driver = FakeDriver([week(0)], [{week(0): "success"}], already_running=3, unfinished=2)
    with pytest.raises(BackfillError, match=r"backfill #3 .* still has 2 unfinished runs.*cancel"):
        _run(driver)


def test_task_log_path_follows_airflows_default_template() -> None:
    path = task_log_path("/opt/airflow/logs", "d", "backfill__x", "extract", 2, map_index=4)
    assert path == Path("/opt/airflow/logs/dag_id=d/run_id=backfill__x/task_id=extract/map_index=4/attempt=2.log")


def test_password_comes_from_the_simple_auth_manager_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    passwords = tmp_path / "passwords.json"
    passwords.write_text(json.dumps({"admin": "s3cret"}), encoding="utf-8")
    monkeypatch.delenv("PV_AIRFLOW_PASSWORD", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(passwords))
    assert backfill._password("admin") == "s3cret"
    assert backfill._password("analyst") is None
    monkeypatch.setenv("PV_AIRFLOW_PASSWORD", "from-env")
    assert backfill._password("admin") == "from-env"


def test_command_line_errors_say_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    from pv.cli import main

    assert main(["backfill", "--from", "2025-01-06", "--to", "2025-01-01", "--api-url", "http://127.0.0.1:9"]) == 2
    assert "--to 2025-01-01 is before --from 2025-01-06" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["backfill", "--from", "06/01/2025", "--to", "2025-01-01"])
    assert "expected a day as YYYY-MM-DD, got '06/01/2025'" in capsys.readouterr().err


def test_an_unreachable_api_server_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    from pv.cli import main

    code = main(["backfill", "--from", "2025-01-06", "--to", "2025-01-13", "--api-url", "http://127.0.0.1:9"])
    assert code == backfill.EXIT_NOT_STARTED
    assert "127.0.0.1:9" in capsys.readouterr().err


def test_username_defaults_to_the_simple_auth_manager_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PV_AIRFLOW_USERNAME", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "analyst:admin,viewer:viewer")
    assert backfill._username() == "analyst"
    monkeypatch.delenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS")
    assert backfill._username() == "admin"
    monkeypatch.setenv("PV_AIRFLOW_USERNAME", "ops")
    assert backfill._username() == "ops"
