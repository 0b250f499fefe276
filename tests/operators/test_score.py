from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.links.wandb import WANDB_RUN_URL_XCOM_KEY
from airflow_provider_snowstorm.operators.base import SeriesInputError
from airflow_provider_snowstorm.operators.score import ModelMismatchError
from airflow_provider_snowstorm.registry import ModelNotFoundError
from tests.operators.conftest import RESULTS_TABLE, score_operator, stored_rows, train_operator

SPIKE_DAY = "2025-07-15"  # day 190 of the features


@pytest.fixture
def trained(features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]) -> None:
    train_operator(series=["compute", "total_usage"]).execute(context)


@pytest.fixture
def score(trained: None):
    return score_operator


def test_scores_the_window_and_finds_the_spike(score, context) -> None:
    summary = score().execute(context)
    json.dumps(summary)
    assert [row["usage_date"] for row in summary["rows"]] == [f"2025-07-{day}" for day in range(12, 19)]
    assert SPIKE_DAY in [row["usage_date"] for row in summary["anomalies"]]
    assert summary["model_name"] == "snowstorm-compute"
    assert summary["model_version"] == "v0"


def test_writes_every_scored_day_with_model_version(score, context, features_db: Path) -> None:
    score().execute(context)
    rows = stored_rows(features_db)
    assert len(rows) == 7
    assert set(rows["MODEL_VERSION"]) == {"v0"}
    assert rows.loc[rows["USAGE_DATE"] == SPIKE_DAY, "IS_ANOMALY"].item() == 1


def test_rescoring_the_same_window_replaces_rows(score, context, features_db: Path) -> None:
    score().execute(context)
    score().execute(context)
    score(series=["compute", "total_usage"]).execute(context)
    rows = stored_rows(features_db)
    assert len(rows) == 14
    assert not rows.duplicated(["USAGE_DATE", "SERIES"]).any()


def test_a_failed_write_leaves_the_previous_rows(score, context, features_db: Path) -> None:
    score().execute(context)
    before = stored_rows(features_db)
    with sqlite3.connect(features_db) as conn:
        # The database refuses the last day of the window: the delete and six inserts have already run.
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {RESULTS_TABLE} WHEN NEW.USAGE_DATE = '2025-07-18' "
            "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        score().execute(context)
    pd.testing.assert_frame_equal(stored_rows(features_db), before)


def test_default_window_is_the_last_days_of_the_features(score, context) -> None:
    summary = score(window_start=None, window_end=None, window_days=3).execute(context)
    assert (summary["window_start"], summary["window_end"]) == ("2025-07-22", "2025-07-24")


def test_pushes_the_scoring_run_link(score, context) -> None:
    """Offline, the link opens the plugin's local page of the run whose W&B URL (after sync) the summary gives."""
    summary = score().execute(context)
    run_id = summary["run_url"].rstrip("/").rsplit("/", 1)[-1]
    assert context["ti"].pushed[WANDB_RUN_URL_XCOM_KEY] == f"/snowstorm/runs/{run_id}"


def test_a_missing_model_fails_clearly(score, context) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no model 'snowstorm-storage_x'.*train it first"):
        score(model_name="snowstorm-storage_x").execute(context)


def test_a_model_of_another_series_is_refused(score, context) -> None:
    with pytest.raises(ModelMismatchError, match=r"trained on series \['total_usage'\], not 'compute'"):
        score(model_name="snowstorm-total_usage").execute(context)


def test_a_model_of_another_period_is_refused(score, context) -> None:
    with pytest.raises(ModelMismatchError, match="has period 7, expected 14"):
        score(expected_period=14).execute(context)


def test_a_window_without_data_fails_clearly(score, context) -> None:
    with pytest.raises(SeriesInputError, match="no feature rows to score between 2026-01-01 and 2026-01-07"):
        score(window_start="2026-01-01", window_end="2026-01-07").execute(context)


def test_a_pinned_version_is_used(score, context, features_db: Path) -> None:
    summary = score(model_version="v0").execute(context)
    assert summary["model_version"] == "v0"


def test_scoring_after_a_gap_reads_the_history_the_model_needs(score, context, mocker) -> None:
    # Trained up to 2025-06-30; scoring 2025-07-22.. has a gap, so the frame must bring the model's history.
    operator = score(window_start="2025-07-22", window_end="2025-07-24")
    reader = mocker.spy(operator, "load_features")
    summary = operator.execute(context)
    assert summary["window_start"] == "2025-07-22"
    (read_from,) = {call.kwargs["start"] for call in reader.call_args_list}
    model_history = (pd.Timestamp("2025-07-22") - pd.Timestamp(read_from)).days
    assert model_history >= 200


def test_names_the_training_run_beside_the_scoring_run(
    features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any], score
) -> None:
    """The report links both: the run that trained the model and the run that scored the window."""
    trained = train_operator(series=["compute"]).execute(context)
    summary = score().execute(context)
    assert summary["training_run_url"] == trained[0]["run_url"]
    assert summary["training_run_url"]
    assert summary["training_run_url"] != summary["run_url"]
