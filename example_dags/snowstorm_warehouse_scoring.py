"""Hourly warehouse scoring and alerts: which warehouse is running away, since when, and what it will cost today.

Scheduled on the warehouse-features Asset (so every hour). Scores the last ``window_hours`` complete hours of every
warehouse with its ``latest`` model and replaces those predictions in ``WAREHOUSE_HOURLY_PREDICTIONS``. An incident
opens when a warehouse's credits are anomalous for ``min_hours`` hours in a row (``core.hourly_incidents``); anomalous
hours within ``rejoin_hours`` of its last one continue it (a resized nightly warehouse is one incident, not one a
night). It is recorded in ``WAREHOUSE_INCIDENTS`` (first report time kept, updates counted), written to
``warehouse_report.md`` under ``SNOWSTORM_REPORT_PATH``, and posted to Slack once, then updated in place with
``chat.update`` while it continues (``notifications.warehouse_slack``). Its report names the warehouse, the start hour,
credits and cost so far, and the projected cost if it keeps running to the end of the day, at the effective price of a
credit from ``USAGE_IN_CURRENCY_DAILY`` (compute currency over compute credits, loaded by the daily data-engineering
DAG).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, BaseHook, Param, task

from airflow_provider_snowstorm.core.hourly_incidents import DEFAULT_MIN_HOURS, DEFAULT_REJOIN_HOURS
from airflow_provider_snowstorm.example_pipeline import (
    CURRENCY,
    DEFAULT_ARGS,
    RAW_USAGE_TABLE,
    REPORT_PATH,
    SLACK_CHANNEL,
    SLACK_CONN_ID,
    SNOWFLAKE_CONN_ID,
    WANDB_CONN_ID,
    WAREHOUSE_FEATURES_TABLE,
    WAREHOUSE_INCIDENTS_TABLE,
    WAREHOUSE_PREDICTIONS_TABLE,
    run_hour,
    warehouse_features,
)

with DAG(
    dag_id="snowstorm_warehouse_scoring",
    description="Score hourly warehouse credits and alert on runaways within hours",
    schedule=[warehouse_features],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "window_hours": Param(24, type="integer", minimum=1, description="Complete hours scored every run."),
        "min_hours": Param(
            DEFAULT_MIN_HOURS,
            type="integer",
            minimum=1,
            description="Anomalous hours in a row that open an incident.",
        ),
        "rejoin_hours": Param(
            DEFAULT_REJOIN_HOURS,
            type="integer",
            minimum=0,
            description="Anomalous hours this soon after an incident's last one continue it (a recurring change).",
        ),
    },
    tags=["snowstorm", "prediction", "hourly"],
    doc_md=__doc__,
) as dag:

    @task
    def score_and_alert(params: dict[str, Any], **context: Any) -> dict[str, Any]:
        from airflow_provider_snowstorm.warehouse_tasks import score_and_report

        return score_and_report(
            BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook(),
            until=run_hour(context) - timedelta(hours=1),
            window_hours=int(params["window_hours"]),
            min_hours=int(params["min_hours"]),
            rejoin_hours=int(params["rejoin_hours"]),
            tables={
                "features": WAREHOUSE_FEATURES_TABLE,
                "predictions": WAREHOUSE_PREDICTIONS_TABLE,
                "incidents": WAREHOUSE_INCIDENTS_TABLE,
                "usage": RAW_USAGE_TABLE,
            },
            wandb_conn_id=WANDB_CONN_ID,
            slack_conn_id=SLACK_CONN_ID or None,
            channel=SLACK_CHANNEL,
            report_path=REPORT_PATH or None,
            currency=CURRENCY,
        )

    score_and_alert()
