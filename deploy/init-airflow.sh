#!/usr/bin/env bash
# airflow-init (docker-compose.yml) and the Helm chart's extra init: idempotent one-off setup.
#   1. the shared volumes exist and belong to the airflow user (AIRFLOW_UID:0)
#   2. SimpleAuthManager's passwords file from AIRFLOW_ADMIN_USERNAME / AIRFLOW_ADMIN_PASSWORD
#   3. airflow db migrate
#   4. pool `openfda_api` (PV_OPENFDA_POOL_SLOTS): at most that many extract tasks at once, all runs together
#   5. connection `openfda_default` (host OPENFDA_BASE_URL, password OPENFDA_API_KEY): the extractor's key
set -euo pipefail

: "${AIRFLOW_ADMIN_USERNAME:?set AIRFLOW_ADMIN_USERNAME in .env}"
: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in .env}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?the compose file sets it}"
uid="${AIRFLOW_UID:-50000}"
data_dir="${PV_DATA_DIR:-/opt/airflow/data}"
slots="${PV_OPENFDA_POOL_SLOTS:-4}"
base_url="${OPENFDA_BASE_URL:-https://api.fda.gov}"

echo "==> volumes: ${data_dir} /opt/airflow/logs $(dirname "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}")"
mkdir -p "${data_dir}" /opt/airflow/logs "$(dirname "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}")"

echo "==> SimpleAuthManager user ${AIRFLOW_ADMIN_USERNAME}"
python - <<'PY'
import json, os
path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
with open(path, "w", encoding="utf-8") as handle:
    json.dump({os.environ["AIRFLOW_ADMIN_USERNAME"]: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, handle)
os.chmod(path, 0o600)
PY

echo "==> airflow db migrate"
airflow db migrate

echo "==> pool openfda_api (${slots} slots)"
airflow pools set openfda_api "${slots}" \
  "openFDA API requests: concurrent runs share it and the extractor's rate limiter (PV_RATE_LIMIT_PER_MINUTE)"

echo "==> connection openfda_default (${base_url})"
airflow connections delete openfda_default >/dev/null 2>&1 || true
if [ -n "${OPENFDA_API_KEY:-}" ]; then
  airflow connections add openfda_default --conn-type http --conn-host "${base_url}" --conn-password "${OPENFDA_API_KEY}"
else
  echo "    (no OPENFDA_API_KEY: anonymous quota of 1,000 requests/day)"
  airflow connections add openfda_default --conn-type http --conn-host "${base_url}"
fi

if [ "$(id -u)" = "0" ]; then
  chown -R "${uid}:0" "${data_dir}" /opt/airflow/logs "$(dirname "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}")"
fi
echo "==> airflow-init done"
