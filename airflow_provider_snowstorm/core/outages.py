"""How unlikely a run of zero rows is for its series.

Spend that stops (an outage, a broken pipeline, a suspended account) is often well inside the noise of a noisy
series: with a coefficient of variation of 0.5, a day of zero is two scales below the level, and the baseline follows
the zeros down within days. A run of exact zeros on a series that is rarely zero at those positions is still very
unlikely, and that is what this score measures, in the same units as the z-scores (robust standard deviations).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri_exp

from airflow_provider_snowstorm.core.lookback import same_position_count, trailing_count

__all__ = ["outage_reach", "zero_run_zscore"]


def outage_reach(period: int, periods: int, window: int) -> int:
    """Rows before a row that fully determine its ``zero_run_zscore``: the longest run scored (a period), each run
    row's look-back over ``periods`` past periods (and the row before) or the ``window``."""
    return period - 1 + max(period * periods + 1, window)


def zero_run_zscore(values: np.ndarray, *, period: int, periods: int, window: int) -> np.ndarray:
    """The Gaussian quantile (0 or below) of the probability of the run of zero rows ending at each row (rows x
    series); 0 on rows that are not zero. Causal: a row's score uses only the rows before it.

    A run's probability is the product of its rows' (its last ``period`` rows for a longer one), each estimated from
    the same position in the last ``periods`` periods: the share of them that were zero for the run's first row,
    and for a later row the share of those whose row before was zero that were zero too (so a weekend or a night
    that is idle every week continues cheaply, while a weekday outage does not). Each share has one pseudo-row: at
    the series' zero share over the last ``window`` rows (plus a half) for a first row, so a series never zero
    before is not at probability 0, and at the row's own first-row probability for a later row, so a position
    whose row before was never zero counts as independent of it.
    """
    values = np.asarray(values, dtype=np.float64)
    known = np.isfinite(values)
    zero = known & (values == 0)
    scores = np.zeros(values.shape)
    columns = np.flatnonzero(zero.any(axis=0))
    if columns.size == 0 or values.shape[0] < 2:
        return scores
    known, zero = known[:, columns], zero[:, columns]
    follows_zero = np.zeros_like(zero)
    follows_zero[1:] = zero[:-1]
    prior = (trailing_count(zero, window) + 0.5) / (trailing_count(known, window) + 1.0)
    starts = (same_position_count(zero, period, periods) + prior) / (
        same_position_count(known, period, periods) + 1.0
    )
    continues = (same_position_count(zero & follows_zero, period, periods) + starts) / (
        same_position_count(follows_zero, period, periods) + 1.0
    )
    log_probability = np.where(zero, np.log(np.where(follows_zero, continues, starts)), 0.0)
    # The run's log-probability over its last ``period`` rows, summed in the same order whatever came before, so
    # scoring with ``outage_reach`` rows of history gives exactly the scores of scoring with all of it.
    rows = np.arange(values.shape[0])[:, None]
    run_length = rows + 1 - np.maximum.accumulate(np.where(zero, 0, rows + 1), axis=0)
    run = np.zeros(log_probability.shape)
    for back in range(min(period, values.shape[0])):
        run[back:] += np.where(run_length[back:] > back, log_probability[: values.shape[0] - back], 0.0)
    scores[:, columns] = np.where(zero, np.minimum(ndtri_exp(np.minimum(run, 0.0)), 0.0), 0.0)
    return scores
