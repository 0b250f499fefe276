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
from airflow_provider_snowstorm.core.schema import DATE
from airflow_provider_snowstorm.pipeline import (
    DEFAULT_ARGS,
    FEATURES_TABLE,
    RAW_USAGE_TABLE,
    SNOWFLAKE_CONN_ID,
    features,
    raw_usage,
)
from airflow_provider_snowstorm.utils.sql import read_dataframe, replace_rows, validate_identifier

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
        rows = read_dataframe(
            hook,
            "SELECT ORGANIZATION_NAME, ACCOUNT_NAME, USAGE_DATE, USAGE_TYPE, "  # noqa: S608
            f"SUM(USAGE_IN_CURRENCY) AS USAGE_IN_CURRENCY FROM {RAW_USAGE_TABLE} "
            "GROUP BY ORGANIZATION_NAME, ACCOUNT_NAME, USAGE_DATE, USAGE_TYPE",
        )
        wide = build_usage_features(rows, organization_name=ORGANIZATION)
        columns = [validate_identifier(name.upper(), what="usage type column") for name in wide.columns]
        hook.run(f"CREATE TABLE IF NOT EXISTS {FEATURES_TABLE} ({DATE.upper()} DATE NOT NULL)")
        hook.run([f"ALTER TABLE {FEATURES_TABLE} ADD COLUMN IF NOT EXISTS {name} FLOAT" for name in columns])
        records = [
            (day.date(), *(float(value) for value in values))
            for day, values in zip(wide.index, wide.to_numpy(), strict=True)
        ]
        replace_rows(hook, FEATURES_TABLE, [DATE.upper(), *columns], records, where="1 = 1")
        summary = {
            "cutoff_date": wide.index[-1].date().isoformat(),
            "first_day": wide.index[0].date().isoformat(),
            "days": len(wide),
            "series": list(wide.columns),
            "missing_days": wide.attrs.get("missing_days", []),
        }
        outlet_events[features].extra = summary
        return summary

    build_features()
