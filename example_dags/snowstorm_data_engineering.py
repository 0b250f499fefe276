"""Data engineering: copy organisation usage into the project's schema, nightly, one row per cost category.

``SNOWFLAKE.ORGANIZATION_USAGE`` is visible to administrators only and its values change for up to 72 hours and until
the month closes, so each run re-loads a trailing window: ``lookback_days`` before the run day, or from the first day
of the previous month if that is earlier. It deletes the window's rows and inserts them again in one transaction,
which makes every run idempotent. Only consumption lines are kept by default (``billing_types``); each line goes to
its cost category (adjustments netted into what they adjust, ``overage-`` lines into their base category) and lines
are summed per account, day, category and currency. Days whose figures changed since the last load are recorded in
``USAGE_RESTATEMENTS`` (UTC) so that prediction re-scores them. Emits the raw-usage Asset for feature engineering.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, BaseHook, Param, task

from airflow_provider_snowstorm.core.billing import DEFAULT_BILLING_TYPES
from airflow_provider_snowstorm.example_pipeline import (
    DATABASE,
    DEFAULT_ARGS,
    RAW_USAGE_TABLE,
    RESTATEMENTS_TABLE,
    SCHEMA,
    SNOWFLAKE_CONN_ID,
    SOURCE_TABLE,
    raw_usage,
    run_day,
)
from airflow_provider_snowstorm.pipeline_tasks import (
    create_raw_usage_table_sql,
    create_restatements_table_sql,
    reload_start,
    replace_usage_window,
)

CREATE_TABLES = [
    f"CREATE DATABASE IF NOT EXISTS {DATABASE}",
    f"CREATE SCHEMA IF NOT EXISTS {DATABASE}.{SCHEMA}",
    create_raw_usage_table_sql(RAW_USAGE_TABLE),
    create_restatements_table_sql(RESTATEMENTS_TABLE),
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
            35,
            type="integer",
            minimum=1,
            description="Days re-loaded before the run date (at least back to the previous month's first day).",
        ),
        "billing_types": Param(
            list(DEFAULT_BILLING_TYPES),
            type="array",
            minItems=1,
            items={"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9 _-]*$"},
            description="BILLING_TYPE values kept (e.g. add 'priority support'); consumption only by default.",
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
            start, end = reload_start(day, int(params["lookback_days"])), day
        loaded = {
            **replace_usage_window(
                hook,
                SOURCE_TABLE,
                RAW_USAGE_TABLE,
                start,
                end,
                billing_types=params["billing_types"],
                restatements_table=RESTATEMENTS_TABLE,
            ),
            "window_start": None if params["full_refresh"] else start.isoformat(),
            "window_end": None if params["full_refresh"] else end.isoformat(),
        }
        outlet_events[raw_usage].extra = loaded
        return loaded

    create_tables >> extract_usage()
