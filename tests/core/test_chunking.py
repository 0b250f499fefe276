from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_provider_snowstorm.core.chunking import (
    BYTES_PER_SERIES_DAY,
    CHUNK_MEMORY_ENV,
    chunk_memory_mb,
    chunk_series,
    series_per_chunk,
)
from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
from tests.core.conftest import weekly_costs


def test_the_chunk_size_follows_the_budget_and_the_history() -> None:
    assert series_per_chunk(234, 1024) == 1024 * 2**20 // (BYTES_PER_SERIES_DAY * 234)
    assert series_per_chunk(234, 2048) == pytest.approx(2 * series_per_chunk(234, 1024), abs=1)
    assert series_per_chunk(468, 1024) == pytest.approx(series_per_chunk(234, 1024) / 2, abs=1)
    assert series_per_chunk(10_000, 0.001) == 1


def test_the_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHUNK_MEMORY_ENV, "512")
    assert chunk_memory_mb() == 512
    assert series_per_chunk(100) == series_per_chunk(100, 512)
    monkeypatch.delenv(CHUNK_MEMORY_ENV)
    assert chunk_memory_mb() == 1024


@pytest.mark.parametrize("raw", ["lots", "0", "-5", "nan"])
def test_a_bad_budget_names_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match=CHUNK_MEMORY_ENV):
        chunk_memory_mb({CHUNK_MEMORY_ENV: raw})


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="history_days"):
        series_per_chunk(0, 1024)
    with pytest.raises(ValueError, match="memory_mb"):
        series_per_chunk(10, -1)
    with pytest.raises(ValueError, match="chunk size"):
        chunk_series(["a"], 0)
    with pytest.raises(ValueError, match="not one string"):
        chunk_series("abc", 2)
    with pytest.raises(ValueError, match=r"\['a'\] appear more than once"):
        chunk_series(["a", "b", "a"], 2)


def test_chunks_keep_the_order_and_cover_every_series_once() -> None:
    names = [f"s{i}" for i in range(10)]
    chunks = chunk_series(names, 4)
    assert [len(chunk) for chunk in chunks] == [4, 4, 2]
    assert [name for chunk in chunks for name in chunk] == names


def test_scoring_chunk_by_chunk_gives_the_scores_of_one_frame() -> None:
    """What makes chunks safe: each series is decomposed and scored on its own column, whatever its neighbours.
    Only the thresholds' tail shape is pooled over a model's series, so it depends on the chunk."""
    frame = weekly_costs(160, series=6, seed=3)
    whole = DecomposeIsolationForest().fit(frame.iloc[:-10]).detect(frame, start=frame.index[-10])
    parts = []
    for chunk in chunk_series(list(frame.columns), 4):
        detector = DecomposeIsolationForest().fit(frame[chunk].iloc[:-10])
        parts.append(detector.detect(frame[chunk], start=frame.index[-10]))
    chunked = (
        pd.concat(parts).astype({"series": str}).sort_values(["series", "usage_date"], ignore_index=True)
    )
    whole = whole.astype({"series": str}).sort_values(["series", "usage_date"], ignore_index=True)
    same = ["usage_date", "series", "value", "expected", "residual", "anomaly_score", "continuing"]
    pd.testing.assert_frame_equal(chunked[same], whole[same])
    assert np.isfinite(whole["anomaly_score"]).all()
