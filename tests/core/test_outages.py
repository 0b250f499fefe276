"""core.outages: how unlikely a run of zero rows is for its series."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtri

from airflow_provider_snowstorm.core.outages import outage_reach, zero_run_zscore

SETTINGS = {"period": 7, "periods": 8, "window": 56}


def _weekday_job(weeks: int, seed: int) -> np.ndarray:
    """A job that runs Monday to Friday (zero every weekend), log-normal amounts."""
    rng = np.random.default_rng(seed)
    weekday = np.arange(weeks * 7) % 7 < 5
    return np.where(weekday, rng.lognormal(3, 0.5, weeks * 7), 0.0)[:, None]


def test_a_run_of_zeros_on_a_series_never_zero_grows_more_unlikely_with_each_row() -> None:
    values = np.full((80, 1), 10.0)
    values[70:74] = 0.0
    scores = zero_run_zscore(values, **SETTINGS)[:, 0]
    # First row: the same weekday was never zero in 8 weeks; one pseudo-row at the series' share (0.5 / 57).
    first = 0.5 / 57 / 9
    assert scores[70] == pytest.approx(ndtri(first))
    # Second row: no earlier row was zero, so its pseudo-row alone (its own first-row probability, the share's
    # window now holding the run's first zero) multiplies the run's probability.
    assert scores[71] == pytest.approx(ndtri(first * 1.5 / 57 / 9))
    assert scores[70] > scores[71] > scores[72] > scores[73]
    assert (scores[:70] == 0).all()
    assert (scores[74:] == 0).all()


def test_zeros_the_series_has_at_that_position_every_period_score_nothing() -> None:
    values = _weekday_job(20, 1)
    scores = zero_run_zscore(values, **SETTINGS)[:, 0]
    assert (scores[70:] == 0).all()  # every weekend after the first ten weeks
    outage = values.copy()
    outage[100:103] = 0.0  # Wednesday to Friday
    assert 100 % 7 == 2
    scores = zero_run_zscore(outage, **SETTINGS)[:, 0]
    assert scores[100] > scores[101] > scores[102]
    assert scores[102] < -3.5


def test_a_long_run_scores_its_last_period_and_eases_as_it_becomes_the_series_history() -> None:
    values = _weekday_job(30, 2)
    values[90:140] = 0.0  # seven weeks without the job, from a Sunday
    full = zero_run_zscore(values, **SETTINGS)
    run = full[90:140, 0]
    assert run.min() == run[:8].min() < -5
    assert run[-10:].max() > -0.5
    reach = outage_reach(**SETTINGS)
    for cut in (100, 139, 145):
        tail = zero_run_zscore(values[cut - reach :], **SETTINGS)
        np.testing.assert_array_equal(tail[reach:], full[cut:])


def test_series_without_zeros_and_missing_values_score_zero() -> None:
    values = np.column_stack([np.full(40, 5.0), np.full(40, np.nan), np.r_[np.full(39, 5.0), 0.0]])
    scores = zero_run_zscore(values, **SETTINGS)
    assert (scores[:, :2] == 0).all()
    assert scores[39, 2] < -2
