"""Hourly warehouse data engineering: metering per warehouse and hour into the project schema, then hourly features.

Every hour, re-loads the last ``lookback_hours`` complete hours of ``WAREHOUSE_METERING_HISTORY``
(``SNOWSTORM_METERING_SOURCE_TABLE``, or the ``source_table`` param; its ``ORGANIZATION_USAGE`` twin works too, across
accounts) into ``WAREHOUSE_METERING_HISTORY`` in the project schema, times in UTC, each row with its account (the twin's
``ACCOUNT_NAME``; for ``ACCOUNT_USAGE``, ``SNOWSTORM_METERING_ACCOUNT`` or else the connection's account): delete +
insert of those hours in one transaction, so a re-run replaces them (the view's rows arrive up to three hours late, and
cloud services later still). ``backfill_days`` loads more on a first run. Then builds the hourly features of the same
hours (``core.warehouse.hourly_features``: one series of credits per warehouse, ``ACCOUNT:WAREHOUSE``, every hour
explicit, 0 while suspended) and emits the warehouse-features Asset with the last complete hour in its extra.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseHook, Param, task

from airflow_provider_snowstorm.example_pipeline import (
    DEFAULT_ARGS,
    METERING_ACCOUNT,
    METERING_SOURCE_TABLE,
    METERING_TABLE,
    SNOWFLAKE_CONN_ID,
    WAREHOUSE_FEATURES_TABLE,
    run_hour,
    warehouse_features,
)
from airflow_provider_snowstorm.warehouse_tasks import (
    FEATURE_TABLE_COLUMNS,
    METERING_TABLE_COLUMNS,
    create_table_sql,
    read_metering_rows,
    replace_metering_window,
    write_hourly_features,
)

with DAG(
    dag_id="snowstorm_warehouse_data_engineering",
    description="Load hourly warehouse metering and build hourly features per warehouse",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "lookback_hours": Param(
            24,
            type="integer",
            minimum=1,
            description="Complete hours re-loaded every run (latency up to 3 hours).",
        ),
        "backfill_days": Param(
            0, type="integer", minimum=0, description="Load this many days instead (first run)."
        ),
        "source_table": Param(
            METERING_SOURCE_TABLE,
            type="string",
            description="The metering view: ACCOUNT_USAGE's, or ORGANIZATION_USAGE's across accounts.",
        ),
    },
    tags=["snowstorm", "data-engineering", "hourly"],
    doc_md=__doc__,
) as dag:

    @task
    def extract_metering(params: dict[str, Any], **context: Any) -> dict[str, Any]:
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        end = run_hour(context)
        hours = max(int(params["lookback_hours"]), 24 * int(params["backfill_days"]))
        hook.run(create_table_sql(METERING_TABLE, METERING_TABLE_COLUMNS))
        return replace_metering_window(
            hook,
            params["source_table"],
            METERING_TABLE,
            end - timedelta(hours=hours),
            end,
            account=METERING_ACCOUNT,
        )

    @task(outlets=[warehouse_features])
    def build_hourly_features(loaded: dict[str, Any], outlet_events: Any = None) -> dict[str, Any]:
        from airflow_provider_snowstorm.core.warehouse import hourly_features

        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        start = datetime.fromisoformat(loaded["start"])
        last = datetime.fromisoformat(loaded["end"]) - timedelta(hours=1)
        rows, warehouses = read_metering_rows(hook, METERING_TABLE, start=start, end=last)
        wide = hourly_features(rows, start=start, end=last, warehouses=warehouses)
        hook.run(create_table_sql(WAREHOUSE_FEATURES_TABLE, FEATURE_TABLE_COLUMNS))
        written = write_hourly_features(hook, WAREHOUSE_FEATURES_TABLE, wide)
        summary = {
            "first_hour": start.isoformat(),
            "last_hour": last.isoformat(),
            "warehouses": list(wide.columns),
            "rows": written,
        }
        outlet_events[warehouse_features].extra = summary
        return summary

    build_hourly_features(extract_metering())
