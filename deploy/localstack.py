"""A real Airflow deployment on one machine without Docker: PostgreSQL, Redis and Airflow as processes.

The same topology as docker-compose.yml (metadata DB in PostgreSQL, api-server, scheduler,
dag-processor, and LocalExecutor or CeleryExecutor with Redis and a worker), built from Debian's
postgresql/redis-server packages and the project's .venv. The integration test and the backfill
benchmark use it; developers can too:

    .venv/bin/python deploy/localstack.py up [--executor CeleryExecutor] [--root DIR]   # Ctrl-C stops it

Every server listens on 127.0.0.1 on a free port; every process runs in its own session (setsid) and is
stopped as a process group. Facts this relies on: docs/deployment.md, "Running without Docker".
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DAG_ID = "isotretinoin_weekly_signals"
OPENFDA_POOL_SLOTS = 4
EXECUTORS = ("LocalExecutor", "CeleryExecutor")


class StackError(RuntimeError):
    """A component would not start; the message names it and its log file."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# ---------------------------------------------------------------------------------------- binaries


def postgres_bin_dir() -> Path | None:
    """Debian's /usr/lib/postgresql/<major>/bin (highest major), else initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def redis_server_bin() -> str | None:
    return shutil.which("redis-server")


def missing_binaries() -> list[str]:
    """What `apt-get install postgresql redis-server` would provide and is not here."""
    missing = []
    if postgres_bin_dir() is None:
        missing.append("postgresql (initdb, pg_ctl)")
    if redis_server_bin() is None:
        missing.append("redis-server")
    if shutil.which("runuser") is None and os.geteuid() == 0:
        missing.append("runuser (util-linux)")
    return missing


# ---------------------------------------------------------------------------------------- processes


@dataclass
class Component:
    """A long-running process in its own session; stop() ends its whole process group."""

    name: str
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def start_component(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Component:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name.replace(' ', '-')}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=str(PROJECT_ROOT))
    return Component(name, process, log_path)


def _as_postgres_user(argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


# ---------------------------------------------------------------------------------------- postgres


@dataclass
class LocalPostgres:
    root: Path
    port: int = field(default_factory=free_port)
    user: str = "airflow"
    database: str = "airflow"
    bin_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def celery_result_backend(self) -> str:
        return f"db+postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _bin(self, name: str) -> str:
        bin_dir = self.bin_dir or postgres_bin_dir()
        if bin_dir is None:
            raise StackError("PostgreSQL is not installed: apt-get install postgresql")
        return str(bin_dir / name)

    def start(self) -> LocalPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        initdb = subprocess.run(
            _as_postgres_user([self._bin("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust",
                               "-E", "UTF8", "--no-sync", "--no-instructions"]),
            capture_output=True, text=True,
        )
        if initdb.returncode != 0:
            raise StackError(f"initdb -D {self.data_dir} failed: {initdb.stderr.strip()[-800:]}")
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        started = subprocess.run(
            _as_postgres_user([self._bin("pg_ctl"), "-D", str(self.data_dir), "-o", options, "-l", str(self.log_path),
                               "-w", "-t", "60", "start"]),
            capture_output=True, text=True,
        )
        if started.returncode != 0:
            raise StackError(f"pg_ctl start on port {self.port} failed: {started.stderr.strip()}\n{_tail(self.log_path)}")
        created = subprocess.run(
            [self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, self.database],
            capture_output=True, text=True,
        )
        if created.returncode != 0:
            raise StackError(f"createdb {self.database} on port {self.port} failed: {created.stderr.strip()}")
        return self

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            subprocess.run(_as_postgres_user([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                                              "stop"]), capture_output=True, text=True)


# ---------------------------------------------------------------------------------------- redis


@dataclass
class LocalRedis:
    root: Path
    port: int = field(default_factory=free_port)
    component: Component | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        server = redis_server_bin()
        if server is None:
            raise StackError("redis-server is not installed: apt-get install redis-server")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.root), "--daemonize", "no"]
        self.component = start_component("redis", argv, dict(os.environ), self.root)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return self
            if not self.component.alive():
                break
            time.sleep(0.2)
        raise StackError(f"redis-server on port {self.port} did not answer PING:\n{_tail(self.component.log_path)}")

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop()


# ---------------------------------------------------------------------------------------- airflow


@dataclass
class AirflowStack:
    """Airflow 3 components against a LocalPostgres (and LocalRedis for CeleryExecutor)."""

    root: Path
    postgres: LocalPostgres
    redis: LocalRedis | None = None
    executor: str = "LocalExecutor"
    parallelism: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(64))
    components: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.executor == "CeleryExecutor" and self.redis is None:
            raise ValueError("CeleryExecutor needs a LocalRedis broker")

    @property
    def home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def airflow_bin(self) -> str:
        return str(Path(sys.executable).with_name("airflow"))

    @property
    def log_dir(self) -> Path:
        return self.root / "component-logs"

    def env(self) -> dict[str, str]:
        """The environment every component (and `airflow` / `pv` against this stack) runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        passwords = self.home / "passwords.json"
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.postgres.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "GX_ANALYTICS_ENABLED": "False",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        if self.executor == "CeleryExecutor":
            assert self.redis is not None
            env.update({
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": self.postgres.celery_result_backend,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.parallelism),
            })
        env.update(self.extra_env)
        return env

    def airflow(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([self.airflow_bin, *args], env=self.env(), capture_output=True, text=True,
                              timeout=timeout, cwd=str(PROJECT_ROOT))
        if check and done.returncode != 0:
            raise StackError(f"`airflow {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-1500:]}")
        return done

    def initialize(self) -> None:
        """What the compose file's airflow-init does: migrate, the openFDA pool, the credentials."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps({self.username: self.password}), encoding="utf-8")
        self.airflow("db", "migrate")
        self.airflow("pools", "set", "openfda_api", str(OPENFDA_POOL_SLOTS),
                     "openFDA API requests: concurrent runs share the extractor's rate limiter")

    def start(self) -> AirflowStack:
        self.initialize()
        argv = {
            "api-server": [self.airflow_bin, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port)],
            "scheduler": [self.airflow_bin, "scheduler", "--skip-serve-logs"],
            "dag-processor": [self.airflow_bin, "dag-processor"],
        }
        if self.executor == "CeleryExecutor":
            argv["celery-worker"] = [self.airflow_bin, "celery", "worker", "--skip-serve-logs",
                                     "--concurrency", str(self.parallelism)]
        for name, command in argv.items():
            self.components.append(start_component(name, command, self.env(), self.log_dir))
        return self

    def _get(self, path: str, token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(f"{self.api_url}{path}")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, {}

    def token(self) -> str:
        body = json.dumps({"username": self.username, "password": self.password}).encode()
        request = urllib.request.Request(f"{self.api_url}/auth/token", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())["access_token"]

    def check_alive(self) -> None:
        for component in self.components:
            if not component.alive():
                raise StackError(f"{component.name} exited with {component.process.returncode}; "
                                 f"log {component.log_path}:\n{_tail(component.log_path)}")

    def wait_ready(self, timeout: float = 180.0, dag_id: str = DAG_ID) -> None:
        """api-server answering, scheduler healthy, and the DAG parsed into the metadata DB."""
        deadline = time.monotonic() + timeout
        state = "api-server not answering"
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                status, health = self._get("/api/v2/monitor/health")
                if status == 200 and health.get("scheduler", {}).get("status") == "healthy":
                    state = f"DAG {dag_id} not parsed yet"
                    status, dag = self._get(f"/api/v2/dags/{dag_id}", self.token())
                    if status == 200:
                        return
                elif status == 200:
                    state = f"scheduler {health.get('scheduler', {}).get('status')}"
            except (OSError, urllib.error.URLError) as error:
                state = f"api-server not answering ({error})"
            time.sleep(1)
        logs = "\n".join(f"--- {c.name} ({c.log_path})\n{_tail(c.log_path, 15)}" for c in self.components)
        raise StackError(f"Airflow not ready after {timeout:.0f} s: {state}\n{logs}")

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()
        self.components.clear()


# ---------------------------------------------------------------------------------------- all of it


@dataclass
class LocalDeployment:
    """PostgreSQL + Redis + Airflow under one root directory, stopped in reverse order."""

    root: Path
    executor: str = "LocalExecutor"
    extra_env: dict[str, str] = field(default_factory=dict)
    parallelism: int = 4
    postgres: LocalPostgres | None = None
    redis: LocalRedis | None = None
    airflow: AirflowStack | None = None

    def start(self, ready_timeout: float = 180.0) -> LocalDeployment:
        try:
            # Under /tmp, not self.root: the `postgres` user must be able to reach its data directory.
            self.postgres = LocalPostgres(Path(tempfile.mkdtemp(prefix="pv-postgres-"))).start()
            self.redis = LocalRedis(self.root / "redis").start()
            self.airflow = AirflowStack(self.root / "airflow", self.postgres, self.redis, executor=self.executor,
                                        parallelism=self.parallelism, extra_env=dict(self.extra_env)).start()
            self.airflow.wait_ready(ready_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        errors = []
        for part in (self.airflow, self.redis, self.postgres):
            if part is None:
                continue
            try:
                part.stop()
            except Exception as error:  # noqa: BLE001 - keep stopping the rest, report at the end
                errors.append(f"{type(part).__name__}: {error}")
        if self.postgres is not None:
            shutil.rmtree(self.postgres.root, ignore_errors=True)
        if errors:
            raise StackError("stopping the local deployment: " + "; ".join(errors))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start PostgreSQL, Redis and Airflow; Ctrl-C stops everything")
    up.add_argument("--executor", choices=EXECUTORS, default="LocalExecutor")
    up.add_argument("--root", type=Path, help="working directory (default: a new one under var/localstack)")
    args = parser.parse_args(argv)
    missing = missing_binaries()
    if missing:
        print(f"missing: {', '.join(missing)} (apt-get install -y --no-install-recommends postgresql redis-server)",
              file=sys.stderr)
        return 2
    root = args.root or PROJECT_ROOT / "var" / "localstack" / time.strftime("%Y%m%dT%H%M%S")
    deployment = LocalDeployment(root.resolve(), executor=args.executor)
    deployment.start()
    assert deployment.airflow is not None
    stack = deployment.airflow
    print(f"Airflow {args.executor} at {stack.api_url} (user {stack.username}, password {stack.password})")
    print(f"  export PV_AIRFLOW_API_URL={stack.api_url} PV_AIRFLOW_USERNAME={stack.username} "
          f"PV_AIRFLOW_PASSWORD={stack.password}")
    print(f"  logs: {stack.log_dir}  task logs: {stack.home / 'logs'}")
    try:
        while True:
            time.sleep(5)
            stack.check_alive()
    except KeyboardInterrupt:
        pass
    finally:
        deployment.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
