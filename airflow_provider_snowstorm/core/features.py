"""Daily cost features from ``SNOWFLAKE.ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY``-shaped rows.

The detector wants one explicit daily series per cost category. Snowflake gives one row per account, day, usage type
and balance source (plus adjustments, overage and non-consumption lines), with usage types in lower case with spaces
(``"data transfer"``). This module keeps the billing types asked for (consumption by default), maps each line to its
cost category (``core.billing``: adjustments netted into what they adjust, overage onto its base), keeps one
currency, sums across accounts (or keeps account x category series), adds ``total_usage``, and makes every calendar
day explicit so that a missing day can never silently shorten a season.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.billing import (
    CONTRACT_ACCOUNT,
    DEFAULT_BILLING_TYPES,
    BillingError,
    billing_type,
    cost_category,
    normalise_billing_types,
)
from airflow_provider_snowstorm.core.schema import DATE, TOTAL_USAGE, USAGE_COLUMNS

__all__ = [
    "ACCOUNT_SEPARATOR",
    "FeatureError",
    "MissingDays",
    "build_usage_features",
    "choose_currency",
    "series_name",
    "series_parts",
    "snake_case_usage_type",
    "snake_case_usage_type_sql",
    "validate_usage_rows",
]

MissingDays = Literal["zero", "nan", "raise"]

# Columns that, together, identify one billing row. A second row with the same values is a duplicate, not a second
# balance source or adjustment, and summing it would double-count spend.
_ROW_IDENTITY = (
    "ORGANIZATION_NAME",
    "ACCOUNT_NAME",
    "USAGE_DATE",
    "USAGE_TYPE",
    "BALANCE_SOURCE",
    "BILLING_TYPE",
    "RATING_TYPE",
    "SERVICE_TYPE",
    "IS_ADJUSTMENT",
)
_USAGE_TYPE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9 _\-]*$")
ACCOUNT_SEPARATOR = ":"
# Netting adjustments sums amounts of two decimals: a net below half a cent is rounding, not a negative cost.
_CENT_TOLERANCE = 0.005


class FeatureError(ValueError):
    """Usage rows that cannot be turned into features; the message names the column and the offending rows."""


def snake_case_usage_type(usage_type: str, *, validate: bool = True) -> str:
    """``'data transfer'`` -> ``'data_transfer'``: the one snake-casing of usage types (features, report, datasets).

    Refuses names that would not make a safe column or identifier, unless ``validate`` is False (the report's
    root cause only compares names). ``snake_case_usage_type_sql`` is the same rule in SQL.
    """
    if validate and (not isinstance(usage_type, str) or not _USAGE_TYPE_PATTERN.match(usage_type.strip())):
        raise FeatureError(
            f"USAGE_TYPE {usage_type!r} is not a usage type name (letters, digits, spaces, '-' and '_' only)"
        )
    return re.sub(r"[\s\-]+", "_", usage_type.strip()).lower()


def snake_case_usage_type_sql(column: str = "USAGE_TYPE") -> str:
    """``snake_case_usage_type`` as a SQL expression on ``column`` (Snowflake; the local emulator too).

    Snowflake spells usage types in lower case with single spaces (``'data transfer'``), for which both agree.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", column):
        raise FeatureError(f"column {column!r} is not a plain SQL identifier")
    return f"REPLACE(REPLACE(LOWER(TRIM({column})), ' ', '_'), '-', '_')"


def series_name(usage_type: str, account_name: str | None = None) -> str:
    """The feature column of one cost series: ``compute`` at organisation level, ``ACCOUNT:compute`` per account."""
    return usage_type if account_name is None else f"{account_name}{ACCOUNT_SEPARATOR}{usage_type}"


def series_parts(series: str) -> tuple[str | None, str]:
    """``series_name`` undone: ``PROD:compute`` -> ``("PROD", "compute")``, ``compute`` -> ``(None, "compute")``."""
    account, separator, usage_type = series.rpartition(ACCOUNT_SEPARATOR)
    return (account if separator else None), usage_type


def _examples(frame: pd.DataFrame, mask: pd.Series, columns: Iterable[str], limit: int = 3) -> str:
    shown = frame.loc[mask, list(columns)].head(limit)
    return "; ".join(", ".join(f"{k}={v}" for k, v in row.items()) for row in shown.to_dict("records"))


def choose_currency(totals: Mapping[str, float], requested: str | None = None) -> str:
    """The currency a pipeline monitors: ``requested``, else the one with most spend (ties: alphabetical).

    Amounts in different currencies are never summed; an organisation billed in several runs one pipeline per
    currency (``SNOWSTORM_CURRENCY``). ``totals`` is the spend per currency.
    """
    if not totals:
        raise FeatureError("usage rows have no CURRENCY values: cannot tell which currency to monitor")
    if requested is not None:
        wanted = requested.strip().upper()
        if wanted not in totals:
            raise FeatureError(f"currency {requested!r} has no usage rows; the rows have {sorted(totals)}")
        return wanted
    return min(totals, key=lambda currency: (-totals[currency], currency))


def validate_usage_rows(
    rows: pd.DataFrame, *, billing_types: Iterable[str] = DEFAULT_BILLING_TYPES
) -> pd.DataFrame:
    """Check raw usage rows and return a normalised copy: the lines of ``billing_types`` only, upper-case columns,
    dates as days, float costs, and ``USAGE_TYPE`` as the cost category (``core.billing.cost_category``).

    Negative lines are allowed (adjustments and credits are negative); a category whose net daily cost is negative
    is refused by :func:`build_usage_features`.
    """
    if not isinstance(rows, pd.DataFrame):
        raise FeatureError(f"usage rows must be a pandas DataFrame, got {type(rows).__name__}")
    try:
        kept_types = normalise_billing_types(billing_types)
    except BillingError as error:
        raise FeatureError(str(error)) from None
    frame = rows.rename(columns=str.upper)
    missing = [column for column in USAGE_COLUMNS if column not in frame.columns]
    if missing:
        raise FeatureError(f"usage rows are missing column(s) {missing}; got {sorted(frame.columns)}")
    if frame.empty:
        raise FeatureError("usage rows are empty: there is no usage to build features from")

    frame = frame.copy()
    # Contract-level lines (priority support, some credits) have no account.
    frame["ACCOUNT_NAME"] = frame["ACCOUNT_NAME"].fillna(CONTRACT_ACCOUNT)
    for column in USAGE_COLUMNS:
        nulls = frame[column].isna()
        if nulls.any():
            raise FeatureError(
                f"{int(nulls.sum())} usage row(s) have no {column}: {_examples(frame, nulls, USAGE_COLUMNS)}"
            )

    try:
        frame["USAGE_DATE"] = pd.to_datetime(frame["USAGE_DATE"]).dt.normalize()
    except (ValueError, TypeError) as error:
        raise FeatureError(f"USAGE_DATE has values that are not dates: {error}") from error
    costs = pd.to_numeric(frame["USAGE_IN_CURRENCY"], errors="coerce")
    not_numeric = costs.isna()
    if not_numeric.any():
        raise FeatureError(
            f"USAGE_IN_CURRENCY is not numeric in {int(not_numeric.sum())} row(s): "
            f"{_examples(frame, not_numeric, USAGE_COLUMNS)}"
        )
    frame["USAGE_IN_CURRENCY"] = costs.astype("float64")
    if not np.isfinite(frame["USAGE_IN_CURRENCY"]).all():
        raise FeatureError("USAGE_IN_CURRENCY has infinite values")

    identity = [column for column in _ROW_IDENTITY if column in frame.columns]
    duplicated = frame.duplicated(subset=identity, keep=False)
    if duplicated.any():
        raise FeatureError(
            f"{int(duplicated.sum())} usage rows are duplicates of each other on {identity}: "
            f"{_examples(frame, duplicated, identity)}"
        )

    for column in ("USAGE_TYPE", "BILLING_TYPE"):
        if column in frame.columns:
            bad = frame[column].notna() & ~frame[column].astype(str).str.strip().str.match(
                _USAGE_TYPE_PATTERN
            )
            if bad.any():
                raise FeatureError(
                    f"{column} has {int(bad.sum())} value(s) that are not names (letters, digits, spaces, '-' and "
                    f"'_' only): {_examples(frame, bad, [column])}"
                )
    has_billing_type = "BILLING_TYPE" in frame.columns
    line_types = [
        billing_type(value if has_billing_type and pd.notna(value) else None, usage_type)
        for value, usage_type in zip(
            frame["BILLING_TYPE"] if has_billing_type else [None] * len(frame),
            frame["USAGE_TYPE"],
            strict=True,
        )
    ]
    frame = frame[np.isin(line_types, kept_types)]
    if frame.empty:
        raise FeatureError(f"usage rows have no lines of billing type(s) {list(kept_types)}")
    frame["USAGE_TYPE"] = frame["USAGE_TYPE"].map(cost_category)
    if "CURRENCY" in frame.columns:
        frame["CURRENCY"] = frame["CURRENCY"].astype("string").str.strip().str.upper()
    return frame


def build_usage_features(
    rows: pd.DataFrame,
    *,
    per_account: bool = False,
    usage_types: Iterable[str] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    missing_days: MissingDays = "zero",
    organization_name: str | None = None,
    billing_types: Iterable[str] = DEFAULT_BILLING_TYPES,
    currency: str | None = None,
) -> pd.DataFrame:
    """Pivot usage rows into one daily column per cost category, plus ``total_usage``.

    Lines of ``billing_types`` (consumption by default) are mapped to their cost category (``core.billing``) and
    summed per day and category across accounts (organisation level), or per account and category with
    ``per_account=True`` (columns ``ACCOUNT:category`` and ``ACCOUNT:total_usage``). ``total_usage`` always sums
    every category, also those left out by ``usage_types``. Only one currency is kept: ``currency``, else the one
    with most spend (:func:`choose_currency`); ``attrs["currency"]`` names it and ``attrs["other_currencies"]``
    the rest. A category whose net daily cost is negative (a credit larger than the spend it adjusts) is refused.

    Every day from ``start`` (default: first day in the rows) to ``end`` (default: last day) is a row; days with
    rows after ``end`` (still settling, when ``end`` is the run day minus a settle period) are listed in
    ``attrs["settling_days"]``. A usage type absent on a day that has other usage cost nothing that day and is 0. A
    day with no rows at all is usually late data, so ``missing_days`` decides: ``"zero"`` fills it with 0 (and lists
    it in ``attrs["missing_days"]``), ``"nan"`` leaves NaN so the caller must decide, ``"raise"`` refuses.
    """
    if missing_days not in ("zero", "nan", "raise"):
        raise FeatureError(f"missing_days must be 'zero', 'nan' or 'raise', got {missing_days!r}")
    frame = validate_usage_rows(rows, billing_types=billing_types)
    organizations = sorted(frame["ORGANIZATION_NAME"].unique())
    if organization_name is not None:
        frame = frame[frame["ORGANIZATION_NAME"] == organization_name]
        if frame.empty:
            raise FeatureError(f"no usage rows for organization {organization_name!r}; found {organizations}")
    elif len(organizations) > 1:
        raise FeatureError(
            f"usage rows mix organizations {organizations}; pass organization_name to pick one"
        )
    chosen_currency, other_currencies = None, []
    if "CURRENCY" in frame.columns:
        totals = frame.groupby("CURRENCY")["USAGE_IN_CURRENCY"].sum()
        chosen_currency = choose_currency(totals.to_dict(), currency)
        other_currencies = sorted(c for c in totals.index if c != chosen_currency)
        frame = frame[frame["CURRENCY"] == chosen_currency]
    elif currency is not None:
        raise FeatureError(f"currency {currency!r} was asked for, but the usage rows have no CURRENCY column")

    first = pd.Timestamp(start).normalize() if start is not None else frame["USAGE_DATE"].min()
    last = pd.Timestamp(end).normalize() if end is not None else frame["USAGE_DATE"].max()
    if last < first:
        raise FeatureError(f"end {last.date()} is before start {first.date()}")
    settling = sorted(frame.loc[frame["USAGE_DATE"] > last, "USAGE_DATE"].unique())
    frame = frame[(frame["USAGE_DATE"] >= first) & (frame["USAGE_DATE"] <= last)]
    if frame.empty:
        raise FeatureError(f"no usage rows between {first.date()} and {last.date()}")

    keys = ["USAGE_DATE", "ACCOUNT_NAME", "USAGE_TYPE"] if per_account else ["USAGE_DATE", "USAGE_TYPE"]
    daily = frame.groupby(keys, sort=True)["USAGE_IN_CURRENCY"].sum()
    negative = daily[daily < -_CENT_TOLERANCE]
    if not negative.empty:
        shown = "; ".join(
            ", ".join(
                part.date().isoformat() if isinstance(part, pd.Timestamp) else str(part) for part in key
            )
            + f": {value:,.2f}"
            for key, value in negative.head(3).items()
        )
        raise FeatureError(
            f"{len(negative)} cost category-day(s) have a negative net daily cost after adjustments and credits "
            f"(USAGE_DATE, {', '.join(keys[1:])}): {shown}. A credit larger than the spend it adjusts is not "
            "spend to model; leave its billing type out (billing_types)"
        )
    daily = daily.clip(lower=0.0)

    if per_account:
        wide = daily.unstack(["ACCOUNT_NAME", "USAGE_TYPE"], fill_value=0.0)
        totals = wide.T.groupby(level="ACCOUNT_NAME").sum().T
        totals.columns = [series_name(TOTAL_USAGE, account) for account in totals.columns]
        wide.columns = [series_name(usage_type, account) for account, usage_type in wide.columns]
        wide = pd.concat([wide, totals], axis=1)
    else:
        wide = daily.unstack("USAGE_TYPE", fill_value=0.0)
        wide[TOTAL_USAGE] = wide.sum(axis=1)
    wide = wide.reindex(sorted(wide.columns), axis=1)

    if usage_types is not None:
        wanted = [snake_case_usage_type(usage_type) for usage_type in usage_types]
        known = sorted({series_parts(column)[1] for column in wide.columns})
        unknown = [usage_type for usage_type in wanted if usage_type not in known]
        if unknown:
            raise FeatureError(f"unknown usage type(s) {unknown}; the rows have {known}")
        keep = set(wanted) | {TOTAL_USAGE}
        wide = wide[[column for column in wide.columns if series_parts(column)[1] in keep]]

    calendar = pd.date_range(first, last, freq="D", name=DATE)
    absent = calendar.difference(wide.index)
    if len(absent) and missing_days == "raise":
        raise FeatureError(
            f"{len(absent)} day(s) have no usage rows at all: {[d.date().isoformat() for d in absent[:5]]}"
        )
    wide = wide.reindex(calendar, fill_value=0.0 if missing_days == "zero" else np.nan)
    wide.columns.name = None
    wide = wide.astype("float64")
    wide.attrs["missing_days"] = [day.date().isoformat() for day in absent]
    wide.attrs["settling_days"] = [pd.Timestamp(day).date().isoformat() for day in settling]
    wide.attrs["currency"] = chosen_currency
    wide.attrs["other_currencies"] = other_currencies
    return wide
