"""Fixtures for the local-emulation tests: small frames shaped like USAGE_IN_CURRENCY_DAILY."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from airflow_provider_snowstorm.local.seed import USAGE_VIEW_COLUMNS


def make_usage_rows(days: int, accounts: tuple[str, ...] = ("PROD", "DEV")) -> pd.DataFrame:
    """``days`` x ``accounts`` x 2 usage types of hand-made rows with awkward strings and a missing value."""
    records = []
    for offset in range(days):
        for account in accounts:
            for usage_type, usage, cost in (("compute", 12.3456, 49.38), ("storage", 1.5, 0.05)):
                records.append(
                    {
                        "ORGANIZATION_NAME": "O'Brien & Co",
                        "CONTRACT_NUMBER": "0042",
                        "ACCOUNT_NAME": account,
                        "ACCOUNT_LOCATOR": f"{account[:2]}123",
                        "REGION": "AWS_EU_CENTRAL_1",
                        "SERVICE_LEVEL": "Enterprise",
                        "USAGE_DATE": dt.date(2024, 2, 27) + dt.timedelta(days=offset),
                        "USAGE_TYPE": usage_type,
                        "USAGE": usage,
                        "CURRENCY": "EUR",
                        "USAGE_IN_CURRENCY": cost + offset,
                        "BALANCE_SOURCE": "capacity",
                        "BILLING_TYPE": "consumption",
                        "RATING_TYPE": "compute" if usage_type == "compute" else "storage",
                        "SERVICE_TYPE": "WAREHOUSE_METERING" if usage_type == "compute" else "STORAGE",
                        "IS_ADJUSTMENT": offset == 1,
                    }
                )
    frame = pd.DataFrame.from_records(records, columns=list(USAGE_VIEW_COLUMNS))
    frame.loc[0, "BALANCE_SOURCE"] = None
    return frame


@pytest.fixture
def usage_rows() -> pd.DataFrame:
    """4 days x 2 accounts x 2 usage types = 16 rows, crossing 29 Feb 2024."""
    return make_usage_rows(days=4)
