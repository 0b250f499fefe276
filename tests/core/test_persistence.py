from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from airflow_provider_snowstorm.core import persistence
from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
from airflow_provider_snowstorm.core.persistence import UnsafeModelError, load_detector, save_detector


def dump_unregistered(obj: object, path: Path) -> None:
    """Write any object as skops would (quietly: its module scan touches Airflow's deprecated shims when loaded)."""
    with persistence._quiet_module_scan():
        persistence.sio.dump(obj, path)


@pytest.fixture
def fitted(costs: pd.DataFrame) -> DecomposeIsolationForest:
    return DecomposeIsolationForest(threshold_cutoff=2.5, random_state=7).fit(costs.iloc[:120])


def test_round_trip_gives_bit_identical_results(fitted, costs: pd.DataFrame, tmp_path: Path) -> None:
    loaded = load_detector(save_detector(fitted, tmp_path / "model.skops"))
    pd.testing.assert_frame_equal(loaded.detect(costs.iloc[120:]), fitted.detect(costs.iloc[120:]))


def test_round_trip_keeps_threshold_and_metadata(fitted, tmp_path: Path) -> None:
    loaded = load_detector(save_detector(fitted, tmp_path / "model.skops"))
    assert loaded.metadata == fitted.metadata
    pd.testing.assert_series_equal(loaded.thresholds, fitted.thresholds)


def test_file_is_not_a_pickle(fitted, tmp_path: Path) -> None:
    path = save_detector(fitted, tmp_path / "model.skops")
    assert path.read_bytes()[:2] == b"PK"  # a skops zip archive, not a pickle stream


def test_other_types_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.skops"
    dump_unregistered({"payload": pd.Timestamp("2025-01-01")}, path)
    with pytest.raises(UnsafeModelError, match="not trusted"):
        load_detector(path)


def test_a_different_estimator_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "forest.skops"
    dump_unregistered(IsolationForest(n_estimators=2).fit([[0.0], [1.0]]), path)
    with pytest.raises(UnsafeModelError, match="not a registered detector class"):
        load_detector(path)


def test_a_file_that_is_not_skops_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(UnsafeModelError, match="not a skops model file"):
        load_detector(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_detector(tmp_path / "absent.skops")


def test_a_model_saved_before_alarm_gap_existed_still_scores(tmp_path) -> None:
    from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
    from airflow_provider_snowstorm.core.persistence import load_detector, save_detector
    from tests.core.conftest import weekly_costs

    frame = weekly_costs(120)
    detector = DecomposeIsolationForest(random_state=0).fit(frame.iloc[:-14])
    del detector.alarm_gap  # as an older version saved it
    path = save_detector(detector, tmp_path / "old.skops")
    loaded = load_detector(path)
    assert loaded.get_params()["alarm_gap"] is None
    assert len(loaded.detect(frame, start=frame.index[-14])) == 14 * frame.shape[1]


def test_a_model_saved_before_the_second_opinion_drop_thresholds_quarterly_runs_and_outages_scores_as_trained(
    tmp_path,
) -> None:
    from tests.core.conftest import weekly_costs

    frame = weekly_costs(150)
    frame.iloc[-10:-6, 0] = 0.0  # an outage, which a model without the outage score scores as any drop
    # Sporadic use, which it scales by the median absolute deviation:
    frame.iloc[frame.index.day % 3 != 0, 1] = 0.0
    as_trained = {
        "position_periods": 0,
        "training_incidents_per_month": None,
        "calibrate_drops": False,
        "quarterly_periods": 0,
        "outages": False,
        "relative_scale": False,
        "sporadic_scale": False,
    }
    detector = DecomposeIsolationForest(random_state=0, **as_trained).fit(frame.iloc[:-14])
    expected = detector.detect(frame, start=frame.index[-14])
    for name in (*as_trained, "drop_threshold_"):
        delattr(detector, name)  # as an older version saved it
    loaded = load_detector(save_detector(detector, tmp_path / "old.skops"))
    assert {name: loaded.get_params()[name] for name in as_trained} == as_trained
    pd.testing.assert_frame_equal(loaded.detect(frame, start=frame.index[-14]), expected)
    assert loaded.drop_thresholds.equals(loaded.thresholds)
