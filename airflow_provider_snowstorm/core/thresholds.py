"""Anomaly thresholds calibrated to a false-alarm risk with peaks over threshold (POT).

A mean + k * std rule on bounded scores flags whatever lies outside the training range, whatever the series' noise.
Here each series' threshold is the score that a normal row exceeds with probability ``risk``: a high empirical
quantile ``u`` of its training scores, plus a generalised Pareto tail fitted to the excesses over ``u`` (Siffer et
al., "Anomaly detection in streams with extreme value theory", KDD 2017). Heavy-tailed series get a higher
threshold, light-tailed ones a lower one.

A series rarely has enough excesses for a stable shape, so the shape is shrunk towards the estimate pooled over
all series of the model, itself shrunk towards a heavy-tailed prior, and is never lighter than exponential
(``MIN_SHAPE``: a tail that looks bounded above a span's 90% quantile is no ground for extrapolating far beyond the
span); with few training scores the threshold is widened rather than refused, and shrunk towards the threshold of
all series' scores pooled. The extrapolation is bounded: a threshold is never more than ``MAX_EXTRAPOLATION`` times
the largest training score. Sub-daily data asks for risks a thousand times smaller than one row in its training
span, where the prior's heavy tail alone would put thresholds at 50-100 robust deviations, far above anything
seen.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import ndtri

__all__ = [
    "DAYS_PER_MONTH",
    "MAX_EXTRAPOLATION",
    "MIN_EXCURSIONS",
    "MIN_THRESHOLD",
    "budget_thresholds",
    "budget_to_risk",
    "excursion_peaks",
    "excursion_thresholds",
    "nan_quantiles",
    "risk_floor",
    "set_aside_incidents",
    "tail_thresholds",
]

DAYS_PER_MONTH = 30.44
# Prior tail shape of robust z-scores (0 is exponential, 0.25 a Student-t with 4 degrees of freedom) and how many
# excesses it weighs like: a series needs more excesses than this before its own shape dominates.
PRIOR_SHAPE = 0.35
PRIOR_EXCESSES = 200
# The shapes a tail is extrapolated with. Never below 0: a negative shape bounds the scores, which nothing bounds,
# and above a span's 90% quantile even a Student-t tail fits one (at sub-daily risks, a row in thousands, an hourly
# Student-t(5) series then alarmed 11 times its budget: ``benchmarks.calibration``).
MIN_SHAPE = 0.0
MAX_SHAPE = 0.75
# At least this many excesses per series define the initial threshold u (a lower quantile with little history).
MIN_EXCESSES = 8
TAIL_SHARE = 0.1
FULL_TAIL_SCORES = round(MIN_EXCESSES / TAIL_SHARE)
# Widening of a threshold estimated from few excesses: times 1 + WIDEN / sqrt(excesses).
WIDEN = 0.5
# A threshold is at most this many times the largest training score of its series (more with fewer scores than
# FULL_TAIL_SCORES, the fewest whose top TAIL_SHARE holds MIN_EXCESSES rows).
MAX_EXTRAPOLATION = 1.5
# No threshold is lower: three robust standard deviations (and see ``risk_floor``).
MIN_THRESHOLD = 3.0
# Normal excursions a training span needs before a tail is fitted to their heights (``excursion_thresholds``); with
# fewer the threshold is the highest of them. Three, not five: a short sub-daily span with three or four natural
# bursts then extrapolates above its highest one instead of stopping there (half-hourly false alarms 0.151 -> 0.091
# per series-month, 5-minute 0.523 -> 0.362, no family's F1 lower; README, "Benchmarks").
MIN_EXCURSIONS = 3


def budget_to_risk(alarm_budget: float, rows_per_day: float) -> float:
    """Per-row exceedance probability for ``alarm_budget`` false alarms per series per 30.44 days.

    Consecutive flags make one alarm, so this is conservative when normal excursions last several rows.
    """
    return float(alarm_budget) / (DAYS_PER_MONTH * float(rows_per_day))


def risk_floor(risk: float, min_threshold: float = MIN_THRESHOLD) -> float:
    """The lowest threshold for a per-row ``risk``: ``min_threshold``, or the score a Gaussian series exceeds with
    that probability (its two-sided quantile) where that is higher.

    Robust z-scores have tails at least as heavy as a Gaussian's, so no calibrated threshold should fall below this.
    For daily rows at the default budget it is 2.9, under the three deviations; for hourly rows 3.8 and for 5-minute
    rows 4.4. A 5-minute series whose training span was calm (its largest score under 2) got 3, which even Gaussian
    noise crosses about 24 times a month at that frequency.
    """
    return max(float(min_threshold), float(-ndtri(risk / 2.0)))


_SHAPE_GRID = np.linspace(-0.5, 1.0, 301)
_SHAPE_GRID[np.abs(_SHAPE_GRID) < 1e-9] = 1e-9
# For a GPD, Q(0.5) / Q(0.25) of the excesses = (2 ** shape - 1) / ((4 / 3) ** shape - 1), increasing in shape.
_QUARTILE_RATIO = (2.0**_SHAPE_GRID - 1.0) / ((4.0 / 3.0) ** _SHAPE_GRID - 1.0)


def nan_quantiles(values: np.ndarray, quantiles: float | list[float]) -> np.ndarray:
    """``np.nanquantile(values, quantiles, axis=0)`` (linear), equal to the last bit, NaN for an all-NaN column.

    numpy computes it column by column once any value is NaN (every series with a warm-up): a fifth of
    ``fit_detect`` on 3,000 series. One sort of all columns instead; the interpolation is numpy's own.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64), axis=0)  # NaN last
    count = (~np.isnan(ordered)).sum(axis=0)
    wanted = np.atleast_1d(np.asarray(quantiles, dtype=np.float64))[:, None]
    virtual = (count - 1) * wanted  # numpy's position of the linear method
    below = np.clip(np.floor(virtual), 0, np.maximum(count - 1, 0)).astype(np.intp)
    above = np.clip(below + 1, 0, np.maximum(count - 1, 0))
    gamma = virtual - below
    low = np.take_along_axis(ordered, below, axis=0)
    high = np.take_along_axis(ordered, above, axis=0)
    difference = high - low
    result = np.where(gamma >= 0.5, high - difference * (1.0 - gamma), low + difference * gamma)
    result = np.where(count > 0, result, np.nan)
    return result[0] if np.ndim(quantiles) == 0 else result


def _quantile_fit(excesses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GPD shape and the median excess per column of NaN-padded excesses, from their lower quartile and median.

    Quantiles, unlike moments, are not carried away by the few real incidents that a training span holds, and the
    lower half of the excesses is the part least touched by them.
    """
    lower, median = nan_quantiles(excesses, [0.25, 0.5])
    with np.errstate(invalid="ignore", divide="ignore"):
        shape = np.interp(median / lower, _QUARTILE_RATIO, _SHAPE_GRID)
    return np.where(np.isfinite(shape), shape, 0.0), np.where(np.isfinite(median), median, 0.0)


def _largest(scores: np.ndarray) -> np.ndarray:
    """Each column's largest finite score (NaN for a column without one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: series without scores
        return np.nanmax(np.where(np.isfinite(scores), scores, np.nan), axis=0)


def _growth(ratio: np.ndarray | float, shape: np.ndarray) -> np.ndarray:
    """A GPD's quantile at exceedance ``ratio`` (of its excesses) in units of its scale; exponential at shape 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(shape) > 1e-6, (ratio ** (-shape) - 1.0) / shape, -np.log(ratio))


def _median_to_scale(median: np.ndarray, shape: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        factor = np.where(np.abs(shape) > 1e-6, (2.0**shape - 1.0) / shape, np.log(2.0))
    return median / factor


def tail_thresholds(
    training_scores: np.ndarray,
    risk: float,
    *,
    min_threshold: float = MIN_THRESHOLD,
    prior_shape: float = PRIOR_SHAPE,
    prior_excesses: int = PRIOR_EXCESSES,
) -> np.ndarray:
    """Per series (columns of ``training_scores``, rows x series): the score exceeded by a normal row with
    probability ``risk``, never below ``risk_floor(risk, min_threshold)``.

    NaN scores (the decomposition's warm-up) are ignored; a series without a single finite score gets the prior
    threshold of a series with ``MIN_EXCESSES`` scores. A series with fewer than ``FULL_TAIL_SCORES`` scores (a short
    history, whose tail has fewer than ``MIN_EXCESSES`` rows at ``TAIL_SHARE``) may extrapolate further than
    ``MAX_EXTRAPOLATION`` times its largest score, by the square root of what it lacks: the largest of a few scores
    understates the tail, and short spans should get wider thresholds, not narrower ones. With several series, such
    a threshold is also shrunk towards the one of all series' scores pooled, by the share of ``FULL_TAIL_SCORES`` it
    lacks (geometrically): eight scores say little about a series' tail, the model's other series say more.
    """
    scores = np.asarray(training_scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    if not 0 < risk < 1:
        raise ValueError(f"risk must be a probability in (0, 1), got {risk!r}")
    finite = np.isfinite(scores)
    n = finite.sum(axis=0).astype(np.float64)
    # Initial threshold u: the (1 - TAIL_SHARE) quantile, lowered so that at least MIN_EXCESSES rows exceed it.
    share = np.clip(np.maximum(TAIL_SHARE, MIN_EXCESSES / np.maximum(n, 1.0)), TAIL_SHARE, 0.5)
    filled = np.where(finite, scores, np.nan)
    u = np.zeros(scores.shape[1])
    # One quantile call per distinct share (almost always one: every series with enough rows has TAIL_SHARE).
    for value in np.unique(share[n > 0]):
        columns = np.flatnonzero((share == value) & (n > 0))
        u[columns] = nan_quantiles(filled[:, columns], 1.0 - value)
    with np.errstate(invalid="ignore"):
        above = finite & (filled > u)
    excesses = np.where(above, filled - u, np.nan)
    counts = above.sum(axis=0).astype(np.float64)
    own_shape, median_excess = _quantile_fit(excesses)
    own_shape = np.clip(own_shape, -0.5, 1.0)
    pooled = (np.sum(counts * own_shape) + prior_excesses * prior_shape) / (counts.sum() + prior_excesses)
    shape = np.clip(
        (counts * own_shape + prior_excesses * pooled) / (counts + prior_excesses), MIN_SHAPE, MAX_SHAPE
    )
    scale = np.where(counts > 0, _median_to_scale(median_excess, shape), 0.0)
    tail = np.maximum(counts, 1.0) / np.maximum(n, 1.0)  # share of rows above u
    threshold = u + scale * _growth(np.minimum(risk / tail, 1.0), shape)
    # Few excesses: the tail is uncertain, so widen (by WIDEN / sqrt(excesses)) instead of trusting a thin estimate.
    threshold *= 1.0 + WIDEN / np.sqrt(np.maximum(counts, 1.0))
    largest = _largest(filled)
    reach = MAX_EXTRAPOLATION * np.sqrt(np.maximum(1.0, FULL_TAIL_SCORES / np.maximum(n, 1.0)))
    threshold = np.where(np.isfinite(largest), np.minimum(threshold, reach * largest), threshold)
    floor = risk_floor(risk, min_threshold)
    threshold = np.maximum(np.where(np.isfinite(threshold), threshold, floor), floor)
    own = np.minimum(n / FULL_TAIL_SCORES, 1.0)
    if scores.shape[1] > 1 and (own < 1.0).any():
        # Fewer scores than a tail needs: shrink (in logs) towards the threshold of every series' scores pooled, in
        # proportion to what the series lacks, so a short span borrows the model's other series' tails.
        pooled = tail_thresholds(
            filled[finite][:, None],
            risk,
            min_threshold=min_threshold,
            prior_shape=prior_shape,
            prior_excesses=prior_excesses,
        )[0]
        threshold = np.exp(own * np.log(threshold) + (1.0 - own) * np.log(pooled))
    return threshold


# Per excursion of a span (``_excursions``): row numbers, heights, series, ranks and peak positions.
_Found = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _excursions(scores: np.ndarray, gap: int) -> _Found:
    """Each series' excursions (runs of scores above ``MIN_THRESHOLD`` whose rows are at most ``gap`` rows apart).

    Returns, over the scores flattened series by series (column-major): each row's excursion number (-1 outside
    every excursion, rows between two of its scores above the threshold included), and per excursion its height
    (largest score), its series, its rank within its series (0 for the highest) and the flat position of its peak.
    NaN scores count as 0.
    """
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0)
    rows, series = scores.shape
    above = scores > MIN_THRESHOLD
    row = np.arange(rows)[:, None]
    latest = np.maximum.accumulate(np.where(above, row, -(gap + 2)), axis=0)
    previous = np.vstack([np.full((1, series), -(gap + 2)), latest[:-1]])
    starts = above & (row - previous > gap + 1)
    flat_starts, flat_above, flat_scores = (array.T.reshape(-1) for array in (starts, above, scores))
    position = np.arange(flat_scores.size)
    number = np.cumsum(flat_starts) - 1
    count = int(flat_starts.sum())
    if count == 0:
        empty = np.zeros(0, dtype=np.int64)
        return np.full(flat_scores.size, -1), np.zeros(0), empty, empty, empty
    heights = np.zeros(count)
    np.maximum.at(heights, number[flat_above], flat_scores[flat_above])
    last = np.zeros(count, dtype=np.int64)
    np.maximum.at(last, number[flat_above], position[flat_above])
    peak = np.full(count, flat_scores.size, dtype=np.int64)
    at_peak = flat_above & (flat_scores == heights[np.maximum(number, 0)])
    np.minimum.at(peak, number[at_peak], position[at_peak])
    inside = (number >= 0) & (position <= last[np.maximum(number, 0)])
    owner = np.repeat(np.arange(series), rows)[flat_starts]
    ranked = np.lexsort((-heights, owner))
    rank = np.empty(count, dtype=np.int64)
    rank[ranked] = np.arange(count) - np.searchsorted(owner[ranked], owner[ranked])
    return np.where(inside, number, -1), heights, owner, rank, peak


def excursion_peaks(training_scores: np.ndarray, gap: int) -> np.ndarray:
    """Per series (columns), the heights of its excursions, highest first, NaN-padded (excursions x series).

    An excursion is a run of scores above ``MIN_THRESHOLD`` whose rows are at most ``gap`` rows apart (one alarm, as
    ``alarm_gap`` makes it); its height is its largest score.
    """
    return _peaks(_excursions(training_scores, gap), np.shape(training_scores)[1])


def _peaks(found: _Found, series: int) -> np.ndarray:
    """``excursion_peaks`` of excursions already found."""
    _, heights, owner, rank, _ = found
    peaks = np.full((max(int(rank.max()) + 1 if rank.size else 0, 1), series), np.nan)
    peaks[rank, owner] = heights
    return peaks


def set_aside_incidents(training_scores: np.ndarray, gap: int, incidents: int) -> np.ndarray:
    """``training_scores`` with the rows of each series' ``incidents`` highest excursions set to NaN, but their peaks.

    The rows of an incident are not independent draws of a series' noise: a flapping incident of 24 half-hours in a
    span of 1,075 filled a quarter of the tail that the row-wise fit reads (its top tenth) and raised the threshold
    from 5.5 to 12.1, above a later burst of 6 scales. Its peak stays: a normal extreme of a heavy-tailed series is
    one row of its tail.
    """
    scores = np.asarray(training_scores, dtype=np.float64)
    return _set_aside(scores, _excursions(scores, gap), incidents)


def _set_aside(scores: np.ndarray, found: _Found, incidents: int) -> np.ndarray:
    if incidents <= 0:
        return scores
    number, _, _, rank, peak = found
    flat = scores.T.reshape(-1).copy()
    chosen = number >= 0
    chosen[chosen] = rank[number[chosen]] < incidents
    chosen[peak[rank < incidents]] = False
    flat[chosen] = np.nan
    return flat.reshape(scores.shape[1], scores.shape[0]).T


def excursion_thresholds(
    training_scores: np.ndarray,
    gap: int,
    *,
    alarm_budget: float,
    months: float,
    incidents: int,
    min_excursions: int = MIN_EXCURSIONS,
) -> np.ndarray:
    """Per series: the height a normal excursion exceeds ``alarm_budget`` times per 30.44 days (0 where unknown).

    Declustered peaks over threshold (Coles, *An Introduction to Statistical Modeling of Extreme Values*, ch. 5):
    the training span's excursions, less its ``incidents`` highest (they may be real), are its normal excursions;
    their rate per month and a generalised Pareto fit to their heights give the level exceeded at the budgeted
    rate, at most ``MAX_EXTRAPOLATION`` times the largest training score. A series needs ``min_excursions`` normal
    ones for the fit; with fewer, but more than the budget allows, the level is the highest of them (a short span
    that shows normal excursions beyond the budget's rate has no grounds for a lower threshold). The row-wise tail
    fit takes a span's highest scores for incidents; a series that crosses its threshold every few days (a short span
    with natural bursts) is showing normal excursions, and this says how high they go.
    """
    scores = np.asarray(training_scores, dtype=np.float64)
    return _excursion_levels(
        scores, _excursions(scores, gap), alarm_budget, months, incidents, min_excursions
    )


def _excursion_levels(
    scores: np.ndarray, found: _Found, alarm_budget: float, months: float, incidents: int, min_excursions: int
) -> np.ndarray:
    normal = _peaks(found, scores.shape[1])[incidents:]
    if normal.shape[0] == 0:
        return np.zeros(scores.shape[1])
    highest = np.nan_to_num(normal[0], nan=0.0)
    counts = np.isfinite(normal).sum(axis=0)
    shape, median_excess = _quantile_fit(normal - MIN_THRESHOLD)
    shape = np.clip(shape, MIN_SHAPE, MAX_SHAPE)
    scale = _median_to_scale(median_excess, shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = alarm_budget / (counts / max(months, 1e-9))  # of normal excursions allowed above the level
        level = MIN_THRESHOLD + scale * _growth(share, shape)
    level = np.minimum(level, MAX_EXTRAPOLATION * _largest(scores))
    more_than_budget = share < 1.0
    fitted = (counts >= min_excursions) & more_than_budget & np.isfinite(level)
    return np.where(fitted, level, np.where((counts < min_excursions) & more_than_budget, highest, 0.0))


def budget_thresholds(
    training_scores: np.ndarray,
    gap: int,
    *,
    alarm_budget: float,
    rows_per_day: float,
    incidents_per_month: float,
) -> np.ndarray:
    """Per series: the threshold for ``alarm_budget`` false alarms per series per 30.44 days from its training
    scores (NaN: rows that do not count), whose highest excursions, ``incidents_per_month`` of them (at least one),
    may be real incidents.

    The row-wise tail fit without those incidents' rows (``set_aside_incidents``, ``tail_thresholds``), raised to
    the level the span's normal excursions need (``excursion_thresholds``); the excursions are found once for both.
    """
    scores = np.asarray(training_scores, dtype=np.float64)
    months = scores.shape[0] / rows_per_day / DAYS_PER_MONTH
    incidents = max(1, int(np.ceil(incidents_per_month * months)))
    found = _excursions(scores, gap)
    row_wise = tail_thresholds(
        _set_aside(scores, found, incidents), budget_to_risk(alarm_budget, rows_per_day)
    )
    return np.maximum(
        row_wise, _excursion_levels(scores, found, alarm_budget, months, incidents, MIN_EXCURSIONS)
    )
