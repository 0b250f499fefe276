"""``billing_statement``: a real organisation's lines on top of the synthetic one, net consumption unchanged."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.features import build_usage_features
from airflow_provider_snowstorm.datasets import generate_organization_usage
from airflow_provider_snowstorm.datasets.statement import BillingStatement, billing_statement


@pytest.fixture(scope="module")
def usage() -> object:
    return generate_organization_usage("2025-01-01", 400, accounts=3, seed=5)


@pytest.fixture(scope="module")
def statement(usage: object) -> BillingStatement:
    return billing_statement(usage, seed=5)


def test_complete_days_keep_the_organisations_net_consumption(
    usage: object, statement: BillingStatement
) -> None:
    complete = statement.settling_days[0] - timedelta(days=1)
    features = build_usage_features(statement.rows, end=complete)
    truth = usage.org_series().loc[: pd.Timestamp(complete)]
    truth["total_usage"] = truth.sum(axis=1)
    pd.testing.assert_frame_equal(
        features[list(truth.columns)],
        truth,
        check_exact=False,
        atol=0.006,
        check_freq=False,
        check_names=False,
    )
    assert features.attrs["settling_days"] == [day.isoformat() for day in statement.settling_days]


def test_the_statement_has_every_kind_of_real_line(statement: BillingStatement) -> None:
    rows = statement.rows
    usage_types = rows["USAGE_TYPE"]
    adjustments = rows[rows["IS_ADJUSTMENT"]]
    assert (adjustments["USAGE_IN_CURRENCY"] <= 0).all()
    assert set(adjustments["USAGE_TYPE"].str.lower()) == {
        "adj for incl cloud services",
        "overage-adj for incl cloud services",
    }
    overage = rows[usage_types.str.lower().str.startswith("overage-")]
    assert (overage["BALANCE_SOURCE"] == "overage").all()
    assert pd.to_datetime(overage["USAGE_DATE"]).min() <= pd.Timestamp(statement.overage_start)
    assert usage_types.str.isupper().any()
    assert rows["BILLING_TYPE"].str.isupper().any()
    support = rows[rows["BILLING_TYPE"].str.lower() != "consumption"]
    assert set(support["USAGE_TYPE"]) == {"priority support", "support credit"}
    assert support.loc[support["USAGE_TYPE"] == "priority support", "ACCOUNT_NAME"].isna().all()
    assert (support.loc[support["USAGE_TYPE"] == "support credit", "USAGE_IN_CURRENCY"] < 0).all()


def test_the_last_days_are_partly_loaded(usage: object, statement: BillingStatement) -> None:
    last_day, before = statement.settling_days[-1], statement.settling_days[0]
    loaded = build_usage_features(statement.rows)["total_usage"]
    truth = usage.org_series().sum(axis=1)
    assert loaded[pd.Timestamp(last_day)] < 0.9 * truth[pd.Timestamp(last_day)]
    assert loaded[pd.Timestamp(before)] < truth[pd.Timestamp(before)]


def test_only_the_restated_day_differs_before_the_correction(statement: BillingStatement) -> None:
    final = build_usage_features(statement.rows)
    preliminary = build_usage_features(statement.preliminary_rows)
    changed = (final - preliminary).abs().gt(0.005).any(axis=1)
    assert list(changed[changed].index) == [pd.Timestamp(statement.restated_day)]
    assert (
        preliminary.loc[pd.Timestamp(statement.restated_day), "compute"]
        < final.loc[pd.Timestamp(statement.restated_day), "compute"]
    )


def test_a_second_currency_is_never_summed_with_the_first(usage: object) -> None:
    statement = billing_statement(usage, seed=5, other_currency=("EUR", 0.9))
    assert statement.currency_by_account == {"PROD": "USD", "ANALYTICS": "USD", "DEV": "EUR"}
    in_usd = build_usage_features(statement.rows, end=statement.settling_days[0] - timedelta(days=1))
    assert in_usd.attrs["currency"] == "USD"
    assert in_usd.attrs["other_currencies"] == ["EUR"]
    usd_rows = usage.rows[usage.rows["ACCOUNT_NAME"] != "DEV"]
    expected = usd_rows.groupby(pd.to_datetime(usd_rows["USAGE_DATE"]))["USAGE_IN_CURRENCY"].sum()
    assert in_usd["total_usage"].to_numpy() == pytest.approx(expected.loc[in_usd.index].to_numpy(), abs=0.01)
