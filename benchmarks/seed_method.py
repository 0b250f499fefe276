"""The seed project's method, as published: per series ``seasonal_decompose`` + a default Isolation Forest.

Per series: an additive ``seasonal_decompose`` (period 7 for daily data, trend extrapolated to the ends; the
benchmark passes 24 for hourly data), an ``IsolationForest()``
fitted on the residuals, and ``anomaly_threshold = mean - 3 * std`` of the training ``score_samples`` (lower is more
anomalous in scikit-learn); days scoring below it are flagged. Only ``random_state`` is pinned, for reproducibility.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest
from statsmodels.tsa.seasonal import seasonal_decompose

__all__ = ["seed_causal", "seed_fit_score"]

PERIOD = 7
CUTOFF = 3.0


def _residual(values: np.ndarray, period: int = PERIOD) -> np.ndarray:
    return np.asarray(
        seasonal_decompose(values, model="additive", period=period, extrapolate_trend="period").resid
    )


def seed_fit_score(
    values: np.ndarray, random_state: int = 0, period: int = PERIOD
) -> tuple[np.ndarray, np.ndarray]:
    """Fit one series and score its own days, as the seed's training DAG did: (scikit-learn scores, flags)."""
    residual = _residual(values, period)[:, None]
    forest = IsolationForest(random_state=random_state).fit(residual)
    scores = forest.score_samples(residual)
    threshold = scores.mean() - CUTOFF * scores.std()
    return scores, scores < threshold


def seed_causal(
    values: np.ndarray, train_days: int, step: int = 7, random_state: int = 0, period: int = PERIOD
) -> tuple[np.ndarray, np.ndarray]:
    """Fit on ``values[:train_days]``, then score each following ``step`` days seeing data only up to them.

    Each new block re-decomposes the history plus the block (what the seed's prediction DAG does) and scores the
    block's residuals with the forest fitted on the training span. Returns anomaly scores (higher is more
    anomalous: the negated scikit-learn score) and flags for the days after ``train_days``.
    """
    training_residual = _residual(values[:train_days], period)[:, None]
    forest = IsolationForest(random_state=random_state).fit(training_residual)
    training_scores = forest.score_samples(training_residual)
    threshold = training_scores.mean() - CUTOFF * training_scores.std()
    residuals = [
        _residual(values[: min(end + step, len(values))], period)[end:]
        for end in range(train_days, len(values), step)
    ]
    scores = forest.score_samples(np.concatenate(residuals)[:, None])
    return -scores, scores < threshold
