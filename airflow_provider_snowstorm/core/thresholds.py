"""Anomaly thresholds calibrated on a model's own training scores."""

from __future__ import annotations

import numpy as np

__all__ = ["cap_below_extremes", "mean_std_threshold"]


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


def cap_below_extremes(thresholds: np.ndarray, step_scores: np.ndarray) -> np.ndarray:
    """Thresholds lowered, where needed, to just below the score of the most extreme values on either side.

    A one-feature forest's score is flat beyond its outermost splits; a threshold above that plateau could never be
    crossed, so a series with very regular training scores would never alarm however large the anomaly.
    """
    plateau = min(step_scores[0], step_scores[-1])
    return np.minimum(thresholds, np.nextafter(plateau, -np.inf))
