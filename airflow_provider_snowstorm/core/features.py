"""Daily cost features from ``SNOWFLAKE.ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY``-shaped rows.

The detector wants one explicit daily series per cost category. Snowflake gives one row per account, day, usage type
and balance source (plus adjustments), with usage types in lower case with spaces (``"data transfer"``). This module
snake_cases the usage types, sums them across accounts (or keeps account x usage type series), adds ``total_usage``,
and makes every calendar day explicit so that a missing day can never silently shorten a season.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import numpy as np
import pandas as pd

from airflow_provider_snowstorm.core.schema import DATE, TOTAL_USAGE, USAGE_COLUMNS

__all__ = [
    "FeatureError",
    "MissingDays",
    "build_usage_features",
    "series_name",
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
_ACCOUNT_SEPARATOR = ":"


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
    return usage_type if account_name is None else f"{account_name}{_ACCOUNT_SEPARATOR}{usage_type}"


def _examples(frame: pd.DataFrame, mask: pd.Series, columns: Iterable[str], limit: int = 3) -> str:
    shown = frame.loc[mask, list(columns)].head(limit)
    return "; ".join(", ".join(f"{k}={v}" for k, v in row.items()) for row in shown.to_dict("records"))


def validate_usage_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Check raw usage rows and return a normalised copy (upper-case columns, dates as days, float costs)."""
    if not isinstance(rows, pd.DataFrame):
        raise FeatureError(f"usage rows must be a pandas DataFrame, got {type(rows).__name__}")
    frame = rows.rename(columns=str.upper)
    missing = [column for column in USAGE_COLUMNS if column not in frame.columns]
    if missing:
        raise FeatureError(f"usage rows are missing column(s) {missing}; got {sorted(frame.columns)}")
    if frame.empty:
        raise FeatureError("usage rows are empty: there is no usage to build features from")

    for column in USAGE_COLUMNS:
        nulls = frame[column].isna()
        if nulls.any():
            raise FeatureError(
                f"{int(nulls.sum())} usage row(s) have no {column}: {_examples(frame, nulls, USAGE_COLUMNS)}"
            )

    frame = frame.copy()
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

    adjustment = (
        frame["IS_ADJUSTMENT"].fillna(False).astype(bool)
        if "IS_ADJUSTMENT" in frame.columns
        else pd.Series(False, index=frame.index)
    )
    negative = (frame["USAGE_IN_CURRENCY"] < 0) & ~adjustment
    if negative.any():
        raise FeatureError(
            f"{int(negative.sum())} usage row(s) have a negative USAGE_IN_CURRENCY and are not adjustments: "
            f"{_examples(frame, negative, USAGE_COLUMNS)}"
        )

    identity = [column for column in _ROW_IDENTITY if column in frame.columns]
    duplicated = frame.duplicated(subset=identity, keep=False)
    if duplicated.any():
        raise FeatureError(
            f"{int(duplicated.sum())} usage rows are duplicates of each other on {identity}: "
            f"{_examples(frame, duplicated, identity)}"
        )

    frame["USAGE_TYPE"] = frame["USAGE_TYPE"].map(snake_case_usage_type)
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
) -> pd.DataFrame:
    """Pivot usage rows into one daily column per cost series, plus ``total_usage``.

    Rows are summed per day and snake_cased usage type across accounts (organisation level), or per account and usage
    type with ``per_account=True`` (columns ``ACCOUNT:usage_type`` and ``ACCOUNT:total_usage``). ``total_usage`` always
    sums every usage type, also those left out by ``usage_types``.

    Every day from ``start`` (default: first day in the rows) to ``end`` (default: last day) is a row. A usage type
    absent on a day that has other usage cost nothing that day and is 0. A day with no rows at all is usually late
    data, so ``missing_days`` decides: ``"zero"`` fills it with 0 (and lists it in ``attrs["missing_days"]``),
    ``"nan"`` leaves NaN so the caller must decide, ``"raise"`` refuses.
    """
    if missing_days not in ("zero", "nan", "raise"):
        raise FeatureError(f"missing_days must be 'zero', 'nan' or 'raise', got {missing_days!r}")
    frame = validate_usage_rows(rows)
    organizations = sorted(frame["ORGANIZATION_NAME"].unique())
    if organization_name is not None:
        frame = frame[frame["ORGANIZATION_NAME"] == organization_name]
        if frame.empty:
            raise FeatureError(f"no usage rows for organization {organization_name!r}; found {organizations}")
    elif len(organizations) > 1:
        raise FeatureError(
            f"usage rows mix organizations {organizations}; pass organization_name to pick one"
        )

    first = pd.Timestamp(start).normalize() if start is not None else frame["USAGE_DATE"].min()
    last = pd.Timestamp(end).normalize() if end is not None else frame["USAGE_DATE"].max()
    if last < first:
        raise FeatureError(f"end {last.date()} is before start {first.date()}")
    frame = frame[(frame["USAGE_DATE"] >= first) & (frame["USAGE_DATE"] <= last)]
    if frame.empty:
        raise FeatureError(f"no usage rows between {first.date()} and {last.date()}")

    keys = ["USAGE_DATE", "ACCOUNT_NAME", "USAGE_TYPE"] if per_account else ["USAGE_DATE", "USAGE_TYPE"]
    daily = frame.groupby(keys, sort=True)["USAGE_IN_CURRENCY"].sum()
    if (daily < 0).any():
        negative = daily[daily < 0].head(3)
        raise FeatureError(f"daily cost is negative after adjustments for {list(negative.index)}")

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
        known = sorted({column.rsplit(_ACCOUNT_SEPARATOR, 1)[-1] for column in wide.columns})
        unknown = [usage_type for usage_type in wanted if usage_type not in known]
        if unknown:
            raise FeatureError(f"unknown usage type(s) {unknown}; the rows have {known}")
        keep = set(wanted) | {TOTAL_USAGE}
        wide = wide[[column for column in wide.columns if column.rsplit(_ACCOUNT_SEPARATOR, 1)[-1] in keep]]

    calendar = pd.date_range(first, last, freq="D", name=DATE)
    absent = calendar.difference(wide.index)
    if len(absent) and missing_days == "raise":
        raise FeatureError(
            f"{len(absent)} day(s) have no usage rows at all: {[d.date().isoformat() for d in absent[:5]]}"
        )
    wide = wide.reindex(calendar, fill_value=0.0 if missing_days == "zero" else np.nan)
    wide.columns.name = None
    wide.attrs["missing_days"] = [day.date().isoformat() for day in absent]
    return wide.astype("float64")
