from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.warehouse import (
    WarehouseInputError,
    credit_rates,
    hourly_features,
    rate_on,
    split_warehouse_series,
    warehouse_series,
)


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "START_TIME": pd.to_datetime(
                ["2026-11-27 01:00", "2026-11-27 03:00", "2026-11-27 02:00"], utc=True
            ),
            "ACCOUNT_NAME": ["PROD", "PROD", "PROD"],
            "WAREHOUSE_NAME": ["ETL_WH", "ETL_WH", "BI_WH"],
            "CREDITS_USED": [8.0, 4.5, 1.25],
        }
    )


def test_every_hour_and_warehouse_is_explicit(rows: pd.DataFrame) -> None:
    wide = hourly_features(
        rows,
        start="2026-11-27 00:00",
        end="2026-11-27 04:00",
        warehouses=["PROD:BI_WH", "PROD:ETL_WH", "PROD:X"],
    )
    assert list(wide.index.hour) == [0, 1, 2, 3, 4]
    assert wide["PROD:ETL_WH"].tolist() == [0.0, 8.0, 0.0, 4.5, 0.0]
    assert wide["PROD:BI_WH"].tolist() == [0.0, 0.0, 1.25, 0.0, 0.0]
    assert wide["PROD:X"].sum() == 0.0
    assert wide.index.tz is None  # UTC, naive


def test_times_in_another_zone_become_utc(rows: pd.DataFrame) -> None:
    rows["START_TIME"] = rows["START_TIME"].dt.tz_convert("America/Los_Angeles")
    assert hourly_features(rows)["PROD:ETL_WH"].loc["2026-11-27 01:00"] == 8.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"START_TIME": pd.Timestamp("2026-11-27 01:30", tz="UTC")}, "not on the hour"),
        ({"CREDITS_USED": -1.0}, "negative"),
        ({"CREDITS_USED": None}, "missing or not a number"),
        ({"WAREHOUSE_NAME": "ETL WH; DROP"}, "not plain identifiers"),
        ({"ACCOUNT_NAME": "PROD:X"}, "not plain identifiers"),
        ({"WAREHOUSE_NAME": "ETL$WH"}, "not plain identifiers"),
    ],
)
def test_bad_rows_are_named(rows: pd.DataFrame, change: dict, message: str) -> None:
    for column, value in change.items():
        rows.loc[0, column] = value
    with pytest.raises(WarehouseInputError, match=message):
        hourly_features(rows)


def test_a_warehouse_twice_in_one_hour_is_refused(rows: pd.DataFrame) -> None:
    with pytest.raises(WarehouseInputError, match="'PROD:ETL_WH' has 2 rows for repeated hours"):
        hourly_features(pd.concat([rows, rows.iloc[[0]]]))


def test_one_warehouse_name_in_two_accounts_is_two_series(rows: pd.DataFrame) -> None:
    """The ORGANIZATION_USAGE twin spans accounts: the same name in the same hour is not a repeated row."""
    other = rows.assign(ACCOUNT_NAME="ANALYTICS", CREDITS_USED=rows["CREDITS_USED"] / 4)
    wide = hourly_features(pd.concat([rows, other], ignore_index=True))
    assert list(wide.columns) == ["ANALYTICS:BI_WH", "ANALYTICS:ETL_WH", "PROD:BI_WH", "PROD:ETL_WH"]
    assert wide.loc["2026-11-27 01:00", "PROD:ETL_WH"] == 8.0
    assert wide.loc["2026-11-27 01:00", "ANALYTICS:ETL_WH"] == 2.0


def test_account_usage_rows_take_the_account_they_were_read_in(rows: pd.DataFrame) -> None:
    single = rows.drop(columns="ACCOUNT_NAME")
    with pytest.raises(WarehouseInputError, match="no ACCOUNT_NAME column"):
        hourly_features(single)
    assert list(hourly_features(single, account="PROD").columns) == ["PROD:BI_WH", "PROD:ETL_WH"]


def test_series_names_round_trip_and_fit_the_series_name_rule() -> None:
    from airflow_provider_snowstorm.core.schema import SERIES_NAME, default_model_name

    series = warehouse_series("PROD", "ETL_WH")
    assert series == "PROD:ETL_WH"
    assert SERIES_NAME.fullmatch(series)
    assert split_warehouse_series(series) == ("PROD", "ETL_WH")
    assert default_model_name(series, "snowstorm-warehouse") == "snowstorm-warehouse-prod.etl_wh"
    with pytest.raises(WarehouseInputError, match="ACCOUNT:WAREHOUSE"):
        split_warehouse_series("ETL_WH")
    with pytest.raises(WarehouseInputError, match="plain identifiers"):
        warehouse_series("PROD", "A" * 200)


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


def test_an_xs_warehouse_left_running_alarms_at_once_under_the_relative_floor() -> None:
    """An XS warehouse bills at most 1 credit an hour: left running, it adds less than the absolute 1-credit floor
    while its usual evening credits are above 0. The floor relative to its busy level (``min_deviation_share``)
    alarms at the second hour; the absolute floor hours later; noise alarms under neither."""
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.hourly_incidents import find_warehouse_incidents
    from airflow_provider_snowstorm.core.warehouse import DEFAULT_HOURLY_PARAMS
    from airflow_provider_snowstorm.datasets.warehouse import Runaway, generate_warehouse_metering

    start = pd.Timestamp("2024-04-05 19:00")  # a Friday evening

    def first_alarms(share: float | None, runaways: list[Runaway]) -> list[pd.Timestamp]:
        data = generate_warehouse_metering(
            "2024-03-04", 42, warehouses=[("PROD:XS_WH", "office", "XS")], runaways=runaways, seed=5
        )
        params = {**DEFAULT_HOURLY_PARAMS, "min_deviation_share": share, "random_state": 0}
        train = 28 * 24
        detector = DecomposeIsolationForest(**params).fit(data.credits.iloc[:train])
        assert detector.busy_level_[0] == pytest.approx(1.0, abs=0.05)  # about its size: 1 credit an hour
        detections = detector.detect(data.credits, start=data.credits.index[train])
        return [incident.first_alarm for incident in find_warehouse_incidents(detections, min_hours=2)]

    left_running = [Runaway("PROD:XS_WH", "left_running", start, 30)]
    assert DEFAULT_HOURLY_PARAMS["min_deviation_share"] == 0.5
    assert first_alarms(0.5, left_running) == [start + pd.Timedelta(hours=1)]
    (late,) = first_alarms(None, left_running)
    assert late >= start + pd.Timedelta(hours=3)
    assert first_alarms(0.5, []) == []


def test_a_lasting_resize_is_joined_then_learned_by_a_retrained_model() -> None:
    """A nightly ETL warehouse resized up two sizes for good: its first nights are one incident (joined episodes,
    fewer incidents than without joining), and a model retrained on a week of the new size raises none."""
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.hourly_incidents import find_warehouse_incidents
    from airflow_provider_snowstorm.core.warehouse import DEFAULT_HOURLY_PARAMS
    from airflow_provider_snowstorm.datasets.warehouse import Runaway, generate_warehouse_metering

    resize = Runaway("PROD:ETL_WH", "resized", "2024-04-09 00:00", 40 * 24)
    data = generate_warehouse_metering(
        "2024-03-04", 77, warehouses=[("PROD:ETL_WH", "etl", "L")], runaways=[resize], seed=3
    )

    def detections(train_days: int) -> pd.DataFrame:
        train = train_days * 24
        detector = DecomposeIsolationForest(**{**DEFAULT_HOURLY_PARAMS, "random_state": 0})
        return detector.fit(data.credits.iloc[:train]).detect(data.credits, start=data.credits.index[train])

    before = detections(35)
    joined = find_warehouse_incidents(before, min_hours=2)
    assert joined[0].episodes > 1
    assert len(joined) < len(find_warehouse_incidents(before, min_hours=2, rejoin_hours=0))
    assert find_warehouse_incidents(detections(35 + 7), min_hours=2) == []
