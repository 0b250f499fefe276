"""Anomaly thresholds calibrated on a model's own training scores."""

from __future__ import annotations

import numpy as np

__all__ = ["mean_std_threshold"]


def mean_std_threshold(training_scores: np.ndarray, cutoff: float) -> np.ndarray:
    """Per series (columns): ``mean + cutoff * std`` of the finite training scores.

    This is the seed's ``anomaly_threshold`` rule. Scores of a series without a single finite training score give
    NaN, which flags nothing.
    """
    scores = np.asarray(training_scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    finite = np.isfinite(scores)
    counts = finite.sum(axis=0)
    filled = np.where(finite, scores, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / counts
        variance = (np.where(finite, scores - mean, 0.0) ** 2).sum(axis=0) / counts
    return mean + cutoff * np.sqrt(variance)
