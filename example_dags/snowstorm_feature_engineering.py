"""Feature engineering: one daily cost series per cost category plus ``total_usage``, summed across accounts (or,
with ``SNOWSTORM_SERIES_LEVEL=account``, per account: ``PROD:compute``, ``PROD:total_usage``, ... as long rows).

Scheduled on the raw-usage Asset. Snowflake sums the rows per account, day, category and currency; the modelling
core then checks them (duplicate rows, bad names and categories whose net daily cost is negative fail with the rows
named), keeps one currency (``SNOWSTORM_CURRENCY``, else the one with most spend), pivots them and makes every
calendar day explicit, and the task replaces the features table's rows in one transaction. New categories become new
columns. Only complete days become features: the view's figures arrive over up to 72 hours, so days after the run
day minus ``settle_days`` are still settling (a half-loaded day would look like an outage). Emits the features Asset
with the cutoff date (the last complete day), the settling days and the currency in its extra.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseHook, Param, task

from airflow_provider_snowstorm.core.features import build_usage_features
from airflow_provider_snowstorm.example_pipeline import (
    CURRENCY,
    DEFAULT_ARGS,
    FEATURES_LAYOUT,
    FEATURES_TABLE,
    PER_ACCOUNT,
    RAW_USAGE_TABLE,
    SETTLE_DAYS,
    SNOWFLAKE_CONN_ID,
    features,
    raw_usage,
    run_day,
)
from airflow_provider_snowstorm.pipeline_tasks import complete_until, read_usage_rows, write_features

ORGANIZATION = os.environ.get("SNOWSTORM_ORGANIZATION") or None

with DAG(
    dag_id="snowstorm_feature_engineering",
    description="Pivot daily usage per usage type with total_usage",
    schedule=[raw_usage],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "settle_days": Param(
            SETTLE_DAYS,
            type="integer",
            minimum=0,
            description="Days before the run day that are still settling (the view's latency is up to 72 hours).",
        ),
    },
    tags=["snowstorm", "feature-engineering"],
    doc_md=__doc__,
) as dag:

    @task(outlets=[features])
    def build_features(params: dict[str, Any], outlet_events: Any = None, **context: Any) -> dict[str, Any]:
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        rows = read_usage_rows(hook, RAW_USAGE_TABLE)
        wide = build_usage_features(
            rows,
            organization_name=ORGANIZATION,
            per_account=PER_ACCOUNT,
            currency=CURRENCY,
            end=complete_until(rows, run_day(context), int(params["settle_days"])),
        )
        summary = write_features(hook, FEATURES_TABLE, wide, layout=FEATURES_LAYOUT)
        outlet_events[features].extra = summary
        return summary

    build_features()
