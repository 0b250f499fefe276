"""What the training and scoring operators share: where features come from, and which model serves a series.

Features are a daily table with a date column and one column per cost series (``USAGE_DATE, COMPUTE, ...,
TOTAL_USAGE``), read through any Airflow SQL connection (Snowflake in production) or handed over directly (an upstream
XCom: a list of records or a ``{"usage_date": [...], "<series>": [...]}`` mapping).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
from airflow.sdk import BaseHook, BaseOperator

from airflow_provider_snowstorm.core.schema import DATE, SERIES_NAME, default_model_name
from airflow_provider_snowstorm.links.wandb import WandbRunLink
from airflow_provider_snowstorm.registry.store import validate_model_name
from airflow_provider_snowstorm.utils.sql import (
    IdentifierError,
    in_list,
    read_dataframe,
    validate_identifier,
    validate_table_name,
)

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context

__all__ = [
    "FeatureSourceOperator",
    "SeriesInputError",
    "default_chunk_model_name",
    "default_model_name",
    "describe_series",
]

_SERIES_NAME = SERIES_NAME


class SeriesInputError(ValueError):
    """The features an operator was given cannot serve the requested cost series."""


def default_chunk_model_name(series: Sequence[str], prefix: str = "snowstorm") -> str:
    """The model of a chunk of series: ``<prefix>-chunk-<16 hex digits of the SHA-256 of the series list>``.

    Derived from the members (in order), so training and scoring of the same chunk list find the same model without
    any shared state; the model's metadata lists the series.
    """
    digest = hashlib.sha256(json.dumps(list(series)).encode()).hexdigest()[:16]
    return f"{prefix}-chunk-{digest}"


def describe_series(series: Sequence[str]) -> str:
    """A series list for a log line: the names, or for a chunk its size and first and last names."""
    names = list(series)
    return str(names) if len(names) <= 10 else f"{len(names)} series ({names[0]} .. {names[-1]})"


def _as_series_list(series: str | Sequence[str]) -> list[str]:
    names = [series] if isinstance(series, str) else list(series)
    if not names:
        raise SeriesInputError("no cost series given: pass a series name or a non-empty list of them")
    for name in names:
        if not isinstance(name, str) or not _SERIES_NAME.fullmatch(name):
            raise SeriesInputError(
                f"cost series {name!r} is not a valid series name (letters, digits, '_', ':')"
            )
    return names


class FeatureSourceOperator(BaseOperator):
    """Base for operators that read daily cost features and work per cost series.

    :param series: One cost series (a features column such as ``compute``) or a list of them. Templated.
    :param conn_id: An Airflow SQL connection (any ``DbApiHook``) to read features from.
    :param features_table: ``[database.][schema.]table`` holding the features; validated, never pasted raw.
    :param sql: Instead of ``features_table``, a query returning ``date_column`` and the series columns. Templated.
    :param features: Instead of SQL, the features themselves (records or a column mapping, e.g. from XCom).
    :param date_column: The date column of the features.
    :param wandb_conn_id: The Weights & Biases connection (offline by default: no account needed).
    :param model_prefix: Model names are ``<prefix>-<series>`` unless ``model_name`` is given.
    :param model_name: One registry model name; only with a single series (or with ``chunk_model``). Templated.
    :param features_layout: ``"wide"`` (a date column and one column per series) or ``"long"`` (one row per date
        and series: ``date_column``, ``series_column``, ``value_column``), the layout that holds a million series;
        a day without a row for a series counts as zero cost, as ``build_usage_features`` zero-fills.
    :param series_column, value_column: The long layout's series and value columns (validated identifiers).
    :param chunk_model: Keyword-only. One model for all the given series (a chunk, one mapped task per chunk: see
        ``core.chunking``) instead of one per series: one vectorised fit or score, one registry model named
        ``default_chunk_model_name(series, model_prefix)`` (or ``model_name``) whose metadata lists the series.
    """

    template_fields: Sequence[str] = ("series", "sql", "features_table", "features", "model_name")
    # Operators that fit or score a chunk with one model; the others (evaluation, drift) work per series.
    supports_chunk_model: ClassVar[bool] = False
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}
    operator_extra_links = (WandbRunLink(),)

    def __init__(
        self,
        *,
        series: str | Sequence[str],
        conn_id: str | None = None,
        features_table: str | None = None,
        sql: str | None = None,
        features: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]] | None = None,
        date_column: str = "USAGE_DATE",
        wandb_conn_id: str = "wandb_default",
        model_prefix: str = "snowstorm",
        model_name: str | None = None,
        chunk_model: bool = False,
        features_layout: str = "wide",
        series_column: str = "SERIES",
        value_column: str = "VALUE",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chunk_model = chunk_model
        self.features_layout = features_layout
        self.series_column = series_column
        self.value_column = value_column
        self.series = series
        self.conn_id = conn_id
        self.features_table = features_table
        self.sql = sql
        self.features = features
        self.date_column = date_column
        self.wandb_conn_id = wandb_conn_id
        self.model_prefix = model_prefix
        self.model_name = model_name

    # -- inputs ------------------------------------------------------------------------------------------------------

    def series_list(self) -> list[str]:
        names = _as_series_list(self.series)
        if self.model_name and len(names) > 1 and not self.chunk_model:
            raise SeriesInputError("model_name names one model: give a single series, or use model_prefix")
        return names

    def wandb_run_config(self, context: Context, **fields: Any) -> dict[str, Any]:
        """A W&B run's config: ``fields``, then where the run comes from (DAG, DAG run, task, map index)."""
        return {
            **fields,
            "dag_id": context["dag"].dag_id,
            "dag_run_id": context["run_id"],
            "task_id": self.task_id,
            "map_index": context["ti"].map_index,
        }

    def model_name_for(self, series: str) -> str:
        if self.chunk_model:
            return self.chunk_model_name()
        return self.model_name or default_model_name(series, self.model_prefix)

    def chunk_model_name(self) -> str:
        """The one model of this task's series (``chunk_model``)."""
        return self.model_name or default_chunk_model_name(_as_series_list(self.series), self.model_prefix)

    def check_inputs(self) -> list[str]:
        """Validate series, model names and table/column names before any query, fit or download.

        Returns the series list. Errors name the operator parameter at fault.
        """
        names = self.series_list()
        if self.chunk_model and not self.supports_chunk_model:
            raise SeriesInputError(
                f"{self.task_id}: {type(self).__name__} works per series: chunk_model is for the training and "
                "scoring operators"
            )
        if len(set(names)) != len(names):
            repeated = sorted(name for name, count in Counter(names).items() if count > 1)
            raise SeriesInputError(f"{self.task_id}: series {repeated[:10]} are given more than once")
        for series in names[:1] if self.chunk_model else names:
            try:
                validate_model_name(self.model_name_for(series))
            except ValueError as error:
                parameter = "model_name" if self.model_name else "model_prefix"
                raise SeriesInputError(f"{self.task_id}: {parameter}: {error}") from None
        if self.features is None and not self.sql and self.features_table:
            validate_table_name(self.features_table, what="features_table")
        if self.features_layout not in ("wide", "long"):
            raise SeriesInputError(
                f"{self.task_id}: features_layout must be 'wide' or 'long', got {self.features_layout!r}"
            )
        try:
            validate_identifier(self.date_column, what="date_column")
            if self.features_layout == "long":
                validate_identifier(self.series_column, what="series_column")
                validate_identifier(self.value_column, what="value_column")
        except IdentifierError as error:
            raise SeriesInputError(f"{self.task_id}: {error}") from None
        return names

    def _widen(self, frame: pd.DataFrame, date_column: str, series: list[str], source: str) -> pd.DataFrame:
        return _widen_long(
            frame,
            date_column,
            self.series_column.strip('"').lower(),
            self.value_column.strip('"').lower(),
            series,
            source,
        )

    def get_db_hook(self, conn_id: str | None = None) -> DbApiHook:
        """The SQL hook of ``conn_id`` (default: the features connection)."""
        conn_id = conn_id or self.conn_id
        if not conn_id:
            raise SeriesInputError(f"{self.task_id}: give conn_id (with features_table or sql) or features")
        from airflow.sdk.exceptions import AirflowException

        connection = BaseHook.get_connection(conn_id)
        try:
            return connection.get_hook()
        except AirflowException as error:
            if "Unknown hook type" not in str(error):
                raise
            raise AirflowException(
                f"connection {conn_id!r} has type {connection.conn_type!r}, which no installed Airflow provider "
                f"serves: install that database's provider on every worker (for a {connection.conn_type!r} "
                f"connection usually apache-airflow-providers-{connection.conn_type}); Snowflake's is included"
            ) from error

    def _features_query(
        self, start: str | None, end: str | None, hook: DbApiHook, series: list[str]
    ) -> tuple[str, list[Any]]:
        placeholder = hook.placeholder
        if self.sql:
            return self.sql, []
        if not self.features_table:
            raise SeriesInputError(
                f"{self.task_id}: give features_table or sql to read features with conn_id"
            )
        table = validate_table_name(self.features_table, what="features_table")
        date_column = validate_identifier(self.date_column, what="date_column")
        bounds = [(">=", start), ("<=", end)]
        conditions = [f"{date_column} {operator} {placeholder}" for operator, value in bounds if value]
        parameters = [value for _, value in bounds if value]
        if self.features_layout == "long":
            # Only the rows of these series: a chunk reads its own slice of a table of a million series.
            series_column = validate_identifier(self.series_column, what="series_column")
            value_column = validate_identifier(self.value_column, what="value_column")
            in_series, series_parameters = in_list(hook, series_column, series)
            where = " AND ".join([*conditions, in_series])
            query = f"SELECT {date_column}, {series_column}, {value_column} FROM {table} WHERE {where}"  # noqa: S608
            return query, [*parameters, *series_parameters]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        # All columns: a missing series then fails below with the list of those that exist, not as a SQL error.
        query = f"SELECT * FROM {table}{where} ORDER BY {date_column}"  # noqa: S608
        return query, parameters

    def load_features(
        self, series: list[str], *, start: str | None = None, end: str | None = None
    ) -> pd.DataFrame:
        """Daily features for ``series`` between ``start`` and ``end`` (inclusive), indexed by date.

        Column names are matched case-insensitively (Snowflake returns upper case). A missing series or a window
        without rows fails with the names and dates involved.
        """
        if self.features is not None:
            frame = pd.DataFrame(self.features)
            source = "the given features"
        else:
            hook = self.get_db_hook()
            query, parameters = self._features_query(start, end, hook, series)
            self.log.info("Reading features for %s through %r", describe_series(series), self.conn_id)
            frame = read_dataframe(hook, query, parameters or None)
            source = f"features of {self.features_table or 'the query'} through {self.conn_id!r}"
        frame = frame.rename(columns=lambda column: str(column).lower())
        date_column = self.date_column.strip('"').lower()
        if self.features_layout == "long":
            frame = self._widen(frame, date_column, series, source)
        if date_column not in frame.columns:
            raise SeriesInputError(
                f"{source} have no date column {self.date_column!r}; got {sorted(frame.columns)}"
            )
        missing = [name for name in series if name.lower() not in frame.columns]
        if missing:
            available = sorted(column for column in frame.columns if column != date_column)
            raise SeriesInputError(f"cost series {missing} do not exist in {source}; available: {available}")
        frame = frame.reset_index(drop=True)
        dates = _parse_dates(frame.pop(date_column), column=self.date_column, source=source)
        values = {name: _parse_numbers(frame[name.lower()], name, dates, source) for name in series}
        frame = pd.DataFrame(values).set_axis(pd.DatetimeIndex(dates, name=DATE)).sort_index()
        if start:
            frame = frame[frame.index >= pd.Timestamp(start)]
        if end:
            frame = frame[frame.index <= pd.Timestamp(end)]
        if frame.empty:
            window = f" between {start or 'the beginning'} and {end or 'the end'}"
            raise SeriesInputError(f"{source} have no rows{window}")
        return frame[series]


def _widen_long(
    frame: pd.DataFrame,
    date_column: str,
    series_column: str,
    value_column: str,
    series: list[str],
    source: str,
) -> pd.DataFrame:
    """Long rows (date, series, value) as the wide frame ``load_features`` reads: one column per series, zero
    where a series has no row on a day that others have."""
    absent = [name for name in (date_column, series_column, value_column) if name not in frame.columns]
    if absent:
        raise SeriesInputError(
            f"{source} have no column(s) {absent} (long layout); got {sorted(frame.columns)}"
        )
    keys = frame[[date_column, series_column]].astype(str)
    repeated = frame[keys.duplicated(keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        raise SeriesInputError(
            f"{source} have {len(repeated)} rows that repeat a (date, series) pair, such as "
            f"{first[series_column]!r} on {first[date_column]}: one row per date and series"
        )
    # Series names are matched case-insensitively, as wide columns are.
    names = frame[series_column].astype(str).str.lower()
    values = pd.to_numeric(frame[value_column], errors="coerce")
    bad = values.isna() & frame[value_column].notna()
    if bad.any():
        first = frame[bad].iloc[0]
        raise SeriesInputError(
            f"{source}: series {first[series_column]!r} has a non-numeric value {first[value_column]!r} on "
            f"{first[date_column]}"
        )
    wide = pd.DataFrame({date_column: frame[date_column], "series": names, "value": values}).pivot(
        index=date_column, columns="series", values="value"
    )
    wide = wide.reindex(columns=[name.lower() for name in series]).dropna(axis=1, how="all").fillna(0.0)
    return wide.rename_axis(columns=None).reset_index()


def _parse_dates(raw: pd.Series, *, column: str, source: str) -> pd.Series:
    """Dates of the features, one per row; errors name the column, the row (1-based) and the value."""
    parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    missing = parsed.isna()
    if missing.any():
        position = int(missing.to_numpy().argmax())
        value = raw.iloc[position]
        what = "has no date" if pd.isna(value) else f"has {value!r}, which is not a date"
        more = f" ({int(missing.sum())} such rows)" if missing.sum() > 1 else ""
        raise SeriesInputError(f"{source}: column {column!r} row {position + 1} {what}{more}")
    timed = parsed != parsed.dt.normalize()
    if timed.any():
        position = int(timed.to_numpy().argmax())
        raise SeriesInputError(
            f"{source}: column {column!r} row {position + 1} has {raw.iloc[position]!r}, a date with a time of "
            "day; features are daily: give one row per calendar date (a DATE, or a timestamp at midnight)"
        )
    return parsed


def _parse_numbers(raw: pd.Series, series: str, dates: pd.Series, source: str) -> pd.Series:
    """A cost column as floats; a cell that is not a number fails naming the column, the date and the row."""
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna() & raw.notna()
    if bad.any():
        position = int(bad.to_numpy().argmax())
        count = int(bad.sum())
        more = f"; {count} non-numeric cells in all" if count > 1 else ""
        raise SeriesInputError(
            f"{source}: column {series!r} has a non-numeric value {raw.iloc[position]!r} on "
            f"{dates.iloc[position].date()} (row {position + 1}){more}"
        )
    return numbers.astype(float)
