#!/usr/bin/env bash
# A real multi-worker Airflow on this machine: CeleryExecutor, PostgreSQL (metadata), Redis (broker), two Celery
# workers on different queues, the example pipeline run end to end on it against the local Snowflake emulation.
# Everything it starts is stopped when it ends (also on failure or Ctrl-C). Options (see --help): --kill-worker, ...
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
bash scripts/postgres.sh install
bash scripts/redis.sh install
exec .venv/bin/python -m airflow_provider_snowstorm.local.cluster "$@"
