"""`pv`: the analysts' command line (weekly run, signal scoring, backfills)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime


def _parse_day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "T" not in text else datetime.fromisoformat(text)


def _weekly(args: argparse.Namespace) -> int:
    from pv.airflow_runner import prepare_metadata_db, run_week
    from pv.settings import load_settings
    from pv.storage import partition_dir
    from pv.weeks import WEEK, most_recent_complete_week, week_end_on_or_before

    if args.week_ending:
        end = week_end_on_or_before(_parse_day(args.week_ending).replace(hour=6))
        start = end - WEEK
    else:
        start, end = most_recent_complete_week()
    settings = load_settings()
    print(f"==> isotretinoin_weekly_signals for [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC, source={settings.source}")
    prepare_metadata_db()
    dag_run = run_week(start, end)
    state = str(getattr(dag_run, "state", "unknown"))
    report = partition_dir(settings.data_dir, "reports", settings.drug, start, end) / "report.html"
    if not state.endswith("success"):
        print(f"DAG run ended in state {state}; logs under $AIRFLOW_HOME/logs", file=sys.stderr)
        return 1
    print(f"report:   {report}")
    print(f"summary:  {report.with_name('summary.md')}")
    print(f"results:  {partition_dir(settings.data_dir, 'signals', settings.drug, start, end) / 'signals.csv'}")
    print(f"warehouse: {settings.data_dir / 'warehouse.duckdb'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pv", description="Isotretinoin pharmacovigilance pipeline")
    commands = parser.add_subparsers(dest="command", required=True)
    weekly = commands.add_parser("weekly", help="run the weekly DAG for the most recent complete week")
    weekly.add_argument("--week-ending", help="run the week ending on this Monday (YYYY-MM-DD) instead")
    weekly.set_defaults(handler=_weekly)
    from pv.backfill import add_subparser as add_backfill

    add_backfill(commands)
    try:
        from signals.cli import add_subparser as add_signals
    except ImportError:  # pragma: no cover - the signals package is part of the project
        add_signals = None
    if add_signals is not None:
        add_signals(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        from signals.cli import run as run_signals

        return run_signals(args)
    return int(handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
