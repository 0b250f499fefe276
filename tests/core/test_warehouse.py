from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.warehouse import (
    WarehouseInputError,
    credit_rates,
    hourly_features,
    rate_on,
)


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "START_TIME": pd.to_datetime(
                ["2026-11-27 01:00", "2026-11-27 03:00", "2026-11-27 02:00"], utc=True
            ),
            "WAREHOUSE_NAME": ["ETL_WH", "ETL_WH", "BI_WH"],
            "CREDITS_USED": [8.0, 4.5, 1.25],
        }
    )


def test_every_hour_and_warehouse_is_explicit(rows: pd.DataFrame) -> None:
    wide = hourly_features(
        rows, start="2026-11-27 00:00", end="2026-11-27 04:00", warehouses=["BI_WH", "ETL_WH", "X"]
    )
    assert list(wide.index.hour) == [0, 1, 2, 3, 4]
    assert wide["ETL_WH"].tolist() == [0.0, 8.0, 0.0, 4.5, 0.0]
    assert wide["BI_WH"].tolist() == [0.0, 0.0, 1.25, 0.0, 0.0]
    assert wide["X"].sum() == 0.0
    assert wide.index.tz is None  # UTC, naive


def test_times_in_another_zone_become_utc(rows: pd.DataFrame) -> None:
    rows["START_TIME"] = rows["START_TIME"].dt.tz_convert("America/Los_Angeles")
    assert hourly_features(rows)["ETL_WH"].loc["2026-11-27 01:00"] == 8.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"START_TIME": pd.Timestamp("2026-11-27 01:30", tz="UTC")}, "not on the hour"),
        ({"CREDITS_USED": -1.0}, "negative"),
        ({"CREDITS_USED": None}, "missing or not a number"),
        ({"WAREHOUSE_NAME": "ETL WH; DROP"}, "not plain identifiers"),
    ],
)
def test_bad_rows_are_named(rows: pd.DataFrame, change: dict, message: str) -> None:
    for column, value in change.items():
        rows.loc[0, column] = value
    with pytest.raises(WarehouseInputError, match=message):
        hourly_features(rows)


def test_a_warehouse_twice_in_one_hour_is_refused(rows: pd.DataFrame) -> None:
    with pytest.raises(WarehouseInputError, match="'ETL_WH' has 2 rows for repeated hours"):
        hourly_features(pd.concat([rows, rows.iloc[[0]]]))


def test_credit_rate_is_compute_currency_over_compute_credits() -> None:
    usage = pd.DataFrame(
        {
            "USAGE_DATE": ["2026-11-01", "2026-11-01", "2026-11-01", "2026-11-03"],
            "USAGE_TYPE": ["compute", "compute", "storage", "compute"],
            "USAGE": [10.0, 30.0, 5.0, 2.0],
            "USAGE_IN_CURRENCY": [30.0, 130.0, 100.0, 8.0],
            "CURRENCY": ["USD"] * 4,
        }
    )
    rates = credit_rates(usage)
    assert rates.name == "USD"
    assert rates.loc["2026-11-01"] == pytest.approx(4.0)  # 160 / 40: storage left out
    assert rate_on(rates, pd.Timestamp("2026-11-02 13:00")) == pytest.approx(4.0)  # the latest day before
    assert rate_on(rates, pd.Timestamp("2026-11-05")) == pytest.approx(4.0)
    assert rate_on(rates, pd.Timestamp("2026-10-01")) == pytest.approx(4.0)  # before any: the earliest
    assert rate_on(rates.iloc[:0], pd.Timestamp("2026-11-05")) is None
