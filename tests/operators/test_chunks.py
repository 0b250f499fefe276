"""One model per chunk of series: one fit, one registry model, one detect and one write for the whole chunk."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.core.persistence import load_detector
from airflow_provider_snowstorm.operators.base import SeriesInputError, default_chunk_model_name
from airflow_provider_snowstorm.operators.score import ModelMismatchError
from airflow_provider_snowstorm.registry import ModelNotFoundError, ModelStore
from tests.operators.conftest import score_operator, stored_rows, train_operator

CHUNK = ["compute", "total_usage"]
CHUNK_MODEL = default_chunk_model_name(CHUNK)


@pytest.fixture
def trained_chunk(
    features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]
) -> dict[str, Any]:
    return train_operator(series=CHUNK, chunk_model=True).execute(context)


def test_a_chunk_trains_one_model_that_lists_its_series(trained_chunk, wandb_offline) -> None:
    json.dumps(trained_chunk)
    assert CHUNK_MODEL.startswith("snowstorm-chunk-")
    assert trained_chunk["model_name"] == CHUNK_MODEL
    assert (trained_chunk["series_count"], trained_chunk["first_series"]) == (2, "compute")
    store = ModelStore(wandb_offline["model_store"])
    assert store.versions(CHUNK_MODEL) == ["v0"]
    with pytest.raises(ModelNotFoundError):
        store.resolve("snowstorm-compute")
    stored = store.resolve(CHUNK_MODEL)
    metadata = stored.metadata.get("metadata", stored.metadata)
    assert metadata["series"] == CHUNK
    assert metadata["chunk"]["series_count"] == 2
    model = load_detector(store.download(CHUNK_MODEL, wandb_offline["model_store"].parent / "dl"))
    assert model.series_ == CHUNK


def test_a_chunk_scores_and_writes_every_series_with_its_one_model(
    trained_chunk, context, features_db: Path
) -> None:
    summary = score_operator(series=CHUNK, chunk_model=True).execute(context)
    json.dumps(summary)
    assert (summary["rows"], summary["model_name"], summary["model_version"]) == (14, CHUNK_MODEL, "v0")
    assert "2025-07-15" in {row["usage_date"] for row in summary["anomalies"] if row["series"] == "compute"}
    rows = stored_rows(features_db)
    assert len(rows) == 14
    assert set(rows["MODEL_NAME"]) == {CHUNK_MODEL}
    score_operator(series=CHUNK, chunk_model=True).execute(context)
    again = stored_rows(features_db)
    assert len(again) == 14
    assert not again.duplicated(["USAGE_DATE", "SERIES"]).any()


def test_chunk_scores_equal_the_per_series_models_scores(
    trained_chunk, context, features_db: Path, wandb_offline
) -> None:
    """The decomposition and score of a series do not depend on its chunk (only the threshold's pooled tail)."""
    score_operator(series=CHUNK, chunk_model=True).execute(context)
    chunked = stored_rows(features_db)
    train_operator(series=CHUNK).execute(context)
    score_operator(series=CHUNK).execute(context)
    single = stored_rows(features_db)
    assert set(single["MODEL_NAME"]) == {"snowstorm-compute", "snowstorm-total_usage"}
    for column in ("USAGE_DATE", "SERIES", "VALUE", "EXPECTED", "ANOMALY_SCORE"):
        pd.testing.assert_series_equal(chunked[column], single[column])


def test_another_chunk_list_has_no_model_and_a_model_must_know_every_series(trained_chunk, context) -> None:
    with pytest.raises(ModelNotFoundError, match="snowstorm-chunk-"):
        score_operator(series=["total_usage", "compute"], chunk_model=True).execute(context)
    train_operator(series="compute").execute(context)  # a model that knows only compute
    with pytest.raises(ModelMismatchError, match=r"without 1 of this chunk's, such as \['total_usage'\]"):
        score_operator(series=CHUNK, chunk_model=True, model_name="snowstorm-compute").execute(context)


def test_one_model_name_for_several_series_needs_chunk_model(features_db: Path, context) -> None:
    with pytest.raises(SeriesInputError, match="model_name names one model"):
        train_operator(series=CHUNK, model_name="shared").execute(context)
    with pytest.raises(SeriesInputError, match=r"\['compute'\] are given more than once"):
        train_operator(series=["compute", "compute"], chunk_model=True).execute(context)


LONG_TABLE = "LONG_FEATURES"


@pytest.fixture
def long_features(features_db: Path, feature_frame: pd.DataFrame) -> pd.DataFrame:
    """The same features in the long layout (USAGE_DATE, SERIES, VALUE) in the features database."""
    long = (
        feature_frame.rename_axis("USAGE_DATE")
        .reset_index()
        .melt("USAGE_DATE", var_name="SERIES", value_name="VALUE")
    )
    long["USAGE_DATE"] = long["USAGE_DATE"].dt.strftime("%Y-%m-%d")
    with sqlite3.connect(features_db) as conn:
        long.to_sql(LONG_TABLE, conn, index=False)
    return long


def test_the_long_layout_reads_only_the_chunks_series_and_scores_alike(
    long_features, wandb_offline, context, features_db: Path
) -> None:
    long = {"features_table": LONG_TABLE, "features_layout": "long", "chunk_model": True}
    train_operator(series=CHUNK, **long).execute(context)
    score_operator(series=CHUNK, **long).execute(context)
    from_long = stored_rows(features_db)
    train_operator(series=CHUNK, chunk_model=True).execute(context)
    score_operator(series=CHUNK, chunk_model=True).execute(context)
    from_wide = stored_rows(features_db)
    for column in ("USAGE_DATE", "SERIES", "VALUE", "EXPECTED", "ANOMALY_SCORE", "THRESHOLD"):
        pd.testing.assert_series_equal(from_long[column], from_wide[column])
    operator = score_operator(series=["compute"], **long)
    operator.check_inputs()
    read = operator.load_features(["compute"], start="2025-07-01", end="2025-07-03")
    assert list(read.columns) == ["compute"]
    assert len(read) == 3


def test_the_long_layout_zero_fills_a_missing_day_and_refuses_repeats(
    long_features, features_db: Path
) -> None:
    with sqlite3.connect(features_db) as conn:
        conn.execute(f"DELETE FROM {LONG_TABLE} WHERE SERIES = 'compute' AND USAGE_DATE = '2025-07-02'")
    operator = score_operator(series=CHUNK, features_table=LONG_TABLE, features_layout="long")
    read = operator.load_features(CHUNK, start="2025-07-01", end="2025-07-03")
    assert read.loc["2025-07-02", "compute"] == 0.0
    assert read.loc["2025-07-02", "total_usage"] > 0
    with sqlite3.connect(features_db) as conn:
        conn.execute(f"INSERT INTO {LONG_TABLE} VALUES ('2025-07-03', 'total_usage', 1.0)")
    with pytest.raises(
        SeriesInputError, match=r"repeat a \(date, series\) pair, such as 'total_usage' on 2025-07-03"
    ):
        operator.load_features(CHUNK, start="2025-07-01", end="2025-07-03")
    with pytest.raises(SeriesInputError, match="features_layout must be 'wide' or 'long'"):
        score_operator(features_layout="tall").check_inputs()


def test_operators_that_work_per_series_refuse_chunk_model() -> None:
    from airflow_provider_snowstorm.operators.monitor import ModelDriftOperator

    with pytest.raises(SeriesInputError, match="ModelDriftOperator works per series"):
        ModelDriftOperator(
            task_id="drift", series=CHUNK, chunk_model=True, conn_id="x", features_table="F"
        ).check_inputs()
