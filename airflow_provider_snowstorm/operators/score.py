"""``BatchScoreOperator``: score a window of new days with the registry's model and store the predictions.

Predictions are written idempotently: re-scoring a window deletes that window's rows for the series and inserts the
new ones in one transaction, so a retry or a backfill replaces rows and a failure mid-write leaves the old ones.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider_snowstorm.core.schema import (
    CONTINUING,
    DATE,
    IS_ANOMALY,
    MODEL_NAME,
    MODEL_VERSION,
    PREDICTION_COLUMNS,
    RESULT_COLUMNS,
    SCORED_AT,
    SERIES,
    TRAINING_RUN,
)
from airflow_provider_snowstorm.hooks.wandb import WandbHook
from airflow_provider_snowstorm.links.wandb import push_wandb_run_url
from airflow_provider_snowstorm.operators.base import (
    FeatureSourceOperator,
    SeriesInputError,
    describe_series,
)
from airflow_provider_snowstorm.registry import (
    ModelNotFoundError,
    ModelRegistry,
    ModelVersion,
    validate_alias,
    validate_version,
)
from airflow_provider_snowstorm.utils.sql import (
    add_missing_columns,
    create_table_sql,
    in_list,
    replace_rows,
    validate_table_name,
)

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context

    from airflow_provider_snowstorm.core.interface import AnomalyDetector

__all__ = ["BatchScoreOperator", "ModelMismatchError", "model_metadata", "results_table_ddl"]

_RESULT_TYPES = {
    DATE: "DATE NOT NULL",
    SERIES: "VARCHAR NOT NULL",
    MODEL_NAME: "VARCHAR",
    MODEL_VERSION: "VARCHAR",
    TRAINING_RUN: "VARCHAR",
    SCORED_AT: "TIMESTAMP",
    IS_ANOMALY: "BOOLEAN",
    CONTINUING: "BOOLEAN",
}


class ModelMismatchError(ValueError):
    """The registry's model was not trained for this series or this season length."""


def model_metadata(stored: ModelVersion) -> dict[str, Any]:
    """What training recorded about a version: the store keeps it under ``metadata``, a W&B artifact at the top."""
    nested = stored.metadata.get("metadata")
    return dict(nested if isinstance(nested, dict) else stored.metadata)


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, pd.Timestamp | datetime) else value


def _result_type(name: str) -> str:
    return _RESULT_TYPES.get(name, "FLOAT")


def results_table_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the predictions table (portable types; Snowflake maps them natively)."""
    return create_table_sql(
        table, {name: _result_type(name) for name in RESULT_COLUMNS}, what="results_table"
    )


def _whole_number(value: Any, parameter: str, *, minimum: int) -> int:
    """A templated count (``"7"`` renders as a string) as an int, or an error naming the parameter."""
    try:
        number = int(value)
        if isinstance(value, float | str) and float(value) != number:
            raise ValueError
    except (TypeError, ValueError):
        raise SeriesInputError(f"{parameter} must be a whole number, got {value!r}") from None
    if number < minimum:
        raise SeriesInputError(f"{parameter} must be at least {minimum}, got {value!r}")
    return number


def _day(value: Any, parameter: str) -> pd.Timestamp:
    """A window bound: an ISO date (a timestamp must be at midnight); errors name the parameter."""
    try:
        day = pd.to_datetime(value, format="ISO8601") if isinstance(value, str) else pd.Timestamp(value)
    except (TypeError, ValueError) as error:
        raise SeriesInputError(
            f"{parameter} {value!r} is not a date (expected YYYY-MM-DD): {error}"
        ) from None
    if day is pd.NaT or pd.isna(day):
        raise SeriesInputError(f"{parameter} {value!r} is not a date (expected YYYY-MM-DD)")
    if day.tzinfo is not None:
        day = day.tz_convert("UTC").tz_localize(None)
    if day != day.normalize():
        raise SeriesInputError(f"{parameter} {value!r} has a time of day; give a date (YYYY-MM-DD)")
    return day


def _bind(value: Any, *, sqlite: bool) -> Any:
    """A value as the database driver should receive it: dates as dates, timestamps whole (UTC, no zone)."""
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        # sqlite3's default datetime adapter is deprecated: give SQLite the ISO text it would have stored.
        return stamp.isoformat(sep=" ") if sqlite else stamp.to_pydatetime()
    return _json_safe(value)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _json_safe(value.item())
    return value


class BatchScoreOperator(FeatureSourceOperator):
    """Score days ``window_start``..``window_end`` of each cost series with its registered model.

    :param window_start: First day to score (ISO date, templated). Default: ``window_days`` before the last day.
    :param window_end: Last day to score (templated). Default: the last day in the features, which also bounds a
        window given by ``window_days`` alone.
    :param window_days: Size of the default window.
    :param history_days: Days before the window to read as decomposition history; default: what the model needs
        (``required_history_days``, about seven months with the default detector).
    :param model_alias: Registry alias to score with (``latest``), unless ``model_version`` pins a version.
    :param expected_period: If set, the model must have been trained with this season length.
    :param results_table: ``[database.][schema.]table`` receiving the predictions; created if missing.
    :param results_conn_id: SQL connection for the results (default: ``conn_id``).
    :param log_to_wandb: Log the scored window as a W&B run (job type ``score``) and link it from the task.
        Templated (e.g. off for backfill runs).
    :param skip_missing_model: Skip the task (instead of failing) when the registry has no model with that alias:
        shadow scoring of a ``challenger`` that was never trained.

    Every prediction row names its model version and the W&B run that trained it (``training_run``).

    With ``chunk_model`` the task scores all its series with their chunk's one model, writes them in bulk and
    returns one summary: ``series_count, first_series, last_series``, the model and runs as below, ``rows`` (a count)
    and ``anomalies`` (the flagged rows).

    Returns (XCom) per series: ``series, model_name, model_version, training_end, run_url`` (the scoring run),
    ``training_run`` and ``training_run_url`` (the run that trained the model, when known), ``window_start,
    window_end, rows`` (every scored day) and ``anomalies`` (the flagged days); a dict for one series, a list for
    several.
    """

    template_fields: Sequence[str] = (
        *FeatureSourceOperator.template_fields,
        "window_start",
        "window_end",
        "window_days",
        "model_alias",
        "model_version",
        "results_table",
        "log_to_wandb",
    )
    ui_color = "#fdf1e6"
    supports_chunk_model = True

    def __init__(
        self,
        *,
        window_start: str | None = None,
        window_end: str | None = None,
        window_days: int = 7,
        history_days: int | None = None,
        model_alias: str = "latest",
        model_version: str | None = None,
        expected_period: int | None = None,
        results_table: str | None = None,
        results_conn_id: str | None = None,
        log_to_wandb: bool = True,
        skip_missing_model: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.skip_missing_model = skip_missing_model
        self.window_start = window_start
        self.window_end = window_end
        self.window_days = window_days
        self.history_days = history_days
        self.model_alias = model_alias
        self.model_version = model_version
        self.expected_period = expected_period
        self.results_table = results_table
        self.results_conn_id = results_conn_id
        self.log_to_wandb = log_to_wandb

    # -- model -------------------------------------------------------------------------------------------------------

    def load_model(self, registry: ModelRegistry, series: str) -> tuple[AnomalyDetector, str]:
        """Fetch the model of ``series`` (one alias resolution: the file and its version agree) and load it."""
        # scikit-learn and skops load here, not when the scheduler parses DAG files.
        from airflow_provider_snowstorm.core.persistence import load_detector

        name = self.model_name_for(series)
        selector = f"version {self.model_version}" if self.model_version else f"alias {self.model_alias!r}"
        try:
            with tempfile.TemporaryDirectory(prefix="snowstorm-score-") as workdir:
                path, stored = registry.fetch(
                    name, alias=self.model_alias, version=self.model_version, dest_dir=workdir
                )
                detector = load_detector(path)
        except ModelNotFoundError as error:
            raise ModelNotFoundError(
                f"no model {name!r} with {selector} for cost series {series!r}: train it first ({error})"
            ) from error
        if self.chunk_model:
            known = set(detector.series_)
            missing = [member for member in self.series_list() if member not in known]
            if missing:
                raise ModelMismatchError(
                    f"model {name!r} ({stored.version}) was trained on {len(known)} series without "
                    f"{len(missing)} of this chunk's, such as {missing[:10]}: train the same chunk list"
                )
        elif series not in detector.series_:
            raise ModelMismatchError(
                f"model {name!r} ({stored.version}) was trained on series {detector.series_}, not {series!r}"
            )
        period = detector.metadata.get("period")
        if self.expected_period is not None and period != self.expected_period:
            raise ModelMismatchError(
                f"model {name!r} ({stored.version}) has period {period}, expected {self.expected_period}"
            )
        self.log.info("Scoring %r with model %s %s (%s)", series, name, stored.version, stored.uri)
        # What training recorded, with the run that trained this version: the report's "training run" link, and
        # every prediction row's lineage.
        if not hasattr(self, "_model_records"):
            self._model_records = {}
        self._model_records[series] = model_metadata(stored)
        return detector, stored.version

    def training_run(self, series: str) -> dict[str, Any]:
        """The W&B record of the run that trained the loaded model of ``series`` (``run_id``, ``run_url``)."""
        record = getattr(self, "_model_records", {}).get(series, {}).get("wandb")
        return record if isinstance(record, dict) else {}

    def check_inputs(self) -> list[str]:
        """Every parameter checked before any download, query or fit; errors name the parameter."""
        names = super().check_inputs()
        self.window_days = _whole_number(self.window_days, "window_days", minimum=1)
        if self.history_days is not None:
            self.history_days = _whole_number(self.history_days, "history_days", minimum=0)
        if self.expected_period is not None:
            self.expected_period = _whole_number(self.expected_period, "expected_period", minimum=1)
        start = _day(self.window_start, "window_start") if self.window_start else None
        end = _day(self.window_end, "window_end") if self.window_end else None
        if start is not None and end is not None and end < start:
            raise SeriesInputError(f"window_end {end.date()} is before window_start {start.date()}")
        try:
            if self.model_version:
                validate_version(self.model_version, what="model_version")
            elif self.model_alias != "latest":
                validate_alias(self.model_alias, what="model_alias")
        except ValueError as error:
            raise SeriesInputError(str(error)) from None
        if self.results_table:
            validate_table_name(self.results_table, what="results_table")
        if isinstance(self.log_to_wandb, str) and self.log_to_wandb.strip().lower() in ("true", "false"):
            self.log_to_wandb = self.log_to_wandb.strip().lower() == "true"  # rendered without native types
        if not isinstance(self.log_to_wandb, bool):
            raise SeriesInputError(f"log_to_wandb must be true or false, got {self.log_to_wandb!r}")
        return names

    # -- window ------------------------------------------------------------------------------------------------------

    def _window(self, names: list[str], history_days: int) -> tuple[pd.Timestamp, pd.Timestamp, pd.DataFrame]:
        end = _day(self.window_end, "window_end") if self.window_end else None
        start = _day(self.window_start, "window_start") if self.window_start else None
        read_from = None if start is None else (start - pd.Timedelta(days=history_days)).date().isoformat()
        features = self.load_features(
            names, start=read_from, end=None if end is None else end.date().isoformat()
        )
        # A window of window_days ending after the last feature day (a scheduled run whose last days are still
        # settling) ends on it; an explicit window_start..window_end is taken as given.
        if end is None or (start is None and end > features.index[-1]):
            end = features.index[-1]
        start = start if start is not None else end - pd.Timedelta(days=int(self.window_days) - 1)
        in_window = features[(features.index >= start) & (features.index <= end)]
        if in_window.empty:
            bounds = "window_start/window_end" if self.window_start else "window_end/window_days"
            raise SeriesInputError(
                f"no feature rows to score between {start.date()} and {end.date()} (from {bounds}); "
                f"the features run from {features.index[0].date()} to {features.index[-1].date()}"
            )
        return start, end, features[features.index >= start - pd.Timedelta(days=history_days)]

    # -- writing -----------------------------------------------------------------------------------------------------

    def write_predictions(self, hook: DbApiHook, predictions: pd.DataFrame, start: Any, end: Any) -> None:
        """Replace the window's rows of these series with ``predictions`` in one transaction."""
        table = validate_table_name(self.results_table, what="results_table")
        series = sorted(predictions[SERIES].astype(str).unique())
        placeholder = hook.placeholder
        sqlite = getattr(hook, "conn_type", None) == "sqlite"
        date_position = RESULT_COLUMNS.index(DATE)
        rows = [
            tuple(
                _as_date(value) if position == date_position else _bind(value, sqlite=sqlite)
                for position, value in enumerate(record)
            )
            for record in predictions[list(RESULT_COLUMNS)].itertuples(index=False, name=None)
        ]
        try:
            hook.run(results_table_ddl(table))
        except Exception:
            # Two writers creating the table at once can collide (PostgreSQL's catalog); the second try sees it.
            hook.run(results_table_ddl(table))
        add_missing_columns(hook, table, {name.upper(): _result_type(name) for name in RESULT_COLUMNS})
        in_series, series_parameters = in_list(hook, SERIES.upper(), series)
        written = replace_rows(
            hook,
            table,
            [name.upper() for name in RESULT_COLUMNS],
            rows,
            where=f"{DATE.upper()} >= {placeholder} AND {DATE.upper()} <= {placeholder} AND {in_series}",
            where_parameters=(start.date(), end.date(), *series_parameters),
            types={name.upper(): _result_type(name) for name in RESULT_COLUMNS},
        )
        self.log.info("Wrote %d prediction rows for %s into %s", written, describe_series(series), table)

    # -- execute -----------------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        names = self.check_inputs()
        hook = WandbHook(wandb_conn_id=self.wandb_conn_id)
        self._model_records: dict[str, dict[str, Any]] = {}
        try:
            # A chunk has one model: the first series' name resolves to it.
            loaded = names[:1] if self.chunk_model else names
            models = {series: self.load_model(hook.registry, series) for series in loaded}
        except ModelNotFoundError as error:
            if not self.skip_missing_model:
                raise
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException(str(error)) from None
        if self.chunk_model:
            return self._score_chunk(hook, names, *models[names[0]], context)
        history_days = self.history_days or max(model.required_history_days for model, _ in models.values())
        start, end, features = self._window(names, history_days)
        scored_at = datetime.now(UTC).replace(tzinfo=None)  # UTC, whole: date and time of day
        summaries, frames = [], []
        for series, (detector, version) in models.items():
            try:
                predictions = detector.detect(features[[series]], start=start)
            except ValueError as error:
                raise ValueError(f"cannot score cost series {series!r}: {error}") from error
            predictions = predictions[predictions[DATE] <= end].copy()
            predictions[SERIES] = predictions[SERIES].astype(str)
            predictions[MODEL_NAME] = self.model_name_for(series)
            predictions[MODEL_VERSION] = version
            predictions[TRAINING_RUN] = self.training_run(series).get("run_id")
            predictions[SCORED_AT] = scored_at
            frames.append(predictions)
            summaries.append(
                self._summary(series, version, start, end, predictions, detector.metadata["training_end"])
            )
        combined = pd.concat(frames, ignore_index=True)
        if self.results_table:
            self.write_predictions(self.get_db_hook(self.results_conn_id), combined, start, end)
        if self.log_to_wandb:
            run_url = self._log_scoring(hook, combined, names, start, end, context)
            for summary in summaries:
                summary["run_url"] = run_url
        else:  # no run: the task shows no link (and Airflow logs no missing XCom)
            push_wandb_run_url(context, None)
        anomalies = int(combined[IS_ANOMALY].sum())
        self.log.info(
            "Scored %s from %s to %s: %d anomalous day(s)", names, start.date(), end.date(), anomalies
        )
        return summaries[0] if isinstance(self.series, str) else summaries

    def _score_chunk(
        self, hook: WandbHook, names: list[str], detector: AnomalyDetector, version: str, context: Context
    ) -> dict[str, Any]:
        """One ``detect`` over the chunk's columns, one bulk write, one summary (``chunk_model``)."""
        start, end, features = self._window(names, self.history_days or detector.required_history_days)
        try:
            predictions = detector.detect(features[names], start=start)
        except ValueError as error:
            raise ValueError(
                f"cannot score the chunk of {len(names)} series ({names[0]} ..): {error}"
            ) from error
        predictions = predictions[predictions[DATE] <= end].copy()
        predictions[SERIES] = predictions[SERIES].astype(str)
        model_name = self.chunk_model_name()
        predictions[MODEL_NAME] = model_name
        predictions[MODEL_VERSION] = version
        predictions[TRAINING_RUN] = self.training_run(names[0]).get("run_id")
        predictions[SCORED_AT] = datetime.now(UTC).replace(tzinfo=None)
        if self.results_table:
            self.write_predictions(self.get_db_hook(self.results_conn_id), predictions, start, end)
        run_url = None
        if self.log_to_wandb:
            run_url = self._log_scoring(hook, predictions, names, start, end, context)
        else:
            push_wandb_run_url(context, None)
        anomalies = [
            {name: _json_safe(value) for name, value in record.items()}
            for record in predictions.loc[predictions[IS_ANOMALY], list(PREDICTION_COLUMNS)].to_dict(
                "records"
            )
        ]
        for row in anomalies:
            row[IS_ANOMALY], row[CONTINUING] = True, bool(row[CONTINUING])
        self.log.info(
            "Scored %s from %s to %s with %s %s: %d anomalous row(s)",
            describe_series(names),
            start.date(),
            end.date(),
            model_name,
            version,
            len(anomalies),
        )
        return {
            "series_count": len(names),
            "first_series": names[0],
            "last_series": names[-1],
            "model_name": model_name,
            "model_version": version,
            "training_end": detector.metadata["training_end"],
            "run_url": run_url,
            "training_run": self.training_run(names[0]).get("run_id"),
            "training_run_url": self.training_run(names[0]).get("run_url"),
            "window_start": start.date().isoformat(),
            "window_end": end.date().isoformat(),
            "rows": len(predictions),
            "anomalies": anomalies,
        }

    def _summary(
        self,
        series: str,
        version: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        predictions: pd.DataFrame,
        training_end: str,
    ) -> dict[str, Any]:
        rows = [
            {name: _json_safe(value) for name, value in record.items()}
            for record in predictions[list(PREDICTION_COLUMNS)].to_dict("records")
        ]
        for row in rows:
            row[IS_ANOMALY] = bool(row[IS_ANOMALY])
            row[CONTINUING] = bool(row[CONTINUING])
        return {
            "series": series,
            "model_name": self.model_name_for(series),
            "model_version": version,
            "training_end": training_end,
            "run_url": None,
            "training_run_url": self.training_run(series).get("run_url"),
            "training_run": self.training_run(series).get("run_id"),
            "window_start": start.date().isoformat(),
            "window_end": end.date().isoformat(),
            "rows": rows,
            "anomalies": [row for row in rows if row[IS_ANOMALY]],
        }

    def _log_scoring(
        self,
        hook: WandbHook,
        predictions: pd.DataFrame,
        names: list[str],
        start: pd.Timestamp,
        end: pd.Timestamp,
        context: Context,
    ) -> str | None:
        label = names[0] if len(names) == 1 else f"{len(names)}-series"
        config = self.wandb_run_config(
            context,
            series=names,
            window_start=start.date().isoformat(),
            window_end=end.date().isoformat(),
            model_alias=self.model_alias,
            model_version=self.model_version,
        )
        with hook.start_run(
            f"score-{label}", group=context["run_id"], job_type="score", config=config
        ) as run:
            run_url = hook.run_url(run)
            push_wandb_run_url(context, hook.link_url(run))
            # A chunk logs its anomalous rows only: a table of every row of thousands of series helps nobody.
            logged = predictions[predictions[IS_ANOMALY]] if self.chunk_model else predictions
            hook.log_table("predictions", logged.astype({DATE: str, SERIES: str, SCORED_AT: str}), run=run)
            hook.log_metrics(
                {"anomalies": int(predictions[IS_ANOMALY].sum()), "scored_days": len(predictions)}, run=run
            )
        return run_url
