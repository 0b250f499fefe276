"""Causal look-backs (``core.lookback``): each row sees only rows before it."""

from __future__ import annotations

import numpy as np
import pytest

from airflow_provider_snowstorm.core.lookback import lags, same_position_count, shift, trailing_count


@pytest.fixture
def mask() -> np.ndarray:
    return np.random.default_rng(7).random((40, 3)) < 0.3


def test_shift_moves_rows_down_and_leaves_nan_before_the_first() -> None:
    values = np.arange(12.0).reshape(6, 2)
    shifted = shift(values, 2)
    assert np.isnan(shifted[:2]).all()
    np.testing.assert_array_equal(shifted[2:], values[:4])
    assert np.isnan(shift(values, 6)).all()


def test_lags_are_the_same_position_in_each_past_period() -> None:
    values = np.arange(30.0)[:, None]
    lagged = lags(values, step=7, count=3)
    assert len(lagged) == 3
    for k, lag in enumerate(lagged, start=1):
        np.testing.assert_array_equal(lag, shift(values, 7 * k))
    assert lagged[2][21, 0] == 0.0
    assert np.isnan(lagged[2][20, 0])


def test_same_position_count_counts_the_set_lags(mask: np.ndarray) -> None:
    expected = np.nansum(lags(mask.astype(float), step=5, count=4), axis=0)
    np.testing.assert_array_equal(same_position_count(mask, period=5, periods=4), expected)


def test_trailing_count_counts_the_window_before_each_row_not_the_row(mask: np.ndarray) -> None:
    counts = trailing_count(mask, window=6)
    for row in range(mask.shape[0]):
        np.testing.assert_array_equal(counts[row], mask[max(row - 6, 0) : row].sum(axis=0))
