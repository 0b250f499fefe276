"""The example pipeline's reusable steps (``pipeline_tasks``) and its settings module's old name (fast checks; the
DAGs that call them run end to end in test_pipeline.py)."""

from __future__ import annotations

import importlib
import sys

import pytest

from airflow_provider_snowstorm.core.schema import RAW_USAGE_COLUMNS
from airflow_provider_snowstorm.pipeline_tasks import create_raw_usage_table_sql


def test_the_raw_usage_table_has_the_schema_columns_in_order() -> None:
    sql = create_raw_usage_table_sql("DB.SCH.USAGE_IN_CURRENCY_DAILY")

    positions = [sql.index(f"\n    {column} ") for column in RAW_USAGE_COLUMNS]
    assert positions == sorted(positions)
    with pytest.raises(ValueError, match="table"):
        create_raw_usage_table_sql("DB.SCH.T; DROP TABLE X")


def test_the_old_settings_module_still_imports_and_warns() -> None:
    from airflow_provider_snowstorm import example_pipeline

    sys.modules.pop("airflow_provider_snowstorm.pipeline", None)
    with pytest.warns(DeprecationWarning, match="example_pipeline"):
        old = importlib.import_module("airflow_provider_snowstorm.pipeline")

    assert old.features is example_pipeline.features
    assert old.run_day is example_pipeline.run_day
    assert old.FEATURES_TABLE == example_pipeline.FEATURES_TABLE
