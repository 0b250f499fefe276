"""Seeding input checks and SQL shape (no server: the end-to-end load is in test_snowflake.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from airflow_provider_snowstorm.datasets import USAGE_ROW_COLUMNS
from airflow_provider_snowstorm.local.seed import (
    USAGE_VIEW_COLUMNS,
    json_insert_sql,
    split_table_name,
    usage_values,
)


def test_view_columns_match_the_synthetic_generator() -> None:
    assert USAGE_VIEW_COLUMNS == USAGE_ROW_COLUMNS


def test_usage_values_are_python_values_in_view_order(usage_rows: pd.DataFrame) -> None:
    shuffled = usage_rows[list(reversed(usage_rows.columns))]

    first = usage_values(shuffled)[0]

    assert first[USAGE_VIEW_COLUMNS.index("USAGE_DATE")] == dt.date(2024, 2, 27)
    assert first[USAGE_VIEW_COLUMNS.index("USAGE")] == pytest.approx(12.3456)
    assert first[USAGE_VIEW_COLUMNS.index("IS_ADJUSTMENT")] is False
    assert first[USAGE_VIEW_COLUMNS.index("BALANCE_SOURCE")] is None


def test_usage_values_accept_timestamps_and_strings_as_dates(usage_rows: pd.DataFrame) -> None:
    usage_rows["USAGE_DATE"] = pd.to_datetime(usage_rows["USAGE_DATE"]).dt.strftime("%Y-%m-%d")

    assert usage_values(usage_rows)[0][USAGE_VIEW_COLUMNS.index("USAGE_DATE")] == dt.date(2024, 2, 27)


def test_usage_values_name_missing_and_unexpected_columns(usage_rows: pd.DataFrame) -> None:
    frame = usage_rows.drop(columns=["CURRENCY"]).assign(EXTRA=1)

    with pytest.raises(ValueError, match=r"missing \['CURRENCY'\], unexpected \['EXTRA'\]"):
        usage_values(frame)


def test_usage_values_name_the_row_with_a_bad_date(usage_rows: pd.DataFrame) -> None:
    usage_rows["USAGE_DATE"] = usage_rows["USAGE_DATE"].astype(object)
    usage_rows.loc[3, "USAGE_DATE"] = "not a date"

    with pytest.raises(ValueError, match="USAGE_DATE must be dates; row 3 has 'not a date'"):
        usage_values(usage_rows)


def test_usage_values_name_the_row_with_a_bad_number(usage_rows: pd.DataFrame) -> None:
    usage_rows["USAGE_IN_CURRENCY"] = usage_rows["USAGE_IN_CURRENCY"].astype(object)
    usage_rows.loc[2, "USAGE_IN_CURRENCY"] = "12 EUR"

    with pytest.raises(ValueError, match="USAGE_IN_CURRENCY must be numbers; row 2 has '12 EUR'"):
        usage_values(usage_rows)


def test_usage_values_refuse_something_else_than_a_frame() -> None:
    with pytest.raises(TypeError, match="rows must be a pandas DataFrame, got list"):
        usage_values([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "table",
    ["USAGE", "A.B", "A.B.C.D", "A.B.C; DROP TABLE X", 'A."B".C', "A.B.1C"],
)
def test_split_table_name_refuses_anything_but_three_identifiers(table: str) -> None:
    with pytest.raises(ValueError, match=r"DATABASE\.SCHEMA\.TABLE"):
        split_table_name(table)


def test_json_insert_casts_every_column_from_one_parameter() -> None:
    sql = json_insert_sql("SNOWFLAKE.ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY", "%s")

    assert sql.count("%s") == 1
    assert "value[6]::DATE" in sql
    assert "value[8]::NUMBER(38,3)" in sql
    assert "value[15]::BOOLEAN" in sql
    assert sql.startswith(
        "INSERT INTO SNOWFLAKE.ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY (ORGANIZATION_NAME,"
    )
