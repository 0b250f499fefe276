from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.schema import METERING_COLUMNS
from airflow_provider_snowstorm.datasets.warehouse import Runaway, generate_warehouse_metering

WAREHOUSES = [("BI_WH", "office", "M"), ("ETL_WH", "etl", "L"), ("TASK_WH", "task", "XS")]
RUNAWAYS = [
    Runaway("BI_WH", "left_running", "2024-03-29 18:00", 30),
    Runaway("ETL_WH", "resized", "2024-04-02", 5),
]


@pytest.fixture(scope="module")
def metering():
    return generate_warehouse_metering("2024-03-04", 35, warehouses=WAREHOUSES, runaways=RUNAWAYS, seed=3)


def test_labels_are_exact_and_the_rest_is_unchanged(metering) -> None:
    clean = generate_warehouse_metering("2024-03-04", 35, warehouses=WAREHOUSES, seed=3)
    difference = metering.credits - clean.credits
    for label in metering.labels.itertuples():
        window = difference.loc[label.start : label.end, label.warehouse]
        assert window.sum() == pytest.approx(label.extra_credits)
        assert (difference.drop(window.index)[label.warehouse] == 0).all()
    left = metering.credits.loc["2024-03-29 18:00":"2024-03-30 23:00", "BI_WH"]
    assert (left == 4.0).all()  # a medium warehouse left running bills 4 credits every hour


def test_shapes_are_realistic(metering) -> None:
    credits = metering.credits.loc[:"2024-03-28"]
    hours, weekend = credits.index.hour, credits.index.day_of_week >= 5
    office = credits["BI_WH"]
    assert office[(hours < 6) | (hours > 21)].sum() == 0  # suspended at night
    assert office[~weekend & (hours == 11)].mean() > 5 * office[weekend].mean()
    assert (office[~weekend & (hours == 11)] == 0).any()  # auto-suspend gaps in working hours
    assert credits["TASK_WH"].max() < 0.5  # a few minutes an hour on an XS warehouse


def test_rows_look_like_the_view(metering) -> None:
    rows = metering.rows
    assert list(rows.columns) == list(METERING_COLUMNS)
    assert (rows["CREDITS_USED_COMPUTE"] > 0).all()  # suspended hours have no row
    assert (rows["END_TIME"] - rows["START_TIME"] == pd.Timedelta(hours=1)).all()
    assert rows["CREDITS_USED"].sum() == pytest.approx(
        metering.credits.to_numpy().sum() + metering.cloud_services.to_numpy().sum(), rel=1e-9
    )


def test_bad_runaways_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown warehouse 'NOPE'"):
        generate_warehouse_metering(
            "2024-03-04", 7, warehouses=WAREHOUSES, runaways=[Runaway("NOPE", "resized", "2024-03-05", 2)]
        )


def test_warehouses_named_by_account_get_account_rows() -> None:
    data = generate_warehouse_metering(
        "2024-03-04", 2, warehouses=[("PROD:ETL_WH", "etl", "L"), ("ANALYTICS:ETL_WH", "etl", "S")], seed=1
    )
    rows = data.rows
    assert set(zip(rows["ACCOUNT_NAME"], rows["WAREHOUSE_NAME"], strict=True)) == {
        ("PROD", "ETL_WH"),
        ("ANALYTICS", "ETL_WH"),
    }
    assert rows.groupby("ACCOUNT_NAME")["WAREHOUSE_ID"].nunique().tolist() == [1, 1]
    assert rows["WAREHOUSE_ID"].nunique() == 2  # one id per warehouse, not per name
