"""Calibrated thresholds (``core.thresholds``): the tail fit, the bound on how far it may extrapolate, and the
floor set by the training span's own excursions."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_snowstorm.core.thresholds import (
    MAX_EXTRAPOLATION,
    budget_to_risk,
    excursion_floor,
    tail_thresholds,
)


def test_a_deep_extrapolation_stays_within_reach_of_the_training_scores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hourly data asks for a risk far below one training row: the heavy-tailed prior alone would put the
    threshold far above any score seen; the bound keeps it at 1.5 times the largest."""
    from airflow_provider_snowstorm.core import thresholds as module

    rng = np.random.default_rng(0)
    scores = np.abs(rng.standard_t(5, (800, 3)))
    risk = budget_to_risk(0.1, rows_per_day=24)
    bounded = tail_thresholds(scores, risk)
    monkeypatch.setattr(module, "MAX_EXTRAPOLATION", np.inf)
    unbounded = tail_thresholds(scores, risk)
    largest = scores.max(axis=0)
    assert (bounded <= MAX_EXTRAPOLATION * largest + 1e-9).all()
    binds = unbounded > MAX_EXTRAPOLATION * largest
    assert binds.any()
    assert bounded[binds] == pytest.approx(MAX_EXTRAPOLATION * largest[binds])
    assert bounded[~binds] == pytest.approx(unbounded[~binds])


def test_heavier_tails_get_higher_thresholds() -> None:
    rng = np.random.default_rng(1)
    light = np.abs(rng.standard_normal(2000))
    heavy = np.abs(rng.standard_t(3, 2000))
    low, high = tail_thresholds(np.column_stack([light, heavy]), budget_to_risk(0.1, rows_per_day=1))
    assert 3.0 <= low < high


def test_a_series_without_scores_gets_the_floor() -> None:
    scores = np.column_stack([np.full(50, np.nan), np.linspace(0, 5, 50)])
    assert tail_thresholds(scores, 0.01)[0] == 3.0
    with pytest.raises(ValueError, match="risk"):
        tail_thresholds(scores, 0.0)


@pytest.mark.parametrize(
    ("gap", "allowed", "expected"),
    [
        (0, 0, [7.0, 6.0, 9.0]),  # the highest excursion of each series
        (0, 1, [5.0, 5.0, 8.0]),  # the second highest: the adjacent 9s are one excursion
        (0, [2, 0, 5], [4.0, 6.0, 0.0]),  # per series; fewer excursions than allowed: no floor
        (1, 1, [0.0, 0.0, 0.0]),  # rows one apart join into a single excursion per series
    ],
)
def test_excursion_floor_is_the_height_of_the_first_excursion_over_the_allowance(
    gap: int, allowed: int | list[int], expected: list[float]
) -> None:
    scores = np.array([[0, 5, 0], [4, 0, 9], [0, 6, 9], [5, 0, np.nan], [0, 2, 8], [7, 1, 0]], dtype=float)
    np.testing.assert_array_equal(excursion_floor(scores, gap, np.asarray(allowed)), expected)
