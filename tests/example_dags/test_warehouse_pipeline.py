"""The hourly warehouse DAGs end to end under ``dag.test()`` against the local Snowflake emulation, as the main job
runs them (``local.hourly.run_hourly_dags``), with Slack on a fake Slack API: loads, features, per-warehouse models,
the detection delay of each injected runaway, incidents posted once and updated, and idempotent re-runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from airflow_provider_snowstorm.example_pipeline import (
    METERING_TABLE,
    WAREHOUSE_FEATURES_TABLE,
    WAREHOUSE_INCIDENTS_TABLE,
    WAREHOUSE_PREDICTIONS_TABLE,
)
from airflow_provider_snowstorm.local.hourly import FIRST_HOUR, WAREHOUSES, HourlyRuns, run_hourly_dags
from airflow_provider_snowstorm.local.pipeline import run_example_dag
from airflow_provider_snowstorm.local.seed import ORGANIZATION_METERING_TABLE
from tests.notifications.slack_api_server import VALID_TOKEN, FakeSlackApi, set_slack_connection

pytestmark = pytest.mark.slow

EXAMPLE_DAGS = Path(__file__).parents[2] / "example_dags"


@pytest.fixture(scope="module")
def hourly(
    airflow_db: Path, snowflake_conn_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HourlyRuns, object, FakeSlackApi]]:
    from airflow.sdk import BaseHook

    home = tmp_path_factory.mktemp("hourly")
    extra = {
        "mode": "offline",
        "project": "snowstorm",
        "model_store": str(home / "store"),
        "run_dir": str(home),
    }
    api = FakeSlackApi().start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AIRFLOW_CONN_WANDB_DEFAULT", json.dumps({"conn_type": "wandb", "extra": extra}))
            set_slack_connection(patch, api, token=VALID_TOKEN)
            hook = BaseHook.get_connection(snowflake_conn_id).get_hook()
            yield run_hourly_dags(hook, EXAMPLE_DAGS), hook, api
    finally:
        api.stop()


def count(hook, sql: str) -> int:
    return int(hook.get_first(sql)[0])


def test_metering_and_features_hold_every_hour_once(hourly) -> None:
    runs, hook, _ = hourly
    assert count(hook, f"SELECT COUNT(*) FROM {METERING_TABLE}") == runs.seeded
    hours = count(hook, f"SELECT COUNT(DISTINCT USAGE_HOUR) FROM {WAREHOUSE_FEATURES_TABLE}")
    assert count(hook, f"SELECT COUNT(*) FROM {WAREHOUSE_FEATURES_TABLE}") == hours * len(WAREHOUSES)
    (last,) = hook.get_first(f"SELECT MAX(USAGE_HOUR) FROM {WAREHOUSE_FEATURES_TABLE}")
    assert pd.Timestamp(last) == pd.Timestamp(FIRST_HOUR)  # hours before the second run's hour, UTC
    rows = runs.metering.rows
    seeded = rows[rows["START_TIME"] <= pd.Timestamp(FIRST_HOUR)]
    total = hook.get_first(f"SELECT SUM(CREDITS_USED) FROM {WAREHOUSE_FEATURES_TABLE}")[0]
    assert float(total) == pytest.approx(seeded["CREDITS_USED"].sum(), rel=1e-9)


def test_every_runaway_alarms_within_hours(hourly) -> None:
    runs, _, _ = hourly
    incidents = runs.first["incidents"] + runs.second["incidents"]
    for label in runs.metering.labels.itertuples():
        alarms = [
            pd.Timestamp(incident["first_alarm"])
            for incident in incidents
            if incident["series"] == label.warehouse and pd.Timestamp(incident["first_alarm"]) >= label.start
        ]
        assert alarms, f"{label.warehouse} {label.kind} not detected"
        assert (min(alarms) - label.start) / pd.Timedelta(hours=1) < 6, (label, min(alarms))
    assert {incident["series"] for incident in incidents} <= {
        label for label in runs.metering.labels.warehouse
    }


def test_one_warehouse_name_in_two_accounts_stays_two_warehouses(hourly) -> None:
    """ETL_WH is in PROD (resized: a nightly batch, anomalous night after night) and in ANALYTICS (normal)."""
    runs, hook, api = hourly
    assert "PROD:ETL_WH" in runs.first["warehouses"]
    assert "ANALYTICS:ETL_WH" in runs.first["warehouses"]
    assert not runs.first["unscored_warehouses"]
    pairs = hook.get_records(
        f"SELECT DISTINCT ACCOUNT_NAME, WAREHOUSE_NAME FROM {WAREHOUSE_PREDICTIONS_TABLE}"
    )
    assert {("PROD", "ETL_WH"), ("ANALYTICS", "ETL_WH")} <= {tuple(pair) for pair in pairs}
    resized = [incident for incident in runs.second["incidents"] if incident["series"] == "PROD:ETL_WH"]
    assert len(resized) == 1  # one incident for the resize, updated, not one a night
    assert resized[0]["episodes"] > 1
    assert not [incident for incident in runs.second["incidents"] if incident["account"] == "ANALYTICS"]
    texts = [params.get("text", "") for method, params in api.delivered]
    assert any("ETL_WH (account PROD)" in text for text in texts)


def test_open_incidents_are_posted_once_then_updated(hourly) -> None:
    runs, hook, api = hourly
    open_now = [incident for incident in runs.second["incidents"] if incident["open"]]
    assert open_now
    first_ids = {incident["incident_id"] for incident in runs.first["incidents"]}
    for incident in open_now:
        assert incident["incident_id"] in first_ids
        assert not incident["new"]
        assert incident["updates"] == 1
        assert incident["projected_credits"] > incident["credits"] > incident["expected_credits"]
        if incident["rate"] is not None:  # priced when the daily path's usage is loaded
            assert incident["cost"] == pytest.approx(incident["credits"] * incident["rate"])
    assert set(runs.second["slack"]["updated"]) >= {incident["incident_id"] for incident in open_now}
    assert not runs.second["slack"]["posted"]
    posts = [params for method, params in api.delivered if method == "chat.postMessage"]
    assert len(posts) == len(first_ids)
    (rows,) = hook.get_first(
        f"SELECT COUNT(*) - COUNT(DISTINCT INCIDENT_ID) FROM {WAREHOUSE_INCIDENTS_TABLE}"
    )
    assert rows == 0


def test_re_running_an_hour_replaces_its_rows(hourly) -> None:
    runs, hook, api = hourly
    tables = [
        METERING_TABLE,
        WAREHOUSE_FEATURES_TABLE,
        WAREHOUSE_PREDICTIONS_TABLE,
        WAREHOUSE_INCIDENTS_TABLE,
    ]
    before = [count(hook, f"SELECT COUNT(*) FROM {table}") for table in tables]
    hour = FIRST_HOUR + pd.Timedelta(hours=1)
    source = {"source_table": ORGANIZATION_METERING_TABLE}
    run_example_dag("snowstorm_warehouse_data_engineering", EXAMPLE_DAGS, source, hour=hour)
    run_example_dag("snowstorm_warehouse_scoring", EXAMPLE_DAGS, hour=hour)
    assert [count(hook, f"SELECT COUNT(*) FROM {table}") for table in tables] == before
    assert sum(method == "chat.postMessage" for method, _ in api.delivered) == len(runs.first["incidents"])


def test_an_account_usage_source_takes_the_configured_account(snowflake_hook) -> None:
    """ACCOUNT_USAGE has no ACCOUNT_NAME column: its rows get the configured account (SNOWSTORM_METERING_ACCOUNT)."""
    from datetime import datetime

    from airflow_provider_snowstorm.datasets.warehouse import generate_warehouse_metering
    from airflow_provider_snowstorm.local.seed import seed_metering
    from airflow_provider_snowstorm.warehouse_tasks import (
        METERING_TABLE_COLUMNS,
        create_table_sql,
        read_metering_rows,
        replace_metering_window,
    )

    source, target = "SNOWSTORM.TESTS.SOLO_METERING_VIEW", "SNOWSTORM.TESTS.SOLO_METERING"
    rows = generate_warehouse_metering("2026-11-02", 2, warehouses=[("ETL_WH", "etl", "M")], seed=1).rows
    assert "ACCOUNT_NAME" not in rows.columns
    seed_metering(snowflake_hook, rows, source)
    snowflake_hook.run([f"DROP TABLE IF EXISTS {target}", create_table_sql(target, METERING_TABLE_COLUMNS)])
    start, end = datetime(2026, 11, 2), datetime(2026, 11, 4)
    loaded = replace_metering_window(snowflake_hook, source, target, start, end, account="SOLO")
    assert loaded["rows"] == len(rows)
    _, series = read_metering_rows(snowflake_hook, target, start=start, end=end)
    assert series == ["SOLO:ETL_WH"]
