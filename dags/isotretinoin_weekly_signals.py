"""
### Isotretinoin weekly adverse-event signal report

Every Monday 06:00 UTC this DAG reports on isotretinoin (Accutane, Absorica, Claravis, Amnesteem,
Myorisan, Zenatane, ...) adverse events for the week `[data_interval_start, data_interval_end)`:

extract -> validate raw -> normalize -> validate normalized -> compute signals -> assess claims ->
render report -> publish.

- **Reads** openFDA drug/event (live with `PV_SOURCE=openfda`) or the bundled synthetic sample (default).
- **Reports** statistics cumulated over every report received before the window's end, the reports new
  in the window, and the source's data version (`meta.last_updated`). openFDA refreshes quarterly, so
  most weeks have nothing new, and the report says so instead of calling it "no signal".
- **Writes** raw pages, staged Parquet, signals, claim verdicts, `report.html` + `summary.md` and the
  dashboard tables under `PV_DATA_DIR` (default `./var`), partitioned by the data interval.
- **Emits** the `isotretinoin_signal_outputs` Asset, which dashboards' DAGs can schedule on.

Each task is one call into `pv.stages`; tasks pass paths, never data frames.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

SIGNAL_OUTPUTS = Asset("isotretinoin_signal_outputs")
OPENFDA_POOL = "openfda_api"


def _settings(params: dict | None):
    """Settings from the environment, overridden by the run's Params (trigger form)."""
    from pv.settings import load_settings

    params = params or {}
    return load_settings().with_overrides(
        drug=params.get("drug") or None,
        source=params.get("source") or None,
        refresh=bool(params.get("refresh")) or None,
    )


def _failure_notifier():
    from pv.notify import failure_notifier

    return failure_notifier()


@dag(
    dag_id="isotretinoin_weekly_signals",
    schedule=CronDataIntervalTimetable("0 6 * * 1", timezone="UTC"),
    start_date=pendulum.datetime(2014, 1, 6, 6, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    doc_md=__doc__,
    tags=["pharmacovigilance", "isotretinoin", "openfda"],
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        # Task-level: Airflow 3.3 renders a DAG-level notifier against the serialized DAG, which fails.
        "on_failure_callback": _failure_notifier(),
    },
    params={
        "drug": Param("isotretinoin", type="string", description="Watched drug (an entry of pv/drugs.yaml)"),
        "source": Param(None, type=["null", "string"], enum=[None, "sample", "openfda"],
                        description="Override PV_SOURCE: 'sample' (bundled, offline) or 'openfda' (live API)"),
        "refresh": Param(False, type="boolean", description="Refetch raw data even if this window was fetched"),
    },
)
def isotretinoin_weekly_signals():
    @task(pool=OPENFDA_POOL)
    def extract(data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from pv import stages

        return stages.extract(_settings(params), data_interval_start, data_interval_end)

    @task
    def validate_raw(extracted: dict, data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from pv import stages

        return stages.validate_raw(_settings(params), data_interval_start, data_interval_end, extracted)

    @task
    def normalize(extracted: dict, raw_validation: dict, data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from pv import stages

        return stages.normalize(_settings(params), data_interval_start, data_interval_end, extracted)

    @task
    def validate_normalized(normalized: dict, data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from pv import stages

        return stages.validate_normalized(_settings(params), data_interval_start, data_interval_end, normalized)

    @task(pool=OPENFDA_POOL)  # trend and subgroup backgrounds are openFDA count requests
    def compute_signals(normalized: dict, normalized_validation: dict, data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from pv import stages

        return stages.compute_signals(_settings(params), data_interval_start, data_interval_end, normalized)

    @task
    def assess_claims(normalized: dict, signals: dict, data_interval_start=None, data_interval_end=None, params=None) -> dict:
        from pv import stages

        return stages.assess(_settings(params), data_interval_start, data_interval_end, normalized, signals)

    @task
    def render_report(
        extracted: dict, raw_validation: dict, normalized: dict, normalized_validation: dict, signals: dict, claims: dict,
        data_interval_start=None, data_interval_end=None, params=None,
    ) -> dict:
        from pv import stages

        return stages.render_report(
            _settings(params), data_interval_start, data_interval_end, extracted, raw_validation, normalized,
            normalized_validation, signals, claims, generated_at=pendulum.now("UTC"),
        )

    @task(outlets=[SIGNAL_OUTPUTS])
    def publish(
        extracted: dict, normalized: dict, signals: dict, claims: dict, report: dict,
        data_interval_start=None, data_interval_end=None, params=None, run_id=None, outlet_events=None,
    ) -> dict:
        from pv import stages

        outputs = {"extract": extracted, "normalize": normalized, "signals": signals, "claims": claims, "report": report}
        published = stages.publish(_settings(params), data_interval_start, data_interval_end, run_id, outputs)
        outlet_events[SIGNAL_OUTPUTS].extra = published
        return published

    extracted = extract()
    raw_validation = validate_raw(extracted)
    normalized = normalize(extracted, raw_validation)
    normalized_validation = validate_normalized(normalized)
    signals = compute_signals(normalized, normalized_validation)
    claims = assess_claims(normalized, signals)
    report = render_report(extracted, raw_validation, normalized, normalized_validation, signals, claims)
    publish(extracted, normalized, signals, claims, report)


isotretinoin_weekly_signals()
