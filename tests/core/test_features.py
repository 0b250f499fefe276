from __future__ import annotations

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.features import (
    FeatureError,
    build_usage_features,
    snake_case_usage_type,
)


def usage_row(account: str, day: str, usage_type: str, cost: float, **extra: object) -> dict[str, object]:
    return {
        "ORGANIZATION_NAME": "ACME",
        "ACCOUNT_NAME": account,
        "USAGE_DATE": day,
        "USAGE_TYPE": usage_type,
        "USAGE_IN_CURRENCY": cost,
        "BALANCE_SOURCE": "capacity",
        **extra,
    }


@pytest.fixture
def rows() -> pd.DataFrame:
    return pd.DataFrame(
        [
            usage_row("PROD", "2025-03-01", "compute", 10.0),
            usage_row("PROD", "2025-03-01", "compute", 2.5, BALANCE_SOURCE="overage"),
            usage_row("DEV", "2025-03-01", "compute", 1.0),
            usage_row("PROD", "2025-03-01", "data transfer", 4.0),
            usage_row("PROD", "2025-03-02", "compute", 7.0),
            usage_row("DEV", "2025-03-04", "storage", 3.0),
        ]
    )


@pytest.mark.parametrize(
    ("usage_type", "expected"),
    [
        ("compute", "compute"),
        ("data transfer", "data_transfer"),
        ("Snowpipe Streaming", "snowpipe_streaming"),
    ],
)
def test_snake_case_usage_type(usage_type: str, expected: str) -> None:
    assert snake_case_usage_type(usage_type) == expected


@pytest.mark.parametrize("usage_type", ["compute; drop table x", "", "1compute", "cost'--"])
def test_snake_case_refuses_names_that_are_not_identifiers(usage_type: str) -> None:
    with pytest.raises(FeatureError, match="not a usage type name"):
        snake_case_usage_type(usage_type)


def test_pivot_sums_accounts_and_balance_sources_per_usage_type(rows: pd.DataFrame) -> None:
    features = build_usage_features(rows)
    assert list(features.columns) == ["compute", "data_transfer", "storage", "total_usage"]
    first_day = features.loc["2025-03-01"]
    assert first_day["compute"] == pytest.approx(13.5)
    assert first_day["data_transfer"] == pytest.approx(4.0)
    assert first_day["total_usage"] == pytest.approx(17.5)


def test_every_calendar_day_is_a_row_and_missing_days_are_zero_and_listed(rows: pd.DataFrame) -> None:
    features = build_usage_features(rows)
    assert list(features.index.strftime("%Y-%m-%d")) == [
        "2025-03-01",
        "2025-03-02",
        "2025-03-03",
        "2025-03-04",
    ]
    assert features.loc["2025-03-03"].sum() == 0.0
    assert features.attrs["missing_days"] == ["2025-03-03"]
    assert features.index.name == "usage_date"


def test_missing_days_nan_leaves_the_decision_to_the_caller(rows: pd.DataFrame) -> None:
    features = build_usage_features(rows, missing_days="nan")
    assert features.loc["2025-03-03"].isna().all()
    assert features.loc["2025-03-02", "storage"] == 0.0


def test_missing_days_raise_names_the_days(rows: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="2025-03-03"):
        build_usage_features(rows, missing_days="raise")


def test_per_account_keeps_account_series_with_their_totals(rows: pd.DataFrame) -> None:
    features = build_usage_features(rows, per_account=True)
    assert "PROD:compute" in features.columns
    assert "DEV:total_usage" in features.columns
    assert features.loc["2025-03-01", "PROD:compute"] == pytest.approx(12.5)
    assert features.loc["2025-03-01", "PROD:total_usage"] == pytest.approx(16.5)
    assert features.loc["2025-03-04", "DEV:total_usage"] == pytest.approx(3.0)


def test_usage_types_selects_series_but_total_keeps_everything(rows: pd.DataFrame) -> None:
    features = build_usage_features(rows, usage_types=["compute"])
    assert list(features.columns) == ["compute", "total_usage"]
    assert features.loc["2025-03-01", "total_usage"] == pytest.approx(17.5)


def test_unknown_usage_type_is_named(rows: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=r"unknown usage type\(s\) \['warehouse_metering'\]"):
        build_usage_features(rows, usage_types=["warehouse metering"])


def test_duplicate_rows_are_rejected_with_examples(rows: pd.DataFrame) -> None:
    duplicated = pd.concat([rows, rows.iloc[[0]]])
    with pytest.raises(FeatureError, match=r"2 usage rows are duplicates.*ACCOUNT_NAME=PROD"):
        build_usage_features(duplicated)


def test_missing_columns_are_named(rows: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match=r"missing column\(s\) \['USAGE_IN_CURRENCY'\]"):
        build_usage_features(rows.drop(columns="USAGE_IN_CURRENCY"))


def test_empty_rows_are_refused(rows: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match="empty"):
        build_usage_features(rows.iloc[:0])


def test_a_category_with_negative_net_daily_cost_is_refused(rows: pd.DataFrame) -> None:
    rows.loc[4, "USAGE_IN_CURRENCY"] = -7.0
    with pytest.raises(FeatureError, match=r"negative net daily cost .*2025-03-02, compute: -7.00"):
        build_usage_features(rows)


def test_adjustments_are_netted_into_the_category_they_adjust(rows: pd.DataFrame) -> None:
    adjustment = usage_row(
        "PROD",
        "2025-03-01",
        "adj for incl cloud services",
        -1.5,
        IS_ADJUSTMENT=True,
        BILLING_TYPE="consumption",
    )
    gross = usage_row("PROD", "2025-03-01", "cloud services", 2.0, BILLING_TYPE="consumption")
    features = build_usage_features(pd.concat([rows, pd.DataFrame([gross, adjustment])], ignore_index=True))
    assert "adj_for_incl_cloud_services" not in features.columns
    assert features.loc["2025-03-01", "cloud_services"] == pytest.approx(0.5)
    assert features.loc["2025-03-01", "total_usage"] == pytest.approx(13.5 + 4.0 + 0.5)


def test_overage_lines_stay_in_their_base_category_whatever_the_case(rows: pd.DataFrame) -> None:
    overage = [
        usage_row("PROD", "2025-03-02", "OVERAGE-COMPUTE", 5.0, BALANCE_SOURCE="overage"),
        usage_row(
            "PROD", "2025-03-02", "overage-adj for incl cloud services", -0.25, BALANCE_SOURCE="overage"
        ),
        usage_row("PROD", "2025-03-02", "Cloud Services", 1.0),
    ]
    features = build_usage_features(pd.concat([rows, pd.DataFrame(overage)], ignore_index=True))
    assert list(features.columns) == ["cloud_services", "compute", "data_transfer", "storage", "total_usage"]
    assert features.loc["2025-03-02", "compute"] == pytest.approx(12.0)
    assert features.loc["2025-03-02", "cloud_services"] == pytest.approx(0.75)


@pytest.mark.parametrize("with_billing_type_column", [True, False], ids=["billing_type", "legacy_view"])
def test_non_consumption_lines_are_left_out_by_default(
    rows: pd.DataFrame, with_billing_type_column: bool
) -> None:
    contract = [
        usage_row(None, "2025-03-01", "priority support", 900.0, BILLING_TYPE="PRIORITY SUPPORT"),
        usage_row("PROD", "2025-03-01", "support credit", -300.0, BILLING_TYPE="support credit"),
    ]
    lines = pd.concat([rows.assign(BILLING_TYPE="CONSUMPTION"), pd.DataFrame(contract)], ignore_index=True)
    if not with_billing_type_column:
        lines = lines.drop(columns="BILLING_TYPE")
    features = build_usage_features(lines)
    assert features.loc["2025-03-01", "total_usage"] == pytest.approx(17.5)
    assert "priority_support" not in features.columns

    with_support = build_usage_features(lines, billing_types=["consumption", "Priority Support"])
    assert with_support.loc["2025-03-01", "priority_support"] == pytest.approx(900.0)
    per_account = build_usage_features(
        lines, billing_types=["consumption", "priority support"], per_account=True
    )
    assert per_account.loc["2025-03-01", "CONTRACT_LEVEL:priority_support"] == pytest.approx(900.0)
    with pytest.raises(FeatureError, match="negative net daily cost"):
        build_usage_features(lines, billing_types=["consumption", "support credit"])


def test_billing_types_are_checked(rows: pd.DataFrame) -> None:
    with pytest.raises(FeatureError, match='billing_types has "consumption\' OR 1=1"'):
        build_usage_features(rows, billing_types=["consumption' OR 1=1"])
    with pytest.raises(FeatureError, match="no lines of billing type"):
        build_usage_features(rows.assign(BILLING_TYPE="rebate"))


def test_one_currency_is_kept_never_summed_with_another(rows: pd.DataFrame) -> None:
    rows["CURRENCY"] = ["usd", "USD", "EUR", "USD", "USD", "EUR"]
    features = build_usage_features(rows)
    assert features.attrs["currency"] == "USD"
    assert features.attrs["other_currencies"] == ["EUR"]
    assert features.loc["2025-03-01", "compute"] == pytest.approx(12.5)

    in_euro = build_usage_features(rows, currency="eur")
    assert in_euro.loc["2025-03-01", "total_usage"] == pytest.approx(1.0)
    assert in_euro.attrs["other_currencies"] == ["USD"]
    with pytest.raises(
        FeatureError, match=r"currency 'GBP' has no usage rows; the rows have \['EUR', 'USD'\]"
    ):
        build_usage_features(rows, currency="GBP")


def test_days_after_end_are_settling_not_features(rows: pd.DataFrame) -> None:
    features = build_usage_features(rows, end="2025-03-02")
    assert features.index[-1] == pd.Timestamp("2025-03-02")
    assert features.attrs["settling_days"] == ["2025-03-04"]


def test_nan_cost_is_refused(rows: pd.DataFrame) -> None:
    rows.loc[2, "USAGE_IN_CURRENCY"] = float("nan")
    with pytest.raises(FeatureError, match="no USAGE_IN_CURRENCY"):
        build_usage_features(rows)


def test_mixed_organizations_must_be_chosen(rows: pd.DataFrame) -> None:
    rows.loc[5, "ORGANIZATION_NAME"] = "OTHER"
    with pytest.raises(FeatureError, match="mix organizations"):
        build_usage_features(rows)
    assert list(build_usage_features(rows, organization_name="OTHER").columns) == ["storage", "total_usage"]


def test_lower_case_column_names_are_accepted(rows: pd.DataFrame) -> None:
    features = build_usage_features(rows.rename(columns=str.lower))
    assert features.loc["2025-03-01", "total_usage"] == pytest.approx(17.5)


@pytest.mark.parametrize("usage_type", ["compute", "data transfer", "Search-Optimization", " storage "])
def test_the_sql_snake_casing_is_the_python_one(usage_type: str) -> None:
    """One rule: the SQL the example pipeline runs gives the same names as the Python (Snowflake's spellings)."""
    import sqlite3

    from airflow_provider_snowstorm.core.features import snake_case_usage_type_sql

    with sqlite3.connect(":memory:") as conn:
        (in_sql,) = conn.execute(
            f"SELECT {snake_case_usage_type_sql('USAGE_TYPE')} FROM (SELECT ? AS USAGE_TYPE)", [usage_type]
        ).fetchone()
    assert in_sql == snake_case_usage_type(usage_type)


def test_snake_casing_without_validation_accepts_any_name() -> None:
    assert snake_case_usage_type("9 odd-name", validate=False) == "9_odd_name"
    with pytest.raises(FeatureError):
        snake_case_usage_type("9 odd-name")
