"""Hourly warehouse features and the effective price of a credit: the hourly path's inputs, without Airflow.

``hourly_features`` turns ``WAREHOUSE_METERING_HISTORY`` rows into one hourly series of credits per warehouse,
every hour explicit (a suspended warehouse has no row for the hour: its credits are 0). A series is named
``ACCOUNT:WAREHOUSE`` (``warehouse_series``): the ``ORGANIZATION_USAGE`` twin of the view spans accounts, and two
accounts may each have an ``ETL_WH``. ``credit_rates`` reads the
effective price of a compute credit per day from ``USAGE_IN_CURRENCY_DAILY`` (currency over credits of the compute
lines), so credits become money at the organisation's own contract price.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import SERIES_NAME, USAGE_HOUR

__all__ = [
    "DEFAULT_HOURLY_PARAMS",
    "WarehouseInputError",
    "credit_rates",
    "hourly_features",
    "rate_on",
    "split_warehouse_series",
    "warehouse_series",
]

# The hourly models' detector parameters, chosen on the ``datasets.warehouse`` family (benchmarks/hourly_delay.py)
# and reported on families it was not tuned on. A week (168 hours) holds both the working-day and the weekend
# pattern; a runaway costs money, so only rises alarm; an hour must add at least one credit, or half the credits of
# a busy hour of the warehouse if that is less (an XS warehouse bills at most 1 credit an hour: left running, it must
# still alarm), to count.
DEFAULT_HOURLY_PARAMS: dict[str, Any] = {
    "period": 168,
    "seasonality": "additive",  # sparse warehouses (a few busy hours a week) have a level of 0: no ratios
    "freq": "h",
    "seasonal_periods": 4,
    "trend_periods": 2,
    "direction": "up",
    "min_deviation": 1.0,
    "min_deviation_share": 0.5,
    "min_relative_deviation": 0.5,
    "burst_rows": 3,
    "alarm_budget": 1.0,
    # Measured on benchmarks/hourly_delay.py and left off here: the same-hour-of-week second opinion (runaways found
    # 83 -> 85 of 136, but the worst family's median delay 3 -> 4 hours) and the floor set by the training span's
    # excursions (training_incidents_per_month=1: the same held-out runaways and false alarms, 90th percentile
    # delay 15.6 -> 17.6 hours, the tuning family's runaways 60 -> 57 of 62).
    "position_periods": 0,
    "training_incidents_per_month": None,
}

# Account and warehouse names the series name (``SERIES_NAME``) can hold: plain identifiers without ``$``.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ONE_HOUR = pd.Timedelta(hours=1)


class WarehouseInputError(ValueError):
    """Metering or usage rows the hourly path cannot use; the message names the column, warehouse and hour."""


def warehouse_series(account: str, warehouse: str) -> str:
    """``("PROD", "ETL_WH")`` -> ``"PROD:ETL_WH"``: a warehouse's series (and, through it, model) name."""
    name = f"{account}:{warehouse}"
    if not (_NAME.fullmatch(account) and _NAME.fullmatch(warehouse) and SERIES_NAME.fullmatch(name)):
        raise WarehouseInputError(
            f"account {account!r} and warehouse {warehouse!r} do not make a series name: both must be plain "
            "identifiers (letters, digits, '_'), 200 characters together"
        )
    return name


def split_warehouse_series(series: str) -> tuple[str, str]:
    """``"PROD:ETL_WH"`` -> ``("PROD", "ETL_WH")``."""
    account, colon, warehouse = str(series).partition(":")
    if not colon or not account or not warehouse:
        raise WarehouseInputError(f"warehouse series {series!r} is not ACCOUNT:WAREHOUSE")
    return account, warehouse


def _utc_naive(values: pd.Series, column: str) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce", utc=True)
    if parsed.isna().any():
        position = int(parsed.isna().to_numpy().argmax())
        raise WarehouseInputError(
            f"metering rows: {column} row {position + 1} is {values.iloc[position]!r}, not a time"
        )
    return parsed.dt.tz_localize(None)


def hourly_features(
    rows: pd.DataFrame,
    *,
    start: Any = None,
    end: Any = None,
    credits_column: str = "CREDITS_USED",
    warehouses: Sequence[str] | None = None,
    account: str | None = None,
) -> pd.DataFrame:
    """One column of hourly credits per warehouse series ``ACCOUNT:WAREHOUSE`` (``credits_column``, default compute
    + cloud services), indexed by the hour (UTC), every hour from ``start`` to ``end`` (inclusive; default the rows'
    first and last hour) and each series in ``warehouses`` (default those in the rows) explicit, 0 where a warehouse
    has no row. The account is the rows' ``ACCOUNT_NAME`` (the ``ORGANIZATION_USAGE`` twin), else ``account`` (the
    account an ``ACCOUNT_USAGE`` view was read in).

    Refused, naming the column, warehouse and hour: missing columns, times off the hour, a warehouse twice in one
    hour, missing or negative credits, account or warehouse names that are not plain identifiers.
    """
    needed = ["START_TIME", "WAREHOUSE_NAME", credits_column]
    if not isinstance(rows, pd.DataFrame):
        raise WarehouseInputError(f"metering rows must be a pandas DataFrame, got {type(rows).__name__}")
    frame = rows.rename(columns=lambda column: str(column).upper())
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise WarehouseInputError(f"metering rows lack columns {missing}; they have {sorted(frame.columns)}")
    if "ACCOUNT_NAME" not in frame.columns:
        if account is None:
            raise WarehouseInputError(
                "metering rows have no ACCOUNT_NAME column (ACCOUNT_USAGE): pass account=, the account they are from"
            )
        frame = frame.assign(ACCOUNT_NAME=account)
    hours = _utc_naive(frame["START_TIME"], "START_TIME")
    off = hours != hours.dt.floor("h")
    if off.any():
        position = int(off.to_numpy().argmax())
        raise WarehouseInputError(
            f"metering rows: START_TIME {hours.iloc[position]} of warehouse {frame['WAREHOUSE_NAME'].iloc[position]!r} "
            "is not on the hour (WAREHOUSE_METERING_HISTORY has one row per warehouse and hour)"
        )
    pairs = frame[["ACCOUNT_NAME", "WAREHOUSE_NAME"]].astype(str)
    series = {pair: _series_or_none(*pair) for pair in set(map(tuple, pairs.to_numpy()))}
    bad_names = sorted(
        f"{account}:{warehouse}" for (account, warehouse), name in series.items() if name is None
    )
    if bad_names:
        raise WarehouseInputError(
            f"metering rows: accounts and warehouses {bad_names[:5]} are not plain identifiers (letters, digits, '_')"
        )
    names = pd.Series([series[pair] for pair in map(tuple, pairs.to_numpy())], index=frame.index)
    credits = pd.to_numeric(frame[credits_column], errors="coerce")
    for problem, mask in (("missing or not a number", credits.isna()), ("negative", credits < 0)):
        if mask.any():
            position = int(mask.to_numpy().argmax())
            raise WarehouseInputError(
                f"metering rows: {credits_column} of warehouse {names.iloc[position]!r} at {hours.iloc[position]} is "
                f"{problem} ({frame[credits_column].iloc[position]!r})"
            )
    long = pd.DataFrame(
        {USAGE_HOUR: hours.to_numpy(), "warehouse": names.to_numpy(), "credits": credits.to_numpy()}
    )
    repeated = long.duplicated([USAGE_HOUR, "warehouse"], keep=False)
    if repeated.any():
        first = long[repeated].iloc[0]
        raise WarehouseInputError(
            f"metering rows: warehouse {first['warehouse']!r} has {int(repeated.sum())} rows for repeated hours, such "
            f"as {first[USAGE_HOUR]} (one row per warehouse and hour)"
        )
    columns = list(warehouses) if warehouses is not None else sorted(long["warehouse"].unique())
    first_hour = _hour(start, "start") if start is not None else long[USAGE_HOUR].min()
    last_hour = _hour(end, "end") if end is not None else long[USAGE_HOUR].max()
    if pd.isna(first_hour) or pd.isna(last_hour) or first_hour > last_hour:
        raise WarehouseInputError(f"no hours to build: from {first_hour} to {last_hour}")
    index = pd.date_range(first_hour, last_hour, freq="h", name=USAGE_HOUR)
    wide = long.pivot(index=USAGE_HOUR, columns="warehouse", values="credits")
    return wide.reindex(index=index, columns=columns).fillna(0.0).astype("float64").rename_axis(columns=None)


def _series_or_none(account: str, warehouse: str) -> str | None:
    try:
        return warehouse_series(account, warehouse)
    except WarehouseInputError:
        return None


def _hour(value: Any, what: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if stamp != stamp.floor("h"):
        raise WarehouseInputError(f"{what} {value!r} is not on the hour")
    return stamp


def credit_rates(usage: pd.DataFrame, *, usage_type: str = "compute") -> pd.Series:
    """The effective price of a credit per day: ``USAGE_IN_CURRENCY / USAGE`` of the ``usage_type`` lines of
    ``USAGE_IN_CURRENCY_DAILY`` (``USAGE`` is credits for compute), summed over accounts. Days without credits are
    left out. Indexed by date, named after the currency when the rows have one currency."""
    needed = ["USAGE_DATE", "USAGE_TYPE", "USAGE", "USAGE_IN_CURRENCY"]
    frame = usage.rename(columns=lambda column: str(column).upper())
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise WarehouseInputError(f"usage rows lack columns {missing}; they have {sorted(frame.columns)}")
    lines = frame[frame["USAGE_TYPE"].astype(str).str.strip().str.lower() == usage_type]
    currencies = sorted(lines["CURRENCY"].dropna().unique()) if "CURRENCY" in lines else []
    if len(currencies) > 1:
        raise WarehouseInputError(
            f"usage rows are in several currencies {currencies}: give one currency's rows"
        )
    sums = (
        lines.assign(
            USAGE_DATE=pd.to_datetime(lines["USAGE_DATE"]).dt.normalize(),
            USAGE=pd.to_numeric(lines["USAGE"], errors="coerce"),
            USAGE_IN_CURRENCY=pd.to_numeric(lines["USAGE_IN_CURRENCY"], errors="coerce"),
        )
        .groupby("USAGE_DATE")[["USAGE", "USAGE_IN_CURRENCY"]]
        .sum()
    )
    sums = sums[sums["USAGE"] > 0]
    rates = (sums["USAGE_IN_CURRENCY"] / sums["USAGE"]).rename(currencies[0] if currencies else None)
    return rates[np.isfinite(rates)].sort_index()


def rate_on(rates: pd.Series, day: date | pd.Timestamp) -> float | None:
    """The rate of ``day``, else of the latest day before it (rates arrive days late), else the earliest known;
    None without any rate."""
    if rates.empty:
        return None
    known = rates[rates.index <= pd.Timestamp(day).normalize()]
    return float(known.iloc[-1] if len(known) else rates.iloc[0])
