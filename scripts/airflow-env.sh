# Source me: the project-local Airflow environment (SQLite metadata DB under .airflow/, our dags/).
PV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PV_ROOT/.airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PV_ROOT/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__UNIT_TEST_MODE=False
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}"
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=120
export GX_ANALYTICS_ENABLED=False
export PATH="$PV_ROOT/.venv/bin:$PATH"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"  # scipy fits: thread wake-ups cost more than the work on 2 cores
