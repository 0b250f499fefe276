"""Calibrated thresholds (``core.thresholds``): the tail fit, and the bound on how far it may extrapolate."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_snowstorm.core.thresholds import MAX_EXTRAPOLATION, budget_to_risk, tail_thresholds


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
