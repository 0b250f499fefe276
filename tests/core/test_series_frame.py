"""Input frames (``core.series_frame``): what the detector refuses, and ``to_grid`` for metrics and costs whose rows
are missing or off their grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from airflow_provider_snowstorm.core.detector import DecomposeIsolationForest
from airflow_provider_snowstorm.core.series_frame import DetectorInputError, to_grid, validate_series_frame


@pytest.fixture
def jittered_metric() -> pd.DataFrame:
    """Four days of a 5-minute gauge sampled up to 40 s late, with an hour of samples missing."""
    rng = np.random.default_rng(0)
    grid = pd.date_range("2025-03-03", periods=4 * 288, freq="5min")
    late = pd.to_timedelta(rng.integers(0, 40, grid.size), unit="s")
    frame = pd.DataFrame({"cpu": 50.0 + rng.normal(0.0, 1.0, grid.size)}, index=grid + late)
    return frame.drop(frame.index[300:312])


def test_a_jittered_metric_with_missing_samples_is_refused_then_gridded(
    jittered_metric: pd.DataFrame,
) -> None:
    with pytest.raises(DetectorInputError, match=r"off its .* grid.*to_grid"):
        validate_series_frame(jittered_metric, what="metric")

    gridded = to_grid(jittered_metric, aggregate="mean", fill="interpolate")

    assert gridded.index.freq == pd.Timedelta(minutes=5)
    assert gridded.index[0] == pd.Timestamp("2025-03-03")
    assert len(gridded) == 4 * 288
    # Samples keep their value in the slot they fall in; the missing hour is a straight line between its neighbours.
    assert gridded["cpu"].iloc[0] == jittered_metric["cpu"].iloc[0]
    before, after = gridded["cpu"].iloc[299], gridded["cpu"].iloc[312]
    np.testing.assert_allclose(
        gridded["cpu"].iloc[300:312], before + (after - before) * np.arange(1, 13) / 13
    )
    DecomposeIsolationForest(period=288).fit(gridded)


def test_costs_are_summed_per_slot_and_missing_hours_are_zero() -> None:
    stamps = pd.to_datetime(["2025-03-03 00:10", "2025-03-03 00:50", "2025-03-03 03:20"])
    frame = pd.DataFrame({"wh": [1.0, 2.0, 4.0]}, index=stamps)

    gridded = to_grid(frame, "h")

    assert gridded["wh"].tolist() == [3.0, 0.0, 0.0, 4.0]
    assert list(gridded.index.hour) == [0, 1, 2, 3]


def test_the_step_is_inferred_across_missing_rows() -> None:
    """Weekly rows with a week missing: the gaps are 7 and 14 days, and the step is 7 days, not their mean."""
    weekly = pd.Series(
        [1.0, 2.0, 4.0], index=pd.to_datetime(["2025-01-01", "2025-01-08", "2025-01-22"]), name="w"
    )

    gridded = to_grid(weekly, aggregate="mean", fill="interpolate")

    assert gridded.index.freq == pd.Timedelta(days=7)
    assert gridded["w"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_a_series_without_a_value_to_interpolate_from_is_named() -> None:
    index = pd.date_range("2025-03-03", periods=10, freq="h")
    frame = pd.DataFrame({"full": np.ones(10), "late": [np.nan, np.nan] + [1.0] * 8}, index=index)
    with pytest.raises(DetectorInputError, match=r"\['late'\] have no value .* 2025-03-03T00:00:00"):
        to_grid(frame, aggregate="mean", fill="interpolate")
    assert to_grid(frame, fill="zero")["late"].tolist()[:3] == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"aggregate": "median"}, "aggregate must be one of"),
        ({"fill": "forward"}, "fill must be one of"),
        ({"freq": "M"}, "not a fixed frequency"),
    ],
)
def test_bad_arguments_are_named(jittered_metric: pd.DataFrame, arguments: dict, message: str) -> None:
    with pytest.raises(DetectorInputError, match=message):
        to_grid(jittered_metric, **arguments)


def test_a_single_timestamp_needs_freq() -> None:
    frame = pd.DataFrame({"x": [1.0]}, index=[pd.Timestamp("2025-03-03 10:00")])
    with pytest.raises(DetectorInputError, match="single timestamp: give freq"):
        to_grid(frame)
    assert to_grid(frame, "h")["x"].tolist() == [1.0]
