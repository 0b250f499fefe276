"""Local stand-ins for external services, so the pipeline runs on one machine without accounts.

Needs the ``local`` extra (fakesnow, uvicorn, cryptography). Nothing here is imported by the provider itself.
"""

from __future__ import annotations

from airflow_provider_snowstorm.local.seed import USAGE_TABLE, USAGE_VIEW_COLUMN_TYPES, seed_usage
from airflow_provider_snowstorm.local.snowflake import (
    EmulatorError,
    EmulatorHandle,
    airflow_connection_dict,
    airflow_connection_json,
    airflow_environment,
    client_environment,
    emulator_status,
    resolve_state_dir,
    running_emulator,
    shell_exports,
    start_emulator,
    stop_emulator,
)

__all__ = [
    "USAGE_TABLE",
    "USAGE_VIEW_COLUMN_TYPES",
    "EmulatorError",
    "EmulatorHandle",
    "airflow_connection_dict",
    "airflow_connection_json",
    "airflow_environment",
    "client_environment",
    "emulator_status",
    "resolve_state_dir",
    "running_emulator",
    "seed_usage",
    "shell_exports",
    "start_emulator",
    "stop_emulator",
]
