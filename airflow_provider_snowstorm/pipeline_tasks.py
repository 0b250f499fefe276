"""The example pipeline's reusable steps: plain functions of a SQL hook that the DAGs in ``example_dags`` call.

Extracting a window of organisation usage (billing lines to cost categories in SQL by the core's one set of rules,
``core.billing``; restated days recorded), reading usage rows for features, writing the features table, finding
restated days to re-score and writing the report's root causes live here, so the DAG files only
wire tasks together and another pipeline can reuse the same steps. Every write replaces its rows in one transaction
(``utils.sql``), which makes a re-run idempotent. Audit timestamps are UTC. Heavy modules load only when a step runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_snowstorm.core.billing import DEFAULT_BILLING_TYPES
from airflow_provider_snowstorm.core.schema import DATE, RAW_USAGE_COLUMNS, USAGE_COLUMNS
from airflow_provider_snowstorm.utils.sql import (
    create_table_sql,
    distinct_values,
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
    "LONG_FEATURES_COLUMNS",
    "RESTATEMENT_TABLE_COLUMNS",
    "ROOT_CAUSE_TABLE_COLUMNS",
    "account_series",
    "complete_until",
    "create_raw_usage_table_sql",
    "create_restatements_table_sql",
    "monitored_currency",
    "read_report_usage",
    "read_usage_rows",
    "reload_start",
    "replace_usage_window",
    "restated_days",
    "restated_days_to_rescore",
    "settling_days",
    "write_features",
    "write_root_causes",
]

_SUMMED = ("USAGE", "USAGE_IN_CURRENCY", "LOADED_AT")
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
# One row per day whose billing lines changed between two loads (late rows, month-close restatements), when seen.
RESTATEMENT_TABLE_COLUMNS: Mapping[str, str] = {
    "USAGE_DATE": "DATE NOT NULL",
    "DETECTED_AT": "TIMESTAMP_NTZ NOT NULL",
    "PREVIOUS_USAGE_IN_CURRENCY": "NUMBER(38, 2)",
    "USAGE_IN_CURRENCY": "NUMBER(38, 2)",
}
# Two loads' amounts that differ by less than half a cent are the same amount.
_CENT_TOLERANCE = 0.005
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


def create_restatements_table_sql(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the restated days (``RESTATEMENT_TABLE_COLUMNS``)."""
    return create_table_sql(table, RESTATEMENT_TABLE_COLUMNS, what="restatements table")


def reload_start(day: date, lookback_days: int) -> date:
    """First day a load re-reads: ``lookback_days`` before ``day``, or the previous month's first day if earlier.

    A day's figures can change until its month closes, which can be more than a month after the day.
    """
    previous_month = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    return min(day - timedelta(days=lookback_days), previous_month)


def _source_has_billing_type(hook: DbApiHook, source_table: str) -> bool:
    """The upgraded view has ``BILLING_TYPE``; the legacy one does not (``core.billing`` then uses usage types)."""
    empty = read_dataframe(hook, f"SELECT * FROM {source_table} WHERE 1 = 0")  # noqa: S608 - validated name
    return "BILLING_TYPE" in {str(column).upper() for column in empty.columns}


def restated_days(
    before: Sequence[Sequence[Any]], after: Sequence[Sequence[Any]]
) -> dict[date, tuple[float, float]]:
    """Days loaded before whose lines changed in this load: ``{day: (previous total, new total)}``.

    ``before`` and ``after`` are rows ``(day, *key, amount)`` of the same window; a day that was not there before is
    new, not restated.
    """

    def lines(rows: Sequence[Sequence[Any]]) -> dict[tuple[Any, ...], float]:
        return {tuple(row[:-1]): float(row[-1] or 0.0) for row in rows}

    old, new = lines(before), lines(after)
    loaded_before = {key[0] for key in old}
    changed = {
        key[0]
        for key in old.keys() | new.keys()
        if key[0] in loaded_before and abs(old.get(key, 0.0) - new.get(key, 0.0)) >= _CENT_TOLERANCE
    }

    def total(amounts: dict[tuple[Any, ...], float], day: date) -> float:
        return round(sum(amount for key, amount in amounts.items() if key[0] == day), 2)

    return {day: (total(old, day), total(new, day)) for day in sorted(changed)}


def replace_usage_window(
    hook: DbApiHook,
    source_table: str,
    table: str,
    start: date,
    end: date,
    *,
    billing_types: Sequence[str] = DEFAULT_BILLING_TYPES,
    restatements_table: str | None = None,
) -> dict[str, Any]:
    """Replace ``table``'s rows from ``start`` to ``end`` with ``source_table``'s, in one transaction.

    Only lines of ``billing_types`` are kept (``BILLING_TYPE``, or the usage type where the legacy view has no such
    column). Each line goes to its cost category, adjustments netted and overage folded in (``core.billing``), and
    lines are summed per account (contract-level lines: ``CONTRACT_LEVEL``), day, category and currency.
    ``LOADED_AT`` is UTC. Days whose lines changed since the last load are returned and, with
    ``restatements_table``, recorded there (in the same transaction). Returns the window's row count, first and
    last day and the restated days.
    """
    from airflow_provider_snowstorm.core.billing import (
        account_name_sql,
        billing_types_filter_sql,
        cost_category_sql,
    )

    table = validate_table_name(table, what="raw usage table")
    source_table = validate_table_name(source_table, what="source table")
    if restatements_table is not None:
        restatements_table = validate_table_name(restatements_table, what="restatements table")
    kept = billing_types_filter_sql(
        billing_types, has_billing_type=_source_has_billing_type(hook, source_table)
    )
    expressions = {
        "ACCOUNT_NAME": account_name_sql("ACCOUNT_NAME"),
        "USAGE_TYPE": cost_category_sql("USAGE_TYPE"),
        "CURRENCY": "UPPER(TRIM(CURRENCY))",
        "USAGE": "SUM(USAGE)",
        "USAGE_IN_CURRENCY": "SUM(USAGE_IN_CURRENCY)",
        "LOADED_AT": "SYSDATE()",  # UTC (CURRENT_TIMESTAMP() is the session's local time)
    }
    keys = [expressions.get(name, name) for name in RAW_USAGE_COLUMNS if name not in _SUMMED]
    window = {"start": start, "end": end}
    in_window = "USAGE_DATE BETWEEN %(start)s AND %(end)s"
    lines = (
        f"SELECT USAGE_DATE, ORGANIZATION_NAME, ACCOUNT_NAME, USAGE_TYPE, CURRENCY, USAGE_IN_CURRENCY "  # noqa: S608
        f"FROM {table} WHERE {in_window}"
    )
    delete = f"DELETE FROM {table} WHERE {in_window}"  # noqa: S608 - identifiers validated, values bound
    insert = (
        f"INSERT INTO {table} ({', '.join(RAW_USAGE_COLUMNS)}) "  # noqa: S608
        f"SELECT {', '.join(expressions.get(name, name) for name in RAW_USAGE_COLUMNS)} "
        f"FROM {source_table} WHERE {in_window} AND {kept} GROUP BY {', '.join(keys)}"
    )
    with transaction(hook, lock_table=table) as cursor:
        cursor.execute(lines, window)
        before = cursor.fetchall()
        cursor.execute(delete, window)
        cursor.execute(insert, window)
        cursor.execute(lines, window)
        restated = restated_days(before, cursor.fetchall())
        if restatements_table is not None:
            for day, (previous, current) in restated.items():
                cursor.execute(
                    f"INSERT INTO {restatements_table} ({', '.join(RESTATEMENT_TABLE_COLUMNS)}) "  # noqa: S608
                    "VALUES (%(day)s, SYSDATE(), %(previous)s, %(current)s)",
                    {"day": day, "previous": previous, "current": current},
                )
    rows, first, last = hook.get_first(
        f"SELECT COUNT(*), MIN(USAGE_DATE), MAX(USAGE_DATE) FROM {table} WHERE {in_window}",  # noqa: S608
        parameters=window,
    )
    return {
        "rows": int(rows),
        "first_day": first.isoformat() if first else None,
        "last_day": last.isoformat() if last else None,
        "restated_days": [day.isoformat() for day in restated],
    }


def read_usage_rows(hook: DbApiHook, table: str) -> pd.DataFrame:
    """``core.schema.USAGE_COLUMNS`` and ``CURRENCY`` of every row of ``table``, summed per account, day, category
    and currency."""
    table = validate_table_name(table, what="raw usage table")
    keys = [column for column in (*USAGE_COLUMNS, "CURRENCY") if column != "USAGE_IN_CURRENCY"]
    return read_dataframe(
        hook,
        f"SELECT {', '.join(keys)}, SUM(USAGE_IN_CURRENCY) AS USAGE_IN_CURRENCY "  # noqa: S608
        f"FROM {table} GROUP BY {', '.join(keys)}",
    )


def monitored_currency(hook: DbApiHook, table: str, requested: str | None = None) -> tuple[str, list[str]]:
    """The currency the pipeline models and reports (``core.features.choose_currency`` on ``table``'s spend), and
    the other currencies in ``table``, which it leaves out."""
    from airflow_provider_snowstorm.core.features import choose_currency

    table = validate_table_name(table, what="raw usage table")
    totals = {
        str(currency): float(total)
        for currency, total in hook.get_records(
            f"SELECT CURRENCY, SUM(USAGE_IN_CURRENCY) FROM {table} WHERE CURRENCY IS NOT NULL GROUP BY CURRENCY"  # noqa: S608
        )
    }
    chosen = choose_currency(totals, requested)
    return chosen, sorted(currency for currency in totals if currency != chosen)


def settling_days(hook: DbApiHook, raw_table: str, features_table: str) -> list[date]:
    """Days with usage rows after the features' last day: still settling, so not scored yet."""
    raw_table = validate_table_name(raw_table, what="raw usage table")
    features_table = validate_table_name(features_table, what="features table")
    rows = hook.get_records(
        f"SELECT DISTINCT USAGE_DATE FROM {raw_table} "  # noqa: S608
        f"WHERE USAGE_DATE > (SELECT MAX({DATE.upper()}) FROM {features_table}) ORDER BY USAGE_DATE"
    )
    return [_as_day(day) for (day,) in rows]


def restated_days_to_rescore(
    hook: DbApiHook, restatements_table: str, predictions_table: str, features_table: str
) -> list[date]:
    """Days restated after they were last scored: re-scoring them makes the predictions follow the corrected data.

    A day counts when its restatement was detected after every prediction row of that day was written (both times
    UTC) and it is a complete day in the features, so once re-scored it drops out: re-running finds nothing to do.
    """
    restatements_table = validate_table_name(restatements_table, what="restatements table")
    predictions_table = validate_table_name(predictions_table, what="predictions table")
    features_table = validate_table_name(features_table, what="features table")
    rows = hook.get_records(
        f"SELECT DISTINCT r.USAGE_DATE FROM {restatements_table} r "  # noqa: S608
        f"JOIN (SELECT {DATE.upper()} AS USAGE_DATE, MAX(SCORED_AT) AS SCORED_AT FROM {predictions_table} "
        f"GROUP BY {DATE.upper()}) p ON p.USAGE_DATE = r.USAGE_DATE "
        f"WHERE r.DETECTED_AT > p.SCORED_AT AND r.USAGE_DATE <= (SELECT MAX({DATE.upper()}) FROM {features_table}) "
        "ORDER BY r.USAGE_DATE"
    )
    return [_as_day(day) for (day,) in rows]


def _as_day(value: Any) -> date:
    """A DATE as the driver returns it (a date, a datetime, or ISO text on SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def complete_until(rows: pd.DataFrame, day: date, settle_days: int) -> date:
    """The last complete day: ``settle_days`` before ``day``, or the last day with usage rows if that is earlier."""
    import pandas as pd

    if settle_days < 0:
        raise ValueError(f"settle_days must be 0 or more, got {settle_days}")
    last_loaded = pd.to_datetime(rows["USAGE_DATE"]).max().date()
    return min(day - timedelta(days=settle_days), last_loaded)


# The long features layout (one row per day and series): the operators' ``features_layout="long"`` defaults.
LONG_FEATURES_COLUMNS: Mapping[str, str] = {
    DATE.upper(): "DATE NOT NULL",
    "SERIES": "VARCHAR NOT NULL",
    "VALUE": "FLOAT",
}


def write_features(
    hook: DbApiHook, table: str, wide: pd.DataFrame, *, layout: str = "wide"
) -> dict[str, Any]:
    """Replace ``table`` with ``build_usage_features``' output: one column per series (``wide``, columns added when
    new), or one row per day and series (``long``: ``LONG_FEATURES_COLUMNS``, bulk-written, for many series).

    Returns the summary the example pipeline puts in the features Asset's extra (cutoff date: the last day).
    """
    table = validate_table_name(table, what="features table")
    if layout == "long":
        hook.run(create_table_sql(table, LONG_FEATURES_COLUMNS, what="features table"))
        days = [day.date() for day in wide.index]
        records = [
            (day, series, float(value))
            for series, column in wide.items()
            for day, value in zip(days, column.to_numpy(), strict=True)
        ]
        replace_rows(
            hook, table, list(LONG_FEATURES_COLUMNS), records, where="1 = 1", types=LONG_FEATURES_COLUMNS
        )
    elif layout == "wide":
        columns = [validate_identifier(name.upper(), what="usage type column") for name in wide.columns]
        hook.run(f"CREATE TABLE IF NOT EXISTS {table} ({DATE.upper()} DATE NOT NULL)")
        hook.run([f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} FLOAT" for name in columns])
        records = [
            (day.date(), *(float(value) for value in values))
            for day, values in zip(wide.index, wide.to_numpy(), strict=True)
        ]
        replace_rows(hook, table, [DATE.upper(), *columns], records, where="1 = 1")
    else:
        raise ValueError(f"layout must be 'wide' or 'long', got {layout!r}")
    return {
        "cutoff_date": wide.index[-1].date().isoformat(),
        "first_day": wide.index[0].date().isoformat(),
        "days": len(wide),
        "series": list(wide.columns),
        "missing_days": wide.attrs.get("missing_days", []),
        "settling_days": wide.attrs.get("settling_days", []),
        "currency": wide.attrs.get("currency"),
        "other_currencies": wide.attrs.get("other_currencies", []),
    }


def account_series(hook: DbApiHook, table: str, requested: Sequence[str]) -> list[str]:
    """Every account's series of the ``requested`` categories in a long features ``table`` (``compute`` ->
    ``DEV:compute``, ``PROD:compute``, ...), in order; a requested ``ACCOUNT:category`` is kept if it exists.

    Fails naming what no account has, before any model is trained or scored.
    """
    from airflow_provider_snowstorm.core.features import series_parts

    table = validate_table_name(table, what="features table")
    existing = distinct_values(hook, table, "SERIES")
    lowered = {name.lower(): name for name in existing}
    series: list[str] = []
    missing = []
    for name in dict.fromkeys(requested):
        account, category = series_parts(name)
        if account is not None:
            found = [lowered[name.lower()]] if name.lower() in lowered else []
        else:
            found = [s for s in existing if series_parts(s)[1].lower() == category.lower()]
        series += found
        if not found:
            missing.append(name)
    if missing:
        categories = sorted({series_parts(s)[1] for s in existing})
        raise ValueError(
            f"no account has series of {missing} in {table} (account-level features): its categories are "
            f"{categories}"
        )
    return list(dict.fromkeys(series))


def read_report_usage(
    hook: DbApiHook,
    table: str,
    results: Sequence[Mapping[str, Any]],
    baseline_weeks: int,
    *,
    currency: str | None = None,
) -> pd.DataFrame:
    """Per-account usage rows for the report's root cause: the scored windows and ``baseline_weeks`` + 1 before,
    in ``currency`` only when given (amounts in two currencies are never added up)."""
    table = validate_table_name(table, what="raw usage table")
    first = min(date.fromisoformat(r["window_start"]) for r in results) - timedelta(weeks=baseline_weeks + 1)
    last = max(date.fromisoformat(r["window_end"]) for r in results)
    in_currency = "" if currency is None else " AND CURRENCY = %(currency)s"
    return read_dataframe(
        hook,
        "SELECT USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, CURRENCY, SUM(USAGE_IN_CURRENCY) AS USAGE_IN_CURRENCY "  # noqa: S608
        f"FROM {table} WHERE USAGE_DATE BETWEEN %(first)s AND %(last)s{in_currency} "
        "GROUP BY USAGE_DATE, ACCOUNT_NAME, USAGE_TYPE, CURRENCY",
        {"first": first, "last": last, "currency": currency},
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
    hook.run(create_table_sql(table, ROOT_CAUSE_TABLE_COLUMNS, what="root causes table"))
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
