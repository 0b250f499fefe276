"""Small, deterministic cost series shared by the modelling-core tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def weekly_costs(days: int, series: int = 2, seed: int = 0, start: str = "2025-01-06") -> pd.DataFrame:
    """Daily costs with weekday/weekend seasonality, mild growth and 3% multiplicative noise."""
    rng = np.random.default_rng(seed)
    day = np.arange(days)[:, None]
    level = 100.0 * (1 + np.arange(series))[None, :] * (1 + 0.002 * day)
    weekday = np.where(day % 7 < 5, 1.0, 0.6)
    values = level * weekday * rng.lognormal(0.0, 0.03, (days, series))
    index = pd.date_range(start, periods=days, freq="D", name="usage_date")
    return pd.DataFrame(values, index=index, columns=[f"series_{i}" for i in range(series)])


def weekly_job(days: int, series: int = 1, seed: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """A steady 15 a day (5% noise) plus a job of 55 on Tuesdays and Thursdays (10% noise), rows x series; and the
    job days."""
    rng = np.random.default_rng(seed)
    job = np.isin(np.arange(days) % 7, (1, 3))
    noise = rng.lognormal(0, 0.05, (days, series))
    values = 15 * noise + job[:, None] * 55 * rng.lognormal(0, 0.1, (days, series))
    return values, job


@pytest.fixture
def costs() -> pd.DataFrame:
    """150 days of two series."""
    return weekly_costs(150)
