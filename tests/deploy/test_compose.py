"""Static checks of the deployment files: docker-compose.yml, .env.example, deploy/Dockerfile, Helm values.

PyYAML (anchors and `<<` merges resolved) always runs; `docker-compose config` (Debian's docker-compose
package, or the `docker compose` plugin) runs when installed. No Docker engine is needed for either.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
HELM_VALUES = ROOT / "deploy" / "helm-values.yaml"
INIT_SCRIPT = ROOT / "deploy" / "init-airflow.sh"

AIRFLOW_SERVICES = {
    "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
    "airflow-init",
}
LONG_RUNNING = {"postgres", "redis"} | AIRFLOW_SERVICES - {"airflow-init"}
VAR_REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f".env.example line {number} is not NAME=value: {line!r}"
        name, value = line.split("=", 1)
        values[name.strip()] = value
    return values


def _airflow_image_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    image = services["airflow-apiserver"]["image"]
    return {name: spec for name, spec in services.items() if spec.get("image") == image}


def _environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# ------------------------------------------------------------------------------------------ services


def test_every_service_of_the_deployment_is_defined(services: dict[str, dict[str, Any]]) -> None:
    missing = ({"postgres", "redis"} | AIRFLOW_SERVICES) - set(services)
    assert not missing, f"docker-compose.yml lacks services {sorted(missing)}"
    assert services["postgres"]["image"].startswith("postgres:16"), services["postgres"]["image"]
    assert services["redis"]["image"].startswith("redis:")


def test_airflow_services_share_the_project_image_built_from_deploy_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    airflow = _airflow_image_services(services)
    assert set(airflow) >= AIRFLOW_SERVICES, f"services not on the common image: {AIRFLOW_SERVICES - set(airflow)}"
    for name in AIRFLOW_SERVICES:
        build = services[name].get("build")
        assert build == {"context": ".", "dockerfile": "deploy/Dockerfile"}, f"{name}: build is {build!r}"


def test_executor_settings_are_consistent_on_every_airflow_service(services: dict[str, dict[str, Any]]) -> None:
    secrets_seen: dict[str, set[str]] = {}
    for name, spec in _airflow_image_services(services).items():
        env = _environment(spec)
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", f"{name}: executor {env.get('AIRFLOW__CORE__EXECUTOR')!r}"
        broker = env.get("AIRFLOW__CELERY__BROKER_URL", "")
        assert re.match(r"redis://[^@]*@redis:6379/\d+$", broker), f"{name}: broker {broker!r} is not the redis service"
        backend = env.get("AIRFLOW__CELERY__RESULT_BACKEND", "")
        assert re.match(r"db\+postgresql://airflow:[^@]+@postgres/airflow$", backend), f"{name}: result backend {backend!r}"
        conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
        assert re.match(r"postgresql\+psycopg2://airflow:[^@]+@postgres/airflow$", conn), f"{name}: metadata DB {conn!r}"
        assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == "http://airflow-apiserver:8080/execution/", name
        for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY"):
            assert env.get(key), f"{name}: {key} is not set"
            secrets_seen.setdefault(key, set()).add(env[key])
        assert env.get("PV_DATA_DIR") == "/opt/airflow/data", f"{name}: PV_DATA_DIR {env.get('PV_DATA_DIR')!r}"
    for key, values in secrets_seen.items():
        assert len(values) == 1, f"{key} differs between Airflow services: tasks would fail to authenticate"


def test_result_backend_and_metadata_db_use_the_postgres_service_credentials(services: dict[str, dict[str, Any]]) -> None:
    postgres_env = _environment(services["postgres"])
    conn = _environment(services["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert f"airflow:{postgres_env['POSTGRES_PASSWORD']}@" in conn
    assert postgres_env["POSTGRES_USER"] == "airflow" and postgres_env["POSTGRES_DB"] == "airflow"


def test_long_running_services_have_health_checks_and_restart(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck", {})
        assert check.get("test"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "always", f"{name} does not restart"


def test_airflow_services_wait_for_healthy_backends_and_init(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        for backend in ("postgres", "redis"):
            assert depends[backend]["condition"] == "service_healthy", f"{name} does not wait for healthy {backend}"
        if name != "airflow-init":
            assert depends["airflow-init"]["condition"] == "service_completed_successfully", name


def test_worker_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    worker = services["airflow-worker"]
    assert worker["command"] == "celery worker"
    assert "container_name" not in worker, "a fixed container_name prevents --scale airflow-worker=N"
    assert not worker.get("ports"), "host ports prevent --scale airflow-worker=N"


def test_init_migrates_and_creates_pool_and_connection(services: dict[str, dict[str, Any]]) -> None:
    init = services["airflow-init"]
    assert init["command"] == ["/opt/pv/deploy/init-airflow.sh"]
    script = INIT_SCRIPT.read_text(encoding="utf-8")
    assert "airflow db migrate" in script
    dag_source = (ROOT / "dags" / "isotretinoin_weekly_signals.py").read_text(encoding="utf-8")
    pool = re.search(r'OPENFDA_POOL\s*=\s*"([^"]+)"', dag_source)
    assert pool, "the DAG no longer names its openFDA pool in OPENFDA_POOL"
    assert f"airflow pools set {pool.group(1)} " in script, f"init does not create pool {pool.group(1)}"
    assert "airflow connections add openfda_default" in script
    env = _environment(init)
    for name in ("OPENFDA_API_KEY", "PV_OPENFDA_POOL_SLOTS", "AIRFLOW_ADMIN_USERNAME", "AIRFLOW_ADMIN_PASSWORD"):
        assert name in env, f"airflow-init lacks {name}"
    for variable in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", script):
        assert variable in env or variable in {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "PV_DATA_DIR"}, (
            f"deploy/init-airflow.sh reads ${{{variable}}}, which airflow-init does not set"
        )


def test_optional_dashboard_is_behind_a_profile(services: dict[str, dict[str, Any]]) -> None:
    assert services["dashboard"]["profiles"] == ["dashboard"]
    mounts = services["dashboard"]["volumes"]
    assert "pv-data:/opt/airflow/data:ro" in mounts, "the warehouse views hold absolute /opt/airflow/data paths"


# ------------------------------------------------------------------------------------------ volumes, env


def test_every_volume_used_is_defined(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    used: set[str] = set()
    for name, spec in services.items():
        for mount in spec.get("volumes") or []:
            source = mount.split(":", 1)[0] if isinstance(mount, str) else mount.get("source", "")
            if source.startswith((".", "/", "$")):
                path = ROOT / source if not source.startswith("/") else Path(source)
                assert path.exists(), f"{name}: bind mount source {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source!r} is not declared under volumes:"
                used.add(source)
    assert declared == used, f"declared but unused volumes: {sorted(declared - used)}"


def test_the_data_and_logs_volumes_are_shared_by_every_airflow_service(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in _airflow_image_services(services).items():
        mounts = spec.get("volumes") or []
        for needed in ("pv-data:/opt/airflow/data", "airflow-logs:/opt/airflow/logs"):
            assert needed in mounts, f"{name} does not mount {needed}"


def test_every_variable_referenced_is_in_env_example(env_example: dict[str, str]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    referenced = {match.group(1) for match in VAR_REFERENCE.finditer(text)}
    missing = referenced - set(env_example)
    assert not missing, f"docker-compose.yml uses variables missing from .env.example: {sorted(missing)}"
    unused = set(env_example) - referenced
    assert not unused, f".env.example defines variables docker-compose.yml never uses: {sorted(unused)}"


def test_secrets_are_required_and_have_no_real_values(env_example: dict[str, str]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for match in VAR_REFERENCE.finditer(text):
        name, operator = match.group(1), match.group(2)
        if re.search(r"PASSWORD|SECRET|FERNET", name):
            assert operator == ":?", f"${{{name}}} must be required (${{{name}:?...}}), not defaulted"
    for name, value in env_example.items():
        if re.search(r"PASSWORD|SECRET|FERNET", name):
            assert value.startswith("change-me"), f".env.example holds a real-looking {name}"
        if name.endswith("_API_KEY") or name == "AIRFLOW_CONN_SMTP_DEFAULT":
            assert value == "", f".env.example must not hold a real {name}"


def test_dot_env_is_git_ignored() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert ".env" in ignored, ".env holds secrets: it must be in .gitignore"


# ------------------------------------------------------------------------------------------ images


def _dockerfiles(services: dict[str, dict[str, Any]]) -> dict[Path, Path]:
    """Dockerfile -> build context for every service that builds."""
    found = {}
    for spec in services.values():
        build = spec.get("build")
        if not build:
            continue
        context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
        dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
        found[dockerfile.resolve()] = context.resolve()
    return found


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            rows.append((keyword.upper(), rest.strip()))
    return rows


def _ignored(context: Path, dockerfile: Path) -> list[str]:
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.exists():
            return [p.strip() for p in candidate.read_text(encoding="utf-8").splitlines()
                    if p.strip() and not p.startswith("#")]
    return []


def test_images_build_from_files_that_exist(services: dict[str, dict[str, Any]]) -> None:
    dockerfiles = _dockerfiles(services)
    assert ROOT / "deploy" / "Dockerfile" in dockerfiles
    for dockerfile, context in dockerfiles.items():
        assert dockerfile.exists(), f"{dockerfile} does not exist"
        ignored = _ignored(context, dockerfile)
        for keyword, rest in _instructions(dockerfile):
            if keyword not in ("COPY", "ADD"):
                continue
            parts = [p for p in rest.split() if not p.startswith("--")]
            if re.search(r"--from[= ]", rest):
                continue
            for source in parts[:-1]:
                assert (context / source).exists(), f"{dockerfile.relative_to(ROOT)}: COPY source {source} missing"
                top = Path(source).parts[0]
                assert top not in ignored, f"{dockerfile.relative_to(ROOT)}: {source} is excluded by dockerignore"


def test_project_image_is_the_official_airflow_image_with_the_locked_dependencies() -> None:
    rows = _instructions(ROOT / "deploy" / "Dockerfile")
    assert rows[0] == ("FROM", "apache/airflow:3.3.2-python3.11")
    copies = " ".join(rest for keyword, rest in rows if keyword == "COPY")
    assert "requirements.lock" in copies and "dags" in copies
    for package in ("pv", "extractors", "normalization", "signals", "claims", "reports", "publish", "expectations"):
        assert f" {package} /opt/pv/{package}" in f" {copies}", f"the image lacks package {package}"
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines()
    for pin in ("apache-airflow==3.3.2", "apache-airflow-providers-celery==", "apache-airflow-providers-postgres==",
                "celery==5.6.3", "psycopg2-binary=="):
        assert any(line.startswith(pin) for line in lock), f"requirements.lock lacks {pin}"


def test_every_package_the_project_declares_is_copied_into_the_image() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = re.search(r"include\s*=\s*\[([^\]]*)\]", pyproject)
    assert include
    packages = {p.strip().strip('"').rstrip("*") for p in include.group(1).split(",") if p.strip()}
    copies = " ".join(rest for keyword, rest in _instructions(ROOT / "deploy" / "Dockerfile") if keyword == "COPY")
    for package in sorted(packages):
        assert f" {package} /opt/pv/{package}" in f" {copies}", f"pyproject declares {package}; the image lacks it"


# ------------------------------------------------------------------------------------------ helm


def test_helm_values_use_the_kubernetes_executor_and_the_project_image() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text(encoding="utf-8"))
    assert values["executor"] == "KubernetesExecutor"
    assert values["airflowVersion"] == "3.3.2"
    assert values["config"]["core"]["dags_folder"] == "/opt/pv/dags"
    mounts = {m["mountPath"] for m in values["volumeMounts"]}
    assert "/opt/airflow/data" in mounts
    assert {e["name"]: e["value"] for e in values["env"]}["PV_DATA_DIR"] == "/opt/airflow/data"
    for key in ("jwtSecretName", "fernetKeySecretName"):
        assert values.get(key), f"helm values lack {key}"


# ------------------------------------------------------------------------------------------ docker-compose


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.parametrize("profile", [None, "dashboard", "cli"])
def test_docker_compose_config_accepts_the_file(profile: str | None) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (PyYAML checks above ran)")
    args = [*command, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE)]
    if profile:
        args += ["--profile", profile]
    done = subprocess.run([*args, "config", "-q"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"`{' '.join(args)} config` rejected the file: {done.stderr}"


def test_docker_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (PyYAML checks above ran)")
    empty = tmp_path / "empty.env"
    empty.write_text("# no secrets\n", encoding="utf-8")
    done = subprocess.run([*command, "--env-file", str(empty), "-f", str(COMPOSE), "config", "-q"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode != 0 and "POSTGRES_PASSWORD" in done.stderr + done.stdout
