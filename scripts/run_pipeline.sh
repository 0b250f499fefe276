#!/usr/bin/env bash
# The main job on the embedded default: set up the environment, start the local Snowflake emulation, and run the
# four example DAGs end to end on real Airflow (SQLite), W&B offline, the report written to a file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m airflow_provider_snowstorm.local.pipeline "$@"
