"""The example pipeline's reusable steps: plain functions of a SQL hook that the DAGs in ``example_dags`` call.

Extracting a window of organisation usage (usage types snake_cased in SQL by the core's one rule), reading usage
rows for features, writing the features table, and writing the report's root causes live here, so
the DAG files only wire tasks together and another pipeline can reuse the same steps. Every write replaces its rows
in one transaction (``utils.sql``), which makes a re-run idempotent. Heavy modules load only when a step runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_snowstorm.core.schema import DATE, RAW_USAGE_COLUMNS, USAGE_COLUMNS
from airflow_provider_snowstorm.utils.sql import (
    read_dataframe,
    replace_rows,
    transaction,
    validate_identifier,
    validate_table_name,
)

if TYPE_CHECKING:
    import pandas as pd
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = [
    "ROOT_CAUSE_TABLE_COLUMNS",
    "create_raw_usage_table_sql",
    "read_report_usage",
    "read_usage_rows",
    "replace_usage_window",
    "write_features",
    "write_root_causes",
]

_RAW_USAGE_TYPES: Mapping[str, str] = {
    "ORGANIZATION_NAME": "VARCHAR NOT NULL",
    "ACCOUNT_NAME": "VARCHAR NOT NULL",
    "USAGE_DATE": "DATE NOT NULL",
    "USAGE_TYPE": "VARCHAR NOT NULL",
    "CURRENCY": "VARCHAR",
    "USAGE": "NUMBER(38, 3)",
    "USAGE_IN_CURRENCY": "NUMBER(38, 2)",
    "LOADED_AT": "TIMESTAMP_NTZ",
}
ROOT_CAUSE_TABLE_COLUMNS: Mapping[str, str] = {
    "WINDOW_START": "DATE NOT NULL",
    "WINDOW_END": "DATE NOT NULL",
    "INCIDENT_START": "DATE",
    "INCIDENT_END": "DATE",
    "FIRST_ALARM": "DATE",
    "SERIES": "VARCHAR",
    "CATEGORIES": "VARCHAR",
    "DIRECTION": "VARCHAR",
    "ACCOUNT_NAME": "VARCHAR",
    "USAGE_TYPE": "VARCHAR",
    "ACTUAL": "FLOAT",
    "EXPECTED": "FLOAT",
    "EXTRA_COST": "FLOAT",
    "SHARE": "FLOAT",
    "CURRENCY": "VARCHAR",
}


def create_raw_usage_table_sql(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the project's copy of the usage view (``core.schema.RAW_USAGE_COLUMNS``)."""
    columns = ",\n    ".join(f"{name} {_RAW_USAGE_TYPES[name]}" for name in RAW_USAGE_COLUMNS)
    return f"CREATE TABLE IF NOT EXISTS {validate_table_name(table)} (\n    {columns}\n)"


def replace_usage_window(
    hook: DbApiHook, source_table: str, table: str, start: date, end: date
) -> dict[str, Any]:
    """Replace ``table``'s rows from ``start`` to ``end`` with ``source_table``'s, in one transaction.

    Rows are summed per account, day, usage type and currency (a day can have several balance-source and adjustment
    rows); usage types are snake_cased in SQL (``core.features.snake_case_usage_type_sql``). Returns the window's row
    count and first and last day.
    """
    from airflow_provider_snowstorm.core.features import snake_case_usage_type_sql

    table = validate_table_name(table, what="raw usage table")
    source_table = validate_table_name(source_table, what="source table")
    usage_type = snake_case_usage_type_sql("USAGE_TYPE")
    expressions = {
        "USAGE_TYPE": usage_type,
        "USAGE": "SUM(USAGE)",
        "USAGE_IN_CURRENCY": "SUM(USAGE_IN_CURRENCY)",
        "LOADED_AT": "CURRENT_TIMESTAMP()",
    }
    keys = ["ORGANIZATION_NAME", "ACCOUNT_NAME", "USAGE_DATE", usage_type, "CURRENCY"]
    window = {"start": start, "end": end}
    in_window = "USAGE_DATE BETWEEN %(start)s AND %(end)s"
    delete = f"DELETE FROM {table} WHERE {in_window}"  # noqa: S608 - identifiers validated, values bound
    insert = (
        f"INSERT INTO {table} ({', '.join(RAW_USAGE_COLUMNS)}) "  # noqa: S608
        f"SELECT {', '.join(expressions.get(name, name) for name in RAW_USAGE_COLUMNS)} "
        f"FROM {source_table} WHERE {in_window} GROUP BY {', '.join(keys)}"
    )
    with transaction(hook, lock_table=table) as cursor:
        cursor.execute(delete, window)
        cursor.execute(insert, window)
    rows, first, last = hook.get_first(
        f"SELECT COUNT(*), MIN(USAGE_DATE), MAX(USAGE_DATE) FROM {table} WHERE {in_window}",  # noqa: S608
        parameters=window,
    )
    return {
        "rows": int(rows),
        "first_day": first.isoformat() if first else None,
        "last_day": last.isoformat() if last else None,
    }


def read_usage_rows(hook: DbApiHook, table: str) -> pd.DataFrame:
    """``core.schema.USAGE_COLUMNS`` of every row of ``table``, summed per account, day and usage type."""
    table = validate_table_name(table, what="raw usage table")
    keys = [column for column in USAGE_COLUMNS if column != "USAGE_IN_CURRENCY"]
    select = ", ".join(
        "SUM(USAGE_IN_CURRENCY) AS USAGE_IN_CURRENCY" if column == "USAGE_IN_CURRENCY" else column
        for column in USAGE_COLUMNS
    )
    return read_dataframe(hook, f"SELECT {select} FROM {table} GROUP BY {', '.join(keys)}")  # noqa: S608


def write_features(hook: DbApiHook, table: str, wide: pd.DataFrame) -> dict[str, Any]:
    """Replace ``table`` with ``build_usage_features``' output (one column per series, added when new).

    Returns the summary the example pipeline puts in the features Asset's extra (cutoff date: the last day).
    """
    table = validate_table_name(table, what="features table")
    columns = [validate_identifier(name.upper(), what="usage type column") for name in wide.columns]
    hook.run(f"CREATE TABLE IF NOT EXISTS {table} ({DATE.upper()} DATE NOT NULL)")
    hook.run([f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} FLOAT" for name in columns])
    records = [
        (day.date(), *(float(value) for value in values))
        for day, values in zip(wide.index, wide.to_numpy(), strict=True)
    ]
    replace_rows(hook, table, [DATE.upper(), *columns], records, where="1 = 1")
    return {
        "cutoff_date": wide.index[-1].date().isoformat(),
        "first_day": wide.index[0].date().isoformat(),
        "days": len(wide),
        "series": list(wide.columns),
        "missing_days": wide.attrs.get("missing_days", []),
    }


def read_report_usage(
    hook: DbApiHook, table: str, results: Sequence[Mapping[str, Any]], baseline_weeks: int
) -> pd.DataFrame:
    """Per-account usage rows for the report's root cause: the scored windows and ``baseline_weeks`` + 1 before."""
    table = validate_table_name(table, what="raw usage table")
    first = min(date.fromisoformat(r["window_start"]) for r in results) - timedelta(weeks=baseline_weeks + 1)
    last = max(date.fromisoformat(r["window_end"]) for r in results)
    return read_dataframe(
        hook,
        "SELECT USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, CURRENCY, SUM(USAGE_IN_CURRENCY) AS USAGE_IN_CURRENCY "  # noqa: S608
        f"FROM {table} WHERE USAGE_DATE BETWEEN %(first)s AND %(last)s "
        "GROUP BY USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, CURRENCY",
        {"first": first, "last": last},
    )


def write_root_causes(
    hook: DbApiHook, table: str, results: Sequence[Mapping[str, Any]], usage: pd.DataFrame | None
) -> int:
    """The report's root causes beside the predictions, replaced per scored window (idempotent); rows written."""
    from airflow_provider_snowstorm.core.report import ROOT_CAUSE_COLUMNS, build_report, root_cause_records

    table = validate_table_name(table, what="root causes table")
    report = build_report(list(results), usage=usage)
    start = min(r["window_start"] for r in results)
    end = max(r["window_end"] for r in results)
    definitions = ", ".join(f"{name} {kind}" for name, kind in ROOT_CAUSE_TABLE_COLUMNS.items())
    hook.run(f"CREATE TABLE IF NOT EXISTS {table} ({definitions})")
    window = (date.fromisoformat(start), date.fromisoformat(end))
    rows = [(*window, *(record[c] for c in ROOT_CAUSE_COLUMNS)) for record in root_cause_records(report)]
    return replace_rows(
        hook,
        table,
        ["WINDOW_START", "WINDOW_END", *(c.upper() for c in ROOT_CAUSE_COLUMNS)],
        rows,
        where=f"WINDOW_START = {hook.placeholder} AND WINDOW_END = {hook.placeholder}",
        where_parameters=window,
    )
