"""The example pipeline's reusable steps (``pipeline_tasks``) and its settings module's old name (fast checks; the
DAGs that call them run end to end in test_pipeline.py)."""

from __future__ import annotations

import importlib
import sys
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from airflow_provider_snowstorm.core.schema import RAW_USAGE_COLUMNS
from airflow_provider_snowstorm.pipeline_tasks import (
    account_series,
    create_raw_usage_table_sql,
    create_restatements_table_sql,
    monitored_currency,
    read_usage_rows,
    reload_start,
    replace_usage_window,
    restated_days,
    restated_days_to_rescore,
    settling_days,
    write_features,
)


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


def test_the_retry_delay_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_provider_snowstorm import example_pipeline

    monkeypatch.setenv("SNOWSTORM_RETRY_DELAY_SECONDS", "5")
    assert example_pipeline._seconds("RETRY_DELAY_SECONDS", 60) == timedelta(seconds=5)
    monkeypatch.setenv("SNOWSTORM_RETRY_DELAY_SECONDS", "1m")
    with pytest.raises(
        ValueError, match=r"SNOWSTORM_RETRY_DELAY_SECONDS must be a whole number of seconds, got '1m'"
    ):
        example_pipeline._seconds("RETRY_DELAY_SECONDS", 60)
    assert example_pipeline.DEFAULT_ARGS["retry_delay"] == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("day", "lookback_days", "first"),
    [
        (
            date(2026, 11, 27),
            35,
            date(2026, 10, 1),
        ),  # the previous month is not closed yet: from its first day
        (date(2026, 11, 10), 20, date(2026, 10, 1)),
        (date(2026, 3, 31), 60, date(2026, 1, 30)),  # the look-back reaches further
        (date(2026, 1, 15), 1, date(2025, 12, 1)),  # across a year
    ],
)
def test_a_load_rereads_the_previous_month_until_it_closes(
    day: date, lookback_days: int, first: date
) -> None:
    assert reload_start(day, lookback_days) == first


def test_restated_days_are_days_loaded_before_whose_lines_changed() -> None:
    monday, tuesday, wednesday = date(2026, 10, 12), date(2026, 10, 13), date(2026, 10, 14)
    before = [
        (monday, "PROD", "compute", "USD", 100.0),
        (monday, "DEV", "compute", "USD", 10.0),
        (tuesday, "PROD", "compute", "USD", 50.0),
    ]
    after = [
        (monday, "PROD", "compute", "USD", 100.004),  # rounding, not a change
        (tuesday, "PROD", "compute", "USD", 50.0),
        (tuesday, "PROD", "storage", "USD", 5.0),  # a line that arrived late
        (wednesday, "PROD", "compute", "USD", 70.0),  # a new day, not a restated one
    ]
    assert restated_days(before, after) == {monday: (110.0, 100.0), tuesday: (50.0, 55.0)}
    assert restated_days(after, after) == {}


@pytest.fixture(scope="module")
def statement() -> Any:
    from airflow_provider_snowstorm.datasets import generate_organization_usage
    from airflow_provider_snowstorm.datasets.statement import billing_statement

    usage = generate_organization_usage("2026-06-01", 120, accounts=4, seed=3)
    return billing_statement(usage, seed=3, overage_days=30, other_currency=("EUR", 0.9))


@pytest.mark.parametrize("view", ["upgraded", "legacy"])
def test_the_extraction_keeps_net_consumption_per_category_and_currency(
    snowflake_hook: Any, statement: Any, view: str
) -> None:
    """Adjustments netted, overage folded in, support lines out (by BILLING_TYPE, or on the legacy view by usage
    type), amounts kept per currency: the features equal the generator's consumption of each currency's accounts."""
    from airflow_provider_snowstorm.core.features import build_usage_features
    from airflow_provider_snowstorm.local.seed import seed_usage

    source = "BILLING_TEST.SOURCE.USAGE_IN_CURRENCY_DAILY"
    seed_usage(snowflake_hook, statement.rows, source)
    if view == "legacy":
        kept = "ORGANIZATION_NAME, ACCOUNT_NAME, USAGE_DATE, USAGE_TYPE, USAGE, CURRENCY, USAGE_IN_CURRENCY"
        snowflake_hook.run(
            f"CREATE OR REPLACE VIEW BILLING_TEST.SOURCE.LEGACY AS SELECT {kept} FROM {source}"
        )
        source = "BILLING_TEST.SOURCE.LEGACY"
    raw = f"BILLING_TEST.COPY.USAGE_{view.upper()}"
    snowflake_hook.run(["CREATE SCHEMA IF NOT EXISTS BILLING_TEST.COPY", create_raw_usage_table_sql(raw)])
    loaded = replace_usage_window(snowflake_hook, source, raw, date(2026, 1, 1), date(2026, 12, 31))

    categories = {row[0] for row in snowflake_hook.get_records(f"SELECT DISTINCT USAGE_TYPE FROM {raw}")}
    assert {"compute", "cloud_services"} <= categories
    assert not [c for c in categories if "adj" in c or "overage" in c or "support" in c], categories
    assert loaded["restated_days"] == []
    (loaded_at, now) = snowflake_hook.get_first(f"SELECT MAX(LOADED_AT), SYSDATE() FROM {raw}")
    assert abs(now - loaded_at) < timedelta(minutes=5)

    rows = read_usage_rows(snowflake_hook, raw)
    complete = statement.settling_days[0] - timedelta(days=1)
    truth = statement_truth(statement)
    for currency in ("USD", "EUR"):
        features = build_usage_features(rows, currency=currency, end=complete)
        expected = truth[currency].loc[: pd.Timestamp(complete)]
        assert features.attrs["other_currencies"] == sorted({"USD", "EUR"} - {currency})
        for column in expected.columns:
            np.testing.assert_allclose(features[column].to_numpy(), expected[column].to_numpy(), atol=0.006)


def statement_truth(statement: Any) -> dict[str, pd.DataFrame]:
    """Daily net consumption per category and total, per currency, from the clean consumption lines."""
    from airflow_provider_snowstorm.core.billing import cost_category

    rows = statement.rows
    rows = rows[rows["BILLING_TYPE"].str.lower() == "consumption"]
    truth = {}
    for currency, lines in rows.groupby("CURRENCY"):
        wide = lines.pivot_table(
            index=pd.to_datetime(lines["USAGE_DATE"]),
            columns=lines["USAGE_TYPE"].map(cost_category),
            values="USAGE_IN_CURRENCY",
            aggfunc="sum",
            fill_value=0.0,
        )
        wide["total_usage"] = wide.sum(axis=1)
        truth[str(currency)] = wide
    return truth


def test_the_monitored_currency_and_restatements_to_rescore(snowflake_hook: Any) -> None:
    from airflow_provider_snowstorm.operators.score import results_table_ddl

    raw, restatements = "BILLING_TEST.COPY.RAW_SMALL", "BILLING_TEST.COPY.RESTATEMENTS"
    predictions, features = "BILLING_TEST.COPY.PREDICTIONS", "BILLING_TEST.COPY.FEATURES"
    snowflake_hook.run(
        [
            "CREATE SCHEMA IF NOT EXISTS BILLING_TEST.COPY",
            f"DROP TABLE IF EXISTS {raw}",
            create_raw_usage_table_sql(raw),
            f"DROP TABLE IF EXISTS {restatements}",
            create_restatements_table_sql(restatements),
            f"DROP TABLE IF EXISTS {predictions}",
            results_table_ddl(predictions),
            f"CREATE OR REPLACE TABLE {features} (USAGE_DATE DATE)",
            f"INSERT INTO {features} VALUES ('2026-10-10'), ('2026-10-11'), ('2026-10-12')",
            f"INSERT INTO {raw} (ORGANIZATION_NAME, ACCOUNT_NAME, USAGE_DATE, USAGE_TYPE, CURRENCY, "
            "USAGE_IN_CURRENCY) VALUES ('O', 'A', '2026-10-10', 'compute', 'EUR', 10), "
            "('O', 'B', '2026-10-10', 'compute', 'USD', 30), ('O', 'A', '2026-10-13', 'compute', 'EUR', 25)",
            # Scored on the 10th and 11th; the 10th restated afterwards, the 11th before; the 12th never scored.
            f"INSERT INTO {predictions} (USAGE_DATE, SERIES, SCORED_AT) VALUES "
            "('2026-10-10', 'compute', '2026-10-20 08:00:00'), ('2026-10-11', 'compute', '2026-10-20 08:00:00')",
            f"INSERT INTO {restatements} (USAGE_DATE, DETECTED_AT) VALUES ('2026-10-10', '2026-10-21 06:00:00'), "
            "('2026-10-11', '2026-10-19 06:00:00'), ('2026-10-12', '2026-10-21 06:00:00'), "
            "('2026-10-13', '2026-10-21 06:00:00')",
        ]
    )
    assert monitored_currency(snowflake_hook, raw) == ("EUR", ["USD"])
    assert monitored_currency(snowflake_hook, raw, "usd") == ("USD", ["EUR"])
    assert settling_days(snowflake_hook, raw, features) == [date(2026, 10, 13)]
    assert restated_days_to_rescore(snowflake_hook, restatements, predictions, features) == [
        date(2026, 10, 10)
    ]


def test_account_features_are_written_long_and_their_series_found_per_category(snowflake_hook: Any) -> None:
    table = "BILLING_TEST.COPY.ACCOUNT_FEATURES"
    snowflake_hook.run(
        [
            "CREATE DATABASE IF NOT EXISTS BILLING_TEST",
            "CREATE SCHEMA IF NOT EXISTS BILLING_TEST.COPY",
            f"DROP TABLE IF EXISTS {table}",
        ]
    )
    days = pd.date_range("2026-10-01", periods=3, freq="D", name="usage_date")
    wide = pd.DataFrame(
        {"DEV:compute": [1.0, 2.0, 3.0], "PROD:compute": [10.0, 0.0, 30.0], "PROD:storage": [5.0, 5.0, 5.0]},
        index=days,
    )
    for _ in range(2):  # a re-run replaces the rows
        summary = write_features(snowflake_hook, table, wide, layout="long")
    rows = snowflake_hook.get_records(
        f"SELECT USAGE_DATE, SERIES, VALUE FROM {table} ORDER BY SERIES, USAGE_DATE"
    )
    assert len(rows) == 9
    assert rows[3:6] == [
        (day.date(), "PROD:compute", value) for day, value in zip(days, [10.0, 0.0, 30.0], strict=True)
    ]
    assert summary["series"] == list(wide.columns)
    assert summary["cutoff_date"] == "2026-10-03"

    assert account_series(snowflake_hook, table, ["compute"]) == ["DEV:compute", "PROD:compute"]
    assert account_series(snowflake_hook, table, ["prod:storage", "compute"]) == [
        "PROD:storage",
        "DEV:compute",
        "PROD:compute",
    ]
    with pytest.raises(ValueError, match=r"no account has series of \['DEV:storage', 'egress'\].*'storage'"):
        account_series(snowflake_hook, table, ["compute", "DEV:storage", "egress"])
    with pytest.raises(ValueError, match="layout must be 'wide' or 'long'"):
        write_features(snowflake_hook, table, wide, layout="tall")


def test_series_level_settings_batch_the_series_or_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_snowstorm import example_pipeline

    monkeypatch.setattr(example_pipeline, "PER_ACCOUNT", True)
    monkeypatch.setattr(example_pipeline, "SERIES_PER_TASK", 2)
    series = ["A:compute", "B:compute", "C:compute"]
    assert example_pipeline.batch_series(series) == [["A:compute", "B:compute"], ["C:compute"]]
    monkeypatch.setattr(example_pipeline, "PER_ACCOUNT", False)
    assert example_pipeline.batch_series(["compute", "total_usage"]) == ["compute", "total_usage"]
    monkeypatch.setenv("SNOWSTORM_SERIES_LEVEL", "warehouse")
    with pytest.raises(
        ValueError, match=r"SNOWSTORM_SERIES_LEVEL must be one of \['organization', 'account'\]"
    ):
        example_pipeline._choice("SERIES_LEVEL", "organization", ("organization", "account"))
    monkeypatch.setenv("SNOWSTORM_SERIES_PER_TASK", "0")
    with pytest.raises(ValueError, match="SNOWSTORM_SERIES_PER_TASK must be a whole number of at least 1"):
        example_pipeline._count("SERIES_PER_TASK", 50)
