from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from airflow_provider_snowstorm.core.isolation import StepScorer


@pytest.fixture(scope="module")
def forest() -> IsolationForest:
    training = np.random.default_rng(0).standard_t(3, (20_000, 1))
    return IsolationForest(n_estimators=50, random_state=0).fit(training)


def test_step_scores_are_bit_identical_to_scikit_learn(forest: IsolationForest) -> None:
    scorer = StepScorer.from_forest(forest)
    rng = np.random.default_rng(1)
    # Random points plus the hardest ones: every split threshold and its float neighbours.
    points = np.concatenate(
        [
            rng.standard_t(2, 50_000) * 4,
            scorer.breaks,
            np.nextafter(scorer.breaks, np.inf),
            np.nextafter(scorer.breaks, -np.inf),
            scorer.breaks.astype(np.float32),
        ]
    )
    np.testing.assert_array_equal(scorer.score(points), -forest.score_samples(points[:, None]))


def test_nan_stays_nan(forest: IsolationForest) -> None:
    scores = StepScorer.from_forest(forest).score(np.array([np.nan, 0.0]))
    assert np.isnan(scores[0])
    assert np.isfinite(scores[1])


def test_refuses_forests_on_several_features() -> None:
    two_features = IsolationForest(n_estimators=5, random_state=0).fit(
        np.zeros((50, 2)) + np.arange(50)[:, None]
    )
    with pytest.raises(ValueError, match="one feature"):
        StepScorer.from_forest(two_features)
