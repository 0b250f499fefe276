"""Load usage rows into a (local) Snowflake table shaped like ``ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY``, and
hourly metering into one shaped like ``ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY`` (or, with ``ACCOUNT_NAME``, its
``ORGANIZATION_USAGE`` twin).

Why SQL: over fakesnow's server ``write_pandas`` fails (it needs stages and INFER_SCHEMA), so rows go in through
any ``DbApiHook`` with parameterised INSERTs; the pipeline then reads the table exactly as it would read the view.

Why one JSON parameter per batch (``INSERT ... SELECT value[i]::TYPE FROM TABLE(FLATTEN(PARSE_JSON(%s)))``) rather
than a multi-row ``VALUES`` list: fakesnow rewrites every statement with ~75 sqlglot passes over its syntax tree,
which costs ~4 ms per row of ``VALUES`` (about a minute for two years of three accounts), while a JSON string is a
single node, parsed by DuckDB (~0.5 s for 15,000 rows). The statement is valid Snowflake SQL as well.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider_snowstorm.core.schema import METERING_COLUMNS
from airflow_provider_snowstorm.utils.sql import IdentifierError, transaction
from airflow_provider_snowstorm.utils.sql import split_table_name as utils_split_table_name

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

USAGE_TABLE = "SNOWFLAKE.ORGANIZATION_USAGE.USAGE_IN_CURRENCY_DAILY"
# Column types of the real view (Snowflake documentation, upgraded version of the view).
USAGE_VIEW_COLUMN_TYPES: tuple[tuple[str, str], ...] = (
    ("ORGANIZATION_NAME", "VARCHAR"),
    ("CONTRACT_NUMBER", "VARCHAR"),
    ("ACCOUNT_NAME", "VARCHAR"),
    ("ACCOUNT_LOCATOR", "VARCHAR"),
    ("REGION", "VARCHAR"),
    ("SERVICE_LEVEL", "VARCHAR"),
    ("USAGE_DATE", "DATE"),
    ("USAGE_TYPE", "VARCHAR"),
    ("USAGE", "NUMBER(38,3)"),
    ("CURRENCY", "VARCHAR"),
    ("USAGE_IN_CURRENCY", "NUMBER(38,2)"),
    ("BALANCE_SOURCE", "VARCHAR"),
    ("BILLING_TYPE", "VARCHAR"),
    ("RATING_TYPE", "VARCHAR"),
    ("SERVICE_TYPE", "VARCHAR"),
    ("IS_ADJUSTMENT", "BOOLEAN"),
)
USAGE_VIEW_COLUMNS: tuple[str, ...] = tuple(name for name, _ in USAGE_VIEW_COLUMN_TYPES)
DEFAULT_BATCH_SIZE = 5000
METERING_TABLE = "SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY"
ORGANIZATION_METERING_TABLE = "SNOWFLAKE.ORGANIZATION_USAGE.WAREHOUSE_METERING_HISTORY"
METERING_VIEW_COLUMN_TYPES: tuple[tuple[str, str], ...] = tuple(
    zip(
        METERING_COLUMNS,
        ("TIMESTAMP_LTZ", "TIMESTAMP_LTZ", "NUMBER(38,0)", "VARCHAR", *["NUMBER(38,9)"] * 4),
        strict=True,
    )
)

_NUMERIC_COLUMNS = frozenset(name for name, kind in USAGE_VIEW_COLUMN_TYPES if kind.startswith("NUMBER"))


def seed_usage(
    hook: DbApiHook,
    rows: pd.DataFrame,
    table: str = USAGE_TABLE,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Replace ``table`` with ``rows`` (database and schema are created if missing); return the rows loaded.

    The table is recreated with the view's column types, then filled with one INSERT per ``batch_size`` rows in
    one transaction, so seeding twice leaves the same rows and a failed load leaves an empty table, not half a
    seed. Meant for the local emulator: on real Snowflake the ``SNOWFLAKE`` database is read-only.
    """
    return _replace_table(hook, table, USAGE_VIEW_COLUMN_TYPES, usage_values(rows), batch_size)


def seed_metering(
    hook: DbApiHook,
    rows: pd.DataFrame,
    table: str = METERING_TABLE,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Replace ``table`` with ``WAREHOUSE_METERING_HISTORY`` rows (``core.schema.METERING_COLUMNS``; naive times
    are UTC), as :func:`seed_usage` does; START_TIME and END_TIME are TIMESTAMP_LTZ, as in Snowflake. Rows with
    ``ACCOUNT_NAME`` (the ``ORGANIZATION_USAGE`` twin, across accounts) keep it in an ``ACCOUNT_NAME`` column."""
    missing = [column for column in METERING_COLUMNS if column not in rows.columns]
    if missing:
        raise ValueError(f"metering rows lack columns {missing}")
    accounts = "ACCOUNT_NAME" in rows.columns
    frame = rows[list(METERING_COLUMNS)]
    values = []
    for row in frame.itertuples(index=False):
        start, end = (pd.Timestamp(stamp) for stamp in (row[0], row[1]))
        start, end = (s.tz_localize("UTC") if s.tzinfo is None else s.tz_convert("UTC") for s in (start, end))
        values.append((start.isoformat(), end.isoformat(), int(row[2]), str(row[3]), *map(float, row[4:])))
    column_types = METERING_VIEW_COLUMN_TYPES
    if accounts:
        column_types = (*column_types, ("ACCOUNT_NAME", "VARCHAR"))
        values = [(*value, str(account)) for value, account in zip(values, rows["ACCOUNT_NAME"], strict=True)]
    return _replace_table(hook, table, column_types, values, batch_size)


def _replace_table(
    hook: DbApiHook,
    table: str,
    column_types: Sequence[tuple[str, str]],
    values: list[tuple[Any, ...]],
    batch_size: int,
) -> int:
    database, schema, name = split_table_name(table)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    definitions = ", ".join(f"{column} {kind}" for column, kind in column_types)
    qualified = f"{database}.{schema}.{name}"
    insert = json_insert_sql(qualified, hook.placeholder, column_types)

    with transaction(hook) as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {database}.{schema}")
        cursor.execute(f"CREATE OR REPLACE TABLE {qualified} ({definitions})")
        for batch in _batches(values, batch_size):
            cursor.execute(insert, [json.dumps(batch, default=_json_value)])
    return len(values)


def json_insert_sql(
    table: str, placeholder: str = "%s", column_types: Sequence[tuple[str, str]] = USAGE_VIEW_COLUMN_TYPES
) -> str:
    """INSERT of every column from a JSON array of rows (arrays in column order) bound at ``placeholder``."""
    database, schema, name = split_table_name(table)
    columns = ", ".join(column for column, _ in column_types)
    casts = ", ".join(f"value[{index}]::{kind}" for index, (_, kind) in enumerate(column_types))
    source = f"TABLE(FLATTEN(INPUT => PARSE_JSON({placeholder})))"
    # identifiers are checked by split_table_name and the rest is constant: nothing user-supplied is spliced in
    return f"INSERT INTO {database}.{schema}.{name} ({columns}) SELECT {casts} FROM {source}"  # noqa: S608


def split_table_name(table: str) -> tuple[str, str, str]:
    """``DATABASE.SCHEMA.TABLE`` as three plain identifiers; anything else is refused (it is put into SQL)."""
    try:
        parts = utils_split_table_name(table)
    except IdentifierError:
        parts = ()
    if len(parts) != 3 or any(part.startswith('"') for part in parts):
        raise ValueError(f"table must be DATABASE.SCHEMA.TABLE of plain identifiers, got {table!r}")
    database, schema, name = parts
    return database, schema, name


def usage_values(rows: pd.DataFrame) -> list[tuple[Any, ...]]:
    """The rows as Python values in view column order (dates as ``date``, missing as None), validated."""
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(f"rows must be a pandas DataFrame, got {type(rows).__name__}")
    missing = [column for column in USAGE_VIEW_COLUMNS if column not in rows.columns]
    unexpected = [column for column in rows.columns if column not in USAGE_VIEW_COLUMNS]
    if missing or unexpected:
        raise ValueError(
            f"rows must have exactly the columns of {USAGE_TABLE}: missing {missing}, unexpected {unexpected}"
        )
    dates = pd.to_datetime(rows["USAGE_DATE"], errors="coerce")
    if dates.isna().any():
        position = int(dates.isna().to_numpy().argmax())
        raise ValueError(
            f"rows.USAGE_DATE must be dates; row {position} has {rows['USAGE_DATE'].iloc[position]!r}"
        )
    columns: list[Sequence[Any]] = []
    for column in USAGE_VIEW_COLUMNS:
        if column == "USAGE_DATE":
            columns.append([timestamp.date() for timestamp in dates])
        elif column in _NUMERIC_COLUMNS:
            columns.append(_numbers(rows[column], column))
        else:
            columns.append([_scalar(value) for value in rows[column].tolist()])
    return list(zip(*columns, strict=True))


def _numbers(series: pd.Series, column: str) -> list[float | None]:
    numbers = pd.to_numeric(series, errors="coerce")
    bad = numbers.isna() & series.notna()
    if bad.any():
        position = int(bad.to_numpy().argmax())
        raise ValueError(f"rows.{column} must be numbers; row {position} has {series.iloc[position]!r}")
    return [None if math.isnan(value) else float(value) for value in numbers.astype("float64").tolist()]


def _scalar(value: Any) -> Any:
    """None for pandas' missing markers, the value otherwise (strings, booleans, dates)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, dt.date | str | bool | int):
        return value
    return value.item() if hasattr(value, "item") else value


def _json_value(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"cannot store {value!r} ({type(value).__name__}) in the usage table")


def _batches(values: list[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
