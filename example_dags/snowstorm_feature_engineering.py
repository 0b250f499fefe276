"""Feature engineering: one daily cost column per usage type plus ``total_usage``, summed across accounts.

Scheduled on the raw-usage Asset. Snowflake sums the rows per account, day and usage type; the modelling core then
checks them (negative or duplicate rows, bad usage-type names fail with the rows named), pivots them and makes every
calendar day explicit, and the task replaces the features table's rows in one transaction. New usage types become
new columns. Emits the features Asset with the cutoff date (the last day with usage) in its extra.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseHook, task

from airflow_provider_snowstorm.core.features import build_usage_features
from airflow_provider_snowstorm.example_pipeline import (
    DEFAULT_ARGS,
    FEATURES_TABLE,
    RAW_USAGE_TABLE,
    SNOWFLAKE_CONN_ID,
    features,
    raw_usage,
)
from airflow_provider_snowstorm.pipeline_tasks import read_usage_rows, write_features

ORGANIZATION = os.environ.get("SNOWSTORM_ORGANIZATION") or None

with DAG(
    dag_id="snowstorm_feature_engineering",
    description="Pivot daily usage per usage type with total_usage",
    schedule=[raw_usage],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["snowstorm", "feature-engineering"],
    doc_md=__doc__,
) as dag:

    @task(outlets=[features])
    def build_features(outlet_events: Any = None) -> dict[str, Any]:
        hook = BaseHook.get_connection(SNOWFLAKE_CONN_ID).get_hook()
        wide = build_usage_features(read_usage_rows(hook, RAW_USAGE_TABLE), organization_name=ORGANIZATION)
        summary = write_features(hook, FEATURES_TABLE, wide)
        outlet_events[features].extra = summary
        return summary

    build_features()
