"""Exact, fast scoring of a one-feature Isolation Forest.

With a single feature every tree cuts the real line at its split thresholds, so the forest's score is a step function
whose steps are the union of all thresholds (at most ``n_estimators * 255`` of them). Evaluating scikit-learn's own
``score_samples`` once per step and looking points up with a binary search gives bit-identical scores to
``IsolationForest.score_samples`` at a tiny fraction of the cost: millions of points per second instead of a few
hundred thousand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest

__all__ = ["StepScorer"]


@dataclass(frozen=True)
class StepScorer:
    """``score(x) == -forest.score_samples(x[:, None])`` for a forest fitted on one feature."""

    breaks: np.ndarray
    scores: np.ndarray

    @classmethod
    def from_forest(cls, forest: IsolationForest) -> StepScorer:
        if forest.n_features_in_ != 1:
            raise ValueError(f"StepScorer needs a forest fitted on one feature, got {forest.n_features_in_}")
        thresholds = [
            estimator.tree_.threshold[estimator.tree_.feature >= 0] for estimator in forest.estimators_
        ]
        breaks = np.unique(np.concatenate(thresholds)) if thresholds else np.empty(0)
        # Trees send x <= threshold left, so each break is the right end of its step. Trees see float32 features,
        # so each step is represented by the largest float32 at or below its break, and one more point above the
        # last break covers the rest of the line.
        below = breaks.astype(np.float32)
        below = np.where(below > breaks, np.nextafter(below, np.float32(-np.inf)), below)
        above_last = np.nextafter(below[-1:], np.float32(np.inf)) if len(breaks) else np.zeros(1, np.float32)
        representatives = np.concatenate([below, above_last])
        scores = -forest.score_samples(representatives[:, None])
        return cls(breaks=breaks, scores=scores)

    def score(self, values: np.ndarray) -> np.ndarray:
        """Anomaly score of each value (higher is more anomalous); NaN stays NaN."""
        values = np.asarray(values, dtype=np.float64)
        # The trees compare float32 features against float64 thresholds: cast the same way.
        as_tree_sees = values.astype(np.float32).astype(np.float64)
        finite = np.isfinite(as_tree_sees)
        out = np.full(values.shape, np.nan)
        out[finite] = self.scores[np.searchsorted(self.breaks, as_tree_sees[finite], side="left")]
        return out
