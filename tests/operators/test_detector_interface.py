"""A second detector plugs in through the interface: registered, trained and scored by the operators."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from airflow_provider_snowstorm.core import persistence, schema
from airflow_provider_snowstorm.core.interface import METADATA_KEYS, AnomalyDetector
from airflow_provider_snowstorm.core.persistence import (
    UnsafeModelError,
    load_detector,
    register_detector_class,
    save_detector,
)
from airflow_provider_snowstorm.operators.base import SeriesInputError
from airflow_provider_snowstorm.operators.train import DecomposeIsolationForestOperator
from airflow_provider_snowstorm.registry import ModelStore
from tests.operators.conftest import score_operator, train_operator


class MedianDetector:
    """Expected = each series' training median; score = |deviation| / training MAD; alarm above ``cutoff``."""

    def __init__(self, cutoff: float = 5.0) -> None:
        self.cutoff = cutoff

    def fit(self, frame: pd.DataFrame) -> MedianDetector:
        self.series_ = [str(name) for name in frame.columns]
        self.median_ = {name: float(frame[name].median()) for name in self.series_}
        self.mad_ = {
            name: float((frame[name] - self.median_[name]).abs().median()) or 1.0 for name in self.series_
        }
        self.training_ = (frame.index[0].date().isoformat(), frame.index[-1].date().isoformat(), len(frame))
        return self

    def detect(self, frame: pd.DataFrame, start: Any = None) -> pd.DataFrame:
        rows = frame if start is None else frame[frame.index >= pd.Timestamp(start)]
        parts = []
        for name in rows.columns:
            residual = rows[name] - self.median_[name]
            score = residual.abs() / self.mad_[name]
            parts.append(
                pd.DataFrame(
                    {
                        schema.DATE: rows.index,
                        schema.SERIES: name,
                        schema.VALUE: rows[name].to_numpy(),
                        schema.EXPECTED: self.median_[name],
                        schema.RESIDUAL: residual.to_numpy(),
                        schema.ANOMALY_SCORE: score.to_numpy(),
                        schema.THRESHOLD: self.cutoff,
                        schema.IS_ANOMALY: (score > self.cutoff).to_numpy(),
                        schema.CONTINUING: False,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)[list(schema.PREDICTION_COLUMNS)]

    @property
    def metadata(self) -> dict[str, Any]:
        start, end, days = self.training_
        return {
            "model_class": type(self).__name__,
            "params": {"cutoff": self.cutoff},
            "series": list(self.series_),
            "thresholds": dict.fromkeys(self.series_, self.cutoff),
            "training_start": start,
            "training_end": end,
            "n_training_days": days,
        }

    @property
    def required_history_days(self) -> int:
        return 0

    @property
    def thresholds(self) -> pd.Series:
        return pd.Series(self.cutoff, index=self.series_, name=schema.THRESHOLD)


class UnregisteredDetector(MedianDetector):
    """Same code, never registered: files holding it are refused."""


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> type[MedianDetector]:
    """``MedianDetector`` registered for this test only (the registry is restored afterwards)."""
    monkeypatch.setattr(persistence, "_DETECTOR_CLASSES", dict(persistence._DETECTOR_CLASSES))
    return register_detector_class(MedianDetector)


def train(**overrides: Any) -> DecomposeIsolationForestOperator:
    arguments = {"series": ["compute", "total_usage"], "detector_class": MedianDetector}
    return train_operator(**{**arguments, "detector_params": {"cutoff": 6.0}, **overrides})


def test_the_default_detector_implements_the_interface(feature_frame: pd.DataFrame) -> None:
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest

    fitted = DecomposeIsolationForest(random_state=0).fit(feature_frame.iloc[:120])
    assert isinstance(fitted, AnomalyDetector)
    assert set(METADATA_KEYS) <= set(fitted.metadata)
    assert DecomposeIsolationForest in persistence.registered_detector_classes()


def test_a_registered_detector_is_trained_and_scored_by_the_operators(
    registered, features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]
) -> None:
    summaries = train().execute(context)
    assert [s["threshold"] for s in summaries] == [6.0, 6.0]
    store = ModelStore(wandb_offline["model_store"])
    stored = store.resolve("snowstorm-compute")
    assert stored.metadata["metadata"]["model_class"] == "MedianDetector"
    model = load_detector(store.download("snowstorm-compute", wandb_offline["model_store"].parent / "dl"))
    assert type(model) is MedianDetector

    summary = score_operator().execute(context)
    assert summary["model_version"] == summaries[0]["model_version"]
    assert summary["training_end"] == "2025-06-30"
    assert len(summary["rows"]) == 7
    assert "2025-07-15" in [row["usage_date"] for row in summary["anomalies"]]  # the 4x spike


def test_the_detector_class_can_be_a_dotted_path(
    registered, features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]
) -> None:
    summary = train(series="compute", detector_class=f"{__name__}.MedianDetector").execute(context)
    assert summary["threshold"] == 6.0


def test_an_unregistered_detector_class_is_refused_before_training(
    features_db: Path, wandb_offline: dict[str, Path], context: dict[str, Any]
) -> None:
    with pytest.raises(
        SeriesInputError, match=r"UnregisteredDetector is not registered.*register_detector_class"
    ):
        train(detector_class=UnregisteredDetector).execute(context)
    with pytest.raises(SeriesInputError, match="cannot be imported"):
        train(detector_class="no_such_module.Detector").execute(context)
    assert not wandb_offline["model_store"].exists() or not any(wandb_offline["model_store"].rglob("*.skops"))


# skops.io.dump scans every imported module's attributes, touching Airflow's deprecated-import shims.
@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
def test_an_unregistered_class_in_a_model_file_is_refused_on_load(
    registered, feature_frame: pd.DataFrame, tmp_path: Path
) -> None:
    import skops.io as sio  # here, not at import: its module scan warns about Airflow's deprecated shims

    path = tmp_path / "model.skops"
    sio.dump(UnregisteredDetector().fit(feature_frame), path)
    with pytest.raises(UnsafeModelError, match=r"not trusted: \[.*UnregisteredDetector'\]"):
        load_detector(path)
    with pytest.raises(TypeError, match="registered detector class"):
        save_detector(UnregisteredDetector().fit(feature_frame), tmp_path / "other.skops")
    # The registered sibling round-trips.
    loaded = load_detector(save_detector(MedianDetector().fit(feature_frame), tmp_path / "median.skops"))
    assert loaded.metadata == MedianDetector().fit(feature_frame).metadata
