"""The evaluation operator on SQLite and W&B offline: backtest, stored shadow rows, feedback labels, re-runs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.evaluation import evaluate_predictions
from airflow_provider_snowstorm.operators.base import SeriesInputError
from airflow_provider_snowstorm.operators.evaluate import (
    ModelEvaluationOperator,
    feedback_table_ddl,
    read_feedback_labels,
)
from tests.operators.conftest import RESULTS_TABLE, score_operator, train_operator

SPIKE = {"series": "compute", "start": "2025-07-15", "end": "2025-07-15"}
FEEDBACK = "FEEDBACK"
EVALUATIONS = "EVALUATIONS"


def evaluate_operator(**overrides: Any) -> ModelEvaluationOperator:
    arguments: dict[str, Any] = {
        "task_id": "evaluate",
        "series": "compute",
        "conn_id": "features_db",
        "features_table": "DAILY_FEATURES",
        "window_start": "2025-07-01",
        "window_end": "2025-07-18",
        "labels": [SPIKE],
        "evaluations_table": EVALUATIONS,
    }
    return ModelEvaluationOperator(**{**arguments, **overrides})


def write_feedback(db: Path, columns: str, values: str) -> None:
    """The feedback table (as the operator creates it) with the given rows, as a user's insert would add them."""
    with sqlite3.connect(db) as conn:
        conn.execute(feedback_table_ddl(FEEDBACK))
        conn.execute(f"INSERT INTO {FEEDBACK} ({columns}) VALUES {values}")


@pytest.fixture
def trained(features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]) -> dict[str, Any]:
    return train_operator(configuration="default").execute(context)


def evaluations(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        return pd.read_sql(f"SELECT * FROM {EVALUATIONS}", conn)


def test_a_backtest_finds_the_labelled_spike_and_writes_one_row(trained, context, features_db: Path) -> None:
    result = evaluate_operator().execute(context)
    json.dumps(result)
    assert (result["model_version"], result["configuration"], result["span"]) == ("v0", "default", "backtest")
    assert (result["span_start"], result["span_end"]) == ("2025-07-01", "2025-07-18")
    assert (result["incidents"], result["found"], result["recall"]) == (1, 1, 1.0)
    assert result["average_precision"] > 0.5
    assert result["training_run"] == trained["run_id"]
    evaluate_operator().execute(context)  # a re-run replaces its row
    rows = evaluations(features_db)
    assert len(rows) == 1
    assert rows["F1"].item() == pytest.approx(result["f1"])


def test_a_batch_is_evaluated_per_series_with_the_training_runs_versions(
    context, features_db: Path, wandb_offline
) -> None:
    # Two series trained in one task: each its own model and version, under the DAG run's alias.
    batch = ["compute", "total_usage"]
    models = train_operator(series=batch, configuration="default").execute(context)
    results = evaluate_operator(series=batch, model_alias=models[0]["run_alias"]).execute(context)
    assert [(r["series"], r["model_name"], r["model_version"]) for r in results] == [
        (m["series"], m["model_name"], m["model_version"]) for m in models
    ]
    assert [r["training_run"] for r in results] == [m["run_id"] for m in models]
    assert results[0]["found"] == 1  # the spike is labelled for compute only
    assert results[1]["incidents"] == 0
    assert sorted(evaluations(features_db)["SERIES"]) == batch


def test_the_backtest_equals_one_causal_scoring_of_the_span(trained, context) -> None:
    from airflow_provider_snowstorm.hooks.wandb import WandbHook

    operator = evaluate_operator(batch_days=3)
    operator.check_inputs()
    detector, _ = operator.load_model(WandbHook().registry, "compute")
    batched = operator.backtest(detector, "compute")
    whole = evaluate_operator(batch_days=100).backtest(detector, "compute")
    pd.testing.assert_frame_equal(batched, whole)
    assert len(batched) == 18


def test_shadow_rows_are_evaluated_as_stored(trained, context, features_db: Path) -> None:
    score_operator(window_start="2025-07-01", window_end="2025-07-18").execute(context)
    stored = evaluate_operator(span="shadow", predictions_table=RESULTS_TABLE).execute(context)
    backtest = evaluate_operator().execute(context)
    assert {k: stored[k] for k in ("f1", "found", "false_alarms")} == {
        k: backtest[k] for k in ("f1", "found", "false_alarms")
    }
    assert set(evaluations(features_db)["SPAN"]) == {"shadow", "backtest"}


def test_labels_come_from_the_feedback_table(trained, context, features_db: Path) -> None:
    write_feedback(
        features_db,
        "SERIES, START_DATE, END_DATE, VERDICT, NOTE, REPORTED_BY",
        "('compute', '2025-07-15', '2025-07-15', 'real', 'batch job ran twice', 'ana'), "
        "('compute', '2025-07-03', '2025-07-03', 'false_alarm', 'known migration', 'ana')",
    )
    result = evaluate_operator(labels=None, feedback_table=FEEDBACK, feedback_conn_id="features_db").execute(
        context
    )
    assert (result["incidents"], result["found"]) == (1, 1)
    assert result["labels_source"] == f"1 from {FEEDBACK}"


def test_the_reports_feedback_statement_runs_in_snowflake_and_becomes_labels(snowflake_hook) -> None:
    from datetime import date

    from airflow_provider_snowstorm.core.report import build_report, feedback_sql
    from tests.scoring_results import make_result

    table = "SNOWSTORM.ANALYTICS.REPORT_FEEDBACK"
    snowflake_hook.run(
        ["CREATE DATABASE IF NOT EXISTS SNOWSTORM", "CREATE SCHEMA IF NOT EXISTS SNOWSTORM.ANALYTICS"]
    )
    snowflake_hook.run([feedback_table_ddl(table), f"DELETE FROM {table}"])
    spike = make_result("compute", [100, 100, 300, 250, 100], [100] * 5, [0, 0, 1, 1, 0])
    snowflake_hook.run(feedback_sql(build_report([spike], feedback_table=table)))
    labels = read_feedback_labels(snowflake_hook, table, "compute", date(2026, 1, 1), date(2026, 1, 31))
    assert labels.astype(str).to_dict("records") == [
        {"series": "compute", "start": "2026-01-03", "end": "2026-01-04"}
    ]
    reported_by, reported_at = snowflake_hook.get_first(f"SELECT REPORTED_BY, REPORTED_AT FROM {table}")
    assert reported_by  # the Snowflake user who ran it
    assert reported_at is not None


def test_a_misspelt_verdict_fails_naming_the_row(trained, context, features_db: Path) -> None:
    write_feedback(
        features_db, "SERIES, START_DATE, END_DATE, VERDICT", "('compute', '2025-07-15', '2025-07-15', 'yes')"
    )
    with pytest.raises(ValueError, match=r"2025-07-15\.\.2025-07-15 has verdict 'yes'"):
        evaluate_operator(labels=None, feedback_table=FEEDBACK).execute(context)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"span": "holdout"}, "span must be one of"),
        ({"window_start": None}, "give window_start and window_end"),
        ({"span": "shadow"}, "reads stored rows: give predictions_table"),
        ({"labels": None}, "give labels or feedback_table"),
        ({"series": ["compute", "total_usage"], "model_version": "v0"}, "model_version pins one series"),
        ({"evaluations_table": "EVAL; DROP"}, "evaluations_table"),
    ],
)
def test_bad_parameters_fail_before_any_read(
    overrides: dict[str, Any], message: str, wandb_offline, context, mocker
) -> None:
    operator = evaluate_operator(**overrides)
    reads = mocker.spy(operator, "load_features")
    with pytest.raises(
        ValueError, match=message
    ) as raised:  # SeriesInputError, or IdentifierError for a table
        operator.execute(context)
    assert isinstance(raised.value, SeriesInputError) or "not a valid SQL identifier" in str(raised.value)
    assert reads.call_count == 0
    assert not wandb_offline["model_store"].exists()


def test_metrics_count_events_not_days() -> None:
    days = pd.date_range("2025-01-01", periods=10, freq="D")
    flags = [False, True, True, False, False, True, False, False, False, False]
    predictions = pd.DataFrame(
        {"usage_date": days, "series": "compute", "anomaly_score": range(10), "is_anomaly": flags}
    )
    metrics = evaluate_predictions(
        predictions, pd.DataFrame([{"series": "compute", "start": days[1], "end": days[3]}])
    )
    assert (metrics.found, metrics.missed, metrics.false_alarms) == (1, 0, 1)
    assert metrics.precision == 0.5
    assert metrics.false_alarms_per_month == pytest.approx(30.44 / 10)
