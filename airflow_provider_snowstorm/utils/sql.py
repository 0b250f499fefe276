"""SQL identifiers that come from parameters are validated, never pasted raw into a statement.

Snowflake folds unquoted identifiers to upper case; a name that is not a plain identifier must be double-quoted, and
a quoted name may not contain a double quote (we refuse those rather than escape them).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from airflow.providers.common.sql.hooks.sql import DbApiHook

__all__ = [
    "BULK_BATCH_ROWS",
    "IdentifierError",
    "add_missing_columns",
    "create_table_sql",
    "distinct_values",
    "in_list",
    "read_dataframe",
    "replace_rows",
    "split_table_name",
    "table_columns",
    "transaction",
    "validate_identifier",
    "validate_table_name",
]

# Used with fullmatch: `$` would also accept a trailing newline.
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,254}")
_QUOTED = re.compile(r'"[^"]{1,255}"')
# Rows per bulk INSERT statement: one JSON document of about 200 bytes a prediction row, about 1 MB a statement. Tried
# on the local emulator only: on a Snowflake account the statement must stay under its query text size limit.
BULK_BATCH_ROWS = 5_000
# A column type in a bulk insert's casts: a plain type name with an optional (precision[, scale]).
_COLUMN_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]{0,40}(\(\d{1,3}(,\s?\d{1,3})?\))?")
# Statements that make concurrent replace_rows on one table take turns, per connection type. Without one, two
# transactions deleting a window that is not there yet both insert (READ COMMITTED deletes of nothing lock nothing).
# SQLite's single writer and Snowflake's table lock on DELETE already serialise writers.
_WRITE_LOCKS = {
    "postgres": "LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE",
    "postgresql": "LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE",
}


class IdentifierError(ValueError):
    """A table or column name that is not a safe SQL identifier."""


def validate_identifier(name: str, *, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain identifier or a double-quoted one without quotes inside; else raise."""
    if not isinstance(name, str) or not (_PLAIN.fullmatch(name) or _QUOTED.fullmatch(name)):
        raise IdentifierError(
            f"{what} {name!r} is not a valid SQL identifier: use letters, digits, '_' and '$' "
            "(not starting with a digit), or a double-quoted name without quotes inside"
        )
    return name


def split_table_name(name: str, *, what: str = "table") -> tuple[str, ...]:
    """The validated parts of ``table``, ``schema.table`` or ``database.schema.table``, each an identifier."""
    if not isinstance(name, str) or not name:
        raise IdentifierError(f"{what} name must be a non-empty string, got {name!r}")
    parts = re.findall(r'"[^"]*"|[^.]+', name)
    if not 1 <= len(parts) <= 3 or ".".join(parts) != name:
        raise IdentifierError(f"{what} {name!r} must be table, schema.table or database.schema.table")
    for part in parts:
        validate_identifier(part, what=f"{what} {name!r} part")
    return tuple(parts)


def validate_table_name(name: str, *, what: str = "table") -> str:
    """Validate ``table``, ``schema.table`` or ``database.schema.table``, each part an identifier."""
    split_table_name(name, what=what)
    return name


def create_table_sql(table: str, definitions: Mapping[str, str], *, what: str = "table") -> str:
    """``CREATE TABLE IF NOT EXISTS table (NAME TYPE, ...)`` from ``{name: type}``; names upper-cased, the table
    validated: the one shape of every table the package creates on first write."""
    columns = ", ".join(f"{name.upper()} {kind}" for name, kind in definitions.items())
    return f"CREATE TABLE IF NOT EXISTS {validate_table_name(table, what=what)} ({columns})"


@contextmanager
def transaction(hook: DbApiHook, *, lock_table: str | None = None) -> Iterator[Any]:
    """A cursor whose statements commit together when the block ends, or roll back if it raises.

    Every write here that must be all-or-nothing goes through this (``replace_rows``, the example pipeline's
    extract, the local seed). With ``lock_table``, on PostgreSQL the transaction first takes a table lock that lets
    readers through but makes concurrent writers take turns.
    """
    lock = _WRITE_LOCKS.get(str(getattr(hook, "conn_type", "") or "").lower()) if lock_table else None
    with closing(hook.get_conn()) as conn:
        if hook.supports_autocommit:  # else the driver already wraps DML in a transaction (sqlite3)
            hook.set_autocommit(conn, False)
        try:
            with closing(conn.cursor()) as cursor:
                if lock:
                    cursor.execute(lock.format(table=validate_table_name(lock_table)))
                yield cursor
            conn.commit()
        except BaseException:
            conn.rollback()
            raise


def replace_rows(
    hook: DbApiHook,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    where: str,
    where_parameters: Sequence[Any] = (),
    types: Mapping[str, str] | None = None,
) -> int:
    """Delete the rows matching ``where`` and insert ``rows``, in one transaction.

    This is how every write here stays idempotent: re-running a date range replaces its rows instead of duplicating
    them, and a failure mid-write (or a killed worker) rolls back to the previous rows. On PostgreSQL the transaction
    first takes a table lock that lets readers through but makes concurrent writers take turns, so two tasks
    replacing the same window leave one set of rows (tested on a real server). ``where`` uses the hook's
    placeholder for its ``where_parameters``; ``table`` and ``columns`` are validated identifiers.

    With ``types`` (column -> SQL type) on Snowflake, rows go in bulk: each ``BULK_BATCH_ROWS`` rows are one
    ``INSERT ... SELECT`` over ``FLATTEN(PARSE_JSON(<one bound JSON array>))``, a multi-row insert the server parses
    once instead of once per row (75 times the rows per second of ``executemany`` on the local emulator in the
    README's run of ``python -m benchmarks.scale``). Other databases, or no ``types``, use ``executemany``.
    """
    table = validate_table_name(table)
    names = [validate_identifier(column, what="column") for column in columns]
    placeholder = hook.placeholder
    delete = f"DELETE FROM {table} WHERE {where}"  # noqa: S608 - identifiers validated, values bound
    bulk = types is not None and _is_snowflake(hook)
    if bulk:
        insert = _bulk_insert_sql(table, names, columns, types, placeholder)
    else:
        insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join([placeholder] * len(names))})"  # noqa: S608
    with transaction(hook, lock_table=table) as cursor:
        cursor.execute(delete, tuple(where_parameters))
        if rows and bulk:
            for first in range(0, len(rows), BULK_BATCH_ROWS):
                batch = [[_finite(value) for value in row] for row in rows[first : first + BULK_BATCH_ROWS]]
                cursor.execute(insert, (json.dumps(batch, default=_json_value, allow_nan=False),))
        elif rows:
            cursor.executemany(insert, [tuple(row) for row in rows])
    return len(rows)


def in_list(hook: DbApiHook, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``column IN (...)`` and its parameters: one placeholder per value, or on Snowflake one bound JSON array
    (``FLATTEN(PARSE_JSON(...))``), so a chunk of thousands of series is one short statement."""
    column = validate_identifier(column, what="column")
    placeholder = hook.placeholder
    if _is_snowflake(hook):
        flattened = f"SELECT value::VARCHAR FROM TABLE(FLATTEN(input => PARSE_JSON({placeholder})))"  # noqa: S608 - only the placeholder
        return f"{column} IN ({flattened})", [json.dumps([str(value) for value in values])]
    return f"{column} IN ({', '.join([placeholder] * len(values))})", list(values)


def _is_snowflake(hook: DbApiHook) -> bool:
    return str(getattr(hook, "conn_type", "") or "").lower() == "snowflake"


def _bulk_insert_sql(
    table: str, names: Sequence[str], columns: Sequence[str], types: Mapping[str, str], placeholder: str
) -> str:
    """``INSERT INTO table (...) SELECT value[0]::TYPE, ... FROM TABLE(FLATTEN(input => PARSE_JSON(%s)))``."""
    casts = []
    for position, column in enumerate(columns):
        kind = types.get(column)
        if kind is None:
            raise ValueError(f"types gives no SQL type for column {column!r} of the bulk insert into {table}")
        kind = re.sub(r"\s+NOT\s+NULL\s*$", "", kind.strip(), flags=re.IGNORECASE)
        if not _COLUMN_TYPE.fullmatch(kind):
            raise ValueError(f"column {column!r} has type {kind!r}, which is not a plain SQL type")
        casts.append(f"value[{position}]::{kind}")
    return (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(casts)} "  # noqa: S608 - validated names
        f"FROM TABLE(FLATTEN(input => PARSE_JSON({placeholder})))"
    )


def _json_value(value: Any) -> Any:
    """JSON for what rows hold besides str, int, float, bool and None: dates, numpy scalars, NaN (as null)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _finite(value.item())
    raise TypeError(f"cannot write a {type(value).__name__} value ({value!r}) in a bulk insert")


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def table_columns(hook: DbApiHook, table: str) -> list[str]:
    """The column names of ``table``, as the database spells them, from a query that returns no rows."""
    table = validate_table_name(table)
    return [str(name) for name in read_dataframe(hook, f"SELECT * FROM {table} WHERE 1 = 0").columns]  # noqa: S608


def distinct_values(hook: DbApiHook, table: str, column: str) -> list[str]:
    """The distinct values of ``column`` in ``table``, as text, sorted: the series of a long features table."""
    table = validate_table_name(table)
    column = validate_identifier(column, what="column")
    return sorted(str(value) for (value,) in hook.get_records(f"SELECT DISTINCT {column} FROM {table}"))  # noqa: S608


def add_missing_columns(hook: DbApiHook, table: str, columns: Mapping[str, str]) -> list[str]:
    """Add the ``columns`` (name -> SQL type) that ``table`` lacks; return their names.

    A table created by an earlier version keeps its rows and gains the new columns (empty for old rows), on any
    database: the existing columns are read from an empty ``SELECT``, and each missing one is added with a plain
    ``ALTER TABLE ... ADD COLUMN``.
    """
    table = validate_table_name(table)
    existing = {name.upper() for name in table_columns(hook, table)}
    missing = [name for name in columns if name.upper() not in existing]
    for name in missing:
        hook.run(f"ALTER TABLE {table} ADD COLUMN {validate_identifier(name, what='column')} {columns[name]}")
    return missing


def read_dataframe(
    hook: DbApiHook, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """``hook.get_df(..., df_type="pandas")`` without pandas' "only supports SQLAlchemy connectable" warning.

    common.sql hands pandas the hook's DBAPI connection, which reads correctly (tested on Snowflake and SQLite) but
    makes pandas warn on every read; a successful task should log no warnings.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="pandas only supports SQLAlchemy connectable", category=UserWarning
        )
        return hook.get_df(sql, parameters=parameters, df_type="pandas")
