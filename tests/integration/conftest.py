"""Real components for the integration tests: PostgreSQL and Redis from Debian packages, Airflow's
api-server, scheduler, dag-processor (and a Celery worker) as processes, and the local openFDA test server.

Everything listens on 127.0.0.1 on free ports and is stopped by the fixtures' finalizers (process groups,
`pg_ctl stop`). The tests are skipped, with the reason, only when postgresql or redis-server is absent.
PV_IT_EXECUTOR=LocalExecutor|CeleryExecutor picks the executor (default CeleryExecutor, as in compose).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy.localstack import LocalDeployment, missing_binaries  # noqa: E402

EXECUTOR = os.environ.get("PV_IT_EXECUTOR", "CeleryExecutor")


@pytest.fixture(scope="session")
def local_binaries() -> None:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"integration test needs {', '.join(missing)}: apt-get install -y --no-install-recommends "
                    "postgresql redis-server (.ci/run does)")


@pytest.fixture(scope="session")
def openfda_server():
    """The extractor's openFDA-compatible server over the bundled sample, in this process (request counter)."""
    from extractors.openfda.engine import Engine
    from extractors.openfda.testserver import OpenFDATestServer
    from pv.settings import BUNDLED_SAMPLE

    server = OpenFDATestServer(Engine.from_file(BUNDLED_SAMPLE)).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def deployment_root() -> Iterator[Path]:
    import shutil

    root = Path(tempfile.mkdtemp(prefix="pv-integration-"))
    yield root
    if not os.environ.get("PV_IT_KEEP"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def deployment(local_binaries, openfda_server, deployment_root: Path) -> Iterator[LocalDeployment]:
    """PostgreSQL + Redis + Airflow reading the test server; the data directory is deployment_root/data."""
    data_dir = deployment_root / "data"
    extra_env = {
        "PV_DATA_DIR": str(data_dir),
        "PV_SOURCE": "openfda",
        "OPENFDA_BASE_URL": openfda_server.url,
        "PV_RATE_LIMIT_PER_MINUTE": "60000",
        "PV_DAILY_QUOTA": "1000000",  # the test server is not openFDA: no anonymous 1,000/day quota
        "OPENFDA_API_KEY": "",
        "PV_ALERT_EMAIL": "",
    }
    deployment = LocalDeployment(deployment_root / "stack", executor=EXECUTOR, extra_env=extra_env)
    deployment.start(ready_timeout=240)
    yield deployment
    deployment.stop()
