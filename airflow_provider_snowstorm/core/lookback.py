"""Causal look-backs over a (rows x series) array: each row sees only rows before it.

The decomposition's baselines, the burst score and the outage score all read the same positions back in time: the
row ``lag`` rows before, the same position in past periods, or a trailing window. One definition of each here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lags", "same_position_count", "shift", "trailing_count"]


def shift(values: np.ndarray, lag: int) -> np.ndarray:
    """``out[t] = values[t - lag]``, NaN where that is before the first row."""
    out = np.full(values.shape, np.nan)
    if lag < values.shape[0]:
        out[lag:] = values[: values.shape[0] - lag]
    return out


def lags(values: np.ndarray, step: int, count: int) -> list[np.ndarray]:
    """``[values shifted by step, by 2 step, ..., by count step]``: the same season position in past periods."""
    return [shift(values, k * step) for k in range(1, count + 1)]


def same_position_count(mask: np.ndarray, period: int, periods: int) -> np.ndarray:
    """How many of the rows ``period, 2 * period, ..., periods * period`` rows before each row are set in ``mask``:
    ``lags`` counted, 0 before the first row, summed in place rather than copied ``periods`` times."""
    count = np.zeros(mask.shape)
    for lag in range(period, min(period * periods, mask.shape[0] - 1) + 1, period):
        count[lag:] += mask[:-lag]
    return count


def trailing_count(mask: np.ndarray, window: int) -> np.ndarray:
    """How many of the ``window`` rows before each row (not the row itself) are set in ``mask``."""
    cumulative = np.zeros((mask.shape[0] + 1, mask.shape[1]))
    np.cumsum(mask, axis=0, out=cumulative[1:])
    end = np.arange(mask.shape[0])
    return cumulative[end] - cumulative[np.maximum(end - window, 0)]
