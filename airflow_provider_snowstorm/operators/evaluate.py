"""``ModelEvaluationOperator``: how well a registered model finds labelled incidents, on a backtest or a shadow period.

Labels come from a feedback table that people fill (one row per incident marked ``real`` or ``false_alarm``;
``feedback_table_ddl`` creates it, README "Feedback" shows the insert) and/or are given directly. The metrics
(``core.evaluation``: event precision, recall, F1, false alarms per month, average precision) go to the evaluations
table (replaced per model version, series and span: re-running never duplicates), to the model's own W&B training
run (summary values, idempotent across retries, and a chart), and to XCom.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from airflow_provider_snowstorm.core.schema import (
    DATE,
    EVALUATION_COLUMNS,
    EVALUATION_KEY_COLUMNS,
    FEEDBACK_COLUMNS,
    FEEDBACK_VERDICTS,
    MODEL_NAME,
    MODEL_VERSION,
    RESULT_COLUMNS,
    SERIES,
)
from airflow_provider_snowstorm.hooks.wandb import WandbHook
from airflow_provider_snowstorm.links.wandb import push_wandb_run_url
from airflow_provider_snowstorm.operators.base import SeriesInputError
from airflow_provider_snowstorm.operators.score import BatchScoreOperator, _day, results_table_ddl
from airflow_provider_snowstorm.utils.sql import (
    create_table_sql,
    read_dataframe,
    replace_rows,
    validate_table_name,
)

if TYPE_CHECKING:
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.sdk import Context

__all__ = [
    "SPANS",
    "ModelEvaluationOperator",
    "evaluations_table_ddl",
    "feedback_table_ddl",
    "read_feedback_labels",
    "scored_span",
]

SPANS = ("backtest", "shadow", "production")
_FEEDBACK_TYPES = {"start_date": "DATE NOT NULL", "end_date": "DATE NOT NULL", "reported_at": "TIMESTAMP"}
_EVALUATION_TYPES = {
    "span_start": "DATE NOT NULL",
    "span_end": "DATE NOT NULL",
    "evaluated_at": "TIMESTAMP",
    **{name: "INTEGER" for name in ("days", "incidents", "found", "missed", "false_alarms")},
    **{
        name: "FLOAT" for name in ("precision", "recall", "f1", "false_alarms_per_month", "average_precision")
    },
}


def _ddl(table: str, columns: Sequence[str], types: Mapping[str, str], what: str) -> str:
    return create_table_sql(table, {name: types.get(name, "VARCHAR") for name in columns}, what=what)


def feedback_table_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the feedback table (``core.schema.FEEDBACK_COLUMNS``)."""
    return _ddl(table, FEEDBACK_COLUMNS, _FEEDBACK_TYPES, "feedback_table")


def evaluations_table_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the evaluations table (``core.schema.EVALUATION_COLUMNS``)."""
    return _ddl(table, EVALUATION_COLUMNS, _EVALUATION_TYPES, "evaluations_table")


def read_feedback_labels(hook: DbApiHook, table: str, series: str, start: date, end: date) -> pd.DataFrame:
    """The ``real`` incidents of ``series`` in the feedback table that overlap ``start``..``end`` (labels frame).

    A verdict other than ``real``/``false_alarm`` fails naming the row, so a typo does not silently drop a label.
    """
    table = validate_table_name(table, what="feedback_table")
    hook.run(feedback_table_ddl(table))
    placeholder = hook.placeholder
    rows = read_dataframe(
        hook,
        f"SELECT SERIES, START_DATE, END_DATE, VERDICT FROM {table} "  # noqa: S608 - validated, values bound
        f"WHERE LOWER(SERIES) = LOWER({placeholder}) AND START_DATE <= {placeholder} AND END_DATE >= {placeholder}",
        [series, end, start],
    ).rename(columns=str.lower)
    verdicts = rows["verdict"].astype(str).str.strip().str.lower()
    bad = ~verdicts.isin(FEEDBACK_VERDICTS)
    if bad.any():
        row = rows[bad].iloc[0]
        raise ValueError(
            f"feedback table {table}: {row['series']} {row['start_date']}..{row['end_date']} has verdict "
            f"{row['verdict']!r}; use one of {list(FEEDBACK_VERDICTS)}"
        )
    real = rows[verdicts == FEEDBACK_VERDICTS[0]]
    return pd.DataFrame(
        {"series": series, "start": real["start_date"].to_numpy(), "end": real["end_date"].to_numpy()}
    )


def scored_span(
    hook: DbApiHook, table: str, model_name: str, version: str, series: str
) -> tuple[date, date] | None:
    """The first and last day ``version`` of ``model_name`` scored ``series`` into ``table``; None when it never did
    (or the table does not exist yet)."""
    table = validate_table_name(table, what="predictions table")
    hook.run(results_table_ddl(table))
    placeholder = hook.placeholder
    first, last = hook.get_first(
        f"SELECT MIN({DATE.upper()}), MAX({DATE.upper()}) FROM {table} "  # noqa: S608 - validated, values bound
        f"WHERE {MODEL_NAME.upper()} = {placeholder} AND {MODEL_VERSION.upper()} = {placeholder} "
        f"AND {SERIES.upper()} = {placeholder}",
        parameters=(model_name, version, series),
    )
    if first is None:
        return None
    return pd.Timestamp(first).date(), pd.Timestamp(last).date()


class ModelEvaluationOperator(BatchScoreOperator):
    """Evaluate a series' registered model (``model_alias`` or ``model_version``) on ``window_start``..``window_end``;
    given several series (a batch), each series' own model under the same alias, one after the other.

    ``span="backtest"`` re-scores the span causally, batch by batch (``batch_days`` at a time, each batch with the
    history before it, as the daily scoring does). ``span="shadow"`` or ``"production"`` reads the rows this model
    version already wrote to ``predictions_table`` (a challenger's shadow table, or the production predictions) in
    the span. The same span and labels give comparable numbers for a champion and a challenger.

    :param labels: Incidents as records (``series, start, end``); templated. Added to the feedback table's.
    :param feedback_table: Table of user feedback (``feedback_table_ddl``); its ``real`` rows are incidents.
    :param feedback_conn_id: SQL connection of the feedback and evaluations tables (default: ``conn_id``).
    :param predictions_table: For ``span`` shadow/production: the table holding the model's scored rows.
    :param evaluations_table: Where the metrics are written (created if missing); replaced per version/series/span.
    :param span: ``backtest`` (default), ``shadow`` or ``production``.
    :param batch_days: Days scored per batch in a backtest.

    Returns (XCom) the model (name, version, configuration, training run), the span and the metrics: a dict for a
    single series, a list for several.
    """

    template_fields: Sequence[str] = (
        *BatchScoreOperator.template_fields,
        "labels",
        "feedback_table",
        "predictions_table",
        "evaluations_table",
        "span",
    )
    ui_color = "#eef6e8"
    supports_chunk_model = False  # per series: its evaluation windows and metrics are per series

    def __init__(
        self,
        *,
        labels: Sequence[Mapping[str, Any]] | None = None,
        feedback_table: str | None = None,
        feedback_conn_id: str | None = None,
        predictions_table: str | None = None,
        evaluations_table: str | None = None,
        span: str = "backtest",
        batch_days: int = 7,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.labels = labels
        self.feedback_table = feedback_table
        self.feedback_conn_id = feedback_conn_id
        self.predictions_table = predictions_table
        self.evaluations_table = evaluations_table
        self.span = span
        self.batch_days = batch_days

    def check_inputs(self) -> list[str]:
        names = super().check_inputs()
        if len(names) > 1 and self.model_version:
            raise SeriesInputError(
                f"{self.task_id}: model_version pins one series' version: give one series, or model_alias for "
                f"{len(names)}"
            )
        if self.span not in SPANS:
            raise SeriesInputError(f"span must be one of {list(SPANS)}, got {self.span!r}")
        if not (self.window_start and self.window_end):
            raise SeriesInputError("give window_start and window_end: the span to evaluate")
        if self.span != "backtest" and not self.predictions_table:
            raise SeriesInputError(f"span {self.span!r} reads stored rows: give predictions_table")
        if self.labels is None and not self.feedback_table:
            raise SeriesInputError("give labels or feedback_table: evaluation needs labelled incidents")
        for parameter in ("feedback_table", "predictions_table", "evaluations_table"):
            if getattr(self, parameter):
                validate_table_name(getattr(self, parameter), what=parameter)
        if isinstance(self.batch_days, bool) or not isinstance(self.batch_days, int) or self.batch_days < 1:
            raise SeriesInputError(f"batch_days must be a whole number >= 1, got {self.batch_days!r}")
        return names

    # -- predictions -------------------------------------------------------------------------------------------------

    def backtest(self, detector: Any, series: str) -> pd.DataFrame:
        """The span scored batch by batch, each batch with only the days before it as history."""
        start, end, features = self._window([series], detector.required_history_days)
        frames = []
        batch_start = start
        while batch_start <= end:
            batch_end = min(batch_start + pd.Timedelta(days=self.batch_days - 1), end)
            frames.append(detector.detect(features[features.index <= batch_end][[series]], start=batch_start))
            batch_start = batch_end + pd.Timedelta(days=1)
        return pd.concat(frames, ignore_index=True)

    def stored_rows(self, hook: DbApiHook, series: str, version: str) -> pd.DataFrame:
        """The rows ``version`` wrote for ``series`` into ``predictions_table`` in the span."""
        table = validate_table_name(self.predictions_table, what="predictions_table")
        placeholder = hook.placeholder
        rows = read_dataframe(
            hook,
            f"SELECT {', '.join(c.upper() for c in RESULT_COLUMNS)} FROM {table} "  # noqa: S608
            f"WHERE {SERIES.upper()} = {placeholder} AND {MODEL_NAME.upper()} = {placeholder} "
            f"AND {MODEL_VERSION.upper()} = {placeholder} AND {DATE.upper()} BETWEEN {placeholder} AND {placeholder} "
            f"ORDER BY {DATE.upper()}",
            [series, self.model_name_for(series), version, *self._span_days()],
        ).rename(columns=str.lower)
        if rows.empty:
            raise SeriesInputError(
                f"{table} has no rows of {self.model_name_for(series)} {version} for {series!r} between "
                f"{self._span_days()[0]} and {self._span_days()[1]}: nothing to evaluate"
            )
        return rows

    def _span_days(self) -> tuple[date, date]:
        return _day(self.window_start, "window_start").date(), _day(self.window_end, "window_end").date()

    def read_labels(self, series: str) -> tuple[pd.DataFrame, str]:
        """Labels for ``series`` (given and from feedback) and where they came from."""
        frames, sources = [], []
        if self.labels is not None:
            given = pd.DataFrame(list(self.labels), columns=["series", "start", "end"])
            frames.append(given[given["series"].astype(str) == series])
            sources.append(f"{len(frames[-1])} given")
        if self.feedback_table:
            hook = self.get_db_hook(self.feedback_conn_id)
            frames.append(read_feedback_labels(hook, self.feedback_table, series, *self._span_days()))
            sources.append(f"{len(frames[-1])} from {self.feedback_table}")
        return pd.concat(frames, ignore_index=True), " + ".join(sources)

    # -- execute -----------------------------------------------------------------------------------------------------

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        names = self.check_inputs()
        hook = WandbHook(wandb_conn_id=self.wandb_conn_id)
        self._model_records = {}
        results = [self._evaluate(hook, series, context) for series in names]
        return results[0] if isinstance(self.series, str) else results

    def _evaluate(self, hook: WandbHook, series: str, context: Context) -> dict[str, Any]:
        from airflow_provider_snowstorm.core.evaluation import evaluate_predictions, validate_labels

        labels, labels_source = self.read_labels(series)
        labels = validate_labels(labels, where=labels_source)
        detector, version = self.load_model(hook.registry, series)
        if self.span == "backtest":
            predictions = self.backtest(detector, series)
        else:
            predictions = self.stored_rows(self.get_db_hook(self.results_conn_id), series, version)
        metrics = evaluate_predictions(predictions, labels)
        first, last = (
            pd.to_datetime(predictions[DATE]).min().date(),
            pd.to_datetime(predictions[DATE]).max().date(),
        )
        record = self._model_records[series]
        result = {
            "series": series,
            "model_name": self.model_name_for(series),
            "model_version": version,
            "configuration": record.get("configuration"),
            "training_end": record.get("training_end"),
            "training_run": self.training_run(series).get("run_id"),
            "span": self.span,
            "span_start": first.isoformat(),
            "span_end": last.isoformat(),
            "labels_source": labels_source,
            **metrics.as_dict(),
        }
        if self.evaluations_table:
            self.write_evaluation(result, context)
        if self.log_to_wandb:
            result["run_url"] = self._log_evaluation(hook, predictions, labels, result, context)
        else:
            push_wandb_run_url(context, None)
        self.log.info(
            "Evaluated %s %s on %s %s..%s: F1 %.2f, %d/%d incidents found, %.2f false alarms per month",
            result["model_name"],
            version,
            self.span,
            first,
            last,
            metrics.f1,
            metrics.found,
            metrics.incidents,
            metrics.false_alarms_per_month,
        )
        return result

    def write_evaluation(self, result: Mapping[str, Any], context: Context) -> None:
        """Replace this version/series/span's row of the evaluations table."""
        hook = self.get_db_hook(self.feedback_conn_id)
        table = validate_table_name(self.evaluations_table, what="evaluations_table")
        hook.run(evaluations_table_ddl(table))
        values = {
            **result,
            "span_start": date.fromisoformat(result["span_start"]),
            "span_end": date.fromisoformat(result["span_end"]),
            "dag_run_id": context["run_id"],
            "evaluated_at": datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "),
        }
        key = [values[name] for name in EVALUATION_KEY_COLUMNS]
        replace_rows(
            hook,
            table,
            [name.upper() for name in EVALUATION_COLUMNS],
            [[values.get(name) for name in EVALUATION_COLUMNS]],
            where=" AND ".join(
                f"{name.upper()} IS NULL" if value is None else f"{name.upper()} = {hook.placeholder}"
                for name, value in zip(EVALUATION_KEY_COLUMNS, key, strict=True)
            ),
            where_parameters=[value for value in key if value is not None],
        )

    def _log_evaluation(
        self,
        hook: WandbHook,
        predictions: pd.DataFrame,
        labels: pd.DataFrame,
        result: Mapping[str, Any],
        context: Context,
    ) -> str | None:
        """Into the model's own training run when known (else a new ``evaluate`` run): summary values and a chart."""
        from airflow_provider_snowstorm.core.charts import render_evaluation_chart

        series, span = result["series"], result["span"]
        prefix = f"evaluation/{span}"
        training_run = result["training_run"]
        config = self.wandb_run_config(context, series=series, model_version=result["model_version"])
        with hook.start_run(
            f"evaluate-{series}",
            group=context["run_id"],
            job_type="evaluate",
            config={} if training_run else config,
            resume_run_id=training_run,
        ) as run:
            run_url = hook.run_url(run)
            push_wandb_run_url(context, run_url)
            # Summary values: a retried task overwrites them instead of adding points.
            run.summary.update(
                {
                    f"{prefix}/{name}": result[name]
                    for name in (
                        "precision",
                        "recall",
                        "f1",
                        "false_alarms_per_month",
                        "average_precision",
                        "incidents",
                        "found",
                        "false_alarms",
                        "span_start",
                        "span_end",
                    )
                }
            )
            title = (
                f"{result['model_name']} {result['model_version']}: {span} {result['span_start']} to "
                f"{result['span_end']}, F1 {result['f1']:.2f}"
            )
            with tempfile.TemporaryDirectory(prefix="snowstorm-evaluate-") as workdir:
                path = Path(workdir, "evaluation.png")
                path.write_bytes(render_evaluation_chart(predictions, labels, series, title=title))
                hook.log_image(prefix, path, run=run)
        return run_url
