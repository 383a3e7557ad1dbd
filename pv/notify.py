"""One alert target for failed runs and new signals: a log line, an alerts file, and email when set.

The alerts file (`<data_dir>/alerts/alerts.jsonl`) always gets the line, so an alert is never lost to
a missing SMTP server; email goes through Airflow's SMTP provider when `PV_ALERT_EMAIL` is set
(connection `smtp_default`, or `PV_SMTP_CONN_ID`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseNotifier

from pv.settings import Settings, load_settings

log = logging.getLogger("pv.alerts")


def alerts_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / "alerts" / "alerts.jsonl"


def send_alert(settings: Settings, kind: str, subject: str, body: str, details: dict[str, Any] | None = None) -> dict:
    """Record an alert line (append, locked: concurrent runs may alert at once) and email it if configured."""
    alert = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": kind,
        "subject": subject,
        "body": body,
        "details": details or {},
    }
    path = alerts_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(alert, sort_keys=True, default=str) + "\n")
    log.warning("ALERT [%s] %s", kind, subject)
    recipient = os.environ.get("PV_ALERT_EMAIL")
    if recipient:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=os.environ.get("PV_SMTP_CONN_ID", "smtp_default")) as hook:
            hook.send_email_smtp(to=recipient, subject=subject, html_content=f"<pre>{body}</pre>")
        alert["emailed_to"] = recipient
    return alert


class PipelineFailureNotifier(BaseNotifier):
    """Airflow notifier for a task that failed for good (retries spent): it fails its DAG run.

    Same target as the new-signal notifications.
    """

    def notify(self, context: Any) -> None:
        dag_run = context.get("dag_run")
        ti = context.get("ti") or context.get("task_instance")
        run_id = getattr(dag_run, "run_id", None) or context.get("run_id")
        dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
        task_id = getattr(ti, "task_id", None)
        reason = str(context.get("exception") or context.get("reason") or "")
        log_hint = f"logs: $AIRFLOW_HOME/logs/dag_id={dag_id}/run_id={run_id}/task_id={task_id}/"
        subject = f"[pv] run failed: {dag_id} {run_id} at task {task_id}"
        body = f"DAG {dag_id}, run {run_id}: task {task_id} failed. {reason}\n{log_hint}".strip()
        details = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "log_hint": log_hint}
        send_alert(load_settings(), "run_failed", subject, body, details)


def failure_notifier() -> PipelineFailureNotifier:
    return PipelineFailureNotifier()
