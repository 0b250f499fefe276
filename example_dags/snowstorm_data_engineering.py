"""Data engineering: copy organisation usage into the project's schema, nightly, with snake_case usage types.

``SNOWFLAKE.ORGANIZATION_USAGE`` is visible to administrators only and its values change for up to 72 hours (and until
month close), so each run re-loads a trailing window of days: it deletes the window's rows and inserts them again in
one transaction, which makes every run idempotent. Rows are summed per account, day, usage type and currency (a day
can have several balance-source and adjustment rows). Emits the raw-usage Asset for feature engineering.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, BaseHook, Param, task

from airflow_provider_snowstorm.example_pipeline import (
    DATABASE,
    DEFAULT_ARGS,
    RAW_USAGE_TABLE,
    SCHEMA,
    SNOWFLAKE_CONN_ID,
    SOURCE_TABLE,
    raw_usage,
    run_day,
)
from airflow_provider_snowstorm.pipeline_tasks import create_raw_usage_table_sql, replace_usage_window

CREATE_TABLES = [
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    f"CREATE SCHEMA IF NOT EXISTS {DATABASE}.{SCHEMA}",
    create_raw_usage_table_sql(RAW_USAGE_TABLE),
]

with DAG(
    dag_id="snowstorm_data_engineering",
    description="Nightly extract of ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY into the project schema",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "lookback_days": Param(
            35, type="integer", minimum=1, description="Days re-loaded before the run date."
        ),
        "full_refresh": Param(False, type="boolean", description="Re-load every day of the source."),
    },
    tags=["snowstorm", "data-engineering"],
    doc_md=__doc__,
) as dag:
    create_tables = SQLExecuteQueryOperator(
        task_id="create_tables", conn_id=SNOWFLAKE_CONN_ID, sql=CREATE_TABLES
    )

    @task(outlets=[raw_usage])
    def extract_usage(params: dict[str, Any], outlet_events: Any = None, **context: Any) -> dict[str, Any]:
        """Replace the window's rows with the source's, aggregated, in one transaction."""
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        day = run_day(context)  # manual runs with no logical date too
        if params["full_refresh"]:
            start, end = date(1970, 1, 1), date(9999, 12, 31)
        else:
            start, end = day - timedelta(days=int(params["lookback_days"])), day
        loaded = {
            **replace_usage_window(hook, SOURCE_TABLE, RAW_USAGE_TABLE, start, end),
            "window_start": None if params["full_refresh"] else start.isoformat(),
            "window_end": None if params["full_refresh"] else end.isoformat(),
        }
        outlet_events[raw_usage].extra = loaded
        return loaded

    create_tables >> extract_usage()
